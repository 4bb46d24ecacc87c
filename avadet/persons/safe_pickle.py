"""Reading detectron2 / Detectron weight pickles (``.pkl``) without running code from them.

A plain ``pickle.load`` calls whatever a file names, so a crafted ``.pkl`` runs code. This
unpickler builds only what weights are made of: dicts, lists, tuples, strings, numbers and
numeric NumPy arrays. Every other global is refused. Arrays are not built by NumPy's own
unpickling (which trusts the file's shape and byte count, and allows object arrays): the
pickle's recipe is captured by stand-ins, checked (a plain numeric dtype, exactly
``prod(shape) * itemsize`` bytes) and only then turned into an array.

(``avadet.models`` has its own reader for Caffe2 checkpoints; the layers may not share it,
see docs/architecture.md, so this one is kept minimal for the person detectors.)
"""

from __future__ import annotations

import io
import math
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Union

import numpy as np

from avadet.errors import AvadetError

# Plain numeric dtypes as pickles spell them: bool, (unsigned) ints, floats, complex.
_DTYPE_SPEC = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|c(8|16))\Z")
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMERIC_MODULES = ("numpy.core.numeric", "numpy._core.numeric")
# A weights file holds at most a few GB; a claimed array beyond this is a bomb.
_MAX_ARRAY_BYTES = 1 << 33


class UnsafePickleError(AvadetError):
    """The pickle asks for something other than arrays and plain containers."""


class _Dtype:
    """A dtype named by the pickle, resolved once its byte order (its state) is known."""

    def __init__(self, spec: Any, align: Any = False, copy: Any = False):
        if not isinstance(spec, str) or not _DTYPE_SPEC.match(spec):
            raise UnsafePickleError(f"array dtype {spec!r} is not a plain numeric type")
        self.spec = spec
        self.order = "="

    def __setstate__(self, state: Any) -> None:
        # (version, byte order, subarray, names, fields, ...): only the byte order is taken;
        # a structured or sub-array description is refused.
        if not isinstance(state, tuple) or len(state) < 5 or any(s is not None for s in state[2:5]):
            raise UnsafePickleError("structured array dtypes are not weights")
        if state[1] in ("<", ">", "=", "|"):
            self.order = state[1]

    def resolve(self) -> np.dtype:
        dtype = np.dtype(self.spec)
        return dtype.newbyteorder(self.order) if self.order in "<>" else dtype


def _as_dtype(value: Any) -> np.dtype:
    if isinstance(value, _Dtype):
        return value.resolve()
    if isinstance(value, str):
        return _Dtype(value).resolve()
    raise UnsafePickleError(f"array dtype {value!r} is not a plain numeric type")


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):  # Python 2 pickles read with encoding="latin1"
        return data.encode("latin1")
    raise UnsafePickleError("array data is not a byte string")


def _array(data: Any, dtype: np.dtype, shape: Any, fortran: bool) -> np.ndarray:
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise UnsafePickleError(f"array shape {shape!r} is not a tuple of sizes")
    raw = _as_bytes(data)
    expected = math.prod(shape) * dtype.itemsize
    if expected > _MAX_ARRAY_BYTES or len(raw) != expected:
        raise UnsafePickleError(f"array of shape {shape} and dtype {dtype} needs {expected} "
                                f"bytes, the file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


class _NdarrayClass:
    """Stands for ``numpy.ndarray`` in a pickle: only as the class argument of an array recipe
    (the real class would let a pickle call its constructor and state setter directly)."""


class _ArrayRecipe:
    """What ``numpy.core.multiarray._reconstruct`` starts; the array comes with the state."""

    def __init__(self, cls: Any = None, shape: Any = None, base: Any = None):
        if cls is not _NdarrayClass:
            raise UnsafePickleError("only plain numpy arrays can be read")
        self.array: Any = None

    def __setstate__(self, state: Any) -> None:
        # (version, shape, dtype, is_fortran, data), or without the version (old numpy).
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("malformed array state")
        shape, dtype, fortran, data = state[-4:]
        self.array = _array(data, _as_dtype(dtype), shape, bool(fortran))


def _scalar(dtype: Any, data: Any = b"") -> Any:
    dtype = _as_dtype(dtype)
    return _array(data, dtype, (), False)[()]


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any = "C") -> np.ndarray:
    return _array(buffer, _as_dtype(dtype), tuple(shape), order == "F")


def _encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Python 3 pickles of bytes at protocol 2 spell them as codecs.encode(text, "latin1").
    if not isinstance(text, str) or encoding.lower() not in ("latin1", "latin-1"):
        raise UnsafePickleError("only latin-1 byte strings can be read")
    return text.encode("latin1")


_GLOBALS: dict[tuple[str, str], Any] = {
    **{(m, "_reconstruct"): _ArrayRecipe for m in _NUMPY_MODULES},
    **{(m, "scalar"): _scalar for m in _NUMPY_MODULES},
    **{(m, "_frombuffer"): _frombuffer for m in _NUMERIC_MODULES},
    ("numpy", "ndarray"): _NdarrayClass,
    ("numpy", "dtype"): _Dtype,
    ("collections", "OrderedDict"): OrderedDict,
    ("_codecs", "encode"): _encode,
    ("codecs", "encode"): _encode,
}


class _WeightsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refusing {module}.{name}: a weights file holds only "
                                    "arrays and plain containers") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("persistent references are not weights")


def _finish(value: Any, depth: int = 0) -> Any:
    """Replace the array recipes in ``value`` by their arrays."""
    if depth > 100:
        raise UnsafePickleError("nested too deeply for a weights file")
    if isinstance(value, _ArrayRecipe):
        if value.array is None:
            raise UnsafePickleError("an array without data")
        return value.array
    if isinstance(value, _Dtype):
        return value.resolve()
    if isinstance(value, dict):
        return type(value)((k, _finish(v, depth + 1)) for k, v in value.items())
    if isinstance(value, list):
        return [_finish(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_finish(v, depth + 1) for v in value)
    return value


def load_weights_pickle(path: Union[str, Path]) -> Any:
    """The object a weights ``.pkl`` holds (dicts of numpy arrays), refusing anything else
    with one line naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AvadetError(f"{path}: cannot read weights: {exc.strerror or exc}") from None
    try:
        loaded = _WeightsUnpickler(io.BytesIO(data), encoding="latin1").load()
        return _finish(loaded)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: not loaded: {exc}") from None
    except RecursionError:
        raise UnsafePickleError(f"{path}: not loaded: nested too deeply") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, OverflowError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UnsafePickleError(f"{path}: not a readable weights pickle: {reason}") from None
