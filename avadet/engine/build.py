"""The config boundary of the data: ``cfg.data`` turned into a :class:`DatasetFiles`, the
class ids, the split tables and an :class:`AvaDataset`, here and nowhere else.

The data package itself never reads a config; the models' boundary is
:func:`avadet.models.build_model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from avadet.config import Config, DataConfig
from avadet.data import AvaDataset, DatasetFiles, keep_in_segment, split_boxes
from avadet.errors import ConfigError
from avadet.io import read_annotations, read_exclusions, read_labelmap, read_person_boxes


def dataset_files(data: DataConfig) -> DatasetFiles:
    """Every file and folder that ``data`` names, resolved against ``data.root``."""
    return DatasetFiles.resolve(
        data.root, media=data.source, frame_template=data.frame_template,
        labelmap=data.labelmap, frames_dir=data.frames_dir, videos_dir=data.videos_dir,
        train_annotations=data.train_annotations, val_annotations=data.val_annotations,
        train_exclusions=data.train_exclusions, val_exclusions=data.val_exclusions,
        train_boxes=data.train_boxes, val_boxes=data.val_boxes,
    )


def class_ids_of(cfg: Config, files: Optional[DatasetFiles] = None) -> list[int]:
    """``cfg.data.classes`` if given (each must be in the label map), else the label map's ids."""
    files = files or dataset_files(cfg.data)
    labelmap = read_labelmap(files.require("labelmap"))
    if not cfg.data.classes:
        return list(labelmap.ids)
    unknown = [c for c in cfg.data.classes if c not in labelmap]
    if unknown:
        raise ConfigError(
            f"data.classes: ids {unknown} are not in the label map {cfg.data.labelmap}"
        )
    if len(set(cfg.data.classes)) != len(cfg.data.classes):
        raise ConfigError("data.classes lists an id twice")
    return [int(c) for c in cfg.data.classes]


@dataclass
class SplitTables:
    """The annotation files of one split, each read once: ``gt`` (None when the split has
    no annotations file, as AVA's test split), ``exclusions`` (None: none) and the person
    ``detections`` above the split's score threshold (None: the boxes are the gt's)."""

    split: str
    gt: Optional[pd.DataFrame]
    exclusions: Optional[pd.DataFrame]
    detections: Optional[pd.DataFrame]


def read_split_tables(cfg: Config, split: str,
                      files: Optional[DatasetFiles] = None) -> SplitTables:
    """Read the annotation, exclusion and person-box files of ``split`` of ``cfg.data``."""
    data = cfg.data
    files = files or dataset_files(data)
    if split == "train":
        gt_path: Optional[Path] = files.require("train_annotations")
    elif split == "val":
        gt_path = files.existing("val_annotations")
    else:
        raise ConfigError(f"unknown split {split!r} (use 'train' or 'val')")
    excl_path = files.existing(f"{split}_exclusions")
    detections = None
    if split == "train" and data.train_use_detections:
        detections = read_person_boxes(
            files.require("train_boxes", " (needed by data.train_use_detections=true)"),
            min_score=data.train_detection_score)
    elif split == "val" and data.val_boxes:
        detections = read_person_boxes(
            files.require("val_boxes", " (set data.val_boxes= to use the gt boxes)"),
            min_score=data.test_detection_score, keep_best=data.test_keep_best_detection)
    return SplitTables(
        split,
        read_annotations(gt_path) if gt_path is not None else None,
        read_exclusions(excl_path) if excl_path is not None else None,
        detections,
    )


def _check_transforms(data: DataConfig) -> None:
    scales = data.train_jitter_scales
    if len(scales) != 2 or scales[0] > scales[1]:
        raise ConfigError(f"data.train_jitter_scales must be [min, max], got {scales}")
    if data.train_crop_size > scales[0] > 0:
        raise ConfigError(
            f"data.train_crop_size={data.train_crop_size} is larger than the smallest "
            f"training short side {scales[0]}"
        )


def check_clip_length(cfg: Config) -> None:
    """A clip of ``data.num_frames`` must give every pathway of ``cfg.model`` a frame."""
    model = cfg.model
    if model.arch not in ("slowfast", "slow", "fast"):
        raise ConfigError(f"model.arch must be 'slowfast', 'slow' or 'fast', got {model.arch!r}")
    if model.arch == "slowfast" and cfg.data.num_frames // model.alpha < 1:
        raise ConfigError(
            f"data.num_frames={cfg.data.num_frames} is smaller than model.alpha={model.alpha}"
        )


def build_dataset(cfg: Config, split: str, *, tables: Optional[SplitTables] = None,
                  class_ids: Optional[Sequence[int]] = None) -> AvaDataset:
    """The ``split`` (``"train"`` or ``"val"``) of ``cfg.data`` as an :class:`AvaDataset`.

    ``tables``: the split's files already read (:func:`read_split_tables`), so that a caller
    that also evaluates reads the ground truth once.
    """
    data = cfg.data
    files = dataset_files(data)
    class_ids = list(class_ids) if class_ids is not None else class_ids_of(cfg, files)
    tables = tables or read_split_tables(cfg, split, files)
    if tables.gt is None and tables.detections is None:
        raise ConfigError("data.val_boxes is empty and data.val_annotations is missing")
    check_clip_length(cfg)
    _check_transforms(data)
    # Val scores every keyframe that has boxes, excluded ones too, as PySlowFast's test path
    # does: the evaluator leaves excluded keyframes out, so the mAP is the same and the
    # prediction file has every row PySlowFast's has. Training drops them.
    exclusions = tables.exclusions if split == "train" else None
    boxes, labels = split_boxes(split, class_ids, gt=tables.gt, exclusions=exclusions,
                                detections=tables.detections)
    boxes, labels = keep_in_segment(boxes, labels, fps=data.fps,
                                    segment_start=data.segment_start,
                                    segment_end=data.segment_end)
    return AvaDataset(
        boxes,
        np.asarray(labels, np.float32),
        class_ids,
        files.source(),
        train=split == "train",
        fps=data.fps,
        segment_start=data.segment_start,
        num_frames=data.num_frames,
        sampling_rate=data.sampling_rate,
        jitter_scales=data.train_jitter_scales,
        crop_size=data.train_crop_size,
        flip=data.train_flip,
        color_jitter=data.train_color_jitter,
        test_short_side=data.test_short_side,
        mean=data.mean,
        std=data.std,
        box_scaling=data.box_scaling,
        resize_rounding=data.resize_rounding,
        clip_center_offset=data.clip_center_offset,
        box_clipping=data.box_clipping,
    )


def clip_cost_of(cfg: Config, boxes: int = 3) -> dict[str, float]:
    """What scoring one test clip of ``cfg`` costs (:func:`avadet.models.flops.clip_cost`):
    ``data.num_frames`` at a square ``data.test_short_side`` (else the training crop) with
    ``boxes`` person boxes; GFLOPs, parameters and, for SlowFast, the Fast pathway's share."""
    from avadet.models.flops import clip_cost

    size = cfg.data.test_short_side or cfg.data.train_crop_size
    return clip_cost(cfg.model, cfg.data.num_frames, size, boxes=boxes)
