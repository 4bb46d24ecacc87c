"""The checks a checkpoint passes before a run resumes from it: every training field's type,
range and shape against this run's model, optimiser and devices, so that a damaged or foreign
checkpoint is refused in one line naming the field, before anything is loaded."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch

from avadet.errors import CheckpointError

if TYPE_CHECKING:  # the state imports these checks; the checks only read it
    from avadet.engine.state import TrainState

_MISSING = object()


def _field_error(path: Path, name: str, problem: str) -> CheckpointError:
    return CheckpointError(f"{path}: field '{name}' {problem}; not a checkpoint of this run")


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _check_int(value: Any, path: Path, name: str, low: int = 0, high: Optional[int] = None) -> None:
    if type(value) is not int or value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise _field_error(path, name, f"must be an integer {bound}, got {str(value)[:40]}")


def _check_type(value: Any, kinds: tuple[type, ...], path: Path, name: str) -> None:
    if not isinstance(value, kinds):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise _field_error(path, name, f"is a {type(value).__name__}, not a {wanted}")


def _check_tensor(value: Any, path: Path, name: str, shape: tuple[int, ...],
                  dtype: Optional[torch.dtype] = None) -> None:
    _check_type(value, (torch.Tensor,), path, name)
    if tuple(value.shape) != shape or (dtype is not None and value.dtype != dtype):
        raise _field_error(
            path, name, f"is a {value.dtype} tensor of shape {tuple(value.shape)}, "
            f"expected {dtype or 'a tensor'} of shape {shape}")


def _check_optimizer_state(saved: Any, optimizer: torch.optim.Optimizer, path: Path) -> None:
    """``saved`` must be a state of ``optimizer`` for this model: the same parameter groups
    with the same parameters, hyperparameters of the same types, buffers of their shapes."""
    name = "optimizer_state"
    _check_type(saved, (dict,), path, name)
    _check_type(saved.get("state"), (dict,), path, f"{name}.state")
    groups = saved.get("param_groups")
    _check_type(groups, (list,), path, f"{name}.param_groups")
    own = optimizer.state_dict()["param_groups"]
    if len(groups) != len(own):
        raise _field_error(path, f"{name}.param_groups",
                           f"has {len(groups)} groups, this model's optimiser {len(own)}")
    shapes: dict[int, tuple[int, ...]] = {}
    for i, (group, own_group, live) in enumerate(zip(groups, own, optimizer.param_groups)):
        where = f"{name}.param_groups[{i}]"
        _check_type(group, (dict,), path, where)
        if group.get("params") != own_group["params"]:
            raise _field_error(path, f"{where}.params",
                               f"lists other parameters than this model's optimiser "
                               f"({len(own_group['params'])} parameters)")
        for key, mine in own_group.items():
            theirs = group.get(key, _MISSING)
            if key == "params":
                continue
            if theirs is _MISSING:
                if isinstance(mine, bool) or mine is None:
                    continue  # a flag an older torch did not save: torch fills its default
                raise _field_error(path, f"{where}.{key}", "is missing (another optimiser's state?)")
            if isinstance(mine, bool) or mine is None or isinstance(mine, str):
                ok = type(theirs) is type(mine) or (mine is None and type(theirs) is bool)
            elif isinstance(mine, (int, float)):
                ok = _is_number(theirs)
            elif isinstance(mine, (tuple, list)):
                ok = (isinstance(theirs, (tuple, list)) and len(theirs) == len(mine)
                      and all(_is_number(x) for x in theirs))
            else:
                ok = True  # a type this code does not know: torch checks it
            if not ok:
                raise _field_error(path, f"{where}.{key}",
                                   f"is {str(theirs)[:40]!r}, expected a value like {mine!r}")
        shapes.update({pid: tuple(p.shape) for pid, p in zip(own_group["params"], live["params"])})
    for pid, buffers in saved["state"].items():
        where = f"{name}.state[{pid}]"
        if pid not in shapes:
            raise _field_error(path, where, "belongs to no parameter of this model")
        _check_type(buffers, (dict,), path, where)
        for key, value in buffers.items():
            if value is None:
                continue
            if key == "step":  # AdamW's step count: a scalar tensor or a number
                if not (_is_number(value) or (isinstance(value, torch.Tensor) and value.numel() == 1)):
                    raise _field_error(path, f"{where}.step", "must be one number")
                continue
            _check_type(value, (torch.Tensor,), path, f"{where}.{key}")
            if tuple(value.shape) != shapes[pid] or not value.is_floating_point():
                raise _field_error(path, f"{where}.{key}",
                                   f"is a {value.dtype} tensor of shape {tuple(value.shape)}, "
                                   f"its parameter has shape {shapes[pid]}")


def _check_rng_state(rng: Any, path: Path, name: str, device: torch.device) -> None:
    """One process's generator states as :func:`capture_rng_state` writes them."""
    _check_type(rng, (dict,), path, name)
    _check_tensor(rng.get("torch"), path, f"{name}.torch", tuple(torch.get_rng_state().shape), torch.uint8)
    numpy_state = rng.get("numpy")
    _check_type(numpy_state, (list, tuple), path, f"{name}.numpy")
    if len(numpy_state) != 5 or numpy_state[0] != "MT19937":
        raise _field_error(path, f"{name}.numpy", "is not a MT19937 state of 5 items")
    _check_tensor(numpy_state[1], path, f"{name}.numpy[1]", (624,), torch.int64)
    if numpy_state[1].min() < 0 or numpy_state[1].max() >= 2**32:
        raise _field_error(path, f"{name}.numpy[1]", "holds values outside 32 bits")
    _check_int(numpy_state[2], path, f"{name}.numpy[2]", 0, 624)
    _check_int(numpy_state[3], path, f"{name}.numpy[3]", 0, 1)
    if type(numpy_state[4]) is not float:
        raise _field_error(path, f"{name}.numpy[4]", "must be a float")
    python_state = rng.get("python")
    _check_type(python_state, (list, tuple), path, f"{name}.python")
    if len(python_state) != 3:
        raise _field_error(path, f"{name}.python", "is not (version, internal state, gauss)")
    version, internal, gauss = python_state
    _check_int(version, path, f"{name}.python[0]", 3, 3)
    _check_type(internal, (list, tuple), path, f"{name}.python[1]")
    if len(internal) != 625 or not all(type(x) is int and 0 <= x < 2**32 for x in internal):
        raise _field_error(path, f"{name}.python[1]", "is not 625 integers of 32 bits")
    if gauss is not None and type(gauss) is not float:
        raise _field_error(path, f"{name}.python[2]", "must be None or a float")
    if "cuda" in rng and device.type == "cuda":
        own = torch.cuda.get_rng_state(device)
        _check_tensor(rng["cuda"], path, f"{name}.cuda", tuple(own.shape), torch.uint8)


def check_resume_fields(state: TrainState, checkpoint: dict, path: Path) -> None:
    """Raise CheckpointError naming ``path`` and the field if ``checkpoint`` cannot be resumed
    into ``state``: a wrong type, an out-of-range number, an optimiser state of other
    parameters, RNG states of the wrong shape."""
    _check_int(checkpoint.get("iteration"), path, "iteration")
    _check_type(checkpoint.get("model_state"), (dict,), path, "model_state")
    _check_optimizer_state(checkpoint.get("optimizer_state"), state.optimizer, path)
    extra = checkpoint.get("extra", {})
    _check_type(extra, (dict,), path, "extra")
    if "iters_per_epoch" in extra:
        _check_int(extra["iters_per_epoch"], path, "extra.iters_per_epoch", 1)
    scheduler = checkpoint.get("scheduler_state", {})
    _check_type(scheduler, (dict,), path, "scheduler_state")
    if "lr" in scheduler and not (_is_number(scheduler["lr"]) and scheduler["lr"] >= 0):
        raise _field_error(path, "scheduler_state.lr", f"must be a finite number >= 0, got {str(scheduler['lr'])[:40]}")
    scaler = checkpoint.get("scaler_state")
    if scaler is not None:
        _check_type(scaler, (dict,), path, "scaler_state")
        for key, value in scaler.items():
            if not _is_number(value):
                raise _field_error(path, f"scaler_state.{key}", "must be a finite number")
    rng_states = checkpoint.get("rng_state")
    rng_states = [] if rng_states is None else rng_states
    _check_type(rng_states, (list, tuple), path, "rng_state")
    for i, rng in enumerate(rng_states):
        _check_rng_state(rng, path, f"rng_state[{i}]", state.device)
