"""Shapes and options of the backbone parts (small widths and frames)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avadet.errors import ConfigError
from avadet.models import (
    ActionModel,
    AVAHead,
    FastOnly,
    Lateral,
    NonLocal,
    SlowFast,
    SlowOnly,
    build_model,
    slow_pathway_positions,
)
from avadet.models.resnet3d import expand_temporal_kernels


def _clips(t_slow=2, alpha=4, h=32, w=48, n=2):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(n, 3, t_slow, h, w, generator=gen), torch.randn(n, 3, alpha * t_slow, h, w, generator=gen)]


def test_temporal_kernels_cycle_like_pyslowfast():
    assert expand_temporal_kernels(3, 4) == [3, 3, 3, 3]
    assert expand_temporal_kernels([3, 1], 5) == [3, 1, 3, 1, 3]
    assert expand_temporal_kernels([3, 3, 1], 3) == [3, 3, 1]
    stage = SlowFast(width_per_group=8, slow_temporal_kernels=(1, 1, [3, 1], 3)).slow_res4
    assert [b.conv_a.kernel_size[0] for b in stage.blocks] == [3, 1, 3, 1, 3, 1]


@pytest.mark.parametrize(
    "res5_stride, res5_dilation, stride", [(1, 2, 16), (2, 1, 32)]
)
def test_feature_shapes(res5_stride, res5_dilation, stride):
    net = SlowFast(width_per_group=8, res5_stride=res5_stride, res5_dilation=res5_dilation).eval()
    slow, fast = net(_clips(h=64, w=96))
    assert net.feature_stride == stride
    assert slow.shape == (2, 256, 2, 64 // stride, 96 // stride)
    assert fast.shape == (2, 32, 8, 64 // stride, 96 // stride)  # Fast keeps all its frames
    assert net.out_channels == (256, 32)


@pytest.mark.parametrize("kind, channels", [("conv", 2), ("ttoc", 4), ("sample", 1)])
def test_lateral_kinds(kind, channels):
    fast = torch.arange(2 * 1 * 8 * 2 * 2, dtype=torch.float32).reshape(2, 1, 8, 2, 2)
    lat = Lateral(kind=kind, fast_channels=1, alpha=4, out_channels=2 if kind == "conv" else None).eval()
    y = lat(fast)
    assert y.shape == (2, channels, 2, 2, 2)
    if kind == "sample":
        assert torch.equal(y, fast[:, :, [0, 4]])
    if kind == "ttoc":  # channel j of slow step t is fast frame alpha * t + j
        assert torch.equal(y[:, 3, 1], fast[:, 0, 7])
        assert torch.equal(y[:, 0, 1], fast[:, 0, 4])


@pytest.mark.parametrize("lateral", ["conv", "ttoc", "sample"])
@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_all_lateral_and_fusion_combinations_run(lateral, fusion):
    net = SlowFast(width_per_group=8, lateral=lateral, fusion=fusion)
    model = ActionModel(net, AVAHead(in_channels=net.out_channels, num_classes=5)).eval()
    boxes = torch.tensor([[0.0, 1, 1, 30, 20], [1.0, 5, 5, 40, 30]])
    scores = model(_clips(), boxes)
    assert scores.shape == (2, 5) and ((scores > 0) & (scores < 1)).all()
    if fusion == "sum":  # summation keeps the Slow channel count
        assert net.slow_res2.blocks[0].conv_a.in_channels == 8


def test_lateral_needs_alpha_times_frames():
    net = SlowFast(width_per_group=8).eval()
    with pytest.raises(ValueError, match="alpha=4 times"):
        net([torch.zeros(1, 3, 4, 32, 32), torch.zeros(1, 3, 8, 32, 32)])


def test_nonlocal_shapes_and_residual():
    block = NonLocal(channels=16, pool=(2, 2, 2)).eval()
    torch.nn.init.zeros_(block.bn.weight)
    torch.nn.init.zeros_(block.bn.bias)
    x = torch.randn(1, 16, 4, 4, 6)
    assert torch.equal(block(x), x)  # zero final BN: identity, as at initialisation upstream
    torch.nn.init.ones_(block.bn.weight)
    assert block(x).shape == x.shape and not torch.equal(block(x), x)


def test_slow_only_and_kinetics_head():
    model = build_model(arch="slow", width_per_group=8, head="kinetics", num_classes=7, res5_dilation=1, head_activation="softmax")
    assert isinstance(model.backbone, SlowOnly)
    model.eval()
    scores = model([torch.randn(2, 3, 4, 64, 64)])
    assert scores.shape == (2, 7) and torch.allclose(scores.sum(1), torch.ones(2))
    model.train()
    out = model([torch.randn(2, 3, 4, 64, 64)], return_logits=True)
    assert torch.equal(out.scores, out.logits)  # softmax at eval only, as PySlowFast


def test_fast_only_is_slowfasts_fast_pathway_alone():
    # The paper's Table 5a "Fast-only": every frame, 1/beta of the channels, no laterals, the
    # same module names and shapes as SlowFast's Fast pathway (so its weights load into one).
    fast = build_model(arch="fast", width_per_group=8, beta_inv=4, num_classes=3).backbone
    assert isinstance(fast, FastOnly)
    slowfast = build_model(width_per_group=8, beta_inv=4, num_classes=3).backbone
    fast_part = {k: v.shape for k, v in slowfast.state_dict().items() if k.startswith("fast_")}
    assert {k: v.shape for k, v in fast.state_dict().items()} == fast_part
    assert fast.out_channels == (slowfast.out_channels[1],) == (64,)
    clip = torch.randn(1, 3, 8, 32, 48)
    (features,) = fast.eval()(clip)
    assert features.shape == (1, 64, 8, 2, 3)  # all 8 frames kept, stride 16
    assert torch.equal(fast.eval()([clip])[0], features)
    with pytest.raises(ValueError, match="FastOnly takes a clip"):
        fast([clip, clip])
    with pytest.raises(ConfigError, match="divisible"):
        build_model(arch="fast", width_per_group=8, beta_inv=3)


def test_ava_head_activation_in_train_and_eval_and_logits():
    model = build_model(width_per_group=8, num_classes=3, dropout=0.0)
    boxes = torch.tensor([[0.0, 0, 0, 47, 31], [1.0, 2, 3, 20, 30]])
    for train in (True, False):
        model.train(train)
        out = model(_clips(), boxes, return_logits=True)
        assert torch.allclose(out.scores, torch.sigmoid(out.logits))
    none = build_model(width_per_group=8, num_classes=3, head_activation="none").eval()
    out = none(_clips(), boxes, return_logits=True)
    assert torch.equal(out.scores, out.logits)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="unknown model setting"):
        build_model(alhpa=4)
    with pytest.raises(ConfigError, match="depth"):
        build_model(depth=34)
    with pytest.raises(ValueError, match="lateral"):
        SlowFast(lateral="magic")
    model = build_model(width_per_group=8).eval()
    with pytest.raises(ValueError, match="needs boxes"):
        model(_clips())
    with pytest.raises(ValueError, match="alpha"):  # fewer Fast frames than alpha
        model(torch.zeros(1, 3, 2, 32, 32), torch.zeros(1, 5))


def test_model_takes_the_fast_clip_alone_and_picks_the_slow_frames_itself():
    torch.manual_seed(0)
    model = build_model(width_per_group=8, num_classes=3, dropout=0.0).eval()
    fast = torch.randn(2, 3, 32, 32, 48)
    boxes = torch.tensor([[0.0, 0, 0, 47, 31], [1.0, 2, 3, 20, 30]])
    positions = slow_pathway_positions(32, 4)
    assert positions.tolist() == [0, 4, 8, 13, 17, 22, 26, 31]  # PySlowFast's linspace
    with torch.no_grad():
        listed = model([fast[:, :, positions], fast], boxes)
        alone = model(fast, boxes)
    assert torch.equal(alone, listed)
    slow_only = build_model(arch="slow", width_per_group=8, num_classes=3, dropout=0.0).eval()
    clip = torch.randn(1, 3, 4, 32, 48)
    with torch.no_grad():
        assert torch.equal(slow_only(clip, boxes[:1]), slow_only([clip], boxes[:1]))


@pytest.mark.parametrize(
    "n, alpha, expected",
    [
        (32, 4, [0, 4, 8, 13, 17, 22, 26, 31]),  # AVA SlowFast 32x2: not a uniform stride
        (16, 4, [0, 5, 10, 15]),
        (32, 8, [0, 10, 20, 31]),
        (8, 8, [0]),
    ],
)
def test_slow_pathway_positions(n, alpha, expected):
    np.testing.assert_array_equal(slow_pathway_positions(n, alpha), expected)


def test_slow_pathway_positions_at_a_stride():
    """MMAction2's nearest interpolation with scale 1 / alpha takes every alpha-th frame."""
    assert slow_pathway_positions(32, 8, "stride").tolist() == [0, 8, 16, 24]
    assert slow_pathway_positions(32, 4, "stride").tolist() == list(range(0, 32, 4))
    clip = torch.randn(1, 3, 32, 4, 4)
    picked = torch.nn.functional.interpolate(clip, mode="nearest", scale_factor=(1 / 8, 1, 1))
    assert torch.equal(picked, clip[:, :, slow_pathway_positions(32, 8, "stride")])
    with pytest.raises(ValueError, match="slow_frames"):
        slow_pathway_positions(32, 8, "random")


def test_lateral_without_norm_is_the_conv_alone():
    torch.manual_seed(0)
    lateral = Lateral(kind="conv", fast_channels=2, alpha=8, out_channels=4, temporal_kernel=5, norm=False)
    assert lateral.bn is None and sorted(lateral.state_dict()) == ["conv.weight"]
    x = torch.randn(1, 2, 32, 3, 3)
    assert torch.equal(lateral(x), lateral.conv(x))  # negative values kept: no ReLU
    model = build_model(width_per_group=8, lateral_norm=False, slow_frames="stride", res5_stride=1,
                        res5_dilation=1)
    assert not any(".bn." in k for k in model.state_dict() if "lateral" in k)
    assert model.backbone.feature_stride == 16 and model.backbone.slow_frames == "stride"


def test_slow_pathway_needs_a_frame():
    with pytest.raises(ValueError):
        slow_pathway_positions(2, 4)
