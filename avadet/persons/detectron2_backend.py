"""detectron2's Faster R-CNN as the person detector (the one PySlowFast's demo uses), when
detectron2 is installed.

Built from a detectron2 config file (e.g. model zoo
``COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml``) and its weights file, used like detectron2's
``DefaultPredictor``: each frame resized so its short side is ``INPUT.MIN_SIZE_TEST`` (long
side capped at ``INPUT.MAX_SIZE_TEST``), channels in ``INPUT.FORMAT`` order, boxes returned in
pixels of the original frame. COCO's "person" is class 0 in detectron2's contiguous ids.

Neither file can run code: detectron2 loads configs with an unsafe YAML loader by default and
``.pkl`` weights with a plain ``pickle.load``, so the config (and every local ``_BASE_`` it
names) is read with ``yaml.safe_load`` first and merged with ``allow_unsafe=False``, and the
weights are read here (``.pkl`` by :mod:`avadet.persons.safe_pickle`, anything else by
``torch.load(weights_only=True)``) and handed to detectron2's checkpointer already loaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import yaml

from avadet.errors import AvadetError
from avadet.persons.base import BatchedPersonDetector, PersonBoxes, normalise_boxes
from avadet.persons.safe_pickle import load_weights_pickle

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


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def check_config_is_safe(path: Union[str, Path], _seen: Optional[set] = None) -> None:
    """Read ``path`` and the local ``_BASE_`` files it names with ``yaml.safe_load``: a tag
    such as ``!!python/object`` is refused here, before detectron2 sees the file."""
    path = Path(path)
    seen = _seen if _seen is not None else set()
    if path.resolve() in seen:
        raise AvadetError(f"{path}: detectron2 config includes itself through _BASE_")
    seen.add(path.resolve())
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise AvadetError(f"{path}: not a safe detectron2 config (only plain YAML is read): "
                          f"{_one_line(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AvadetError(f"{path}: cannot read detectron2 config: {_one_line(exc)}") from None
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise AvadetError(f"{path}: a detectron2 config is a YAML mapping")
    base = doc.get("_BASE_")
    if isinstance(base, str) and "://" not in base:
        base_path = Path(base).expanduser()
        if not base_path.is_absolute():
            base_path = path.parent / base_path
        if base_path.is_file():
            check_config_is_safe(base_path, seen)


def load_weights_file(path: Union[str, Path]) -> dict:
    """Weights in the form detectron2's ``DetectionCheckpointer._load_file`` returns, read
    without running code: detectron2 model zoo ``.pkl`` (``model`` and ``__author__``) as it
    is; a Detectron (Caffe2) ``.pkl`` as its blobs less the ``_momentum`` ones, marked for
    detectron2's name matching; other files by ``torch.load(weights_only=True)``."""
    path = Path(path)
    if path.suffix == ".pkl":
        data = load_weights_pickle(path)
        if not isinstance(data, dict):
            raise AvadetError(f"{path}: a detectron2 weights pickle holds a dict")
        if "model" in data and "__author__" in data:
            return data
        blobs = data.get("blobs", data)
        if not isinstance(blobs, dict):
            raise AvadetError(f"{path}: the weights pickle's blobs are not a dict")
        blobs = {k: v for k, v in blobs.items() if not str(k).endswith("_momentum")}
        return {"model": blobs, "__author__": "Caffe2", "matching_heuristics": True}
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise AvadetError(f"{path}: cannot load detectron2 weights safely: "
                          f"{_one_line(exc)}") from None
    if not isinstance(loaded, dict):
        raise AvadetError(f"{path}: detectron2 weights hold a dict of tensors")
    return loaded if "model" in loaded else {"model": loaded}


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
        check_config_is_safe(config_file)
        cfg = config.get_cfg()
        try:
            cfg.merge_from_file(str(config_file), allow_unsafe=False)
            cfg.merge_from_list(list(opts or []))
        except (yaml.YAMLError, KeyError, ValueError, TypeError, AssertionError,
                OSError) as exc:
            raise AvadetError(f"{config_file}: detectron2 cannot use this config: "
                              f"{_one_line(exc)}") from None
        cfg.MODEL.WEIGHTS = str(weights)
        cfg.MODEL.DEVICE = str(torch.device(device))
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = min(
            float(cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST), float(score_threshold)
        )
        cfg.freeze()
        self.model = modeling.build_model(cfg).eval()
        checkpointer = checkpoint.DetectionCheckpointer(self.model)
        # detectron2's own reader would pickle.load a .pkl: it gets the safely read weights.
        checkpointer._load_file = load_weights_file
        try:
            checkpointer.load(cfg.MODEL.WEIGHTS)
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise AvadetError(f"{weights}: detectron2 cannot use these weights: "
                              f"{_one_line(exc)}") from None
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
