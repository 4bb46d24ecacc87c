"""Person boxes on keyframes: one interface (:class:`PersonDetector`, frames in, normalised
boxes and scores out) and its backends.

=============  =================================================  ==========================
name           backend                                            needs
=============  =================================================  ==========================
torchvision    Faster R-CNN, COCO person: R50-FPN (the default),   torchvision's weights
               MobileNetV3-Large FPN or its 320 px version
detectron2     Faster R-CNN from a detectron2 config and weights  detectron2 installed
csv            boxes from an AVA person-box CSV                   the CSV
=============  =================================================  ==========================

:func:`avadet.api.detect_persons` runs a detector over a dataset's keyframes and writes such
a CSV. Reads frames it is given; knows nothing of datasets or configs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch

from avadet.errors import AvadetError
from avadet.persons.base import (
    MAX_PERSONS_PER_KEYFRAME,
    PersonBoxes,
    PersonDetector,
    empty_boxes,
    normalise_boxes,
    top_boxes,
)
from avadet.persons.csv_backend import CsvPersonBoxes

BACKENDS = ("torchvision", "detectron2", "csv")


def build_person_detector(
    backend: str,
    *,
    score_threshold: float,
    boxes_csv: Union[str, Path, None] = None,
    weights_path: Union[str, Path, None] = None,
    min_size: Optional[int] = None,
    max_size: Optional[int] = None,
    model: str = "r50_fpn",
    detectron2_config: Union[str, Path, None] = None,
    detectron2_weights: Union[str, Path, None] = None,
    batch_size: int = 4,
    device: Union[str, torch.device] = "cpu",
) -> PersonDetector:
    """The backend ``backend`` names (:data:`BACKENDS`) with its options. torchvision:
    ``model`` is one of :data:`~avadet.persons.torchvision_backend.DETECTOR_MODELS`,
    ``min_size`` / ``max_size`` its input size (None: the model's own, R50-FPN 800 / 1333)."""
    if backend == "torchvision":
        from avadet.persons.torchvision_backend import TorchvisionPersonDetector

        return TorchvisionPersonDetector(
            weights="default", weights_path=weights_path, score_threshold=score_threshold,
            min_size=min_size, max_size=max_size, batch_size=batch_size, device=device,
            arch=model,
        )
    if backend == "detectron2":
        from avadet.persons.detectron2_backend import Detectron2PersonDetector, _import_detectron2

        _import_detectron2()  # the install hint comes before any complaint about arguments
        if not detectron2_config or not detectron2_weights:
            raise AvadetError("the detectron2 person detector needs a detectron2 config (.yaml) "
                              "and its weights")
        return Detectron2PersonDetector(
            detectron2_config, detectron2_weights, score_threshold=score_threshold,
            batch_size=batch_size, device=device,
        )
    if backend == "csv":
        if not boxes_csv:
            raise AvadetError("the csv person detector needs an AVA person-box CSV")
        return CsvPersonBoxes(boxes_csv, min_score=score_threshold)
    raise AvadetError(f"unknown person detector {backend!r}; choose one of {', '.join(BACKENDS)}")


@dataclass(frozen=True)
class PersonDetectorChoice:
    """Which person detector to build and its options, before the score threshold is known
    (it often comes from a checkpoint's config): :meth:`build` makes it."""

    backend: str = "torchvision"
    boxes_csv: Union[str, Path, None] = None
    weights_path: Union[str, Path, None] = None
    min_size: Optional[int] = None  # None: the model's own input size
    max_size: Optional[int] = None
    model: str = "r50_fpn"  # torchvision_backend.DETECTOR_MODELS
    detectron2_config: Union[str, Path, None] = None
    detectron2_weights: Union[str, Path, None] = None
    batch_size: int = 4

    def build(self, *, score_threshold: float,
              device: Union[str, torch.device] = "cpu") -> PersonDetector:
        return build_person_detector(
            self.backend, score_threshold=score_threshold, boxes_csv=self.boxes_csv,
            weights_path=self.weights_path, min_size=self.min_size, max_size=self.max_size,
            model=self.model,
            detectron2_config=self.detectron2_config,
            detectron2_weights=self.detectron2_weights, batch_size=self.batch_size,
            device=device,
        )


__all__ = [
    "BACKENDS",
    "MAX_PERSONS_PER_KEYFRAME",
    "CsvPersonBoxes",
    "PersonBoxes",
    "PersonDetector",
    "PersonDetectorChoice",
    "build_person_detector",
    "empty_boxes",
    "normalise_boxes",
    "top_boxes",
]
