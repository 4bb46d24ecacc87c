"""``avadet detect`` takes a keyframe's clip by time, whatever the video's frame rate: one
scene written at 60, 30, 25 and 6 fps gives every keyframe the same clip times (within half an
input frame), the same person boxes and the same action scores.

The scene (``fixtures.detect_media.bar_scene``) is a bar moving right, constant over pieces of
1/6 s centred on the 6 fps frames, so the frame nearest to each clip time shows the same pixels
at every one of these rates (lossless files): scores must agree to float rounding
(``SCORE_TOL``). A rule that counts input frames instead (today's before this change: at 6 fps
a 16x2 clip spans 5.3 s, at 60 fps 0.53 s) changes the scores by 400x that or more, checked
below, so the tolerance is no blanket.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures.detect_media import randomize_model, read_all, write_scene
from torch import nn

from avadet.config import Config
from avadet.data.sampling import clip_times, sample_clip_indices
from avadet.detect import ClipDetector, ClipSettings
from avadet.detect.outputs import summary
from avadet.detect.results import EDGE_RULE
from avadet.errors import ConfigError
from avadet.models import build_model
from avadet.persons import PersonBoxes, PersonDetector

RATES = (60, 30, 25, 6)
SECONDS = 4.0
NUM_FRAMES, SAMPLING_RATE = 16, 2  # 30 fps frames: the clip spans 30/30 = 1 s
# Same pixels in, same arithmetic: equal to float rounding (summation order may differ with
# the thread count). The input-frame rule differs by >= 4e-4 on these keyframes.
SCORE_TOL = 1e-6


class BarFinder(PersonDetector):
    """A "person detector" that boxes the scene's bright pixels: where the box lands shows
    which frame it was given."""

    def detect(self, frames, keys=None):
        out = []
        for frame in frames:
            ys, xs = np.nonzero(frame.min(axis=2) >= 200)
            h, w = frame.shape[:2]
            box = [xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h]
            out.append(PersonBoxes(np.array([box], np.float32), np.ones(1, np.float32)))
        return out


def _model(cfg: Config) -> nn.Module:
    """Width 8, random BN statistics and a head of unit-scale weights, so that scores depend
    visibly on the clip (a fresh model's zero-initialised last BNs silence its blocks)."""
    torch.manual_seed(0)
    model = build_model(cfg)
    return randomize_model(model, head_scale=1.0).eval()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The scene at each rate (4 s, 96x64) through the detector, annotated video written."""
    tmp = tmp_path_factory.mktemp("rates")
    cfg = Config()
    cfg.data.num_frames, cfg.data.sampling_rate, cfg.data.test_short_side = (
        NUM_FRAMES, SAMPLING_RATE, 0)
    cfg.model.width_per_group, cfg.model.num_classes = 8, 8
    runner = ClipDetector(_model(cfg), ClipSettings.from_config(cfg), list(range(8)),
                          BarFinder())
    out = {}
    for fps in RATES:
        video = write_scene(tmp / f"scene{fps}.mp4", SECONDS, fps=fps)
        out[fps] = runner.run(video, annotated_path=tmp / f"annotated{fps}.mp4", progress=False)
    return runner, out


def test_clip_times_are_the_same_at_every_rate(runs):
    _, results = runs
    for fps, result in results.items():
        assert result.fps == fps and result.num_frames == SECONDS * fps
        assert [k.time for k in result.keyframes] == [0.0, 1.0, 2.0, 3.0]
        for kf in result.keyframes:
            # Persons are found on the frame at the keyframe's time.
            assert kf.frame == kf.time * fps
            # Each clip frame is the input frame nearest to the 30 fps clip's time (times
            # before the video's start: its first frame).
            want = np.maximum(clip_times(kf.time, fps=30, num_frames=NUM_FRAMES,
                                         sampling_rate=SAMPLING_RATE), 0.0)
            got = result.clip_times(kf)
            assert got.shape == (NUM_FRAMES,)
            assert np.abs(got - want).max() <= 0.5 / fps + 1e-9
            reference = results[30].clip_times(results[30].keyframes[kf.index])
            assert np.abs(got - reference).max() <= 0.5 / fps + 1e-9
    # 6 fps is slower than the clip's 15 frames a second: frames repeat (here 2 or 3 times).
    assert results[6].keyframes[1].clip_frames.tolist() == [3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7,
                                                            8, 8, 8, 9]
    # 60 fps: every fourth frame; 30 fps: PySlowFast's indices, range(centre - 16, centre + 16, 2).
    assert results[60].keyframes[2].clip_frames.tolist() == list(range(88, 152, 4))
    assert results[30].keyframes[2].clip_frames.tolist() == list(range(44, 76, 2))


def test_boxes_and_scores_are_the_same_at_every_rate(runs):
    _, results = runs
    reference = results[30].keyframes
    for fps in RATES:
        for kf, ref in zip(results[fps].keyframes, reference):
            np.testing.assert_array_equal(kf.boxes, ref.boxes)
            np.testing.assert_allclose(kf.action_scores, ref.action_scores, rtol=0,
                                       atol=SCORE_TOL)
    # The boxes follow the bar: the keyframes are different frames of the scene.
    assert len({tuple(k.boxes[0]) for k in reference}) == len(reference)


@pytest.mark.parametrize("fps", [60, 6])
def test_counting_input_frames_instead_would_show(runs, tmp_path, fps):
    """The clip of the old rule (``num_frames`` input frames at stride ``sampling_rate`` input
    frames) scored on the same boxes differs far beyond the tolerance."""
    runner, results = runs
    frames = read_all(write_scene(tmp_path / "scene.mp4", SECONDS, fps=fps))
    for kf, ref in zip(results[fps].keyframes[1:], results[30].keyframes[1:]):
        old = sample_clip_indices(kf.frame, num_frames=NUM_FRAMES, sampling_rate=SAMPLING_RATE,
                                  total_frames=len(frames))
        scores = runner.score(frames[old], frames.shape[1:3], kf.boxes)
        assert np.abs(scores - ref.action_scores).max() > 100 * SCORE_TOL


def test_memory_is_a_window_in_seconds(runs):
    """Frames held stay within (clip span + keyframe interval) seconds of video: 60 fps keeps
    enough frames (its clips are complete, above) and 6 fps reads no further than the clip's
    last time before scoring (an input-frame window would be 32 frames, 5.3 s)."""
    _, results = runs
    for fps, result in results.items():
        span = result.sampling.span_s
        assert span == pytest.approx(1.0)
        assert result.peak_frames_held <= (span + 1.0) * fps + 2
    assert results[6].peak_frames_held <= 14


def test_the_json_records_the_sampling(runs):
    _, results = runs
    for fps, result in results.items():
        doc = summary(result, labelmap=None, timestamp_offset=0.0, show_top=1)
        assert doc["sampling"] == {"trained_fps": 30.0, "input_fps": float(fps),
                                   "num_frames": NUM_FRAMES, "sampling_rate": SAMPLING_RATE,
                                   "clip_span_s": 1.0, "edge_rule": EDGE_RULE}
        assert [k["clip_frames"] for k in doc["keyframes"]] == [
            k.clip_frames.tolist() for k in result.keyframes]


def test_the_trained_rate_comes_from_the_training_config():
    cfg = Config()
    assert ClipSettings.from_config(cfg).trained_fps == 30.0
    cfg.data.fps = 15.0
    assert ClipSettings.from_config(cfg).trained_fps == 15.0
    assert ClipSettings.from_config(cfg, trained_fps=24.0).trained_fps == 24.0
    for bad in (0.0, -30.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="training frame rate"):
            ClipSettings.from_config(cfg, trained_fps=bad)
