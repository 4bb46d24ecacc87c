"""SlowFast and Slow-only backbones (Feichtenhofer et al., "SlowFast Networks for Video
Recognition", ICCV 2019).

Input: the clip ``(N, 3, T, H, W)`` float32, normalised (``(x / 255 - 0.45) / 0.225``), at
the Fast pathway's frame rate; SlowFast takes the Slow pathway's ``T / alpha`` frames from it
itself (:func:`slow_pathway_positions`), so data code never needs to know the pathway layout.
A list of clips, one per pathway (``[slow, fast]`` or ``[slow]``), is accepted too, as
PySlowFast and pytorchvideo pass them. Output: the res5 features of each pathway, ``(N, C, T, H/s, W/s)``
with ``s`` = :attr:`feature_stride` (16 with the dilated res5 used for detection, 32 with
Kinetics' strided res5). The Fast pathway keeps its temporal resolution; laterals carry Fast
features to the Slow pathway after pool1, res2, res3 and res4 (paper Sec. 3.4).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from avadet.models.resnet3d import STAGE_DEPTHS, ResStage, Stem, TemporalKernels, batch_norm

LATERALS = ("conv", "ttoc", "sample")
FUSIONS = ("concat", "sum")
# Where the laterals sit, in forward order (also the names of the lateral modules).
LATERAL_POINTS = ("pool1", "res2", "res3", "res4")
# A clip at the Fast pathway's rate, or one clip per pathway.
Clips = Union[torch.Tensor, Sequence[torch.Tensor]]


def slow_pathway_positions(num_frames: int, alpha: int) -> torch.Tensor:
    """Positions, among the ``num_frames`` Fast frames, of the Slow pathway's frames.

    ``torch.linspace(0, num_frames - 1, num_frames // alpha).long()`` exactly as PySlowFast and
    pytorchvideo compute them (float32 linspace, truncation): for 32 frames and alpha 4,
    ``[0, 4, 8, 13, 17, 22, 26, 31]`` (not a uniform stride). Pretrained weights expect these.

    Returns:
        ``(num_frames // alpha,)`` int64.
    """
    if alpha < 1 or num_frames // alpha < 1:
        raise ValueError(f"num_frames ({num_frames}) // alpha ({alpha}) must be >= 1")
    return torch.linspace(0, num_frames - 1, num_frames // alpha).long()


def _stage_channels(width_per_group: int, stage: int) -> tuple[int, int]:
    """(inner, out) channels of stage ``stage`` (0 = res2) of the full-width pathway."""
    inner = width_per_group * 2**stage
    return inner, 4 * inner


def _check_depth(depth: int) -> tuple[int, ...]:
    if depth not in STAGE_DEPTHS:
        raise ValueError(f"depth must be one of {sorted(STAGE_DEPTHS)}, got {depth}")
    return STAGE_DEPTHS[depth]


def _four(value: Sequence, name: str) -> list:
    value = list(value)
    if len(value) != 4:
        raise ValueError(f"{name} needs one entry per stage res2..res5, got {value!r}")
    return value


class Lateral(nn.Module):
    """Fast -> Slow connection (paper Sec. 3.4). ``(N, C_fast, alpha*T, H, W)`` ->
    ``(N, out_channels, T, H, W)``.

    - ``"conv"``: time-strided convolution ``kt x 1 x 1``, stride (alpha, 1, 1), no bias, BN,
      ReLU; ``out_channels`` outputs (``fusion_conv_channel_ratio * C_fast`` for concatenation).
    - ``"ttoc"``: time-to-channel, the alpha frames of each Slow step stacked on the channels
      (``alpha * C_fast`` outputs).
    - ``"sample"``: time-strided sampling, every alpha-th frame (``C_fast`` outputs).

    For ``"ttoc"`` and ``"sample"``, an ``out_channels`` different from their natural count adds
    a ``1 x 1 x 1`` projection (needed by summation fusion, which must match the Slow channels).
    """

    def __init__(
        self,
        *,
        kind: str,
        fast_channels: int,
        alpha: int,
        out_channels: Optional[int] = None,
        temporal_kernel: int = 7,
    ):
        super().__init__()
        if kind not in LATERALS:
            raise ValueError(f"lateral must be one of {LATERALS}, got {kind!r}")
        self.kind = kind
        self.alpha = alpha
        natural = {"conv": None, "ttoc": alpha * fast_channels, "sample": fast_channels}[kind]
        if kind == "conv":
            if out_channels is None:
                raise ValueError("a convolutional lateral needs out_channels")
            self.conv = nn.Conv3d(
                fast_channels,
                out_channels,
                kernel_size=(temporal_kernel, 1, 1),
                stride=(alpha, 1, 1),
                padding=(temporal_kernel // 2, 0, 0),
                bias=False,
            )
            self.bn = batch_norm(out_channels)
            self.relu = nn.ReLU(inplace=True)
        self.projection: Optional[nn.Conv3d] = None
        if natural is not None and out_channels is not None and out_channels != natural:
            self.projection = nn.Conv3d(natural, out_channels, kernel_size=1, bias=False)
        self.out_channels = out_channels if out_channels is not None else natural

    def forward(self, fast: torch.Tensor) -> torch.Tensor:
        if self.kind == "conv":
            return self.relu(self.bn(self.conv(fast)))
        if self.kind == "sample":
            y = fast[:, :, :: self.alpha]
        else:
            n, c, t, h, w = fast.shape
            if t % self.alpha:
                raise ValueError(f"time-to-channel needs T_fast ({t}) divisible by alpha")
            y = fast.reshape(n, c, t // self.alpha, self.alpha, h, w).transpose(2, 3)
            y = y.reshape(n, c * self.alpha, t // self.alpha, h, w)
        return self.projection(y) if self.projection is not None else y


class SlowFast(nn.Module):
    """Two-pathway 3D ResNet. ``[slow (N,3,T,H,W), fast (N,3,alpha*T,H,W)]`` ->
    ``[slow (N, 32*w, T, H/s, W/s), fast (N, 32*w/beta_inv, alpha*T, H/s, W/s)]`` with ``w`` =
    ``width_per_group`` and ``s`` = :attr:`feature_stride`.

    Temporal kernels are per stage res2..res5: an int, or a list cycled over the blocks of the
    stage (a list as long as the stage gives one kernel per block). ``res5_stride=1,
    res5_dilation=2`` is the detection setting (stride 16), ``res5_stride=2, res5_dilation=1``
    the Kinetics one (stride 32). ``slow_nonlocal[k]`` lists the blocks of stage k followed by
    a non-local block.
    """

    def __init__(
        self,
        *,
        depth: int = 50,
        width_per_group: int = 64,
        alpha: int = 4,
        beta_inv: int = 8,
        fusion_conv_channel_ratio: int = 2,
        lateral: str = "conv",
        lateral_kernel: int = 7,
        fusion: str = "concat",
        slow_stem_kernel: int = 1,
        fast_stem_kernel: int = 5,
        slow_temporal_kernels: Sequence[TemporalKernels] = (1, 1, 3, 3),
        fast_temporal_kernels: Sequence[TemporalKernels] = (3, 3, 3, 3),
        res5_stride: int = 1,
        res5_dilation: int = 2,
        slow_nonlocal: Sequence[Sequence[int]] = ((), (), (), ()),
        fast_nonlocal: Sequence[Sequence[int]] = ((), (), (), ()),
        nonlocal_pool: Sequence[int] = (2, 2, 2),
        nonlocal_instantiation: str = "dot_product",
    ):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if width_per_group % beta_inv:
            raise ValueError("width_per_group must be divisible by beta_inv")
        blocks = _check_depth(depth)
        slow_kernels = _four(slow_temporal_kernels, "slow_temporal_kernels")
        fast_kernels = _four(fast_temporal_kernels, "fast_temporal_kernels")
        slow_nl = _four(slow_nonlocal, "slow_nonlocal")
        fast_nl = _four(fast_nonlocal, "fast_nonlocal")
        self.alpha = alpha
        self.beta_inv = beta_inv
        self.fusion = fusion
        self.feature_stride = 8 * res5_stride * 2

        def make_lateral(fast_channels: int, slow_channels: int) -> Lateral:
            if fusion == "sum":
                out = slow_channels
            else:
                out = fusion_conv_channel_ratio * fast_channels if lateral == "conv" else None
            return Lateral(
                kind=lateral,
                fast_channels=fast_channels,
                alpha=alpha,
                out_channels=out,
                temporal_kernel=lateral_kernel,
            )

        slow_in = width_per_group
        fast_in = width_per_group // beta_inv
        self.slow_stem = Stem(out_channels=slow_in, temporal_kernel=slow_stem_kernel)
        self.fast_stem = Stem(out_channels=fast_in, temporal_kernel=fast_stem_kernel)
        self.lateral_pool1 = make_lateral(fast_in, slow_in)
        strides = (1, 2, 2, res5_stride)
        dilations = (1, 1, 1, res5_dilation)
        for k in range(4):
            inner, out = _stage_channels(width_per_group, k)
            lat = getattr(self, f"lateral_{LATERAL_POINTS[k]}")
            fused_in = slow_in if fusion == "sum" else slow_in + lat.out_channels
            common = dict(
                num_blocks=blocks[k],
                spatial_stride=strides[k],
                dilation=dilations[k],
                nonlocal_pool=nonlocal_pool,
                nonlocal_instantiation=nonlocal_instantiation,
            )
            self.add_module(
                f"slow_res{k + 2}",
                ResStage(
                    in_channels=fused_in,
                    inner_channels=inner,
                    out_channels=out,
                    temporal_kernels=slow_kernels[k],
                    nonlocal_after=slow_nl[k],
                    **common,
                ),
            )
            self.add_module(
                f"fast_res{k + 2}",
                ResStage(
                    in_channels=fast_in,
                    inner_channels=inner // beta_inv,
                    out_channels=out // beta_inv,
                    temporal_kernels=fast_kernels[k],
                    nonlocal_after=fast_nl[k],
                    **common,
                ),
            )
            slow_in, fast_in = out, out // beta_inv
            if k < 3:
                self.add_module(f"lateral_{LATERAL_POINTS[k + 1]}", make_lateral(fast_in, slow_in))
        self.out_channels = (slow_in, fast_in)

    def _fuse(self, slow: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        if lateral.shape[2] != slow.shape[2]:
            raise ValueError(
                f"lateral gives {lateral.shape[2]} frames, the Slow pathway has {slow.shape[2]}: "
                f"the Fast clip must have alpha={self.alpha} times the Slow frames"
            )
        if self.fusion == "sum":
            return slow + lateral
        return torch.cat([slow, lateral], dim=1)

    def pathways(self, clip: torch.Tensor) -> list[torch.Tensor]:
        """``[slow (N, 3, T/alpha, H, W), fast (N, 3, T, H, W)]`` of a Fast-rate clip
        ``(N, 3, T, H, W)``: the Slow frames at :func:`slow_pathway_positions`."""
        positions = slow_pathway_positions(clip.shape[2], self.alpha).to(clip.device)
        return [clip.index_select(2, positions), clip]

    def forward(self, inputs: Clips) -> list[torch.Tensor]:
        if isinstance(inputs, torch.Tensor):
            inputs = self.pathways(inputs)
        if len(inputs) != 2:
            raise ValueError(f"SlowFast takes a clip or [slow, fast] clips, got {len(inputs)} tensors")
        slow = self.slow_stem(inputs[0])
        fast = self.fast_stem(inputs[1])
        slow = self._fuse(slow, self.lateral_pool1(fast))
        for k in range(2, 6):
            slow = getattr(self, f"slow_res{k}")(slow)
            fast = getattr(self, f"fast_res{k}")(fast)
            if k < 5:
                slow = self._fuse(slow, getattr(self, f"lateral_res{k}")(fast))
        return [slow, fast]


class SlowOnly(nn.Module):
    """The Slow pathway alone, no laterals. ``[clip (N, 3, T, H, W)]`` ->
    ``[(N, 32*w, T, H/s, W/s)]``; arguments as in :class:`SlowFast`."""

    def __init__(
        self,
        *,
        depth: int = 50,
        width_per_group: int = 64,
        stem_kernel: int = 1,
        temporal_kernels: Sequence[TemporalKernels] = (1, 1, 3, 3),
        res5_stride: int = 1,
        res5_dilation: int = 2,
        nonlocal_blocks: Sequence[Sequence[int]] = ((), (), (), ()),
        nonlocal_pool: Sequence[int] = (1, 2, 2),
        nonlocal_instantiation: str = "dot_product",
    ):
        super().__init__()
        blocks = _check_depth(depth)
        kernels = _four(temporal_kernels, "temporal_kernels")
        nl = _four(nonlocal_blocks, "nonlocal_blocks")
        self.feature_stride = 8 * res5_stride * 2
        self.slow_stem = Stem(out_channels=width_per_group, temporal_kernel=stem_kernel)
        channels = width_per_group
        strides = (1, 2, 2, res5_stride)
        dilations = (1, 1, 1, res5_dilation)
        for k in range(4):
            inner, out = _stage_channels(width_per_group, k)
            self.add_module(
                f"slow_res{k + 2}",
                ResStage(
                    in_channels=channels,
                    inner_channels=inner,
                    out_channels=out,
                    num_blocks=blocks[k],
                    temporal_kernels=kernels[k],
                    spatial_stride=strides[k],
                    dilation=dilations[k],
                    nonlocal_after=nl[k],
                    nonlocal_pool=nonlocal_pool,
                    nonlocal_instantiation=nonlocal_instantiation,
                ),
            )
            channels = out
        self.out_channels = (channels,)

    def pathways(self, clip: torch.Tensor) -> list[torch.Tensor]:
        """``[clip]``: the one pathway sees every frame it is given."""
        return [clip]

    def forward(self, inputs: Clips) -> list[torch.Tensor]:
        if isinstance(inputs, torch.Tensor):
            inputs = self.pathways(inputs)
        if len(inputs) != 1:
            raise ValueError(f"SlowOnly takes a clip or a one-element list [clip], got {len(inputs)}")
        x = self.slow_stem(inputs[0])
        for k in range(2, 6):
            x = getattr(self, f"slow_res{k}")(x)
        return [x]
