"""Checks of the detector's person-box files used for testing (and for training with
detections): malformed rows, score ranges, the video ids and keyframes they cover, and the
recall of the gt persons at IoU 0.5 above the configured score threshold."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from avadet.doctor.context import DataContext
from avadet.doctor.findings import Finding, rows_finding, strict_reader_findings
from avadet.doctor.tables import BOX, KEY, RawTable, best_iou, read_raw_table
from avadet.errors import FormatError
from avadet.io import read_person_boxes
from avadet.io.ava_csv import BOX_TOLERANCE

# Person boxes: recall of the gt at IoU 0.5 below these is an error / a warning.
RECALL_ERROR, RECALL_WARNING = 0.5, 0.9
MATCH_IOU = 0.5


def check_person_boxes(ctx: DataContext) -> list[Finding]:
    """The detector box files used for testing (and training with detections)."""
    data, out = ctx.cfg.data, []
    plan = [("val", data.test_detection_score, "data.test_detection_score")]
    if data.train_use_detections:
        plan.insert(0, ("train", data.train_detection_score, "data.train_detection_score"))
    for split, threshold, knob in plan:
        path = ctx.path(f"{split}_boxes")
        if path is None:
            out.append(Finding(
                "info", "boxes.none", f"data.{split}_boxes", 0,
                f"no {split} person-box file: the {split} keyframes use the gt boxes (an oracle "
                "detector; the mAP is an upper bound)", f"set data.{split}_boxes to test on detections"))
            continue
        if not path.is_file():
            out.append(Finding(
                "error", "boxes.missing", str(path), 1,
                f"the {split} person-box file does not exist; "
                + ("training with detections" if split == "train" else "testing") + " fails",
                f"write detector boxes there, or set data.{split}_boxes= (empty) to use gt boxes"))
            continue
        try:
            table = read_raw_table(path, action_required=False)
        except FormatError as exc:
            out.append(Finding("error", "boxes.unreadable", exc.path, 1, exc.reason,
                               "re-export the file as UTF-8 text"))
            continue
        out += _box_file_findings(ctx, split, table, threshold, knob)
    return out


def _box_file_findings(ctx: DataContext, split: str, table: RawTable, threshold: float,
                       knob: str) -> list[Finding]:
    """Everything about one split's box file; ``knob`` names the config key of ``threshold``."""
    out: list[Finding] = []
    path = str(table.path)
    bad = table.malformed
    if bad.any():
        out.append(Finding(
            "error", "boxes.malformed", path, int(bad.sum()),
            f"{int(bad.sum())} rows cannot be parsed; the reader stops at the first",
            "rows must be video_id,timestamp,x1,y1,x2,y2,-1,score", table.examples(bad)))
    rows = table.rows[~bad]
    if rows.empty:
        out.append(Finding("error", "boxes.empty", path, 0, f"the {split} box file has no rows",
                           "write detector boxes"))
        return out
    found, invalid = _invalid_boxes(table, rows)
    out += found
    out += strict_reader_findings(table.path, read_person_boxes, "boxes.rejected", out)
    scores = rows["last"].fillna(1.0).to_numpy()
    out += _score_findings(ctx, split, path, scores, threshold, knob)
    gt = _evaluated_gt(ctx, split)
    if gt is None:
        return out
    out += _video_id_findings(split, path, gt, rows)
    kept = rows[(scores >= threshold) & ~invalid]
    return out + _recall_findings(ctx, split, path, gt, kept, threshold, knob)


def _invalid_boxes(table: RawTable, rows: pd.DataFrame) -> tuple[list[Finding], np.ndarray]:
    """Boxes outside ``[0, 1]``, empty or inverted among the parsed ``rows`` of ``table``: a
    finding per kind present, and ``(R,)`` bool over ``rows``, the invalid ones."""
    out = []
    x1, y1, x2, y2 = (rows[c].to_numpy() for c in BOX)
    lo, hi = -BOX_TOLERANCE, 1.0 + BOX_TOLERANCE
    outside = (np.minimum.reduce([x1, y1, x2, y2]) < lo) | (np.maximum.reduce([x1, y1, x2, y2]) > hi)
    inverted = (x2 <= x1) | (y2 <= y1)
    for mask, check, what in ((outside, "boxes.box_range", "boxes outside [0, 1]"),
                              (inverted, "boxes.box_inverted", "boxes with x2 <= x1 or y2 <= y1")):
        if mask.any():
            out.append(rows_finding("error", check, table, ~table.malformed, mask,
                                    f"{what}; the reader rejects the file",
                                    "normalise boxes to [0, 1] as x1,y1,x2,y2"))
    return out, outside | inverted


def _score_findings(ctx: DataContext, split: str, path: str, scores: np.ndarray,
                    threshold: float, knob: str) -> list[Finding]:
    """Column 8 holding person ids instead of scores, scores outside ``[0, 1]``, no score at
    or above the threshold. ``scores``: ``(R,)`` float64, 1.0 where a row has none."""
    out = []
    ctx.stats[f"{split}_box_scores"] = {
        "rows": int(len(scores)),
        **{f"p{q}": round(float(np.percentile(scores, q)), 4) for q in (5, 25, 50, 75, 95)},
        f"at_or_above_{threshold:g}": int((scores >= threshold).sum()),
    }
    integral = np.all(scores == np.floor(scores))
    if integral and scores.max() > 1:
        out.append(Finding(
            "error", "boxes.scores_are_ids", path, int(len(scores)),
            "column 8 holds integers > 1: this looks like a gt file (person ids), not detector "
            "scores", f"point data.{split}_boxes at the detector's output"))
    elif scores.max() > 1 or scores.min() < 0:
        n = int(((scores > 1) | (scores < 0)).sum())
        out.append(Finding("warning", "boxes.score_range", path, n,
                           f"{n} scores outside [0, 1]; the threshold {knob} assumes probabilities",
                           f"rescale the scores or change {knob}"))
    if (scores >= threshold).sum() == 0:
        out.append(Finding(
            "error", "boxes.below_threshold", path, int(len(scores)),
            f"no box scores >= {knob} = {threshold:g} (median score {np.median(scores):.3f}): "
            f"every {split} keyframe is empty", f"lower {knob}"))
    return out


def _evaluated_gt(ctx: DataContext, split: str) -> Optional[pd.DataFrame]:
    """The split's parsed gt rows less those on excluded keyframes; None without gt."""
    gt = ctx.gt.get(split)
    if gt is None or gt.empty:
        return None
    excl = ctx.exclusions.get(split)
    if excl is not None and len(excl):
        marked = gt.merge(excl[KEY].drop_duplicates().assign(_x=True), on=KEY, how="left")
        gt = gt[marked["_x"].isna().to_numpy()]
    return gt


def _video_id_findings(split: str, path: str, gt: pd.DataFrame,
                       rows: pd.DataFrame) -> list[Finding]:
    """Annotated videos without any row in the box file (near-misses in case named)."""
    gt_ids = set(gt["video_id"].astype(str))
    box_ids = set(rows["video_id"].astype(str))
    strangers = sorted(gt_ids - box_ids)
    if not strangers:
        return []
    close = {v.lower(): v for v in box_ids}
    hint = [f"{v} (the box file has {close[v.lower()]})" if v.lower() in close else v
            for v in strangers]
    return [Finding(
        "error" if len(strangers) == len(gt_ids) else "warning", "boxes.video_ids", path,
        len(strangers),
        f"{len(strangers)} of the {len(gt_ids)} annotated {split} videos have no row in the "
        "box file: all their people are missed",
        "run the detector on these videos; video ids are compared verbatim (case, a leading "
        "'-', no extension)", hint)]


def _recall_findings(ctx: DataContext, split: str, path: str, gt: pd.DataFrame,
                     kept: pd.DataFrame, threshold: float, knob: str) -> list[Finding]:
    """The share of annotated keyframes with a kept box, and the recall of the gt persons at
    IoU >= :data:`MATCH_IOU` (``kept``: the valid boxes scoring >= ``threshold``)."""
    out = []
    persons = gt.drop_duplicates([*KEY, *BOX])
    keyframes = persons.drop_duplicates(KEY)
    box_keys = kept[KEY].drop_duplicates().assign(_b=True)
    covered = keyframes.merge(box_keys, on=KEY, how="left")["_b"].notna().to_numpy()
    coverage = float(covered.mean()) if len(covered) else 1.0
    kept_int = kept.assign(timestamp=kept["timestamp"].astype(np.int64))
    recall_iou = best_iou(persons, kept_int)
    recall = float((recall_iou >= MATCH_IOU).mean()) if len(persons) else 1.0
    ctx.stats[f"{split}_box_coverage"] = round(coverage, 4)
    ctx.stats[f"{split}_box_recall"] = round(recall, 4)
    if coverage < 1.0:
        missing = keyframes[~covered]
        severity = "error" if coverage < RECALL_ERROR else "warning"
        out.append(Finding(
            severity, "boxes.coverage", path, int((~covered).sum()),
            f"{int((~covered).sum())} of {len(covered)} annotated {split} keyframes "
            f"({100 * (1 - coverage):.1f}%) have no box with score >= {threshold:g}: their "
            "people can only be missed",
            "run the detector on these keyframes (same video ids and integer timestamps as the "
            f"gt), or lower {knob}",
            [f"{v},{int(t):04d}" for v, t in missing[KEY].head(5).itertuples(index=False)]))
    severity = ("error" if recall < RECALL_ERROR else "warning" if recall < RECALL_WARNING
                else "info")
    fix = {"error": "the boxes do not match the gt (other video ids or timestamps, pixel "
                    "coordinates, x,y,w,h order?); check a few rows against the gt",
           "warning": f"a better detector or a lower {knob} raises the achievable mAP",
           "info": ""}[severity]
    out.append(Finding(
        severity, "boxes.recall", path, int(len(persons)),
        f"{split} person boxes with score >= {threshold:g} find {100 * recall:.1f}% of the "
        f"{len(persons)} gt persons at IoU >= {MATCH_IOU} (bounds the achievable frame-mAP); "
        f"{100 * coverage:.1f}% of the keyframes have a box", fix))
    return out
