"""Action detection on an arbitrary video: keyframes, person boxes, action scores, tracks,
and the annotated video, in one sequential decoding pass with bounded memory.

Time line: frame ``k`` (0-based, in decoding order) shows time ``k / fps`` seconds from the
start of the video, ``fps`` being the stream's average frame rate. Keyframe ``j`` is at
``t_j = start + j * interval`` (by default every second from ``t = 0``). The clip around a
keyframe is the one the model was trained on, in seconds: the training sampler's
``data.num_frames`` frames at stride ``data.sampling_rate`` frames of the model's training
rate (``ClipSettings.trained_fps``, AVA: 30) around the keyframe, each replaced by the input
frame nearest to its time (:func:`~avadet.data.sampling.clip_times`,
:func:`~avadet.data.sampling.nearest_frame_index`); persons are found on the input frame
nearest to the keyframe's own frame time, its centre frame, and keyframes continue while that
frame exists. At 30 fps these are exactly PySlowFast's frame indices; at 60 fps a clip's
frames lie twice as many input frames apart, at 6 fps each input frame stands for 5 frames of
30 fps, so clip frames repeat. Times before the start or
past the end are clamped to the first / last frame, so a video shorter than the window is
padded by repeating its edge frames.

Streaming: each decoded frame is (1) given to the person detector when it is a keyframe's
centre, (2) resized once to the model's input size when some keyframe's clip uses it, (3) held
until the keyframe whose boxes it shows has been scored, then drawn and encoded. A keyframe is
scored as soon as the last frame of its clip (in time) has been decoded. Memory is therefore a
window of about ``(clip seconds + interval) * fps`` frames, whatever the video's length. The
frame count is whatever the decoder delivers, never the container's claim.

Layout: :meth:`ClipDetector.run` opens the video and feeds each decoded frame to
``_on_frame``, which runs the steps above (``_detect_persons``, resizing, ``_score_next``,
``_write_ready``); ``_finish`` applies the edge rule at the end. What the pass holds and when
a step applies (which frames a clip takes, when a keyframe is scoreable, which held frames can
be written) is :class:`~avadet.detect.stream.StreamState`'s and
:class:`~avadet.detect.stream.ClipTimeline`'s; the result types are in
:mod:`avadet.detect.results`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional, Sequence, Union

import av
import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from avadet.boxes import clip_to_image, to_pixels
from avadet.config import Config
from avadet.data.sources import ClipReadError, VideoSource, frame_to_rgb
from avadet.data.transforms import box_scale, short_side_size, to_input
from avadet.detect.render import LabelsOf, RenderLayout, pad_even, render_frame
from avadet.detect.results import ClipSampling, DetectResult, KeyframeResult
from avadet.detect.stream import ClipTimeline, StreamState
from avadet.detect.tracking import IouTracker
from avadet.errors import AvadetError, ConfigError, FormatError
from avadet.persons import MAX_PERSONS_PER_KEYFRAME, PersonBoxes, PersonDetector, top_boxes

if TYPE_CHECKING:
    from avadet.prep.media import VideoWriter

__all__ = ["DEFAULT_BATCH_KEYFRAMES", "DEFAULT_DECODE_THREAD", "DEFAULT_PERSONS_THREAD",
           "ClipDetector", "ClipSettings", "DetectResult", "KeyframeResult", "count_frames"]

logger = logging.getLogger(__name__)
PathLike = Union[str, Path]

# Keyframes whose clips go through the action model in one forward pass (measured in
# docs/benchmarks.md, "avadet detect: today's path against batching, threads and faster
# detectors": on a 2-core CPU larger batches and the threads were slower).
DEFAULT_BATCH_KEYFRAMES = 1
# Whether the person detector and decoding run in threads of their own (same section).
DEFAULT_PERSONS_THREAD = False
DEFAULT_DECODE_THREAD = False
# Decoded frames the decoding thread may run ahead of the pass.
_DECODE_AHEAD = 8


@dataclass(frozen=True)
class ClipSettings:
    """How the action model wants its input (from the training config): ``num_frames`` at
    ``sampling_rate`` frames of ``trained_fps``, the rate it was trained at (the Fast
    pathway's clip; the model takes the Slow frames from it), ``short_side`` (0: frame size),
    ``mean``/``std`` of the normalisation, ``box_scaling`` (how boxes follow the resize:
    :data:`~avadet.data.transforms.BOX_SCALINGS`), ``resize_rounding`` (of the long side:
    :func:`~avadet.data.transforms.short_side_size`), ``clip_center_offset`` (trained-rate
    frames added to the clip's centre), ``box_clipping`` (whether boxes are clipped to the
    frame and the input: :data:`~avadet.data.transforms.BOX_CLIPPINGS`). The clip is taken from a video at any rate by time
    (:class:`~avadet.detect.stream.ClipTimeline`).
    """

    num_frames: int
    sampling_rate: int
    short_side: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    trained_fps: float = 30.0
    box_scaling: str = "per_axis"
    resize_rounding: str = "floor"
    clip_center_offset: int = 0
    box_clipping: str = "last_pixel"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.trained_fps) and self.trained_fps > 0):
            raise ConfigError(f"the model's training frame rate must be a finite number > 0, "
                              f"got {self.trained_fps}")

    @classmethod
    def from_config(cls, cfg: Config, *, trained_fps: Optional[float] = None) -> ClipSettings:
        """The settings of ``cfg``'s data section. ``trained_fps``: the rate the model was
        trained at, the ``data.fps`` of the checkpoint's training config (default
        ``cfg.data.fps``, right when ``cfg`` is that config or derived from it without a
        ``data.fps`` of its own)."""
        data = cfg.data
        return cls(data.num_frames, data.sampling_rate, data.test_short_side,
                   tuple(data.mean), tuple(data.std),
                   float(data.fps if trained_fps is None else trained_fps), data.box_scaling,
                   data.resize_rounding, data.clip_center_offset, data.box_clipping)

    @property
    def window(self) -> int:
        """Frames of the trained rate spanned by one clip."""
        return self.num_frames * self.sampling_rate

    def sampling(self, input_fps: float) -> ClipSampling:
        """How clips are taken from a video at ``input_fps``."""
        return ClipSampling(self.trained_fps, float(input_fps), self.num_frames,
                            self.sampling_rate)


def count_frames(path: PathLike) -> Optional[int]:
    """Frames in ``path`` from its packets (no decoding; not the container's header), or None
    if the file cannot be demuxed."""
    path = Path(path)
    try:
        return VideoSource(path.parent, extensions=(path.suffix,)).num_frames(path.stem)
    except ClipReadError:
        return None


@dataclass(frozen=True)
class _Annotation:
    """Where the annotated video goes and the text drawn under each person."""

    writer: VideoWriter
    labels_of: Optional[LabelsOf]
    layout: RenderLayout


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the block's wall time to ``timings[stage]``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] += time.perf_counter() - t0


# Containers of the MP4 / QuickTime family state their frame count from the sample index that
# is written when the file is finished, so a count far above what decodes means the file was
# cut short. Other containers' header counts are often wrong (AVI headers, MKV/WebM durations
# of files written on the fly) and are only logged.
_EXACT_COUNT_FORMATS = ("mov", "mp4", "m4a", "3gp", "3g2", "mj2")
# Real files lose a few frames to edit lists and encoder delay: a shortfall within this many
# frames, or this share of the stated count, is no truncation.
_MISSING_FRAMES_OK = 3
_MISSING_SHARE_OK = 0.05


@dataclass(frozen=True)
class _Stated:
    """What a container says about its first video stream before decoding."""

    rate: Fraction
    frames: Optional[int]  # the container's frame count (None: not stated)
    exact: bool  # the count comes from a sample index (MP4 family): a shortfall is truncation


def _stated(path: Path, container: av.container.InputContainer) -> _Stated:
    if not container.streams.video:
        raise FormatError(path, "not a video: the file has no video stream")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        raise FormatError(path, "cannot tell the video's frame rate")
    frames = int(stream.frames or 0)
    if frames <= 0 and stream.duration and stream.time_base:
        frames = int(round(float(stream.duration * stream.time_base * rate)))
    names = set((container.format.name or "").split(","))
    return _Stated(Fraction(rate), frames if frames > 0 else None,
                   bool(names & set(_EXACT_COUNT_FORMATS)))


def _open_container(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise FormatError(path, "video not found")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise FormatError(path, f"not a video PyAV/ffmpeg can open ({exc})") from None


def probe_video(path: PathLike) -> None:
    """Raise :class:`FormatError` naming ``path`` unless it opens as a video with a frame
    rate (cheap: reads the header only)."""
    path = Path(path)
    container = _open_container(path)
    try:
        _stated(path, container)
    finally:
        container.close()


def _open_video(path: Path,
                stack: contextlib.ExitStack) -> tuple[Iterator[av.VideoFrame], _Stated]:
    """The decoder of ``path``'s first video stream and what its container states; the
    container closes with ``stack``."""
    container = _open_container(path)
    stack.callback(container.close)
    stated = _stated(path, container)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container.decode(stream), stated


def check_complete(path: Path, decoded: int, stated: _Stated) -> None:
    """Fail when far fewer frames decoded than an exact container count states: the file was
    cut short (a decoder with threads stops at the missing data without an error)."""
    if stated.frames is None:
        return
    missing = stated.frames - decoded
    if missing <= max(_MISSING_FRAMES_OK, _MISSING_SHARE_OK * stated.frames):
        return
    if not stated.exact:
        logger.info("%s: the container states %d frames, %d decoded", path, stated.frames,
                    decoded)
        return
    seconds = float(stated.frames / stated.rate)
    raise FormatError(path, f"truncated video: {decoded} of the {stated.frames} frames "
                      f"({seconds:.1f} s) the container states could be decoded; re-copy or "
                      "re-encode the file")


def _decode_rgb(path: Path, frames: Iterator[av.VideoFrame],
                timings: dict[str, float]) -> Iterator[np.ndarray]:
    """The decoded frames as ``(H, W, 3)`` uint8 RGB, in order, all of the first one's size;
    the time spent goes to ``timings["decode"]`` (not the time the caller spends between)."""
    size: Optional[tuple[int, int]] = None
    count = 0
    while True:
        with _timed(timings, "decode"):
            try:
                frame = next(frames, None)
                rgb = frame_to_rgb(frame) if frame is not None else None
            except av.FFmpegError as exc:
                raise FormatError(path, f"cannot decode video after frame {count}: "
                                  f"{exc}") from None
        if rgb is None:
            return
        if size is None:
            size = rgb.shape[:2]
        elif rgb.shape[:2] != size:
            raise FormatError(path, f"frame {count} is {rgb.shape[1]}x{rgb.shape[0]}, the first "
                              f"was {size[1]}x{size[0]}")
        yield rgb
        count += 1


class _Failed:
    """An exception raised in the decoding thread, handed to the pass to raise."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def _decode_ahead(frames: Iterator[np.ndarray], stack: contextlib.ExitStack,
                  depth: int = _DECODE_AHEAD) -> Iterator[np.ndarray]:
    """``frames``, decoded by a thread of their own up to ``depth`` frames ahead (PyAV and
    the RGB conversion release the GIL, so decoding runs while the models do). The thread
    stops and is joined when ``stack`` closes, before the container it reads does; its
    errors are raised here, in order."""
    done = object()
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for rgb in frames:
                # A frame of its own: the decoder may reuse the buffer behind the array it
                # returned while this thread runs ahead of the pass that draws and writes it.
                if not put(np.array(rgb, copy=True)):
                    return
            put(done)
        except BaseException as exc:  # handed over, raised by the pass
            put(_Failed(exc))

    thread = threading.Thread(target=work, name="avadet-decode", daemon=True)

    def close() -> None:
        stop.set()
        thread.join()

    thread.start()
    stack.callback(close)

    def read() -> Iterator[np.ndarray]:
        while True:
            item = ready.get()
            if item is done:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item

    return read()


def _resize(rgb: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """``(H, W, 3)`` -> ``(H', W', 3)``, ``input_size = (H', W')``; always a new array, since
    the full frame gets boxes drawn on it later."""
    h2, w2 = input_size
    if (h2, w2) == rgb.shape[:2]:
        return rgb.copy()
    return cv2.resize(rgb, (w2, h2), interpolation=cv2.INTER_LINEAR)


def _open_writer(path: PathLike, size: tuple[int, int],
                 rate: Fraction) -> contextlib.AbstractContextManager[VideoWriter]:
    """The annotated video's writer for ``(H, W)`` frames: odd sizes grow by one pixel."""
    from avadet.prep.media import open_video_writer  # only runs that write a video need it

    height, width = size
    # x264's ultrafast preset: 2.4x faster than veryfast on the enlarged 744x384 frames of a
    # 128x96 input (1.3 vs 3.3 s for 300 frames), 34% larger files; it is a picture to look at.
    return open_video_writer(path, width=width + width % 2, height=height + height % 2, fps=rate,
                             preset="ultrafast")


def _write_ready(state: StreamState, annotation: _Annotation, final: bool) -> None:
    """Draw and encode the held frames whose keyframe is scored (``final``: all of them)."""
    with _timed(state.timings, "render"):
        while (ready := state.pop_writable(final)) is not None:
            frame, keyframe = ready
            drawn = render_frame(frame, keyframe, annotation.labels_of, annotation.layout)
            annotation.writer.write(pad_even(drawn))


class ClipDetector:
    """Scores the actions of every person on a video's keyframes.

    Args:
        model: an avadet action model in eval mode (e.g. from ``load_trained_model``).
        settings: its input (:meth:`ClipSettings.from_config` of the training config).
        class_ids: label ids of the model's score columns.
        persons: the person detector (or CSV boxes).
        interval: seconds between keyframes (> 0).
        start: time of the first keyframe in seconds (>= 0).
        device: where the model runs (the detector was placed by its builder).
        tracker_iou: IoU that links a person to the previous keyframe's box.
        batch_keyframes: keyframes whose clips go through the action model in one forward
            pass (the scores are those of one at a time; memory grows by a clip per
            keyframe).
        persons_thread: run the person detector in a thread of its own, on the keyframes
            ahead of the batch the action model scores (torch's threads are shared
            between the two; a CSV box source never uses it).
        decode_thread: decode the video in a thread of its own, a few frames ahead.
    """

    def __init__(
        self,
        model: nn.Module,
        settings: ClipSettings,
        class_ids: Sequence[int],
        persons: PersonDetector,
        *,
        interval: float = 1.0,
        start: float = 0.0,
        device: Union[str, torch.device] = "cpu",
        tracker_iou: float = 0.3,
        batch_keyframes: int = DEFAULT_BATCH_KEYFRAMES,
        persons_thread: bool = DEFAULT_PERSONS_THREAD,
        decode_thread: bool = DEFAULT_DECODE_THREAD,
    ):
        # NaN passes every comparison and inf never ends the time line: both refused.
        if not (math.isfinite(interval) and interval > 0):
            raise ConfigError(f"keyframe interval must be a finite number > 0 seconds, got "
                              f"{interval}")
        if not (math.isfinite(start) and start >= 0):
            raise ConfigError(f"first keyframe time must be a finite number >= 0 seconds, got "
                              f"{start}")
        self.model = model.eval()
        self.settings = settings
        self.class_ids = [int(c) for c in class_ids]
        self.persons = persons
        self.interval = float(interval)
        self.start = float(start)
        self.device = torch.device(device)
        self.tracker_iou = tracker_iou
        if isinstance(batch_keyframes, bool) or int(batch_keyframes) != batch_keyframes \
                or batch_keyframes < 1:
            raise ConfigError(f"keyframes per action-model batch must be an integer >= 1, got "
                              f"{batch_keyframes!r}")
        self.batch_keyframes = int(batch_keyframes)
        self.persons_thread = bool(persons_thread)
        self.decode_thread = bool(decode_thread)
        self._pool: Optional[ThreadPoolExecutor] = None

    # -- the time line ---------------------------------------------------------------------

    def keyframe_time(self, k: int) -> float:
        """Seconds from the video's start to keyframe ``k`` (a pass's ``ClipTimeline.time``)."""
        return self.start + k * self.interval

    # -- one keyframe ----------------------------------------------------------------------

    def score(self, clip: np.ndarray, full_size: tuple[int, int], norm_boxes: np.ndarray) -> np.ndarray:
        """Action scores ``(K, C)`` of the ``(K, 4)`` normalised boxes on a clip.

        Args:
            clip: ``(T, H', W', 3)`` uint8 RGB, already resized to the input size.
            full_size: ``(H, W)`` of the original frames (boxes are scaled from it as the
                evaluation transform does: to pixels of the frame, then by the resize factor,
                clipped to the frame and to the input unless ``box_clipping`` is "none").
        """
        return self.score_batch([clip], full_size, [norm_boxes])[0]

    @torch.no_grad()
    def score_batch(self, clips: Sequence[np.ndarray], full_size: tuple[int, int],
                    norm_boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
        """:meth:`score` of several keyframes in one forward pass: ``clips[i]``
        ``(T, H', W', 3)`` with its ``(K_i, 4)`` normalised boxes -> ``(K_i, C)`` scores each.
        The clips are stacked ``(N, 3, T, H', W')``, each box's RoI names its clip; clips
        without boxes take no place (their clip may be None)."""
        out = [np.zeros((0, len(self.class_ids)), np.float32) for _ in clips]
        used = [i for i, boxes in enumerate(norm_boxes) if len(boxes)]
        if not used:
            return out
        height, width = full_size
        inputs, rois = [], []
        for n, i in enumerate(used):
            h2, w2 = clips[i].shape[1:3]
            scale = box_scale(height, width, (h2, w2), self.settings.box_scaling)
            if self.settings.box_clipping == "none":  # MMAction2's: scaled as they are
                boxes = np.asarray(norm_boxes[i], np.float32).reshape(-1, 4) * np.array(
                    [width, height, width, height], np.float32) * scale
            else:
                boxes = clip_to_image(to_pixels(norm_boxes[i], width, height) * scale, w2, h2)
            inputs.append(to_input(clips[i], self.settings.mean, self.settings.std))
            rois.append(torch.cat([torch.full((len(boxes), 1), float(n)),
                                   torch.from_numpy(boxes)], 1))
        fast = torch.stack(inputs).to(self.device)
        scores = self.model(fast, torch.cat(rois).to(self.device)).float().cpu().numpy()
        ends = np.cumsum([len(norm_boxes[i]) for i in used])
        for i, part in zip(used, np.split(scores, ends[:-1])):
            out[i] = part
        return out

    # -- the whole video -------------------------------------------------------------------

    def run(
        self,
        video: PathLike,
        *,
        video_id: Optional[str] = None,
        timestamp_offset: float = 0.0,
        annotated_path: Optional[PathLike] = None,
        labels_of: Optional[LabelsOf] = None,
        progress: bool = True,
    ) -> DetectResult:
        """Detect on ``video``; write the annotated video to ``annotated_path`` (if given).

        ``video_id`` and ``timestamp_offset`` form the ``(video_id, offset + t)`` keys the
        CSV person-box backend looks boxes up by (e.g. offset 900 for a cut AVA segment).
        ``labels_of(scores (C,)) -> lines`` gives the text drawn under each person.
        """
        path = Path(video)
        video_id = video_id or path.stem
        with contextlib.ExitStack() as stack:
            frames, stated = _open_video(path, stack)
            rate = stated.rate
            expected = count_frames(path)
            bar = stack.enter_context(tqdm(total=expected, desc=f"detect {path.name}",
                                           unit="frame", disable=not progress))
            started = time.perf_counter()
            state = self._start_state(float(rate))
            self._pool = self._start_persons_thread(stack)
            decoded = _decode_rgb(path, frames, state.timings)
            if self.decode_thread:
                decoded = _decode_ahead(decoded, stack)
            first = next(decoded, None)
            if first is None:
                raise FormatError(path, "no frames could be decoded")
            state.full_size = first.shape[:2]
            state.input_size = short_side_size(*state.full_size, self.settings.short_side,
                                               self.settings.resize_rounding)
            annotation = None
            if annotated_path is not None:
                layout = RenderLayout.for_frames(*state.full_size)
                annotation = _Annotation(stack.enter_context(
                    _open_writer(annotated_path, layout.size, rate)), labels_of, layout)
            for rgb in itertools.chain([first], decoded):
                self._on_frame(state, rgb, video_id, timestamp_offset, annotation)
                bar.update(1)
            check_complete(path, state.decoded, stated)
            self._finish(state, annotation)
            state.timings["total"] = time.perf_counter() - started
        if expected is not None and expected != state.decoded:
            logger.info("%s: packets say %d frames, %d decoded", path, expected, state.decoded)
        if not state.results:
            logger.warning("%s: no keyframe (the video is %d frames, the first keyframe is at "
                           "%.2f s)", path, state.decoded, self.start)
        height, width = state.full_size
        return DetectResult(path, video_id, float(rate), state.decoded, width, height,
                            self.class_ids, state.results,
                            None if annotated_path is None else Path(annotated_path),
                            state.timings, state.peak_frames_held,
                            self.settings.sampling(float(rate)))

    # -- the steps of the streaming pass ---------------------------------------------------

    def _start_state(self, fps: float) -> StreamState:
        s = self.settings
        timeline = ClipTimeline(fps=fps, start=self.start, interval=self.interval,
                                num_frames=s.num_frames, sampling_rate=s.sampling_rate,
                                trained_fps=s.trained_fps,
                                clip_center_offset=s.clip_center_offset)
        return StreamState(timeline, IouTracker(min_iou=self.tracker_iou))

    def _start_persons_thread(self, stack: contextlib.ExitStack) -> Optional[ThreadPoolExecutor]:
        """The person detector's thread (None: it runs in the pass itself). torch's threads
        are split between it and the action model for the pass (with 1 thread there is
        nothing to split: no detector thread), and restored when ``stack`` closes."""
        total = torch.get_num_threads()
        if not self.persons_thread or self.persons.needs_keys or total < 2:
            return None
        for_persons = total // 2
        torch.set_num_threads(total - for_persons)
        stack.callback(torch.set_num_threads, total)
        pool = ThreadPoolExecutor(1, thread_name_prefix="avadet-persons",
                                  initializer=torch.set_num_threads, initargs=(for_persons,))
        stack.callback(pool.shutdown, wait=True, cancel_futures=True)
        return pool

    def _on_frame(self, state: StreamState, rgb: np.ndarray, video_id: str, offset: float,
                  annotation: Optional[_Annotation]) -> None:
        """One decoded ``(H, W, 3)`` frame through the pass: persons found on it if it is a
        keyframe's centre, resized if a clip still to take uses it, the clips it completes
        taken and the batches that are ready scored, then the held frames that are ready
        written."""
        i = state.decoded
        state.decoded += 1
        state.last_frame = rgb
        self._detect_persons(state, rgb, i, video_id, offset)
        if state.needs(i):
            with _timed(state.timings, "actions"):
                state.resized[i] = _resize(rgb, state.input_size)
        while state.scoreable(ended=False):
            self._take_clip(state)
        self._score_ready(state, ended=False)
        state.drop_resized_before_next_clip()
        if annotation is not None:
            state.held.append((i, rgb))
        state.note_peak()  # before writing: the frame just decoded counts
        if annotation is not None:
            _write_ready(state, annotation, final=False)

    def _find_persons(self, rgb: np.ndarray, key: tuple[str, float], t: float,
                      timings: dict[str, float]) -> PersonBoxes:
        with _timed(timings, "persons"):
            found, dropped = top_boxes(self.persons.detect([rgb], [key])[0])
        if dropped:
            logger.warning("keyframe at %.3f s: %d person boxes dropped, the best scoring %d "
                           "kept", t, dropped, MAX_PERSONS_PER_KEYFRAME)
        return found

    def _detect_persons(self, state: StreamState, rgb: np.ndarray, i: int, video_id: str,
                        offset: float) -> None:
        """Persons on frame ``i`` for each keyframe centred on it (several when keyframes are
        closer than a frame apart); the CSV backend's key is ``(video_id, offset + t)``. With
        the detector's thread, a Future of them."""
        timeline = state.timeline
        while timeline.centre(state.next_detect) == i:
            k = state.next_detect
            key = (video_id, offset + timeline.time(k))
            if self._pool is not None:
                # A copy: the pass may draw on this frame (in place) while the detector reads it.
                state.detections[k] = self._pool.submit(self._find_persons, rgb.copy(), key,
                                                         timeline.time(k), state.timings)
            else:
                state.detections[k] = self._find_persons(rgb, key, timeline.time(k),
                                                         state.timings)
            state.next_detect += 1

    def _take_clip(self, state: StreamState) -> None:
        """Take keyframe ``next_clip``'s clip (complete, or clamped to the frames decoded so
        far) out of the resized frames, to wait for its batch."""
        k = state.next_clip
        indices = state.timeline.clip_indices(k, total_frames=state.decoded)
        found = state.detections[k]
        clip = None
        if isinstance(found, Future) or len(found.boxes):
            with _timed(state.timings, "actions"):
                clip = np.stack([state.resized[j] for j in indices.tolist()])
        state.pending.append((k, indices, clip))
        state.next_clip += 1

    def _score_ready(self, state: StreamState, ended: bool) -> None:
        """Score the taken clips in batches of ``batch_keyframes`` (``ended``: all of them).
        With the detector's thread, a batch waits until the detector has the persons of as
        many keyframes after it to work on while the action model runs."""
        size = self.batch_keyframes
        ahead = size if self._pool is not None else 0
        while state.pending and (ended or (
                len(state.pending) >= size
                and state.next_detect - state.pending[0][0] - size >= ahead)):
            batch = [state.pending.popleft() for _ in range(min(size, len(state.pending)))]
            found = []
            for k, _, _ in batch:
                item = state.detections.pop(k)
                found.append(item.result() if isinstance(item, Future) else item)
            with _timed(state.timings, "actions"):
                scores = self.score_batch([clip for _, _, clip in batch], state.full_size,
                                          [f.boxes for f in found])
            for (k, indices, _), persons, action_scores in zip(batch, found, scores):
                state.results.append(KeyframeResult(
                    index=k, time=state.timeline.time(k), frame=state.timeline.centre(k),
                    boxes=persons.boxes, person_scores=persons.scores,
                    track_ids=state.tracker.update(persons.boxes), action_scores=action_scores,
                    clip_frames=indices,
                ))
                state.next_score += 1

    def _finish(self, state: StreamState, annotation: Optional[_Annotation]) -> None:
        """After the last frame (edge rule: clips past the end repeat the last frame): score
        the keyframes still waiting, write the frames still held."""
        last = state.decoded - 1
        if last not in state.resized:
            with _timed(state.timings, "actions"):
                state.resized[last] = _resize(state.last_frame, state.input_size)
        while state.scoreable(ended=True):
            self._take_clip(state)
        self._score_ready(state, ended=True)
        if annotation is not None:
            _write_ready(state, annotation, final=True)
            if annotation.writer.frames_written != state.decoded:
                raise AvadetError(f"wrote {annotation.writer.frames_written} of "
                                  f"{state.decoded} frames")
