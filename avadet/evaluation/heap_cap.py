"""The official cap of 50 predictions per keyframe, in closed form over whole arrays.

The official reader keeps a min-heap per keyframe while it reads the prediction file;
:func:`heap_cap_mask` computes which rows that heap ends up holding without replaying it.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from avadet.evaluation.segments import segment_starts


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
    keep = np.ones(len(keys), dtype=bool)
    crowded = _crowded_rows(keys, scores, capacity)
    if crowded is None:
        return keep
    rows, g, s, n_groups = crowded
    thr = _kth_largest_per_group(g, s, n_groups, capacity)
    t = thr[g]
    above = s > t
    keep_rows = above.copy()
    ties = _surviving_ties(g, above, s == t, rows, actions, boxes, n_groups, capacity)
    keep_rows[ties] = True
    keep[rows] = keep_rows
    return keep


def _crowded_rows(
    keys: np.ndarray, scores: np.ndarray, capacity: int
) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """The rows of keyframes holding more than ``capacity`` rows, or None when there are none.

    Args:
        keys: ``(N,)`` int64 keyframe codes. scores: ``(N,)`` float64.
    Returns:
        ``rows`` ``(M,)`` positions in file order, ``g`` ``(M,)`` int32 crowded-keyframe index
        in ``[0, n_groups)``, ``s`` ``(M,)`` their scores, and ``n_groups``.
    """
    n = len(keys)
    if n == 0:
        return None
    k_min = int(keys.min())
    span = int(keys.max()) - k_min + 1
    if span <= 4 * n + 1024:  # dense codes (the usual case): count without sorting
        inverse = keys - k_min
        sizes = np.bincount(inverse, minlength=span)
    else:
        _, inverse, sizes = np.unique(keys, return_inverse=True, return_counts=True)
    crowded = sizes > capacity
    if not crowded.any():
        return None
    compact = (np.cumsum(crowded) - 1).astype(np.int32)  # crowded keyframe -> 0..n_groups-1
    n_groups = int(crowded.sum())
    if crowded.all():  # the usual case at AVA scale: every keyframe is over the cap
        return np.arange(n), compact[inverse], scores, n_groups
    rows = np.flatnonzero(crowded[inverse])  # file order
    return rows, compact[inverse[rows]], scores[rows], n_groups


def _surviving_ties(
    g: np.ndarray,
    above: np.ndarray,
    tie: np.ndarray,
    rows: np.ndarray,
    actions: np.ndarray,
    boxes: np.ndarray,
    n_groups: int,
    capacity: int,
) -> np.ndarray:
    """Positions (into ``g``) of the rows tied at their keyframe's threshold that stay.

    Args:
        g: ``(M,)`` crowded-keyframe index of each row, rows in file order.
        above / tie: ``(M,)`` bool, the row scores above / exactly at the threshold.
        rows: ``(M,)`` the rows' positions in the caller's arrays (``actions``, ``boxes``).
    Returns:
        ``(T,)`` int64 positions.
    """
    # t0: the row (in file order) at which the group's count of scores >= s reaches capacity.
    ge_rows = np.flatnonzero(above | tie)  # positions within `rows`, file order
    ge_sorted = ge_rows[np.argsort(_small(g[ge_rows], n_groups), kind="stable")]
    ge_g_sorted = g[ge_sorted]
    ge_starts = segment_starts(ge_g_sorted)
    t0 = np.full(n_groups, -1, dtype=np.int64)
    t0[ge_g_sorted[ge_starts]] = ge_sorted[ge_starts + capacity - 1]
    k_above = np.bincount(g[above], minlength=n_groups)
    candidates = np.flatnonzero(tie)
    candidates = candidates[candidates <= t0[g[candidates]]]
    if not len(candidates):
        return candidates
    cg = g[candidates]
    ra = rows[candidates]
    b = boxes[ra]
    # Descending tuple (action, y1, x1, y2, x2, file position) within each keyframe.
    order = np.lexsort((-ra, -b[:, 2], -b[:, 3], -b[:, 0], -b[:, 1], -actions[ra], cg))
    cs = cg[order]
    cstarts = segment_starts(cs)
    rank = np.arange(len(cs)) - np.repeat(cstarts, np.diff(np.r_[cstarts, len(cs)]))
    room = capacity - k_above[cs]
    return candidates[order[rank < room]]


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
    starts = segment_starts(cg)
    groups = cg[starts]
    thr = np.empty(n_groups, dtype=np.float64)
    thr[groups] = cs[starts + (k - rows_above[groups]) - 1]
    return thr
