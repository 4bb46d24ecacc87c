"""Export a checkpoint to ONNX (``avadet export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from avadet.engine.export import ExportResult, export_checkpoint

PathLike = Union[str, Path]


def export_model(checkpoint: PathLike, out: PathLike, *, arch: Optional[str] = None,
                 short_side: Optional[int] = None,
                 frames: Optional[int] = None) -> ExportResult:
    """Write the deployment form (BatchNorm folded) of ``checkpoint``'s model as ONNX to
    ``out``: inputs ``clip`` ``(N, 3, frames, H, W)`` and ``boxes`` ``(K, 5)`` in input
    pixels, output ``scores`` ``(K, C)``; the class ids and the preprocessing in the file's
    metadata (:func:`avadet.engine.export.export_checkpoint`). ``frames`` and ``short_side``
    default to the checkpoint's ``data.num_frames`` and ``data.test_short_side``. Needs
    ``onnx`` (``pip install 'avadet[export]'``)."""
    return export_checkpoint(checkpoint, out, arch=arch, short_side=short_side, frames=frames)
