"""avadet loads pytorchvideo's SlowFast R50 models (detection and Kinetics) and computes the
same outputs. pytorchvideo is a test-only oracle."""

from __future__ import annotations

import pytorchvideo.models.hub as hub  # test extra: the oracle must be present, not skipped
import torch

from avadet.models import build_model, load_checkpoint


def _inputs() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(1, 3, 8, 64, 96, generator=gen), torch.randn(1, 3, 32, 64, 96, generator=gen)]


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def test_slowfast_r50_detection_parity(tmp_path, randomize):
    torch.manual_seed(0)
    reference = randomize(hub.slowfast_r50_detection(pretrained=False)).eval()
    torch.save(reference.state_dict(), tmp_path / "ptv.pt")
    model = build_model(arch="slowfast", depth=50, fusion_kernel_size=7, roi_aligned=False).eval()
    report = load_checkpoint(model, tmp_path / "ptv.pt")
    assert report.source == "pytorchvideo" and report.ok and len(report.loaded) > 600
    x = _inputs()
    boxes = torch.tensor([[0.0, 10.0, 5.0, 50.0, 60.0], [0.0, 30.5, 2.2, 70.1, 40.9], [0.0, 0.0, 0.0, 95.0, 63.0]])
    with torch.no_grad():
        expected = reference(list(x), boxes)  # pytorchvideo overwrites the list it is given
        out = model(x, boxes, return_logits=True)
    assert expected.shape == out.scores.shape == (3, 80)
    assert 0.05 < expected.std().item()  # not saturated: the comparison means something
    assert _rel_err(out.scores, expected) < 1e-5
    assert torch.allclose(torch.sigmoid(out.logits), out.scores)


def test_slowfast_r50_kinetics_parity(tmp_path, randomize):
    torch.manual_seed(0)
    # Global pooling at this input size: res5 is 2x3 (stride 32) for 64x96 frames.
    reference = hub.slowfast_r50(pretrained=False, head_pool_kernel_sizes=((8, 2, 3), (32, 2, 3)))
    reference = randomize(reference).eval()
    torch.save({"model_state": reference.state_dict()}, tmp_path / "ptv_k400.pyth")
    model = build_model(
        head="kinetics", num_classes=400, res5_dilation=1, fusion_kernel_size=7, head_activation="softmax"
    ).eval()
    report = load_checkpoint(model, tmp_path / "ptv_k400.pyth", source="pytorchvideo")
    assert report.ok
    x = _inputs()
    with torch.no_grad():
        expected = reference(list(x))  # logits
        out = model(x, return_logits=True)
    assert _rel_err(out.logits, expected) < 1e-5
    assert torch.allclose(out.scores, torch.softmax(expected, dim=1), atol=1e-6)
