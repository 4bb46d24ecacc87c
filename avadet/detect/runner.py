"""Action detection on an arbitrary video: keyframes, person boxes, action scores, tracks,
and the annotated video, in one sequential decoding pass with bounded memory.

Time line: frame ``k`` (0-based, in decoding order) shows time ``k / fps`` seconds from the
start of the video, ``fps`` being the stream's average frame rate. Keyframe ``j`` is at
``t_j = start + j * interval`` (by default every second from ``t = 0``), its centre frame
``floor(t_j * fps)`` (:func:`~avadet.data.sampling.keyframe_to_frame_index` with
``segment_start = 0``); keyframes continue while the centre frame exists. The clip around a
keyframe is the one the model was trained on (``data.num_frames`` frames at stride
``data.sampling_rate`` centred on it, PySlowFast's sampling); frames before the start or past
the end are clamped to the first / last frame, so a video shorter than the window is padded by
repeating its edge frames.

Streaming: each decoded frame is (1) given to the person detector when it is a keyframe's
centre, (2) resized once to the model's input size when some keyframe's clip uses it, (3) held
until the keyframe whose boxes it shows has been scored, then drawn and encoded. A keyframe is
scored as soon as the last frame of its clip has been decoded. Memory is therefore a window of
about ``num_frames * sampling_rate + interval * fps`` frames, whatever the video's length. The
frame count is whatever the decoder delivers, never the container's claim.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import av
import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from avadet.boxes import clip_to_image, to_pixels
from avadet.config import Config
from avadet.data.sampling import keyframe_to_frame_index, sample_clip_indices
from avadet.data.sources import ClipReadError, VideoSource, frame_to_rgb
from avadet.data.transforms import short_side_size, to_input
from avadet.detect.render import draw_people
from avadet.detect.results import TIMED_STAGES, DetectResult, KeyframeResult
from avadet.detect.tracking import IouTracker
from avadet.errors import AvadetError, ConfigError, FormatError
from avadet.persons import PersonBoxes, PersonDetector

__all__ = ["ClipDetector", "ClipSettings", "DetectResult", "KeyframeResult", "count_frames"]

logger = logging.getLogger(__name__)
PathLike = Union[str, Path]


@dataclass(frozen=True)
class ClipSettings:
    """How the action model wants its input (from the training config): ``num_frames`` at
    ``sampling_rate`` (the Fast pathway's clip; the model takes the Slow frames from it),
    ``short_side`` (0: frame size), ``mean``/``std`` of the normalisation.
    """

    num_frames: int
    sampling_rate: int
    short_side: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_config(cls, cfg: Config) -> ClipSettings:
        data = cfg.data
        return cls(data.num_frames, data.sampling_rate, data.test_short_side,
                   tuple(data.mean), tuple(data.std))

    @property
    def window(self) -> int:
        """Frames spanned by one clip."""
        return self.num_frames * self.sampling_rate


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad an odd-sized frame by one edge row / column (yuv420p needs even sizes)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def count_frames(path: PathLike) -> Optional[int]:
    """Frames in ``path`` from its packets (no decoding; not the container's header), or None
    if the file cannot be demuxed."""
    path = Path(path)
    try:
        return VideoSource(path.parent, extensions=(path.suffix,)).num_frames(path.stem)
    except ClipReadError:
        return None


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
    ):
        if not interval > 0:
            raise ConfigError(f"keyframe interval must be > 0 seconds, got {interval}")
        if start < 0:
            raise ConfigError(f"first keyframe time must be >= 0 seconds, got {start}")
        self.model = model.eval()
        self.settings = settings
        self.class_ids = [int(c) for c in class_ids]
        self.persons = persons
        self.interval = float(interval)
        self.start = float(start)
        self.device = torch.device(device)
        self.tracker_iou = tracker_iou

    # -- the time line ---------------------------------------------------------------------

    def keyframe_time(self, k: int) -> float:
        return self.start + k * self.interval

    # -- one keyframe ----------------------------------------------------------------------

    @torch.no_grad()
    def score(self, clip: np.ndarray, full_size: tuple[int, int], norm_boxes: np.ndarray) -> np.ndarray:
        """Action scores ``(K, C)`` of the ``(K, 4)`` normalised boxes on a clip.

        Args:
            clip: ``(T, H', W', 3)`` uint8 RGB, already resized to the input size.
            full_size: ``(H, W)`` of the original frames (boxes are scaled from it as the
                evaluation transform does: to pixels of the frame, then by the resize factor,
                then clipped to the input).
        """
        if len(norm_boxes) == 0:
            return np.zeros((0, len(self.class_ids)), np.float32)
        height, width = full_size
        h2, w2 = clip.shape[1:3]
        boxes = to_pixels(norm_boxes, width, height)
        boxes = clip_to_image(boxes * np.array([w2 / width, h2 / height] * 2, np.float32), w2, h2)
        fast = to_input(clip, self.settings.mean, self.settings.std)[None].to(self.device)
        rois = torch.cat([torch.zeros(len(boxes), 1), torch.from_numpy(boxes)], 1).to(self.device)
        return self.model(fast, rois).float().cpu().numpy()

    # -- the whole video -------------------------------------------------------------------

    def run(
        self,
        video: PathLike,
        *,
        video_id: Optional[str] = None,
        timestamp_offset: float = 0.0,
        annotated_path: Optional[PathLike] = None,
        labels_of: Optional[Callable[[np.ndarray], list[str]]] = None,
        progress: bool = True,
    ) -> DetectResult:
        """Detect on ``video``; write the annotated video to ``annotated_path`` (if given).

        ``video_id`` and ``timestamp_offset`` form the ``(video_id, offset + t)`` keys the
        CSV person-box backend looks boxes up by (e.g. offset 900 for a cut AVA segment).
        ``labels_of(scores (C,)) -> lines`` gives the text drawn under each person.
        """
        path = Path(video)
        video_id = video_id or path.stem
        if not path.is_file():
            raise FormatError(path, "video not found")
        try:
            container = av.open(str(path))
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise FormatError(path, f"cannot open video: {exc}") from None
        with contextlib.ExitStack() as stack:
            stack.callback(container.close)
            if not container.streams.video:
                raise FormatError(path, "no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            if not rate:
                raise FormatError(path, "cannot tell the video's frame rate")
            result = self._stream(
                path, container, stream, Fraction(rate), video_id, timestamp_offset,
                annotated_path, labels_of, progress, stack,
            )
        if annotated_path is not None:
            result.annotated_video = Path(annotated_path)
        return result

    def _stream(self, path, container, stream, rate, video_id, offset, annotated_path,
                labels_of, progress, stack) -> DetectResult:
        fps = float(rate)
        s = self.settings
        half = s.window // 2
        reach = (s.num_frames - 1) * s.sampling_rate  # last clip frame - first clip frame
        centre_cache: dict[int, int] = {}

        def centre(k: int) -> int:
            if k not in centre_cache:
                centre_cache[k] = int(keyframe_to_frame_index(self.keyframe_time(k), fps=fps,
                                                              segment_start=0.0))
            return centre_cache[k]

        timings = dict.fromkeys(TIMED_STAGES, 0.0)
        tracker = IouTracker(min_iou=self.tracker_iou)
        detections: dict[int, PersonBoxes] = {}
        results: list[KeyframeResult] = []
        small: dict[int, np.ndarray] = {}  # frame index -> frame resized for the model
        held: deque = deque()  # (index, full frame) waiting to be drawn and written
        writer = None
        full_size = (0, 0)
        input_size = (0, 0)
        next_detect = 0  # next keyframe whose centre frame is to come
        next_score = 0  # next keyframe to score
        shown = 0  # keyframe whose boxes the next frame to write shows
        decoded = 0
        last_rgb: Optional[np.ndarray] = None
        peak = 0

        def needed(i: int) -> bool:
            """Does an unscored keyframe's clip use frame i (clamped at the start)?"""
            k = next_score
            while centre(k) - half <= i:
                first = centre(k) - half
                if (first < 0 and i == 0) or (
                    i >= first and i <= first + reach and (i - first) % s.sampling_rate == 0
                ):
                    return True
                k += 1
            return False

        def resize(rgb: np.ndarray) -> np.ndarray:
            h2, w2 = input_size
            if (h2, w2) == rgb.shape[:2]:
                return rgb.copy()  # the full frame gets boxes drawn on it later
            return cv2.resize(rgb, (w2, h2), interpolation=cv2.INTER_LINEAR)

        def score_keyframe(k: int, total: int) -> None:
            t0 = time.perf_counter()
            c = centre(k)
            indices = sample_clip_indices(c, num_frames=s.num_frames,
                                          sampling_rate=s.sampling_rate, total_frames=total)
            found = detections.pop(k)
            if len(found.boxes):
                clip = np.stack([small[j] for j in indices.tolist()])
                scores = self.score(clip, full_size, found.boxes)
            else:
                scores = np.zeros((0, len(self.class_ids)), np.float32)
            timings["actions"] += time.perf_counter() - t0
            results.append(KeyframeResult(
                index=k, time=self.keyframe_time(k), frame=c, boxes=found.boxes,
                person_scores=found.scores, track_ids=tracker.update(found.boxes),
                action_scores=scores,
            ))

        def write_ready(final: bool) -> None:
            nonlocal shown
            t0 = time.perf_counter()
            while held:
                index, frame = held[0]
                while centre(shown + 1) <= index and (final or shown + 1 < next_detect):
                    shown += 1
                before_first = index < centre(0)  # nothing to show yet: written at once
                if not before_first and not final and shown >= next_score:
                    break  # its keyframe is not scored yet
                held.popleft()
                if not before_first and shown < len(results):
                    kf = results[shown]
                    lines = ([labels_of(row) for row in kf.action_scores] if labels_of
                             else [[] for _ in kf.track_ids])
                    draw_people(frame, kf.boxes, kf.track_ids.tolist(), lines)
                writer.write(_even(frame))
            timings["render"] += time.perf_counter() - t0

        expected = count_frames(path)
        bar = stack.enter_context(tqdm(total=expected, desc=f"detect {path.name}", unit="frame",
                                       disable=not progress))
        started = time.perf_counter()
        frames = container.decode(stream)
        while True:
            t0 = time.perf_counter()
            try:
                frame = next(frames, None)
                rgb = frame_to_rgb(frame) if frame is not None else None
            except av.FFmpegError as exc:
                raise FormatError(path, f"cannot decode video after frame {decoded}: {exc}") from None
            timings["decode"] += time.perf_counter() - t0
            if rgb is None:
                break
            i = decoded
            decoded += 1
            if i == 0:
                full_size = rgb.shape[:2]
                input_size = short_side_size(full_size[0], full_size[1], s.short_side)
                if annotated_path is not None:
                    from avadet.prep.media import open_video_writer

                    writer = stack.enter_context(open_video_writer(
                        annotated_path, width=full_size[1] + full_size[1] % 2,
                        height=full_size[0] + full_size[0] % 2, fps=rate))
            elif rgb.shape[:2] != full_size:
                raise FormatError(path, f"frame {i} is {rgb.shape[1]}x{rgb.shape[0]}, the first "
                                  f"was {full_size[1]}x{full_size[0]}")
            while centre(next_detect) == i:
                t0 = time.perf_counter()
                key = (video_id, offset + self.keyframe_time(next_detect))
                detections[next_detect] = self.persons.detect([rgb], [key])[0]
                timings["persons"] += time.perf_counter() - t0
                next_detect += 1
            if needed(i):
                t0 = time.perf_counter()
                small[i] = resize(rgb)
                timings["actions"] += time.perf_counter() - t0
            last_rgb = rgb
            while next_score < next_detect and centre(next_score) - half + reach <= i:
                score_keyframe(next_score, total=decoded)
                next_score += 1
            low = max(0, centre(next_score) - half)
            for j in [j for j in small if j < low]:
                del small[j]
            if writer is not None:
                held.append((i, rgb))
                peak = max(peak, len(held) + len(small))
                write_ready(final=False)
            peak = max(peak, len(held) + len(small))
            bar.update(1)
        if decoded == 0:
            raise FormatError(path, "no frames could be decoded")
        if decoded - 1 not in small and last_rgb is not None:
            small[decoded - 1] = resize(last_rgb)  # clips past the end repeat the last frame
        while next_score < next_detect:
            score_keyframe(next_score, total=decoded)
            next_score += 1
        if writer is not None:
            write_ready(final=True)
            if writer.frames_written != decoded:
                raise AvadetError(f"wrote {writer.frames_written} of {decoded} frames")
        timings["total"] = time.perf_counter() - started
        if expected is not None and expected != decoded:
            logger.info("%s: packets say %d frames, %d decoded", path, expected, decoded)
        if not results:
            logger.warning("%s: no keyframe (the video is %d frames, the first keyframe is at "
                           "%.2f s)", path, decoded, self.start)
        return DetectResult(path, video_id, fps, decoded, full_size[1], full_size[0],
                            self.class_ids, results, None, timings, peak)
