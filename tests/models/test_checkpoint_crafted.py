"""Crafted and damaged Caffe2 pickles: a clear one-line CheckpointError naming the file, never a
crash (NumPy reading past a buffer), never an object array, never an allocation beyond the
bytes the file holds; and checkpoints asking for an absurd model are refused before building."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from avadet.config import ModelConfig
from avadet.errors import CheckpointError
from avadet.models import build_model, build_model_from_checkpoint, load_checkpoint, read_checkpoint
from avadet.models.checkpoint import MAX_MODEL_PARAMETERS, check_model_size

_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's own _reconstruct, as real files name it


class _CraftedArray:
    """Pickles as numpy does (``_reconstruct`` then BUILD with ``(1, shape, dtype, fortran,
    data)``), with whatever shape, dtype and data the test chooses."""

    def __init__(self, shape: Any, dtype: Any, data: Any, fortran: bool = False):
        self.state = (1, shape, dtype, fortran, data)

    def __reduce__(self):
        return (_RECONSTRUCT, (np.ndarray, (0,), b"b"), self.state)


class _CraftedScalar:
    def __init__(self, dtype: np.dtype, data: bytes):
        self.args = (dtype, data)

    def __reduce__(self):
        return (np.float32(0).__reduce__()[0], self.args)


# name -> (blob, the words the error must hold)
CRAFTED = {
    "object_dtype": (_CraftedArray((2,), np.dtype("O"), [1, 2]), "refusing dtype 'O8'"),
    "object_dtype_short_list": (_CraftedArray((1000,), np.dtype("O"), [1]), "refusing dtype 'O8'"),
    "short_buffer": (_CraftedArray((64, 64), np.dtype("f4"), b"\0" * 16), "needs 16384 bytes, the file holds 16"),
    "long_buffer": (_CraftedArray((2,), np.dtype("f4"), b"\0" * 12), "needs 8 bytes, the file holds 12"),
    "huge_shape": (_CraftedArray((2**40, 2**40), np.dtype("f8"), b"\0" * 8), "the file holds 8"),
    "negative_shape": (_CraftedArray((-1, 4), np.dtype("f4"), b"\0" * 16), "invalid array shape"),
    "non_int_shape": (_CraftedArray((2.5,), np.dtype("f4"), b"\0" * 8), "invalid array shape"),
    "structured_dtype": (_CraftedArray((1,), np.dtype([("a", "f4"), ("b", "i4")]), b"\0" * 8), "refusing"),
    "string_dtype": (_CraftedArray((1,), np.dtype("U4"), b"\0" * 16), "refusing dtype"),
    "void_dtype": (_CraftedArray((1,), np.dtype("V8"), b"\0" * 8), "refusing dtype"),
    "data_not_bytes": (_CraftedArray((2,), np.dtype("f4"), [1.0, 2.0]), "not bytes"),
    "dtype_not_dtype": (_CraftedArray((2,), "f4", b"\0" * 8), "not a dtype"),
}


def _write(tmp_path: Path, name: str, blob: Any) -> Path:
    path = tmp_path / f"{name}_caffe2.pkl"
    path.write_bytes(pickle.dumps({"blobs": {"conv1_w": blob}}, protocol=2))
    return path


def _one_line(exc: pytest.ExceptionInfo, path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_array_pickles_are_a_clear_error(tmp_path, name):
    blob, words = CRAFTED[name]
    path = _write(tmp_path, name, blob)
    with pytest.raises(CheckpointError) as exc:
        read_checkpoint(path)
    assert words in _one_line(exc, path)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(build_model(arch="slow", width_per_group=8), path)
    assert words in _one_line(exc, path)
    with pytest.raises(CheckpointError) as exc:
        build_model_from_checkpoint(path)
    assert words in _one_line(exc, path)


def test_crafted_scalars_are_checked_like_arrays(tmp_path):
    short = _write(tmp_path, "short_scalar", _CraftedScalar(np.dtype("f8"), b"\0" * 3))
    with pytest.raises(CheckpointError, match="a <f8 scalar of 3 bytes"):
        read_checkpoint(short)
    obj = _write(tmp_path, "object_scalar", _CraftedScalar(np.dtype("O"), b"\0" * 8))
    with pytest.raises(CheckpointError, match="refusing dtype 'O8'"):
        read_checkpoint(obj)


def test_arrays_of_every_allowed_dtype_and_order_round_trip(tmp_path):
    blobs = {
        "f4": np.arange(6, dtype="<f4").reshape(2, 3),
        "big_endian": np.arange(6, dtype=">f8").reshape(3, 2),
        "fortran": np.asfortranarray(np.arange(12, dtype="i8").reshape(3, 4)),
        "empty": np.zeros((0, 5), dtype="f4"),
        "bool": np.array([True, False]),
        "u1": np.arange(3, dtype="u1"),
        "scalar0d": np.array(2.5, dtype="f2"),
        "c8": np.array([1 + 2j], dtype="c8"),
    }
    path = tmp_path / "ok_caffe2.pkl"
    path.write_bytes(pickle.dumps({"blobs": blobs, "model_iter": np.int64(7)}, protocol=2))
    kind, read = read_checkpoint(path)
    assert kind == "caffe2" and read.keys() == blobs.keys()
    for key, value in blobs.items():
        assert np.array_equal(read[key], value) and read[key].shape == value.shape
        assert read[key].dtype.isnative and read[key].flags.writeable
        torch.from_numpy(read[key])  # every allowed dtype is one torch holds


# A subprocess, so that a crash (a segfault in NumPy) fails the test instead of the run.
_FUZZ = textwrap.dedent(
    """
    import pickle, pickletools, random, sys
    import numpy as np
    from avadet.errors import CheckpointError
    from avadet.models import read_checkpoint

    seed, count, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng = random.Random(seed)
    blobs = {"conv1_w": np.arange(24, dtype="f4").reshape(2, 3, 4),
             "res_conv1_bn_rm": np.ones(3, dtype="f8"), "model_iter": np.int64(5),
             "pred_b": np.zeros(4, dtype=">f4"), "flag": np.array([True])}
    seeds = [pickle.dumps({"blobs": blobs}, protocol=2), pickle.dumps({"blobs": blobs}, protocol=4)]
    # Words to splice in: what a crafted file would use.
    words = [b"O8", b"V8", b"U4", b"f4", b"i8", b"\\xff\\xff\\xff\\x7f", b"\\x00" * 4, b"(", b")",
             b"t", b"R", b"b", b"J\\xff\\xff\\xff\\xff", b"K\\x00", b"\\x86", b"\\x85"]
    loaded = errors = 0
    for i in range(count):
        data = bytearray(rng.choice(seeds))
        # Mutate where the structure is (opcodes and their short arguments), not in the floats.
        spots = [pos for _, _, pos in pickletools.genops(bytes(data)) if pos is not None]
        for _ in range(rng.randint(1, 4)):
            pos = rng.choice(spots) + rng.randint(0, 3)
            op = rng.randrange(4)
            if op == 0:
                data[pos:pos + 1] = bytes([rng.randrange(256)])
            elif op == 1:
                data[pos:pos] = rng.choice(words)
            elif op == 2:
                del data[pos:pos + rng.randint(1, 8)]
            else:
                data = data[:pos]
        path = f"{folder}/fuzz_{i}.pkl"
        open(path, "wb").write(bytes(data))
        try:
            kind, obj = read_checkpoint(path)
        except CheckpointError as exc:
            assert "\\n" not in str(exc) and path in str(exc), repr(str(exc))
            errors += 1
        else:
            for value in obj.values():
                assert not isinstance(value, np.ndarray) or value.dtype.kind in "biufc", value.dtype
            loaded += 1
    print(f"{count} {errors} {loaded}")
    """
)


def test_mutated_caffe2_pickles_never_crash(tmp_path):
    """200 mutated pickles of a tiny valid Caffe2 checkpoint: each loads or is a one-line
    CheckpointError naming the file; any other exception or a crash fails."""
    script = tmp_path / "fuzz.py"
    script.write_text(_FUZZ)
    done = subprocess.run([sys.executable, str(script), "15", "200", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    count, errors, loaded = map(int, done.stdout.split())
    assert count == 200 and errors + loaded == 200 and errors > 100


def test_the_bound_is_twice_the_largest_published_model():
    from avadet.models import slowfast_32x2_r101_50_50

    with torch.device("meta"):
        r101 = sum(p.numel() for p in slowfast_32x2_r101_50_50().parameters())
    assert 2 * r101 <= MAX_MODEL_PARAMETERS < 2.1 * r101
    assert check_model_size(ModelConfig(), "x") < r101


_MEMORY = textwrap.dedent(
    """
    import pickle, resource, sys
    import numpy as np
    from avadet.errors import CheckpointError
    from avadet.models import build_model_from_checkpoint
    from avadet.models.checkpoint import MAX_MODEL_PARAMETERS

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused = 0
    for path in sys.argv[1:]:
        try:
            build_model_from_checkpoint(path)
        except CheckpointError:
            refused += 1
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(refused, grown_mb)
    """
)


def test_refusing_bombs_allocates_nothing_like_them(tmp_path):
    """In a fresh process: a huge declared shape and a 10**9-class model are refused with
    the peak memory grown by less than 200 MB (the model alone would be terabytes)."""
    import dataclasses

    bomb = tmp_path / "bomb.pt"
    torch.save({"model_config": {**dataclasses.asdict(ModelConfig()), "num_classes": 10**9}}, bomb)
    shape = _write(tmp_path, "huge", _CraftedArray((2**20, 2**20), np.dtype("f8"), b"\0" * 8))
    script = tmp_path / "memory.py"
    script.write_text(_MEMORY)
    done = subprocess.run([sys.executable, str(script), str(bomb), str(shape)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    refused, grown_mb = done.stdout.split()
    assert int(refused) == 2 and float(grown_mb) < 200


@pytest.mark.parametrize("setting", [{"width_per_group": 100000}, {"num_classes": 10**9},
                                     {"fusion_kernel_size": 10**7}, {"depth": 10**6},
                                     {"nonlocal_blocks": [[], [], list(range(10000)), []]}])
def test_a_checkpoint_asking_for_an_absurd_model_is_refused_before_building(tmp_path, setting):
    import dataclasses

    path = tmp_path / "bomb.pt"
    torch.save({"model_state": {}, "model_config": {**dataclasses.asdict(ModelConfig()), **setting}}, path)
    with pytest.raises(CheckpointError) as exc:
        build_model_from_checkpoint(path)
    message = _one_line(exc, path)
    if "width_per_group" in setting or "num_classes" in setting:
        assert f"more than avadet builds ({MAX_MODEL_PARAMETERS:,}" in message
