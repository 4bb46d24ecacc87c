"""Full-size costs on the meta device: the paper's GFLOPs and the AVA model's size."""

from __future__ import annotations

import torch

from avadet.models import build_model, count_conv_flops, pathway_shares


def _meta_model(**kwargs):
    with torch.device("meta"):
        return build_model(**kwargs)


def _kinetics(alpha: int, lateral_kernel: int):
    return _meta_model(
        head="kinetics",
        num_classes=400,
        res5_dilation=1,
        alpha=alpha,
        fusion_kernel_size=lateral_kernel,
        head_activation="softmax",
    )


def _clip(t_slow: int, alpha: int, size: int = 256) -> list[torch.Tensor]:
    return [torch.empty(1, 3, t_slow, size, size), torch.empty(1, 3, alpha * t_slow, size, size)]


def test_kinetics_4x16_r50_gflops():
    # PySlowFast SLOWFAST_4x16_R50: alpha 8, lateral kernel 5; paper Table 2: 36.1 GFLOPs.
    count = count_conv_flops(_kinetics(alpha=8, lateral_kernel=5), _clip(4, 8))
    assert abs(count.conv_total / 1e9 - 36.1) / 36.1 < 0.01
    shares = pathway_shares(count)
    assert 0.15 < shares["fast"] < 0.25  # the paper's "~20%"
    assert abs(sum(shares.values()) - 1) < 1e-12


def test_kinetics_8x8_r50_gflops():
    count = count_conv_flops(_kinetics(alpha=4, lateral_kernel=7), _clip(8, 4))
    assert abs(count.conv_total / 1e9 - 65.7) / 65.7 < 0.01


def test_ava_slowfast_r50_gflops_and_params():
    model = _meta_model(fusion_kernel_size=7, num_classes=80)
    boxes = torch.tensor([[0.0, 10.0, 10.0, 100.0, 200.0], [0.0, 50.0, 20.0, 250.0, 255.0]])
    count = count_conv_flops(model, _clip(8, 4), boxes)
    assert abs(count.conv_total / 1e9 - 96.9) < 0.05
    assert count.linear_total == 2 * 2304 * 80  # one projection per box
    assert sum(p.numel() for p in model.parameters()) == 33_828_888


def test_counts_follow_shapes_and_leave_model_untouched():
    model = build_model(width_per_group=8)  # a real (CPU) model is copied to meta
    first = next(model.parameters()).clone()
    small = count_conv_flops(model, _clip(8, 4, size=64), torch.tensor([[0.0, 0, 0, 63, 63]]))
    large = count_conv_flops(model, _clip(8, 4, size=128), torch.tensor([[0.0, 0, 0, 127, 127]]))
    assert next(model.parameters()).device.type == "cpu"
    assert torch.equal(next(model.parameters()), first)
    assert large.conv_total == 4 * small.conv_total  # conv cost scales with H * W
    stem = model.backbone.slow_stem.conv  # 8 out channels, 3x1x7x7 kernel, 8 frames x 32 x 32
    assert small.conv["backbone.slow_stem.conv"] == 8 * 32 * 32 * 8 * 3 * 49 and stem.stride == (1, 2, 2)


def test_clip_cost_of_the_cpu_models_and_the_fast_pathway_alone():
    # The demo's models (width 8, 16 frames at 96 px): the Fast pathway is under a quarter of
    # SlowFast's cost, and Fast-only costs what the Fast pathway costs inside SlowFast.
    from avadet.config import ModelConfig
    from avadet.models.flops import clip_cost

    narrow = dict(width_per_group=8, num_classes=8)
    slowfast = clip_cost(ModelConfig(**narrow), 16, 96)
    slow = clip_cost(ModelConfig(arch="slow", **narrow), 4, 96)
    fast = clip_cost(ModelConfig(arch="fast", **narrow), 16, 96)
    assert 0.2 < slowfast["fast_share"] < 0.25 and "fast_share" not in slow
    fast_part = slowfast["fast_share"] * slowfast["gflops"]
    assert abs(fast["gflops"] - fast_part) < 0.01 * fast_part + 1e-4  # plus its own head only
    assert slowfast["gflops"] > slow["gflops"] > fast["gflops"] > 0
