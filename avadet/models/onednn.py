"""SlowFast's blocks with oneDNN-fused convolutions: the deployment form's last step on a
CPU in fp32 (:func:`fuse_for_onednn`; why, and the fused convolution itself, in
:mod:`avadet.fusion`).

A bottleneck's conv a and b run with their ReLU fused, its conv c with the residual add and
the ReLU fused; a stem's conv with its ReLU; a convolutional lateral's conv with its ReLU;
every other convolution (shortcuts, non-local blocks, projections) through oneDNN unfused.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from avadet.fusion import OneDnnConv, replace_plain_convs
from avadet.models.resnet3d import Bottleneck, Stem
from avadet.models.slowfast import Lateral


class FusedStem(nn.Module):
    """:class:`~avadet.models.resnet3d.Stem` with its BN folded: conv + ReLU fused, max pool."""

    def __init__(self, stem: Stem):
        super().__init__()
        self.conv = OneDnnConv(stem.conv, activation="relu")
        self.pool = stem.pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x))


class FusedBottleneck(nn.Module):
    """:class:`~avadet.models.resnet3d.Bottleneck` with its BNs folded: conv a and b with
    their ReLU fused, conv c with the residual add and the ReLU fused."""

    def __init__(self, block: Bottleneck):
        super().__init__()
        self.conv_a = OneDnnConv(block.conv_a, activation="relu")
        self.conv_b = OneDnnConv(block.conv_b, activation="relu")
        self.conv_c = OneDnnConv(block.conv_c, activation="relu")
        self.shortcut = OneDnnConv(block.shortcut) if block.shortcut is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.shortcut(x) if self.shortcut is not None else x
        return self.conv_c(self.conv_b(self.conv_a(x)), identity)


def _folded(*batch_norms: Optional[nn.Module]) -> bool:
    return all(bn is None or isinstance(bn, nn.Identity) for bn in batch_norms)


def fuse_for_onednn(model: nn.Module) -> int:
    """Replace, in place, the folded stems and bottlenecks of ``model`` with their fused forms,
    a convolutional lateral's conv with conv + ReLU, and every other ``Conv3d`` with an unfused
    :class:`~avadet.fusion.OneDnnConv`. Blocks whose BatchNorm is not folded (batch statistics
    at test time) keep their structure: nothing is fused across a BN that still runs. Returns
    the number of convolutions now run by oneDNN directly."""
    fused = 0

    def visit(parent: nn.Module) -> None:
        nonlocal fused
        for name, child in parent.named_children():
            if isinstance(child, Stem) and _folded(child.bn):
                setattr(parent, name, FusedStem(child))
                fused += 1
            elif isinstance(child, Bottleneck) and _folded(
                    child.bn_a, child.bn_b, child.bn_c, child.shortcut_bn):
                setattr(parent, name, FusedBottleneck(child))
                fused += 3 + (child.shortcut is not None)
            elif (isinstance(child, Lateral) and child.kind == "conv" and child.bn is not None
                    and _folded(child.bn)):
                # relu(bn(conv(x))) with the BN folded; a lateral without BN has no ReLU.
                child.conv = OneDnnConv(child.conv, activation="relu")
                child.bn, child.relu = nn.Identity(), nn.Identity()
                fused += 1
                visit(child)
            else:
                visit(child)

    visit(model)
    return fused + replace_plain_convs(model)
