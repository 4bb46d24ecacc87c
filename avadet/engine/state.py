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
    read_training_checkpoint,
    save_checkpoint,
    state_dict_mismatch,
)
from avadet.engine.distributed import DistInfo, all_gather_objects, broadcast_object
from avadet.engine.resume_checks import check_resume_fields
from avadet.engine.sampler import SeedPlanBatchSampler
from avadet.engine.solver import action_loss_sum, build_optimizer, check_solver, scheduled_lr
from avadet.errors import AvadetError, CheckpointError, ConfigError, one_line
from avadet.evaluation import EvalResult
from avadet.models import build_model, load_checkpoint
from avadet.models.checkpoint import check_model_size
from avadet.models.checkpoint_keys import HEAD_PREFIX

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
    notes = (_load_init_checkpoint(model, init_checkpoint, info, list(train_set.class_ids))
             if init_checkpoint else [])
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


def _load_init_checkpoint(model: nn.Module, path: str, info: DistInfo,
                          class_ids: list[int]) -> list[str]:
    """Initialise ``model`` from ``path`` on rank 0; the notes for its user.

    An AVA checkpoint (any format :func:`~avadet.engine.loading.load_model` reads) whose
    architecture is the model's gives its backbone and, when it scores every class being
    trained (``class_ids``), its head rows of those classes: fine-tuning starts from the
    published detector. Otherwise (a Kinetics checkpoint, other classes) the backbone is
    loaded and the head left fresh."""
    problem, notes = None, []
    if info.is_main:
        try:
            notes.append(_init_from(model, path, class_ids))
        except AvadetError as exc:
            problem = f"train.init_checkpoint: {exc}"
        else:
            logger.info("init: %s", notes[-1])
    problem = broadcast_object(problem, info)
    if problem:
        raise CheckpointError(problem)
    return notes


def _init_from(model: nn.Module, path: str, class_ids: list[int]) -> str:
    from avadet.engine.loading import load_model

    try:
        source = load_model(path)
    except CheckpointError as exc:
        report = load_checkpoint(model, path, backbone_only=True)
        return f"initialised from {report.summary()} (no AVA model: {exc})"
    theirs = source.model.state_dict()
    own = model.state_dict()
    problem = state_dict_mismatch(
        {k: v for k, v in own.items() if not k.startswith(HEAD_PREFIX)},
        {k: v for k, v in theirs.items() if not k.startswith(HEAD_PREFIX)})
    if problem:
        raise CheckpointError(f"{path}: its {source.source} model is not this config's "
                              f"architecture; {problem}")
    merged = {k: (theirs[k] if not k.startswith(HEAD_PREFIX) else v) for k, v in own.items()}
    missing = [c for c in class_ids if c not in source.class_ids]
    rows = [source.class_ids.index(c) for c in class_ids] if not missing else []
    head = [k for k in own if k.startswith(HEAD_PREFIX)]
    if rows and all(theirs[k].shape[1:] == own[k].shape[1:] for k in head):
        merged.update({k: theirs[k][rows] for k in head})
        what = f"backbone and the head rows of the {len(rows)} classes trained"
    else:
        what = (f"backbone; head left fresh (the checkpoint does not score classes "
                f"{missing[:5]}{' ...' if len(missing) > 5 else ''})" if missing
                else "backbone; head left fresh")
    model.load_state_dict(merged)
    return f"initialised from {path} ({source.source} AVA checkpoint): {what}"


# ---------------------------------------------------------------------------------------------
# Saving and resuming


def non_finite_parameters(model: nn.Module) -> list[str]:
    """Names of the weights and buffers (BN statistics) holding a NaN or inf: a checkpoint
    with any of them could not be loaded (``read_training_checkpoint`` refuses it). Huge but
    finite weights can give infinite BN running variances while the loss is still finite."""
    return [n for n, v in model.state_dict().items()
            if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def save_training_checkpoint(state: TrainState, path: Path, cfg: Config) -> Path:
    """Write ``state`` to ``path`` (rank 0, atomically) with the RNG states of every process.

    Every process must call it (the RNG states are gathered). Raises TrainingDiverged, writing
    nothing, if a weight is not finite.
    """
    bad = non_finite_parameters(state.model)
    if bad:
        raise TrainingDiverged(
            f"training diverged: non-finite weights or BN statistics after iteration {state.iteration} "
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
