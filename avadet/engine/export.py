"""``avadet export``: a checkpoint of any format -> an ONNX file of its deployment form.

The file's inputs are ``clip`` ``(N, 3, T, H, W)`` (normalised, at the Fast rate; ``T`` fixed
at export, ``N``, ``H``, ``W`` dynamic) and ``boxes`` ``(K, 5)`` in input pixels (``K``
dynamic); its output ``scores`` ``(K, C)``. What a runtime needs to feed it is stored in the
file's metadata (:data:`METADATA_KEYS`): the AVA ids of the score columns and the
preprocessing the checkpoint's authors used.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

from avadet.engine.loading import load_model
from avadet.errors import ConfigError
from avadet.models.export import OnnxRuntimeModel, export_onnx

logger = logging.getLogger(__name__)
PathLike = Union[str, Path]

# data settings written into the file's metadata (JSON values), with "class_ids" and "source".
METADATA_KEYS = ("num_frames", "sampling_rate", "test_short_side", "mean", "std", "box_scaling",
                 "resize_rounding", "clip_center_offset", "test_detection_score")


@dataclass
class ExportResult:
    """The written file and the clip shape it was traced with."""

    path: Path
    frames: int
    height: int
    width: int
    class_ids: list[int]
    source: str


def export_checkpoint(checkpoint: PathLike, out: PathLike, *, arch: Optional[str] = None,
                      short_side: Optional[int] = None, frames: Optional[int] = None,
                      aspect: float = 16 / 9) -> ExportResult:
    """Export the model of ``checkpoint`` (any format :func:`~avadet.engine.loading.load_model`
    reads) to the ONNX file ``out``. ``frames`` (default: the checkpoint's ``data.num_frames``)
    is fixed in the graph; the clip is traced at ``short_side`` (default: the checkpoint's
    ``data.test_short_side``) by ``short_side * aspect``, but any height and width run."""
    loaded = load_model(checkpoint, arch=arch, device="cpu")
    data = loaded.config.data
    frames = frames or data.num_frames
    height = short_side or data.test_short_side or 256
    if frames < 1 or height < 16:
        raise ConfigError(f"export: frames must be >= 1 and the short side >= 16, got "
                          f"{frames} and {height}")
    width = max(height, round(height * aspect))
    metadata = {key: json.dumps(getattr(data, key)) for key in METADATA_KEYS}
    metadata["num_frames"] = json.dumps(frames)
    metadata["class_ids"] = json.dumps(list(loaded.class_ids))
    metadata["source"] = json.dumps(loaded.source)
    path = export_onnx(loaded.model, out, frames=frames, height=height, width=width,
                       metadata=metadata)
    return ExportResult(path, frames, height, width, list(loaded.class_ids), loaded.source)


def onnxruntime_model(model: nn.Module, *, frames: int, short_side: int,
                      aspect: float = 16 / 9) -> OnnxRuntimeModel:
    """``model`` exported to ONNX (a temporary file, gone once loaded) and run by ONNX
    Runtime on the CPU with torch's thread count: the ``avadet detect --backend onnxruntime``
    model, called like the torch one (``(clip, boxes) -> scores``). ``frames``: the clip
    length it will be given; any frame size runs."""
    height = short_side or 256
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "model.onnx", frames=frames, height=height,
                           width=max(height, round(height * aspect)))
        return OnnxRuntimeModel(path, threads=torch.get_num_threads())
