"""torchvision's Faster R-CNN (ResNet-50 FPN, COCO) as the person detector; the default.

COCO label 1 is "person"; every other class is dropped. Weights:

- ``weights="default"``: torchvision's own COCO weights
  (``FasterRCNN_ResNet50_FPN_Weights.DEFAULT``), downloaded once into the torch hub cache;
- ``weights_path``: a local state-dict file of the same model (read with
  ``torch.load(weights_only=True)``), for machines without internet;
- ``weights=None``: random weights (tests and benchmarks only).

``model`` accepts any torchvision detection model instead (``FasterRCNN`` with another
backbone, a fine-tuned one): it takes a list of ``(3, H, W)`` float tensors in ``[0, 1]`` and
returns per image a dict with ``boxes`` ``(N, 4)`` x1 y1 x2 y2 in pixels of that image,
``labels`` and ``scores``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from avadet.errors import AvadetError, CheckpointError, WeightsUnavailable
from avadet.persons.base import BatchedPersonDetector, PersonBoxes, normalise_boxes

COCO_PERSON = 1
WEIGHTS_URL = "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"


def _offline_message(exc: Exception) -> str:
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return (
        f"cannot download torchvision's Faster R-CNN weights ({exc}). On a machine with internet "
        f"fetch {WEIGHTS_URL} and either copy it to {hub}/ (torchvision then finds it) or pass "
        "give its path as the detector's weights file; or take the boxes from a CSV"
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
    min_size: int = 800,
    max_size: int = 1333,
) -> nn.Module:
    """torchvision's ``fasterrcnn_resnet50_fpn`` with the chosen weights, in eval mode.

    ``min_size`` / ``max_size``: torchvision resizes each image so its short side is
    ``min_size`` (capped by ``max_size`` on the long side) before the network; 800 is the COCO
    setting, smaller is much faster on a CPU and fine for large people.
    """
    from torchvision.models.detection import (
        FasterRCNN_ResNet50_FPN_Weights,
        fasterrcnn_resnet50_fpn,
    )

    kwargs: dict[str, Any] = {"min_size": min_size, "max_size": max_size}
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
        model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91,
                                        **kwargs)
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            raise CheckpointError(
                f"{path}: not fasterrcnn_resnet50_fpn COCO weights: "
                f"{_mismatch(model.state_dict(), state, exc)}"
            ) from None
    elif weights == "default":
        try:
            model = fasterrcnn_resnet50_fpn(
                weights=FasterRCNN_ResNet50_FPN_Weights.DEFAULT, **kwargs
            )
        except OSError as exc:  # URLError, no route, read-only cache
            raise WeightsUnavailable(_offline_message(exc)) from None
    elif weights is None:
        model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91,
                                        **kwargs)
    else:
        raise AvadetError(f"unknown detector weights {weights!r}: use 'default' or a file")
    return model.eval()


class TorchvisionPersonDetector(BatchedPersonDetector):
    """Person boxes from a torchvision detection model, ``batch_size`` frames per forward pass.

    Args:
        weights, weights_path, min_size, max_size: see :func:`build_faster_rcnn` (ignored when
            ``model`` is given).
        model: a torchvision detection model to use instead of Faster R-CNN R50-FPN.
        score_threshold: boxes scoring below it are dropped (PySlowFast's demo uses 0.8
            with detectron2's detector; torchvision's scores run a little lower).
        person_label: the label id of "person" in the model's classes (COCO: 1).
        device: where the model runs.
    """

    def __init__(
        self,
        *,
        weights: Optional[str] = "default",
        weights_path: Union[str, Path, None] = None,
        model: Optional[nn.Module] = None,
        score_threshold: float = 0.7,
        person_label: int = COCO_PERSON,
        min_size: int = 800,
        max_size: int = 1333,
        batch_size: int = 4,
        device: Union[str, torch.device] = "cpu",
    ):
        if model is None:
            model = build_faster_rcnn(
                weights=weights, weights_path=weights_path, min_size=min_size, max_size=max_size
            )
            self._name = (f"torchvision Faster R-CNN R50-FPN ({weights_path or weights or 'random'} "
                          f"weights, min_size {min_size})")
        else:
            self._name = f"torchvision {type(model).__name__}"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
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
