"""3D ResNet parts shared by the Slow and Fast pathways.

Tensors are ``(N, C, T, H, W)``: batch, channels, frames, height, width. The blocks follow
PySlowFast's "bottleneck_transform" with ``stride_1x1=False``: the temporal kernel sits on
conv a, the spatial stride and dilation on conv b (Feichtenhofer et al., ICCV 2019, Table 1).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

# PySlowFast's batch-norm settings (BN.EPSILON, BN.MOMENTUM).
BN_EPS = 1e-5
BN_MOMENTUM = 0.1

# Bottleneck blocks per stage res2..res5.
STAGE_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}

TemporalKernels = Union[int, Sequence[int]]


def batch_norm(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def expand_temporal_kernels(kernels: TemporalKernels, num_blocks: int) -> list[int]:
    """Temporal kernel of conv a for each block of a stage.

    An int applies to every block. A list is cycled over the blocks (PySlowFast's
    ``[[3, 1]]`` style), so a list as long as the stage gives one kernel per block.
    """
    if isinstance(kernels, int):
        return [kernels] * num_blocks
    kernels = [int(k) for k in kernels]
    if not kernels:
        raise ValueError("a stage needs at least one temporal kernel")
    return [kernels[i % len(kernels)] for i in range(num_blocks)]


class Stem(nn.Module):
    """Conv ``kt x 7 x 7`` stride (1, 2, 2), BN, ReLU, max pool (1, 3, 3) stride (1, 2, 2).

    ``(N, 3, T, H, W)`` -> ``(N, out_channels, T, H/4, W/4)`` (rounded up).
    """

    def __init__(self, *, in_channels: int = 3, out_channels: int, temporal_kernel: int):
        super().__init__()
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            kernel_size=(temporal_kernel, 7, 7),
            stride=(1, 2, 2),
            padding=(temporal_kernel // 2, 3, 3),
            bias=False,
        )
        self.bn = batch_norm(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.bn(self.conv(x))))


class Bottleneck(nn.Module):
    """Residual bottleneck: conv a ``kt x 1 x 1``, conv b ``1 x 3 x 3``, conv c ``1 x 1 x 1``.

    ``(N, in_channels, T, H, W)`` -> ``(N, out_channels, T, H/stride, W/stride)``. The shortcut
    is a ``1 x 1 x 1`` conv + BN when the channels or the stride change, identity otherwise.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        inner_channels: int,
        out_channels: int,
        temporal_kernel: int = 1,
        spatial_stride: int = 1,
        dilation: int = 1,
    ):
        super().__init__()
        self.conv_a = nn.Conv3d(
            in_channels,
            inner_channels,
            kernel_size=(temporal_kernel, 1, 1),
            padding=(temporal_kernel // 2, 0, 0),
            bias=False,
        )
        self.bn_a = batch_norm(inner_channels)
        self.conv_b = nn.Conv3d(
            inner_channels,
            inner_channels,
            kernel_size=(1, 3, 3),
            stride=(1, spatial_stride, spatial_stride),
            padding=(0, dilation, dilation),
            dilation=(1, dilation, dilation),
            bias=False,
        )
        self.bn_b = batch_norm(inner_channels)
        self.conv_c = nn.Conv3d(inner_channels, out_channels, kernel_size=1, bias=False)
        self.bn_c = batch_norm(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: Optional[nn.Conv3d] = None
        self.shortcut_bn: Optional[nn.BatchNorm3d] = None
        if in_channels != out_channels or spatial_stride != 1:
            self.shortcut = nn.Conv3d(
                in_channels,
                out_channels,
                kernel_size=1,
                stride=(1, spatial_stride, spatial_stride),
                bias=False,
            )
            self.shortcut_bn = batch_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        if self.shortcut is not None:
            identity = self.shortcut_bn(self.shortcut(x))
        y = self.relu(self.bn_a(self.conv_a(x)))
        y = self.relu(self.bn_b(self.conv_b(y)))
        y = self.bn_c(self.conv_c(y))
        return self.relu(y + identity)


class NonLocal(nn.Module):
    """Non-local block (Wang et al., CVPR 2018) as PySlowFast builds it.

    theta, phi, g: ``1 x 1 x 1`` convs to ``channels // 2`` (with bias); phi and g see the input
    max-pooled by ``pool`` (kernel = stride). ``instantiation`` "dot_product" divides the
    affinities by the number of pooled positions, "softmax" scales by ``inner**-0.5`` and takes
    a softmax. Then conv out, BN and the residual sum. ``(N, C, T, H, W)`` -> same shape.
    """

    def __init__(
        self,
        *,
        channels: int,
        inner_channels: Optional[int] = None,
        pool: Sequence[int] = (2, 2, 2),
        instantiation: str = "dot_product",
    ):
        super().__init__()
        if instantiation not in ("dot_product", "softmax"):
            raise ValueError(f"unknown non-local instantiation {instantiation!r}")
        inner = inner_channels or channels // 2
        self.inner_channels = inner
        self.instantiation = instantiation
        self.conv_theta = nn.Conv3d(channels, inner, kernel_size=1)
        self.conv_phi = nn.Conv3d(channels, inner, kernel_size=1)
        self.conv_g = nn.Conv3d(channels, inner, kernel_size=1)
        self.conv_out = nn.Conv3d(inner, channels, kernel_size=1)
        self.bn = batch_norm(channels)
        pool = tuple(int(p) for p in pool)
        self.pool = nn.MaxPool3d(kernel_size=pool, stride=pool) if any(p > 1 for p in pool) else None

    def extra_repr(self) -> str:
        return f"instantiation={self.instantiation!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = x.shape
        theta = self.conv_theta(x).flatten(2)  # (N, C', THW)
        pooled = self.pool(x) if self.pool is not None else x
        phi = self.conv_phi(pooled).flatten(2)  # (N, C', P)
        g = self.conv_g(pooled).flatten(2)  # (N, C', P)
        affinity = torch.einsum("nct,ncp->ntp", theta, phi)
        if self.instantiation == "softmax":
            affinity = torch.softmax(affinity * self.inner_channels**-0.5, dim=2)
        else:
            affinity = affinity / affinity.shape[2]
        y = torch.einsum("ntp,ncp->nct", affinity, g).reshape(n, self.inner_channels, t, h, w)
        return x + self.bn(self.conv_out(y))


class ResStage(nn.Module):
    """A stage of bottleneck blocks; the first carries the stride and the channel change.

    ``nonlocal_after`` lists block indices followed by a :class:`NonLocal` block.
    ``(N, in_channels, T, H, W)`` -> ``(N, out_channels, T, H/stride, W/stride)``.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        inner_channels: int,
        out_channels: int,
        num_blocks: int,
        temporal_kernels: TemporalKernels,
        spatial_stride: int = 1,
        dilation: int = 1,
        nonlocal_after: Sequence[int] = (),
        nonlocal_pool: Sequence[int] = (2, 2, 2),
        nonlocal_instantiation: str = "dot_product",
    ):
        super().__init__()
        self.out_channels = out_channels
        kernels = expand_temporal_kernels(temporal_kernels, num_blocks)
        self.blocks = nn.ModuleList(
            Bottleneck(
                in_channels=in_channels if i == 0 else out_channels,
                inner_channels=inner_channels,
                out_channels=out_channels,
                temporal_kernel=kernels[i],
                spatial_stride=spatial_stride if i == 0 else 1,
                dilation=dilation,
            )
            for i in range(num_blocks)
        )
        bad = [i for i in nonlocal_after if not 0 <= i < num_blocks]
        if bad:
            raise ValueError(f"non-local positions {bad} outside a stage of {num_blocks} blocks")
        self.nonlocal_blocks = nn.ModuleDict(
            {
                str(i): NonLocal(
                    channels=out_channels, pool=nonlocal_pool, instantiation=nonlocal_instantiation
                )
                for i in sorted(set(nonlocal_after))
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x)
            key = str(i)
            if key in self.nonlocal_blocks:
                x = self.nonlocal_blocks[key](x)
        return x
