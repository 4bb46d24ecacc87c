"""Video writing with PyAV (no ffmpeg binary needed), written atomically.

PyAV's wheels bundle libav with ``libx264`` (H.264), ``mpeg4`` and ``libvpx``; avadet writes
H.264 in MP4 by default (``yuv420p``, constant rate factor ``crf``), falling back to MPEG-4
Part 2 where a build lacks libx264.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

import av
import numpy as np

try:  # PyAV >= 13: an IntEnum; before, the frame took the type's name
    from av.video.frame import PictureType

    _KEY_PICTURE = PictureType.I
except ImportError:  # pragma: no cover - old PyAV
    _KEY_PICTURE = "I"

from avadet.errors import FormatError
from avadet.io.atomic import publish_mode

PathLike = Union[str, Path]


def available_codec(preferred: tuple[str, ...] = ("libx264", "mpeg4")) -> str:
    """The first encoder of ``preferred`` that this PyAV build offers."""
    for name in preferred:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 - PyAV raises several types for unknown codecs
            continue
    raise RuntimeError(f"none of the video encoders {preferred} is available in PyAV {av.__version__}")


def codec_options(codec: str, crf: int, preset: str = "veryfast") -> dict[str, str]:
    """Encoder options: x264 quality by ``crf``; MPEG-4 by a matching fixed quantiser."""
    if codec == "libx264":
        return {"crf": str(crf), "preset": preset}
    return {"qscale": str(max(1, min(31, crf // 6)))}


class VideoWriter:
    """Append RGB frames to a video; the file appears at ``path`` only after :meth:`close`.

    Frames are ``(H, W, 3)`` uint8 RGB, or ``(N, H, W, 3)`` batches. ``H`` and ``W`` must be
    even (``yuv420p``). Frame ``k`` gets presentation time ``k / fps`` exactly. ``gop`` sets the
    key-frame interval (encoder default when None). ``key_frames``: frame numbers made key
    frames (IDR) on purpose, e.g. where training clips start
    (:func:`avadet.prep.cut.clip_start_key_frames`); ``gop`` then only bounds the distance
    between them. ``x264_params``: more libx264 settings (``key=value:key=value``, e.g.
    ``cabac=0``); other codecs ignore them.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        width: int,
        height: int,
        fps: Union[int, float, Fraction],
        codec: Optional[str] = None,
        crf: int = 18,
        preset: str = "veryfast",
        gop: Optional[int] = None,
        key_frames: Optional[Iterable[int]] = None,
        x264_params: Optional[str] = None,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"video size must be even for yuv420p, got {width}x{height}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                         dir=self.path.parent)
        os.close(fd)
        self.width, self.height = width, height
        self.codec = codec or available_codec()
        rate = Fraction(fps).limit_denominator(1001)
        self._container = av.open(self._tmp, mode="w", format="mp4")
        self._stream = self._container.add_stream(self.codec, rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = 1 / rate
        self._stream.codec_context.time_base = 1 / rate
        options = codec_options(self.codec, crf, preset)
        if x264_params and self.codec == "libx264":
            options["x264-params"] = x264_params
        self._stream.options = options
        self._key_frames = frozenset(int(k) for k in key_frames) if key_frames is not None else None
        if gop:  # a key frame every `gop` frames: short seeks for random clip access
            # With key frames chosen by the caller, x264 must not add its own one frame early
            # (it counts its interval so that `gop` frames apart gets one at gop - 1).
            self._stream.codec_context.gop_size = int(gop) + (1 if self._key_frames else 0)
        self._count = 0
        self._closed = False

    def write(self, frames: np.ndarray) -> None:
        """Encode one ``(H, W, 3)`` frame or a ``(N, H, W, 3)`` batch (uint8 RGB)."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.shape[1:] != (self.height, self.width, 3) or frames.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 frames of shape (H={self.height}, W={self.width}, 3), "
                f"got {frames.dtype} {frames.shape[1:]}"
            )
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            video_frame.pts = self._count
            if self._key_frames is not None and self._count in self._key_frames:
                video_frame.pict_type = _KEY_PICTURE
            self._count += 1
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)

    @property
    def frames_written(self) -> int:
        return self._count

    def close(self) -> Path:
        """Flush the encoder and move the finished file into place."""
        if self._closed:
            return self.path
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        publish_mode(self._tmp, self.path)  # not mkstemp's private 0600
        os.replace(self._tmp, self.path)
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Drop the partial file (``path`` is left as it was)."""
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self._container.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)
        self._closed = True


@contextlib.contextmanager
def open_video_writer(path: PathLike, **kwargs) -> Iterator[VideoWriter]:
    """``with open_video_writer(p, width=W, height=H, fps=30) as w: w.write(frames)``; the
    file at ``p`` appears only if the block succeeds."""
    writer = VideoWriter(path, **kwargs)
    try:
        yield writer
    except BaseException:
        writer.abort()
        raise
    writer.close()


# ---------------------------------------------------------------------------------------------
# Reading: frames resampled to a target rate by timestamps


@dataclass
class VideoInfo:
    """What PyAV reports about a video's first video stream."""

    path: Path
    fps: Fraction  # average frame rate (guessed where the container has none)
    duration: Optional[float]  # seconds, from the container; None if unknown
    width: int
    height: int
    start_time: Fraction  # the container's start time in seconds (ffmpeg seeks relative to it)


def _open(path: Path):
    try:
        container = av.open(str(path))
    except FileNotFoundError:
        raise FormatError(path, "video not found") from None
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise FormatError(path, f"cannot open video: {exc}") from None
    if not container.streams.video:
        container.close()
        raise FormatError(path, "no video stream")
    return container


def probe_video(path: PathLike) -> VideoInfo:
    """Frame rate, duration and size of a video (no decoding)."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise FormatError(path, "cannot tell the video's frame rate")
        duration = container.duration / av.time_base if container.duration else None
        start = Fraction(container.start_time or 0, av.time_base)
        return VideoInfo(path, Fraction(rate), duration, stream.codec_context.width,
                         stream.codec_context.height, start)


def iter_resampled_frames(
    path: PathLike,
    *,
    fps: Union[int, float, Fraction, None] = None,
    start: float = 0.0,
    duration: Optional[float] = None,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decode ``path`` and yield ``(j, frame)`` for output frames at times ``start + j / fps``.

    Output frame ``j`` is the source frame *showing* that time: the last one whose timestamp
    is at or before it (the first frame for times before it). Times are relative to the
    container's start time and compared exactly (fractions), so a 30-fps source at 30 fps
    maps frame to frame, a 25-fps source is resampled to the right count, and a cut
    ``[start, start + duration)`` yields ``ceil(duration * fps)`` frames when the source covers
    it (901 s at 30 fps: 27,030). Frames are yielded until ``start + duration`` or the end of
    the last source frame. ``fps=None`` keeps the source's average rate.

    Raises:
        FormatError: the file cannot be opened or decoded (names the file).
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        src_rate = Fraction(stream.average_rate or stream.guessed_rate or 30)
        rate = Fraction(fps).limit_denominator(1001) if fps is not None else src_rate
        tb = Fraction(stream.time_base)
        origin = Fraction(container.start_time or 0, av.time_base)
        t0 = Fraction(start).limit_denominator(1000)
        limit = None if duration is None else int(np.ceil(Fraction(duration).limit_denominator(1000) * rate))
        end = None if duration is None else t0 + Fraction(limit, 1) / rate
        if t0 > 0:
            container.seek(int((t0 + origin) / tb), stream=stream, backward=True, any_frame=False)
        j = 0
        prev, prev_end = None, None
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = frame.pts * tb - origin
            if prev is None:
                prev = frame  # times before the first frame show the first frame
            while (limit is None or j < limit) and t0 + j / rate < t:
                yield j, prev
                j += 1
            prev = frame
            length = frame.duration * tb if frame.duration else 1 / src_rate
            prev_end = t + length
            if (limit is not None and j >= limit) or (end is not None and t >= end):
                break
        if prev is not None and prev_end is not None:
            while (limit is None or j < limit) and t0 + j / rate < prev_end:
                yield j, prev
                j += 1
    except av.FFmpegError as exc:
        raise FormatError(path, f"cannot decode video: {exc}") from None
    finally:
        container.close()
