"""The bookkeeping of :class:`~avadet.detect.runner.ClipDetector`'s single decoding pass, apart
from decoding, detecting, scoring and drawing: where each keyframe and its clip lie on the
frame line (:class:`ClipTimeline`) and what the pass holds between two decoded frames
(:class:`StreamState`). Each decision of the pass is a small query here (which frames a clip
takes, when a keyframe can be scored, which held frames can be written), testable without a
video or a model.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from avadet.data.sampling import (
    clip_times,
    keyframe_to_frame_index,
    nearest_frame_index,
)
from avadet.detect.results import TIMED_STAGES, KeyframeResult
from avadet.detect.tracking import IouTracker
from avadet.persons import PersonBoxes

_CACHED = 1024


@dataclass
class ClipTimeline:
    """Keyframes and their clips on the frame line of a video decoded at ``fps``, for a model
    trained on clips at ``trained_fps``.

    Keyframe ``k`` is at ``start + k * interval`` seconds. Its clip is the one the training
    sampler takes at the trained rate, in time: ``num_frames`` frames at stride
    ``sampling_rate`` trained-rate frames around the keyframe's frame
    (:func:`~avadet.data.sampling.clip_times`), each replaced by the input frame nearest to
    its time (:func:`~avadet.data.sampling.nearest_frame_index`; ties take the earlier frame,
    times before the start take frame 0, times past the end the last frame). Its centre frame
    (where persons are found) is the input frame nearest to the time of the trained-rate
    keyframe frame. At ``fps == trained_fps`` this is PySlowFast's sampling on the input
    frames. Centres, and so clips, never move backwards as ``k`` grows.
    """

    fps: float
    start: float
    interval: float
    num_frames: int
    sampling_rate: int
    trained_fps: float
    # Trained-rate frames added to the clip's centre (MMAction2's sampler: 1; see
    # avadet.data.dataset.AvaDataset).
    clip_center_offset: int = 0
    # Per keyframe: (centre frame, clip frames clamped at 0 only); asked for several times per
    # decoded frame, about keyframes near the one being decoded, so the oldest entries go
    # once there are _CACHED (a long video at a short interval has millions of keyframes).
    _frames: dict[int, tuple[int, np.ndarray]] = field(default_factory=dict, init=False,
                                                       repr=False)

    def time(self, k: int) -> float:
        """Seconds from the video's start to keyframe ``k``."""
        return self.start + k * self.interval

    def _of(self, k: int) -> tuple[int, np.ndarray]:
        if k not in self._frames:
            t = self.time(k)
            centre_time = keyframe_to_frame_index(t, fps=self.trained_fps,
                                                  segment_start=0.0) / self.trained_fps
            times = clip_times(t, fps=self.trained_fps, num_frames=self.num_frames,
                               sampling_rate=self.sampling_rate)
            times = times + self.clip_center_offset / self.trained_fps
            if len(self._frames) >= _CACHED:
                del self._frames[next(iter(self._frames))]
            self._frames[k] = (nearest_frame_index(centre_time, fps=self.fps),
                               nearest_frame_index(times, fps=self.fps))
        return self._frames[k]

    def centre(self, k: int) -> int:
        """Keyframe ``k``'s centre frame (it may lie past the video's end)."""
        return self._of(k)[0]

    def clip_first(self, k: int) -> int:
        """The first frame of keyframe ``k``'s clip (0 when the clip starts before the video)."""
        return int(self._of(k)[1][0])

    def clip_last(self, k: int) -> int:
        """The last frame of keyframe ``k``'s clip before clamping at the end (past the end
        near it)."""
        return int(self._of(k)[1][-1])

    def clip_indices(self, k: int, total_frames: int) -> np.ndarray:
        """Keyframe ``k``'s clip, ``(num_frames,)`` frame indices clamped to a video of
        ``total_frames`` frames (frames repeat where the video is slower than the trained
        rate or the clip passes an edge)."""
        return np.minimum(self._of(k)[1], total_frames - 1)

    def uses(self, k: int, i: int) -> bool:
        """Does keyframe ``k``'s clip take frame ``i``? (The last frame's stand-in role for
        times past the end is settled at the end, when the video's length is known.)"""
        frames = self._of(k)[1]
        return frames[0] <= i <= frames[-1] and bool(np.any(frames == i))

    def needed(self, first_unscored: int, i: int) -> bool:
        """Does the clip of keyframe ``first_unscored`` or of a later one take frame ``i``?
        Clips start in keyframe order, so the search ends at the first clip after ``i``."""
        k = first_unscored
        while self.clip_first(k) <= i:
            if self.uses(k, i):
                return True
            k += 1
        return False


@dataclass
class StreamState:
    """The streaming pass between two decoded frames: what it holds and what comes next.

    Keyframes pass four cursors: ``next_detect`` (its centre frame is still to come),
    ``next_clip`` (persons asked for, clip maybe incomplete), ``next_score`` (clip taken,
    waiting in ``pending`` for its batch through the action model) and ``shown`` (the
    keyframe whose boxes the oldest held frame shows). Frames are held twice over, each for
    as long as it is needed: resized for the clips not yet taken, and at full size until
    drawn and written. So memory is bounded by the clip window plus the keyframes of a batch
    (one keyframe interval each) and the detector's look-ahead.
    """

    timeline: ClipTimeline
    tracker: IouTracker
    decoded: int = 0  # frames decoded so far: the next frame's index
    next_detect: int = 0
    next_clip: int = 0
    next_score: int = 0
    shown: int = 0
    full_size: tuple[int, int] = (0, 0)  # (H, W) of the decoded frames
    input_size: tuple[int, int] = (0, 0)  # (H', W') the model's clip frames are resized to
    # Persons of the keyframes asked for but not yet scored, by keyframe: the boxes, or a
    # Future of them while a detector thread works on it.
    detections: dict[int, Union[PersonBoxes, Future]] = field(default_factory=dict)
    # Keyframes whose clip is taken, oldest first: (keyframe, clip frame indices,
    # (T, H', W', 3) uint8 clip, None when it has no persons), waiting to be scored.
    pending: deque[tuple[int, np.ndarray, Optional[np.ndarray]]] = field(default_factory=deque)
    # Frame index -> (H', W', 3) uint8 frame, for the clips not yet taken.
    resized: dict[int, np.ndarray] = field(default_factory=dict)
    # (frame index, (H, W, 3) uint8 frame) awaiting drawing and writing, oldest first.
    held: deque[tuple[int, np.ndarray]] = field(default_factory=deque)
    # The latest decoded frame: clips past the video's end repeat it.
    last_frame: Optional[np.ndarray] = None
    results: list[KeyframeResult] = field(default_factory=list)  # results[k]: keyframe k
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMED_STAGES, 0.0))
    peak_frames_held: int = 0

    def needs(self, i: int) -> bool:
        """Is decoded frame ``i`` to be resized for a clip not yet taken?"""
        return self.timeline.needed(self.next_clip, i)

    def scoreable(self, ended: bool) -> bool:
        """Can keyframe ``next_clip``'s clip be taken now: are its persons asked for and is
        its clip complete (its last frame decoded, or the video ``ended`` and the rest is
        clamped)?"""
        if self.next_clip >= self.next_detect:
            return False
        return ended or self.timeline.clip_last(self.next_clip) < self.decoded

    def drop_resized_before_next_clip(self) -> None:
        """Forget the resized frames before keyframe ``next_clip``'s clip: no clip still to
        take uses them, since clips start in keyframe order."""
        low = max(0, self.timeline.clip_first(self.next_clip))
        for j in [j for j in self.resized if j < low]:
            del self.resized[j]

    def note_peak(self) -> None:
        clip_frames = sum(len(clip) for _, _, clip in self.pending if clip is not None)
        self.peak_frames_held = max(self.peak_frames_held,
                                    len(self.held) + len(self.resized) + clip_frames)

    def pop_writable(self, final: bool) -> Optional[tuple[np.ndarray, Optional[KeyframeResult]]]:
        """Take the oldest held frame if it can be written now, with the keyframe whose boxes
        it shows (None: no boxes); None while it must wait.

        A frame shows the last keyframe centred at or before it, so it waits until that one
        is scored; frames before the first keyframe's centre show nothing and go at once.
        ``final`` (the video ended, every keyframe scored): everything goes.
        """
        if not self.held:
            return None
        index, frame = self.held[0]
        centre = self.timeline.centre
        while centre(self.shown + 1) <= index and (final or self.shown + 1 < self.next_detect):
            self.shown += 1
        before_first = index < centre(0)
        if not before_first and not final and self.shown >= self.next_score:
            return None
        self.held.popleft()
        if before_first or self.shown >= len(self.results):
            return frame, None
        return frame, self.results[self.shown]
