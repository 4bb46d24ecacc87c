"""Clip sources: read given frames of one cut segment video, from JPEG folders or video files.

Both sources have the same two methods and return the same frames for the same request:

- ``read(video_id, indices) -> (T, H, W, 3) uint8 RGB``: ``indices`` are 0-based frame indices
  of the cut segment video (frame ``k`` shows ``segment_start + k / fps``), already clamped;
  repeats are allowed (clamped clips) and each distinct frame is decoded once.
- ``num_frames(video_id) -> int``: frames in that video (cached).

A missing frame, an unreadable or truncated JPEG (no end-of-image marker: OpenCV would decode
it with a grey fill and only warn) or a video that cannot be opened or decoded raises
:class:`ClipReadError` naming the file; the dataset counts and skips such keyframes.
"""

from __future__ import annotations

import os
import re
import string
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import cv2
import numpy as np

from avadet.errors import AvadetError

PathLike = Union[str, os.PathLike]

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")


class ClipReadError(AvadetError, OSError):
    """Frames of a clip could not be read. ``path`` is the file (or folder) at fault."""

    def __init__(self, path: object, message: str):
        self.path = str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}")


def _as_indices(indices: Union[np.ndarray, Sequence[int]]) -> np.ndarray:
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size == 0:
        raise ValueError("no frame indices requested")
    return indices


JPEG_START = b"\xff\xd8"  # SOI: every JPEG file starts with it
JPEG_END = b"\xff\xd9"  # EOI: the last marker; missing when the file was cut short
# Some writers pad a JPEG after its EOI (zeros, a newline); that much is still a complete file.
_JPEG_PADDING = b"\x00\r\n \t"


def jpeg_truncated(head: bytes, tail: bytes) -> bool:
    """Is a file starting with ``head`` and ending with ``tail`` (its last bytes, at least 2
    plus any padding) a JPEG without its end-of-image marker? Files that are not JPEGs (no
    SOI) are not judged here."""
    return head[:2] == JPEG_START and not tail.rstrip(_JPEG_PADDING).endswith(JPEG_END)


def frame_name_regex(template: str, video_id: str) -> re.Pattern:
    """A regex matching the file names ``template`` produces for ``video_id``; group 1 = index."""
    parts = []
    for literal, field_name, _spec, _conv in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field_name == "video_id":
            parts.append(re.escape(video_id))
        elif field_name == "index":
            parts.append(r"(\d+)")
        elif field_name is not None:
            raise ValueError(f"frame template {template!r}: unknown field {{{field_name}}}")
    return re.compile("".join(parts) + r"\Z")


class FrameFolderSource:
    """Frames stored as JPEGs: ``frames_dir/<video_id>/<template>``, file numbers 1-based.

    ``template`` is a ``str.format`` pattern with ``{video_id}`` and ``{index}`` (1-based), by
    default PySlowFast's ``"{video_id}_{index:06d}.jpg"``. Images are decoded with OpenCV and
    returned RGB. ``num_frames`` is the largest file number present (a gap is then reported as
    the missing file when a clip needs it, never silently skipped).
    """

    def __init__(self, frames_dir: PathLike, template: str = "{video_id}_{index:06d}.jpg"):
        self.frames_dir = Path(frames_dir)
        self.template = template
        self._num_frames: dict[str, int] = {}

    def frame_path(self, video_id: str, index: int) -> Path:
        """Path of the 0-based frame ``index`` (file number ``index + 1``)."""
        return self.frames_dir / video_id / self.template.format(video_id=video_id, index=index + 1)

    def num_frames(self, video_id: str) -> int:
        if video_id not in self._num_frames:
            folder = self.frames_dir / video_id
            try:
                names = os.listdir(folder)
            except OSError as exc:
                raise ClipReadError(folder, f"cannot list frames: {exc.strerror or exc}") from None
            pattern = frame_name_regex(self.template, video_id)
            numbers = [int(m.group(1)) for m in map(pattern.match, names) if m]
            if not numbers:
                raise ClipReadError(folder, f"no frames named like {self.template!r}")
            self._num_frames[video_id] = max(numbers)
        return self._num_frames[video_id]

    def read(self, video_id: str, indices: Union[np.ndarray, Sequence[int]]) -> np.ndarray:
        """Frames ``indices`` (0-based) of ``video_id`` as ``(T, H, W, 3)`` uint8 RGB."""
        indices = _as_indices(indices)
        unique, inverse = np.unique(indices, return_inverse=True)
        clip: Optional[np.ndarray] = None
        for i, index in enumerate(unique.tolist()):
            path = self.frame_path(video_id, index)
            if index < 0:
                raise ClipReadError(path, f"negative frame index {index}")
            image = _decode_image(path)
            if clip is None:
                clip = np.empty((len(unique), *image.shape), dtype=np.uint8)
            elif image.shape != clip.shape[1:]:
                raise ClipReadError(
                    path, f"frame size {image.shape[:2]} differs from {clip.shape[1:3]}"
                )
            cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=clip[i])
        assert clip is not None
        return clip if np.array_equal(unique, indices) else clip[inverse]


def _decode_image(path: Path) -> np.ndarray:
    """The image at ``path`` as ``(H, W, 3)`` uint8 BGR; a missing, undecodable or truncated
    file raises :class:`ClipReadError`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ClipReadError(path, "missing frame") from None
    except OSError as exc:
        raise ClipReadError(path, f"cannot read frame: {exc.strerror or exc}") from None
    if jpeg_truncated(data[:2], data[-64:]):
        raise ClipReadError(path, "truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise ClipReadError(path, "cannot decode image")
    return image


@dataclass
class VideoIndex:
    """What a video's packets say about its frames (demuxed once, no decoding).

    ``pts``: ``(N,)`` int64 presentation timestamps of every frame, sorted: frame ``k`` is
    ``pts[k]``. ``keyframe_pts``: ``(M,)`` int64 sorted pts of the key frames (seek points).
    The count comes from the packets, not from the container's (often wrong) frame count.
    """

    path: Path
    pts: np.ndarray
    keyframe_pts: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.pts.size)


_FAST_YUV_COLORSPACES = (2, 5, 6)  # unspecified, BT.470BG, SMPTE 170M: BT.601 matrices
_FAST_YUV_RANGES = (0, 1)  # unspecified, limited ("MPEG") range


def frame_to_rgb(frame: Any) -> np.ndarray:
    """A decoded PyAV frame as ``(H, W, 3)`` uint8 RGB.

    8-bit 4:2:0 BT.601 limited-range frames (what H.264 cuts of AVA are) are converted by
    OpenCV, ~20x faster than libswscale and within a few levels of it (chroma upsampling
    differs); anything else goes through libswscale.
    """
    if (
        frame.format.name == "yuv420p"
        and frame.width % 2 == 0
        and frame.height % 2 == 0
        and frame.colorspace in _FAST_YUV_COLORSPACES
        and frame.color_range in _FAST_YUV_RANGES
    ):
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24")


class _OpenVideo:
    """An open container and where its decoder stands.

    ``packets``: the demux iterator the decoder is fed from (None: position unknown, seek
    first); ``position``: pts of the last frame the decoder put out; ``pending``: frames put
    out but not yet looked at; ``recent``: RGB frames of the last clip read, by pts.
    """

    def __init__(self, container: Any, stream: Any):
        self.container = container
        self.stream = stream
        self.packets: Optional[Any] = None
        self.position = -(2**62)
        self.pending: list = []
        self.recent: dict[int, np.ndarray] = {}

    def seek(self, pts: int) -> None:
        # PyAV flushes the decoder on seek; seeking to a key frame's pts lands on it.
        self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        self.packets = self.container.demux(self.stream)
        self.position = -(2**62)
        self.pending = []

    def decode_until(self, need: list[int], found: dict) -> dict:
        """Decode forward until every pts in ``need`` has been seen (or the stream ends) and
        return the needed frames that came, as RGB. Packets of frames that are not needed
        are decoded with ``skip_frame=NONREF``: a non-reference picture (most B-frames) that
        nobody wants is not decoded at all, which is safe because no other frame uses it."""
        need_set = set(need)
        out: dict[int, np.ndarray] = {}
        last = need[-1]
        ctx = self.stream.codec_context
        skipping = False
        frames = iter(self.pending)
        self.pending = []
        while True:
            for frame in frames:
                stamp = frame.pts
                if stamp is None:
                    continue
                self.position = max(self.position, stamp)
                if stamp in need_set and stamp not in found and stamp not in out:
                    out[stamp] = frame_to_rgb(frame)
                if stamp >= last:
                    self.pending = list(frames)  # keep what the decoder already gave
                    if skipping:
                        ctx.skip_frame = "DEFAULT"
                    return out
            packet = next(self.packets, None) if self.packets is not None else None
            if packet is None:
                self.packets = None  # end of stream: the next read seeks
                if skipping:
                    ctx.skip_frame = "DEFAULT"
                return out
            # Frames after the last one wanted may be wanted by the next clip: never skipped.
            skip = packet.pts is not None and packet.pts < last and packet.pts not in need_set
            if skip != skipping:
                ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
            frames = iter(ctx.decode(packet))

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a broken container must not mask an error
            pass


# Containers a forked process inherited from its parent: kept referenced (never freed) there.
_INHERITED: list = []


class VideoSource:
    """Frames decoded from cut segment videos ``videos_dir/<video_id>.<ext>`` with PyAV.

    Frame-accurate: on first use a video's packets are demuxed (not decoded) into a
    :class:`VideoIndex`, so frame ``k`` is the ``k``-th smallest pts. A read seeks to the last
    key frame at or before the first wanted frame, decodes forward and keeps the frames whose
    pts are wanted, stopping after the last one. Frame ``k`` is therefore the same image as the
    ``k``-th JPEG that ffmpeg or PyAV extract from a constant-frame-rate video.

    Open containers are kept (at most ``max_open`` per process, least recently used closed
    first), so consecutive clips of one video do not pay for re-opening it. Containers are
    never shared across processes: a DataLoader worker opens its own.

    Args:
        videos_dir: folder of the cut videos.
        extensions: file extensions tried, in order, for ``<video_id><ext>``.
        threads: decoder threads per open video (0: let libav choose). Each worker decodes
            its own clips, so with several workers 1 avoids oversubscribing the cores.
        max_open: open containers kept per process.
    """

    def __init__(
        self,
        videos_dir: PathLike,
        *,
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        threads: int = 1,
        max_open: int = 4,
    ):
        self.videos_dir = Path(videos_dir)
        self.extensions = tuple(extensions)
        self.threads = threads
        self.max_open = max(1, max_open)
        self._paths: dict[str, Path] = {}
        self._index: dict[str, VideoIndex] = {}
        self._open: OrderedDict[str, _OpenVideo] = OrderedDict()
        self._pid = os.getpid()

    # -- files and indexes -------------------------------------------------------------------

    def video_path(self, video_id: str) -> Path:
        """The file of ``video_id`` (the first existing extension)."""
        if video_id not in self._paths:
            for ext in self.extensions:
                path = self.videos_dir / f"{video_id}{ext}"
                if path.is_file():
                    self._paths[video_id] = path
                    break
            else:
                tried = "|".join(e.lstrip(".") for e in self.extensions)
                raise ClipReadError(self.videos_dir / f"{video_id}.{{{tried}}}", "no such video")
        return self._paths[video_id]

    def _video(self, video_id: str) -> _OpenVideo:
        """The open container (and decoder state) of ``video_id``, opened on demand."""
        import av

        if os.getpid() != self._pid:
            self._forked()
        video = self._open.get(video_id)
        if video is not None:
            self._open.move_to_end(video_id)
            return video
        path = self.video_path(video_id)
        try:
            container = av.open(str(path))
            if not container.streams.video:
                container.close()
                raise ClipReadError(path, "no video stream")
            stream = container.streams.video[0]
            if self.threads == 1:
                # PyAV's default is not one thread: thread_count 0 (libav picks cores + 1)
                # with slice threading, which starts idle threads that a forked child cannot
                # join (freeing an inherited decoder there hangs) and buys nothing on the
                # single-slice H.264 that x264 writes.
                stream.thread_type = "NONE"
                stream.thread_count = 1
            else:
                stream.thread_type = "AUTO"
                stream.thread_count = self.threads
        except av.error.FFmpegError as exc:
            raise ClipReadError(path, f"cannot open video: {exc}") from None
        video = _OpenVideo(container, stream)
        self._open[video_id] = video
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.close()
        return video

    def _forked(self) -> None:
        """First use in a forked process (a DataLoader worker): the parent's containers share
        its file offsets, so this process opens its own and keeps them across items (up to
        ``max_open``), closing them when it exits. The inherited ones are never closed or
        freed here: a decoder that started threads in the parent cannot be freed in a child,
        whose copy of it waits for threads that do not exist."""
        from multiprocessing import util

        _INHERITED.extend(self._open.values())
        self._open = OrderedDict()
        self._pid = os.getpid()
        # Run by a multiprocessing child (DataLoader workers are) when it returns normally.
        util.Finalize(None, self.close, exitpriority=0)

    def index(self, video_id: str) -> VideoIndex:
        """The :class:`VideoIndex` of ``video_id`` (demuxed on first use, then cached)."""
        if video_id in self._index:
            return self._index[video_id]
        import av

        video = self._video(video_id)
        container, stream = video.container, video.stream
        path = self.video_path(video_id)
        video.packets = None  # the demuxer is moved: the next read seeks
        pts, key = [], []
        try:
            container.seek(0, stream=stream, backward=True)
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    raise ClipReadError(path, "packets without timestamps")
                pts.append(stamp)
                key.append(packet.is_keyframe)
        except av.error.FFmpegError as exc:
            raise ClipReadError(path, f"cannot demux video: {exc}") from None
        if not pts:
            raise ClipReadError(path, "video has no frames")
        pts_arr = np.asarray(pts, dtype=np.int64)
        key_arr = pts_arr[np.asarray(key, dtype=bool)]
        order = np.sort(pts_arr)
        if np.any(np.diff(order) == 0):
            order = np.unique(order)
        keyframes = np.sort(key_arr) if key_arr.size else order[:1]
        self._index[video_id] = VideoIndex(path, order, keyframes)
        return self._index[video_id]

    def num_frames(self, video_id: str) -> int:
        return self.index(video_id).num_frames

    # -- decoding ----------------------------------------------------------------------------

    def read(self, video_id: str, indices: Union[np.ndarray, Sequence[int]]) -> np.ndarray:
        """Frames ``indices`` (0-based) of ``video_id`` as ``(T, H, W, 3)`` uint8 RGB."""
        indices = _as_indices(indices)
        vindex = self.index(video_id)
        if indices.min() < 0 or indices.max() >= vindex.num_frames:
            raise ClipReadError(
                vindex.path,
                f"frame indices {indices.min()}..{indices.max()} outside the video's "
                f"{vindex.num_frames} frames",
            )
        unique, inverse = np.unique(indices, return_inverse=True)
        wanted = [int(p) for p in vindex.pts[unique]]
        video = self._video(video_id)
        # Frames of the previous clip are reused (overlapping clips of neighbouring keyframes).
        found = {p: video.recent[p] for p in wanted if p in video.recent}
        need = [p for p in wanted if p not in found]
        if need:
            try:
                found.update(self._decode(video, vindex, need))
            except Exception as exc:
                import av

                # The decoder is in an unknown state: drop it; the next read reopens the file.
                self._drop(video_id)
                if isinstance(exc, av.error.FFmpegError):
                    raise ClipReadError(vindex.path, f"cannot decode video: {exc}") from None
                raise
        missing = [i for i, p in zip(unique.tolist(), wanted) if p not in found]
        if missing:
            video.packets = None
            raise ClipReadError(vindex.path, f"cannot decode frames {missing}")
        video.recent = {p: found[p] for p in wanted}
        clip = np.stack([found[p] for p in wanted])
        # Distinct sorted indices (every clip that is not clamped) need no second copy.
        return clip if np.array_equal(unique, indices) else clip[inverse]

    def _decode(self, video: _OpenVideo, vindex: VideoIndex, need: list[int]) -> dict:
        """The frames with pts in ``need`` (sorted) as RGB arrays, decoded forward from the
        decoder's current position when that is no more work than seeking, else from the last
        key frame before ``need[0]`` (then, if a demuxer seeks late, from the first key frame).
        """
        first = need[0]
        pos = int(np.searchsorted(vindex.keyframe_pts, first, side="right")) - 1
        seek_to = int(vindex.keyframe_pts[max(pos, 0)])
        attempts = []
        if video.packets is not None and seek_to <= video.position < first:
            attempts.append(None)  # already past that key frame: keep decoding
        attempts.append(seek_to)
        if seek_to != int(vindex.keyframe_pts[0]):
            attempts.append(int(vindex.keyframe_pts[0]))
        found: dict[int, np.ndarray] = {}
        for start in attempts:
            if start is not None:
                video.seek(start)
            found.update(video.decode_until(need, found))
            if len(found) == len(need):
                break
        return found

    def _drop(self, video_id: str) -> None:
        video = self._open.pop(video_id, None)
        if video is not None:
            video.close()

    def close(self) -> None:
        """Close every open container (they are reopened on demand)."""
        for video_id in list(self._open):
            self._drop(video_id)

    def __getstate__(self) -> dict:
        # Containers cannot be pickled (spawned DataLoader workers): each process opens its own.
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        return state
