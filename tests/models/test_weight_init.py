"""Training from scratch starts from PySlowFast's initialisation (weight_init_helper.py):
He-normal fan-out convs (fvcore's c2_msra_fill), the final BN of every bottleneck and non-local
block at 0, BN biases 0, the classifier normal with std 0.01."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avadet.errors import ConfigError
from avadet.models import build_model
from avadet.models.resnet3d import Bottleneck, NonLocal

fvcore_init = pytest.importorskip("fvcore.nn.weight_init")


def _pyslowfast_init(model: nn.Module, fc_init_std: float, zero_init_final_bn: bool) -> None:
    """PySlowFast's init_weights loop, with its ``transform_final_bn`` marks placed where its
    models put them (BottleneckTransform's c BN, Nonlocal's BN)."""
    for m in model.modules():
        if isinstance(m, Bottleneck):
            m.bn_c.transform_final_bn = True
        elif isinstance(m, NonLocal):
            m.bn.transform_final_bn = True
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            fvcore_init.c2_msra_fill(m)
        elif isinstance(m, nn.BatchNorm3d):
            final = getattr(m, "transform_final_bn", False) and zero_init_final_bn
            m.weight.data.fill_(0.0 if final else 1.0)
            m.bias.data.zero_()
        if isinstance(m, nn.Linear):
            m.weight.data.normal_(mean=0.0, std=fc_init_std)
            m.bias.data.zero_()


@pytest.mark.parametrize("arch", ["slowfast", "slow", "fast"])
def test_initialisation_is_pyslowfasts_draw_for_draw(arch):
    settings = dict(arch=arch, width_per_group=8, num_classes=5, nonlocal_blocks=[[], [0], [], []])
    torch.manual_seed(3)
    ours = build_model(**settings)
    torch.manual_seed(3)
    theirs = build_model(**settings, init="torch")
    _pyslowfast_init(theirs, fc_init_std=0.01, zero_init_final_bn=True)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), name
    # What that means, checked directly on a few layers:
    stem = getattr(ours.backbone, f"{'fast' if arch == 'fast' else 'slow'}_stem").conv.weight
    fan_out = stem.shape[0] * stem[0, 0].numel()
    assert stem.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.1)
    finals = [m.bn_c.weight for m in ours.modules() if isinstance(m, Bottleneck)]
    assert finals and all(torch.count_nonzero(w) == 0 for w in finals)
    if arch != "fast":
        nonlocal_bns = [m.bn.weight for m in ours.modules() if isinstance(m, NonLocal)]
        assert nonlocal_bns and all(torch.count_nonzero(w) == 0 for w in nonlocal_bns)
    assert ours.head.projection.weight.std().item() == pytest.approx(0.01, rel=0.3)
    assert torch.count_nonzero(ours.head.projection.bias) == 0


def test_settings_and_the_old_torch_defaults():
    torch.manual_seed(0)
    keep = build_model(width_per_group=8, num_classes=3, zero_init_final_bn=False, fc_init_std=0.05)
    assert all(torch.all(m.bn_c.weight == 1) for m in keep.modules() if isinstance(m, Bottleneck))
    assert keep.head.projection.weight.std().item() == pytest.approx(0.05, rel=0.3)
    torch.manual_seed(0)
    old = build_model(width_per_group=8, num_classes=3, init="torch")
    conv = old.backbone.slow_stem.conv.weight  # PyTorch's Kaiming-uniform, a = sqrt(5)
    assert conv.abs().max().item() <= conv[0].numel() ** -0.5
    with pytest.raises(ConfigError, match="model.init"):
        build_model(width_per_group=8, init="xavier")
