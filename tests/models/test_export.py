"""ONNX export: ONNX Runtime reproduces the torch model's scores (every published
architecture at width 8, both RoIAlign variants), with any number of boxes and any frame size;
``avadet export`` writes such a file from a checkpoint, with its class ids and preprocessing."""

from __future__ import annotations

import json
from pathlib import Path

import onnx  # noqa: F401  (test extra: the oracle must be present, not skipped)
import onnxruntime  # noqa: F401
import pytest
import torch

from avadet.cli import main
from avadet.engine.loading import load_model
from avadet.models.export import OnnxRuntimeModel, export_onnx
from tests.models.conftest import randomize_weights
from tests.models.test_deploy import ARCHITECTURES, _inputs

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"
TOLERANCE = 1e-4
# The published clip lengths: 32 Fast frames, whose Slow positions (linspace 0..31 over 8) an
# exported linspace op would get wrong at the last frame (30.99999 -> 30); Slow-only 4.
FRAMES = {"slowfast_32x2_r50": 32, "slowfast_32x2_r101_50_50": 32, "slow_8x8_r50": 4,
          "mmaction_style": 32}


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_onnx_runtime_reproduces_the_scores(name, tmp_path):
    torch.manual_seed(0)
    make, frames = ARCHITECTURES[name][0], FRAMES[name]
    model = randomize_weights(make(), seed=3).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # Traced at another size than it is run at: height, width, clips and boxes are dynamic.
    path = export_onnx(model, tmp_path / f"{name}.onnx", frames=frames, height=48, width=80)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    runtime = OnnxRuntimeModel(path, threads=1)
    clip, boxes = _inputs(frames)
    with torch.no_grad():
        expected = model(clip, boxes)
        one = model(clip[:1], boxes[:1])
    assert _max_diff(runtime(clip, boxes), expected) <= TOLERANCE
    assert _max_diff(runtime(clip, boxes[1:2]), expected[1:2]) <= TOLERANCE
    assert _max_diff(runtime(clip[:1], boxes[:1]), one) <= TOLERANCE


@pytest.mark.parametrize("checkpoint", ["pyslowfast_slowfast_32x2_r50_short_w8.pyth",
                                        "pyslowfast_slow_8x8_r50_c2_w8.pyth"])
def test_avadet_export_writes_a_file_onnx_runtime_runs(checkpoint, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(MODELS / checkpoint), "--out", str(out),
                 "--short-side", "48"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    loaded = load_model(MODELS / checkpoint)
    runtime = OnnxRuntimeModel(out, threads=1)
    meta = {k: json.loads(v) for k, v in runtime.metadata.items()}
    assert meta["class_ids"] == loaded.class_ids
    assert meta["num_frames"] == loaded.config.data.num_frames
    assert meta["mean"] == loaded.config.data.mean
    gen = torch.Generator().manual_seed(0)
    clip = torch.randn(1, 3, loaded.config.data.num_frames, 64, 96, generator=gen)
    boxes = torch.tensor([[0, 3.0, 5.0, 50.0, 60.0], [0, 20.0, 1.0, 95.0, 40.0],
                          [0, 0.0, 0.0, 95.0, 63.0]])
    with torch.no_grad():
        expected = loaded.model(clip, boxes)
    assert _max_diff(runtime(clip, boxes), expected) <= TOLERANCE


def test_export_refuses_a_file_that_is_no_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", "--checkpoint", str(bad), "--out", str(tmp_path / "m.onnx")]) != 0
    assert not (tmp_path / "m.onnx").exists()
