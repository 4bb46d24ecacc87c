"""ONNX export of an AVA action model, and ONNX Runtime inference of the exported file.

The exported graph is the deployment form (:mod:`avadet.models.deploy`: BatchNorm folded,
eval mode) of an :class:`~avadet.models.ActionModel` with the AVA head:

- input ``clip``: ``(N, 3, T, H, W)`` float32, normalised, at the Fast pathway's rate (the
  Slow frames are taken inside the graph); ``N``, ``H`` and ``W`` are dynamic, ``T`` is fixed
  at export (the Slow frame positions depend on it);
- input ``boxes``: ``(K, 5)`` float32 ``[batch_index, x1, y1, x2, y2]`` in input pixels,
  ``K`` dynamic;
- output ``scores``: ``(K, num_classes)`` float32 after the head's activation.

RoIAlign exports as ONNX ``RoiAlign`` (torchvision's symbolic): opset 16 or later carries
torchvision's ``aligned=True`` as ``coordinate_transformation_mode="half_pixel"``, so both
RoIAlign variants export. ``onnx`` is needed to export and ``onnxruntime`` to run the file:
``pip install avadet[export]``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np
import torch
from torch import nn

from avadet.errors import AvadetError, FormatError
from avadet.models.deploy import ScoresOnly, prepare_for_inference
from avadet.models.heads import AVAHead

logger = logging.getLogger(__name__)
PathLike = Union[str, Path]

OPSET = 17  # >= 16 for RoiAlign's coordinate_transformation_mode (aligned=True)
INPUT_NAMES = ("clip", "boxes")
OUTPUT_NAME = "scores"
INSTALL_HINT = "pip install 'avadet[export]' (onnx and onnxruntime)"


def _sample_boxes(height: int, width: int) -> torch.Tensor:
    return torch.tensor([[0.0, 0.1 * width, 0.1 * height, 0.6 * width, 0.9 * height],
                         [0.0, 0.4 * width, 0.2 * height, 0.95 * width, 0.8 * height]])


def export_onnx(model: nn.Module, path: PathLike, *, frames: int, height: int, width: int,
                opset: int = OPSET, metadata: Optional[Mapping[str, str]] = None) -> Path:
    """Write ``model`` (an :class:`~avadet.models.ActionModel` with the AVA head; not
    modified) as ONNX to ``path``, traced on a ``(1, 3, frames, height, width)`` clip (see the
    module doc for the inputs and outputs). ``metadata``: stored as the file's
    ``metadata_props`` (e.g. the class ids and preprocessing). Returns ``path``."""
    try:
        import onnx
    except ImportError:
        raise AvadetError(f"ONNX export needs onnx: {INSTALL_HINT}") from None
    if not isinstance(getattr(model, "head", None), AVAHead):
        raise AvadetError("ONNX export takes a model with the AVA (RoI) head")
    if opset < 16:
        raise AvadetError(f"opset {opset}: RoiAlign with aligned=True needs opset >= 16")
    folded = prepare_for_inference(model, channels_last=False, onednn=False).model.cpu().float()
    clip = torch.zeros(1, 3, frames, height, width)
    boxes = _sample_boxes(height, width)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter's deprecation and tracer notices (shape checks traced as
        # constants: T is fixed at export by design).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ScoresOnly(folded).eval(), (clip, boxes), str(path), dynamo=False,
            input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME], opset_version=opset,
            dynamic_axes={"clip": {0: "batch", 3: "height", 4: "width"},
                          "boxes": {0: "num_boxes"}, OUTPUT_NAME: {0: "num_boxes"}},
        )
    if metadata:
        proto = onnx.load(str(path))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = str(key), str(value)
        onnx.save(proto, str(path))
    logger.info("exported %s (opset %d, clip 1x3x%dx%dx%d)", path, opset, frames, height, width)
    return path


class OnnxRuntimeModel:
    """An exported model run by ONNX Runtime on the CPU, called like the torch model:
    ``model(clip, boxes)`` -> ``(K, num_classes)`` float32 scores (a torch tensor).

    ``clip``: ``(N, 3, T, H, W)`` normalised at the Fast rate with the ``T`` it was exported
    with; ``boxes``: ``(K, 5)`` in input pixels. ``threads``: ONNX Runtime's intra-op threads
    (0: its choice).
    """

    def __init__(self, path: PathLike, *, threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise AvadetError(f"the onnxruntime backend needs onnxruntime: {INSTALL_HINT}") from None
        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for unreadable files
            raise FormatError(self.path, f"not an ONNX model ONNX Runtime can load ({exc})") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        names = [i.name for i in self.session.get_inputs()]
        if names != list(INPUT_NAMES):
            raise FormatError(self.path, f"inputs {names}, expected {list(INPUT_NAMES)} "
                                         "(a file written by avadet export)")

    def eval(self) -> OnnxRuntimeModel:
        return self  # the torch model's interface: always in inference mode

    def __call__(self, clip: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        feeds = {"clip": np.ascontiguousarray(clip.detach().cpu().numpy(), dtype=np.float32),
                 "boxes": np.ascontiguousarray(boxes.detach().cpu().numpy(), dtype=np.float32)}
        (scores,) = self.session.run([OUTPUT_NAME], feeds)
        return torch.from_numpy(scores)
