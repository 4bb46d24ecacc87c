"""The deployment form's fused oneDNN convolutions: on by default on a CPU in fp32, every
convolution replaced, scores equal to the eval-mode model's at batch 1 (where PyTorch would
pick its slow reference kernel for the thin convolutions), and a plain fallback elsewhere."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from avadet.errors import ConfigError
from avadet.fusion import OneDnnConv, fold_batch_norm, onednn_available
from avadet.models import PUBLISHED_MODELS
from avadet.models.deploy import prepare_for_inference
from avadet.models.heads import _mean_over_time
from avadet.models.onednn import FusedBottleneck, fuse_for_onednn
from avadet.models.resnet3d import Bottleneck
from tests.models.conftest import randomize_weights
from tests.models.test_deploy import ARCHITECTURES

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="torch built without oneDNN")


@needs_onednn
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_batch_one_scores_match_and_every_conv_is_fused(name):
    make, frames = ARCHITECTURES[name]
    torch.manual_seed(0)
    model = randomize_weights(make(), seed=5).eval()
    gen = torch.Generator().manual_seed(2)
    # Batch 1 at 16 channels or fewer: the shapes PyTorch sends to slow_conv3d.
    clip = torch.randn(1, 3, frames, 64, 96, generator=gen)
    boxes = torch.tensor([[0, 4.0, 6.0, 60.0, 50.0], [0, 30.5, 20.25, 70.0, 40.0]])
    with torch.no_grad():
        expected = model(clip, boxes, return_logits=True)
    deployed = prepare_for_inference(model)
    assert deployed.onednn
    got = deployed(clip, boxes, return_logits=True)
    assert (got.scores - expected.scores).abs().max().item() <= 1e-4
    scale = expected.features.abs().max().item()
    assert (got.features - expected.features).abs().max().item() <= 1e-4 * scale
    modules = list(deployed.model.modules())
    assert not any(type(m) is nn.Conv3d for m in modules)
    assert not any(isinstance(m, Bottleneck) for m in modules)
    assert any(isinstance(m, FusedBottleneck) for m in modules)


def test_default_is_off_where_it_does_not_apply(monkeypatch):
    model = PUBLISHED_MODELS["slow_8x8_r50"](width_per_group=8)
    for kwargs in ({"channels_last": False}, {"fold_bn": False}, {"onednn": False}):
        deployed = prepare_for_inference(model, **kwargs)
        assert not deployed.onednn
        assert any(type(m) is nn.Conv3d for m in deployed.modules())
    monkeypatch.setattr("avadet.models.deploy.onednn_available", lambda: False)
    assert not prepare_for_inference(model).onednn
    with pytest.raises(ConfigError, match="oneDNN"):
        prepare_for_inference(model, onednn=True)


def _conv(cin: int, cout: int, kernel, **kwargs) -> nn.Conv3d:
    torch.manual_seed(1)
    conv = nn.Conv3d(cin, cout, kernel, **kwargs)
    return conv.eval()


@needs_onednn
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_conv_equals_conv_add_relu(dtype):
    conv = _conv(8, 16, (3, 3, 3), stride=(1, 2, 2), padding=(1, 2, 2), dilation=(1, 2, 2))
    conv = conv.to(dtype=dtype, memory_format=torch.channels_last_3d)
    x = torch.randn(1, 8, 5, 20, 22, dtype=dtype).contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode():
        plain = conv(x)
        residual = torch.randn_like(plain)
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        assert (OneDnnConv(conv)(x) - plain).abs().max() <= tol
        assert (OneDnnConv(conv, activation="relu")(x) - plain.relu()).abs().max() <= tol
        fused = OneDnnConv(conv, activation="relu")(x, residual)
        assert (fused - (plain + residual).relu()).abs().max() <= tol
        assert (OneDnnConv(conv)(x, residual) - (plain + residual)).abs().max() <= tol


@needs_onednn
def test_fused_conv_under_bf16_autocast_falls_back():
    conv = _conv(4, 4, 1)
    x = torch.randn(1, 4, 2, 6, 6)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = OneDnnConv(conv, activation="relu")(x)
        expected = F.relu(conv(x))
    assert got.dtype == expected.dtype == torch.bfloat16
    assert torch.equal(got, expected)


def test_blocks_with_unfolded_batch_norm_are_left_alone():
    block = Bottleneck(in_channels=8, inner_channels=4, out_channels=16)
    stage = nn.Sequential(block)
    fuse_for_onednn(stage)
    assert stage[0] is block  # its BNs still run: nothing may be fused across them


def test_fused_bottleneck_equals_the_folded_block():
    torch.manual_seed(3)
    block = randomize_weights(
        Bottleneck(in_channels=8, inner_channels=4, out_channels=16, spatial_stride=2), seed=4
    ).eval()
    x = torch.randn(1, 8, 3, 10, 12)
    with torch.no_grad():
        expected = block(x)
    for conv, bn in (("conv_a", "bn_a"), ("conv_b", "bn_b"), ("conv_c", "bn_c"),
                     ("shortcut", "shortcut_bn")):
        setattr(block, conv, fold_batch_norm(getattr(block, conv), getattr(block, bn)))
        setattr(block, bn, nn.Identity())
    with torch.inference_mode():
        got = FusedBottleneck(block)(x)
    assert (got - expected).abs().max().item() <= 1e-5


def test_mean_over_time_is_exact_on_channels_last():
    x = torch.randn(2, 6, 5, 7, 9)
    channels_last = x.contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(_mean_over_time(x), x.mean(dim=2))
    assert torch.allclose(_mean_over_time(channels_last), x.mean(dim=2), atol=1e-6, rtol=0)


@needs_onednn
def test_two_d_conv_with_hardswish_and_frozen_batch_norm():
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.manual_seed(2)
    conv = nn.Conv2d(6, 12, 3, stride=2, padding=1, groups=3, bias=False).eval()
    bn = FrozenBatchNorm2d(12)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.0)
        bn.bias.uniform_(-0.1, 0.1)
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 6, 17, 19)
    with torch.inference_mode():
        expected = F.hardswish(bn(conv(x)))
        fused = OneDnnConv(fold_batch_norm(conv, bn), activation="hardswish")
        assert (fused(x) - expected).abs().max().item() <= 1e-5


def test_without_the_kernels_every_call_takes_the_plain_path(monkeypatch):
    monkeypatch.setattr("avadet.fusion.onednn_available", lambda: False)
    conv = _conv(4, 6, 3, padding=1)
    x = torch.randn(1, 4, 3, 8, 8)
    with torch.inference_mode():
        fused = OneDnnConv(conv, activation="relu")
        assert not fused._fused(x)
        assert torch.equal(fused(x), F.relu(conv(x)))


def test_bad_wrapping_is_refused():
    with pytest.raises(TypeError, match="Conv2d or Conv3d"):
        OneDnnConv(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="zero padding"):
        OneDnnConv(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"))
    with pytest.raises(ValueError, match="activation"):
        OneDnnConv(nn.Conv2d(2, 2, 1), activation="gelu")
