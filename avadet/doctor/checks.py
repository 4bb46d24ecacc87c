"""The data doctor's checks: one function per family, each returning :class:`Finding` records.

:func:`run_checks` reads everything a config points at (label map, annotations, exclusions,
person boxes, frame folders or videos) and runs every family:

- :func:`check_config`: settings that contradict each other (class count of the model).
- :func:`check_labelmap`: the label map and the trained class subset.
- :func:`check_annotations`: malformed rows, boxes out of range or inverted, action ids not in
  the label map, keyframes outside the segment, persons whose boxes jump, duplicates.
- :func:`check_exclusions`: excluded keyframes that carry gt rows, or of other videos.
- :func:`check_classes`: evaluated classes without training examples.
- :func:`check_media`: videos without media, missing or unreadable media, wrong frame counts
  for the segment at the configured fps, wrong video fps, frame gaps, size changes, corrupt
  JPEGs (sampled, or every frame with ``full_scan``).
- :func:`check_person_boxes`: coverage of the annotated keyframes, score distribution and the
  recall of the gt boxes at IoU 0.5 above the configured score threshold.

Files are read leniently (:mod:`avadet.doctor.tables`) so that every problem is counted;
a file the strict readers of :mod:`avadet.io` would reject is reported as an error with the
reason and line, never as a crash.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
from tqdm import tqdm

from avadet.boxes import paired_iou
from avadet.config import Config, resolve_path
from avadet.data.sources import FrameFolderSource, VideoSource
from avadet.doctor.findings import Finding
from avadet.doctor.media import DEFAULT_SAMPLE, MediaFacts, inspect_frames, inspect_video
from avadet.doctor.tables import BOX, KEY, RawTable, best_iou, read_raw_table
from avadet.errors import AvadetError, FormatError
from avadet.io import (
    LabelMap,
    read_annotations,
    read_exclusions,
    read_labelmap,
    read_person_boxes,
)
from avadet.io.ava_csv import BOX_TOLERANCE

SPLITS = ("train", "val")
# Frame rates of common sources, to name the likely cause of a wrong frame count.
COMMON_FPS = (23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0)
# A person's box between two consecutive keyframes (1 s apart) that does not overlap the
# previous one and whose centre moved more than this (fraction of the frame) is a "jump".
JUMP_DISTANCE = 0.35
# Person boxes: recall of the gt at IoU 0.5 below these is an error / a warning.
RECALL_ERROR, RECALL_WARNING = 0.5, 0.9
MATCH_IOU = 0.5


# ---------------------------------------------------------------------------------------------
# What the config points at


@dataclass
class DataContext:
    """The config's files, resolved, and the tables read from them (None where absent).

    ``annotations[split]``: the lenient table of the split's gt file; ``gt[split]``: its rows
    that parse; ``labelmap``: the config's label map; ``class_ids``: the trained classes
    (``data.classes`` or the label map); ``exclusions[split]``: excluded keyframes.
    """

    cfg: Config
    labelmap_path: Optional[Path] = None
    labelmap: Optional[LabelMap] = None
    class_ids: list[int] = field(default_factory=list)
    annotation_paths: dict[str, Optional[Path]] = field(default_factory=dict)
    annotations: dict[str, Optional[RawTable]] = field(default_factory=dict)
    gt: dict[str, pd.DataFrame] = field(default_factory=dict)
    exclusions: dict[str, pd.DataFrame] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def path(self, key: str) -> Optional[Path]:
        return resolve_path(self.cfg.data.root, getattr(self.cfg.data, key))


def _empty_gt() -> pd.DataFrame:
    return pd.DataFrame({"video_id": pd.Series(dtype=str), "timestamp": pd.Series(dtype=np.int64),
                         **{c: pd.Series(dtype=np.float64) for c in BOX},
                         "action_id": pd.Series(dtype=np.float64),
                         "last": pd.Series(dtype=np.float64)})


def load_context(cfg: Config) -> tuple[DataContext, list[Finding]]:
    """Resolve and read the label map, annotations and exclusions of ``cfg``."""
    ctx, out = DataContext(cfg), []
    ctx.labelmap_path = ctx.path("labelmap")
    if ctx.labelmap_path is None:
        out.append(Finding("error", "labelmap.missing", "data.labelmap", 1,
                           "no label map configured", "set data.labelmap to a .pbtxt file"))
    else:
        try:
            ctx.labelmap = read_labelmap(ctx.labelmap_path)
        except FormatError as exc:
            fix = ("write the label map as item { name: \"...\" id: N } blocks"
                   if ctx.labelmap_path.exists() else "point data.labelmap at an existing file")
            out.append(Finding("error", "labelmap.unreadable", exc.path, 1, exc.reason, fix,
                               [str(exc)]))
    for split in SPLITS:
        path = ctx.path(f"{split}_annotations")
        ctx.annotation_paths[split] = path
        ctx.annotations[split] = None
        ctx.gt[split] = _empty_gt()
        if path is None or not path.is_file():
            severity = "error" if split == "train" else "warning"
            effect = ("training cannot start" if split == "train"
                      else "there is no ground truth to evaluate against")
            out.append(Finding(severity, "annotations.missing", str(path or f"data.{split}_annotations"),
                               1, f"{split} annotation file not found: {effect}",
                               f"set data.{split}_annotations (relative to data.root) to the "
                               f"{split} CSV"))
            continue
        try:
            table = read_raw_table(path)
        except FormatError as exc:
            out.append(Finding("error", "annotations.unreadable", exc.path, 1, exc.reason,
                               "re-export the file as UTF-8 text"))
            continue
        ctx.annotations[split] = table
        ctx.gt[split] = table.good
        excl = ctx.path(f"{split}_exclusions")
        ctx.exclusions[split] = pd.DataFrame(columns=KEY)
        if excl is not None and excl.is_file():
            try:
                ctx.exclusions[split] = read_exclusions(excl)
            except FormatError as exc:
                out.append(Finding("error", "exclusions.malformed", exc.path, 1, exc.reason,
                                   "exclusion files are video_id,timestamp rows without a header",
                                   [str(exc)]))
    return ctx, out


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
    data = ctx.cfg.data
    known_elsewhere = _full_labelmap_ids(ctx.labelmap_path)
    for split in SPLITS:
        table = ctx.annotations.get(split)
        if table is None:
            continue
        path = str(table.path)
        rows = table.rows
        ctx.stats[f"{split}_rows"] = int(len(rows))
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
        good_mask = ~table.malformed
        good = rows[good_mask]
        if good.empty:
            if not bad.any() and not table.header:
                out.append(Finding("error" if split == "train" else "warning",
                                   "annotations.empty", path, 0, f"the {split} file has no rows",
                                   "add annotations"))
            continue
        x1, y1, x2, y2 = (good[c].to_numpy() for c in BOX)
        lo, hi = -BOX_TOLERANCE, 1.0 + BOX_TOLERANCE
        outside = ((np.minimum.reduce([x1, y1, x2, y2]) < lo)
                   | (np.maximum.reduce([x1, y1, x2, y2]) > hi))
        if outside.any():
            pixels = np.nanmax(np.abs(np.stack([x1, y1, x2, y2]))) > 2.0
            fix = ("boxes look like pixel coordinates: divide x by the frame width and y by its "
                   "height (the converter `avadet convert-annotations` does this)" if pixels else
                   "clip the boxes to [0, 1] or fix the rows")
            out.append(_rows_finding("error", "annotations.box_range", table, good_mask, outside,
                                     f"boxes outside the normalised range [0, 1] (tolerance "
                                     f"{BOX_TOLERANCE}); the reader rejects the file", fix))
        inverted = (x2 <= x1) | (y2 <= y1)
        if inverted.any():
            out.append(_rows_finding(
                "error", "annotations.box_inverted", table, good_mask, inverted,
                "boxes with x2 <= x1 or y2 <= y1 (empty or inverted); the reader rejects the file",
                "write boxes as x1,y1,x2,y2 (top-left, bottom-right), not x,y,w,h or swapped"))
        if ctx.labelmap is not None:
            action = good["action_id"].to_numpy()
            unknown = ~np.isin(action, ctx.labelmap.ids)
            if unknown.any():
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
                out.append(_rows_finding(severity, "annotations.unknown_action", table, good_mask,
                                         unknown, what, fix))
        stamps = good["timestamp"].to_numpy()
        centre = np.floor((stamps - data.segment_start) * data.fps + 1e-6)
        last = np.floor((data.segment_end - data.segment_start) * data.fps + 1e-6)
        outside_seg = (centre < 0) | (centre > last)
        if outside_seg.any():
            lo_t, hi_t = stamps.min(), stamps.max()
            fix = (f"annotated keyframes span {lo_t:g}..{hi_t:g} s but the segment is "
                   f"{data.segment_start:g}..{data.segment_end:g} s: ")
            if lo_t < data.segment_start and hi_t < data.segment_end - data.segment_start + 1:
                fix += ("the timestamps look relative to the video start; set "
                        "data.segment_start: 0 and data.segment_end to the videos' length")
            else:
                fix += "set data.segment_start / data.segment_end to the cut videos' time span"
            out.append(_rows_finding(
                "error", "annotations.outside_segment", table, good_mask, outside_seg,
                "rows on keyframes outside the segment; the loader drops them silently", fix))
        dup = good.duplicated(["video_id", "timestamp", *BOX, "action_id"]).to_numpy()
        if dup.any():
            out.append(_rows_finding(
                "warning", "annotations.duplicates", table, good_mask, dup,
                "duplicate rows (same keyframe, box and action): each counts as one more gt "
                "instance in the evaluation", "drop the repeated rows"))
        out += _person_jumps(table, good_mask)
        out += _strict_reader(table.path, read_annotations, out)
        ctx.stats[f"{split}_keyframes"] = int(good.drop_duplicates(KEY).shape[0])
        ctx.stats[f"{split}_videos"] = int(good["video_id"].nunique())
    return out


def _strict_reader(path: Path, reader: Any, found: list[Finding]) -> list[Finding]:
    """What the strict reader training uses says about ``path``, when none of the lenient
    checks already gave an error for that file (a safety net: the reader is the authority on
    what training accepts)."""
    if any(f.severity == "error" and f.path == str(path) for f in found):
        return []
    try:
        reader(path)
    except FormatError as exc:
        return [Finding("error", "annotations.rejected" if reader is read_annotations
                        else "boxes.rejected", str(path), 1,
                        f"the reader training uses rejects the file: {exc.reason}",
                        "fix the row it names", [str(exc)])]
    return []


def _rows_finding(severity: str, check: str, table: RawTable, good_mask: np.ndarray,
                  mask: np.ndarray, message: str, fix: str) -> Finding:
    """A finding over ``mask`` (aligned with the parsed rows ``good_mask`` selects)."""
    full = np.zeros(len(table.rows), dtype=bool)
    full[np.flatnonzero(good_mask)[mask]] = True
    count = int(full.sum())
    return Finding(severity, check, str(table.path), count, f"{count} {message}"
                   if not message[0].isdigit() else message, fix, table.examples(full))


def _person_jumps(table: RawTable, good_mask: np.ndarray) -> list[Finding]:
    """Persons (``video_id``, person id) whose box on consecutive keyframes does not overlap
    the previous one and moved far: mixed-up person ids or boxes of another row."""
    good = table.rows[good_mask]
    ids = good["last"].to_numpy()
    keep = ~np.isnan(ids) & (ids >= 0)
    people = good[keep].drop_duplicates(["video_id", "timestamp", "last"])
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
        if unknown:
            out.append(Finding(
                "info" if len(unknown) < keys["video_id"].nunique() else "warning",
                "exclusions.unknown_videos", path, len(unknown),
                f"{len(unknown)} videos of the exclusion file have no {split} annotation",
                f"check that data.{split}_exclusions is the {split} split's file", unknown))
    return out


def check_classes(ctx: DataContext) -> list[Finding]:
    """Trained / evaluated classes without training examples (their AP stays ~0)."""
    out: list[Finding] = []
    if not ctx.class_ids:
        return out
    train = ctx.gt["train"]["action_id"].to_numpy()
    val = ctx.gt["val"]["action_id"].to_numpy()
    n_train = {c: int((train == c).sum()) for c in ctx.class_ids}
    n_val = {c: int((val == c).sum()) for c in ctx.class_ids}
    ctx.stats["train_examples_per_class"] = n_train
    if not len(train):
        return out
    names = ctx.labelmap.names if ctx.labelmap else {}
    missing_val = [c for c in ctx.class_ids if n_train[c] == 0 and n_val[c] > 0]
    unused = [c for c in ctx.class_ids if n_train[c] == 0 and n_val[c] == 0]
    path = str(ctx.annotation_paths.get("train"))
    if missing_val:
        out.append(Finding(
            "error", "classes.no_training_examples", path, len(missing_val),
            f"{len(missing_val)} evaluated classes have val instances but no training example: "
            "their AP is ~0 and pulls the mAP down",
            "annotate training examples, or leave the classes out (data.classes) and the "
            "label map used for evaluation",
            [f"{c} {names.get(c, '')} ({n_val[c]} val rows)" for c in missing_val]))
    if unused:
        out.append(Finding(
            "warning", "classes.never_annotated", path, len(unused),
            f"{len(unused)} trained classes have no example in train or val (the model learns "
            "them as always absent; the evaluation leaves them out)",
            "drop them from data.classes", [f"{c} {names.get(c, '')}" for c in unused]))
    rare = [c for c in ctx.class_ids if 0 < n_train[c] < 5]
    if rare:
        out.append(Finding(
            "info", "classes.rare", path, len(rare),
            f"{len(rare)} classes have fewer than 5 training rows", "expect noisy APs for them",
            [f"{c} {names.get(c, '')} ({n_train[c]} rows)" for c in rare]))
    return out


# ---------------------------------------------------------------------------------------------
# Media


def expected_frame_counts(fps: float, segment_start: float, segment_end: float) -> tuple[int, int]:
    """Frames of a cut video spanning the segment: ``(end - start) * fps`` and, AVA's cut
    (``ffmpeg -ss 900 -t 901``, one second past the last keyframe), ``(end - start + 1) * fps``:
    27,000 and 27,030 for AVA at 30 fps."""
    seconds = segment_end - segment_start
    return int(round(seconds * fps)), int(round((seconds + 1) * fps))


def _likely_fps(count: int, cfg_fps: float, segment_start: float, segment_end: float) -> Optional[float]:
    """A common frame rate other than ``cfg_fps`` that explains ``count`` frames for the
    segment (within 0.2%), or None."""
    seconds = (segment_end - segment_start, segment_end - segment_start + 1)
    for fps in COMMON_FPS:
        if abs(fps - cfg_fps) < 0.01:
            continue
        for s in seconds:
            if s > 0 and abs(count - fps * s) <= max(2.0, 0.002 * fps * s):
                return fps
    return None


def _media_ids(ctx: DataContext) -> list[str]:
    ids: dict[str, None] = {}
    for split in SPLITS:
        ids.update(dict.fromkeys(ctx.gt[split]["video_id"].astype(str).tolist()))
    return list(ids)


def _inspect_all(ctx: DataContext, video_ids: list[str], *, full_scan: bool, sample: int,
                 workers: int, progress: bool) -> list[MediaFacts]:
    data = ctx.cfg.data
    if data.source == "video":
        vsource = VideoSource(resolve_path(data.root, data.videos_dir) or Path("."))

        def task(vid: str) -> MediaFacts:
            return inspect_video(vsource, vid, sample=min(sample, 3), full_scan=full_scan)
    else:
        fsource = FrameFolderSource(resolve_path(data.root, data.frames_dir) or Path("."),
                                    data.frame_template)

        def task(vid: str) -> MediaFacts:
            return inspect_frames(fsource, vid, sample=sample, full_scan=full_scan)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(tqdm(pool.map(task, video_ids), total=len(video_ids), unit="video",
                         desc="checking media", disable=not progress))


def _media_root(ctx: DataContext) -> Path:
    data = ctx.cfg.data
    folder = data.videos_dir if data.source == "video" else data.frames_dir
    return resolve_path(data.root, folder) or Path(".")


def check_media(ctx: DataContext, *, full_scan: bool = False, sample: int = DEFAULT_SAMPLE,
                workers: int = 4, progress: bool = True) -> list[Finding]:
    """Every annotated video's media (frame folder or video file, as ``data.source``)."""
    data, out = ctx.cfg.data, []
    if data.source not in ("frames", "video"):
        return [Finding("error", "config.source", "data.source", 1,
                        f"data.source must be 'frames' or 'video', got {data.source!r}",
                        "set data.source: frames (JPEG folders) or video")]
    root = _media_root(ctx)
    kind = "frame folder" if data.source == "frames" else "video"
    if not root.is_dir():
        n = len(_media_ids(ctx))
        return [Finding("error", "media.root_missing", str(root), n,
                        f"the {kind}s folder does not exist ({n} annotated videos need it)",
                        f"set data.{'frames_dir' if data.source == 'frames' else 'videos_dir'} "
                        "(relative to data.root) or extract the media there")]
    ids = _media_ids(ctx)
    started = time.perf_counter()
    facts = _inspect_all(ctx, ids, full_scan=full_scan, sample=sample, workers=workers,
                         progress=progress)
    seconds = time.perf_counter() - started
    ctx.stats["media_videos"] = len(facts)
    ctx.stats["media_frames"] = int(sum(f.num_frames for f in facts))
    ctx.stats["media_decoded"] = int(sum(f.decoded for f in facts))
    ctx.stats["media_seconds"] = round(seconds, 3)
    ctx.stats["media_seconds_per_video"] = round(seconds / max(len(facts), 1), 4)

    present = {f.video_id for f in facts if f.exists}
    absent = [f for f in facts if not f.exists]
    if absent:
        splits = {s: set(ctx.gt[s]["video_id"].astype(str)) for s in SPLITS}
        rows = {f.video_id: sum(int((ctx.gt[s]["video_id"] == f.video_id).sum()) for s in SPLITS)
                for f in absent}
        where = ", ".join(f"{s}: {sum(f.video_id in splits[s] for f in absent)}" for s in SPLITS)
        out.append(Finding(
            "error", "media.missing", str(root), len(absent),
            f"{len(absent)} annotated videos have no {kind} ({where}); their "
            f"{sum(rows.values())} rows are skipped (train) or scored as misses (val)",
            "cut and extract them (data_prep/cut_videos.py, data_prep/extract_frames.py) or "
            "check the video ids: they are compared verbatim (case, a leading '-')",
            [f"{f.path} ({rows[f.video_id]} rows)" for f in absent]))
    unreadable = [f for f in facts if f.exists and f.error]
    if unreadable:
        out.append(Finding("error", "media.unreadable", str(root), len(unreadable),
                           f"{len(unreadable)} {kind}s cannot be read", "re-extract / re-cut them",
                           [f"{f.path}: {f.error}" for f in unreadable]))
    readable = [f for f in facts if f.exists and not f.error]
    out += _frame_count_findings(ctx, readable, kind)
    if data.source == "video":
        out += _fps_findings(ctx, readable)
    zero = [f for f in readable if f.zero_based]
    if zero:
        out.append(Finding(
            "error", "media.zero_based", str(root), len(zero),
            f"{len(zero)} frame folders number their files from 0; avadet reads file k + 1 as "
            "frame k (ffmpeg's %06d starts at 1), so every clip would be one frame late and "
            "file 0 ignored", "re-extract with data_prep/extract_frames.py, or rename the files "
            "one number up", [str(f.path) for f in zero]))
    gaps = [f for f in readable if f.num_missing]
    if gaps:
        total = sum(f.num_missing for f in gaps)
        out.append(Finding(
            "error", "media.frame_gaps", str(root), total,
            f"{total} frame files are missing inside {len(gaps)} folders; clips that need "
            "them are skipped", "re-extract these videos' frames",
            [f"{f.path}: {f.num_missing} missing, e.g. numbers {f.missing_numbers}" for f in gaps]))
    empty = [(f, name) for f in readable for name in f.empty_files]
    if empty:
        out.append(Finding(
            "error", "media.empty_frames", str(root), len(empty),
            f"{len(empty)} frame files are empty (0 bytes), in "
            f"{len({f.video_id for f, _ in empty})} folders", "re-extract these videos' frames",
            [str(f.path / name) for f, name in empty]))
    corrupt = [(f, name, why) for f in readable for name, why in f.corrupt]
    if corrupt:
        scope = "every frame decoded" if full_scan else (
            f"{ctx.stats['media_decoded']} sampled frames decoded; --full-scan decodes all")
        out.append(Finding(
            "error", "media.corrupt", str(root), len(corrupt),
            f"{len(corrupt)} corrupt or truncated frames in "
            f"{len({f.video_id for f, _, _ in corrupt})} videos ({scope})",
            "re-extract these videos (a full disk or an interrupted copy truncates JPEGs)",
            [f"{f.path / name if data.source == 'frames' else f.path} ({name}): {why}"
             for f, name, why in corrupt]))
    mixed = [f for f in readable if len(f.sizes) > 1]
    if mixed:
        out.append(Finding(
            "error", "media.size_changes", str(root), len(mixed),
            f"{len(mixed)} videos change frame size between frames; a clip across the change "
            "cannot be stacked and is skipped", "re-extract with one output size",
            [f"{f.path}: " + ", ".join(f"{w}x{h} ({where})" for (h, w), where in f.sizes.items())
             for f in mixed]))
    sizes = {size for f in readable for size in f.sizes}
    if sizes:
        ctx.stats["frame_sizes"] = sorted(f"{w}x{h}" for h, w in sizes)
    if data.source == "frames":
        folders = {p.name for p in root.iterdir() if p.is_dir()}
    else:
        folders = {p.stem for p in root.iterdir() if p.is_file()}
    unused = sorted(folders - present - set(ids))
    if unused:
        out.append(Finding("info", "media.unannotated", str(root), len(unused),
                           f"{len(unused)} {kind}s have no annotation in train or val",
                           "nothing to do unless they should be annotated", unused))
    return out


def _frame_count_findings(ctx: DataContext, facts: list[MediaFacts], kind: str) -> list[Finding]:
    data = ctx.cfg.data
    short_len, ava_len = expected_frame_counts(data.fps, data.segment_start, data.segment_end)
    seconds = data.segment_end - data.segment_start
    wrong_fps, short, odd, near = [], [], [], []
    last_key: dict[str, int] = {}
    for split in SPLITS:
        gt = ctx.gt[split]
        if len(gt):
            top = gt.groupby("video_id")["timestamp"].max()
            for vid, t in top.items():
                centre = int(np.floor((t - data.segment_start) * data.fps + 1e-6))
                last_key[str(vid)] = max(last_key.get(str(vid), -1), centre)
    for f in facts:
        n = f.num_frames
        d = min(abs(n - short_len), abs(n - ava_len))
        if d == 0:
            continue
        guess = _likely_fps(n, data.fps, data.segment_start, data.segment_end)
        if guess is not None:
            wrong_fps.append((f, guess))
        elif last_key.get(f.video_id, -1) >= n:
            short.append(f)
        elif d <= 2:
            near.append(f)
        else:
            odd.append(f)
    out = []
    expect = (f"{ava_len} ({seconds + 1:g} s, AVA's cut) or {short_len} ({seconds:g} s) frames at "
              f"{data.fps:g} fps for the segment {data.segment_start:g}..{data.segment_end:g} s")
    if wrong_fps:
        out.append(Finding(
            "error", "media.wrong_fps_count", str(_media_root(ctx)), len(wrong_fps),
            f"{len(wrong_fps)} {kind}s have a frame count that matches another frame rate, "
            f"expected {expect}: frame k no longer shows time start + k / {data.fps:g} and "
            "every clip is off in time",
            f"re-extract at {data.fps:g} fps with data_prep/extract_frames.py --fps {data.fps:g} "
            "(it resamples by timestamps; one JPEG per decoded frame does not), or set data.fps "
            "to the media's rate",
            [f"{f.path}: {f.num_frames} frames = {guess:g} fps x the segment" for f, guess in wrong_fps]))
    if short:
        out.append(Finding(
            "error", "media.too_short", str(_media_root(ctx)), len(short),
            f"{len(short)} {kind}s end before their last annotated keyframe (expected {expect}); "
            "those keyframes read clamped frames",
            "re-cut the videos over the whole segment (data_prep/cut_videos.py) and re-extract",
            [f"{f.path}: {f.num_frames} frames, last keyframe needs frame {last_key[f.video_id]}"
             for f in short]))
    if odd:
        out.append(Finding(
            "warning", "media.frame_count", str(_media_root(ctx)), len(odd),
            f"{len(odd)} {kind}s have an unexpected frame count (expected {expect}); fine for "
            "videos of different lengths, wrong for a fixed-length cut",
            "check the cut's start and length; set data.segment_start / segment_end to the "
            "cut's span",
            [f"{f.path}: {f.num_frames} frames ({f.num_frames / data.fps:.2f} s)" for f in odd]))
    if near:
        out.append(Finding(
            "warning", "media.frame_count_off_by_one", str(_media_root(ctx)), len(near),
            f"{len(near)} {kind}s are 1-2 frames off the expected count ({expect}): the cut may "
            f"start up to 2 frames late", "re-cut with a frame-accurate cut (re-encode, no -c copy)",
            [f"{f.path}: {f.num_frames} frames" for f in near]))
    return out


def _fps_findings(ctx: DataContext, facts: list[MediaFacts]) -> list[Finding]:
    fps = ctx.cfg.data.fps
    wrong = [f for f in facts if f.fps is not None and abs(float(f.fps) - fps) > 0.01]
    unknown = [f for f in facts if f.fps is None]
    out = []
    if wrong:
        out.append(Finding(
            "error", "media.video_fps", str(_media_root(ctx)), len(wrong),
            f"{len(wrong)} videos run at another frame rate than data.fps = {fps:g}: the video "
            "source maps keyframe t to frame (t - start) x fps and reads the wrong time",
            f"re-encode at {fps:g} fps (data_prep/cut_videos.py) or set data.fps",
            [f"{f.path}: {float(f.fps):.3f} fps" for f in wrong]))
    if unknown:
        out.append(Finding("warning", "media.video_fps_unknown", str(_media_root(ctx)),
                           len(unknown), f"{len(unknown)} videos do not state a frame rate",
                           "re-mux them", [str(f.path) for f in unknown]))
    return out


# ---------------------------------------------------------------------------------------------
# Person boxes


def check_person_boxes(ctx: DataContext) -> list[Finding]:
    """The detector box files used for testing (and training with detections)."""
    data, out = ctx.cfg.data, []
    plan = [("val", data.val_boxes, data.test_detection_score, "data.test_detection_score")]
    if data.train_use_detections:
        plan.insert(0, ("train", data.train_boxes, data.train_detection_score,
                        "data.train_detection_score"))
    for split, name, threshold, knob in plan:
        if not name:
            out.append(Finding(
                "info", "boxes.none", f"data.{split}_boxes", 0,
                f"no {split} person-box file: the {split} keyframes use the gt boxes (an oracle "
                "detector; the mAP is an upper bound)", f"set data.{split}_boxes to test on detections"))
            continue
        path = resolve_path(data.root, name)
        assert path is not None
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
        out += _box_findings(ctx, split, table, threshold, knob)
    return out


def _box_findings(ctx: DataContext, split: str, table: RawTable, threshold: float,
                  knob: str) -> list[Finding]:
    out: list[Finding] = []
    path = str(table.path)
    bad = table.malformed
    if bad.any():
        out.append(Finding(
            "error", "boxes.malformed", path, int(bad.sum()),
            f"{int(bad.sum())} rows cannot be parsed; the reader stops at the first",
            "rows must be video_id,timestamp,x1,y1,x2,y2,-1,score", table.examples(bad)))
    rows = table.rows[~bad]
    good_mask = ~bad
    if rows.empty:
        out.append(Finding("error", "boxes.empty", path, 0, f"the {split} box file has no rows",
                           "write detector boxes"))
        return out
    x1, y1, x2, y2 = (rows[c].to_numpy() for c in BOX)
    lo, hi = -BOX_TOLERANCE, 1.0 + BOX_TOLERANCE
    outside = (np.minimum.reduce([x1, y1, x2, y2]) < lo) | (np.maximum.reduce([x1, y1, x2, y2]) > hi)
    inverted = (x2 <= x1) | (y2 <= y1)
    for mask, check, what in ((outside, "boxes.box_range", "boxes outside [0, 1]"),
                              (inverted, "boxes.box_inverted", "boxes with x2 <= x1 or y2 <= y1")):
        if mask.any():
            out.append(_rows_finding("error", check, table, good_mask, mask,
                                     f"{what}; the reader rejects the file",
                                     "normalise boxes to [0, 1] as x1,y1,x2,y2"))
    out += _strict_reader(table.path, read_person_boxes, out)
    scores = rows["last"].fillna(1.0).to_numpy()
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
    kept = rows[(scores >= threshold) & ~outside & ~inverted]
    if (scores >= threshold).sum() == 0:
        out.append(Finding(
            "error", "boxes.below_threshold", path, int(len(scores)),
            f"no box scores >= {knob} = {threshold:g} (median score {np.median(scores):.3f}): "
            f"every {split} keyframe is empty", f"lower {knob}"))
    gt = ctx.gt.get(split)
    if gt is None or gt.empty:
        return out
    excl = ctx.exclusions.get(split)
    if excl is not None and len(excl):
        marked = gt.merge(excl[KEY].drop_duplicates().assign(_x=True), on=KEY, how="left")
        gt = gt[marked["_x"].isna().to_numpy()]
    gt_ids = set(gt["video_id"].astype(str))
    box_ids = set(rows["video_id"].astype(str))
    strangers = sorted(gt_ids - box_ids)
    if strangers:
        close = {v.lower(): v for v in box_ids}
        hint = [f"{v} (the box file has {close[v.lower()]})" if v.lower() in close else v
                for v in strangers]
        out.append(Finding(
            "error" if len(strangers) == len(gt_ids) else "warning", "boxes.video_ids", path,
            len(strangers),
            f"{len(strangers)} of the {len(gt_ids)} annotated {split} videos have no row in the "
            "box file: all their people are missed",
            "run the detector on these videos; video ids are compared verbatim (case, a leading "
            "'-', no extension)", hint))
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


# ---------------------------------------------------------------------------------------------
# Everything


@dataclass
class DoctorReport:
    """All findings of one run, the facts counted on the way, and the time taken."""

    findings: list[Finding]
    stats: dict[str, Any]
    seconds: float
    full_scan: bool

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def checks(self) -> set[str]:
        return {f.check for f in self.findings}

    def by_check(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]


def run_checks(cfg: Config, *, full_scan: bool = False, sample: int = DEFAULT_SAMPLE,
               workers: int = 4, progress: bool = True) -> DoctorReport:
    """Run every check family on the data ``cfg`` points at.

    Args:
        full_scan: decode every frame (default: list folders, read headers, decode ``sample``
            frames per video).
        workers: threads inspecting videos in parallel.
    """
    started = time.perf_counter()
    ctx, findings = load_context(cfg)
    findings += check_labelmap(ctx)
    findings += check_config(ctx)
    findings += check_annotations(ctx)
    findings += check_exclusions(ctx)
    findings += check_classes(ctx)
    try:
        findings += check_media(ctx, full_scan=full_scan, sample=sample, workers=workers,
                                progress=progress)
    except AvadetError as exc:
        findings.append(Finding("error", "media.unreadable", str(_media_root(ctx)), 1, str(exc),
                                "check the media folder"))
    findings += check_person_boxes(ctx)
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    return DoctorReport(findings, ctx.stats, time.perf_counter() - started, full_scan)
