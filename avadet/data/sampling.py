"""Which frames a clip around a keyframe is made of (PySlowFast's AVA sampling).

Time line: frame ``k`` (0-based) of a cut segment video shows time ``segment_start + k / fps``.
AVA: ``segment_start = 900``, ``fps = 30``, keyframe ``t = 902`` is frame index 60, the JPEG
``<vid>_000061.jpg`` (file numbers are 1-based).

A video at another rate than the model was trained at (``avadet detect``) takes the same clip
in time: :func:`clip_times` gives the times of the frames the training sampler would take at
the trained rate, :func:`nearest_frame_index` the input frames nearest to them.
"""

from __future__ import annotations

from typing import Optional, Union

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
    if total_frames < 1:
        raise ValueError(f"total_frames must be >= 1, got {total_frames}")
    return np.clip(center + clip_offsets(num_frames, sampling_rate), 0, total_frames - 1)


def clip_offsets(num_frames: int, sampling_rate: int) -> np.ndarray:
    """The Fast clip's frame offsets from its centre frame, as :func:`sample_clip_indices`
    takes them: ``range(-L // 2, L // 2, sampling_rate)[:num_frames]``, ``L = num_frames *
    sampling_rate`` (32x2: ``-32, -30, ..., 30``).

    Returns:
        ``(num_frames,)`` int64, increasing.
    """
    if num_frames < 1 or sampling_rate < 1:
        raise ValueError(
            f"num_frames ({num_frames}) and sampling_rate ({sampling_rate}) must be >= 1"
        )
    half = num_frames * sampling_rate // 2
    return np.arange(-half, half, sampling_rate, dtype=np.int64)[:num_frames]


def clip_times(
    keyframe_time: Union[float, np.ndarray], *, fps: float, num_frames: int, sampling_rate: int
) -> np.ndarray:
    """Seconds shown by the frames of the clip around ``keyframe_time`` on a video at ``fps``
    (the rate the model was trained at; seconds from the video's first frame).

    Exactly the frames :func:`sample_clip_indices` takes at that rate, before clamping: the
    centre :func:`keyframe_to_frame_index` (the frame shown at the keyframe time) plus
    :func:`clip_offsets`, each frame ``j`` at ``j / fps``. At AVA's 30 fps a 32x2 clip spans
    ``62 / 30`` s. Times may lie before 0 or past the video's end (callers clamp).

    Returns:
        ``(num_frames,)`` float64 for a scalar time, ``(K, num_frames)`` for ``(K,)`` times.
    """
    centre = keyframe_to_frame_index(np.asarray(keyframe_time, np.float64), fps=fps,
                                     segment_start=0.0)
    frames = np.asarray(centre)[..., None] + clip_offsets(num_frames, sampling_rate)
    return frames / float(fps)


def nearest_frame_index(
    times: Union[float, np.ndarray], *, fps: float, total_frames: Optional[int] = None
) -> Union[int, np.ndarray]:
    """0-based index of the frame of a video at ``fps`` nearest to each of ``times`` seconds
    (frame ``i`` at ``i / fps``).

    Rule: ``i = round(t * fps)``; a time exactly halfway between two frames (within 1e-6 of a
    frame) takes the earlier one, the frame still shown at that time. Edges: times before the
    first frame give frame 0, times after the last give frame ``total_frames - 1`` (the
    clamping of :func:`sample_clip_indices`); ``total_frames=None`` (a stream whose length is
    not known yet) clamps only at 0. A video slower than the clip's rate repeats frames
    (6 fps for a 30 fps model: each frame up to 5 times in a row). At ``fps`` equal to the
    clip's rate, ``nearest_frame_index(clip_times(...))`` is :func:`sample_clip_indices`
    exactly.

    Returns:
        ``int`` for a scalar, else int64 of ``times``' shape.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if total_frames is not None and total_frames < 1:
        raise ValueError(f"total_frames must be >= 1, got {total_frames}")
    position = np.asarray(times, np.float64) * float(fps)
    index = np.maximum(np.ceil(position - 0.5 - _EPS).astype(np.int64), 0)
    if total_frames is not None:
        index = np.minimum(index, total_frames - 1)
    return int(index) if index.ndim == 0 else index


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
