"""Train a model, and test a checkpoint on the val split (predictions and frame-mAP)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from avadet.api._config import ConfigLike, as_config
from avadet.engine import (
    EVAL_LOGGER,
    OutputDirInUse,
    RunFolderLocked,
    TestResult,
    TrainingInterrupted,
    TrainResult,
    request_stop,
)
from avadet.engine import test as engine_test
from avadet.engine import train as engine_train
from avadet.engine.checkpoint import override_keys
from avadet.errors import ConfigError

PathLike = Union[str, Path]

__all__ = ["EVAL_LOGGER", "OutputDirInUse", "RunFolderLocked", "TestResult", "TrainResult",
           "TrainingInterrupted", "request_stop", "test", "train"]


def train(config: ConfigLike, overrides: Sequence[str] = (), *, resume: bool = True,
          overwrite: bool = False) -> TrainResult:
    """Train the model of ``config`` into ``train.output_dir``.

    ``resume``: continue from the newest checkpoint there (a run killed at any point resumes
    bit-exactly). ``resume=False`` starts over and is refused when the folder holds
    checkpoints (:class:`OutputDirInUse`), unless ``overwrite`` (which deletes them first).
    Runs unchanged under ``torchrun``. ``result.notes`` holds what a user should read
    (initialisation, resumption, replaced keyframes, the final mAP).
    """
    if overwrite and resume:
        raise ConfigError("overwrite=True only applies with resume=False")
    return engine_train(as_config(config, overrides), resume=resume, overwrite=overwrite)


def test(config: ConfigLike, checkpoint: Optional[PathLike] = None,
         overrides: Sequence[str] = (), *, output_csv: Optional[PathLike] = None,
         arch: Optional[str] = None, progress: bool = True) -> TestResult:
    """Score the val keyframes of ``config``'s data with ``checkpoint`` (default
    ``test.checkpoint``), write the AVA prediction CSV atomically and evaluate it.

    ``checkpoint``: an avadet checkpoint, a PySlowFast ``.pyth``, a Caffe2 ``.pkl`` (with
    ``arch``, its published architecture) or a pytorchvideo state dict
    (:func:`avadet.engine.loading.load_model`). The checkpoint decides the model and the
    preprocessing its authors used (sampling, normalisation, box scaling, test short side,
    person-box threshold); ``config`` the data and the test settings; an ``overrides`` entry
    wins over the checkpoint (:func:`avadet.engine.checkpoint.inference_config`).
    """
    cfg = as_config(config, overrides)
    checkpoint = checkpoint or cfg.test.checkpoint
    if not checkpoint:
        raise ConfigError("no checkpoint: give one, or set test.checkpoint")
    return engine_test(cfg, checkpoint, output_csv=output_csv, progress=progress,
                       explicit=override_keys(overrides), arch=arch)
