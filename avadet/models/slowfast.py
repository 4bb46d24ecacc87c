"""SlowFast, Slow-only and Fast-only backbones (Feichtenhofer et al., "SlowFast Networks for Video
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
# How the Slow frames are taken from the Fast clip: PySlowFast's / pytorchvideo's linspace, or
# MMAction2's even stride (nearest interpolation with scale 1 / alpha: frames 0, alpha, ...).
SLOW_FRAMES = ("linspace", "stride")
FUSIONS = ("concat", "sum")
# Where the laterals sit, in forward order (also the names of the lateral modules).
LATERAL_POINTS = ("pool1", "res2", "res3", "res4")
# Temporal kernel of each pathway's stem conv (PySlowFast's _TEMPORAL_KERNEL_BASIS, first row):
# the Slow stem sees single frames, the Fast one 5.
SLOW_STEM_KERNEL = 1
FAST_STEM_KERNEL = 5
# A clip at the Fast pathway's rate, or one clip per pathway.
Clips = Union[torch.Tensor, Sequence[torch.Tensor]]


def slow_pathway_positions(num_frames: int, alpha: int, rule: str = "linspace") -> torch.Tensor:
    """Positions, among the ``num_frames`` Fast frames, of the Slow pathway's frames.

    ``"linspace"``: ``torch.linspace(0, num_frames - 1, num_frames // alpha).long()`` exactly
    as PySlowFast and pytorchvideo compute them (float32 linspace, truncation): for 32 frames
    and alpha 4, ``[0, 4, 8, 13, 17, 22, 26, 31]`` (not a uniform stride). ``"stride"``:
    ``[0, alpha, 2 * alpha, ...]``, what MMAction2's nearest interpolation with scale
    ``1 / alpha`` picks (32 frames, alpha 8: ``[0, 8, 16, 24]``). Pretrained weights expect
    their library's rule.

    Returns:
        ``(num_frames // alpha,)`` int64.
    """
    if alpha < 1 or num_frames // alpha < 1:
        raise ValueError(f"num_frames ({num_frames}) // alpha ({alpha}) must be >= 1")
    if rule == "stride":
        return torch.arange(num_frames // alpha, dtype=torch.int64) * alpha
    if rule != "linspace":
        raise ValueError(f"slow_frames must be one of {SLOW_FRAMES}, got {rule!r}")
    return torch.linspace(0, num_frames - 1, num_frames // alpha).long()


def _check_depth(depth: int) -> tuple[int, ...]:
    if depth not in STAGE_DEPTHS:
        raise ValueError(f"depth must be one of {sorted(STAGE_DEPTHS)}, got {depth}")
    return STAGE_DEPTHS[depth]


def _four(value: Sequence, name: str) -> list:
    value = list(value)
    if len(value) != 4:
        raise ValueError(f"{name} needs one entry per stage res2..res5, got {value!r}")
    return value


class _StageLayout:
    """What every pathway of one backbone shares: blocks per stage, the full-width channels,
    the spatial strides and dilations (res5's for detection or Kinetics) and the non-local
    settings. :meth:`stage` builds one pathway's stage from it."""

    def __init__(
        self,
        *,
        depth: int,
        width_per_group: int,
        res5_stride: int,
        res5_dilation: int,
        nonlocal_pool: Sequence[int],
        nonlocal_instantiation: str,
    ):
        self.blocks = _check_depth(depth)
        self.width_per_group = width_per_group
        self.strides = (1, 2, 2, res5_stride)
        self.dilations = (1, 1, 1, res5_dilation)
        self.nonlocal_pool = nonlocal_pool
        self.nonlocal_instantiation = nonlocal_instantiation
        # The stem divides by 4, res3 and res4 by 2 each, res5 by its stride.
        self.feature_stride = 16 * res5_stride

    def stage(
        self,
        k: int,
        *,
        in_channels: int,
        temporal_kernels: TemporalKernels,
        nonlocal_after: Sequence[int],
        channel_divisor: int = 1,
    ) -> ResStage:
        """Stage res{k + 2} (k = 0..3) of a pathway with the full width's channels divided by
        ``channel_divisor`` (``beta_inv`` for the Fast pathway): inner ``w * 2**k``, out
        ``4 * w * 2**k`` for ``w = width_per_group``."""
        inner = self.width_per_group * 2**k
        return ResStage(
            in_channels=in_channels,
            inner_channels=inner // channel_divisor,
            out_channels=4 * inner // channel_divisor,
            num_blocks=self.blocks[k],
            temporal_kernels=temporal_kernels,
            spatial_stride=self.strides[k],
            dilation=self.dilations[k],
            nonlocal_after=nonlocal_after,
            nonlocal_pool=self.nonlocal_pool,
            nonlocal_instantiation=self.nonlocal_instantiation,
        )


class Lateral(nn.Module):
    """Fast -> Slow connection (paper Sec. 3.4). ``(N, C_fast, alpha*T, H, W)`` ->
    ``(N, out_channels, T, H, W)``.

    - ``"conv"``: time-strided convolution ``kt x 1 x 1``, stride (alpha, 1, 1), no bias, BN,
      ReLU; ``out_channels`` outputs (``fusion_conv_channel_ratio * C_fast`` for concatenation).
      ``norm=False``: the convolution alone (MMAction2's laterals, ``lateral_norm=False``).
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
        norm: bool = True,
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
            self.bn: Optional[nn.BatchNorm3d] = batch_norm(out_channels) if norm else None
            self.relu = nn.ReLU(inplace=True)
        self.projection: Optional[nn.Conv3d] = None
        if natural is not None and out_channels is not None and out_channels != natural:
            self.projection = nn.Conv3d(natural, out_channels, kernel_size=1, bias=False)
        self.out_channels = out_channels if out_channels is not None else natural

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, alpha={self.alpha}"

    def forward(self, fast: torch.Tensor) -> torch.Tensor:
        if self.kind == "conv":
            y = self.conv(fast)
            return y if self.bn is None else self.relu(self.bn(y))
        if self.kind == "sample":
            y = fast[:, :, :: self.alpha]
        else:
            n, c, t, h, w = fast.shape
            if t % self.alpha:
                raise ValueError(f"time-to-channel needs T_fast ({t}) divisible by alpha")
            y = fast.reshape(n, c, t // self.alpha, self.alpha, h, w).transpose(2, 3)
            y = y.reshape(n, c * self.alpha, t // self.alpha, h, w)
        return self.projection(y) if self.projection is not None else y


def _fusion_lateral(
    *,
    kind: str,
    fusion: str,
    alpha: int,
    fast_channels: int,
    slow_channels: int,
    conv_channel_ratio: int,
    temporal_kernel: int,
    norm: bool,
) -> Lateral:
    """The lateral that feeds ``fast_channels`` Fast features into a Slow pathway of
    ``slow_channels``: summation needs the Slow channel count; concatenation takes the
    convolution's ``conv_channel_ratio * fast_channels`` or the natural count of the
    parameter-free laterals."""
    if fusion == "sum":
        out: Optional[int] = slow_channels
    else:
        out = conv_channel_ratio * fast_channels if kind == "conv" else None
    return Lateral(
        kind=kind,
        fast_channels=fast_channels,
        alpha=alpha,
        out_channels=out,
        temporal_kernel=temporal_kernel,
        norm=norm,
    )


class SlowFast(nn.Module):
    """Two-pathway 3D ResNet. A clip ``(N, 3, alpha*T, H, W)`` at the Fast rate (or
    ``[slow (N, 3, T, H, W), fast (N, 3, alpha*T, H, W)]``) ->
    ``[slow (N, 32*w, T, H/s, W/s), fast (N, 32*w/beta_inv, alpha*T, H/s, W/s)]`` with ``w`` =
    ``width_per_group`` and ``s`` = :attr:`feature_stride`.

    Temporal kernels are per stage res2..res5: an int, or a list cycled over the blocks of the
    stage (a list as long as the stage gives one kernel per block). ``res5_stride=1,
    res5_dilation=2`` is the detection setting (stride 16), ``res5_stride=2, res5_dilation=1``
    the Kinetics one (stride 32). ``slow_nonlocal[k]`` lists the blocks of stage k followed by
    a non-local block. ``slow_frames`` picks the Slow frames of a single clip
    (:func:`slow_pathway_positions`); ``lateral_norm=False`` drops the laterals' BN and ReLU
    (MMAction2). The defaults are :class:`~avadet.config.ModelConfig`'s.
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
        lateral_norm: bool = True,
        fusion: str = "concat",
        slow_frames: str = "linspace",
        slow_stem_kernel: int = SLOW_STEM_KERNEL,
        fast_stem_kernel: int = FAST_STEM_KERNEL,
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
        if slow_frames not in SLOW_FRAMES:
            raise ValueError(f"slow_frames must be one of {SLOW_FRAMES}, got {slow_frames!r}")
        layout = _StageLayout(
            depth=depth,
            width_per_group=width_per_group,
            res5_stride=res5_stride,
            res5_dilation=res5_dilation,
            nonlocal_pool=nonlocal_pool,
            nonlocal_instantiation=nonlocal_instantiation,
        )
        slow_kernels = _four(slow_temporal_kernels, "slow_temporal_kernels")
        fast_kernels = _four(fast_temporal_kernels, "fast_temporal_kernels")
        slow_nl = _four(slow_nonlocal, "slow_nonlocal")
        fast_nl = _four(fast_nonlocal, "fast_nonlocal")
        self.alpha = alpha
        self.beta_inv = beta_inv
        self.fusion = fusion
        self.slow_frames = slow_frames
        self.feature_stride = layout.feature_stride
        slow_in, fast_in = width_per_group, width_per_group // beta_inv
        self.slow_stem = Stem(out_channels=slow_in, temporal_kernel=slow_stem_kernel)
        self.fast_stem = Stem(out_channels=fast_in, temporal_kernel=fast_stem_kernel)
        # Registration order (lateral, slow stage, fast stage) fixes the order in which the
        # weights draw from the RNG: keep it, so seeded models stay the same.
        for k, point in enumerate(LATERAL_POINTS):
            lat = _fusion_lateral(
                kind=lateral,
                fusion=fusion,
                alpha=alpha,
                fast_channels=fast_in,
                slow_channels=slow_in,
                conv_channel_ratio=fusion_conv_channel_ratio,
                temporal_kernel=lateral_kernel,
                norm=lateral_norm,
            )
            self.add_module(f"lateral_{point}", lat)
            fused_in = slow_in if fusion == "sum" else slow_in + lat.out_channels
            slow = layout.stage(k, in_channels=fused_in, temporal_kernels=slow_kernels[k], nonlocal_after=slow_nl[k])
            fast = layout.stage(
                k,
                in_channels=fast_in,
                temporal_kernels=fast_kernels[k],
                nonlocal_after=fast_nl[k],
                channel_divisor=beta_inv,
            )
            self.add_module(f"slow_res{k + 2}", slow)
            self.add_module(f"fast_res{k + 2}", fast)
            slow_in, fast_in = slow.out_channels, fast.out_channels
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
        positions = slow_pathway_positions(int(clip.shape[2]), self.alpha, self.slow_frames)
        # A constant in a traced graph (ONNX export), not the linspace op: ONNX Runtime's
        # start + i * step rounds 31 down to 30.99999 and the cast then takes frame 30.
        positions = torch.tensor(positions.tolist(), dtype=torch.int64, device=clip.device)
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


class _SinglePathway(nn.Module):
    """One pathway alone, no laterals: a stem and res2..res5 named ``{prefix}_stem``,
    ``{prefix}_res2`` ... (the names the same pathway has inside :class:`SlowFast`), with the
    full width's channels divided by ``channel_divisor``."""

    prefix = ""

    def __init__(
        self,
        *,
        depth: int,
        width_per_group: int,
        channel_divisor: int,
        stem_kernel: int,
        temporal_kernels: Sequence[TemporalKernels],
        res5_stride: int,
        res5_dilation: int,
        nonlocal_blocks: Sequence[Sequence[int]],
        nonlocal_pool: Sequence[int],
        nonlocal_instantiation: str,
    ):
        super().__init__()
        if width_per_group % channel_divisor:
            raise ValueError("width_per_group must be divisible by beta_inv")
        layout = _StageLayout(
            depth=depth,
            width_per_group=width_per_group,
            res5_stride=res5_stride,
            res5_dilation=res5_dilation,
            nonlocal_pool=nonlocal_pool,
            nonlocal_instantiation=nonlocal_instantiation,
        )
        kernels = _four(temporal_kernels, "temporal_kernels")
        nl = _four(nonlocal_blocks, "nonlocal_blocks")
        self.feature_stride = layout.feature_stride
        channels = width_per_group // channel_divisor
        self.add_module(f"{self.prefix}_stem", Stem(out_channels=channels, temporal_kernel=stem_kernel))
        for k in range(4):
            stage = layout.stage(
                k,
                in_channels=channels,
                temporal_kernels=kernels[k],
                nonlocal_after=nl[k],
                channel_divisor=channel_divisor,
            )
            self.add_module(f"{self.prefix}_res{k + 2}", stage)
            channels = stage.out_channels
        self.out_channels = (channels,)

    def pathways(self, clip: torch.Tensor) -> list[torch.Tensor]:
        """``[clip]``: the one pathway sees every frame it is given."""
        return [clip]

    def forward(self, inputs: Clips) -> list[torch.Tensor]:
        if isinstance(inputs, torch.Tensor):
            inputs = self.pathways(inputs)
        if len(inputs) != 1:
            raise ValueError(
                f"{type(self).__name__} takes a clip or a one-element list [clip], got {len(inputs)}"
            )
        x = getattr(self, f"{self.prefix}_stem")(inputs[0])
        for k in range(2, 6):
            x = getattr(self, f"{self.prefix}_res{k}")(x)
        return [x]


class SlowOnly(_SinglePathway):
    """The Slow pathway alone, no laterals. A clip ``(N, 3, T, H, W)`` (or ``[clip]``) ->
    ``[(N, 32*w, T, H/s, W/s)]``; arguments and defaults as in :class:`SlowFast`."""

    prefix = "slow"

    def __init__(
        self,
        *,
        depth: int = 50,
        width_per_group: int = 64,
        stem_kernel: int = SLOW_STEM_KERNEL,
        temporal_kernels: Sequence[TemporalKernels] = (1, 1, 3, 3),
        res5_stride: int = 1,
        res5_dilation: int = 2,
        nonlocal_blocks: Sequence[Sequence[int]] = ((), (), (), ()),
        nonlocal_pool: Sequence[int] = (2, 2, 2),
        nonlocal_instantiation: str = "dot_product",
    ):
        super().__init__(
            depth=depth,
            width_per_group=width_per_group,
            channel_divisor=1,
            stem_kernel=stem_kernel,
            temporal_kernels=temporal_kernels,
            res5_stride=res5_stride,
            res5_dilation=res5_dilation,
            nonlocal_blocks=nonlocal_blocks,
            nonlocal_pool=nonlocal_pool,
            nonlocal_instantiation=nonlocal_instantiation,
        )


class FastOnly(_SinglePathway):
    """The Fast pathway alone, no laterals (the paper's Table 5a "Fast-only"): every frame of
    a clip ``(N, 3, T, H, W)`` (or ``[clip]``), ``1 / beta_inv`` of the channels, the Fast
    stem's temporal kernel -> ``[(N, 32*w/beta_inv, T, H/s, W/s)]``. Its modules are named as
    SlowFast's Fast pathway (``fast_stem``, ``fast_res2`` ...)."""

    prefix = "fast"

    def __init__(
        self,
        *,
        depth: int = 50,
        width_per_group: int = 64,
        beta_inv: int = 8,
        stem_kernel: int = FAST_STEM_KERNEL,
        temporal_kernels: Sequence[TemporalKernels] = (3, 3, 3, 3),
        res5_stride: int = 1,
        res5_dilation: int = 2,
        nonlocal_blocks: Sequence[Sequence[int]] = ((), (), (), ()),
        nonlocal_pool: Sequence[int] = (2, 2, 2),
        nonlocal_instantiation: str = "dot_product",
    ):
        super().__init__(
            depth=depth,
            width_per_group=width_per_group,
            channel_divisor=beta_inv,
            stem_kernel=stem_kernel,
            temporal_kernels=temporal_kernels,
            res5_stride=res5_stride,
            res5_dilation=res5_dilation,
            nonlocal_blocks=nonlocal_blocks,
            nonlocal_pool=nonlocal_pool,
            nonlocal_instantiation=nonlocal_instantiation,
        )
