"""How a model's weights start when it is trained from scratch.

``"pyslowfast"`` (the default) is the initialisation PySlowFast gives every SlowFast and Slow
model it trains (``slowfast/utils/weight_init_helper.py``, called by its model builders):

- every 3D convolution: He normal with the fan-out (Caffe2's ``MSRAFill``), bias 0;
- every BatchNorm: weight 1, bias 0, except the last BN of each residual bottleneck and of
  each non-local block, whose weight starts at 0 when ``zero_init_final_bn`` (PySlowFast's
  ``RESNET.ZERO_INIT_FINAL_BN``, True in its AVA configs): each block then starts as the
  identity and the network as a shallow one;
- the classifier: normal with std ``fc_init_std`` (``MODEL.FC_INIT_STD``, 0.01), bias 0.

``"torch"`` leaves PyTorch's layer defaults (Kaiming-uniform with ``a = sqrt(5)``: weights
about 2.4x smaller than He normal, every BN weight 1). It is what avadet did before and is
kept to reproduce those runs: on the synthetic benchmark it left the thin Fast pathway unable
to learn fast motion in most seeds (docs/synthetic_benchmark.md).

Loaded checkpoints overwrite all of this; it only matters for training from scratch and for the
layers a checkpoint does not cover (a new head).
"""

from __future__ import annotations

from torch import nn

from avadet.models.resnet3d import Bottleneck, NonLocal

INITS = ("pyslowfast", "torch")


def init_weights(model: nn.Module, *, fc_init_std: float = 0.01, zero_init_final_bn: bool = True) -> None:
    """PySlowFast's ResNet initialisation of ``model``, in place (see the module docstring).

    The modules are visited in registration order, so a seeded model draws the same weights
    every time."""
    final_bns = set()
    if zero_init_final_bn:
        for m in model.modules():
            if isinstance(m, Bottleneck):
                final_bns.add(id(m.bn_c))
            elif isinstance(m, NonLocal):
                final_bns.add(id(m.bn))
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.weight is not None:
                nn.init.constant_(m.weight, 0.0 if id(m) in final_bns else 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=fc_init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
