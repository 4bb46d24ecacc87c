"""What a detection pass returns: per keyframe the persons, their ids and their action scores
(:class:`KeyframeResult`), per video the keyframes with the frame count, size and timings
(:class:`DetectResult`). Plain data shared by the runner, its streaming bookkeeping, the
drawing and the outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

# The stages a pass's time is split into (``DetectResult.timings`` adds ``total``).
TIMED_STAGES = ("decode", "persons", "actions", "render")


@dataclass
class KeyframeResult:
    """One keyframe: ``time`` seconds from the video start, centre ``frame``; per person
    ``boxes`` ``(K, 4)`` normalised x1 y1 x2 y2, ``person_scores`` ``(K,)``, ``track_ids``
    ``(K,)`` and ``action_scores`` ``(K, C)`` (column j = class ``class_ids[j]``)."""

    index: int
    time: float
    frame: int
    boxes: np.ndarray
    person_scores: np.ndarray
    track_ids: np.ndarray
    action_scores: np.ndarray


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

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps
