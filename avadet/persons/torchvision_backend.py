"""torchvision's Faster R-CNN (COCO) as the person detector; the R50-FPN is the default.

COCO label 1 is "person"; every other class is dropped. Three COCO models
(:data:`DETECTOR_MODELS`, ``--detector-model``):

==================  =========================================  ====================
name                torchvision builder                        input (short / long)
==================  =========================================  ====================
r50_fpn             ``fasterrcnn_resnet50_fpn`` (the default)  800 / 1333
mobilenet_v3_fpn    ``fasterrcnn_mobilenet_v3_large_fpn``      800 / 1333
mobilenet_v3_320    ``fasterrcnn_mobilenet_v3_large_320_fpn``  320 / 640
==================  =========================================  ====================

``min_size`` / ``max_size`` change the input size of any of them (``--detector-size``). Weights:

- ``weights="default"``: torchvision's own COCO weights of that model, downloaded once into
  the torch hub cache (offline: :class:`~avadet.errors.WeightsUnavailable`, one line with the
  URL to fetch);
- ``weights_path``: a local state-dict file of the same model (read with
  ``torch.load(weights_only=True)``), for machines without internet;
- ``weights=None``: random weights (tests and benchmarks only).

``model`` accepts any torchvision detection model instead (``FasterRCNN`` with another
backbone, a fine-tuned one): it takes a list of ``(3, H, W)`` float tensors in ``[0, 1]`` and
returns per image a dict with ``boxes`` ``(N, 4)`` x1 y1 x2 y2 in pixels of that image,
``labels`` and ``scores``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from avadet.errors import AvadetError, CheckpointError, WeightsUnavailable
from avadet.fusion import (
    OneDnnConv,
    fold_batch_norm,
    is_batch_norm,
    onednn_available,
    replace_plain_convs,
)
from avadet.persons.base import BatchedPersonDetector, PersonBoxes, normalise_boxes

COCO_PERSON = 1
WEIGHTS_URL = "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"


@dataclass(frozen=True)
class DetectorModel:
    """One of torchvision's COCO Faster R-CNNs: its builder and weights enum (names in
    ``torchvision.models.detection``), the URL of its COCO weights, a name for logs, and the
    input size it was trained at (short side, long-side cap)."""

    builder: str
    weights_enum: str
    url: str
    title: str
    min_size: int
    max_size: int


DETECTOR_MODELS: dict[str, DetectorModel] = {
    "r50_fpn": DetectorModel(
        "fasterrcnn_resnet50_fpn", "FasterRCNN_ResNet50_FPN_Weights", WEIGHTS_URL,
        "Faster R-CNN R50-FPN", 800, 1333),
    "mobilenet_v3_fpn": DetectorModel(
        "fasterrcnn_mobilenet_v3_large_fpn", "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
        "https://download.pytorch.org/models/fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth",
        "Faster R-CNN MobileNetV3-Large FPN", 800, 1333),
    "mobilenet_v3_320": DetectorModel(
        "fasterrcnn_mobilenet_v3_large_320_fpn", "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights",
        "https://download.pytorch.org/models/fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth",
        "Faster R-CNN MobileNetV3-Large 320 FPN", 320, 640),
}
DEFAULT_MODEL = "r50_fpn"


def detector_model(name: str) -> DetectorModel:
    """The entry of :data:`DETECTOR_MODELS` called ``name``."""
    if name not in DETECTOR_MODELS:
        raise AvadetError(f"unknown person detector model {name!r}; choose one of "
                          f"{', '.join(DETECTOR_MODELS)}")
    return DETECTOR_MODELS[name]


def _offline_message(exc: Exception, entry: DetectorModel = DETECTOR_MODELS[DEFAULT_MODEL]) -> str:
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return (
        f"cannot download torchvision's {entry.title} weights ({exc}). On a machine with "
        f"internet fetch {entry.url} and either copy it to {hub}/ (torchvision then finds it) "
        "or give its path as the detector's weights file; or take the boxes from a CSV"
    )


def _load_reason(exc: BaseException) -> str:
    """torch.load's reason in one line. Its weights-only refusal is a page of text whose
    advice (load with weights_only=False) would run the file's code: only the cause is kept."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "unsupported GLOBAL" in line or line.startswith("Unsupported"):
            return f"not a plain tensor file ({line.rstrip('.')}); only tensors and containers " \
                   "are loaded"
    for line in lines:
        if "WeightsUnpickler error:" in line and line.split("error:", 1)[1].strip():
            return line.split("error:", 1)[1].strip()
    if lines and lines[0].startswith("Weights only load failed"):
        return "not a plain tensor file torch can load with weights_only=True"
    return "; ".join(lines) or type(exc).__name__


def _mismatch(expected: dict, state: Any, exc: BaseException) -> str:
    """Why ``state`` does not fit a model with state dict ``expected``, in one line."""
    if not isinstance(state, dict):
        return f"the file holds a {type(state).__name__}, not a state dict"

    def some(keys: list) -> str:
        return ", ".join(map(str, keys[:3])) + (", ..." if len(keys) > 3 else "")

    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and hasattr(state[k], "shape")
              and tuple(state[k].shape) != tuple(expected[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's {len(expected)} tensors missing "
                     f"({some(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({some(unexpected)})")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} of another shape (e.g. {k}: {tuple(state[k].shape)} in "
                     f"the file, {tuple(expected[k].shape)} in the model)")
    return "; ".join(parts) or "; ".join(line.strip() for line in str(exc).splitlines()
                                         if line.strip())


def build_faster_rcnn(
    *,
    weights: Optional[str] = "default",
    weights_path: Union[str, Path, None] = None,
    min_size: Optional[int] = None,
    max_size: Optional[int] = None,
    arch: str = DEFAULT_MODEL,
) -> nn.Module:
    """torchvision's Faster R-CNN ``arch`` (:data:`DETECTOR_MODELS`) with the chosen weights,
    in eval mode.

    ``min_size`` / ``max_size``: torchvision resizes each image so its short side is
    ``min_size`` (capped by ``max_size`` on the long side) before the network; None: the
    model's own (R50-FPN: 800 / 1333, the COCO setting). Smaller is much faster on a CPU and
    fine for large people.
    """
    import torchvision.models.detection as detection

    entry = detector_model(arch)
    build = getattr(detection, entry.builder)
    kwargs: dict[str, Any] = {"min_size": min_size or entry.min_size,
                              "max_size": max_size or entry.max_size}
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise CheckpointError(f"no such detector weights file: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # not a torch file, disallowed pickle content
            raise CheckpointError(f"{path}: cannot be read as a state dict: "
                                  f"{_load_reason(exc)}") from None
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        model = build(weights=None, weights_backbone=None, num_classes=91, **kwargs)
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            raise CheckpointError(
                f"{path}: not {entry.builder} COCO weights: "
                f"{_mismatch(model.state_dict(), state, exc)}"
            ) from None
    elif weights == "default":
        try:
            model = build(weights=getattr(detection, entry.weights_enum).DEFAULT, **kwargs)
        except OSError as exc:  # URLError, no route, read-only cache
            raise WeightsUnavailable(_offline_message(exc, entry)) from None
    elif weights is None:
        model = build(weights=None, weights_backbone=None, num_classes=91, **kwargs)
    else:
        raise AvadetError(f"unknown detector weights {weights!r}: use 'default' or a file")
    return model.eval()


_FUSED_ACTIVATIONS = {nn.ReLU: "relu", nn.Hardswish: "hardswish"}


class _FusedResNetBottleneck(nn.Module):
    """torchvision's ResNet ``Bottleneck`` with its (frozen) BNs folded: conv 1 and 2 with
    their ReLU fused, conv 3 with the residual add and the ReLU fused."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.conv1 = OneDnnConv(fold_batch_norm(block.conv1, block.bn1), activation="relu")
        self.conv2 = OneDnnConv(fold_batch_norm(block.conv2, block.bn2), activation="relu")
        self.conv3 = OneDnnConv(fold_batch_norm(block.conv3, block.bn3), activation="relu")
        down = block.downsample
        self.downsample = (OneDnnConv(fold_batch_norm(down[0], down[1]))
                           if down is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.downsample(x) if self.downsample is not None else x
        return self.conv3(self.conv2(self.conv1(x)), identity)


def _fusable_bottleneck(module: nn.Module) -> bool:
    from torchvision.models.resnet import Bottleneck

    if type(module) is not Bottleneck:
        return False
    down = module.downsample
    return (all(is_batch_norm(getattr(module, f"bn{i}")) for i in (1, 2, 3))
            and (down is None or (len(down) == 2 and isinstance(down[0], nn.Conv2d)
                                  and is_batch_norm(down[1]))))


def fuse_for_onednn(model: nn.Module) -> int:
    """Rewrite, in place, a torchvision detector's convolutions for a CPU (:mod:`avadet.fusion`):
    ResNet bottlenecks with their BNs folded and the ReLUs and residual add fused; the ResNet
    stem (``conv1``, ``bn1``, ``relu``) and every ``Conv2dNormActivation`` (conv, BN, ReLU or
    Hardswish: MobileNetV3) folded with the activation fused; every other convolution (FPN,
    RPN head, squeeze-excitation) through oneDNN unfused. Returns how many convolutions."""
    count = 0
    for parent in list(model.modules()):
        children = dict(parent.named_children())
        if (isinstance(children.get("conv1"), nn.Conv2d) and is_batch_norm(children.get("bn1"))
                and isinstance(children.get("relu"), nn.ReLU) and "layer1" in children):
            # a ResNet body: conv1 -> bn1 -> relu -> maxpool -> layer1...
            parent.conv1 = OneDnnConv(fold_batch_norm(parent.conv1, parent.bn1), activation="relu")
            parent.bn1, parent.relu = nn.Identity(), nn.Identity()
            count += 1
        for name, child in children.items():
            if _fusable_bottleneck(child):
                setattr(parent, name, _FusedResNetBottleneck(child))
                count += 3 + (child.downsample is not None)
            elif (isinstance(child, nn.Sequential) and 2 <= len(child) <= 3
                    and type(child[0]) is nn.Conv2d and is_batch_norm(child[1])
                    and (len(child) == 2 or type(child[2]) in _FUSED_ACTIVATIONS)):
                activation = "none" if len(child) == 2 else _FUSED_ACTIVATIONS[type(child[2])]
                child[0] = OneDnnConv(fold_batch_norm(child[0], child[1]), activation=activation)
                for k in range(1, len(child)):
                    child[k] = nn.Identity()
                count += 1
    return count + replace_plain_convs(model)


class TorchvisionPersonDetector(BatchedPersonDetector):
    """Person boxes from a torchvision detection model, ``batch_size`` frames per forward pass.

    Args:
        weights, weights_path, min_size, max_size, arch: see :func:`build_faster_rcnn`
            (ignored when ``model`` is given).
        model: a torchvision detection model to use instead of one of :data:`DETECTOR_MODELS`.
        score_threshold: boxes scoring below it are dropped (PySlowFast's demo uses 0.8
            with detectron2's detector; torchvision's scores run a little lower).
        person_label: the label id of "person" in the model's classes (COCO: 1).
        device: where the model runs.
        onednn: rewrite the model's convolutions for a CPU (:func:`fuse_for_onednn`: BNs
            folded, oneDNN with ReLU/Hardswish and residual adds fused; boxes equal to the
            unfused model's up to float rounding). Default: on for the models built here on
            a CPU whose torch has the kernels; a ``model`` handed in is left as it is.
    """

    def __init__(
        self,
        *,
        weights: Optional[str] = "default",
        weights_path: Union[str, Path, None] = None,
        model: Optional[nn.Module] = None,
        score_threshold: float = 0.7,
        person_label: int = COCO_PERSON,
        min_size: Optional[int] = None,
        max_size: Optional[int] = None,
        batch_size: int = 4,
        device: Union[str, torch.device] = "cpu",
        arch: str = DEFAULT_MODEL,
        onednn: Optional[bool] = None,
    ):
        own_model = model is None
        if model is None:
            model = build_faster_rcnn(
                weights=weights, weights_path=weights_path, min_size=min_size, max_size=max_size,
                arch=arch,
            )
            entry = detector_model(arch)
            self._name = (f"torchvision {entry.title} ({weights_path or weights or 'random'} "
                          f"weights, min_size {min_size or entry.min_size})")
        else:
            self._name = f"torchvision {type(model).__name__}"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if onednn is None:  # our own models on a CPU; a model handed in is left as it is
            onednn = own_model and self.device.type == "cpu" and onednn_available()
        elif onednn and not onednn_available():
            raise AvadetError("this torch build has no oneDNN fused convolutions: onednn=False")
        self.onednn = bool(onednn)
        if self.onednn:
            with torch.no_grad():
                fuse_for_onednn(self.model)
            self.model = self.model.to(memory_format=torch.channels_last)
        # torchvision keeps boxes above 0.05 by default; ours may be lower.
        roi_heads = getattr(self.model, "roi_heads", None)
        if roi_heads is not None and hasattr(roi_heads, "score_thresh"):
            roi_heads.score_thresh = min(float(roi_heads.score_thresh), score_threshold)
        self.score_threshold = float(score_threshold)
        self.person_label = int(person_label)
        self.batch_size = max(1, int(batch_size))

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[PersonBoxes]:
        images = [
            torch.from_numpy(np.ascontiguousarray(f)).to(self.device).permute(2, 0, 1).float()
            / 255.0
            for f in frames
        ]
        out = []
        for frame, result in zip(frames, self.model(images)):
            person = result["labels"] == self.person_label
            out.append(normalise_boxes(
                result["boxes"][person].cpu().numpy(), result["scores"][person].cpu().numpy(),
                frame.shape[1], frame.shape[0], self.score_threshold,
            ))
        return out

    def describe(self) -> str:
        return self._name
