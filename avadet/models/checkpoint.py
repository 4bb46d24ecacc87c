"""Load weights from PySlowFast (PyTorch ``.pyth`` and Caffe2 pickles), pytorchvideo and
avadet checkpoints into avadet's models.

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
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from torch import nn

from avadet.config import ModelConfig
from avadet.errors import AvadetError, CheckpointError

SOURCES = ("auto", "avadet", "pyslowfast", "caffe2", "pytorchvideo")
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_ZIP_MAGIC = b"PK\x03\x04"
# The head: left fresh by backbone_only=True (Kinetics -> AVA initialisation).
_HEAD_PREFIX = "head."


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
                parts.append(f"{len(keys)} {name}: {_clip(keys)}")
        if self.mismatched:
            shown = [f"{k} {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched]
            parts.append(f"{len(shown)} shape mismatches: {_clip(shown)}")
        return "; ".join(parts)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``exc``'s message on one line (torch's, NumPy's and the config reader's can span
    several), cut at ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clip(items: list[str], limit: int = 12) -> str:
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# ---------------------------------------------------------------------------------------------
# Reading files


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild numeric numpy arrays, their dtypes and scalars.

    NumPy's own reconstructors trust the pickle: an object dtype rebuilds arbitrary Python
    objects, and a data buffer shorter than the shape needs makes NumPy read past its end
    (a crash, not an error). So every numpy global resolves to a stand-in of this module
    instead: dtypes are limited to the numeric ones torch can hold, and each array's byte
    length is checked against its shape and dtype before any array exists. An array is only
    as large as the bytes the file holds, so no shape can make it allocate more.
    """

    def find_class(self, module: str, name: str) -> Any:
        found = _SAFE_GLOBALS.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}': only numpy arrays are allowed"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent ids in a plain pickle")


# The numeric dtypes a Caffe2 blob may have: what torch.from_numpy accepts.
_ARRAY_DTYPES = frozenset(
    np.dtype(name)
    for name in ("bool", "int8", "int16", "int32", "int64", "uint8",
                 "float16", "float32", "float64", "complex64", "complex128")
)
_DTYPE_NAME = re.compile(r"[<>|=]?(?:b1|\?|[iu][1248]|f[248]|c(?:8|16))")
_MAX_NDIM = 32


def _text(value: Any, what: str) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin1")
    if not isinstance(value, str):
        raise pickle.UnpicklingError(f"{what} is a {type(value).__name__}, not text")
    return value


def _raw_bytes(value: Any, what: str) -> bytes:
    # Python-2 pickles read with encoding="latin1" hold the bytes as a latin-1 str.
    if isinstance(value, str):
        return value.encode("latin1")
    if not isinstance(value, bytes):
        raise pickle.UnpicklingError(f"{what} is a {type(value).__name__}, not bytes")
    return value


class _PickledDtype:
    """Stand-in for ``numpy.dtype(name, align, copy)`` plus its BUILD state (byte order)."""

    def __init__(self, name: Any, align: Any = False, copy: Any = False) -> None:
        text = _text(name, "a dtype name")
        if not _DTYPE_NAME.fullmatch(text):
            raise pickle.UnpicklingError(f"refusing dtype {text[:40]!r}: only numeric arrays are allowed")
        self.dtype = np.dtype(text)
        if self.dtype not in _ARRAY_DTYPES and self.dtype.newbyteorder("=") not in _ARRAY_DTYPES:
            raise pickle.UnpicklingError(f"refusing dtype {text!r}: not a dtype torch can hold")

    def __setstate__(self, state: Any) -> None:
        # numpy's state: (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise pickle.UnpicklingError("invalid dtype state")
        if any(part is not None for part in state[2:5]):
            raise pickle.UnpicklingError("refusing a structured or subarray dtype")
        order = _text(state[1], "a dtype byte order")
        if order not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError(f"invalid dtype byte order {order[:8]!r}")
        if order != "|":
            self.dtype = self.dtype.newbyteorder(order)


def _dtype_of(value: Any) -> np.dtype:
    if not isinstance(value, _PickledDtype):
        raise pickle.UnpicklingError(f"an array's dtype is a {type(value).__name__}, not a dtype")
    return value.dtype


class _NdarrayClass:
    """Stand-in for ``numpy.ndarray`` as an argument of ``_reconstruct``; never called."""


class _PickledArray:
    """Stand-in for ``numpy._core.multiarray._reconstruct(ndarray, ...)``: the array itself
    is made in ``__setstate__`` (pickle's BUILD), after its shape, dtype and bytes agree."""

    def __init__(self, cls: Any, shape: Any = None, typecode: Any = None) -> None:
        if cls is not _NdarrayClass:
            raise pickle.UnpicklingError("_reconstruct of something other than numpy.ndarray")
        self.array: Optional[np.ndarray] = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("invalid array state")
        shape, dtype_spec, fortran, raw = state[-4:]
        dtype = _dtype_of(dtype_spec)
        if not isinstance(shape, tuple) or len(shape) > _MAX_NDIM or not all(
            type(n) is int and n >= 0 for n in shape
        ):
            raise pickle.UnpicklingError(f"invalid array shape {str(shape)[:60]}")
        if not isinstance(fortran, (bool, int)):
            raise pickle.UnpicklingError("invalid array order flag")
        data = _raw_bytes(raw, "an array's data")
        # Python ints: the product of a crafted shape cannot overflow.
        count = 1
        for n in shape:
            count *= n
        if count * dtype.itemsize != len(data):
            raise pickle.UnpicklingError(
                f"array of shape {shape} and dtype {dtype.str} needs {count * dtype.itemsize} "
                f"bytes, the file holds {len(data)}"
            )
        flat = np.frombuffer(data, dtype=dtype) if count else np.zeros(0, dtype=dtype)
        # Native byte order: torch.from_numpy refuses the other one.
        flat = flat.astype(dtype.newbyteorder("="), copy=True)
        self.array = flat.reshape(shape, order="F" if fortran else "C")


def _pickled_scalar(dtype_spec: Any, raw: Any) -> Any:
    """Stand-in for ``numpy._core.multiarray.scalar(dtype, bytes)``."""
    dtype = _dtype_of(dtype_spec)
    data = _raw_bytes(raw, "a scalar's data")
    if len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"a {dtype.str} scalar of {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype)[0]


def _latin1_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """Stand-in for ``_codecs.encode``: protocol 2 stores bytes as latin-1 text."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("refusing _codecs.encode other than str -> latin1")
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """Stand-in for ``bytes()``: protocol 2 pickles ``b""`` (an empty array's data) so."""
    if args:
        raise pickle.UnpicklingError("refusing bytes() with arguments")
    return b""


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
    **{(m, "_reconstruct"): _PickledArray for m in ("numpy._core.multiarray", "numpy.core.multiarray")},
    **{(m, "scalar"): _pickled_scalar for m in ("numpy._core.multiarray", "numpy.core.multiarray")},
    ("numpy", "ndarray"): _NdarrayClass,
    ("numpy", "dtype"): _PickledDtype,
    ("_codecs", "encode"): _latin1_encode,
}


def _resolved(value: Any) -> Any:
    """``value`` with a finished stand-in array replaced by the array (others stay as they
    are and are refused as "not an array" by their reader)."""
    if isinstance(value, _PickledArray) and getattr(value, "array", None) is not None:
        return value.array
    return value


def _resolve_arrays(obj: Any) -> Any:
    # Only where read_checkpoint looks: the top level and its "blobs" dict.
    obj = _resolved(obj)
    if isinstance(obj, dict):
        for key, value in list(obj.items()):
            obj[key] = _resolved(value)
        blobs = obj.get("blobs")
        if isinstance(blobs, dict):
            for key, value in list(blobs.items()):
                blobs[key] = _resolved(value)
    return obj


def _restricted_unpickle(data: bytes, path: str) -> Any:
    last: Optional[Exception] = None
    for encoding in ("ASCII", "latin1"):  # latin1 for Python-2 pickles of numpy arrays
        try:
            return _resolve_arrays(_ArrayUnpickler(io.BytesIO(data), encoding=encoding).load())
        except UnicodeDecodeError as exc:
            last = exc
        except pickle.UnpicklingError as exc:
            raise CheckpointError(f"{path}: unsafe or invalid pickle: {one_line(exc)}") from None
        except Exception as exc:  # truncated or corrupt files raise many kinds of errors
            raise CheckpointError(f"{path}: cannot read pickle: {one_line(exc)}") from None
    raise CheckpointError(f"{path}: cannot decode pickle: {one_line(last) if last else last}")


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
    first = _restricted_unpickle(data, path)  # only the first pickle of the stream
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
# Key maps: checkpoint name -> avadet name (None: not a model tensor of ours)

# Each format's map is a table of rules, (pattern on the whole key, avadet name of the match),
# tried in order; the first pattern that matches names the tensor.
_Rule = tuple["re.Pattern[str]", Callable[["re.Match[str]"], str]]

_PATHWAY = {"0": "slow", "1": "fast"}
_LATERAL_AT_STAGE = {1: "pool1", 2: "res2", 3: "res3", 4: "res4"}
_BN = {"s": "weight", "b": "bias", "rm": "running_mean", "riv": "running_var"}


def _rules(*rules: tuple[str, Callable[[re.Match[str]], str]]) -> tuple[_Rule, ...]:
    return tuple((re.compile(pattern), name) for pattern, name in rules)


def _first_match(rules: tuple[_Rule, ...], key: str) -> Optional[str]:
    for pattern, name in rules:
        m = pattern.fullmatch(key)
        if m:
            return name(m)
    return None


_PYSLOWFAST_BLOCK_PART = {
    "branch1": "shortcut",
    "branch1_bn": "shortcut_bn",
    **{f"branch2.{c}": f"conv_{c}" for c in "abc"},
    **{f"branch2.{c}_bn": f"bn_{c}" for c in "abc"},
}
_PYSLOWFAST_RULES = _rules(
    (
        r"s1\.pathway([01])_stem\.(conv|bn)\.(\w+)",
        lambda m: f"backbone.{_PATHWAY[m[1]]}_stem.{m[2]}.{m[3]}",
    ),
    (
        r"s([1-4])_fuse\.(conv_f2s|bn)\.(\w+)",
        lambda m: f"backbone.lateral_{_LATERAL_AT_STAGE[int(m[1])]}."
        f"{'conv' if m[2] == 'conv_f2s' else 'bn'}.{m[3]}",
    ),
    (
        r"s(\d)\.pathway([01])_res(\d+)\.(branch1|branch1_bn|branch2\.[abc](?:_bn)?)\.(\w+)",
        lambda m: f"backbone.{_PATHWAY[m[2]]}_res{m[1]}.blocks.{m[3]}."
        f"{_PYSLOWFAST_BLOCK_PART[m[4]]}.{m[5]}",
    ),
    (
        r"s(\d)\.pathway([01])_nonlocal(\d+)\.(conv_theta|conv_phi|conv_g|conv_out|bn)\.(\w+)",
        lambda m: f"backbone.{_PATHWAY[m[2]]}_res{m[1]}.nonlocal_blocks.{m[3]}.{m[4]}.{m[5]}",
    ),
    (r"head\.projection\.(weight|bias)", lambda m: f"head.projection.{m[1]}"),
)


def _pyslowfast_key(key: str) -> Optional[str]:
    return _first_match(_PYSLOWFAST_RULES, key)


# Caffe2 blobs: a "t_" prefix marks the Fast pathway (group 1 of every rule that has one);
# "_w" is a conv weight, "_bn_s/_b/_rm/_riv" its BN's weight, bias and statistics.
_C2_PARAM = r"(w|bn_s|bn_b|bn_rm|bn_riv)"


def _c2_path(m: re.Match[str]) -> str:
    return "fast" if m[1] else "slow"


def _c2_param(conv: str, bn: str, suffix: str) -> str:
    return f"{conv}.weight" if suffix == "w" else f"{bn}.{_BN[suffix[3:]]}"


def _c2_block_part(branch: str) -> tuple[str, str]:
    return ("shortcut", "shortcut_bn") if branch == "1" else (f"conv_{branch[1]}", f"bn_{branch[1]}")


_CAFFE2_RULES = _rules(
    (r"(t_)?conv1_w", lambda m: f"backbone.{_c2_path(m)}_stem.conv.weight"),
    (r"(t_)?res_conv1_bn_(s|b|rm|riv)", lambda m: f"backbone.{_c2_path(m)}_stem.bn.{_BN[m[2]]}"),
    # Laterals are stored with the Fast pathway's blobs.
    (
        rf"t_pool1_subsample_{_C2_PARAM}",
        lambda m: f"backbone.lateral_pool1.{_c2_param('conv', 'bn', m[1])}",
    ),
    (
        rf"t_res(\d)_(\d+)_branch2c_bn_subsample_{_C2_PARAM}",
        lambda m: f"backbone.lateral_res{m[1]}.{_c2_param('conv', 'bn', m[3])}",
    ),
    (
        rf"(t_)?res(\d)_(\d+)_branch(1|2a|2b|2c)_{_C2_PARAM}",
        lambda m: f"backbone.{_c2_path(m)}_res{m[2]}.blocks.{m[3]}."
        f"{_c2_param(*_c2_block_part(m[4]), m[5])}",
    ),
    (
        r"(t_)?nonlocal_conv(\d)_(\d+)_(theta|phi|g|out)_(w|b)",
        lambda m: f"backbone.{_c2_path(m)}_res{m[2]}.nonlocal_blocks.{m[3]}.conv_{m[4]}."
        f"{'weight' if m[5] == 'w' else 'bias'}",
    ),
    (
        r"(t_)?nonlocal_conv(\d)_(\d+)_bn_(s|b|rm|riv)",
        lambda m: f"backbone.{_c2_path(m)}_res{m[2]}.nonlocal_blocks.{m[3]}.bn.{_BN[m[4]]}",
    ),
    (r"pred_(w|b)", lambda m: f"head.projection.{'weight' if m[1] == 'w' else 'bias'}"),
)


def _caffe2_key(key: str) -> Optional[str]:
    return _first_match(_CAFFE2_RULES, key)


def _caffe2_ignored(key: str) -> bool:
    return key in ("model_iter", "lr") or key.endswith("_momentum")


_PTV_NORM = {"conv": "conv", "norm": "bn"}
_PTV_BLOCK_PART = {
    "branch1_conv": "shortcut",
    "branch1_norm": "shortcut_bn",
    **{f"branch2.conv_{c}": f"conv_{c}" for c in "abc"},
    **{f"branch2.norm_{c}": f"bn_{c}" for c in "abc"},
}
_PYTORCHVIDEO_RULES = _rules(
    (
        r"blocks\.0\.multipathway_blocks\.([01])\.(conv|norm)\.(\w+)",
        lambda m: f"backbone.{_PATHWAY[m[1]]}_stem.{_PTV_NORM[m[2]]}.{m[3]}",
    ),
    # Single-pathway models (slow_r50).
    (r"blocks\.0\.(conv|norm)\.(\w+)", lambda m: f"backbone.slow_stem.{_PTV_NORM[m[1]]}.{m[2]}"),
    # The fusion after block i (0 = stem) is the lateral before stage res{i + 2}.
    (
        r"blocks\.([0-3])\.multipathway_fusion\.(conv_fast_to_slow|norm)\.(\w+)",
        lambda m: f"backbone.lateral_{_LATERAL_AT_STAGE[int(m[1]) + 1]}."
        f"{'conv' if m[2] == 'conv_fast_to_slow' else 'bn'}.{m[3]}",
    ),
    (
        r"blocks\.(\d)\.(?:multipathway_blocks\.([01])\.)?res_blocks\.(\d+)\."
        r"(branch1_conv|branch1_norm|branch2\.conv_[abc]|branch2\.norm_[abc])\.(\w+)",
        lambda m: f"backbone.{_PATHWAY[m[2] or '0']}_res{int(m[1]) + 1}.blocks.{m[3]}."
        f"{_PTV_BLOCK_PART[m[4]]}.{m[5]}",
    ),
    (r"(?:detection_head|blocks\.\d)\.proj\.(weight|bias)", lambda m: f"head.projection.{m[1]}"),
)


def _pytorchvideo_key(key: str) -> Optional[str]:
    key = key[len("model.") :] if key.startswith("model.") else key
    return _first_match(_PYTORCHVIDEO_RULES, key)


def _avadet_key(key: str) -> Optional[str]:
    return key if key.startswith(("backbone.", "head.")) else None


_KEY_MAPS: dict[str, Callable[[str], Optional[str]]] = {
    "avadet": _avadet_key,
    "pyslowfast": _pyslowfast_key,
    "caffe2": _caffe2_key,
    "pytorchvideo": _pytorchvideo_key,
}


def _state_dict_of(obj: Any, path: str) -> dict[str, Any]:
    if isinstance(obj, dict):
        for container in ("model_state", "state_dict", "model"):
            if isinstance(obj.get(container), dict):
                obj = obj[container]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: no state dict of tensors found")
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in obj.items()}


def _guess_style(keys: list[str]) -> str:
    if any(k.startswith("s1.pathway0_stem.") for k in keys):
        return "pyslowfast"
    if any("multipathway_blocks" in k or re.match(r"(model\.)?blocks\.0\.", k) for k in keys):
        return "pytorchvideo"
    if any(k.startswith("backbone.") for k in keys):
        return "avadet"
    raise CheckpointError(
        f"cannot tell the key style of the checkpoint (first keys: {_clip(sorted(keys), 5)})"
    )


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
    ``pytorchvideo.models.hub`` models). ``backbone_only=True`` ignores the checkpoint's head
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
            if _caffe2_ignored(key):
                ignored.append(key)
            elif not isinstance(value, np.ndarray):
                raise CheckpointError(f"{path}: blob {key!r} is not an array")
            else:
                tensors[key] = torch.from_numpy(np.array(value, copy=True))
    else:
        if source == "caffe2":
            raise CheckpointError(f"{path}: is a torch checkpoint, not a Caffe2 pickle")
        tensors = _state_dict_of(obj, path)
        if source == "auto":
            source = _guess_style(list(tensors))
    report = LoadReport(path=path, source=source, ignored=ignored)
    _apply(model, tensors, _KEY_MAPS[source], report, backbone_only=backbone_only, strict=strict)
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
        if backbone_only and name.startswith(_HEAD_PREFIX):
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
        if backbone_only and name.startswith(_HEAD_PREFIX):
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
