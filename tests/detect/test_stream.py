"""The streaming pass's bookkeeping alone, on a frame line without a video or a model: which
frames a keyframe's clip takes, when a keyframe becomes scoreable, when a held frame may be
written."""

from __future__ import annotations

import numpy as np

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
    state.next_score = 1  # keyframe 0 scored: its frames go, keyframe 1's stay
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
    state.next_score = 1  # keyframe 1's clip ends at frame 12
    state.decoded = 12
    assert not state.scoreable(ended=False)
    assert state.scoreable(ended=True)  # the video ended: the rest is the last frame
    state.next_score = 2  # keyframe 2's centre frame is not decoded: no persons yet
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
