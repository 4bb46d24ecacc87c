"""Person boxes on keyframes: one interface (:class:`PersonDetector`, frames in, normalised
boxes and scores out) and its backends.

=============  =================================================  ==========================
name           backend                                            needs
=============  =================================================  ==========================
torchvision    Faster R-CNN R50-FPN, COCO person (the default)    torchvision's weights
detectron2     Faster R-CNN from a detectron2 config and weights  detectron2 installed
csv            boxes from an AVA person-box CSV                   the CSV
=============  =================================================  ==========================

``avadet detect-persons`` runs a detector over a dataset's keyframes and writes such a CSV.
Sits above ``avadet.io`` and ``avadet.data``; only ``avadet.detect`` imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import torch

from avadet.errors import AvadetError
from avadet.persons.base import PersonBoxes, PersonDetector, empty_boxes, normalise_boxes
from avadet.persons.csv_backend import CsvPersonBoxes

BACKENDS = ("torchvision", "detectron2", "csv")


def build_person_detector(
    backend: str,
    *,
    score_threshold: float,
    boxes_csv: Union[str, Path, None] = None,
    weights_path: Union[str, Path, None] = None,
    min_size: int = 800,
    max_size: int = 1333,
    detectron2_config: Union[str, Path, None] = None,
    detectron2_weights: Union[str, Path, None] = None,
    batch_size: int = 4,
    device: Union[str, torch.device] = "cpu",
) -> PersonDetector:
    """The backend ``backend`` names, from command-line style arguments."""
    if backend == "torchvision":
        from avadet.persons.torchvision_backend import TorchvisionPersonDetector

        return TorchvisionPersonDetector(
            weights="default", weights_path=weights_path, score_threshold=score_threshold,
            min_size=min_size, max_size=max_size, batch_size=batch_size, device=device,
        )
    if backend == "detectron2":
        from avadet.persons.detectron2_backend import Detectron2PersonDetector, _import_detectron2

        _import_detectron2()  # the install hint comes before any complaint about arguments
        if not detectron2_config or not detectron2_weights:
            raise AvadetError("--persons detectron2 needs --d2-config CFG.yaml and --d2-weights FILE")
        return Detectron2PersonDetector(
            detectron2_config, detectron2_weights, score_threshold=score_threshold,
            batch_size=batch_size, device=device,
        )
    if backend == "csv":
        if not boxes_csv:
            raise AvadetError("--persons csv needs --boxes FILE.csv (an AVA person-box CSV)")
        return CsvPersonBoxes(boxes_csv, min_score=score_threshold)
    raise AvadetError(f"unknown person detector {backend!r}; choose one of {', '.join(BACKENDS)}")


def add_detector_arguments(parser, *, default_threshold: Optional[float] = None) -> None:
    """The person-detector options shared by ``detect`` and ``detect-persons``."""
    group = parser.add_argument_group("person detector")
    group.add_argument("--persons", default="torchvision", choices=BACKENDS,
                       help="person detector backend (default: %(default)s)")
    group.add_argument("--boxes", metavar="CSV", help="person-box CSV for --persons csv")
    group.add_argument("--person-threshold", type=float, default=default_threshold,
                       help="keep person boxes scoring at least this"
                            + (" (default: %(default)s)" if default_threshold is not None
                               else " (default: the config's data.test_detection_score)"))
    group.add_argument("--detector-weights", metavar="FILE",
                       help="local fasterrcnn_resnet50_fpn COCO state dict (offline use)")
    group.add_argument("--detector-min-size", type=int, default=800,
                       help="short side torchvision resizes frames to (default: %(default)s; "
                            "smaller is faster on a CPU)")
    group.add_argument("--detector-max-size", type=int, default=1333)
    group.add_argument("--d2-config", metavar="YAML", help="detectron2 config (--persons detectron2)")
    group.add_argument("--d2-weights", metavar="FILE", help="detectron2 weights")
    group.add_argument("--detector-batch", type=int, default=4, help="frames per detector pass")


def detector_from_args(args, *, score_threshold: float, device: str) -> PersonDetector:
    return build_person_detector(
        args.persons, score_threshold=score_threshold, boxes_csv=args.boxes,
        weights_path=args.detector_weights, min_size=args.detector_min_size,
        max_size=args.detector_max_size, detectron2_config=args.d2_config,
        detectron2_weights=args.d2_weights, batch_size=args.detector_batch, device=device,
    )


__all__ = [
    "BACKENDS",
    "CsvPersonBoxes",
    "PersonBoxes",
    "PersonDetector",
    "add_detector_arguments",
    "build_person_detector",
    "detector_from_args",
    "empty_boxes",
    "normalise_boxes",
]
