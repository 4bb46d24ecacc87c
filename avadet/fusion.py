"""Inference-only rewrites of convolution layers for a CPU, for any torch model: BatchNorm
folded into the convolution before it, and convolutions run by oneDNN with their activation
and a residual add fused.

Why oneDNN is called directly rather than through ``F.conv2d`` / ``F.conv3d``:

- PyTorch sends a convolution to its slow reference kernel instead of oneDNN when batch x
  channels x the next one or two sizes is at most 20480 and the kernel is at most 3 wide:
  at batch 1 that is every ``1 x 3 x 3`` conv of SlowFast's Fast pathway (8-32 channels, 32
  frames) and of Slow R50's res2 (4 frames), 5-17x slower than oneDNN and with layout
  conversions around it (docs/benchmarks.md, "Models at full size");
- a residual ``relu(conv(y) + identity)`` and each ``relu(conv(x))`` pass over the
  activations once more per add and per ReLU when they are separate ops.

:class:`OneDnnConv` calls ``torch.ops.mkldnn._convolution_pointwise`` (the kernels
``torch.compile`` emits on a CPU) with the activation fused, and its ``.binary`` form for the
residual add. On any other device or dtype, or under autocast, it runs the plain convolution
and activation instead, so a rewritten model stays correct wherever it is moved. Which
layers of a model to rewrite is the model's business: ``avadet.models.onednn`` (SlowFast's
blocks) and ``avadet.persons`` (torchvision's detectors) do it for theirs.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

# Activations oneDNN fuses into a convolution, by the name its ops take.
ACTIVATIONS = ("none", "relu", "hardswish")
_PLAIN_ACTIVATION = {"none": lambda y: y, "relu": torch.relu_, "hardswish": F.hardswish}

Conv = Union[nn.Conv2d, nn.Conv3d]


def onednn_available() -> bool:
    """Whether this torch has oneDNN and its fused convolution ops (torch >= 2.0 on x86/ARM)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        return hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


def is_batch_norm(module: Optional[nn.Module]) -> bool:
    """A BatchNorm (2d/3d, in eval mode with running statistics) or torchvision's frozen one:
    anything with ``weight``, ``bias``, ``running_mean``, ``running_var`` and ``eps``."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.track_running_stats and module.running_var is not None
    return type(module).__name__ == "FrozenBatchNorm2d" and all(
        hasattr(module, a) for a in ("weight", "bias", "running_mean", "running_var", "eps"))


def fold_batch_norm(conv: Conv, bn: nn.Module) -> Conv:
    """A convolution (the same class as ``conv``) equal to ``bn(conv(x))`` with ``bn`` in eval
    mode (its running statistics). Computed in float64, so the folded weights are the exact
    product rounded once."""
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    folded = type(conv)(
        conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
        padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
        padding_mode=conv.padding_mode, device=conv.weight.device, dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        shape = (-1,) + (1,) * (conv.weight.ndim - 1)
        folded.weight.copy_((conv.weight.double() * scale.reshape(shape)).to(conv.weight.dtype))
        folded.bias.copy_((bn.bias.double() + (bias - bn.running_mean.double()) * scale)
                          .to(conv.weight.dtype))
    return folded


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_cpu_enabled()


class OneDnnConv(nn.Module):
    """``act(conv(x))``, or ``act(conv(x) + residual)``, with oneDNN's fused kernels.

    Built from a ``Conv2d`` or ``Conv3d`` with explicit zero padding (its parameters are
    shared, not copied); ``activation``: one of :data:`ACTIVATIONS`.
    """

    def __init__(self, conv: Conv, *, activation: str = "none"):
        super().__init__()
        if not isinstance(conv, (nn.Conv2d, nn.Conv3d)):
            raise TypeError(f"OneDnnConv wraps a Conv2d or Conv3d, not {type(conv).__name__}")
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("OneDnnConv needs a convolution with explicit zero padding")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.weight = conv.weight
        self.bias = conv.bias
        self.activation = activation
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self._plain = F.conv3d if isinstance(conv, nn.Conv3d) else F.conv2d
        self._kernels = onednn_available()  # else every call takes the plain path

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1] * self.groups}, {self.weight.shape[0]}, "
                f"kernel_size={tuple(self.weight.shape[2:])}, stride={tuple(self.stride)}, "
                f"activation={self.activation}")

    def _fused(self, x: torch.Tensor) -> bool:
        return (self._kernels and x.device.type == "cpu" and x.dtype == torch.float32
                and self.weight.dtype == torch.float32 and not _cpu_autocast())

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not self._fused(x):
            y = self._plain(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                            self.groups)
            if residual is not None:
                y = y + residual
            return _PLAIN_ACTIVATION[self.activation](y)
        conv = torch.ops.mkldnn._convolution_pointwise
        if residual is None:
            return conv(x, self.weight, self.bias, self.padding, self.stride, self.dilation,
                        self.groups, self.activation, [], "")
        return conv.binary(x, residual, self.weight, self.bias, self.padding, self.stride,
                           self.dilation, self.groups, "add", 1.0,
                           None if self.activation == "none" else self.activation, [], "")


def replace_plain_convs(model: nn.Module) -> int:
    """Replace, in place, every remaining ``Conv2d`` / ``Conv3d`` with zero padding (exactly
    those classes, not subclasses) by an unfused :class:`OneDnnConv`. Returns how many."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if (type(child) in (nn.Conv2d, nn.Conv3d) and child.padding_mode == "zeros"
                    and not isinstance(child.padding, str)):
                setattr(parent, name, OneDnnConv(child))
                replaced += 1
    return replaced
