"""Frame-level mAP (AVA), vectorised, reproducing the official evaluator rule by rule.

The official ActivityNet code loops over keyframes, classes and detections in Python; here
every step works on whole arrays:

1. keyframes ``(video_id, timestamp)`` become one int64 code; the class filter, the
   exclusions and the per-protocol keyframe rules are ``np.isin`` masks;
2. the 50-per-keyframe cap reproduces the official heap (:func:`heap_cap_mask`);
3. each detection is paired with every gt row of its (keyframe, class) (a ragged expansion:
   AVA has a handful of gt rows per keyframe and class), IoU is computed per pair and the best
   gt per detection with segment reductions;
4. greedy matching without fall-back is sequential in the official code, but it has a closed
   form: a detection is a true positive iff its best IoU is >= 0.5 and no earlier detection of
   the same (keyframe, class) had the same best gt with IoU >= 0.5 (that earlier detection
   either matched the gt or found it matched, and a detection never falls back to its
   second-best gt). That is a "first occurrence" test over best-gt ids;
5. AP for all classes at once with segment-wise cumulative sums and a reverse cumulative
   maximum.

Ties. The official code sorts with ``np.argsort`` (not stable) and a heap, so equal scores
have no defined order. avadet fixes one: detections of equal score are taken in file order
(first row first), both for matching within a keyframe and for the AP ranking of a class; gt
boxes of equal IoU are taken in the official gt order (descending 8th column, then file
order). See docs/evaluation.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np
import pandas as pd

from avadet.evaluation.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol

PathLike = Union[str, Path]
IOU_THRESHOLD = 0.5
_BOX = ["x1", "y1", "x2", "y2"]


@dataclass
class EvalResult:
    """The outcome of one frame-mAP evaluation.

    Attributes:
        map: mean AP over the classes that count (NaN when none does).
        per_class: AP per label-map class id, NaN for a class left out of the mean (no gt;
            under ``mmaction2`` also gt without detections).
        num_gt: gt instances per class (duplicates included) as the protocol counts them.
        num_pred: evaluated detections per class (after every filter, TP + FP).
        protocol: the protocol's name.
        class_names: id -> name from the label map.
        counts: rows read and dropped at each step (see :func:`evaluate_frame_map`).
        warnings: human-readable notes about suspicious input (also in ``counts``).
        curves: per class ``(recall, precision)`` arrays in ranking order, when asked for.
    """

    map: float
    per_class: dict[int, float]
    num_gt: dict[int, int]
    num_pred: dict[int, int]
    protocol: str
    class_names: dict[int, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    curves: Optional[dict[int, tuple[np.ndarray, np.ndarray]]] = None

    def to_json(self) -> dict:
        """``{"mAP": float or None, "per_class": {"<id>": AP or None}}`` (fractions)."""

        def number(value: float) -> Optional[float]:
            return None if np.isnan(value) else float(value)

        return {
            "mAP": number(self.map),
            "per_class": {str(k): number(v) for k, v in sorted(self.per_class.items())},
        }


# --------------------------------------------------------------------------- helpers


def _class_table(labelmap: object) -> tuple[np.ndarray, dict[int, str]]:
    """Sorted class ids and names from a LabelMap, a mapping id -> name, or an iterable."""
    names_attr = getattr(labelmap, "names", None)
    if isinstance(names_attr, Mapping):
        names = {int(k): str(v) for k, v in names_attr.items()}
    elif isinstance(labelmap, Mapping):
        names = {int(k): str(v) for k, v in labelmap.items()}
    else:
        names = {int(k): str(k) for k in labelmap}  # type: ignore[union-attr]
    return np.array(sorted(names), dtype=np.int64), names


def _keyframe_codes(
    tables: list[Optional[pd.DataFrame]],
) -> list[Optional[np.ndarray]]:
    """One int64 code per row for ``(video_id, int(timestamp))``, shared by all tables.

    Video ids are compared verbatim. The small tables come first so that the big prediction
    table is looked up in a hash index once rather than concatenated.
    """
    present = [t for t in tables if t is not None]
    small = [t for t in present if len(t) <= 1_000_000] or present[:1]
    vocab = pd.Index(pd.unique(np.concatenate([t["video_id"].to_numpy(object) for t in small])))
    t_min = min((int(t["timestamp"].min()) for t in present if len(t)), default=0)
    t_max = max((int(t["timestamp"].max()) for t in present if len(t)), default=0)
    span = t_max - t_min + 1
    codes: list[Optional[np.ndarray]] = []
    for table in tables:
        if table is None:
            codes.append(None)
            continue
        video = vocab.get_indexer(table["video_id"])
        unknown = video < 0
        if unknown.any():
            extra, uniques = pd.factorize(table["video_id"].to_numpy(object)[unknown])
            video[unknown] = extra + len(vocab)
            vocab = vocab.append(pd.Index(uniques))
        stamps = table["timestamp"].to_numpy(np.int64)
        codes.append(video.astype(np.int64) * span + (stamps - t_min))
    return codes


def _stable_order(keys: list[np.ndarray], first: np.ndarray) -> np.ndarray:
    """Refine the permutation ``first`` by ``keys`` (least significant first), stably.

    ``np.lexsort`` would do the same; a chain of stable argsorts is several times faster at
    10 million rows because small non-negative codes are radix-sorted.
    """
    order = first
    for key in keys:
        k = key[order]
        if len(k) and k.min() >= 0 and k.max() < 2**16:
            k = k.astype(np.uint16)
        order = order[np.argsort(k, kind="stable")]
    return order


def _small(codes: np.ndarray, bound: int) -> np.ndarray:
    """``codes`` (all in ``[0, bound)``) as uint16 when they fit: numpy radix-sorts those."""
    return codes.astype(np.uint16) if bound <= 2**16 else codes


def _kth_largest_per_group(g: np.ndarray, s: np.ndarray, n_groups: int, k: int) -> np.ndarray:
    """The ``k``-th largest of ``s`` within each group ``g`` (every group has >= k rows).

    Rather than sorting all rows, bin the scores on a uniform grid (between the 1st and 99th
    percentile of a sample, clipped), find per group the bin that holds its k-th largest score
    by counting, and sort only the rows of that bin. The binning is monotone in the score and
    equal scores share a bin, so the answer is exact whatever the grid.

    Args:
        g: ``(N,)`` int64 group ids in ``[0, n_groups)``. s: ``(N,)`` finite float64 scores.
    Returns:
        ``(n_groups,)`` float64.
    """
    nb = 128
    sample = s[:: max(1, len(s) // 100_000)]
    lo, hi = (float(v) for v in np.quantile(sample, [0.01, 0.99]))
    scale = (nb - 1) / (hi - lo) if hi > lo and np.isfinite(hi - lo) else 0.0
    scaled = s - lo
    scaled *= scale
    np.maximum(scaled, 0, out=scaled)
    np.minimum(scaled, nb - 1, out=scaled)
    bins = scaled.astype(np.int32)
    del scaled
    cell = g.astype(np.int64) * nb + bins if n_groups * nb >= 2**31 else g * nb + bins
    counts = np.bincount(cell, minlength=n_groups * nb).reshape(n_groups, nb)
    del cell
    from_top = np.cumsum(counts[:, ::-1], axis=1)  # rows in the top j + 1 bins
    j = np.argmax(from_top >= k, axis=1)
    target_bin = nb - 1 - j
    rows_above = np.where(j > 0, from_top[np.arange(n_groups), np.maximum(j - 1, 0)], 0)
    cand = np.flatnonzero(bins == target_bin[g])
    cg, cs = g[cand], s[cand]
    order = np.lexsort((-cs, cg))
    cg, cs = cg[order], cs[order]
    starts = _segment_starts(cg)
    groups = cg[starts]
    thr = np.empty(n_groups, dtype=np.float64)
    thr[groups] = cs[starts + (k - rows_above[groups]) - 1]
    return thr


def heap_cap_mask(
    keys: np.ndarray,
    scores: np.ndarray,
    actions: np.ndarray,
    boxes: np.ndarray,
    capacity: int,
) -> np.ndarray:
    """Rows kept by the official per-keyframe heap of ``capacity`` entries.

    The official reader pushes ``(score, action_id, y1, x1, y2, x2)`` of each row, in file
    order, onto a min-heap per keyframe; once the heap is full a row replaces the heap's
    minimum only if its score is strictly greater. Closed form, per keyframe with more than
    ``capacity`` rows: let ``s`` be the ``capacity``-th largest score and ``k`` the number of
    rows scoring above ``s``. Every row above ``s`` is kept and every row below is dropped.
    Rows scoring exactly ``s`` are pushed until the moment ``t0`` at which the prefix holds
    ``capacity`` rows scoring ``>= s`` (from then on the heap minimum is ``s`` and an equal
    score is not strictly greater); each later row above ``s`` evicts the smallest tuple among
    them. So of the ties at ``s`` up to ``t0``, the ``capacity - k`` largest tuples
    ``(action_id, y1, x1, y2, x2)`` survive (identical tuples: the later row survives, as if
    the file position were the tuple's last element).

    Args:
        keys: ``(N,)`` int64 keyframe codes, rows in file order.
        scores: ``(N,)`` finite float64. actions: ``(N,)`` int64.
        boxes: ``(N, 4)`` float64 ``x1, y1, x2, y2`` (anything indexable like it: only the
            rows tied at the threshold are read).
        capacity: the heap size (50 in the official code).
    Returns:
        ``(N,)`` bool mask of the rows that survive.
    """
    n = len(keys)
    keep = np.ones(n, dtype=bool)
    if n == 0:
        return keep
    k_min = int(keys.min())
    span = int(keys.max()) - k_min + 1
    if span <= 4 * n + 1024:  # dense codes (the usual case): count without sorting
        inverse = keys - k_min
        sizes = np.bincount(inverse, minlength=span)
    else:
        _, inverse, sizes = np.unique(keys, return_inverse=True, return_counts=True)
    crowded = sizes > capacity
    if not crowded.any():
        return keep
    compact = (np.cumsum(crowded) - 1).astype(np.int32)  # crowded keyframe -> 0..n_groups-1
    n_groups = int(crowded.sum())
    if crowded.all():  # the usual case at AVA scale: every keyframe is over the cap
        rows = np.arange(n)
        g = compact[inverse]
        s = scores
    else:
        rows = np.flatnonzero(crowded[inverse])  # file order
        g = compact[inverse[rows]]
        s = scores[rows]
    thr = _kth_largest_per_group(g, s, n_groups, capacity)
    t = thr[g]
    above = s > t
    tie = s == t
    keep_rows = above.copy()
    # t0: the row (in file order) at which the group's count of scores >= s reaches capacity.
    ge = above | tie
    ge_rows = np.flatnonzero(ge)  # positions within `rows`, file order
    ge_g = g[ge_rows]
    ge_sorted = ge_rows[np.argsort(_small(ge_g, n_groups), kind="stable")]
    ge_g_sorted = g[ge_sorted]
    ge_starts = np.flatnonzero(np.r_[True, ge_g_sorted[1:] != ge_g_sorted[:-1]])
    t0 = np.full(n_groups, -1, dtype=np.int64)
    t0[ge_g_sorted[ge_starts]] = ge_sorted[ge_starts + capacity - 1]
    k_above = np.bincount(g[above], minlength=n_groups)
    candidates = np.flatnonzero(tie)
    candidates = candidates[candidates <= t0[g[candidates]]]
    if len(candidates):
        cg = g[candidates]
        ra = rows[candidates]
        b = boxes[ra]
        # Descending tuple (action, y1, x1, y2, x2, file position) within each keyframe.
        order = np.lexsort((-ra, -b[:, 2], -b[:, 3], -b[:, 0], -b[:, 1], -actions[ra], cg))
        cs = cg[order]
        cstarts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
        rank = np.arange(len(cs)) - np.repeat(cstarts, np.diff(np.r_[cstarts, len(cs)]))
        room = capacity - k_above[cs]
        keep_rows[candidates[order[rank < room]]] = True
    keep[rows] = keep_rows
    return keep


def _pair_iou(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of matching rows of ``det`` and ``gt`` (both ``(P, 4)`` ``x1, y1, x2, y2``).

    The official arithmetic exactly: no +1; intersection extents are taken in the boxes'
    dtype, clipped at 0 and multiplied in float64; areas in the boxes' dtype, their sum in
    that dtype, the union and the ratio in float64 (this matters only for float32 boxes).
    """
    zero = np.zeros(1, dtype=np.float64)
    ih = np.maximum(zero, np.minimum(det[:, 3], gt[:, 3]) - np.maximum(det[:, 1], gt[:, 1]))
    iw = np.maximum(zero, np.minimum(det[:, 2], gt[:, 2]) - np.maximum(det[:, 0], gt[:, 0]))
    inter = ih * iw
    area_d = (det[:, 3] - det[:, 1]) * (det[:, 2] - det[:, 0])
    area_g = (gt[:, 3] - gt[:, 1]) * (gt[:, 2] - gt[:, 0])
    union = (area_d + area_g).astype(np.float64) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def _segment_starts(sorted_codes: np.ndarray) -> np.ndarray:
    if len(sorted_codes) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])


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


def average_precision(
    cls: np.ndarray, tp: np.ndarray, num_gt: np.ndarray, keep_curves: bool = False
) -> tuple[np.ndarray, Optional[dict[int, tuple[np.ndarray, np.ndarray]]]]:
    """All-points interpolated AP of every class at once.

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
    starts = _segment_starts(cls)
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


# --------------------------------------------------------------------------- the evaluator


class _RowBoxes:
    """``(N, 4)`` boxes of the table rows ``rows``, gathered only when indexed."""

    def __init__(self, columns: list[np.ndarray], rows: np.ndarray):
        self.columns, self.rows = columns, rows

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        return np.column_stack([column[self.rows[index]] for column in self.columns])


def _require_columns(df: pd.DataFrame, name: str, needed: list[str]) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        from avadet.errors import AvadetError

        raise AvadetError(f"{name} table lacks the columns {missing}")


def evaluate_frame_map(
    gt: pd.DataFrame,
    pred: pd.DataFrame,
    labelmap: object,
    *,
    exclusions: Optional[pd.DataFrame] = None,
    protocol: Union[str, Protocol] = DEFAULT_PROTOCOL,
    keep_curves: bool = False,
) -> EvalResult:
    """Frame-mAP of ``pred`` against ``gt`` under ``protocol``.

    Args:
        gt: rows ``video_id, timestamp, x1, y1, x2, y2, action_id`` and optionally
            ``person_id`` (the 8th column; it orders gt boxes as in the official code). Pass
            every row, not only the evaluated classes: the latest ActivityNet protocol needs
            the keyframes of the whole file.
        pred: rows ``video_id, timestamp, x1, y1, x2, y2, action_id, score`` in file order.
        labelmap: the evaluated classes (a :class:`avadet.io.LabelMap`, a mapping id -> name
            or an iterable of ids); other classes are dropped from both tables first.
        exclusions: ``video_id, timestamp`` keyframes removed from both tables.
        protocol: a name from :data:`avadet.evaluation.protocols.PROTOCOLS`.
        keep_curves: keep per-class precision/recall arrays (for plots).
    Returns:
        :class:`EvalResult`. ``counts`` holds ``gt_rows``, ``gt_rows_other_classes``,
        ``gt_rows_excluded``, ``pred_rows``, ``pred_rows_other_classes``,
        ``pred_rows_low_score``, ``pred_rows_excluded``, ``pred_rows_over_cap``,
        ``pred_rows_invalid_box``, ``pred_rows_no_gt_keyframe`` (counted as false positives
        or ignored, per protocol), ``pred_rows_no_gt_video``, ``pred_keyframes_no_gt``,
        ``pred_videos_no_gt`` and ``pred_rows_evaluated``.
    """
    proto = get_protocol(protocol)
    _require_columns(gt, "ground-truth", ["video_id", "timestamp", *_BOX, "action_id"])
    _require_columns(pred, "prediction", ["video_id", "timestamp", *_BOX, "action_id", "score"])
    class_ids, names = _class_table(labelmap)
    num_classes = len(class_ids)
    counts: dict[str, int] = {"gt_rows": len(gt), "pred_rows": len(pred)}
    warnings: list[str] = []

    g_key, p_key, x_key = _keyframe_codes([gt, pred, exclusions])

    # Class filter first (read-time in the official code): other classes never count.
    g_cls = np.searchsorted(class_ids, gt["action_id"].to_numpy(np.int64))
    g_cls = np.minimum(g_cls, max(num_classes - 1, 0))
    g_in = (class_ids[g_cls] == gt["action_id"].to_numpy()) if num_classes else np.zeros(len(gt), bool)
    # Class index by table lookup (one gather instead of a binary search per row).
    p_act = pred["action_id"].to_numpy(np.int64)
    a_min, a_max = (int(p_act.min()), int(p_act.max())) if len(p_act) else (0, 0)
    top = max(a_max, int(class_ids[-1]) if num_classes else 0)
    if a_min >= 0 and top < 1_000_000:
        lut = np.full(top + 1, -1, dtype=np.int32)  # small dtypes: fewer pages to touch
        lut[class_ids] = np.arange(num_classes)
        p_cls = lut[p_act]
    else:  # odd ids (negative or huge): binary search
        pos = np.minimum(np.searchsorted(class_ids, p_act), max(num_classes - 1, 0))
        found = class_ids[pos] == p_act if num_classes else np.zeros(len(p_act), dtype=bool)
        p_cls = np.where(found, pos, -1)
    p_in = p_cls >= 0
    counts["gt_rows_other_classes"] = int((~g_in).sum())
    counts["pred_rows_other_classes"] = int((~p_in).sum())
    gt_file_keys = np.unique(g_key)  # every keyframe of the gt file, any class

    g_rows = np.flatnonzero(g_in)
    g_key, g_cls = g_key[g_rows], g_cls[g_rows]
    p_rows = np.flatnonzero(p_in)
    p_key, p_cls = p_key[p_rows], p_cls[p_rows]
    p_score = pred["score"].to_numpy(np.float64)[p_rows]

    # Row filters that need no ordering, applied in one pass: NaN scores, the score floor,
    # excluded keyframes.
    finite = ~np.isnan(p_score)
    counts["pred_rows_nan_score"] = int((~finite).sum())
    if counts["pred_rows_nan_score"]:
        # The official heap and sorts have no consistent answer for NaN; leave them out.
        warnings.append(f"{counts['pred_rows_nan_score']} prediction rows with a NaN score ignored")
    keep = finite
    if proto.min_score is not None:
        high = p_score >= proto.min_score
        counts["pred_rows_low_score"] = int((finite & ~high).sum())
        keep = keep & high
    else:
        counts["pred_rows_low_score"] = 0

    if x_key is not None and len(x_key):
        x_key = np.unique(x_key)
        g_excl = np.isin(g_key, x_key)
        p_excl = np.isin(p_key, x_key)
    else:
        g_excl = np.zeros(len(g_key), dtype=bool)
        p_excl = np.zeros(len(p_key), dtype=bool)
    counts["gt_rows_excluded"] = int(g_excl.sum())
    counts["pred_rows_excluded"] = int((keep & p_excl).sum())
    if not keep.all():
        p_rows, p_key, p_cls, p_score = p_rows[keep], p_key[keep], p_cls[keep], p_score[keep]
        p_excl = p_excl[keep]

    counted = np.ones(len(g_key), dtype=bool) if proto.excluded_gt_are_misses else ~g_excl
    num_gt = np.bincount(g_cls[counted], minlength=num_classes).astype(np.int64)
    g_rows, g_key, g_cls = g_rows[~g_excl], g_key[~g_excl], g_cls[~g_excl]
    if x_key is not None:
        gt_file_keys = gt_file_keys[~np.isin(gt_file_keys, x_key)]

    box_columns = [pred[c].to_numpy(np.float64) for c in _BOX]

    # At most `cap` predictions per keyframe, over all classes (official heap). The cap works
    # per keyframe, so excluded keyframes can ride along and leave with the capped rows.
    keep = ~p_excl
    if proto.cap is not None:
        capped = heap_cap_mask(
            p_key, p_score, class_ids[p_cls], _RowBoxes(box_columns, p_rows), proto.cap
        )
        counts["pred_rows_over_cap"] = int((keep & ~capped).sum())
        keep &= capped
    else:
        counts["pred_rows_over_cap"] = 0
    p_rows, p_key, p_cls, p_score = p_rows[keep], p_key[keep], p_cls[keep], p_score[keep]
    p_box = np.column_stack([column[p_rows] for column in box_columns])

    dtype = np.float32 if proto.float32 else np.float64
    p_box = p_box.astype(dtype)
    g_box = np.column_stack([gt[c].to_numpy(np.float64)[g_rows] for c in _BOX]).astype(dtype)

    # Invalid predicted boxes are neither TP nor FP (dropped after the cap).
    if proto.drop_degenerate_boxes:
        valid = (p_box[:, 0] < p_box[:, 2]) & (p_box[:, 1] < p_box[:, 3])
    else:
        valid = (p_box[:, 0] <= p_box[:, 2]) & (p_box[:, 1] <= p_box[:, 3])
    counts["pred_rows_invalid_box"] = int((~valid).sum())
    p_rows, p_key, p_cls, p_score, p_box = (
        p_rows[valid], p_key[valid], p_cls[valid], p_score[valid], p_box[valid]
    )

    # Predictions on keyframes the gt does not have.
    g_eval_keys = np.unique(g_key)
    no_gt = ~np.isin(p_key, g_eval_keys)
    if proto.unmatched_keyframes == "ignore_file":
        drop = ~np.isin(p_key, gt_file_keys)
    elif proto.unmatched_keyframes == "ignore_evaluated":
        drop = no_gt
    else:
        drop = np.zeros(len(p_key), dtype=bool)
    counts["pred_rows_no_gt_keyframe"] = int(no_gt.sum())
    counts["pred_keyframes_no_gt"] = int(len(np.unique(p_key[no_gt])))
    gt_videos = pd.unique(gt["video_id"].to_numpy(object)) if len(gt) else np.zeros(0, object)
    no_video = np.zeros(len(p_rows), dtype=bool)
    if no_gt.any():
        vids = pred["video_id"].iloc[p_rows[no_gt]].to_numpy(object)
        missing_video = ~pd.Series(vids).isin(gt_videos).to_numpy()
        no_video[np.flatnonzero(no_gt)[missing_video]] = True
        counts["pred_videos_no_gt"] = int(len(pd.unique(vids[missing_video])))
    else:
        counts["pred_videos_no_gt"] = 0
    counts["pred_rows_no_gt_video"] = int(no_video.sum())
    if no_gt.any():
        fate = {
            "fp": "counted as false positives",
            "ignore_file": f"{int(drop.sum())} of them ignored (keyframes absent from the gt "
            "file), the rest counted as false positives",
            "ignore_evaluated": "ignored",
        }[proto.unmatched_keyframes]
        warnings.append(
            f"{counts['pred_rows_no_gt_keyframe']} prediction rows on "
            f"{counts['pred_keyframes_no_gt']} keyframes without ground truth "
            f"({counts['pred_rows_no_gt_video']} rows on {counts['pred_videos_no_gt']} videos "
            f"the ground truth does not have): {fate}"
        )
    keep = ~drop
    p_rows, p_key, p_cls, p_score, p_box = (
        p_rows[keep], p_key[keep], p_cls[keep], p_score[keep], p_box[keep]
    )
    counts["pred_rows_evaluated"] = len(p_rows)

    # Matching, per (keyframe, class). Groups are ordered by (keyframe, class).
    width = max(num_classes, 1)
    p_group = p_key * width + p_cls
    g_group = g_key * width + g_cls
    # Arrays are still in file order (p_rows ascending): stable sorts keep file order on ties.
    by_score = np.argsort(-p_score, kind="stable")
    d_first = by_score if proto.match_by_score else np.arange(len(p_score))
    d_order = _stable_order([p_cls, p_key - (p_key.min() if len(p_key) else 0)], d_first)
    if proto.gt_by_person_id and "person_id" in gt.columns:
        g_pid = gt["person_id"].to_numpy(np.float64)[g_rows]
        g_order = np.lexsort((g_rows, -g_pid, g_group))
    else:
        g_order = np.lexsort((g_rows, g_group))
    tp_sorted = match_detections(
        p_group[d_order], p_box[d_order], g_group[g_order], g_box[g_order]
    )
    tp = np.empty(len(p_rows), dtype=bool)
    tp[d_order] = tp_sorted

    # Ranking per class: descending score (float32 under MMAction2), ties in file order.
    if proto.float32:
        by_score = np.argsort(-p_score.astype(np.float32), kind="stable")
    r_order = _stable_order([p_cls], by_score)
    ap, curves = average_precision(p_cls[r_order], tp[r_order], num_gt, keep_curves)

    num_pred = np.bincount(p_cls, minlength=num_classes)
    if proto.skip_classes_without_detections:
        ap[num_pred == 0] = np.nan
    counted_classes = ~np.isnan(ap)
    mean_ap = float(ap[counted_classes].mean()) if counted_classes.any() else float("nan")
    if not (num_gt > 0).any():
        warnings.append("no ground truth of any evaluated class: mAP is undefined (NaN)")

    ids = [int(i) for i in class_ids]
    return EvalResult(
        map=mean_ap,
        per_class={i: float(a) for i, a in zip(ids, ap)},
        num_gt={i: int(n) for i, n in zip(ids, num_gt)},
        num_pred={i: int(n) for i, n in zip(ids, num_pred)},
        protocol=proto.name,
        class_names={i: names[i] for i in ids},
        counts=counts,
        warnings=warnings,
        curves=None if curves is None else {ids[c]: v for c, v in curves.items()},
    )


def evaluate_files(
    gt_path: PathLike,
    pred_path: PathLike,
    labelmap_path: PathLike,
    exclusions_path: Optional[PathLike] = None,
    protocol: Union[str, Protocol] = DEFAULT_PROTOCOL,
    *,
    keep_curves: bool = False,
) -> EvalResult:
    """:func:`evaluate_frame_map` on AVA files (gt, predictions, ``.pbtxt``, exclusions).

    Malformed files raise :class:`avadet.errors.FormatError` naming the file and line. The gt
    is read leniently (boxes as they are), like the official code.
    """
    from avadet.io import read_annotations, read_exclusions, read_labelmap, read_predictions

    labelmap = read_labelmap(labelmap_path)
    gt = read_annotations(gt_path, strict=False)
    pred = read_predictions(pred_path)
    exclusions = read_exclusions(exclusions_path) if exclusions_path is not None else None
    return evaluate_frame_map(
        gt, pred, labelmap, exclusions=exclusions, protocol=protocol, keep_curves=keep_curves
    )
