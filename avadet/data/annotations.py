"""Annotation tables of a split: which boxes a dataset holds and their multi-hot labels.

Boxes:

- ``train``: the gt boxes of every annotated keyframe (excluded keyframes removed), each with
  a multi-hot label row over ``class_ids`` (a person whose actions are all outside
  ``class_ids`` stays, with an all-zero row: it is a negative for every class). Detector boxes
  given as ``detections`` are added as extra boxes, on annotated keyframes only: a detection
  whose best IoU with a gt box of its keyframe is >= 0.5 takes that person's labels, any other
  is a background person (all-zero labels). PySlowFast merges a detection into a gt box only
  when the coordinates are identical; the IoU rule gives the same result for those and also
  labels the detector's slightly shifted copies of annotated people.
- ``val``: the ``detections`` (e.g. ``ava_val_predicted_boxes.csv`` above the test score
  threshold), labelled by the same IoU rule from the val gt where it exists (for a validation
  loss; mAP is computed from the gt file itself); without detections, the gt boxes (score 1).
  :func:`avadet.engine.build_dataset` passes no exclusions for val: every keyframe with boxes
  is scored (PySlowFast's test path) and the evaluator leaves the excluded ones out.

Keyframes whose centre frame lies outside the segment are dropped (:func:`keep_in_segment`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from avadet.boxes import BOX_COLUMNS, KEY_COLUMNS, paired_iou
from avadet.data.sampling import valid_keyframe_mask
from avadet.errors import ConfigError
from avadet.io import merge_box_labels

KEY = KEY_COLUMNS
BOX = BOX_COLUMNS
BOX_TABLE = [*KEY, *BOX, "score"]
# A detection at least this close to a gt box is that person (IoU, AVA's matching threshold).
MATCH_IOU = 0.5


def label_boxes_by_iou(
    boxes: pd.DataFrame, gt_boxes: pd.DataFrame, gt_labels: np.ndarray, min_iou: float = MATCH_IOU
) -> np.ndarray:
    """Labels for ``boxes`` taken from the gt box of the same keyframe with the largest IoU.

    Args:
        boxes: ``video_id timestamp x1 y1 x2 y2`` rows (normalised), e.g. detections.
        gt_boxes: the same columns, one row per gt person; ``gt_labels`` ``(G, C)`` aligned.
    Returns:
        ``(N, C)`` float32; all-zero for a box whose best IoU is below ``min_iou``.
    """
    num_classes = gt_labels.shape[1]
    out = np.zeros((len(boxes), num_classes), dtype=np.float32)
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return out
    left = boxes[KEY + BOX].reset_index(drop=True).assign(_i=np.arange(len(boxes)))
    right = gt_boxes[KEY + BOX].reset_index(drop=True).assign(_g=np.arange(len(gt_boxes)))
    pairs = left.merge(right, on=KEY, suffixes=("", "_gt"))
    if pairs.empty:
        return out
    iou = paired_iou(
        pairs[BOX].to_numpy(np.float64), pairs[[f"{c}_gt" for c in BOX]].to_numpy(np.float64)
    )
    pairs = pairs.assign(_iou=iou).sort_values(["_i", "_iou", "_g"], ascending=[True, False, True])
    best = pairs.drop_duplicates("_i")
    best = best[best["_iou"] >= min_iou]
    out[best["_i"].to_numpy()] = gt_labels[best["_g"].to_numpy()]
    return out


def drop_keyframes(df: pd.DataFrame, keys: Optional[pd.DataFrame]) -> pd.DataFrame:
    """Rows of ``df`` whose ``video_id timestamp`` is not in ``keys`` (e.g. exclusions)."""
    if keys is None or keys.empty or df.empty:
        return df
    marked = df.merge(keys[KEY].drop_duplicates().assign(_x=True), on=KEY, how="left")
    return df[marked["_x"].isna().to_numpy()].reset_index(drop=True)


def split_boxes(
    split: str,
    class_ids: Sequence[int],
    *,
    gt: Optional[pd.DataFrame],
    exclusions: Optional[pd.DataFrame] = None,
    detections: Optional[pd.DataFrame] = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The boxes of ``split`` and their labels (see the module doc).

    Args:
        gt: the split's annotations (:func:`~avadet.io.read_annotations`), None when it has
            none (val only).
        exclusions: ``video_id timestamp`` keyframes to leave out.
        detections: person boxes (``video_id timestamp x1 y1 x2 y2 score``) already above the
            score threshold; train: extra boxes, val: the boxes (None: the gt boxes).
    Returns:
        ``boxes`` with columns ``video_id timestamp x1 y1 x2 y2 score`` (one row per box, in
        file order) and ``(N, C)`` float32 labels over ``class_ids``.
    """
    if split not in ("train", "val"):
        raise ConfigError(f"unknown split {split!r} (use 'train' or 'val')")
    gt_boxes = pd.DataFrame(columns=KEY + BOX + ["score"])
    gt_labels = np.zeros((0, len(class_ids)), np.float32)
    if gt is not None:
        gt_boxes, gt_labels = merge_box_labels(drop_keyframes(gt, exclusions), class_ids)
        gt_boxes = gt_boxes.assign(score=1.0)
    if detections is None:
        if gt is None:
            raise ConfigError(f"the {split} split has neither person boxes nor annotations")
        return gt_boxes[BOX_TABLE], gt_labels
    dets = drop_keyframes(detections, exclusions)
    if split == "train":
        # Only keyframes with gt: the others are unannotated, not empty.
        dets = dets.merge(gt_boxes[KEY].drop_duplicates(), on=KEY)
        labels = np.concatenate([gt_labels, label_boxes_by_iou(dets, gt_boxes, gt_labels)])
        return pd.concat([gt_boxes[BOX_TABLE], dets[BOX_TABLE]]), labels
    return dets[BOX_TABLE], label_boxes_by_iou(dets, gt_boxes, gt_labels)


def keep_in_segment(
    boxes: pd.DataFrame, labels: np.ndarray, *, fps: float, segment_start: float,
    segment_end: float,
) -> tuple[pd.DataFrame, np.ndarray]:
    """``boxes`` (and aligned ``labels``) of keyframes inside the segment, sorted stably by
    keyframe, with ``video_id`` as str and ``timestamp`` as int64.

    Sorting by keyframe keeps a video's clips together: friendlier to the OS cache and to the
    video source's open containers when read in order (val).
    """
    boxes = boxes[BOX_TABLE].reset_index(drop=True)
    boxes["video_id"] = boxes["video_id"].astype(str)
    boxes["timestamp"] = boxes["timestamp"].astype(np.int64)
    valid = valid_keyframe_mask(boxes["timestamp"].to_numpy(), fps=fps,
                                segment_start=segment_start, segment_end=segment_end)
    order = boxes[valid].sort_values(KEY, kind="stable").index.to_numpy()
    return boxes.loc[order].reset_index(drop=True), np.asarray(labels, np.float32)[order]
