"""The person detectors' CPU rewrite (BNs folded, oneDNN-fused convolutions): on by default for
the models avadet builds, features and boxes equal to the unfused model's, a model handed in
left alone."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from avadet.errors import AvadetError
from avadet.fusion import OneDnnConv, onednn_available
from avadet.persons.torchvision_backend import (
    DETECTOR_MODELS,
    TorchvisionPersonDetector,
    build_faster_rcnn,
    fuse_for_onednn,
)

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="torch built without oneDNN")


def _random_norms(model: nn.Module, frozen: bool) -> nn.Module:
    """Non-trivial BN statistics; ``frozen``: torchvision's FrozenBatchNorm2d, what the COCO
    weights come with."""
    gen = torch.Generator().manual_seed(0)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                bn = FrozenBatchNorm2d(child.num_features) if frozen else child
                c = child.num_features
                with torch.no_grad():
                    bn.weight.copy_(torch.rand(c, generator=gen) * 0.5 + 0.5)
                    bn.bias.copy_(torch.rand(c, generator=gen) * 0.2 - 0.1)
                    bn.running_mean.copy_(torch.rand(c, generator=gen) * 0.2 - 0.1)
                    bn.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                setattr(parent, name, bn)
    return model.eval()


@needs_onednn
@pytest.mark.parametrize("arch, frozen", [("r50_fpn", True), ("r50_fpn", False),
                                          ("mobilenet_v3_fpn", False)])
def test_fused_detector_features_and_boxes_match(arch, frozen):
    torch.manual_seed(0)
    model = _random_norms(build_faster_rcnn(weights=None, arch=arch, min_size=96, max_size=128),
                          frozen)
    model.roi_heads.score_thresh = 0.0
    fused = copy.deepcopy(model)
    count = fuse_for_onednn(fused)
    fused = fused.to(memory_format=torch.channels_last)
    modules = list(fused.modules())
    assert count > 0 and not any(type(m) in (nn.Conv2d, nn.BatchNorm2d, FrozenBatchNorm2d)
                                 for m in modules)
    images = [torch.rand(3, 72, 96, generator=torch.Generator().manual_seed(1))]
    with torch.inference_mode():
        batch, _ = model.transform(images)
        expected = model.backbone(batch.tensors)
        got = fused.backbone(batch.tensors)
        for level in expected:
            scale = expected[level].abs().max().item()
            assert (got[level] - expected[level]).abs().max().item() <= 1e-4 * scale, level
        want, have = model(images)[0], fused(images)[0]
    # The boxes of the 10 best detections, in the same order (random weights: well apart).
    assert torch.allclose(have["scores"][:10], want["scores"][:10], atol=1e-4)
    assert torch.allclose(have["boxes"][:10], want["boxes"][:10], atol=1e-2)


@needs_onednn
def test_on_by_default_for_own_models_only():
    det = TorchvisionPersonDetector(weights=None, arch="mobilenet_v3_320", min_size=64)
    assert det.onednn and any(isinstance(m, OneDnnConv) for m in det.model.modules())
    frames = [np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)]
    assert len(det.detect(frames)) == 1
    assert not TorchvisionPersonDetector(weights=None, arch="mobilenet_v3_320",
                                         onednn=False).onednn
    given = build_faster_rcnn(weights=None, arch="mobilenet_v3_320")
    det = TorchvisionPersonDetector(model=given)
    assert not det.onednn and not any(isinstance(m, OneDnnConv) for m in det.model.modules())
    assert set(DETECTOR_MODELS) >= {"r50_fpn", "mobilenet_v3_fpn", "mobilenet_v3_320"}


def test_asking_for_onednn_without_the_kernels_is_refused(monkeypatch):
    monkeypatch.setattr("avadet.persons.torchvision_backend.onednn_available", lambda: False)
    with pytest.raises(AvadetError, match="oneDNN"):
        TorchvisionPersonDetector(weights=None, arch="mobilenet_v3_320", onednn=True)
    assert not TorchvisionPersonDetector(weights=None, arch="mobilenet_v3_320").onednn
