"""Load weights from PySlowFast (PyTorch ``.pyth`` and Caffe2 pickles), pytorchvideo,
MMAction2 and avadet checkpoints into avadet's models.

The format is sniffed from the bytes, not the file name: a zip archive or a legacy torch
pickle goes through ``torch.load(weights_only=True)``; any other pickle goes through a
restricted unpickler that only rebuilds numpy arrays (Caffe2 ``{"blobs": {name: array}}``
files), so a crafted pickle cannot run code. Key names are then mapped to avadet's, and every
checkpoint tensor must find a model tensor of the same shape (and the reverse) or the load
fails with :class:`~avadet.errors.CheckpointError` naming the keys.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from torch import nn

from avadet.config import ModelConfig
from avadet.errors import AvadetError, CheckpointError, one_line
from avadet.io.safe_pickle import restricted_unpickle
from avadet.models.checkpoint_keys import (
    HEAD_PREFIX,
    KEY_MAPS,
    caffe2_ignored,
    clip_list,
    guess_style,
    state_dict_of,
)
from avadet.models.checkpoint_mmaction import drop_background
from avadet.models.checkpoint_mmaction import ignored_key as mmaction_ignored

SOURCES = ("auto", "avadet", "pyslowfast", "caffe2", "pytorchvideo", "mmaction2")
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class LoadReport:
    """What a load did. Keys are avadet names; ``unexpected`` keeps the checkpoint's own name
    where it has no avadet counterpart."""

    path: str
    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    # (key, shape in the checkpoint, shape in the model)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    # Head tensors of the checkpoint dropped by backbone_only=True, and the model's head
    # tensors left at their fresh initialisation.
    skipped: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # bookkeeping blobs (model_iter, momenta)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = [f"{self.path}: {self.source} checkpoint, {len(self.loaded)} tensors loaded"]
        if self.fresh:
            parts.append(f"{len(self.fresh)} head tensors left fresh")
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                parts.append(f"{len(keys)} {name}: {clip_list(keys)}")
        if self.mismatched:
            shown = [f"{k} {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched]
            parts.append(f"{len(shown)} shape mismatches: {clip_list(shown)}")
        return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Reading files


def read_checkpoint(path: Union[str, Path]) -> tuple[str, Any]:
    """Read a checkpoint file. Returns ``("torch", object)`` or ``("caffe2", {name: array})``."""
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if data[:4] == _ZIP_MAGIC:
        return "torch", _torch_load(data, path)
    if not data[:1] == b"\x80":
        raise CheckpointError(f"{path}: neither a torch checkpoint nor a pickle")
    first = restricted_unpickle(data, path, CheckpointError)  # only the first pickle of the stream
    if isinstance(first, int) and first == _TORCH_LEGACY_MAGIC:
        return "torch", _torch_load(data, path)
    if isinstance(first, dict):
        blobs = first.get("blobs", first)
        if isinstance(blobs, dict) and all(isinstance(k, str) for k in blobs):
            return "caffe2", blobs
    raise CheckpointError(f"{path}: a pickle without a 'blobs' dict of arrays")


def _torch_load(data: bytes, path: str) -> Any:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: torch.load(weights_only=True) failed: {one_line(exc)}") from None


# ---------------------------------------------------------------------------------------------
# Loading


def load_checkpoint(
    model: nn.Module,
    path: Union[str, Path],
    *,
    source: str = "auto",
    backbone_only: bool = False,
    strict: bool = True,
) -> LoadReport:
    """Load ``path`` into ``model`` (an :class:`~avadet.models.ActionModel`) in place.

    ``source``: "auto" (sniff the bytes and the key names), "avadet", "pyslowfast" (``.pyth``
    with ``model_state``), "caffe2" (``{"blobs": ...}`` pickles), "pytorchvideo" (state dicts of
    ``pytorchvideo.models.hub`` models), "mmaction2" (``{"meta", "state_dict"}`` of MMAction2's
    AVA detectors; the background column 0 of ``fc_cls`` is dropped when the checkpoint has one
    output more than the model, and listed in ``ignored``; build the model with
    :func:`~avadet.models.checkpoint_mmaction.mmaction_settings`). ``backbone_only=True`` ignores the checkpoint's head
    and leaves the model's fresh (Kinetics -> AVA initialisation); the report lists both.
    With ``strict=True`` any missing, unexpected or shape-mismatched tensor raises
    :class:`CheckpointError` listing the keys and nothing is loaded; with ``strict=False`` the
    matching tensors are loaded and the rest is reported (and warned about), never copied.
    """
    if source not in SOURCES:
        raise CheckpointError(f"source must be one of {SOURCES}, got {source!r}")
    path = str(path)
    kind, obj = read_checkpoint(path)
    ignored: list[str] = []
    if kind == "caffe2":
        if source not in ("auto", "caffe2"):
            raise CheckpointError(f"{path}: is a Caffe2 pickle, not a {source} checkpoint")
        source = "caffe2"
        tensors: dict[str, Any] = {}
        for key, value in obj.items():
            if caffe2_ignored(key):
                ignored.append(key)
            elif not isinstance(value, np.ndarray):
                raise CheckpointError(f"{path}: blob {key!r} is not an array")
            else:
                tensors[key] = torch.from_numpy(np.array(value, copy=True))
    else:
        if source == "caffe2":
            raise CheckpointError(f"{path}: is a torch checkpoint, not a Caffe2 pickle")
        tensors = state_dict_of(obj, path)
        if source == "auto":
            source = guess_style(list(tensors))
        if source == "mmaction2":
            ignored = [k for k in tensors if mmaction_ignored(k)]
            tensors = {k: v for k, v in tensors.items() if k not in ignored}
            own = model.state_dict().get("head.projection.weight")
            if own is not None and not backbone_only:
                ignored += drop_background(tensors, int(own.shape[0]), path)
    report = LoadReport(path=path, source=source, ignored=ignored)
    _apply(model, tensors, KEY_MAPS[source], report, backbone_only=backbone_only, strict=strict)
    return report


def _apply(
    model: nn.Module,
    tensors: dict[str, torch.Tensor],
    key_map: Callable[[str], Optional[str]],
    report: LoadReport,
    *,
    backbone_only: bool,
    strict: bool,
) -> None:
    own = model.state_dict()
    matched: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        name = key_map(key)
        if name is None or name not in own:
            if key.endswith("num_batches_tracked"):
                continue  # bookkeeping, not a weight
            shown = key if name is None or name == key else f"{key} (-> {name})"
            report.unexpected.append(shown)
            continue
        if backbone_only and name.startswith(HEAD_PREFIX):
            report.skipped.append(name)
            continue
        if name in matched:
            report.unexpected.append(f"{key} (duplicate of {name})")
            continue
        target = own[name]
        if tuple(value.shape) != tuple(target.shape):
            if name == "head.projection.weight" and value.numel() == target.numel():
                value = value.reshape(target.shape)  # Caffe2 heads store FC weights as convs
            else:
                report.mismatched.append((name, tuple(value.shape), tuple(target.shape)))
                continue
        matched[name] = value
    for name in own:
        if name in matched or name.endswith("num_batches_tracked"):
            continue
        if backbone_only and name.startswith(HEAD_PREFIX):
            report.fresh.append(name)
        else:
            report.missing.append(name)
    if strict and not report.ok:
        raise CheckpointError(f"checkpoint does not fit the model: {report.summary()}")
    if not report.ok:
        warnings.warn(report.summary(), stacklevel=3)
    merged = dict(own)
    for name, value in matched.items():
        merged[name] = value.to(dtype=own[name].dtype)
    model.load_state_dict(merged, strict=True)
    report.loaded = sorted(matched)


# The largest model a checkpoint or a config may ask for, in parameters: about twice
# SlowFast 32x2 R101 50_50 (59,342,488 parameters with 80 classes), the largest published
# model. A crafted config (width_per_group 100000, num_classes 10**9) would otherwise allocate
# terabytes before any weight is checked.
MAX_MODEL_PARAMETERS = 120_000_000
# Structure settings that make modules, not tensors: counted before the (cheap) meta build.
_MAX_LIST_ITEMS = 256


def count_model_parameters(cfg: ModelConfig) -> int:
    """The number of parameters ``build_model(cfg)`` would allocate, counted on the meta
    device (shapes only, no memory, no draw from the random generators)."""
    from avadet.models.build import build_model

    with torch.device("meta"):
        model = build_model(cfg)
    return sum(p.numel() for p in model.parameters())


def check_model_size(
    cfg: ModelConfig, where: str, error: type[AvadetError] = CheckpointError
) -> int:
    """Raise ``error`` (one line starting with ``where``) if ``cfg`` describes a model of more
    than :data:`MAX_MODEL_PARAMETERS` parameters, or one that cannot be built; else return
    its parameter count."""
    lists = [v for v in dataclasses.astuple(cfg) if isinstance(v, list)]
    items = sum(len(v) + sum(len(x) for x in v if isinstance(x, list)) for v in lists)
    if items > _MAX_LIST_ITEMS:
        raise error(f"{where}: model config lists {items} kernel/non-local entries (at most {_MAX_LIST_ITEMS})")
    try:
        count = count_model_parameters(cfg)
    except AvadetError as exc:
        raise error(f"{where}: {one_line(exc)}") from None
    except (ValueError, TypeError, RuntimeError, OverflowError, IndexError, MemoryError) as exc:
        raise error(f"{where}: model config cannot be built: {one_line(exc)}") from None
    if count > MAX_MODEL_PARAMETERS:
        raise error(
            f"{where}: model config asks for {count:,} parameters, more than avadet builds "
            f"({MAX_MODEL_PARAMETERS:,}, about 2x SlowFast R101 50_50); refusing to build it"
        )
    return count


def model_config_from_checkpoint(path: Union[str, Path]) -> ModelConfig:
    """The architecture a checkpoint records: PySlowFast's ``cfg`` YAML or avadet's
    ``model_config`` dict. Caffe2 pickles and pytorchvideo state dicts record none."""
    from avadet.config import _from_dict
    from avadet.models.build import config_from_pyslowfast_cfg

    kind, obj = read_checkpoint(path)
    if kind == "torch" and isinstance(obj, dict):
        # A crafted config's wrong types surface as TypeError/ValueError deep in the readers.
        try:
            if isinstance(obj.get("cfg"), str):
                return config_from_pyslowfast_cfg(obj["cfg"])
            if isinstance(obj.get("model_config"), dict):
                return _from_dict(ModelConfig, obj["model_config"], "model_config")
        except (AvadetError, TypeError, ValueError, AttributeError, KeyError) as exc:
            raise CheckpointError(f"{path}: its architecture does not load: {one_line(exc)}") from None
    raise CheckpointError(f"{path}: records no architecture (no PySlowFast 'cfg' / 'model_config')")


def build_model_from_checkpoint(
    path: Union[str, Path], *, strict: bool = True, **overrides: Any
) -> tuple[nn.Module, LoadReport]:
    """Build the architecture a checkpoint records (PySlowFast ``cfg`` or avadet
    ``model_config``), load its weights, and return the model and the report.
    ``overrides`` replace ModelConfig fields that do not change tensor shapes (e.g.
    ``roi_aligned``, ``head_activation``)."""
    from avadet.models.build import build_model

    cfg = model_config_from_checkpoint(path)
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)
    check_model_size(cfg, str(path))  # before anything is allocated
    model = build_model(cfg)
    report = load_checkpoint(model, path, strict=strict)
    return model, report
