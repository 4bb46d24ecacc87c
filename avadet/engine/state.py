"""One process's training state, built, saved and resumed.

:class:`TrainState` holds what the loop reads and changes: the model (and the
DistributedDataParallel wrapper that trains it), optimiser, grad scaler, the training set and
its seed-plan sampler (the data position is ``iteration``: epoch ``iteration //
iters_per_epoch``, batch ``iteration % iters_per_epoch`` of it), the learning rate of the
latest step, the loss window of the next metrics row, the last checkpoint written and the
latest evaluation.

- :func:`build_state`: a fresh state from the config (seeded initial weights, optionally a
  Kinetics initialisation);
- :func:`save_training_checkpoint`: the state as a checkpoint file, RNG states of every
  process included;
- :func:`read_resume_checkpoint` and :func:`resume_state`: the latest checkpoint of a run back
  into a freshly built state, so the run goes on drawing what the uninterrupted one would.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from avadet.config import Config, SolverConfig
from avadet.data import AvaDataset
from avadet.engine.build import build_dataset
from avadet.engine.checkpoint import (
    latest_checkpoint,
    one_line,
    read_training_checkpoint,
    save_checkpoint,
    state_dict_mismatch,
)
from avadet.engine.distributed import DistInfo, all_gather_objects, broadcast_object
from avadet.engine.sampler import SeedPlanBatchSampler
from avadet.engine.solver import action_loss_sum, build_optimizer, check_solver, scheduled_lr
from avadet.errors import AvadetError, CheckpointError, ConfigError
from avadet.evaluation import EvalResult
from avadet.models import build_model, load_checkpoint
from avadet.models.checkpoint import check_model_size

_MISSING = object()

# One source name for the whole run's lines in log.txt, whichever module writes them.
logger = logging.getLogger("avadet.engine.trainer")

# ``(logits (K, C), multi-hot labels (K, C)) -> scalar``: the loss summed over this process's
# boxes and classes; the step divides it by the global number of terms.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TrainingDiverged(AvadetError):
    """The loss became NaN or infinite; the run stopped without saving the bad state."""


# ---------------------------------------------------------------------------------------------
# RNG states (checkpointed per process, so a resumed run draws what the uninterrupted one did)


def capture_rng_state(device: torch.device) -> dict[str, Any]:
    """This process's torch, numpy, Python (and CUDA) generator states, as tensors, numbers
    and lists that a ``weights_only`` checkpoint can hold."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Set the generators to what :func:`capture_rng_state` returned."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# The state


@dataclass
class LossWindow:
    """The global losses of the steps since the last metrics row, and when the window began
    (``time.perf_counter``)."""

    loss_sum: float = 0.0
    steps: int = 0
    start: float = field(default_factory=time.perf_counter)

    def add(self, loss: float) -> None:
        self.loss_sum += loss
        self.steps += 1

    def reset(self) -> None:
        self.loss_sum, self.steps, self.start = 0.0, 0, time.perf_counter()


@dataclass
class TrainState:
    """What one process's training loop reads and changes (see the module docstring).

    ``model`` is the bare model (its weights are saved and evaluated); ``net`` is what the step
    calls, ``model`` or the DistributedDataParallel wrapper around it. ``iteration`` counts the
    optimiser steps taken; ``lr`` is the learning rate of the latest step. ``notes``: what
    rank 0 has to tell its user (the caller prints them; empty on other ranks).
    """

    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    solver: SolverConfig
    train_set: AvaDataset
    sampler: SeedPlanBatchSampler
    info: DistInfo
    seed: int
    total_iters: int
    num_workers: int = 0
    amp: bool = False
    loss_fn: LossFn = action_loss_sum
    iteration: int = 0
    lr: float = 0.0
    window: LossWindow = field(default_factory=LossWindow)
    last_checkpoint: Optional[Path] = None
    eval_result: Optional[EvalResult] = None
    notes: list[str] = field(default_factory=list)

    @property
    def iters_per_epoch(self) -> int:
        return self.sampler.iterations

    @property
    def epoch(self) -> float:
        """Epochs done, as a float (the schedule's and the metrics' epoch)."""
        return self.iteration / self.iters_per_epoch

    @property
    def finished(self) -> bool:
        return self.iteration >= self.total_iters

    @property
    def device(self) -> torch.device:
        return self.info.device

    @property
    def class_ids(self) -> list[int]:
        return list(self.train_set.class_ids)

    def note(self, message: str) -> None:
        """Keep ``message`` for the user (rank 0 only)."""
        if self.info.is_main:
            self.notes.append(message)


def total_iterations(solver: SolverConfig, iters_per_epoch: int) -> int:
    """``solver.max_iters``, else ``solver.max_epoch`` epochs (at least one step)."""
    if solver.max_iters > 0:
        return solver.max_iters
    return max(1, round(solver.max_epoch * iters_per_epoch))


def check_training_config(cfg: Config, train_set: AvaDataset) -> None:
    """Raise ConfigError for settings training cannot use."""
    check_solver(cfg.solver)
    if cfg.model.head != "ava":
        raise ConfigError("training needs model.head=ava (the RoI head)")
    if cfg.model.num_classes != len(train_set.class_ids):
        raise ConfigError(
            f"model.num_classes={cfg.model.num_classes} but the data have "
            f"{len(train_set.class_ids)} classes (data.labelmap / data.classes)"
        )
    for name in ("checkpoint_every_iters", "log_every_iters"):
        if getattr(cfg.train, name) < 1:
            raise ConfigError(f"train.{name} must be >= 1, got {getattr(cfg.train, name)}")
    if cfg.train.eval_every_epochs < 0:
        raise ConfigError("train.eval_every_epochs must be >= 0 (0: never)")


def build_state(
    cfg: Config,
    info: DistInfo,
    *,
    init_checkpoint: Optional[str] = None,
    loss_fn: LossFn = action_loss_sum,
) -> TrainState:
    """A state at iteration 0: the training set and its sampler, the model with the initial
    weights of ``train.seed`` (identical on every process), then ``init_checkpoint``'s backbone
    if given (read by rank 0; DistributedDataParallel copies rank 0's weights to the others),
    the optimiser and grad scaler. The global generators are left where the initial weights
    left them: the caller resumes them from a checkpoint or reseeds them per process."""
    seed = int(cfg.train.seed)
    device = info.device
    seed_everything(seed)
    train_set = build_dataset(cfg, "train")
    check_training_config(cfg, train_set)
    sampler = SeedPlanBatchSampler(
        len(train_set), cfg.solver.batch_size, seed, rank=info.rank, world_size=info.world_size
    )
    # A config asking for an absurd model is refused before anything is allocated.
    check_model_size(cfg.model, "model", ConfigError)
    model = build_model(cfg)
    notes = _load_init_checkpoint(model, init_checkpoint, info) if init_checkpoint else []
    model.to(device)
    optimizer = build_optimizer(model, cfg.solver)
    amp = bool(cfg.train.amp and device.type == "cuda")
    return TrainState(
        model=model, net=model, optimizer=optimizer,
        scaler=torch.amp.GradScaler("cuda", enabled=amp), solver=cfg.solver,
        train_set=train_set, sampler=sampler, info=info, seed=seed,
        total_iters=total_iterations(cfg.solver, sampler.iterations),
        num_workers=cfg.data.num_workers, amp=amp, loss_fn=loss_fn,
        lr=scheduled_lr(cfg.solver, 0.0), notes=notes,
    )


def _load_init_checkpoint(model: nn.Module, path: str, info: DistInfo) -> list[str]:
    """Load the backbone of ``path`` into ``model`` on rank 0; the notes for its user."""
    problem, notes = None, []
    if info.is_main:
        try:
            report = load_checkpoint(model, path, backbone_only=True)
        except AvadetError as exc:
            problem = f"train.init_checkpoint: {exc}"
        else:
            logger.info("init: %s", report.summary())
            notes.append(f"initialised from {report.summary()}")
    problem = broadcast_object(problem, info)
    if problem:
        raise CheckpointError(problem)
    return notes


# ---------------------------------------------------------------------------------------------
# Saving and resuming


def non_finite_parameters(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]


def save_training_checkpoint(state: TrainState, path: Path, cfg: Config) -> Path:
    """Write ``state`` to ``path`` (rank 0, atomically) with the RNG states of every process.

    Every process must call it (the RNG states are gathered). Raises TrainingDiverged, writing
    nothing, if a weight is not finite.
    """
    bad = non_finite_parameters(state.model)
    if bad:
        raise TrainingDiverged(
            f"training diverged: non-finite weights after iteration {state.iteration} "
            f"({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}); not saved; the last "
            f"good checkpoint is {state.last_checkpoint or 'none (none written)'}; lower "
            "solver.base_lr or set solver.clip_grad_norm"
        )
    rng = all_gather_objects(capture_rng_state(state.device), state.info)
    if state.info.is_main:
        per_epoch = state.iters_per_epoch
        save_checkpoint(
            path, state.model, cfg, state.class_ids,
            epoch=state.iteration // per_epoch, iteration=state.iteration,
            training_state={
                "optimizer_state": state.optimizer.state_dict(),
                "scheduler_state": {
                    "iteration": state.iteration, "lr": state.lr, "total_iters": state.total_iters,
                },
                "scaler_state": state.scaler.state_dict(),
                "rng_state": rng,
                "extra": {
                    "iters_per_epoch": per_epoch,
                    "iter_in_epoch": state.iteration % per_epoch,
                    "world_size": state.info.world_size,
                    "seed": state.seed,
                },
            },
        )
    return path


def read_resume_checkpoint(output_dir: Path, info: DistInfo) -> Optional[tuple[Path, dict]]:
    """The latest checkpoint of ``output_dir``, its path and contents (None if there is none).

    Rank 0 reads it and hands it to the others: the output folder need not be shared between
    nodes. Raises CheckpointError on every process if it cannot be read or holds no training
    state.
    """
    found: Optional[tuple[Path, dict]] = None
    problem = None
    path = latest_checkpoint(output_dir) if info.is_main else None
    if path is not None:
        try:
            found = (path, read_training_checkpoint(path))
        except CheckpointError as exc:
            problem = str(exc)
        if found is not None and "optimizer_state" not in found[1]:
            problem = f"{path}: holds no training state; cannot resume from it"
    if info.distributed:
        problem = broadcast_object(problem, info)
        if problem is None:
            found = broadcast_object(found, info)
    if problem:
        raise CheckpointError(problem)
    return found


# ---------------------------------------------------------------------------------------------
# Checking a checkpoint's training fields before any of them is loaded: a damaged or foreign
# file is one line naming the file and the field, and the state is left as it was built.


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


def resume_state(state: TrainState, checkpoint: dict, path: Path) -> None:
    """Load ``checkpoint`` (a :func:`read_training_checkpoint` dict read from ``path``) into a
    freshly built ``state``: weights, optimiser, grad scaler, iteration, learning rate and this
    process's RNG states (reseeded from the iteration if the checkpoint was written by another
    number of processes). Raises CheckpointError if it does not fit the state."""
    info, per_epoch = state.info, state.iters_per_epoch
    check_resume_fields(state, checkpoint, path)
    extra = checkpoint.get("extra", {})
    if int(extra.get("iters_per_epoch", per_epoch)) != per_epoch:
        raise CheckpointError(
            f"{path}: made with {extra.get('iters_per_epoch')} iterations per epoch, "
            f"this config gives {per_epoch} (the training set or solver.batch_size changed); "
            "start a new train.output_dir"
        )
    problem = state_dict_mismatch(state.model.state_dict(), checkpoint["model_state"])
    if problem:
        raise CheckpointError(f"{path}: does not fit this model config; {problem}")
    try:
        state.model.load_state_dict(checkpoint["model_state"])
    except RuntimeError as exc:  # a dtype torch cannot copy: one line of torch's message
        raise CheckpointError(f"{path}: does not fit this model config: {one_line(exc)}") from None
    # The fields are checked; what torch still refuses is named, not a traceback.
    try:
        state.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if checkpoint.get("scaler_state"):
            state.scaler.load_state_dict(checkpoint["scaler_state"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: optimizer_state/scaler_state do not load: {one_line(exc)}") from None
    state.iteration = int(checkpoint["iteration"])
    state.lr = float(checkpoint.get("scheduler_state", {}).get("lr", state.lr))
    state.last_checkpoint = path
    rng_states = checkpoint.get("rng_state") or []  # checked: None or a list
    if len(rng_states) == info.world_size:
        restore_rng_state(rng_states[info.rank], state.device)
    else:
        if info.is_main:
            logger.warning(
                "checkpoint has RNG states of %d processes, this run has %d: reseeding",
                len(rng_states), info.world_size,
            )
        seed_everything(state.seed + 7919 * state.iteration + info.rank)
    if info.is_main:
        logger.info("resuming from %s (iteration %d)", path, state.iteration)
    state.note(f"resuming from {path} (iteration {state.iteration})")
