"""What one video's media are, read cheaply: frame-folder listings, the first and last bytes
of every frame file (a JPEG's start and end-of-image markers: a truncated file lacks the
end marker), video container headers. Decoding every frame happens only with ``full_scan``.

:func:`inspect_frames` and :func:`inspect_video` return a :class:`MediaFacts` each; the checks
in :mod:`avadet.doctor.media_checks` turn many of them into findings. Both are thread-safe and
release the GIL in their I/O and decoding, so a thread pool runs them in parallel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from avadet.data.sources import (
    JPEG_START,
    FrameFolderSource,
    VideoSource,
    frame_name_regex,
    jpeg_truncated,
)

# Frames of a video decoded by the default (sampled) check, spread evenly over the video.
DEFAULT_SAMPLE = 8


@dataclass
class MediaFacts:
    """Facts about one video's media.

    ``num_frames``: frames the source will see (frame folders: the largest file number, as
    :class:`~avadet.data.sources.FrameFolderSource`; videos: the container's frame count, or
    duration x rate when it has none, or the decoded count after a full scan).
    ``missing_numbers``: file numbers absent between 1 and the largest (frame folders).
    ``empty_files`` / ``corrupt``: ``(name, reason)`` of files that cannot be decoded.
    ``sizes``: frame size ``(height, width)`` -> an example file or frame index.
    ``fps``: the video's average frame rate (videos only). ``error``: why nothing could be read.
    """

    video_id: str
    path: Path
    exists: bool = True
    error: str = ""
    num_frames: int = 0
    files: int = 0
    missing_numbers: list[int] = field(default_factory=list)
    num_missing: int = 0
    empty_files: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    sizes: dict[tuple[int, int], str] = field(default_factory=dict)
    fps: Optional[Fraction] = None
    header_frames: int = 0  # videos: the container's count (0: none)
    decoded: int = 0
    markers_checked: int = 0  # frame files whose JPEG start and end markers were read
    counted_by_decoding: bool = False
    zero_based: bool = False  # frame folders: a file numbered 0 exists (avadet counts from 1)


def guess_template(name: str, video_id: str) -> str:
    """A ``data.frame_template`` producing ``name``: the video id and the last run of digits
    replaced by their fields (``img_00042.jpg`` -> ``img_{index:05d}.jpg``)."""
    import re

    match = list(re.finditer(r"\d+", name))
    if not match:
        return name
    last = match[-1]
    head, tail = name[: last.start()], name[last.end():]
    head = head.replace(video_id, "{video_id}") if video_id else head
    return f"{head}{{index:0{len(last.group())}d}}{tail}"


def _sample_numbers(top: int, sample: int) -> np.ndarray:
    if top <= 0:
        return np.zeros(0, dtype=np.int64)
    if sample <= 0 or sample >= top:
        return np.arange(1, top + 1)
    return np.unique(np.linspace(1, top, sample).round().astype(np.int64))


def _jpeg_problem(data: bytes, tail: Optional[bytes] = None) -> str:
    """Why a file starting with ``data`` and ending with ``tail`` (default: ``data`` is the
    whole file) is not a complete JPEG ("" if it looks complete): start and end markers."""
    tail = data if tail is None else tail
    if len(data) == 0:
        return "empty file"
    if not data.startswith(JPEG_START):
        return "not a JPEG (no start-of-image marker)"
    if jpeg_truncated(data[:2], tail[-_TAIL:]):
        return "truncated JPEG (no end-of-image marker)"
    return ""


# Bytes read from a frame file's end: its end-of-image marker and the padding some writers add.
_TAIL = 64


def _marker_problem(path: str, size: int) -> str:
    """:func:`_jpeg_problem` from the file's first 2 and last ``_TAIL`` bytes only."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(max(size - _TAIL, 0))
            tail = fh.read(_TAIL)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    return _jpeg_problem(head, tail)


def _check_markers(facts: MediaFacts, names: dict, *, skip: set, empty: set) -> None:
    """Every frame file not in ``skip`` (decoded later) or ``empty``: its JPEG markers."""
    for number, entry in sorted(names.items()):
        if number in skip or entry.name in empty:
            continue
        try:
            size = entry.stat().st_size
        except OSError:
            continue  # counted as empty already
        problem = _marker_problem(entry.path, size)
        facts.markers_checked += 1
        if problem:
            facts.corrupt.append((entry.name, problem))


def _decode_sampled(facts: MediaFacts, names: dict, sampled: list, *, empty: set) -> None:
    """Decode the ``sampled`` frame numbers whole; note their sizes and any problem."""
    for number in sampled:
        entry = names.get(number)
        if entry is None or entry.name in empty:
            continue
        try:
            data = Path(entry.path).read_bytes()
        except OSError as exc:
            facts.corrupt.append((entry.name, f"unreadable: {exc.strerror or exc}"))
            continue
        problem = _jpeg_problem(data)
        image = None
        if not problem:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                problem = "cannot decode image"
        facts.decoded += 1
        facts.markers_checked += 1
        if problem:
            facts.corrupt.append((entry.name, problem))
            continue
        facts.sizes.setdefault(image.shape[:2], entry.name)


def inspect_frames(
    source: FrameFolderSource, video_id: str, *, sample: int = DEFAULT_SAMPLE,
    full_scan: bool = False,
) -> MediaFacts:
    """List ``frames_dir/<video_id>`` (names and sizes; one ``stat`` per file), read every
    frame file's first and last bytes (JPEG start and end-of-image markers: a training run
    reads nearly every frame, and a truncated JPEG lacks the end marker) and decode ``sample``
    frames spread over it (every frame with ``full_scan``)."""
    folder = source.frames_dir / video_id
    facts = MediaFacts(video_id, folder)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        facts.exists, facts.error = False, "no frame folder"
        return facts
    except OSError as exc:
        facts.error = f"cannot list frames: {exc.strerror or exc}"
        return facts
    pattern = frame_name_regex(source.template, video_id)
    numbers, names = [], {}
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None:
            continue
        number = int(match.group(1))
        numbers.append(number)
        names[number] = entry
    if not numbers:
        sample_name = next((e.name for e in entries if e.is_file()), None)
        facts.error = f"no frames named like {source.template!r}"
        if sample_name is not None:
            facts.error += (f" (found e.g. {sample_name!r}: set data.frame_template, e.g. "
                            f"{guess_template(sample_name, video_id)!r})")
        return facts
    present = np.unique(np.asarray(numbers, dtype=np.int64))
    facts.zero_based = bool(present[0] == 0)
    top = int(present[-1])
    facts.files, facts.num_frames = int(present.size), top
    missing = np.setdiff1d(np.arange(1, top + 1), present, assume_unique=True)
    facts.num_missing = int(missing.size)
    facts.missing_numbers = missing[:5].tolist()
    for entry in names.values():
        try:
            if entry.stat().st_size == 0:
                facts.empty_files.append(entry.name)
        except OSError:
            facts.empty_files.append(entry.name)
    facts.empty_files.sort()
    sampled = _sample_numbers(top, 0 if full_scan else sample).tolist()
    empty = set(facts.empty_files)
    if not full_scan:  # the decoded ones are checked whole below
        _check_markers(facts, names, skip=set(sampled), empty=empty)
    _decode_sampled(facts, names, sampled, empty=empty)
    facts.corrupt.sort()
    return facts


def inspect_video(
    source: VideoSource, video_id: str, *, sample: int = 3, full_scan: bool = False
) -> MediaFacts:
    """Read the header of ``<video_id>.<ext>`` (frame rate, frame count, duration, size) and
    decode ``sample`` frames at seek points spread over it (every frame with ``full_scan``)."""
    import av

    try:
        path = source.video_path(video_id)
    except Exception:  # noqa: BLE001 - ClipReadError: no file with any extension
        tried = "|".join(e.lstrip(".") for e in source.extensions)
        return MediaFacts(video_id, source.videos_dir / f"{video_id}.{{{tried}}}", exists=False,
                          error="no such video")
    facts = MediaFacts(video_id, path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        facts.error = f"cannot open video: {exc}"
        return facts
    try:
        if not container.streams.video:
            facts.error = "no video stream"
            return facts
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        facts.fps = Fraction(rate) if rate else None
        facts.header_frames = int(stream.frames or 0)
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        if facts.header_frames:
            facts.num_frames = facts.header_frames
        elif duration and facts.fps:
            facts.num_frames = int(round(duration * float(facts.fps)))
        width, height = stream.codec_context.width, stream.codec_context.height
        if width and height:
            facts.sizes[(height, width)] = "header"
        if full_scan:
            count = 0
            try:
                for frame in container.decode(stream):
                    facts.sizes.setdefault((frame.height, frame.width), f"frame {count}")
                    count += 1
            except av.FFmpegError as exc:
                facts.corrupt.append((f"frame {count}", f"cannot decode: {exc}"))
            facts.num_frames, facts.decoded, facts.counted_by_decoding = count, count, True
        elif duration and sample > 0:
            for fraction in np.linspace(0.0, 0.9, sample):
                target = fraction * duration
                try:
                    container.seek(int(target / stream.time_base), stream=stream, backward=True)
                    frame = next(container.decode(stream), None)
                except (av.FFmpegError, StopIteration) as exc:
                    facts.corrupt.append((f"t={target:.1f}s", f"cannot decode: {exc}"))
                    continue
                if frame is None:
                    facts.corrupt.append((f"t={target:.1f}s", "no frame after seeking"))
                    continue
                facts.decoded += 1
                facts.sizes.setdefault((frame.height, frame.width), f"t={target:.1f}s")
    except av.FFmpegError as exc:
        facts.error = f"cannot read video: {exc}"
    finally:
        container.close()
    return facts
