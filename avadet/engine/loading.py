"""Any supported checkpoint -> a model ready for inference, the AVA ids of its score columns
and the preprocessing its authors ran it with.

The formats (sniffed from the file, never from its name):

========================  ==========================================================================
source                    architecture / preprocessing taken from
========================  ==========================================================================
``avadet``                the checkpoint's ``model_config`` and training config
``pyslowfast`` (.pyth)    its ``cfg`` YAML (missing keys: PySlowFast's defaults); PySlowFast's AVA
                          test path
``caffe2`` (.pkl)         no cfg: a published model named by ``arch`` (a zoo entry or a
                          :data:`~avadet.models.PUBLISHED_MODELS` name); PySlowFast's AVA test path
``pytorchvideo``          its tensor shapes (``slowfast_r50_detection``; others by zoo name);
                          PySlowFast's AVA test path, which trained pytorchvideo's AVA weights
``mmaction2`` (.pth)      its tensor shapes and ``meta`` config (or zoo file name); MMAction2's
                          test pipeline (rounded resize, clip centred a frame later, ImageNet
                          mean/std, per-axis unclipped boxes, 0.9 threshold keeping each
                          keyframe's best box); the 81st (background) column dropped, custom
                          classes kept
========================  ==========================================================================

"Preprocessing" is every setting of ``data`` that changes what the network sees for a given
keyframe and box (:data:`AUTHORED_DATA_KEYS`): frames and stride, normalisation, the test
short side, the box scaling rule, the person-box threshold. A checkpoint decides them; a
user's ``key=value`` override wins (and is logged), a config file's value does not.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

from avadet.config import Config, DataConfig, ModelConfig
from avadet.errors import AvadetError, CheckpointError, ConfigError, one_line
from avadet.models import build_model, published_config
from avadet.models.build import config_from_pyslowfast_cfg, pyslowfast_data_settings
from avadet.models.checkpoint import (
    LoadReport,
    check_model_size,
    load_checkpoint,
    read_checkpoint,
)
from avadet.models.checkpoint_keys import guess_style, state_dict_of
from avadet.models.checkpoint_mmaction import mmaction_settings
from avadet.models.zoo import ZooEntry, find_entry, resolve_checkpoint
from avadet.models.zoo import model_config as zoo_model_config

logger = logging.getLogger(__name__)
PathLike = Union[str, Path]

# AVA's 80 action ids: PySlowFast, Caffe2 and pytorchvideo models score all of them, column j
# being id j + 1 (PySlowFast's ava_helper subtracts 1 from the file's ids).
AVA_CLASS_IDS = list(range(1, 81))

# PySlowFast's AVA test path, per setting (slowfast/datasets/ava_dataset.py, "test" split):
# cv2 INTER_LINEAR resize of the short side to DATA.TEST_CROP_SIZE, all four box
# coordinates scaled by one factor (cv2_transform.scale_boxes), RGB, DATA.MEAN/STD.
_PYSLOWFAST_BOXES = {"box_scaling": "long_side"}

# What the published Caffe2 models were run with: PySlowFast's configs/AVA/c2/*.yaml.
_C2_DATA: dict[str, dict[str, Any]] = {
    "slowfast_32x2_r50": dict(num_frames=32, sampling_rate=2, test_short_side=256,
                              test_detection_score=0.8),
    "slowfast_32x2_r101_50_50": dict(num_frames=32, sampling_rate=2, test_short_side=256,
                                     test_detection_score=0.8),
    "slow_8x8_r50": dict(num_frames=4, sampling_rate=16, test_short_side=256,
                         test_detection_score=0.9),
    # pytorchvideo's SLOWFAST_8x8_R50_DETECTION: PySlowFast's SLOWFAST_32x2_R50 c2 recipe.
    "slowfast_r50_detection": dict(num_frames=32, sampling_rate=2, test_short_side=256,
                                   test_detection_score=0.8),
}
_PYSLOWFAST_NORMALISATION = dict(mean=[0.45, 0.45, 0.45], std=[0.225, 0.225, 0.225])


@dataclass
class LoadedModel:
    """A checkpoint ready to run: ``model`` (eval mode), ``config`` (its architecture and the
    data settings its authors used, on avadet's defaults elsewhere), ``class_ids`` (column j
    of the scores is AVA action id ``class_ids[j]``), ``source`` (the format) and
    ``authored`` (the ``data`` fields the checkpoint decides)."""

    model: nn.Module
    config: Config
    class_ids: list[int]
    source: str
    path: Path
    authored: tuple[str, ...]
    report: Optional[LoadReport] = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: the source and the preprocessing it brings."""
        d = self.config.data
        scaling = {"per_axis": "x and y by their own ratios",
                   "long_side": "one factor (PySlowFast's scale_boxes)"}
        centre = f" centred {d.clip_center_offset:+d} frame" if d.clip_center_offset else ""
        best = " (each keyframe's best kept)" if d.test_keep_best_detection else ""
        clipped = ", clipped to the last pixel" if d.box_clipping == "last_pixel" else ", unclipped"
        return (f"{self.path.name}: {self.source} checkpoint, {len(self.class_ids)} classes; "
                f"preprocessing of {_AUTHORS[self.source]}: {d.num_frames} frames at stride "
                f"{d.sampling_rate}{centre}, short side {d.test_short_side} (cv2 bilinear, long "
                f"side {d.resize_rounding}ed), boxes scaled by "
                f"{scaling.get(d.box_scaling, d.box_scaling)}{clipped}, RGB, mean {d.mean}, "
                f"std {d.std}, "
                f"person boxes >= {d.test_detection_score}{best}")


_AUTHORS = {
    "avadet": "avadet's training (the checkpoint's config)",
    "pyslowfast": "PySlowFast's AVA test path",
    "caffe2": "PySlowFast's AVA test path (Caffe2 models are run by PySlowFast)",
    "pytorchvideo": "PySlowFast's AVA test path (which trained pytorchvideo's AVA weights)",
    "mmaction2": "MMAction2's AVA test pipeline",
}


# The data settings a checkpoint decides (see the module docstring).
AUTHORED_DATA_KEYS = ("num_frames", "sampling_rate", "mean", "std", "box_scaling",
                      "test_short_side", "test_detection_score", "resize_rounding",
                      "clip_center_offset", "test_keep_best_detection", "box_clipping")


def load_model(checkpoint: PathLike, *, arch: Optional[str] = None,
               device: Union[str, torch.device] = "cpu", download: bool = True) -> LoadedModel:
    """Load ``checkpoint`` in any supported format (see the module docstring).

    ``checkpoint``: a file, or the name of a published model (:data:`~avadet.models.ZOO`,
    ``avadet models``), resolved to the torch hub cache and downloaded there if absent
    (``download``; offline, one line says which URL to fetch and where to put it). A zoo
    entry decides the architecture and the preprocessing its authors published.
    ``arch``: the architecture of a Caffe2 pickle (which records none): a zoo name or a
    published builder name; ignored with a warning for formats that carry their own.
    Raises :class:`~avadet.errors.CheckpointError` (one line, naming the file and the keys)
    for a file that is none of them or does not fit.
    """
    from avadet.engine.checkpoint import load_trained_model

    resolved = resolve_checkpoint(checkpoint, download=download)
    path, entry = resolved.path, resolved.entry
    if entry is None and arch:
        entry = find_entry(arch)  # a zoo file fetched by hand, named by --arch
    kind, obj = read_checkpoint(path)
    if kind == "torch" and isinstance(obj, dict) and "avadet_checkpoint" in obj:
        del obj  # load_trained_model verifies the file itself (checksum, fields)
        model, cfg, class_ids = load_trained_model(path, device=device)
        _unused_arch(arch, "avadet", path)
        return LoadedModel(model, cfg, class_ids, "avadet", path, AUTHORED_DATA_KEYS)
    if kind == "caffe2":
        source = "caffe2"
        if entry is not None:
            model_cfg, data = _from_entry(entry, path, _caffe2_shapes(obj, path))
        elif arch:
            model_cfg, data = _published(arch, path, obj)
        else:
            raise CheckpointError(
                f"{path}: a Caffe2 pickle records no architecture; name it with --arch "
                f"(a zoo name, or one of {', '.join(_C2_DATA)})")
    elif isinstance(obj, dict) and isinstance(obj.get("cfg"), str):
        _unused_arch(arch, "pyslowfast", path)
        model_cfg, data = _pyslowfast(obj["cfg"], path), _pyslowfast_data(obj["cfg"], path)
        source = "pyslowfast"
    else:
        tensors = state_dict_of(obj, str(path))
        source = guess_style(list(tensors))
        if source == "mmaction2":
            _unused_arch(arch, "mmaction2", path)
            model_cfg, settings, class_ids = mmaction_settings(obj, path)
            # The dataset's own description (fps, segment, classes) stays the user's.
            data = {k: v for k, v in settings.items() if k in AUTHORED_DATA_KEYS}
            return _finish(model_cfg, data, class_ids, source, path, device)
        if source != "pytorchvideo":
            raise CheckpointError(
                f"{path}: {source}-style weights without a config (an avadet checkpoint has "
                "'avadet_checkpoint', a PySlowFast one 'cfg')")
        if entry is not None:
            model_cfg, data = _from_entry(entry, path, _pytorchvideo_shapes(tensors))
        else:
            _unused_arch(arch, "pytorchvideo", path)
            model_cfg, data = _pytorchvideo(tensors, path)
    if model_cfg.num_classes != len(AVA_CLASS_IDS):
        raise CheckpointError(
            f"{path}: {model_cfg.num_classes} score columns; {source} AVA models score AVA's "
            f"80 actions, so the ids of these columns are unknown")
    return _finish(model_cfg, data, list(AVA_CLASS_IDS), source, path, device)


def _finish(model_cfg: ModelConfig, data: dict[str, Any], class_ids: list[int], source: str,
            path: Path, device: Union[str, torch.device]) -> LoadedModel:
    """Build ``model_cfg``, load ``path`` into it (every tensor must fit), and package it."""
    check_model_size(model_cfg, str(path))
    model = build_model(model_cfg)
    report = load_checkpoint(model, path, source=source)
    cfg = Config(model=model_cfg, data=dataclasses.replace(DataConfig(), **data))
    return LoadedModel(model.to(device).eval(), cfg, class_ids, source, path,
                       AUTHORED_DATA_KEYS, report)


def _from_entry(entry: ZooEntry, path: Path,
                shapes: dict[str, int]) -> tuple[ModelConfig, dict[str, Any]]:
    """A zoo entry's architecture (at the file's width and class count) and preprocessing."""
    try:
        return zoo_model_config(entry, **shapes), entry.data_settings()
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {one_line(exc)}") from None


def _caffe2_shapes(blobs: dict[str, Any], path: Path) -> dict[str, int]:
    stem, pred = blobs.get("conv1_w"), blobs.get("pred_w")
    if getattr(stem, "ndim", 0) != 5 or getattr(pred, "ndim", 0) < 2:
        raise CheckpointError(f"{path}: a Caffe2 pickle without the blobs conv1_w (5-D) and "
                              "pred_w of a PySlowFast AVA model")
    return {"width_per_group": int(stem.shape[0]), "num_classes": int(pred.shape[0])}


def _pytorchvideo_shapes(tensors: dict[str, torch.Tensor]) -> dict[str, int]:
    shapes = {}
    for key, value in tensors.items():
        if re.fullmatch(r"(model\.)?blocks\.0\.(multipathway_blocks\.0\.)?conv\.weight", key):
            shapes["width_per_group"] = int(value.shape[0])
        elif key == "detection_head.proj.weight":
            shapes["num_classes"] = int(value.shape[0])
    return shapes


def _unused_arch(arch: Optional[str], source: str, path: Path) -> None:
    if arch:
        logger.warning("%s: a %s checkpoint records its architecture; --arch %s is not used",
                       path, source, arch)


def _published(arch: str, path: Path, blobs: dict[str, Any]) -> tuple[ModelConfig, dict[str, Any]]:
    """The published architecture ``arch`` at the width and class count of the Caffe2
    ``blobs`` (a narrow copy such as the tests' has the same layers with fewer channels)."""
    if arch not in _C2_DATA:
        raise CheckpointError(f"{path}: unknown architecture {arch!r}; "
                              f"one of {', '.join(_C2_DATA)}")
    model_cfg = published_config(arch, **_caffe2_shapes(blobs, path))
    return model_cfg, {**_C2_DATA[arch], **_PYSLOWFAST_NORMALISATION, **_PYSLOWFAST_BOXES}


def _pyslowfast(cfg_text: str, path: Path) -> ModelConfig:
    try:
        return config_from_pyslowfast_cfg(cfg_text)
    except (AvadetError, TypeError, ValueError, AttributeError, KeyError) as exc:
        raise CheckpointError(f"{path}: its PySlowFast cfg does not load: {one_line(exc)}") from None


def _pyslowfast_data(cfg_text: str, path: Path) -> dict[str, Any]:
    try:
        return pyslowfast_data_settings(cfg_text)
    except (AvadetError, TypeError, ValueError, AttributeError, KeyError) as exc:
        raise CheckpointError(f"{path}: its PySlowFast cfg: {one_line(exc)}") from None


def _pytorchvideo(tensors: dict[str, torch.Tensor], path: Path) -> tuple[ModelConfig, dict[str, Any]]:
    """The architecture of a pytorchvideo detection state dict, from its shapes: SlowFast R50
    (``slowfast_r50_detection``'s layout), the width and the number of classes."""
    # pytorchvideo's detection wrapper prefixes the backbone with "model." (a bare backbone
    # state dict has none).
    tensors = {k[len("model."):] if k.startswith("model.") else k: v for k, v in tensors.items()}
    keys = list(tensors)
    if not any(k.startswith("detection_head.") for k in keys):
        raise CheckpointError(f"{path}: a pytorchvideo model without a detection head "
                              "(Kinetics weights belong in train.init_checkpoint)")
    stem = "blocks.0.multipathway_blocks.0.conv.weight"
    res4 = {int(m[1]) for k in keys
            if (m := re.match(r"blocks\.3\.multipathway_blocks\.0\.res_blocks\.(\d+)\.", k))}
    depth = 50 if len(res4) == 6 else None
    if stem not in tensors or depth is None or "detection_head.proj.weight" not in tensors:
        raise CheckpointError(
            f"{path}: not a pytorchvideo SlowFast detection model like slowfast_r50_detection "
            f"(stem {stem!r}, {len(res4)} res4 blocks); its other AVA models are not supported")
    name = "slowfast_r50_detection"
    overrides = dict(width_per_group=int(tensors[stem].shape[0]),
                     num_classes=int(tensors["detection_head.proj.weight"].shape[0]))
    return published_config(name, **overrides), {
        **_C2_DATA[name], **_PYSLOWFAST_NORMALISATION, **_PYSLOWFAST_BOXES}
