"""The streaming pass's bookkeeping alone, on a frame line without a video or a model: which
frames a keyframe's clip takes (the nearest-frame rule that maps a clip's times to a video's
frames at any rate), when a keyframe becomes scoreable, when a held frame may be written."""

from __future__ import annotations

import numpy as np
import pytest

from avadet.data.sampling import (
    clip_times,
    keyframe_to_frame_index,
    nearest_frame_index,
    sample_clip_indices,
)
from avadet.detect import IouTracker, KeyframeResult
from avadet.detect.stream import ClipTimeline, StreamState


def _timeline(start: float = 0.0) -> ClipTimeline:
    """10 fps, a model trained at 10 fps, a keyframe a second, clips of 4 frames at stride 2
    (window 8)."""
    return ClipTimeline(fps=10.0, start=start, interval=1.0, num_frames=4, sampling_rate=2,
                        trained_fps=10.0)


def _keyframe(k: int) -> KeyframeResult:
    return KeyframeResult(index=k, time=float(k), frame=10 * k, boxes=np.zeros((0, 4)),
                          person_scores=np.zeros(0), track_ids=np.zeros(0, np.int64),
                          action_scores=np.zeros((0, 3)))


def test_which_frames_a_keyframe_needs():
    timeline = _timeline()
    # Keyframe 0 (centre 0): -4 -2 0 2, the indices before the start stand for frame 0.
    assert [i for i in range(30) if timeline.uses(0, i)] == [0, 2]
    assert [i for i in range(30) if timeline.uses(1, i)] == [6, 8, 10, 12]
    for k in range(3):  # the frames kept are those the dataset's sampling reads
        assert {i for i in range(40) if timeline.uses(k, i)} == set(
            timeline.clip_indices(k, total_frames=40).tolist())
    # From the first keyframe still to score on: earlier clips no longer count.
    assert [i for i in range(24) if timeline.needed(0, i)] == [0, 2, 6, 8, 10, 12, 16, 18, 20, 22]
    assert [i for i in range(24) if timeline.needed(1, i)] == [6, 8, 10, 12, 16, 18, 20, 22]

    state = StreamState(timeline, IouTracker())
    state.resized = {i: np.zeros((2, 2, 3), np.uint8) for i in (0, 2, 6, 8)}
    state.next_clip = 1  # keyframe 0's clip taken: its frames go, keyframe 1's stay
    state.drop_resized_before_next_clip()
    assert sorted(state.resized) == [6, 8]


def test_fractional_keyframe_times_on_the_frame_line():
    timeline = ClipTimeline(fps=30.0, start=0.5, interval=2.5, num_frames=16, sampling_rate=2,
                            trained_fps=30.0)
    assert [timeline.time(k) for k in range(3)] == [0.5, 3.0, 5.5]
    assert [timeline.centre(k) for k in range(3)] == [15, 90, 165]


def test_a_keyframe_becomes_scoreable_when_its_clip_is_complete():
    state = StreamState(_timeline(), IouTracker())
    state.next_detect = 2  # the persons of keyframes 0 and 1 are found
    state.decoded = 2  # frames 0 and 1: keyframe 0's clip ends at frame 2
    assert not state.scoreable(ended=False)
    state.decoded = 3
    assert state.scoreable(ended=False)
    state.next_clip = 1  # keyframe 0's clip taken; keyframe 1's ends at frame 12
    state.decoded = 12
    assert not state.scoreable(ended=False)
    assert state.scoreable(ended=True)  # the video ended: the rest is the last frame
    state.next_clip = 2  # keyframe 2's centre frame is not decoded: no persons yet
    assert not state.scoreable(ended=True)


def test_a_held_frame_waits_for_the_keyframe_it_shows():
    state = StreamState(_timeline(start=0.5), IouTracker())  # centres 5, 15, 25 ...
    frames = {i: np.full((2, 2, 3), i, np.uint8) for i in range(3, 17)}
    state.held.extend((i, frames[i]) for i in range(3, 7))
    state.next_detect = 1  # keyframe 0's persons are found, it is not scored

    # Frames before the first centre show nothing and go at once; frame 5 waits.
    assert [state.pop_writable(final=False)[1] for _ in range(2)] == [None, None]
    assert state.pop_writable(final=False) is None and len(state.held) == 2

    state.results.append(_keyframe(0))
    state.next_score = 1
    frame, shows = state.pop_writable(final=False)
    assert frame is frames[5] and shows is state.results[0]

    state.held.extend((i, frames[i]) for i in range(7, 17))
    state.next_detect = 2  # keyframe 1 (centre 15) found, not scored
    written = []
    while (ready := state.pop_writable(final=False)) is not None:
        written.append(int(ready[0][0, 0, 0]))
    assert written == list(range(6, 15)) and [i for i, _ in state.held] == [15, 16]

    state.results.append(_keyframe(1))
    state.next_score = 2
    rest = [state.pop_writable(final=True) for _ in range(2)]
    assert [shows.index for _, shows in rest] == [1, 1] and not state.held


def test_nearest_frame_rule_ties_and_edges():
    # 0.1 s at 25 fps is frame 2.5: a tie takes the earlier frame (the one still shown).
    assert nearest_frame_index(0.1, fps=25.0) == 2
    assert nearest_frame_index(np.array([0.02, 0.06, 0.0667, 0.1 + 1e-4]), fps=25.0).tolist() == [
        0, 1, 2, 3]
    # Before the start: frame 0; past the end: the last frame; no length given: no end.
    got = nearest_frame_index(np.array([[-1.0, -0.01], [3.99, 50.0]]), fps=25.0, total_frames=100)
    assert got.dtype == np.int64 and got.tolist() == [[0, 0], [99, 99]]
    assert nearest_frame_index(50.0, fps=25.0) == 1250
    # A 6 fps video under a 30 fps clip: each frame stands for 5 clip frames in a row.
    times = np.arange(-2, 40) / 30
    assert np.bincount(nearest_frame_index(times, fps=6.0))[1:6].tolist() == [5] * 5


@pytest.mark.parametrize(("num_frames", "sampling_rate"), [(32, 2), (16, 2), (4, 16), (8, 8),
                                                           (7, 3)])
def test_at_the_trained_rate_the_rule_is_the_training_sampler(num_frames, sampling_rate):
    """30 fps video, 30 fps model: nearest frames of the clip's times are exactly the dataset's
    frame indices, for whole-second, fractional and late keyframe times and short videos."""
    times = np.concatenate([np.arange(0, 30, 0.01), [902.0, 1798.0, 1e6 + 0.37]])
    for total in (5, 40, 10**9):
        got = nearest_frame_index(clip_times(times, fps=30.0, num_frames=num_frames,
                                             sampling_rate=sampling_rate),
                                  fps=30.0, total_frames=total)
        centres = keyframe_to_frame_index(times, fps=30.0, segment_start=0.0)
        want = np.stack([sample_clip_indices(int(c), num_frames=num_frames,
                                             sampling_rate=sampling_rate, total_frames=total)
                         for c in centres])
        np.testing.assert_array_equal(got, want)


def test_clips_at_other_rates_than_the_trained_one():
    # A 30 fps model on a 6 fps video: keyframe 1's clip (1 - 16/30 .. 1 + 14/30 s) ends at
    # frame 9 (1.47 s): scored once frame 9 is decoded, not 32 input frames later.
    slow = ClipTimeline(fps=6.0, start=0.0, interval=1.0, num_frames=16, sampling_rate=2,
                        trained_fps=30.0)
    assert slow.centre(1) == 6 and (slow.clip_first(1), slow.clip_last(1)) == (3, 9)
    assert [i for i in range(20) if slow.uses(1, i)] == list(range(3, 10))
    state = StreamState(slow, IouTracker())
    state.next_detect, state.next_clip, state.decoded = 2, 1, 9
    assert not state.scoreable(ended=False)
    state.decoded = 10
    assert state.scoreable(ended=False)
    # A model trained at 15 fps on a 30 fps video: its stride of 2 frames is 4 input frames.
    fast = ClipTimeline(fps=30.0, start=0.0, interval=1.0, num_frames=4, sampling_rate=2,
                        trained_fps=15.0)
    assert fast.centre(1) == 30 and fast.clip_indices(1, total_frames=100).tolist() == [
        22, 26, 30, 34]
    assert fast.clip_indices(0, total_frames=100).tolist() == [0, 0, 0, 4]
