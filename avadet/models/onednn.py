"""oneDNN convolutions called directly, with their ReLU and residual add fused (CPU, fp32).

Two things cost the deployment form time on a CPU at batch 1 (docs/benchmarks.md, "Models at
full size"):

- PyTorch sends a convolution to its slow reference kernel (``slow_conv3d``) instead of
  oneDNN when batch x channels x frames x height is at most 20480 and the kernel is at most
  3 wide: every ``1 x 3 x 3`` conv of SlowFast's Fast pathway (8-32 channels, 32 frames) and
  of Slow R50's res2 (4 frames) at batch 1. There it ran 5-17x slower than oneDNN, and
  converted its input out of channels-last and back.
- A bottleneck's residual ``relu(conv_c(y) + identity)`` and every ``relu(conv(x))`` pass over
  the activations once more per add and per ReLU.

:func:`fuse_for_onednn` replaces each (BN-folded) ``Conv3d`` with :class:`OneDnnConv3d`, which
calls ``torch.ops.mkldnn._convolution_pointwise`` (the kernels ``torch.compile`` emits on a
CPU) with the ReLU fused, and a bottleneck's last conv with the residual add and ReLU fused
(the ``.binary`` form). On any other device or dtype, or under autocast, each module runs the
plain ``F.conv3d`` and ReLU instead, so a fused model stays correct wherever it is moved.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from avadet.models.resnet3d import Bottleneck, Stem
from avadet.models.slowfast import Lateral


def onednn_available() -> bool:
    """Whether this torch has oneDNN and its fused convolution ops (torch >= 2.0 on x86/ARM)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        return hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_cpu_enabled()


class OneDnnConv3d(nn.Module):
    """``relu?(conv(x))``, or ``relu?(conv(x) + residual)``, with oneDNN's fused kernels.

    Built from a ``Conv3d`` with zero padding (its weights are shared, not copied).
    """

    def __init__(self, conv: nn.Conv3d, *, relu: bool):
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("OneDnnConv3d needs a Conv3d with explicit zero padding")
        self.weight = conv.weight
        self.bias = conv.bias
        self.relu = relu
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1] * self.groups}, {self.weight.shape[0]}, "
                f"kernel_size={tuple(self.weight.shape[2:])}, stride={tuple(self.stride)}, "
                f"relu={self.relu}")

    def _fused(self, x: torch.Tensor) -> bool:
        return (x.device.type == "cpu" and x.dtype == torch.float32
                and self.weight.dtype == torch.float32 and not _cpu_autocast())

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not self._fused(x):
            y = F.conv3d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                         self.groups)
            if residual is not None:
                y = y + residual
            return torch.relu_(y) if self.relu else y
        conv = torch.ops.mkldnn._convolution_pointwise
        if residual is None:
            return conv(x, self.weight, self.bias, self.padding, self.stride, self.dilation,
                        self.groups, "relu" if self.relu else "none", [], "")
        return conv.binary(x, residual, self.weight, self.bias, self.padding, self.stride,
                           self.dilation, self.groups, "add", 1.0,
                           "relu" if self.relu else None, [], "")


class FusedStem(nn.Module):
    """:class:`~avadet.models.resnet3d.Stem` with its BN folded: conv + ReLU fused, max pool."""

    def __init__(self, stem: Stem):
        super().__init__()
        self.conv = OneDnnConv3d(stem.conv, relu=True)
        self.pool = stem.pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x))


class FusedBottleneck(nn.Module):
    """:class:`~avadet.models.resnet3d.Bottleneck` with its BNs folded: conv a and b with
    their ReLU fused, conv c with the residual add and the ReLU fused."""

    def __init__(self, block: Bottleneck):
        super().__init__()
        self.conv_a = OneDnnConv3d(block.conv_a, relu=True)
        self.conv_b = OneDnnConv3d(block.conv_b, relu=True)
        self.conv_c = OneDnnConv3d(block.conv_c, relu=True)
        self.shortcut = (OneDnnConv3d(block.shortcut, relu=False)
                         if block.shortcut is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.shortcut(x) if self.shortcut is not None else x
        return self.conv_c(self.conv_b(self.conv_a(x)), identity)


def _folded(*batch_norms: Optional[nn.Module]) -> bool:
    return all(bn is None or isinstance(bn, nn.Identity) for bn in batch_norms)


def fuse_for_onednn(model: nn.Module) -> int:
    """Replace, in place, the folded stems and bottlenecks of ``model`` with their fused forms,
    a convolutional lateral's conv with conv + ReLU, and every other ``Conv3d`` with an unfused
    :class:`OneDnnConv3d`. Blocks whose BatchNorm is not folded (batch statistics at test time)
    are left as they are. Returns the number of convolutions now run by oneDNN directly."""
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
                child.conv = OneDnnConv3d(child.conv, relu=True)
                child.bn, child.relu = nn.Identity(), nn.Identity()
                fused += 1
                visit(child)
            elif type(child) is nn.Conv3d and child.padding_mode == "zeros" and not isinstance(
                    child.padding, str):
                setattr(parent, name, OneDnnConv3d(child, relu=False))
                fused += 1
            else:
                visit(child)

    visit(model)
    return fused
