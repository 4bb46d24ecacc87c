"""Checks of the class set and the ground truth: the config's class count and segment, the
label map, every row of the annotation files, the exclusions, and classes without examples."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from avadet.boxes import paired_iou
from avadet.doctor.context import SPLITS, DataContext
from avadet.doctor.findings import Finding, findings_over, rows_finding, strict_reader_findings
from avadet.doctor.tables import BOX, KEY, RawTable
from avadet.errors import FormatError
from avadet.io import read_annotations, read_labelmap
from avadet.io.ava_csv import BOX_TOLERANCE

# A person's box between two consecutive keyframes (1 s apart) that does not overlap the
# previous one and whose centre moved more than this (fraction of the frame) is a "jump".
JUMP_DISTANCE = 0.35


# ---------------------------------------------------------------------------------------------
# Config and label map


def check_config(ctx: DataContext) -> list[Finding]:
    """Settings that contradict the data: the model's class count, the clip sampling."""
    cfg, out = ctx.cfg, []
    n = len(ctx.class_ids)
    if n and cfg.model.num_classes != n:
        out.append(Finding(
            "error", "config.num_classes", "model.num_classes", 1,
            f"the model has {cfg.model.num_classes} outputs but {n} classes are trained "
            f"({'data.classes' if cfg.data.classes else 'the label map'})",
            f"set model.num_classes: {n}"))
    if cfg.data.fps <= 0:
        out.append(Finding("error", "config.fps", "data.fps", 1,
                           f"data.fps must be positive, got {cfg.data.fps}", "set data.fps"))
    if cfg.data.segment_end <= cfg.data.segment_start:
        out.append(Finding(
            "error", "config.segment", "data.segment_end", 1,
            f"data.segment_end ({cfg.data.segment_end}) is not after data.segment_start "
            f"({cfg.data.segment_start})", "set the segment bounds of the cut videos (seconds)"))
    clip_seconds = cfg.data.num_frames * cfg.data.sampling_rate / max(cfg.data.fps, 1e-9)
    if clip_seconds > 10:
        out.append(Finding(
            "warning", "config.clip_length", "data.num_frames", 1,
            f"a clip spans {clip_seconds:.1f} s (num_frames {cfg.data.num_frames} x sampling_rate "
            f"{cfg.data.sampling_rate} at {cfg.data.fps:g} fps)",
            "AVA clips span ~2 s; lower data.sampling_rate for low-fps media"))
    return out


def check_labelmap(ctx: DataContext) -> list[Finding]:
    """The trained classes: ``data.classes`` must be in the label map, without repeats."""
    out: list[Finding] = []
    if ctx.labelmap is None:
        return out
    classes = list(ctx.cfg.data.classes)
    path = str(ctx.labelmap_path)
    if classes:
        unknown = [c for c in classes if c not in ctx.labelmap]
        if unknown:
            out.append(Finding(
                "error", "labelmap.classes", "data.classes", len(unknown),
                f"data.classes lists ids not in the label map {path}: {unknown}",
                f"use ids of the label map ({_id_ranges(ctx.labelmap.ids)}) or add them to it"))
        if len(set(classes)) != len(classes):
            out.append(Finding("error", "labelmap.classes", "data.classes", 1,
                               "data.classes lists an id twice", "list each class id once"))
        ctx.class_ids = [c for c in dict.fromkeys(classes) if c in ctx.labelmap]
    else:
        ctx.class_ids = list(ctx.labelmap.ids)
    ctx.stats["classes"] = len(ctx.class_ids)
    return out


def _id_ranges(ids: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1..3, 7"``."""
    ids = sorted(ids)
    if not ids:
        return "none"
    parts, start, prev = [], ids[0], ids[0]
    for i in ids[1:] + [None]:  # type: ignore[list-item]
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start}" if start == prev else f"{start}..{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# Annotations


def _full_labelmap_ids(path: Optional[Path]) -> set[int]:
    """Ids of the other label maps next to ``path`` (AVA ships all 80 classes next to the 60
    evaluated ones): gt rows of those classes are known, just not evaluated."""
    ids: set[int] = set()
    if path is None:
        return ids
    for other in path.parent.glob("*.pbtxt"):
        if other == path:
            continue
        try:
            ids.update(read_labelmap(other).ids)
        except FormatError:
            continue
    return ids


def check_annotations(ctx: DataContext) -> list[Finding]:
    """Row-level problems of the train and val gt files (every bad row counted)."""
    out: list[Finding] = []
    known_elsewhere = _full_labelmap_ids(ctx.labelmap_path)
    for split in SPLITS:
        table = ctx.annotations.get(split)
        if table is not None:
            out += _split_findings(ctx, split, table, known_elsewhere, out)
    return out


def _split_findings(ctx: DataContext, split: str, table: RawTable, known_elsewhere: set[int],
                    found: list[Finding]) -> list[Finding]:
    """The findings of one split's gt file; ``found``: those of the files checked before (the
    strict reader is asked only about a file without an error yet)."""
    ctx.stats[f"{split}_rows"] = int(len(table.rows))
    out = _parse_findings(table)
    good_mask = ~table.malformed
    good = table.rows[good_mask]
    if good.empty:
        if not table.malformed.any():
            out.append(Finding("error" if split == "train" else "warning",
                               "annotations.empty", str(table.path), 0,
                               f"the {split} file has no rows", "add annotations"))
        return out
    out += _box_findings(table, good_mask, good)
    if ctx.labelmap is not None:
        out += _unknown_action_findings(ctx, table, good_mask, good, known_elsewhere)
    out += _segment_findings(ctx, table, good_mask, good)
    dup = good.duplicated([*KEY, *BOX, "action_id"]).to_numpy()
    if dup.any():
        out.append(rows_finding(
            "warning", "annotations.duplicates", table, good_mask, dup,
            "duplicate rows (same keyframe, box and action): each counts as one more gt "
            "instance in the evaluation", "drop the repeated rows"))
    out += _person_jumps(table, good_mask)
    out += strict_reader_findings(table.path, read_annotations, "annotations.rejected",
                                  found + out)
    ctx.stats[f"{split}_keyframes"] = int(good.drop_duplicates(KEY).shape[0])
    ctx.stats[f"{split}_videos"] = int(good["video_id"].nunique())
    return out


def _parse_findings(table: RawTable) -> list[Finding]:
    """A header line, and rows a strict reader cannot parse."""
    out, path, rows = [], str(table.path), table.rows
    if table.header:
        out.append(Finding("error", "annotations.header", path, 1,
                           "the first line is a header; AVA CSVs have none and the reader "
                           "rejects it", "delete the first line", table.examples(
                               np.arange(len(rows)) == 0)))
    bad = table.malformed.copy()
    if table.header:
        bad[0] = False
    if bad.any():
        reasons = pd.Series(table.reasons[bad]).value_counts()
        summary = "; ".join(f"{n} x {why}" for why, n in reasons.items())
        out.append(Finding(
            "error", "annotations.malformed", path, int(bad.sum()),
            f"{int(bad.sum())} rows cannot be parsed ({summary}); the reader stops at the "
            "first and training fails",
            "rows must be video_id,timestamp,x1,y1,x2,y2,action_id[,person_id] with an "
            "integer timestamp and action id", table.examples(bad)))
    return out


def _box_findings(table: RawTable, good_mask: np.ndarray, good: pd.DataFrame) -> list[Finding]:
    """Boxes outside ``[0, 1]`` (pixel coordinates named as such) and empty or inverted
    boxes, among the parsed rows ``good`` (``good_mask`` selects them from the table)."""
    out = []
    x1, y1, x2, y2 = (good[c].to_numpy() for c in BOX)
    lo, hi = -BOX_TOLERANCE, 1.0 + BOX_TOLERANCE
    outside = ((np.minimum.reduce([x1, y1, x2, y2]) < lo)
               | (np.maximum.reduce([x1, y1, x2, y2]) > hi))
    if outside.any():
        pixels = np.nanmax(np.abs(np.stack([x1, y1, x2, y2]))) > 2.0
        fix = ("boxes look like pixel coordinates: divide x by the frame width and y by its "
               "height (the converter `avadet convert-annotations` does this)" if pixels else
               "clip the boxes to [0, 1] or fix the rows")
        out.append(rows_finding("error", "annotations.box_range", table, good_mask, outside,
                                f"boxes outside the normalised range [0, 1] (tolerance "
                                f"{BOX_TOLERANCE}); the reader rejects the file", fix))
    inverted = (x2 <= x1) | (y2 <= y1)
    if inverted.any():
        out.append(rows_finding(
            "error", "annotations.box_inverted", table, good_mask, inverted,
            "boxes with x2 <= x1 or y2 <= y1 (empty or inverted); the reader rejects the file",
            "write boxes as x1,y1,x2,y2 (top-left, bottom-right), not x,y,w,h or swapped"))
    return out


def _unknown_action_findings(ctx: DataContext, table: RawTable, good_mask: np.ndarray,
                             good: pd.DataFrame, known_elsewhere: set[int]) -> list[Finding]:
    """Action ids not in the label map: an error when most rows have one (the CSV numbers
    the classes differently), info when another label map of the folder lists them."""
    assert ctx.labelmap is not None
    action = good["action_id"].to_numpy()
    unknown = ~np.isin(action, ctx.labelmap.ids)
    if not unknown.any():
        return []
    ids = sorted(set(action[unknown].astype(np.int64).tolist()))
    listed = set(ids) <= known_elsewhere
    share = unknown.mean()
    severity = ("error" if share > 0.5 else "info" if listed else "warning")
    what = (f"{int(unknown.sum())} rows ({100 * share:.1f}%) have action ids not in "
            f"the label map {ctx.labelmap_path.name if ctx.labelmap_path else ''}: "
            f"{_id_ranges(ids)[:200]}; training and evaluation ignore them")
    if listed:
        what += " (they are in another label map of the folder: not evaluated)"
    fix = ("the label map and the CSV number the classes differently: use the label "
           "map the annotations were written with" if share > 0.5 else
           "add the classes to the label map if they should count")
    return [rows_finding(severity, "annotations.unknown_action", table, good_mask, unknown,
                         what, fix)]


def _segment_findings(ctx: DataContext, table: RawTable, good_mask: np.ndarray,
                      good: pd.DataFrame) -> list[Finding]:
    """Keyframes outside ``data.segment_start .. segment_end`` (the loader drops them)."""
    data = ctx.cfg.data
    stamps = good["timestamp"].to_numpy()
    centre = np.floor((stamps - data.segment_start) * data.fps + 1e-6)
    last = np.floor((data.segment_end - data.segment_start) * data.fps + 1e-6)
    outside_seg = (centre < 0) | (centre > last)
    if not outside_seg.any():
        return []
    lo_t, hi_t = stamps.min(), stamps.max()
    fix = (f"annotated keyframes span {lo_t:g}..{hi_t:g} s but the segment is "
           f"{data.segment_start:g}..{data.segment_end:g} s: ")
    if lo_t < data.segment_start and hi_t < data.segment_end - data.segment_start + 1:
        fix += ("the timestamps look relative to the video start; set "
                "data.segment_start: 0 and data.segment_end to the videos' length")
    else:
        fix += "set data.segment_start / data.segment_end to the cut videos' time span"
    return [rows_finding(
        "error", "annotations.outside_segment", table, good_mask, outside_seg,
        "rows on keyframes outside the segment; the loader drops them silently", fix)]


def _person_jumps(table: RawTable, good_mask: np.ndarray) -> list[Finding]:
    """Persons (``video_id``, person id) whose box on consecutive keyframes does not overlap
    the previous one and moved far: mixed-up person ids or boxes of another row."""
    good = table.rows[good_mask]
    ids = good["last"].to_numpy()
    keep = ~np.isnan(ids) & (ids >= 0)
    people = good[keep].drop_duplicates([*KEY, "last"])
    if len(people) < 2:
        return []
    people = people.sort_values(["video_id", "last", "timestamp"], kind="stable")
    same = ((people["video_id"].to_numpy()[1:] == people["video_id"].to_numpy()[:-1])
            & (people["last"].to_numpy()[1:] == people["last"].to_numpy()[:-1])
            & (np.diff(people["timestamp"].to_numpy()) == 1))
    boxes = people[BOX].to_numpy(np.float64)
    prev, cur = boxes[:-1], boxes[1:]
    iou = paired_iou(prev, cur)
    shift = np.hypot((cur[:, 0] + cur[:, 2] - prev[:, 0] - prev[:, 2]) / 2,
                     (cur[:, 1] + cur[:, 3] - prev[:, 1] - prev[:, 3]) / 2)
    jump = same & (iou == 0) & (shift > JUMP_DISTANCE)
    if not jump.any():
        return []
    lines = people["line"].to_numpy()[1:][jump]
    full = np.isin(table.rows["line"].to_numpy(), lines)
    return [Finding(
        "warning", "annotations.person_jump", str(table.path), int(jump.sum()),
        f"{int(jump.sum())} times a person's box moves by more than {JUMP_DISTANCE:.0%} of the "
        "frame in one second with no overlap: person ids mixed up or a box from another row",
        "check the person ids (column 8) and boxes of these rows against the video",
        table.examples(full))]


# ---------------------------------------------------------------------------------------------
# Exclusions and classes


def check_exclusions(ctx: DataContext) -> list[Finding]:
    """Excluded keyframes that carry gt rows (dropped from training and evaluation) or name
    videos that are not annotated (a file of another split or version)."""
    out: list[Finding] = []
    for split in SPLITS:
        excl, gt = ctx.exclusions.get(split), ctx.gt[split]
        if excl is None or excl.empty or gt.empty:
            continue
        path = str(ctx.path(f"{split}_exclusions"))
        keys = excl[KEY].drop_duplicates()
        hit = gt[KEY].assign(timestamp=gt["timestamp"].astype(np.int64)).merge(keys, on=KEY)
        if len(hit):
            examples = hit.drop_duplicates().head(5)
            out.append(Finding(
                "warning", "exclusions.annotated", path, int(len(hit)),
                f"{len(hit)} {split} gt rows lie on excluded keyframes; training and evaluation "
                "drop them", "remove those keyframes from the exclusion file if they are meant "
                "to count", [f"{v},{int(t):04d}" for v, t in examples.itertuples(index=False)]))
        unknown = sorted(set(keys["video_id"].astype(str)) - set(gt["video_id"].astype(str)))
        out += findings_over(
            "info" if len(unknown) < keys["video_id"].nunique() else "warning",
            "exclusions.unknown_videos", path, unknown,
            f"{len(unknown)} videos of the exclusion file have no {split} annotation",
            f"check that data.{split}_exclusions is the {split} split's file")
    return out


def check_classes(ctx: DataContext) -> list[Finding]:
    """Trained / evaluated classes without training examples (their AP stays ~0)."""
    if not ctx.class_ids:
        return []
    train = ctx.gt["train"]["action_id"].to_numpy()
    val = ctx.gt["val"]["action_id"].to_numpy()
    n_train = {c: int((train == c).sum()) for c in ctx.class_ids}
    n_val = {c: int((val == c).sum()) for c in ctx.class_ids}
    ctx.stats["train_examples_per_class"] = n_train
    if not len(train):
        return []
    names = ctx.labelmap.names if ctx.labelmap else {}

    def named(c: int) -> str:
        return f"{c} {names.get(c, '')}"

    missing_val = [c for c in ctx.class_ids if n_train[c] == 0 and n_val[c] > 0]
    unused = [c for c in ctx.class_ids if n_train[c] == 0 and n_val[c] == 0]
    rare = [c for c in ctx.class_ids if 0 < n_train[c] < 5]
    path = str(ctx.annotation_paths.get("train"))
    return [
        *findings_over(
            "error", "classes.no_training_examples", path, missing_val,
            f"{len(missing_val)} evaluated classes have val instances but no training example: "
            "their AP is ~0 and pulls the mAP down",
            "annotate training examples, or leave the classes out (data.classes) and the "
            "label map used for evaluation", lambda c: f"{named(c)} ({n_val[c]} val rows)"),
        *findings_over(
            "warning", "classes.never_annotated", path, unused,
            f"{len(unused)} trained classes have no example in train or val (the model learns "
            "them as always absent; the evaluation leaves them out)",
            "drop them from data.classes", named),
        *findings_over(
            "info", "classes.rare", path, rare,
            f"{len(rare)} classes have fewer than 5 training rows", "expect noisy APs for them",
            lambda c: f"{named(c)} ({n_train[c]} rows)"),
    ]
