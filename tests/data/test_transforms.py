"""Boxes stay on the same pixels through scale, crop and flip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avadet.boxes import to_pixels
from avadet.data import eval_transform, train_transform
from avadet.data.transforms import color_jitter, short_side_size, to_input

MEAN, STD = [0.45, 0.45, 0.45], [0.225, 0.225, 0.225]


def painted_clip(norm_boxes: np.ndarray, height: int, width: int, t: int = 2) -> np.ndarray:
    """A black ``(T, H, W, 3)`` clip with the pixels of each box painted white."""
    clip = np.zeros((t, height, width, 3), np.uint8)
    for x1, y1, x2, y2 in to_pixels(norm_boxes, width, height):
        clip[:, int(round(y1)) : int(round(y2)), int(round(x1)) : int(round(x2))] = 255
    return clip


def painted_extent(clip: torch.Tensor) -> np.ndarray:
    """Bounding box ``x1 y1 x2 y2`` of the bright pixels of a normalised ``(3, T, H, W)`` clip
    (pixel edges, so x2 is one past the last bright column)."""
    mask = (clip[0, 0] * STD[0] + MEAN[0] > 0.5).numpy()
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def test_short_side_size():
    assert short_side_size(240, 320, 256) == (256, 341)
    assert short_side_size(320, 240, 256) == (341, 256)
    assert short_side_size(240, 320, 0) == (240, 320)


def test_short_side_size_rounded_as_mmcv():
    """MMAction2's Resize(scale=(-1, 256)): mmcv.rescale_size rounds each side (values from
    mmcv 2.1: (323, 240) -> (345, 256), (96, 64) -> (384, 256))."""
    assert short_side_size(240, 323, 256) == (256, 344)  # floored
    assert short_side_size(240, 323, 256, "round") == (256, 345)
    assert short_side_size(64, 96, 256, "round") == (256, 384)
    assert short_side_size(323, 240, 256, "round") == (345, 256)
    with pytest.raises(ValueError, match="rounding"):
        short_side_size(240, 323, 256, "ceil")


@pytest.mark.parametrize("seed", range(12))
def test_train_boxes_follow_the_pixels(seed):
    box = np.array([[0.3, 0.25, 0.7, 0.8]])
    clip = painted_clip(box, 40, 60)
    rng = np.random.RandomState(seed)
    out = train_transform(
        clip,
        box,
        jitter_scales=(40, 64),
        crop_size=40,
        flip=True,
        color=False,
        mean=MEAN,
        std=STD,
        rng=rng,
    )
    assert out.clip.shape[0] == 3 and out.clip.shape[1:] == (2, 40, 40)
    assert out.clip.dtype == torch.float32
    assert out.keep.tolist() == [True] and out.boxes.shape == (1, 4)
    # The painted region is the box (to a pixel: interpolation blur and the flip's W - 1 - x).
    extent = painted_extent(out.clip)
    assert np.abs(extent - out.boxes[0]).max() <= 1.5, (extent, out.boxes[0])


def test_flip_mirrors_box_and_pixels():
    box = np.array([[0.1, 0.2, 0.4, 0.6]])  # left part of the frame
    clip = painted_clip(box, 40, 40)
    flipped = None
    for seed in range(20):  # find a draw with and one without the flip
        out = train_transform(
            clip,
            box,
            jitter_scales=(40, 40),
            crop_size=40,
            flip=True,
            color=False,
            mean=MEAN,
            std=STD,
            rng=np.random.RandomState(seed),
        )
        if out.boxes[0, 0] > 20:
            flipped = out
            break
    assert flipped is not None
    np.testing.assert_allclose(flipped.boxes[0], [39 - 16, 8, 39 - 4, 24])
    assert np.abs(painted_extent(flipped.clip) - flipped.boxes[0]).max() <= 1.0


def test_boxes_cropped_out_are_dropped_with_their_position():
    # A wide frame: a crop of the short side cannot hold people at both ends.
    boxes = np.array([[0.0, 0.1, 0.1, 0.9], [0.45, 0.1, 0.55, 0.9], [0.9, 0.1, 1.0, 0.9]])
    clip = painted_clip(boxes[:1], 30, 150)  # only the first person painted
    seen = set()
    for seed in range(30):
        out = train_transform(
            clip,
            boxes,
            jitter_scales=(30, 30),
            crop_size=30,
            flip=False,
            color=False,
            mean=MEAN,
            std=STD,
            rng=np.random.RandomState(seed),
        )
        assert out.keep.sum() == len(out.boxes) >= 1
        assert not (out.keep[0] and out.keep[2])  # 120 px apart in a 30 px crop
        widths = out.boxes[:, 2] - out.boxes[:, 0]
        assert (widths >= 1).all()
        if out.keep[0]:
            # the kept box is where the painted person is
            extent = painted_extent(out.clip)
            assert np.abs(extent[[1, 3]] - out.boxes[0, [1, 3]]).max() <= 1.0
            assert abs(extent[2] - out.boxes[0, 2]) <= 1.5
        seen.add(tuple(out.keep.tolist()))
    assert len(seen) >= 2  # the crop really moves


def test_all_people_outside_the_random_crop_recentres_it():
    boxes = np.array([[0.0, 0.0, 0.05, 1.0]])
    clip = painted_clip(boxes, 20, 400)
    for seed in range(10):
        out = train_transform(
            clip,
            boxes,
            jitter_scales=(20, 20),
            crop_size=20,
            flip=False,
            color=False,
            mean=MEAN,
            std=STD,
            rng=np.random.RandomState(seed),
        )
        assert out.keep.tolist() == [True]


def test_test_transform_scales_exactly():
    box = np.array([[0.25, 0.25, 0.75, 1.0]])
    clip = painted_clip(box, 40, 60)
    out = eval_transform(clip, box, short_side=64, mean=MEAN, std=STD)
    assert out.clip.shape == (3, 2, 64, 96)
    np.testing.assert_allclose(
        out.boxes, [[24, 16, 72, 62.4]]
    )  # y2: clipped to H - 1 = 39 before scaling (PySlowFast)
    assert np.abs(painted_extent(out.clip) - out.boxes[0]).max() <= 1.0
    same = eval_transform(clip, box, short_side=0, mean=MEAN, std=STD)
    assert same.clip.shape == (3, 2, 40, 60)


def test_normalisation_values():
    clip = np.full((1, 4, 4, 3), 255, np.uint8)
    clip[..., 1] = 0
    out = eval_transform(
        clip, np.zeros((0, 4)), short_side=0, mean=[0.5, 0.4, 0.3], std=[0.5, 0.2, 0.1]
    )
    np.testing.assert_allclose(out.clip[:, 0, 0, 0].numpy(), [1.0, -2.0, 7.0], rtol=1e-6)
    assert out.boxes.shape == (0, 4)


def test_color_jitter_is_random_but_replayable():
    frames = torch.rand(2, 3, 8, 8)
    a = color_jitter(frames, rng=np.random.RandomState(3))
    b = color_jitter(frames, rng=np.random.RandomState(3))
    c = color_jitter(frames, rng=np.random.RandomState(4))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    # zero strength is the identity
    assert torch.equal(color_jitter(frames, brightness=0, contrast=0, saturation=0), frames)


def reference_jitter(frames: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """PySlowFast's colour jitter step by step on ``(T, H, W, 3)`` floats (per-frame contrast
    mean, per-pixel saturation grey, BT.601 weights)."""
    w = np.array([0.299, 0.587, 0.114])
    for op in rng.permutation(3):
        alpha = 1.0 + rng.uniform(-0.4, 0.4)
        if op == 0:
            frames = frames * alpha
        elif op == 1:
            grey = (frames @ w).mean((1, 2))[:, None, None, None]
            frames = frames * alpha + grey * (1 - alpha)
        else:
            frames = frames * alpha + (frames @ w)[..., None] * (1 - alpha)
    return frames


@pytest.mark.parametrize("seed", range(6))
def test_folded_color_jitter_equals_the_step_by_step_one(seed):
    clip = np.random.RandomState(100 + seed).randint(0, 256, (3, 5, 7, 3)).astype(np.uint8)
    expected = (reference_jitter(clip / 255.0, np.random.RandomState(seed)) - 0.45) / 0.225
    got = to_input(clip, MEAN, STD, color=True, rng=np.random.RandomState(seed))
    np.testing.assert_allclose(got.permute(1, 2, 3, 0).numpy(), expected, atol=1e-5)
    frames = torch.from_numpy(clip / 255.0).permute(0, 3, 1, 2).float()
    jittered = color_jitter(frames, rng=np.random.RandomState(seed))
    np.testing.assert_allclose(
        jittered.permute(0, 2, 3, 1).numpy(),
        reference_jitter(clip / 255.0, np.random.RandomState(seed)),
        atol=1e-5,
    )


def test_to_input_without_jitter_is_plain_normalisation():
    clip = np.random.RandomState(0).randint(0, 256, (2, 4, 6, 3)).astype(np.uint8)
    got = to_input(clip, [0.1, 0.2, 0.3], [0.5, 0.25, 0.125])
    expected = (clip / 255.0 - [0.1, 0.2, 0.3]) / [0.5, 0.25, 0.125]
    assert got.shape == (3, 2, 4, 6)
    np.testing.assert_allclose(got.permute(1, 2, 3, 0).numpy(), expected, atol=1e-5)


# A 64 x 95 frame to short side 224: W' = floor(95 / 64 * 224) = 332, so x moves by 332 / 95
# and y by 224 / 64 = 3.5; PySlowFast's scale_boxes moves all four by 332 / 95.
@pytest.mark.parametrize("portrait", [False, True])
def test_eval_box_scaling_per_axis_and_long_side(portrait):
    box = np.array([[0.2, 0.3, 0.9, 0.8]])
    height, width = (95, 64) if portrait else (64, 95)
    clip = np.zeros((1, height, width, 3), np.uint8)
    pixels = to_pixels(box, width, height)[0]
    per_axis = eval_transform(clip, box, short_side=224, mean=MEAN, std=STD)
    long_side = eval_transform(clip, box, short_side=224, mean=MEAN, std=STD,
                               box_scaling="long_side")
    assert per_axis.clip.shape == long_side.clip.shape
    long_ratio = 332 / 95
    ratios = [3.5, long_ratio] if portrait else [long_ratio, 3.5]  # x, y
    np.testing.assert_allclose(per_axis.boxes[0], pixels * np.array(ratios * 2), rtol=1e-6)
    np.testing.assert_allclose(long_side.boxes[0], pixels * long_ratio, rtol=1e-6)


def test_train_box_scaling_long_side():
    # 40 x 61 to short side 56: W' = 85, x by 85 / 61, y by 1.4 (per_axis) or 85 / 61.
    box = np.array([[0.3, 0.25, 0.7, 0.8]])
    clip = np.zeros((1, 40, 61, 3), np.uint8)
    outs = [train_transform(clip, box, jitter_scales=(56, 56), crop_size=56, flip=False,
                            color=False, mean=MEAN, std=STD, box_scaling=scaling,
                            rng=np.random.RandomState(3))
            for scaling in ("per_axis", "long_side")]
    pixels = to_pixels(box, 61, 40)[0]
    np.testing.assert_allclose(outs[0].boxes[0, [0, 2]], outs[1].boxes[0, [0, 2]])
    np.testing.assert_allclose(outs[0].boxes[0, [1, 3]] - outs[1].boxes[0, [1, 3]],
                               pixels[[1, 3]] * (1.4 - 85 / 61), rtol=1e-5)


def test_unknown_box_scaling_is_refused():
    clip = np.zeros((1, 40, 61, 3), np.uint8)
    with pytest.raises(ValueError, match="box_scaling"):
        eval_transform(clip, np.zeros((0, 4)), short_side=56, mean=MEAN, std=STD,
                       box_scaling="diagonal")


def test_eval_box_clipping_last_pixel_or_none():
    # A box to the right and bottom edges of a 40 x 61 frame, to short side 80 (122 x 80):
    # PySlowFast's clipping ends it at the last pixel of the frame (60, 39) scaled, then of
    # the input; MMAction2's ("none") at the frame's size scaled: the input's (122, 80).
    box = np.array([[0.25, 0.5, 1.0, 1.0]])
    clip = np.zeros((1, 40, 61, 3), np.uint8)
    clipped = eval_transform(clip, box, short_side=80, mean=MEAN, std=STD, rounding="round")
    unclipped = eval_transform(clip, box, short_side=80, mean=MEAN, std=STD, rounding="round",
                               box_clipping="none")
    assert unclipped.clip.shape == clipped.clip.shape == (3, 1, 80, 122)
    sx, sy = 122 / 61, 2.0
    np.testing.assert_allclose(unclipped.boxes[0], [0.25 * 61 * sx, 20 * sy, 122, 80], rtol=1e-6)
    np.testing.assert_allclose(clipped.boxes[0], [0.25 * 61 * sx, 20 * sy, 60 * sx, 39 * sy],
                               rtol=1e-6)
    with pytest.raises(ValueError, match="box_clipping"):
        eval_transform(clip, box, short_side=80, mean=MEAN, std=STD, box_clipping="edge")
