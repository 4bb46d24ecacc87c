"""The one restricted unpickler for weight pickles: Caffe2-era ``.pkl`` checkpoints
(``{"blobs": {name: array}}``, read by :mod:`avadet.models`) and detectron2 / Detectron weight
files (read by :mod:`avadet.persons`). It rebuilds numeric numpy arrays, their dtypes and
scalars inside plain containers (dicts, ordered dicts, lists, tuples, strings, numbers) and
nothing else, so a crafted pickle can neither run code nor make NumPy read past its buffer."""

from __future__ import annotations

import io
import pickle
import re
from collections import OrderedDict
from typing import Any, Optional, Type

import numpy as np

from avadet.errors import AvadetError, one_line


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
                f"refusing to load global '{module}.{name}': only numpy arrays and plain "
                "containers are allowed"
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
        self.array = _checked_array(_raw_bytes(raw, "an array's data"), dtype, shape,
                                    bool(fortran))


def _checked_array(data: bytes, dtype: np.dtype, shape: tuple, fortran: bool) -> np.ndarray:
    """The array of ``shape`` and ``dtype`` over ``data``, once their sizes agree."""
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
    return flat.reshape(shape, order="F" if fortran else "C")


def _pickled_frombuffer(buffer: Any, dtype_spec: Any, shape: Any, order: Any = "C") -> np.ndarray:
    """Stand-in for ``numpy._core.numeric._frombuffer`` (protocol-5 pickles of arrays)."""
    if not isinstance(shape, tuple) or len(shape) > _MAX_NDIM or not all(
        type(n) is int and n >= 0 for n in shape
    ):
        raise pickle.UnpicklingError(f"invalid array shape {str(shape)[:60]}")
    dtype = dtype_spec.dtype if isinstance(dtype_spec, _PickledDtype) else _dtype_of(dtype_spec)
    return _checked_array(_raw_bytes(bytes(buffer) if isinstance(buffer, (bytearray, memoryview))
                                     else buffer, "an array's data"),
                          dtype, shape, order == "F")


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
    **{(m, "_frombuffer"): _pickled_frombuffer for m in ("numpy._core.numeric", "numpy.core.numeric")},
    ("_codecs", "encode"): _latin1_encode,
    ("codecs", "encode"): _latin1_encode,
    ("collections", "OrderedDict"): OrderedDict,
}


_MAX_DEPTH = 100


def _resolve_arrays(value: Any, depth: int = 0) -> Any:
    """``value`` with every finished stand-in array replaced by its array, at any depth."""
    if depth > _MAX_DEPTH:
        raise pickle.UnpicklingError("nested too deeply for a weights file")
    if isinstance(value, _PickledArray):
        if value.array is None:
            raise pickle.UnpicklingError("an array without data")
        return value.array
    if isinstance(value, dict):
        return type(value)((k, _resolve_arrays(v, depth + 1)) for k, v in value.items())
    if isinstance(value, list):
        return [_resolve_arrays(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve_arrays(v, depth + 1) for v in value)
    return value


def restricted_unpickle(data: bytes, path: str,
                        error: Type[AvadetError] = AvadetError) -> Any:
    """The object pickled in ``data`` (the file ``path``); anything but arrays in plain
    containers raises ``error`` with one line naming the file."""
    last: Optional[Exception] = None
    for encoding in ("ASCII", "latin1"):  # latin1 for Python-2 pickles of numpy arrays
        try:
            return _resolve_arrays(_ArrayUnpickler(io.BytesIO(data), encoding=encoding).load())
        except UnicodeDecodeError as exc:
            last = exc
        except RecursionError:
            raise error(f"{path}: unsafe or invalid pickle: nested too deeply") from None
        except pickle.UnpicklingError as exc:
            raise error(f"{path}: unsafe or invalid pickle: {one_line(exc)}") from None
        except Exception as exc:  # truncated or corrupt files raise many kinds of errors
            raise error(f"{path}: cannot read pickle: {one_line(exc)}") from None
    raise error(f"{path}: cannot decode pickle: {one_line(last) if last else last}")
