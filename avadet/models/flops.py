"""Multiply-add counts of convolutions and linear layers, measured with forward hooks.

The model runs on PyTorch's ``meta`` device: shapes propagate, no arithmetic happens, so
counting a full-size SlowFast at 256x256 takes well under a second on a CPU. The counts are
multiply-adds (one per weight per output element, biases excluded), the unit of the paper's
"GFLOPs" (Feichtenhofer et al. 2019, Table 2: SlowFast 4x16 R50 36.1, 8x8 R50 65.7).
Matrix products outside convolutions (non-local affinities) are not counted.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
from torch import nn


@dataclass
class FlopCount:
    """Multiply-adds per module (qualified name -> count)."""

    conv: dict[str, int] = field(default_factory=dict)
    linear: dict[str, int] = field(default_factory=dict)

    @property
    def conv_total(self) -> int:
        return sum(self.conv.values())

    @property
    def linear_total(self) -> int:
        return sum(self.linear.values())

    @property
    def total(self) -> int:
        return self.conv_total + self.linear_total

    def by_prefix(self, prefix: str) -> int:
        """Count of the convolutions and linear layers whose name starts with ``prefix``."""
        return sum(v for k, v in {**self.conv, **self.linear}.items() if k.startswith(prefix))


def _to_meta(x: torch.Tensor) -> torch.Tensor:
    return torch.empty(x.shape, dtype=x.dtype, device="meta")


def count_conv_flops(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    boxes: Optional[torch.Tensor] = None,
) -> FlopCount:
    """Count the multiply-adds of one forward pass of ``model(inputs, boxes)``.

    ``inputs``: ``[slow, fast]`` clips ``(N, 3, T, H, W)`` (any device; only shapes matter);
    ``boxes``: ``(K, 5)`` for the AVA head. A model not already on the meta device is copied
    there first, so the caller's model is untouched. The batch size multiplies the counts:
    pass N = 1 for per-clip numbers.
    """
    params = list(model.parameters())
    if not params or params[0].device.type != "meta":
        model = copy.deepcopy(model).to("meta")
    was_training = model.training
    model.eval()
    count = FlopCount()
    handles = []

    def conv_hook(name: str):
        def hook(module: nn.modules.conv._ConvNd, args, output: torch.Tensor) -> None:
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            count.conv[name] = count.conv.get(name, 0) + output.numel() * per_output

        return hook

    def linear_hook(name: str):
        def hook(module: nn.Linear, args, output: torch.Tensor) -> None:
            count.linear[name] = count.linear.get(name, 0) + output.numel() * module.in_features

        return hook

    for name, module in model.named_modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            handles.append(module.register_forward_hook(conv_hook(name)))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook(name)))
    try:
        with torch.no_grad():
            meta_inputs = [_to_meta(x) for x in inputs]
            if boxes is None:
                model(meta_inputs)
            else:
                model(meta_inputs, _to_meta(boxes))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return count


def pathway_shares(count: FlopCount) -> dict[str, float]:
    """Fractions of the convolution multiply-adds spent in the Slow pathway, the Fast pathway
    and the laterals (keys ``slow``, ``fast``, ``lateral``; they sum to 1). The paper
    (Sec. 3.2) says the Fast pathway takes ~20% of the computation."""
    total = count.conv_total
    parts = {
        "slow": sum(v for k, v in count.conv.items() if k.startswith("backbone.slow_")),
        "fast": sum(v for k, v in count.conv.items() if k.startswith("backbone.fast_")),
        "lateral": sum(v for k, v in count.conv.items() if k.startswith("backbone.lateral_")),
    }
    return {k: v / total for k, v in parts.items()}


def clip_cost(model_cfg, num_frames: int, size: int, boxes: int = 3) -> dict[str, float]:
    """The cost of scoring one ``size`` x ``size`` test clip of ``num_frames`` (at the Fast
    rate) with ``boxes`` person boxes through the model ``model_cfg`` (a ModelConfig) builds:
    ``gflops`` (convolution multiply-adds / 1e9), ``params``, and for SlowFast the Fast
    pathway's and the laterals' shares (``fast_share``, ``lateral_share``)."""
    from avadet.models.build import build_model  # build imports this module's users

    with torch.device("meta"):
        model = build_model(model_cfg)
    clip = torch.empty(1, 3, num_frames, size, size)
    box_rows = torch.tensor([[0, 1.0, 1.0, size / 2, size - 2.0]] * boxes)
    count = count_conv_flops(model, [*model.backbone.pathways(clip)], box_rows)
    out = {"gflops": count.conv_total / 1e9, "params": float(sum(p.numel() for p in model.parameters()))}
    if model_cfg.arch == "slowfast":
        shares = pathway_shares(count)
        out["fast_share"], out["lateral_share"] = shares["fast"], shares["lateral"]
    return out
