"""Which frames a clip around a keyframe is made of (PySlowFast's AVA sampling).

Time line: frame ``k`` (0-based) of a cut segment video shows time ``segment_start + k / fps``.
AVA: ``segment_start = 900``, ``fps = 30``, keyframe ``t = 902`` is frame index 60, the JPEG
``<vid>_000061.jpg`` (file numbers are 1-based).
"""

from __future__ import annotations

from typing import Union

import numpy as np

# Guards against (t - start) * fps landing a hair below an integer in floating point.
_EPS = 1e-6


def keyframe_to_frame_index(
    timestamp: Union[int, float, np.ndarray], *, fps: float, segment_start: float
) -> Union[int, np.ndarray]:
    """0-based index of the frame shown at ``timestamp`` seconds (the clip's centre frame).

    The frame shown at time ``t`` is the last frame that started at or before ``t``:
    ``floor((t - segment_start) * fps)``; for AVA's integer keyframes at 30 fps this is exactly
    PySlowFast's ``sec_to_frame``. Accepts a scalar (returns ``int``) or an array (returns an
    int64 array of the same shape). The result may lie outside the video; callers clamp.
    """
    index = np.floor((np.asarray(timestamp, dtype=np.float64) - segment_start) * fps + _EPS)
    index = index.astype(np.int64)
    return int(index) if index.ndim == 0 else index


def sample_clip_indices(
    center: int, *, num_frames: int, sampling_rate: int, total_frames: int
) -> np.ndarray:
    """The Fast pathway's frame indices around ``center`` (PySlowFast's ``get_sequence``).

    ``range(center - L // 2, center + L // 2, sampling_rate)`` with ``L = num_frames *
    sampling_rate``, each index clamped to ``[0, total_frames - 1]`` (so clips at the start or
    end of a video repeat their first / last frame).

    Returns:
        ``(num_frames,)`` int64 0-based frame indices, non-decreasing.
    """
    if num_frames < 1 or sampling_rate < 1:
        raise ValueError(
            f"num_frames ({num_frames}) and sampling_rate ({sampling_rate}) must be >= 1"
        )
    if total_frames < 1:
        raise ValueError(f"total_frames must be >= 1, got {total_frames}")
    half = num_frames * sampling_rate // 2
    indices = np.arange(center - half, center + half, sampling_rate, dtype=np.int64)[:num_frames]
    return np.clip(indices, 0, total_frames - 1)


def valid_keyframe_mask(
    timestamps: np.ndarray, *, fps: float, segment_start: float, segment_end: float
) -> np.ndarray:
    """True for keyframes whose centre frame lies inside the segment.

    The segment's frames are indices ``0 .. floor((segment_end - segment_start) * fps)``: a
    keyframe at ``segment_start <= t <= segment_end`` (AVA: 900..1800; its annotated keyframes
    are 902..1798). Frames of the clip that fall outside are clamped, not the keyframe.

    Returns:
        ``(N,)`` bool for ``(N,)`` timestamps.
    """
    centre = keyframe_to_frame_index(np.asarray(timestamps), fps=fps, segment_start=segment_start)
    last = keyframe_to_frame_index(segment_end, fps=fps, segment_start=segment_start)
    return (centre >= 0) & (centre <= last)
