"""Cut AVA's annotated segment out of each movie, as ``ffmpeg -ss 900 -t 901 -i in out.mp4``.

The output keeps the source's frame rate and starts at time 0 = ``start`` in the source, so
frame ``k`` of the cut shows source time ``start + k / fps`` (the AVA convention: keyframe
``t`` is frame ``fps * (t - 900)``). Video is decoded and re-encoded with PyAV: H.264
(``libx264``, ``yuv420p``, ``--crf`` 18 by default, x264 preset ``veryfast``) in MP4; audio is
dropped (nothing in avadet reads it). Outputs are ``<stem>.mp4`` and appear only when
complete, so a run can be stopped and started again: finished videos are skipped.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Optional, Union

from tqdm import tqdm

from avadet.errors import AvadetError, FormatError
from avadet.prep.media import VideoWriter, iter_resampled_frames, probe_video

PathLike = Union[str, Path]
LOG = logging.getLogger(__name__)
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv")
AVA_START = 900.0
AVA_DURATION = 901.0


def list_videos(folder: PathLike) -> list[Path]:
    """Video files directly in ``folder`` (by extension), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AvadetError(f"{folder}: not a folder")
    videos = sorted(p for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not videos:
        # Nothing to do is almost always a wrong path: say so rather than succeed on nothing.
        raise AvadetError(f"{folder}: no video files ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    return videos


# CAVLC instead of CABAC entropy coding: CABAC's arithmetic decoding is serial and most of an
# H.264 decoder's time; without it a training clip decodes 1.47x faster, for ~11% larger files
# at the same quality (entropy coding is lossless: the same CRF gives the same pictures' quality).
FAST_DECODE_X264 = "cabac=0"
# PySlowFast's and MMAction2's published AVA models read 64-frame spans (32x2, 8x8, 4x16) that
# start 32 frames before their keyframe.
CLIP_LEAD_FRAMES = 32


def clip_start_key_frames(fps: float, duration: float, lead_frames: int) -> list[int]:
    """The frame numbers of a cut (frame 0 at its start, a whole second of the movie) where
    the training clips of its keyframes start: ``floor(n * fps) - lead_frames`` for each whole
    second ``n`` of the cut, the keyframe's centre frame as :func:`avadet.data.sampling.
    keyframe_to_frame_index` computes it. A key frame there means a random clip read decodes
    from its own first frame, with no frames before it to decode and throw away."""
    out = []
    for n in range(1, int(math.ceil(duration)) + 1):
        k = int(math.floor(n * float(fps) + 1e-6)) - int(lead_frames)
        if k > 0:
            out.append(k)
    return out


def cut_video(
    src: PathLike,
    dst: PathLike,
    *,
    start: float = AVA_START,
    duration: float = AVA_DURATION,
    crf: int = 18,
    preset: str = "veryfast",
    codec: Optional[str] = None,
    gop_seconds: Optional[float] = 1.0,
    clip_lead_frames: Optional[int] = CLIP_LEAD_FRAMES,
    fast_decode: bool = True,
) -> int:
    """Write ``[start, start + duration)`` of ``src`` to ``dst``; return the frame count.

    Frames keep the source's (average) frame rate; a source shorter than the window gives a
    shorter cut (logged). ``dst`` appears atomically when the cut is complete.
    ``gop_seconds``: a key frame at least this often (None: the encoder's default, 250 frames
    for x264). Training reads clips at random keyframes straight from the video, and each read
    decodes from the previous key frame: one per second makes that as cheap as reading the
    JPEG frames (docs/benchmarks.md, "Training loader"), for ~1.5x the file size.
    ``clip_lead_frames``: with a GOP, place those key frames where the training clips start,
    this many frames before each whole second (:func:`clip_start_key_frames`; 32 for the
    published models' 64-frame spans), so that a clip read decodes no frames before its own
    first; None: key frames where the encoder puts them. ``fast_decode``: x264 with CAVLC
    entropy coding (:data:`FAST_DECODE_X264`), decoded 1.47x faster for ~11% more bytes.
    """
    src, dst = Path(src), Path(dst)
    info = probe_video(src)
    width, height = info.width - info.width % 2, info.height - info.height % 2
    gop = max(1, round(gop_seconds * float(info.fps))) if gop_seconds else None
    key_frames = (clip_start_key_frames(info.fps, duration, clip_lead_frames)
                  if gop and clip_lead_frames is not None else None)
    writer = VideoWriter(dst, width=width, height=height, fps=info.fps, crf=crf, preset=preset,
                         codec=codec, gop=gop, key_frames=key_frames,
                         x264_params=FAST_DECODE_X264 if fast_decode else None)
    try:
        for _, frame in iter_resampled_frames(src, start=start, duration=duration):
            rgb = frame.to_ndarray(format="rgb24")[:height, :width]
            writer.write(rgb)
        count = writer.frames_written
        if count == 0:
            raise FormatError(src, f"no frames in [{start}, {start + duration}) s")
        writer.close()
    except BaseException:
        writer.abort()
        raise
    expected = round(duration * float(info.fps))
    if count != expected:
        LOG.warning("%s: cut has %d frames, expected %d (%s fps x %s s): is the source shorter?",
                    src, count, expected, info.fps, duration)
    return count


def cut_videos(
    src_dir: PathLike,
    dst_dir: PathLike,
    *,
    start: float = AVA_START,
    duration: float = AVA_DURATION,
    crf: int = 18,
    preset: str = "veryfast",
    gop_seconds: Optional[float] = 1.0,
    clip_lead_frames: Optional[int] = CLIP_LEAD_FRAMES,
    fast_decode: bool = True,
    progress: bool = True,
) -> dict[str, int]:
    """Cut every video of ``src_dir`` into ``dst_dir/<stem>.mp4``.

    Returns ``{stem: frames}`` for the videos cut now (-1 for ones already done and skipped).
    A video that cannot be read is logged, counted and skipped; if any failed, an
    :class:`~avadet.errors.AvadetError` listing them is raised after the others are done.
    """
    videos = list_videos(src_dir)
    dst_dir = Path(dst_dir)
    dst_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, int] = {}
    failed: list[str] = []
    bar = tqdm(videos, desc="cut", unit="video", disable=not progress)
    for video in bar:
        out = dst_dir / f"{video.stem}.mp4"
        bar.set_postfix_str(video.name)
        if out.exists():
            results[video.stem] = -1
            continue
        started = time.perf_counter()
        try:
            results[video.stem] = cut_video(video, out, start=start, duration=duration, crf=crf,
                                            preset=preset, gop_seconds=gop_seconds,
                                            clip_lead_frames=clip_lead_frames,
                                            fast_decode=fast_decode)
        except FormatError as exc:
            LOG.error("skipping %s", exc)
            failed.append(str(video))
            continue
        LOG.info("%s: %d frames in %.1f s", out, results[video.stem], time.perf_counter() - started)
    if failed:
        raise AvadetError(f"{len(failed)} of {len(videos)} videos could not be cut: {', '.join(failed)}")
    return results
