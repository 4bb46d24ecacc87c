"""What a detection pass returns: per keyframe the persons, their ids, their action scores and
the frames of its clip (:class:`KeyframeResult`), per video the keyframes with the frame count,
size, timings and how clips were sampled (:class:`DetectResult`, :class:`ClipSampling`).
Plain data shared by the runner, its streaming bookkeeping, the drawing and the outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

# The stages a pass's time is split into (``DetectResult.timings`` adds ``total``).
TIMED_STAGES = ("decode", "persons", "actions", "render")


# How a clip's times become input frames (:func:`avadet.data.sampling.nearest_frame_index`),
# in the words the JSON output records.
EDGE_RULE = ("nearest input frame to each clip time (a tie takes the earlier frame); times "
             "before the first frame take the first, times after the last frame the last")


@dataclass(frozen=True)
class ClipSampling:
    """How the clips of a pass were sampled: ``num_frames`` frames at stride
    ``sampling_rate`` frames of the rate the model was trained at (``trained_fps``), each
    taken from the video (at ``input_fps``) by :data:`EDGE_RULE`."""

    trained_fps: float
    input_fps: float
    num_frames: int
    sampling_rate: int

    @property
    def span_s(self) -> float:
        """Seconds from a clip's first frame to its last (32x2 at 30 fps: 62 / 30)."""
        return (self.num_frames - 1) * self.sampling_rate / self.trained_fps


@dataclass
class KeyframeResult:
    """One keyframe: ``time`` seconds from the video start, centre ``frame``; per person
    ``boxes`` ``(K, 4)`` normalised x1 y1 x2 y2, ``person_scores`` ``(K,)``, ``track_ids``
    ``(K,)`` and ``action_scores`` ``(K, C)`` (column j = class ``class_ids[j]``);
    ``clip_frames`` ``(num_frames,)`` int64, the input frames its clip is made of (also for a
    keyframe without persons, whose clip is not scored)."""

    index: int
    time: float
    frame: int
    boxes: np.ndarray
    person_scores: np.ndarray
    track_ids: np.ndarray
    action_scores: np.ndarray
    clip_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class DetectResult:
    video: Path
    video_id: str
    fps: float
    num_frames: int
    width: int
    height: int
    class_ids: list[int]
    keyframes: list[KeyframeResult]
    annotated_video: Optional[Path]
    # Seconds spent: decode (demux, decode, RGB), persons (detector), actions (resize,
    # normalise, model), render (draw, encode), total (wall time of the pass).
    timings: dict[str, float] = field(default_factory=dict)
    # Most frames held in memory at once (full-size frames awaiting writing + resized clip
    # frames): bounded by the clip window and the keyframe interval, not the video length.
    peak_frames_held: int = 0
    sampling: Optional[ClipSampling] = None

    def clip_times(self, keyframe: KeyframeResult) -> np.ndarray:
        """``(num_frames,)`` seconds shown by the frames of ``keyframe``'s clip."""
        return keyframe.clip_frames / self.fps

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps
