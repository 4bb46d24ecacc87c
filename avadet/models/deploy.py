"""The deployment form of a model: the same scores, computed faster on a CPU.

:func:`prepare_for_inference` turns an :class:`~avadet.models.ActionModel` into an eval-only
:class:`DeployedModel`:

- every BatchNorm3d that follows a Conv3d (stems, bottleneck convs a/b/c, shortcuts, laterals
  with BN, the non-local blocks' output conv) is folded into that convolution, which then
  carries the bias ``beta - mean * gamma / sqrt(var + eps)``: one pass over the activations
  less per convolution;
- weights and input clips in the channels-last 3D memory format, which oneDNN's direct
  convolutions run fastest (docs/benchmarks.md, "Models");
- on a CPU in fp32, each convolution run by oneDNN directly with its ReLU, and a bottleneck's
  residual add, fused into it (:mod:`avadet.models.onednn`, :mod:`avadet.fusion`): at batch
  1 PyTorch would send the Fast pathway's thin convolutions to a slow reference kernel;
- ``torch.inference_mode`` around the forward pass;
- optionally bfloat16 autocast, only when asked for and only on a CPU with native bf16 dot
  products (``avx512_bf16`` or AMX): the scores then move by ~5e-3 (docs/benchmarks.md).

The fp32 form's scores are within 1e-4 of the eval-mode model's (tests/models/test_deploy.py,
every published architecture). The model given is not modified: it is copied first.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from torch import nn

from avadet.errors import ConfigError
from avadet.fusion import fold_batch_norm, onednn_available
from avadet.models.heads import HeadOutput
from avadet.models.onednn import fuse_for_onednn
from avadet.models.resnet3d import Bottleneck, NonLocal, Stem
from avadet.models.slowfast import Lateral

# Which (conv, bn) attribute pairs each block holds, the BN applied right after the conv.
_FOLDABLE: dict[type, tuple[tuple[str, str], ...]] = {
    Stem: (("conv", "bn"),),
    Bottleneck: (("conv_a", "bn_a"), ("conv_b", "bn_b"), ("conv_c", "bn_c"),
                 ("shortcut", "shortcut_bn")),
    Lateral: (("conv", "bn"),),
    NonLocal: (("conv_out", "bn"),),
}

PRECISIONS = ("fp32", "bf16")


def fold_batch_norms(model: nn.Module) -> int:
    """Fold, in place, each BatchNorm3d of avadet's blocks into the conv before it (the BN
    becomes ``nn.Identity``). Returns the number folded. Only for eval: the folded model has
    no batch statistics left to train."""
    folded = 0
    for module in model.modules():
        for conv_name, bn_name in _FOLDABLE.get(type(module), ()):
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if not isinstance(conv, nn.Conv3d) or not isinstance(bn, nn.BatchNorm3d):
                continue  # absent (no shortcut, a lateral without BN) or already folded
            if not bn.track_running_stats or bn.running_var is None:
                continue  # batch statistics at test time: nothing to fold
            setattr(module, conv_name, fold_batch_norm(conv, bn))
            setattr(module, bn_name, nn.Identity())
            folded += 1
    return folded


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bf16 convolutions natively (oneDNN's check where torch has
    it, else the ``avx512_bf16`` / ``amx_bf16`` CPU flags). Without it bf16 is emulated and
    slower than fp32."""
    if not torch.backends.mkldnn.is_available():
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is not None:
        try:
            return bool(check())
        except RuntimeError:
            pass
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


class ScoresOnly(nn.Module):
    """``(clip, boxes) -> scores`` of an ActionModel: the signature a tracer records (no
    keyword arguments, one output)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, clip: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        return self.model(clip, boxes)


def freeze_for_onednn(model: nn.Module, clip: torch.Tensor, boxes: torch.Tensor):
    """``model`` (eval, folded) traced on ``(clip, boxes)``, frozen and passed through
    TorchScript's ``optimize_for_inference`` (oneDNN convolutions with fused ReLU/add).
    The trace fixes the clip's frame count; sizes, clips and boxes stay free."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript's deprecation and tracer notices
        traced = torch.jit.trace(ScoresOnly(model).eval(), (clip, boxes), check_trace=False)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def _to_channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last_3d) if x.ndim == 5 else x


class DeployedModel(nn.Module):
    """An eval-only :class:`~avadet.models.ActionModel` (BN folded; see the module doc).

    Called like it: ``deployed(clip, boxes)`` -> ``(K, num_classes)`` float32 scores, with
    ``clip`` ``(N, 3, T, H, W)`` at the Fast rate or one clip per pathway and ``boxes``
    ``(K, 5)`` ``[batch_index, x1, y1, x2, y2]`` in input pixels; ``return_logits=True``
    gives the :class:`HeadOutput`. ``model``: the folded model itself (what ONNX export
    traces). ``train()`` is refused: the folded model cannot learn batch statistics.
    """

    def __init__(self, model: nn.Module, *, channels_last: bool,
                 autocast_dtype: Optional[torch.dtype], torchscript: bool = False,
                 onednn: bool = False):
        super().__init__()
        self.model = model
        self.channels_last = channels_last
        self.autocast_dtype = autocast_dtype
        self.torchscript = torchscript
        self.onednn = onednn
        self._frozen: dict[tuple, torch.jit.ScriptModule] = {}

    def extra_repr(self) -> str:
        precision = "fp32" if self.autocast_dtype is None else str(self.autocast_dtype)
        return (f"channels_last={self.channels_last}, precision={precision}, "
                f"onednn={self.onednn}, torchscript={self.torchscript}")

    def _frozen_for(self, clip: torch.Tensor, boxes: torch.Tensor):
        key = (clip.shape[2], clip.dtype, clip.device)
        if key not in self._frozen:
            self._frozen[key] = freeze_for_onednn(self.model, clip, boxes)
        return self._frozen[key]

    def train(self, mode: bool = True) -> DeployedModel:
        if mode:
            raise RuntimeError("a deployed model (BatchNorm folded) is for inference only; "
                               "train the original model")
        return super().train(False)

    def _inputs(self, inputs):
        backbone = getattr(self.model, "backbone", None)
        if isinstance(inputs, torch.Tensor) and hasattr(backbone, "pathways"):
            # Split the pathways first, so each pathway's clip is channels-last, not only
            # the Fast one (index_select of the Slow frames gives a contiguous tensor).
            inputs = backbone.pathways(inputs)
        if not self.channels_last:
            return inputs
        if isinstance(inputs, torch.Tensor):
            return _to_channels_last(inputs)
        return [_to_channels_last(x) for x in inputs]

    def forward(
        self,
        inputs: Union[torch.Tensor, Sequence[torch.Tensor]],
        boxes: Optional[torch.Tensor] = None,
        *,
        return_logits: bool = False,
    ) -> Union[torch.Tensor, HeadOutput]:
        if (self.torchscript and isinstance(inputs, torch.Tensor) and boxes is not None
                and not return_logits):
            with torch.no_grad():
                return self._frozen_for(inputs, boxes)(inputs, boxes).float()
        device = boxes.device if boxes is not None else (
            inputs.device if isinstance(inputs, torch.Tensor) else inputs[0].device)
        with torch.inference_mode(), torch.autocast(
            device_type=device.type, dtype=self.autocast_dtype or torch.bfloat16,
            enabled=self.autocast_dtype is not None,
        ):
            out = self.model(self._inputs(inputs), boxes, return_logits=return_logits)
        if isinstance(out, HeadOutput):
            return HeadOutput(*(t.float() for t in out))
        return out.float()


def prepare_for_inference(
    model: nn.Module,
    *,
    channels_last: bool = True,
    fold_bn: bool = True,
    dtype: Optional[torch.dtype] = None,
    copy_model: bool = True,
    torchscript: bool = False,
    onednn: Optional[bool] = None,
) -> DeployedModel:
    """The deployment form of ``model`` (an :class:`~avadet.models.ActionModel`, on any
    device): a :class:`DeployedModel` whose fp32 scores equal the eval-mode model's within
    1e-4 (float rounding of the folded weights and of the channels-last kernels).

    ``dtype=torch.bfloat16``: bfloat16 autocast, only on a CPU that supports it natively
    (:func:`cpu_supports_bf16`; else :class:`~avadet.errors.ConfigError`); ``None`` or
    ``torch.float32``: fp32. ``copy_model=False`` folds ``model`` itself (it is then
    consumed: its BN layers are gone); by default a copy is folded and ``model`` is left as it
    was, training mode included. ``torchscript=True`` (fp32 only): each clip length's first
    call traces and freezes the model for oneDNN (:func:`freeze_for_onednn`; a few seconds),
    later calls run the frozen graph; list inputs and ``return_logits`` keep the eager path.
    ``onednn`` (default: on for an fp32, BN-folded, channels-last model on a CPU whose torch has
    the kernels): run the convolutions through oneDNN with ReLU and residual adds fused
    (:func:`~avadet.models.onednn.fuse_for_onednn`; ``DeployedModel.model`` then holds
    those modules, so ONNX export asks for ``onednn=False``).
    """
    if torchscript and dtype == torch.bfloat16:
        raise ConfigError("the TorchScript path is fp32 only")
    if dtype not in (None, torch.float32, torch.bfloat16):
        raise ConfigError(f"deployment precision must be float32 or bfloat16, got {dtype}")
    autocast_dtype = torch.bfloat16 if dtype == torch.bfloat16 else None
    device = next(iter(model.parameters()), torch.empty(0)).device
    if autocast_dtype is not None and device.type == "cpu" and not cpu_supports_bf16():
        raise ConfigError("bf16 inference needs a CPU with native bf16 (avx512_bf16 or AMX); "
                          "this one has neither: use fp32")
    if onednn is None:
        onednn = (autocast_dtype is None and fold_bn and channels_last and not torchscript
                  and device.type == "cpu" and onednn_available())
    elif onednn and not onednn_available():
        raise ConfigError("this torch build has no oneDNN fused convolutions: onednn=False")
    if copy_model:
        model = copy.deepcopy(model)
    model.eval()
    if fold_bn:
        fold_batch_norms(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    for p in model.parameters():
        p.requires_grad_(False)
    if onednn:
        fuse_for_onednn(model)
    return DeployedModel(model, channels_last=channels_last and not torchscript,
                         autocast_dtype=autocast_dtype, torchscript=torchscript,
                         onednn=bool(onednn)).eval()


def precision_dtype(precision: str) -> Optional[torch.dtype]:
    """``"fp32"`` -> None, ``"bf16"`` -> ``torch.bfloat16`` (the config's ``test.precision``)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return torch.bfloat16 if precision == "bf16" else None
