"""Inference over the validation keyframes and its evaluation: the one code path shared by
``avadet test`` and the evaluations during training.

:func:`run_inference` scores every box of a dataset (sharded over the processes of a
distributed run) and returns AVA prediction rows, one per (box, class) with every class's
score, as PySlowFast writes them. Boxes and scores are rounded to 6 decimals *before* they are
evaluated, and written with enough digits to read back exactly, so the mAP printed from
memory equals ``avadet eval`` on the written file.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from avadet.boxes import BOX_COLUMNS, PREDICTION_COLUMNS
from avadet.config import Config
from avadet.data import AvaDataset, Batch, collate
from avadet.engine.build import (
    SplitTables,
    build_dataset,
    dataset_files,
    read_split_tables,
)
from avadet.engine.distributed import DistInfo, all_gather_objects
from avadet.engine.sampler import ShardSampler
from avadet.errors import ConfigError
from avadet.evaluation import EvalResult, evaluate_frame_map
from avadet.io import read_labelmap, write_ava_csv

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
PRED_COLUMNS = PREDICTION_COLUMNS
DECIMALS = 6  # boxes and scores in prediction files


@dataclass
class TestResult:
    """``predictions_csv``: the written AVA prediction file; ``eval_result``: its frame-mAP
    (None when the split has no ground truth); ``predictions``: the rows as evaluated."""

    predictions_csv: Optional[Path]
    eval_result: Optional[EvalResult]
    predictions: pd.DataFrame


def to_device(batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch's ``clips`` and ``boxes`` on ``device``."""
    non_blocking = device.type == "cuda"
    return (batch.clips.to(device, non_blocking=non_blocking),
            batch.boxes.to(device, non_blocking=non_blocking))


def inference_model(model: nn.Module, device: Union[str, torch.device], *, deploy: bool = True,
                    precision: str = "fp32", consume: bool = False) -> nn.Module:
    """The model ``avadet test`` and ``avadet detect`` run: on a CPU with ``deploy`` its
    deployment form (:func:`avadet.models.deploy.prepare_for_inference`: BatchNorm folded,
    channels-last 3D, oneDNN convolutions with ReLU and residual adds fused, inference mode;
    scores within 1e-4 of ``model``'s), else ``model`` itself. ``precision="bf16"``: bfloat16 autocast on the CPU (needs ``deploy`` and a CPU
    with native bf16; scores move by ~5e-3). ``model`` is not modified, unless ``consume``
    (a model loaded for this run only: folded in place, no second copy of the weights)."""
    from avadet.models.deploy import precision_dtype, prepare_for_inference

    dtype = precision_dtype(precision)
    if torch.device(device).type != "cpu" or not deploy:
        if dtype is not None:
            raise ConfigError("test.precision=bf16 is the CPU deployment path's: it needs "
                              "test.deploy=true and the CPU")
        return model
    deployed = prepare_for_inference(model, dtype=dtype, copy_model=not consume)
    logger.info("inference: %s", deployed.extra_repr())
    return deployed


@torch.no_grad()
def predict_boxes(
    model: nn.Module, clips: torch.Tensor, boxes: torch.Tensor, *, amp: bool = False
) -> torch.Tensor:
    """Scores ``(K, C)`` (float32, after the model's activation) of ``boxes`` ``(K, 5)``
    ``[batch_index, x1, y1, x2, y2]`` in input pixels, for ``clips`` ``(B, 3, T, H, W)`` at the
    Fast pathway's rate. No gradients; the caller sets eval mode."""
    device = boxes.device
    with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda"):
        scores = model(clips, boxes)
    return scores.float()


def prediction_rows(
    video_ids: Sequence[str],
    timestamps: Sequence[int],
    box_batch_index: np.ndarray,
    norm_boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: Sequence[int],
) -> pd.DataFrame:
    """AVA prediction rows, one per (box, class): ``norm_boxes`` ``(K, 4)``, ``scores``
    ``(K, C)``, ``box_batch_index`` ``(K,)`` the item of each box in ``video_ids`` /
    ``timestamps``. Boxes and scores rounded to :data:`DECIMALS`."""
    k, c = scores.shape
    item = np.asarray(box_batch_index, dtype=np.int64)
    boxes = np.round(np.asarray(norm_boxes, dtype=np.float64), DECIMALS)
    return pd.DataFrame(
        {
            "video_id": np.repeat(np.asarray(video_ids, dtype=object)[item], c),
            "timestamp": np.repeat(np.asarray(timestamps, dtype=np.int64)[item], c),
            **{name: np.repeat(boxes[:, j], c) for j, name in enumerate(BOX_COLUMNS)},
            "action_id": np.tile(np.asarray(class_ids, dtype=np.int64), k),
            "score": np.round(np.asarray(scores, dtype=np.float64).reshape(-1), DECIMALS),
        },
        columns=PRED_COLUMNS,
    )


def run_inference(
    model: nn.Module,
    dataset: AvaDataset,
    class_ids: Sequence[int],
    *,
    batch_size: int,
    num_workers: int = 0,
    info: Optional[DistInfo] = None,
    amp: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Score every box of ``dataset`` with ``model`` (put in eval mode here).

    In a distributed run each process scores a contiguous shard and every process returns the
    whole table. Rows: ``video_id timestamp x1 y1 x2 y2 action_id score`` (normalised boxes),
    one per (box, class), keyframes in dataset order and boxes in file order within one.
    A batch holds keyframes of one video only (:class:`~avadet.engine.sampler.ShardSampler`),
    so frames of different sizes are never padded together: the scores do not depend on
    ``batch_size``.
    """
    info = info or DistInfo()
    model.eval()
    loader = DataLoader(
        dataset,
        batch_sampler=ShardSampler(len(dataset), batch_size, rank=info.rank,
                                   world_size=info.world_size,
                                   groups=getattr(dataset, "video_ids", None)),
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=info.device.type == "cuda",
        generator=torch.Generator(),  # DataLoader's worker seed must not draw from the global RNG
    )
    parts = []
    started = time.perf_counter()
    bar = tqdm(loader, desc="inference", unit="batch", disable=not (progress and info.is_main),
               leave=False, dynamic_ncols=True)
    for batch in bar:
        if not len(batch):
            continue  # every clip of the batch unreadable (counted in dataset.skipped)
        clips, boxes = to_device(batch, info.device)
        scores = predict_boxes(model, clips, boxes, amp=amp).cpu().numpy()
        parts.append(
            prediction_rows(
                batch.video_ids, batch.timestamps, batch.box_index.numpy(),
                batch.norm_boxes.numpy(), scores, class_ids,
            )
        )
    local = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=PRED_COLUMNS)
    gathered = all_gather_objects(local, info)
    out = pd.concat(gathered, ignore_index=True) if len(gathered) > 1 else local
    out["timestamp"] = out["timestamp"].astype(np.int64)
    out["action_id"] = out["action_id"].astype(np.int64)
    if info.is_main:
        logger.info(
            "inference: %d keyframes, %d boxes in %.1f s", len(dataset),
            len(out) // max(len(class_ids), 1), time.perf_counter() - started,
        )
    return out


def write_predictions(path: PathLike, predictions: pd.DataFrame) -> Path:
    """Write prediction rows atomically in AVA format (no header; 6-decimal values read back
    exactly)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_ava_csv(path, predictions, "score")
    return path


@dataclass
class EvalSetup:
    """What frame-mAP on the val split needs: the split's tables (gt rows, exclusions; read
    once, shared with the val dataset), the evaluated classes and the protocol."""

    tables: SplitTables
    labelmap: dict[int, str]
    protocol: str

    @property
    def gt(self) -> pd.DataFrame:
        return self.tables.gt

    @property
    def exclusions(self) -> Optional[pd.DataFrame]:
        return self.tables.exclusions


def eval_setup(cfg: Config, class_ids: Sequence[int],
               tables: Optional[SplitTables] = None) -> Optional[EvalSetup]:
    """The val ground truth of ``cfg.data`` (None when there is none, e.g. AVA's test split).

    Evaluated classes: the label map's (``data.labelmap``, e.g. the 60 ActivityNet classes)
    that the model scores (``class_ids``). ``tables``: the val files already read for the
    dataset (:func:`~avadet.engine.build.read_split_tables`), so they are read once.
    """
    files = dataset_files(cfg.data)
    if files.existing("val_annotations") is None:
        return None
    labelmap_path = files.require("labelmap")
    labelmap = read_labelmap(labelmap_path)
    scored = set(int(c) for c in class_ids)
    classes = {i: labelmap.names[i] for i in labelmap.ids if i in scored}
    if not classes:
        raise ConfigError(
            f"none of the model's classes {list(class_ids)} is in the label map {labelmap_path}"
        )
    tables = tables or read_split_tables(cfg, "val", files)
    return EvalSetup(tables, classes, cfg.test.protocol)


def evaluate_predictions(predictions: pd.DataFrame, setup: EvalSetup) -> EvalResult:
    """Frame-mAP of prediction rows (as :func:`run_inference` returns them)."""
    return evaluate_frame_map(
        setup.gt, predictions, setup.labelmap, exclusions=setup.exclusions, protocol=setup.protocol
    )


def default_output_csv(output_csv: str, checkpoint: PathLike) -> Path:
    """``test.output_csv`` as a path: absolute as given; relative to the run folder of
    ``checkpoint`` (``<run>/checkpoints/x.pt`` -> ``<run>``, else the checkpoint's folder)."""
    target = Path(output_csv).expanduser()
    if target.is_absolute():
        return target
    folder = Path(checkpoint).expanduser().resolve().parent
    if folder.name == "checkpoints":
        folder = folder.parent
    return folder / target


def test(
    cfg: Config,
    checkpoint: PathLike,
    *,
    output_csv: Optional[PathLike] = None,
    progress: bool = True,
    explicit: Sequence[str] = (),
    arch: Optional[str] = None,
) -> TestResult:
    """Score the val keyframes of ``cfg.data`` (detected boxes >= ``data.test_detection_score``
    from ``data.val_boxes``, or the gt boxes when it is empty) with the model of
    ``checkpoint``, write the AVA prediction CSV atomically and evaluate it.

    ``checkpoint`` is any format :func:`avadet.engine.loading.load_model` reads (``arch``:
    the architecture of a Caffe2 pickle). The model (architecture, weights, class ids) and the
    preprocessing its authors used come from the checkpoint, the rest from ``cfg``
    (:func:`~avadet.engine.checkpoint.inference_config`: the one rule ``avadet detect`` follows
    too); a setting of ``cfg`` that the checkpoint overrules is logged as a warning, unless
    its key is in ``explicit`` (the user's ``key=value`` overrides), which wins.
    ``output_csv``: where to write (default ``test.output_csv``, relative to the
    checkpoint's run folder: see :func:`default_output_csv`). Under ``torchrun`` the keyframes are split over the processes and
    rank 0 writes and evaluates; the others return the same predictions and no file.
    """
    from avadet.engine.checkpoint import inference_config
    from avadet.engine.distributed import init_distributed, teardown
    from avadet.engine.loading import load_model

    info = init_distributed(cfg.train.device)
    try:
        loaded = load_model(checkpoint, arch=arch, device=info.device)
        class_ids = loaded.class_ids
        run_cfg, ignored = inference_config(loaded.config, cfg, authored=loaded.authored,
                                            explicit=tuple(explicit))
        model = inference_model(loaded.model, info.device, deploy=run_cfg.test.deploy,
                                precision=run_cfg.test.precision, consume=True)
        if info.is_main:
            logger.info(loaded.describe())
            if ignored:
                logger.warning("the checkpoint decides %s: the config's values are not used "
                               "(override one with key=value)", ", ".join(ignored))
        tables = read_split_tables(run_cfg, "val")
        dataset = build_dataset(run_cfg, "val", tables=tables)
        setup = eval_setup(run_cfg, class_ids, tables)
        amp = bool(cfg.train.amp and info.device.type == "cuda")
        predictions = run_inference(
            model, dataset, class_ids, batch_size=cfg.test.batch_size,
            num_workers=cfg.data.num_workers, info=info, amp=amp, progress=progress,
        )
        if dataset.skipped:
            logger.warning("%d keyframe(s) could not be read and have no predictions", dataset.skipped)
        path: Optional[Path] = None
        result = None
        if info.is_main:
            if output_csv is None:
                output_csv = default_output_csv(cfg.test.output_csv, checkpoint)
            path = write_predictions(output_csv, predictions)
            if setup is not None:
                result = evaluate_predictions(predictions, setup)
        return TestResult(path, result, predictions)
    finally:
        if info.distributed:
            teardown()


test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name
