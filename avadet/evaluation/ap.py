"""Average precision of every class at once, from ranked true-positive flags."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from avadet.evaluation.segments import segment_starts


def average_precision(
    cls: np.ndarray, tp: np.ndarray, num_gt: np.ndarray, keep_curves: bool = False
) -> tuple[np.ndarray, Optional[dict[int, tuple[np.ndarray, np.ndarray]]]]:
    """All-points interpolated AP of every class at once.

    Segment-wise cumulative sums give precision and recall at every rank, a reverse
    cumulative maximum per class makes precision non-increasing.

    Args:
        cls: ``(D,)`` class index of each detection, detections already ranked: grouped by
            class (ascending) and within a class in ranking order (descending score).
        tp: ``(D,)`` bool true-positive flags.
        num_gt: ``(C,)`` gt instances per class index.
    Returns:
        ``(C,)`` float64 AP (NaN where ``num_gt`` is 0; 0 where there are gt but no
        detections) and, if ``keep_curves``, ``{class index: (recall, precision)}``.
    """
    ap = np.where(num_gt > 0, 0.0, np.nan)
    curves: Optional[dict[int, tuple[np.ndarray, np.ndarray]]] = {} if keep_curves else None
    if len(cls) == 0:
        return ap, curves
    starts = segment_starts(cls)
    sizes = np.diff(np.r_[starts, len(cls)])
    seg = np.repeat(np.arange(len(starts)), sizes)
    rank = np.arange(len(cls)) - starts[seg] + 1
    ctp_all = np.cumsum(tp, dtype=np.int64)
    before = np.r_[0, ctp_all][starts]
    ctp = ctp_all - before[seg]
    gt_counts = num_gt[cls].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = ctp.astype(np.float64) / rank
        recall = ctp.astype(np.float64) / gt_counts
        recall_before = (ctp - 1).astype(np.float64) / gt_counts
    # Precision made non-increasing from the right, per class (the appended 0 changes nothing).
    interp = (
        pd.Series(precision[::-1]).groupby(seg[::-1], sort=False).cummax().to_numpy()[::-1]
    )
    # Recall changes exactly at the true positives.
    contrib = np.where(tp, (recall - recall_before) * interp, 0.0)
    sums = np.add.reduceat(contrib, starts)
    seg_cls = cls[starts]
    valid = num_gt[seg_cls] > 0
    ap[seg_cls[valid]] = sums[valid]
    if keep_curves:
        for s, c, size in zip(starts, seg_cls, sizes):
            if num_gt[c] > 0:
                curves[int(c)] = (recall[s : s + size].copy(), precision[s : s + size].copy())
    return ap, curves
