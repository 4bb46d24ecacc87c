"""Greedy matching of detections to gt boxes, the official rule in closed form.

The official code matches one (keyframe, class) at a time: detections in order, each takes
the gt of largest IoU if that IoU is >= 0.5 and the gt is still free, and never falls back to
its second-best gt. So a detection is a true positive iff its best gt clears the threshold and
no earlier detection of the group had that same best gt above the threshold: a "first
occurrence" test over best-gt ids, done here for every group at once.
"""

from __future__ import annotations

import numpy as np

IOU_THRESHOLD = 0.5


def _pair_iou(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of matching rows of ``det`` and ``gt`` (both ``(P, 4)`` ``x1, y1, x2, y2``).

    The official arithmetic exactly: no +1; intersection extents are taken in the boxes'
    dtype, clipped at 0 and multiplied in float64; areas in the boxes' dtype, their sum in
    that dtype, the union and the ratio in float64 (this matters only for float32 boxes).
    """
    # Not avadet.boxes.paired_iou: this keeps the official code's float operations in their order.
    zero = np.zeros(1, dtype=np.float64)
    ih = np.maximum(zero, np.minimum(det[:, 3], gt[:, 3]) - np.maximum(det[:, 1], gt[:, 1]))
    iw = np.maximum(zero, np.minimum(det[:, 2], gt[:, 2]) - np.maximum(det[:, 0], gt[:, 0]))
    inter = ih * iw
    area_d = (det[:, 3] - det[:, 1]) * (det[:, 2] - det[:, 0])
    area_g = (gt[:, 3] - gt[:, 1]) * (gt[:, 2] - gt[:, 0])
    union = (area_d + area_g).astype(np.float64) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def match_detections(
    det_group: np.ndarray,
    det_boxes: np.ndarray,
    gt_group: np.ndarray,
    gt_boxes: np.ndarray,
    threshold: float = IOU_THRESHOLD,
) -> np.ndarray:
    """True-positive flags of greedy matching without fall-back, for all groups at once.

    Args:
        det_group: ``(D,)`` int64 (keyframe, class) group of each detection, the detections
            already in matching order within each group (groups need not be contiguous).
        det_boxes: ``(D, 4)`` ``x1, y1, x2, y2`` (float64 or float32).
        gt_group: ``(G,)`` int64, sorted ascending; within a group in "first gt" order.
        gt_boxes: ``(G, 4)`` like ``det_boxes``.
    Returns:
        ``(D,)`` bool: detection ``i`` is a true positive iff the gt of largest IoU in its
        group (the first one on ties) has IoU >= ``threshold`` and no earlier detection of
        the group had that same gt as its best with IoU >= ``threshold``.
    """
    d = len(det_group)
    tp = np.zeros(d, dtype=bool)
    if d == 0 or len(gt_group) == 0:
        return tp
    # Pair each detection with every gt row of its group (a ragged expansion: AVA has a
    # handful of gt rows per keyframe and class).
    lo = np.searchsorted(gt_group, det_group, side="left")
    hi = np.searchsorted(gt_group, det_group, side="right")
    n = hi - lo
    dets = np.flatnonzero(n > 0)
    if len(dets) == 0:
        return tp
    counts = n[dets]
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    total = int(counts.sum())
    pair_det = np.repeat(dets, counts)
    pair_gt = np.arange(total) - np.repeat(starts - lo[dets], counts)
    iou = _pair_iou(det_boxes[pair_det], gt_boxes[pair_gt])
    # np.argmax semantics: the first maximum; a NaN wins (and then fails the threshold).
    has_nan = np.logical_or.reduceat(np.isnan(iou), starts)
    best = np.maximum.reduceat(iou, starts)
    is_best = iou == np.repeat(best, counts)
    first = np.minimum.reduceat(np.where(is_best, np.arange(total), total), starts)
    ok = ~has_nan & (best >= threshold)
    cand = dets[ok]
    best_gt = pair_gt[first[ok]]
    # Detections are in matching order only within a group; order the candidates by their
    # position in the caller's sequence (det index) - already ascending - and take the first
    # candidate per best gt.
    _, first_idx = np.unique(best_gt, return_index=True)
    tp[cand[first_idx]] = True
    return tp
