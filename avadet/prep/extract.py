"""Extract 30-fps JPEG frames from cut AVA videos: ``frames/<vid>/<vid>_%06d.jpg`` (1-based).

Equivalent to ``ffmpeg -i cut.mp4 -r 30 -q:v 1 <vid>_%06d.jpg`` without ffmpeg: frame ``k``
(0-based) is the source frame showing time ``k / fps`` (see
:func:`avadet.prep.media.iter_resampled_frames`), so a 25-fps source gives the same count as a
30-fps one: 27,030 for a correctly cut 901-s AVA video. Plain OpenCV extraction (one JPEG per
decoded frame) gets this wrong for non-30-fps sources, the cause of the missing-frame crashes
reported against MMAction2.

Resumable: a video's folder is complete once its marker ``.done.json`` (frame count, fps,
source size) is written, atomically, after the last frame. A folder without the marker is
partial and is redone from scratch. Videos run in parallel processes.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from pathlib import Path
from typing import Optional, Union

import cv2
from tqdm import tqdm

from avadet.errors import AvadetError, FormatError
from avadet.io import atomic_write
from avadet.prep.cut import list_videos
from avadet.prep.media import iter_resampled_frames

PathLike = Union[str, Path]
LOG = logging.getLogger(__name__)
DONE_MARKER = ".done.json"
AVA_FRAMES = 27030  # 901 s x 30 fps
DEFAULT_TEMPLATE = "{video_id}_{index:06d}.jpg"


def is_done(folder: PathLike) -> Optional[int]:
    """The frame count recorded by a finished extraction, or None when not finished."""
    try:
        return int(json.loads((Path(folder) / DONE_MARKER).read_text(encoding="utf-8"))["frames"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _clear(folder: Path) -> None:
    for entry in os.scandir(folder):
        if entry.is_file() and (entry.name.endswith(".jpg") or entry.name == DONE_MARKER):
            os.unlink(entry.path)


def extract_video_frames(
    video: PathLike,
    frames_root: PathLike,
    *,
    video_id: Optional[str] = None,
    fps: float = 30.0,
    quality: int = 95,
    template: str = DEFAULT_TEMPLATE,
) -> int:
    """Extract one video into ``frames_root/<video_id>/``; return the number of frames.

    Skips a folder that is already complete (marker present); a partial folder is emptied
    and redone. JPEG ``quality`` is OpenCV's 0-100 scale (ffmpeg's ``-q:v 1`` is about 95+).
    """
    video = Path(video)
    video_id = video_id or video.stem
    folder = Path(frames_root) / video_id
    done = is_done(folder)
    if done is not None:
        return done
    folder.mkdir(parents=True, exist_ok=True)
    _clear(folder)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    count = 0
    last_frame, last_bgr = None, None
    for j, frame in iter_resampled_frames(video, fps=fps):
        if frame is not last_frame:  # a repeated source frame is converted once
            last_frame, last_bgr = frame, frame.to_ndarray(format="bgr24")
        path = folder / template.format(video_id=video_id, index=j + 1)
        if not cv2.imwrite(str(path), last_bgr, params):
            raise AvadetError(f"{path}: cannot write JPEG (disk full?)")
        count = j + 1
    if count == 0:
        raise FormatError(video, "no frames decoded")
    stat = video.stat()
    with atomic_write(folder / DONE_MARKER) as handle:
        json.dump({"frames": count, "fps": fps, "source": str(video), "source_size": stat.st_size,
                   "quality": quality}, handle)
    return count


def _work(task: tuple[str, str, float, int, str]) -> tuple[str, int, str, float]:
    video, root, fps, quality, template = task
    started = time.perf_counter()
    try:
        count = extract_video_frames(video, root, fps=fps, quality=quality, template=template)
    except AvadetError as exc:
        return Path(video).stem, -1, str(exc), 0.0
    return Path(video).stem, count, "", time.perf_counter() - started


def extract_frames(
    videos_dir: PathLike,
    frames_root: PathLike,
    *,
    fps: float = 30.0,
    quality: int = 95,
    workers: int = 1,
    expected_frames: Optional[int] = AVA_FRAMES,
    template: str = DEFAULT_TEMPLATE,
    progress: bool = True,
) -> dict[str, int]:
    """Extract every video of ``videos_dir`` in parallel; return ``{video_id: frames}``.

    Logs each video's frame count and warns when it differs from ``expected_frames``
    (27,030 for a correctly cut AVA video; None to skip the check). Videos that fail are
    logged and skipped; an :class:`~avadet.errors.AvadetError` listing them follows at the end.
    """
    videos = list_videos(videos_dir)
    Path(frames_root).mkdir(parents=True, exist_ok=True)
    tasks = [(str(v), str(frames_root), fps, quality, template) for v in videos]
    counts: dict[str, int] = {}
    failed: list[str] = []
    ctx = multiprocessing.get_context("spawn") if workers > 1 else None
    pool = ctx.Pool(workers) if ctx else None
    try:
        results = pool.imap_unordered(_work, tasks) if pool else map(_work, tasks)
        for video_id, count, error, seconds in tqdm(results, total=len(tasks), desc="frames",
                                                    unit="video", disable=not progress):
            if error:
                LOG.error("skipping %s", error)
                failed.append(video_id)
                continue
            counts[video_id] = count
            LOG.info("%s: %d frames%s", video_id, count,
                     f" in {seconds:.1f} s" if seconds else " (already done)")
            if expected_frames is not None and count != expected_frames:
                LOG.warning("%s: %d frames, expected %d: check the cut (start/duration) and "
                            "the source", video_id, count, expected_frames)
    finally:
        if pool:
            pool.close()
            pool.join()
    if failed:
        raise AvadetError(f"{len(failed)} of {len(tasks)} videos failed: {', '.join(sorted(failed))}")
    return counts
