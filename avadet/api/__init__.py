"""The use cases, as functions a Python user calls directly; the ``avadet`` commands, the
demo and ``tools/`` are thin layers over them.

Each takes a config as a YAML path or a :class:`~avadet.config.Config` (plus
``section.key=value`` overrides), returns what it produced, raises
:class:`~avadet.errors.AvadetError` for bad input and logs its progress; none prints::

    from avadet import api

    api.train("configs/synthetic/tiny.yaml", ["train.output_dir=runs/tiny"])
    result = api.test("configs/synthetic/tiny.yaml", "runs/tiny/checkpoints/model_final.pt")
    print(result.eval_result.map)
    report = api.check_data("configs/ava/slowfast_32x2_r50_short.yaml", ["data.root=data/ava"])
    out = api.detect_video("movie.mp4", "runs/tiny/checkpoints/model_final.pt", "detections/")
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module; imported on first use, so that ``avadet eval`` never loads torch.
_EXPORTS = {
    "check_data": "avadet.api.data",
    "detect_persons": "avadet.api.data",
    "split_keyframes": "avadet.api.data",
    "DetectOutputs": "avadet.api.detection",
    "detect_video": "avadet.api.detection",
    "evaluate": "avadet.api.evaluation",
    "export_model": "avadet.api.export",
    "make_synthetic": "avadet.synthetic",
    "run_demo": "avadet.api.demo",
    "EVAL_LOGGER": "avadet.api.training",
    "OutputDirInUse": "avadet.api.training",
    "RunFolderLocked": "avadet.api.training",
    "TrainingInterrupted": "avadet.api.training",
    "request_stop": "avadet.api.training",
    "test": "avadet.api.training",
    "train": "avadet.api.training",
    "Config": "avadet.config",
    "load_config": "avadet.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'avadet.api' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
