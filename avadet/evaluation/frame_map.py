"""Frame-level mAP (AVA), vectorised, reproducing the official evaluator rule by rule.

The official ActivityNet code loops over keyframes, classes and detections in Python; here
every step works on whole arrays, one function per step (:func:`evaluate_frame_map` runs them
in order):

1. keyframes ``(video_id, timestamp)`` become one int64 code and classes an index
   (:mod:`avadet.evaluation.tables`); the class filter, the exclusions and the per-protocol
   keyframe rules are ``np.isin`` masks;
2. the 50-per-keyframe cap reproduces the official heap
   (:func:`~avadet.evaluation.heap_cap.heap_cap_mask`; :func:`evaluate_files` applies steps
   1-2 while it reads the prediction file, :mod:`avadet.evaluation.capped_reading`);
3. each detection is paired with every gt row of its (keyframe, class) (a ragged expansion:
   AVA has a handful of gt rows per keyframe and class), IoU is computed per pair and the best
   gt per detection with segment reductions (:mod:`avadet.evaluation.matching`);
4. greedy matching without fall-back is sequential in the official code, but it has a closed
   form: a detection is a true positive iff its best IoU is >= 0.5 and no earlier detection of
   the same (keyframe, class) had the same best gt with IoU >= 0.5 (that earlier detection
   either matched the gt or found it matched, and a detection never falls back to its
   second-best gt). That is a "first occurrence" test over best-gt ids;
5. AP for all classes at once with segment-wise cumulative sums and a reverse cumulative
   maximum (:mod:`avadet.evaluation.ap`).

Ties. The official code sorts with ``np.argsort`` (not stable) and a heap, so equal scores
have no defined order. avadet fixes one: detections of equal score are taken in file order
(first row first), both for matching within a keyframe and for the AP ranking of a class; gt
boxes of equal IoU are taken in the official gt order (descending 8th column, a missing one
read as 1.0, then file order). See docs/evaluation.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np
import pandas as pd

from avadet.boxes import BOX_COLUMNS, PREDICTION_COLUMNS
from avadet.evaluation.ap import average_precision
from avadet.evaluation.capped_reading import read_capped_predictions
from avadet.evaluation.heap_cap import heap_cap_mask
from avadet.evaluation.matching import match_detections
from avadet.evaluation.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol
from avadet.evaluation.result import EvalResult
from avadet.evaluation.segments import stable_order
from avadet.evaluation.tables import (
    GT_COLUMNS,
    class_table,
    keyframe_codes,
    prediction_classes,
    require_columns,
)

PathLike = Union[str, Path]


@dataclass
class _Rows:
    """The rows of one table still in play, as parallel arrays in file order.

    ``rows``: ``(N,)`` index into the table; ``key``: ``(N,)`` int64 keyframe code; ``cls``:
    ``(N,)`` class index; ``score``: ``(N,)`` float64 (predictions only); ``box``: ``(N, 4)``
    ``x1, y1, x2, y2`` in the protocol's dtype, once gathered.
    """

    rows: np.ndarray
    key: np.ndarray
    cls: np.ndarray
    score: Optional[np.ndarray] = None
    box: Optional[np.ndarray] = None

    def take(self, mask: np.ndarray) -> _Rows:
        """The rows where ``mask`` (``(N,)`` bool) holds."""
        return _Rows(*(None if a is None else a[mask]
                       for a in (self.rows, self.key, self.cls, self.score, self.box)))


class _RowBoxes:
    """``(N, 4)`` boxes of the table rows ``rows``, gathered only when indexed."""

    def __init__(self, columns: list[np.ndarray], rows: np.ndarray):
        self.columns, self.rows = columns, rows

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        return np.column_stack([column[self.rows[index]] for column in self.columns])


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
        ``pred_rows_nan_score`` (NaN or infinite), ``pred_rows_low_score``,
        ``pred_rows_excluded``, ``pred_rows_over_cap``,
        ``pred_rows_invalid_box``, ``pred_rows_no_gt_keyframe`` (counted as false positives
        or ignored, per protocol), ``pred_rows_no_gt_video``, ``pred_keyframes_no_gt``,
        ``pred_videos_no_gt`` and ``pred_rows_evaluated``.
    """
    return _evaluate(gt, pred, labelmap, exclusions, get_protocol(protocol), keep_curves, {})


def _evaluate(
    gt: pd.DataFrame,
    pred: pd.DataFrame,
    labelmap: object,
    exclusions: Optional[pd.DataFrame],
    proto: Protocol,
    keep_curves: bool,
    carried: Mapping[str, int],
) -> EvalResult:
    """:func:`evaluate_frame_map`; ``carried``: counts of prediction rows a reader already
    dropped (``pred_rows`` is then the file's row count), added to the steps' own."""
    require_columns(gt, "ground-truth", GT_COLUMNS)
    require_columns(pred, "prediction", PREDICTION_COLUMNS)
    class_ids, names = class_table(labelmap)
    # Every step adds its counts and warnings in order; the dicts keep that order.
    counts: dict[str, int] = {"gt_rows": len(gt), "pred_rows": carried.get("pred_rows", len(pred))}
    warnings: list[str] = []

    g_key, p_key, x_key = keyframe_codes([gt, pred, exclusions])
    g, p, gt_file_keys = _select_classes(gt, pred, g_key, p_key, class_ids, counts, carried)
    g, p, p_excl, num_gt, gt_file_keys = _drop_scores_and_exclusions(
        g, p, x_key, gt_file_keys, len(class_ids), proto, counts, warnings, carried
    )
    g, p = _cap_and_gather_boxes(gt, pred, g, p, p_excl, class_ids, proto, counts, carried)
    p = _drop_unmatched_keyframes(gt, pred, g, p, gt_file_keys, proto, counts, warnings)
    counts["pred_rows_evaluated"] = len(p.rows)

    # Arrays are still in file order (p.rows ascending): stable sorts keep file order on ties.
    by_score = np.argsort(-p.score, kind="stable")
    tp = _true_positives(gt, g, p, by_score, len(class_ids), proto)
    # Ranking per class: descending score (float32 under MMAction2), ties in file order.
    if proto.float32:
        by_score = np.argsort(-p.score.astype(np.float32), kind="stable")
    r_order = stable_order([p.cls], by_score)
    ap, curves = average_precision(p.cls[r_order], tp[r_order], num_gt, keep_curves)
    return _result(ap, curves, num_gt, p.cls, class_ids, names, proto, counts, warnings)


def _select_classes(
    gt: pd.DataFrame,
    pred: pd.DataFrame,
    g_key: np.ndarray,
    p_key: np.ndarray,
    class_ids: np.ndarray,
    counts: dict[str, int],
    carried: Mapping[str, int],
) -> tuple[_Rows, _Rows, np.ndarray]:
    """The rows of evaluated classes (the official code filters at read time: other classes
    never count), and the keyframes of the whole gt file.

    Args:
        g_key / p_key: ``(len(gt),)`` / ``(len(pred),)`` keyframe codes.
        class_ids: ``(C,)`` sorted evaluated ids.
    Returns:
        gt rows, prediction rows (with scores), ``(K,)`` sorted keyframe codes of every gt
        row of any class.
    """
    num_classes = len(class_ids)
    g_cls = np.searchsorted(class_ids, gt["action_id"].to_numpy(np.int64))
    g_cls = np.minimum(g_cls, max(num_classes - 1, 0))
    g_in = (class_ids[g_cls] == gt["action_id"].to_numpy()) if num_classes else np.zeros(len(gt), bool)
    p_cls = prediction_classes(pred["action_id"].to_numpy(np.int64), class_ids)
    p_in = p_cls >= 0
    counts["gt_rows_other_classes"] = int((~g_in).sum())
    counts["pred_rows_other_classes"] = carried.get("pred_rows_other_classes", 0) + int(
        (~p_in).sum())
    gt_file_keys = np.unique(g_key)  # every keyframe of the gt file, any class

    g_rows = np.flatnonzero(g_in)
    p_rows = np.flatnonzero(p_in)
    g = _Rows(g_rows, g_key[g_rows], g_cls[g_rows])
    p = _Rows(p_rows, p_key[p_rows], p_cls[p_rows], pred["score"].to_numpy(np.float64)[p_rows])
    return g, p, gt_file_keys


def _drop_scores_and_exclusions(
    g: _Rows,
    p: _Rows,
    x_key: Optional[np.ndarray],
    gt_file_keys: np.ndarray,
    num_classes: int,
    proto: Protocol,
    counts: dict[str, int],
    warnings: list[str],
    carried: Mapping[str, int],
) -> tuple[_Rows, _Rows, np.ndarray, np.ndarray, np.ndarray]:
    """The row filters that need no ordering, in one pass: NaN scores, the score floor,
    excluded keyframes (gt rows leave; predictions are only marked, see the cap).

    Returns:
        gt rows, prediction rows, ``(P,)`` bool "on an excluded keyframe" per prediction row,
        ``(C,)`` int64 gt count per class as the protocol counts it, the gt file's keyframes
        less the excluded ones.
    """
    # The official heap and sorts have no consistent answer for NaN, and +-inf breaks the
    # cap (the heap reports "negative elements"): leave them out, counted and said.
    finite = np.isfinite(p.score)
    counts["pred_rows_nan_score"] = carried.get("pred_rows_nan_score", 0) + int((~finite).sum())
    if counts["pred_rows_nan_score"]:
        warnings.append(f"{counts['pred_rows_nan_score']} prediction rows with a NaN or "
                        "infinite score ignored")
    keep = finite
    if proto.min_score is not None:
        high = p.score >= proto.min_score
        counts["pred_rows_low_score"] = int((finite & ~high).sum())
        keep = keep & high
    else:
        counts["pred_rows_low_score"] = 0
    counts["pred_rows_low_score"] += carried.get("pred_rows_low_score", 0)

    if x_key is not None and len(x_key):
        x_key = np.unique(x_key)
        g_excl = np.isin(g.key, x_key)
        p_excl = np.isin(p.key, x_key)
    else:
        g_excl = np.zeros(len(g.key), dtype=bool)
        p_excl = np.zeros(len(p.key), dtype=bool)
    counts["gt_rows_excluded"] = int(g_excl.sum())
    counts["pred_rows_excluded"] = carried.get("pred_rows_excluded", 0) + int(
        (keep & p_excl).sum())
    if not keep.all():
        p, p_excl = p.take(keep), p_excl[keep]

    counted = np.ones(len(g.key), dtype=bool) if proto.excluded_gt_are_misses else ~g_excl
    num_gt = np.bincount(g.cls[counted], minlength=num_classes).astype(np.int64)
    g = g.take(~g_excl)
    if x_key is not None:
        gt_file_keys = gt_file_keys[~np.isin(gt_file_keys, x_key)]
    return g, p, p_excl, num_gt, gt_file_keys


def _cap_and_gather_boxes(
    gt: pd.DataFrame,
    pred: pd.DataFrame,
    g: _Rows,
    p: _Rows,
    p_excl: np.ndarray,
    class_ids: np.ndarray,
    proto: Protocol,
    counts: dict[str, int],
    carried: Mapping[str, int],
) -> tuple[_Rows, _Rows]:
    """At most ``proto.cap`` predictions per keyframe over all classes (the official heap),
    then the boxes of both tables in the protocol's dtype, less invalid predicted boxes.

    The cap works per keyframe, so excluded keyframes (``p_excl``, ``(P,)`` bool) ride along
    and leave with the capped rows. Returns gt and prediction rows with ``box`` set.
    """
    box_columns = [pred[c].to_numpy(np.float64) for c in BOX_COLUMNS]
    keep = ~p_excl
    if proto.cap is not None:
        capped = heap_cap_mask(
            p.key, p.score, class_ids[p.cls], _RowBoxes(box_columns, p.rows), proto.cap
        )
        counts["pred_rows_over_cap"] = int((keep & ~capped).sum())
        keep &= capped
    else:
        counts["pred_rows_over_cap"] = 0
    counts["pred_rows_over_cap"] += carried.get("pred_rows_over_cap", 0)
    p = p.take(keep)
    dtype = np.float32 if proto.float32 else np.float64
    p.box = np.column_stack([column[p.rows] for column in box_columns]).astype(dtype)
    g.box = np.column_stack(
        [gt[c].to_numpy(np.float64)[g.rows] for c in BOX_COLUMNS]
    ).astype(dtype)

    # Invalid predicted boxes are neither TP nor FP (dropped after the cap).
    b = p.box
    if proto.drop_degenerate_boxes:
        valid = (b[:, 0] < b[:, 2]) & (b[:, 1] < b[:, 3])
    else:
        valid = (b[:, 0] <= b[:, 2]) & (b[:, 1] <= b[:, 3])
    counts["pred_rows_invalid_box"] = int((~valid).sum())
    return g, p.take(valid)


def _drop_unmatched_keyframes(
    gt: pd.DataFrame,
    pred: pd.DataFrame,
    g: _Rows,
    p: _Rows,
    gt_file_keys: np.ndarray,
    proto: Protocol,
    counts: dict[str, int],
    warnings: list[str],
) -> _Rows:
    """Predictions on keyframes the gt does not have: counted, and dropped or kept (as false
    positives) per ``proto.unmatched_keyframes``. Returns the prediction rows evaluated."""
    no_gt = ~np.isin(p.key, np.unique(g.key))
    if proto.unmatched_keyframes == "ignore_file":
        drop = ~np.isin(p.key, gt_file_keys)
    elif proto.unmatched_keyframes == "ignore_evaluated":
        drop = no_gt
    else:
        drop = np.zeros(len(p.key), dtype=bool)
    counts["pred_rows_no_gt_keyframe"] = int(no_gt.sum())
    counts["pred_keyframes_no_gt"] = int(len(np.unique(p.key[no_gt])))
    gt_videos = pd.unique(gt["video_id"].to_numpy(object)) if len(gt) else np.zeros(0, object)
    no_video = np.zeros(len(p.rows), dtype=bool)
    if no_gt.any():
        vids = pred["video_id"].iloc[p.rows[no_gt]].to_numpy(object)
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
    return p.take(~drop)


def _true_positives(
    gt: pd.DataFrame,
    g: _Rows,
    p: _Rows,
    by_score: np.ndarray,
    num_classes: int,
    proto: Protocol,
) -> np.ndarray:
    """``(P,)`` bool true-positive flag of each prediction row, matched per (keyframe, class).

    Args:
        by_score: ``(P,)`` the prediction rows by descending score, ties in file order.
    """
    width = max(num_classes, 1)
    p_group = p.key * width + p.cls
    g_group = g.key * width + g.cls
    d_first = by_score if proto.match_by_score else np.arange(len(p.score))
    d_order = stable_order([p.cls, p.key - (p.key.min() if len(p.key) else 0)], d_first)
    if proto.gt_by_person_id and "person_id" in gt.columns:
        g_order = np.lexsort((g.rows, -official_gt_score(gt["person_id"].to_numpy()[g.rows]),
                              g_group))
    else:
        g_order = np.lexsort((g.rows, g_group))
    tp_sorted = match_detections(
        p_group[d_order], p.box[d_order], g_group[g_order], g.box[g_order]
    )
    tp = np.empty(len(p.rows), dtype=bool)
    tp[d_order] = tp_sorted
    return tp


def official_gt_score(person_id: np.ndarray) -> np.ndarray:
    """The gt's 8th column as the official reader sorts it: ``(N,)`` float64, descending.

    The official code reads column 8 of every row as a score, 1.0 when the row has only 7
    columns. The readers write a missing person id as -1, so -1 sorts as 1.0 (between
    person 0 and person 2), not last; an explicit -1 in column 8 is the reader's "no person
    id" too (AVA person ids are >= 0).
    """
    score = np.asarray(person_id, dtype=np.float64)
    return np.where(score == -1, 1.0, score)


def _result(
    ap: np.ndarray,
    curves: Optional[dict[int, tuple[np.ndarray, np.ndarray]]],
    num_gt: np.ndarray,
    p_cls: np.ndarray,
    class_ids: np.ndarray,
    names: dict[int, str],
    proto: Protocol,
    counts: dict[str, int],
    warnings: list[str],
) -> EvalResult:
    """The mAP over the classes the protocol counts, and everything keyed by class id.

    Args:
        ap: ``(C,)`` AP per class index (changed in place). num_gt: ``(C,)``.
        p_cls: ``(P,)`` class index of each evaluated prediction.
    """
    num_classes = len(class_ids)
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
    chunk_rows: Optional[int] = None,
) -> EvalResult:
    """:func:`evaluate_frame_map` on AVA files (gt, predictions, ``.pbtxt``, exclusions).

    Malformed files raise :class:`avadet.errors.FormatError` naming the file and line. The gt
    is read leniently (boxes as they are), like the official code. Under a protocol with a
    cap, the prediction file is read ``chunk_rows`` rows at a time (default 1,000,000) and
    only each keyframe's capped rows are kept, as the official reader does
    (:mod:`avadet.evaluation.capped_reading`): the result is that of reading it whole, in a
    fraction of the memory.
    """
    from avadet.io import read_annotations, read_exclusions, read_labelmap, read_predictions

    proto = get_protocol(protocol)
    labelmap = read_labelmap(labelmap_path)
    gt = read_annotations(gt_path, strict=False)
    exclusions = read_exclusions(exclusions_path) if exclusions_path is not None else None
    if proto.cap is None:
        pred, carried = read_predictions(pred_path), {}
    else:
        pred, carried = read_capped_predictions(
            pred_path, class_table(labelmap)[0], exclusions, proto, chunk_rows=chunk_rows
        )
    return _evaluate(gt, pred, labelmap, exclusions, proto, keep_curves, carried)
