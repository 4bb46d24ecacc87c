"""avadet's dataset reproduces MMAction2's AVA test pipeline under the settings of an MMAction2
checkpoint (``mmaction_settings``): the same frame files, the same resized pixels, the same
normalised input and the same boxes (unclipped, as MMAction2 leaves them, see below).

The reference, tests/fixtures/data/mmaction_pipeline.npz, is MMAction2's own SampleAVAFrames,
RawFrameDecode, Resize(scale=(-1, 256)), FormatShape and ActionDataPreprocessor run on the
JPEG frames it holds (tools/parity/make_mmaction_pipeline_fixture.py), for keyframe 900 (clip
clamped at the first frame) and 901.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.mmaction_reference import read_recipe, write_checkpoint

from avadet.data import FrameFolderSource
from avadet.data.dataset import AvaDataset
from avadet.models import mmaction_settings, read_checkpoint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REFERENCE = FIXTURES / "data" / "mmaction_pipeline.npz"
SLOWFAST = FIXTURES / "models" / "mmaction_slowfast_r50_4x16x1_w8.json"
STRIDE = 16  # the reference keeps every 16th pixel of the resized frames


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


@pytest.fixture(scope="module")
def items(reference, tmp_path_factory):
    """avadet's dataset items of the reference keyframes, with the checkpoint's settings."""
    tmp = tmp_path_factory.mktemp("mmaction_pipeline")
    folder = tmp / "frames" / "vidA"
    folder.mkdir(parents=True)
    data, offsets = reference["jpeg_bytes"], reference["jpeg_offsets"]
    for k in range(len(offsets) - 1):
        (folder / f"img_{k + 1:05d}.jpg").write_bytes(data[offsets[k]: offsets[k + 1]].tobytes())
    path = write_checkpoint(read_recipe(SLOWFAST), tmp / "slowfast.pth")
    _, settings, class_ids = mmaction_settings(read_checkpoint(path)[1], path)
    keyframes = reference["keyframes"].tolist()
    boxes = reference["proposals_normalised"]
    rows = pd.DataFrame(
        [dict(video_id="vidA", timestamp=t, x1=b[0], y1=b[1], x2=b[2], y2=b[3], score=1.0)
         for t in keyframes for b in boxes]
    )
    dataset = AvaDataset(
        rows, np.zeros((len(rows), len(class_ids)), np.float32), class_ids,
        FrameFolderSource(tmp / "frames", template="img_{index:05d}.jpg"),
        train=False, fps=30.0, segment_start=900.0,
        num_frames=settings["num_frames"], sampling_rate=settings["sampling_rate"],
        test_short_side=settings["test_short_side"], mean=settings["mean"], std=settings["std"],
        resize_rounding=settings["resize_rounding"],
        clip_center_offset=settings["clip_center_offset"],
        box_clipping=settings["box_clipping"],
    )
    assert dataset.timestamps == keyframes
    return dataset, [dataset[i] for i in range(len(dataset))], settings


@pytest.mark.parametrize("j", [0, 1])
def test_same_frame_files(reference, items, j):
    dataset, _, _ = items
    np.testing.assert_array_equal(dataset.clip_indices(j) + 1, reference[f"frame_files_{j}"])


@pytest.mark.parametrize("j", [0, 1])
def test_same_input(reference, items, j):
    _, its, settings = items
    clip = its[j].clip
    assert tuple(clip.shape) == tuple(reference[f"input_shape_{j}"])  # (3, 32, 256, 384)
    # Back to 0..255 pixels: the resized frames are MMAction2's, pixel for pixel.
    mean = np.asarray(settings["mean"])[:, None, None, None] * 255
    std = np.asarray(settings["std"])[:, None, None, None] * 255
    pixels = np.rint(clip.double().numpy() * std + mean)[:, :, ::STRIDE, ::STRIDE]
    np.testing.assert_array_equal(pixels.transpose(1, 2, 3, 0), reference[f"resized_strided_{j}"])
    # The normalised input: MMAction2's (x - mean) / std in 0..255 units.
    np.testing.assert_allclose(clip.double().mean((1, 2, 3)).numpy(), reference[f"input_mean_{j}"],
                               atol=1e-5)
    assert abs(clip.abs().max().item() - float(reference[f"input_abs_max_{j}"])) <= 1e-5


@pytest.mark.parametrize("j", [0, 1])
def test_same_boxes_at_the_far_edges_too(reference, items, j):
    """MMAction2 scales proposals by (W, H) without clipping (x2 = 1.0 -> W, then times the
    resize factor 4: 384); so does avadet under the checkpoint's ``box_clipping: none``
    (PySlowFast's convention, the default, clips to the last pixel W - 1 = 95 first: 380)."""
    _, its, settings = items
    assert settings["box_clipping"] == "none"
    ours, theirs = its[j].boxes.numpy(), reference[f"proposals_{j}"]
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    np.testing.assert_allclose(theirs[1, 2:], [384.0, 256.0])
