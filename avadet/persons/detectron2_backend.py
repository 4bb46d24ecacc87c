"""detectron2's Faster R-CNN as the person detector (the one PySlowFast's demo uses), when
detectron2 is installed.

Built from a detectron2 config file (e.g. model zoo
``COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml``) and its weights file, used like detectron2's
``DefaultPredictor``: each frame resized so its short side is ``INPUT.MIN_SIZE_TEST`` (long
side capped at ``INPUT.MAX_SIZE_TEST``), channels in ``INPUT.FORMAT`` order, boxes returned in
pixels of the original frame. COCO's "person" is class 0 in detectron2's contiguous ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from avadet.errors import AvadetError
from avadet.persons.base import BatchedPersonDetector, PersonBoxes, normalise_boxes

DETECTRON2_PERSON = 0
INSTALL_HINT = (
    "the detectron2 person detector needs detectron2, which is not installed. Install it "
    "for your torch and CUDA version as https://detectron2.readthedocs.io/en/latest/tutorials/"
    "install.html describes (e.g. pip install 'git+https://github.com/facebookresearch/"
    "detectron2.git'), or use the torchvision (default) or csv person detector"
)


def _import_detectron2() -> Any:
    try:
        import detectron2  # noqa: F401
        from detectron2 import checkpoint, config, modeling
        from detectron2.data import transforms
    except ImportError:
        raise AvadetError(INSTALL_HINT) from None
    return config, checkpoint, modeling, transforms


def instances_to_person_boxes(
    instances: Any, width: int, height: int, *, person_class: int, threshold: float
) -> PersonBoxes:
    """detectron2 ``Instances`` (fields ``pred_boxes.tensor`` ``(N, 4)`` pixels of the original
    frame, ``scores`` ``(N,)``, ``pred_classes`` ``(N,)``) -> normalised person boxes."""
    classes = instances.pred_classes.cpu().numpy()
    person = classes == person_class
    boxes = instances.pred_boxes.tensor.cpu().numpy()[person]
    scores = instances.scores.cpu().numpy()[person]
    return normalise_boxes(boxes, scores, width, height, threshold)


class Detectron2PersonDetector(BatchedPersonDetector):
    """Person boxes from a detectron2 model (see the module docstring).

    Args:
        config_file: a detectron2 YAML config.
        weights: its weights (``.pkl`` from the model zoo or ``.pth``).
        score_threshold: boxes below it are dropped (the model's own
            ``ROI_HEADS.SCORE_THRESH_TEST`` is lowered to it when higher).
        opts: extra detectron2 config overrides, ``["KEY", "VALUE", ...]``.
    """

    def __init__(
        self,
        config_file: Union[str, Path],
        weights: Union[str, Path],
        *,
        score_threshold: float = 0.7,
        person_class: int = DETECTRON2_PERSON,
        batch_size: int = 4,
        device: Union[str, torch.device] = "cpu",
        opts: Optional[list[str]] = None,
    ):
        config, checkpoint, modeling, transforms = _import_detectron2()
        for path, what in ((config_file, "config"), (weights, "weights")):
            if not Path(path).is_file():
                raise AvadetError(f"no such detectron2 {what} file: {path}")
        cfg = config.get_cfg()
        cfg.merge_from_file(str(config_file))
        cfg.merge_from_list(list(opts or []))
        cfg.MODEL.WEIGHTS = str(weights)
        cfg.MODEL.DEVICE = str(torch.device(device))
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = min(
            float(cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST), float(score_threshold)
        )
        cfg.freeze()
        self.model = modeling.build_model(cfg).eval()
        checkpoint.DetectionCheckpointer(self.model).load(cfg.MODEL.WEIGHTS)
        self.resize = transforms.ResizeShortestEdge(
            [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST
        )
        self.input_format = cfg.INPUT.FORMAT
        self.device = torch.device(device)
        self.score_threshold = float(score_threshold)
        self.person_class = int(person_class)
        self.batch_size = max(1, int(batch_size))
        self._name = f"detectron2 {Path(config_file).name}"

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[PersonBoxes]:
        inputs = []
        for frame in frames:
            image = frame if self.input_format == "RGB" else frame[:, :, ::-1]
            image = self.resize.get_transform(image).apply_image(image)
            tensor = torch.as_tensor(np.ascontiguousarray(image).transpose(2, 0, 1))
            inputs.append({"image": tensor.to(self.device), "height": frame.shape[0],
                           "width": frame.shape[1]})
        return [
            instances_to_person_boxes(
                result["instances"], frame.shape[1], frame.shape[0],
                person_class=self.person_class, threshold=self.score_threshold,
            )
            for frame, result in zip(frames, self.model(inputs))
        ]

    def describe(self) -> str:
        return self._name
