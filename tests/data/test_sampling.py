"""Keyframe -> frame index and clip sampling against hand-computed PySlowFast values."""

from __future__ import annotations

import numpy as np
import pytest

from avadet.data import (
    keyframe_to_frame_index,
    sample_clip_indices,
    valid_keyframe_mask,
)


@pytest.mark.parametrize(
    "timestamp, fps, start, expected",
    [
        (902, 30.0, 900.0, 60),  # AVA: file <vid>_000061.jpg
        (900, 30.0, 900.0, 0),
        (1798, 30.0, 900.0, 26940),
        (1800, 30.0, 900.0, 27000),
        (901.5, 30.0, 900.0, 45),
        (902, 25.0, 900.0, 50),  # a 25 fps source
        (12, 24.0, 10.0, 48),  # another segment start
        (10.1, 30.0, 10.0, 3),  # 0.1 * 30 is 2.9999999 in floating point
        (899, 30.0, 900.0, -30),  # before the segment: callers clamp
    ],
)
def test_keyframe_to_frame_index(timestamp, fps, start, expected):
    got = keyframe_to_frame_index(timestamp, fps=fps, segment_start=start)
    assert got == expected and isinstance(got, int)


def test_keyframe_to_frame_index_vectorised():
    got = keyframe_to_frame_index(np.array([902, 903, 1798]), fps=30.0, segment_start=900.0)
    np.testing.assert_array_equal(got, [60, 90, 26940])


def test_sample_inside_the_video():
    # t = 902 with AVA 32x2: range(60 - 32, 60 + 32, 2), nothing to clamp.
    got = sample_clip_indices(60, num_frames=32, sampling_rate=2, total_frames=27030)
    np.testing.assert_array_equal(got, np.arange(28, 92, 2))


@pytest.mark.parametrize(
    "center, n, s, total, expected",
    [
        # t = 901 (centre 30) with 32x2 starts at -2: the first index clamps to 0.
        (30, 32, 2, 27030, [0, 0] + list(range(2, 62, 2))),
        # t = 900 (centre 0): the first half all clamp to frame 0.
        (0, 8, 2, 27030, [0, 0, 0, 0, 0, 2, 4, 6]),
        # The last AVA keyframe of a 27,030-frame cut (t = 1800): 27030 clamps to 27029.
        (27000, 32, 2, 27030, list(range(26968, 27030, 2)) + [27029]),
        # A short video: everything past the end repeats the last frame.
        (90, 8, 4, 100, [74, 78, 82, 86, 90, 94, 98, 99]),
        # Slow-only 8x8 is 4 frames at stride 16.
        (60, 4, 16, 27030, [28, 44, 60, 76]),
        # Odd length: half = 7 * 3 // 2 = 10.
        (50, 7, 3, 200, [40, 43, 46, 49, 52, 55, 58]),
        # A one-frame video.
        (5, 4, 2, 1, [0, 0, 0, 0]),
    ],
)
def test_sample_clamps_at_the_edges(center, n, s, total, expected):
    got = sample_clip_indices(center, num_frames=n, sampling_rate=s, total_frames=total)
    assert got.dtype == np.int64 and got.shape == (n,)
    np.testing.assert_array_equal(got, expected)


def test_valid_keyframes_follow_the_configured_segment():
    stamps = np.array([899, 900, 902, 1798, 1800, 1801])
    np.testing.assert_array_equal(
        valid_keyframe_mask(stamps, fps=30.0, segment_start=900.0, segment_end=1800.0),
        [False, True, True, True, True, False],
    )
    np.testing.assert_array_equal(
        valid_keyframe_mask(
            np.array([9, 10, 14, 15]), fps=24.0, segment_start=10.0, segment_end=14.0
        ),
        [False, True, True, False],
    )
