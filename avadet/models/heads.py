"""Heads on top of the backbone features, and the model that joins backbone and head.

:class:`AVAHead` scores person boxes (RoI head, PySlowFast's ``ResNetRoIHead``);
:class:`KineticsHead` classifies whole clips (``ResNetBasicHead``), so Kinetics checkpoints
load and initialise AVA backbones.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Union

import torch
from torch import nn
from torchvision.ops import roi_align

ACTIVATIONS = ("sigmoid", "softmax", "none")


class HeadOutput(NamedTuple):
    """``scores``: activation of ``logits``; ``logits``: ``(K, num_classes)`` before it;
    ``features``: ``(K, sum of pathway channels)``, the input of the final linear layer."""

    scores: torch.Tensor
    logits: torch.Tensor
    features: torch.Tensor


def _activate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    if activation == "softmax":
        return torch.softmax(logits, dim=1)
    return logits


def _mean_over_time(x: torch.Tensor) -> torch.Tensor:
    """``x.mean(dim=2)`` of an ``(N, C, T, H, W)`` tensor. On a channels-last tensor (the
    deployment form's) the reduction runs over the contiguous ``(N, T, H, W, C)`` view: the
    same sums, 30x faster than PyTorch's strided reduction over T."""
    if x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous():
        return x.permute(0, 2, 3, 4, 1).mean(dim=1).permute(0, 3, 1, 2)
    return x.mean(dim=2)


class AVAHead(nn.Module):
    """RoI action head: per pathway, average over all T, RoIAlign ``output_size`` at
    ``spatial_scale``, spatial max pool; concatenate the pathways; dropout; linear.

    Inputs: features ``[(N, C_p, T_p, h, w)]`` and boxes ``(K, 5)``
    ``[batch_index, x1, y1, x2, y2]`` in pixels of the network input. Output: a
    :class:`HeadOutput` with ``(K, num_classes)`` scores. The activation (sigmoid by default,
    as PySlowFast applies it inside the model) is applied in train and eval mode alike;
    train on ``logits`` with ``BCEWithLogits``.

    ``aligned``: torchvision's half-pixel RoIAlign (PySlowFast's ``DETECTION.ALIGNED``, True
    by default there and in :class:`~avadet.config.ModelConfig`); PySlowFast's Caffe2-era AVA
    models and pytorchvideo's ``slowfast_r50_detection`` were trained with False. The
    defaults are ModelConfig's.
    """

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        num_classes: int = 80,
        dropout: float = 0.5,
        output_size: int = 7,
        spatial_scale: float = 1.0 / 16,
        sampling_ratio: int = 0,
        aligned: bool = True,
        activation: str = "sigmoid",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        self.activation = activation
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.projection = nn.Linear(sum(in_channels), num_classes)

    def extra_repr(self) -> str:
        # Settings that are no submodule, so that print(model) shows the whole head.
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}, "
            f"activation={self.activation!r}"
        )

    def forward(self, features: Sequence[torch.Tensor], boxes: torch.Tensor) -> HeadOutput:
        if boxes.ndim != 2 or boxes.shape[1] != 5:
            raise ValueError(f"boxes must be (K, 5) [batch_index, x1, y1, x2, y2], got {tuple(boxes.shape)}")
        pooled = []
        for x in features:
            x = _mean_over_time(x)  # (N, C, h, w): average over all frames
            x = roi_align(
                x,
                boxes.to(x.dtype),
                output_size=self.output_size,
                spatial_scale=self.spatial_scale,
                sampling_ratio=self.sampling_ratio,
                aligned=self.aligned,
            )  # (K, C, S, S)
            pooled.append(x.amax(dim=(2, 3)))
        feats = torch.cat(pooled, dim=1)
        logits = self.projection(self.dropout(feats))
        return HeadOutput(_activate(logits, self.activation), logits, feats)


class KineticsHead(nn.Module):
    """Clip classifier: global average pool per pathway, concatenate, dropout, linear.

    Features ``[(N, C_p, T_p, h, w)]`` -> :class:`HeadOutput` with ``(N, num_classes)``. The
    activation is applied in eval mode only, as PySlowFast does; in train mode ``scores`` are
    the logits. ``num_classes`` and ``activation`` have no default: ModelConfig's (80, sigmoid)
    are the AVA head's, and Kinetics checkpoints want 400 and softmax, so the caller says which.
    """

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        num_classes: int,
        activation: str,
        dropout: float = 0.5,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.projection = nn.Linear(sum(in_channels), num_classes)

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"

    def forward(
        self, features: Sequence[torch.Tensor], boxes: Optional[torch.Tensor] = None
    ) -> HeadOutput:
        feats = torch.cat([x.mean(dim=(2, 3, 4)) for x in features], dim=1)
        logits = self.projection(self.dropout(feats))
        scores = logits if self.training else _activate(logits, self.activation)
        return HeadOutput(scores, logits, feats)


class ActionModel(nn.Module):
    """Backbone + head. ``model(inputs, boxes)`` -> ``(K, num_classes)`` scores.

    ``inputs``: the clip ``(N, 3, T, H, W)`` float32 normalised, at the Fast pathway's frame
    rate (the backbone takes each pathway's frames from it), or one clip per pathway
    (``[slow, fast]`` / ``[slow]``); ``boxes``: ``(K, 5)`` ``[batch_index, x1, y1, x2,
    y2]`` in input pixels (AVA head; ``None`` for the Kinetics head, which scores the N clips).
    With ``return_logits=True`` the result is the full :class:`HeadOutput` (scores, logits,
    RoI features).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(
        self,
        inputs: Union[torch.Tensor, Sequence[torch.Tensor]],
        boxes: Optional[torch.Tensor] = None,
        *,
        return_logits: bool = False,
    ) -> Union[torch.Tensor, HeadOutput]:
        if isinstance(self.head, AVAHead) and boxes is None:
            raise ValueError("the AVA head needs boxes (K, 5) [batch_index, x1, y1, x2, y2]")
        out = self.head(self.backbone(inputs), boxes)
        return out if return_logits else out.scores
