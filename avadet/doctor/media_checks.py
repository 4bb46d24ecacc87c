"""Checks of every annotated video's media (frame folders or video files, as ``data.source``):
missing or unreadable media, frame counts that do not fit the segment at the configured fps,
video frame rates, frame numbering, gaps, empty or corrupt frames, size changes.

:mod:`avadet.doctor.media` inspects one video cheaply; this module runs it over all of them in
a thread pool and turns the facts into findings.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np
from tqdm import tqdm

from avadet.data.sources import ClipReadError, FrameFolderSource, VideoSource
from avadet.doctor.context import SPLITS, DataContext
from avadet.doctor.findings import Finding, findings_over
from avadet.doctor.media import DEFAULT_SAMPLE, MediaFacts, inspect_frames, inspect_video

# Frame rates of common sources, to name the likely cause of a wrong frame count.
COMMON_FPS = (23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0)


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


def _lost_its_end(ctx: DataContext, f: MediaFacts, guess: float) -> Optional[int]:
    """Is frame folder ``f``, whose count matches ``guess`` fps, rather a folder cut short?

    Decided by the video, where the dataset has it: extracted at ``guess`` fps, the last file
    shows the video's frame at time ``last / guess``; cut short, it shows the video's frame
    ``last`` at ``data.fps``. The two candidates are compared with the file (grey levels).
    Without the video (or a folder longer than expected) the count alone cannot tell.
    Returns the video's frame count when the folder is cut short, else None.
    """
    data = ctx.cfg.data
    if data.source != "frames" or guess >= data.fps:
        return None
    video = VideoSource(ctx.files.videos_dir)
    try:
        total = video.num_frames(f.video_id)
        last = f.num_frames - 1
        resampled = min(int(round(last * data.fps / guess)), total - 1)
        if last >= total or resampled == last:
            return None
        candidates = video.read(f.video_id, [last, resampled]).astype(np.float32)
        image = FrameFolderSource(ctx.files.frames_dir, data.frame_template).read(
            f.video_id, [last])[0].astype(np.float32)
    except (ClipReadError, ValueError):
        return None
    finally:
        video.close()
    if candidates.shape[1:] != image.shape:
        import cv2

        height, width = image.shape[:2]
        candidates = np.stack([cv2.resize(c, (width, height)) for c in candidates])
    same, other = (float(np.abs(c - image).mean()) for c in candidates)
    return total if same < other else None


def _media_ids(ctx: DataContext) -> list[str]:
    """The annotated video ids of both splits, in order of first appearance."""
    ids: dict[str, None] = {}
    for split in SPLITS:
        ids.update(dict.fromkeys(ctx.gt[split]["video_id"].astype(str).tolist()))
    return list(ids)


def _inspect_all(ctx: DataContext, video_ids: list[str], *, full_scan: bool, sample: int,
                 workers: int, progress: bool) -> list[MediaFacts]:
    """:class:`MediaFacts` of each of ``video_ids`` (same order), ``workers`` threads."""
    data = ctx.cfg.data
    if data.source == "video":
        vsource = VideoSource(ctx.media_root())

        def task(vid: str) -> MediaFacts:
            return inspect_video(vsource, vid, sample=min(sample, 3), full_scan=full_scan)
    else:
        fsource = FrameFolderSource(ctx.media_root(), data.frame_template)

        def task(vid: str) -> MediaFacts:
            return inspect_frames(fsource, vid, sample=sample, full_scan=full_scan)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(tqdm(pool.map(task, video_ids), total=len(video_ids), unit="video",
                         desc="checking media", disable=not progress))


def check_media(ctx: DataContext, *, full_scan: bool = False, sample: int = DEFAULT_SAMPLE,
                workers: int = 4, progress: bool = True) -> list[Finding]:
    """Every annotated video's media (frame folder or video file, as ``data.source``)."""
    data = ctx.cfg.data
    if data.source not in ("frames", "video"):
        return [Finding("error", "config.source", "data.source", 1,
                        f"data.source must be 'frames' or 'video', got {data.source!r}",
                        "set data.source: frames (JPEG folders) or video")]
    root = ctx.media_root()
    kind = "frame folder" if data.source == "frames" else "video"
    ids = _media_ids(ctx)
    if not root.is_dir():
        folder_key = "frames_dir" if data.source == "frames" else "videos_dir"
        return [Finding("error", "media.root_missing", str(root), len(ids),
                        f"the {kind}s folder does not exist ({len(ids)} annotated videos need it)",
                        f"set data.{folder_key} (relative to data.root) or extract the media "
                        "there")]
    started = time.perf_counter()
    facts = _inspect_all(ctx, ids, full_scan=full_scan, sample=sample, workers=workers,
                         progress=progress)
    seconds = time.perf_counter() - started
    ctx.stats["media_videos"] = len(facts)
    ctx.stats["media_frames"] = int(sum(f.num_frames for f in facts))
    ctx.stats["media_decoded"] = int(sum(f.decoded for f in facts))
    if data.source == "frames":
        ctx.stats["media_markers_checked"] = int(sum(f.markers_checked for f in facts))
    ctx.stats["media_seconds"] = round(seconds, 3)
    ctx.stats["media_seconds_per_video"] = round(seconds / max(len(facts), 1), 4)

    out = _presence_findings(ctx, facts, kind)
    readable = [f for f in facts if f.exists and not f.error]
    out += _frame_count_findings(ctx, readable, kind)
    if data.source == "video":
        out += _fps_findings(ctx, readable)
    out += _frame_file_findings(ctx, readable, full_scan)
    present = {f.video_id for f in facts if f.exists}
    if data.source == "frames":
        folders = {p.name for p in root.iterdir() if p.is_dir()}
    else:
        folders = {p.stem for p in root.iterdir() if p.is_file()}
    unused = sorted(folders - present - set(ids))
    return out + findings_over("info", "media.unannotated", root, unused,
                               f"{len(unused)} {kind}s have no annotation in train or val",
                               "nothing to do unless they should be annotated")


def _presence_findings(ctx: DataContext, facts: list[MediaFacts], kind: str) -> list[Finding]:
    """Annotated videos without media, and media that cannot be read at all."""
    root = ctx.media_root()
    absent = [f for f in facts if not f.exists]
    out = []
    if absent:
        splits = {s: set(ctx.gt[s]["video_id"].astype(str)) for s in SPLITS}
        rows = {f.video_id: sum(int((ctx.gt[s]["video_id"] == f.video_id).sum()) for s in SPLITS)
                for f in absent}
        where = ", ".join(f"{s}: {sum(f.video_id in splits[s] for f in absent)}" for s in SPLITS)
        out += findings_over(
            "error", "media.missing", root, absent,
            f"{len(absent)} annotated videos have no {kind} ({where}); their "
            f"{sum(rows.values())} rows are skipped (train) or scored as misses (val)",
            "cut and extract them (data_prep/cut_videos.py, data_prep/extract_frames.py) or "
            "check the video ids: they are compared verbatim (case, a leading '-')",
            lambda f: f"{f.path} ({rows[f.video_id]} rows)")
    unreadable = [f for f in facts if f.exists and f.error]
    return out + findings_over("error", "media.unreadable", root, unreadable,
                               f"{len(unreadable)} {kind}s cannot be read",
                               "re-extract / re-cut them", lambda f: f"{f.path}: {f.error}")


def _frame_file_findings(ctx: DataContext, readable: list[MediaFacts],
                         full_scan: bool) -> list[Finding]:
    """Frame numbering from 0, gaps, empty and corrupt frames, frame size changes."""
    root, data = ctx.media_root(), ctx.cfg.data
    zero = [f for f in readable if f.zero_based]
    out = findings_over(
        "error", "media.zero_based", root, zero,
        f"{len(zero)} frame folders number their files from 0; avadet reads file k + 1 as "
        "frame k (ffmpeg's %06d starts at 1), so every clip would be one frame late and "
        "file 0 ignored", "re-extract with data_prep/extract_frames.py, or rename the files "
        "one number up", lambda f: str(f.path))
    gaps = [f for f in readable if f.num_missing]
    if gaps:
        total = sum(f.num_missing for f in gaps)
        out.append(Finding(
            "error", "media.frame_gaps", str(root), total,
            f"{total} frame files are missing inside {len(gaps)} folders; clips that need "
            "them are skipped", "re-extract these videos' frames",
            [f"{f.path}: {f.num_missing} missing, e.g. numbers {f.missing_numbers}" for f in gaps]))
    empty = [(f, name) for f in readable for name in f.empty_files]
    out += findings_over(
        "error", "media.empty_frames", root, empty,
        f"{len(empty)} frame files are empty (0 bytes), in "
        f"{len({f.video_id for f, _ in empty})} folders", "re-extract these videos' frames",
        lambda file: str(file[0].path / file[1]))
    corrupt = [(f, name, why) for f in readable for name, why in f.corrupt]
    if full_scan:
        scope = "every frame decoded"
    elif data.source == "frames":
        scope = (f"{ctx.stats['media_decoded']} sampled frames decoded, every frame file's JPEG "
                 "start and end markers read; --full-scan decodes all")
    else:
        scope = f"{ctx.stats['media_decoded']} sampled frames decoded; --full-scan decodes all"

    def corrupt_example(item: tuple[MediaFacts, str, str]) -> str:
        f, name, why = item
        return f"{f.path / name if data.source == 'frames' else f.path} ({name}): {why}"

    out += findings_over(
        "error", "media.corrupt", root, corrupt,
        f"{len(corrupt)} corrupt or truncated frames in "
        f"{len({f.video_id for f, _, _ in corrupt})} videos ({scope})",
        "re-extract these videos (a full disk or an interrupted copy truncates JPEGs)",
        corrupt_example)
    mixed = [f for f in readable if len(f.sizes) > 1]
    out += findings_over(
        "error", "media.size_changes", root, mixed,
        f"{len(mixed)} videos change frame size between frames; a clip across the change "
        "cannot be stacked and is skipped", "re-extract with one output size",
        lambda f: f"{f.path}: " + ", ".join(f"{w}x{h} ({where})"
                                             for (h, w), where in f.sizes.items()))
    sizes = {size for f in readable for size in f.sizes}
    if sizes:
        ctx.stats["frame_sizes"] = sorted(f"{w}x{h}" for h, w in sizes)
    return out


def _last_keyframe_frames(ctx: DataContext) -> dict[str, int]:
    """Per video, the frame index its last annotated keyframe (either split) needs."""
    data = ctx.cfg.data
    last_key: dict[str, int] = {}
    for split in SPLITS:
        gt = ctx.gt[split]
        if len(gt):
            top = gt.groupby("video_id")["timestamp"].max()
            for vid, t in top.items():
                centre = int(np.floor((t - data.segment_start) * data.fps + 1e-6))
                last_key[str(vid)] = max(last_key.get(str(vid), -1), centre)
    return last_key


def _frame_count_findings(ctx: DataContext, facts: list[MediaFacts], kind: str) -> list[Finding]:
    """Frame counts that fit neither the segment's length nor AVA's cut (one second more):
    explained by another frame rate, too short for the last keyframe, 1-2 frames off, or odd."""
    data, root = ctx.cfg.data, ctx.media_root()
    short_len, ava_len = expected_frame_counts(data.fps, data.segment_start, data.segment_end)
    seconds = data.segment_end - data.segment_start
    last_key = _last_keyframe_frames(ctx)
    wrong_fps, short, odd, near, cut = [], [], [], [], []
    for f in facts:
        n = f.num_frames
        d = min(abs(n - short_len), abs(n - ava_len))
        if d == 0:
            continue
        guess = _likely_fps(n, data.fps, data.segment_start, data.segment_end)
        video_frames = _lost_its_end(ctx, f, guess) if guess is not None else None
        if video_frames is not None:
            cut.append((f, video_frames))
        elif guess is not None:
            wrong_fps.append((f, guess))
        elif last_key.get(f.video_id, -1) >= n:
            short.append(f)
        elif d <= 2:
            near.append(f)
        else:
            odd.append(f)
    expect = (f"{ava_len} ({seconds + 1:g} s, AVA's cut) or {short_len} ({seconds:g} s) frames at "
              f"{data.fps:g} fps for the segment {data.segment_start:g}..{data.segment_end:g} s")
    return [
        *findings_over(
            "error", "media.truncated", root, cut,
            f"{len(cut)} {kind}s end early: their last frame is the video's frame at that "
            f"index at {data.fps:g} fps, so frames are missing at the end (the count alone "
            "looks like another frame rate); the keyframes past the end read clamped frames",
            "re-extract these videos' frames (an interrupted extraction, a full disk or a "
            "partial copy leaves a folder short)",
            lambda fv: f"{fv[0].path}: {fv[0].num_frames} frames, its video {fv[1]}: the last "
                       f"{fv[1] - fv[0].num_frames} are missing"),
        *findings_over(
            "error", "media.wrong_fps_count", root, wrong_fps,
            f"{len(wrong_fps)} {kind}s have a frame count that matches another frame rate, "
            f"expected {expect}: frame k no longer shows time start + k / {data.fps:g} and "
            "every clip is off in time",
            f"re-extract at {data.fps:g} fps with avadet extract-frames --fps {data.fps:g} "
            "(it resamples by timestamps; one JPEG per decoded frame does not), or set data.fps "
            "to the media's rate",
            lambda fg: f"{fg[0].path}: {fg[0].num_frames} frames = {fg[1]:g} fps x the segment"),
        *findings_over(
            "error", "media.too_short", root, short,
            f"{len(short)} {kind}s end before their last annotated keyframe (expected {expect}); "
            "those keyframes read clamped frames",
            "re-cut the videos over the whole segment (data_prep/cut_videos.py) and re-extract",
            lambda f: f"{f.path}: {f.num_frames} frames, last keyframe needs frame "
                      f"{last_key[f.video_id]}"),
        *findings_over(
            "warning", "media.frame_count", root, odd,
            f"{len(odd)} {kind}s have an unexpected frame count (expected {expect}); fine for "
            "videos of different lengths, wrong for a fixed-length cut",
            "check the cut's start and length; set data.segment_start / segment_end to the "
            "cut's span", lambda f: f"{f.path}: {f.num_frames} frames ({f.num_frames / data.fps:.2f} s)"),
        *findings_over(
            "warning", "media.frame_count_off_by_one", root, near,
            f"{len(near)} {kind}s are 1-2 frames off the expected count ({expect}): the cut may "
            f"start up to 2 frames late", "re-cut with a frame-accurate cut (re-encode, no -c copy)",
            lambda f: f"{f.path}: {f.num_frames} frames"),
    ]


def _fps_findings(ctx: DataContext, facts: list[MediaFacts]) -> list[Finding]:
    """Videos whose stated frame rate is not ``data.fps``, or that state none."""
    fps, root = ctx.cfg.data.fps, ctx.media_root()
    wrong = [f for f in facts if f.fps is not None and abs(float(f.fps) - fps) > 0.01]
    unknown = [f for f in facts if f.fps is None]
    return [
        *findings_over(
            "error", "media.video_fps", root, wrong,
            f"{len(wrong)} videos run at another frame rate than data.fps = {fps:g}: the video "
            "source maps keyframe t to frame (t - start) x fps and reads the wrong time",
            f"re-encode at {fps:g} fps (data_prep/cut_videos.py) or set data.fps",
            lambda f: f"{f.path}: {float(f.fps):.3f} fps"),
        *findings_over("warning", "media.video_fps_unknown", root, unknown,
                       f"{len(unknown)} videos do not state a frame rate", "re-mux them",
                       lambda f: str(f.path)),
    ]
