"""The training loop: ``train(cfg)``, one process or many (``torchrun``), resumable.

A run is a :class:`~avadet.engine.state.TrainState` (built fresh, or resumed from the latest
checkpoint of ``train.output_dir``), a step function
(:func:`~avadet.engine.step.train_step`: one iteration on the global batch of the seed plan,
rank ``r`` reading its share) and a plain list of periodic actions
(:func:`~avadet.engine.actions.build_actions`: metrics and progress bar, precise BN, epoch
report, checkpoints, evaluation). :func:`run_loop` is all of it::

    for batch in loader:
        step(state, batch)
        for action in actions:
            if action.due(state):
                action.run(state)

A NaN or infinite loss stops the run before the step that would use it
(:class:`TrainingDiverged`); nothing is written after the last good checkpoint.
"""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from torch import nn
from tqdm import tqdm

from avadet.config import Config, config_to_dict, dump_config
from avadet.engine.actions import Action, Evaluate, build_actions, evaluation_period, every
from avadet.engine.build import dataset_files
from avadet.engine.checkpoint import (
    FINAL_NAME,
    checkpoint_dir,
    latest_checkpoint,
    remove_stale_temporaries,
    write_final_checkpoint,
)
from avadet.engine.distributed import (
    DistInfo,
    barrier,
    broadcast_object,
    init_distributed,
    teardown,
)
from avadet.engine.metrics import MetricsLog, attach_log_file, detach
from avadet.engine.runlock import RunFolderLocked, RunLock, lock_run_folder
from avadet.engine.solver import action_loss_sum, set_train_mode
from avadet.engine.state import (
    LossFn,
    TrainingDiverged,
    TrainState,
    build_state,
    read_resume_checkpoint,
    resume_state,
    seed_everything,
)
from avadet.engine.step import train_step, training_loader
from avadet.errors import AvadetError, disk_full_cause
from avadet.evaluation import EvalResult
from avadet.io import atomic_write
from avadet.io.atomic import DiskFull, disk_full

__all__ = ["OutputDirInUse", "RunFolderLocked", "TrainResult", "TrainingDiverged",
           "TrainingInterrupted", "request_stop", "run_loop", "train"]

# tqdm's monitor thread would be running when the DataLoader forks its workers; forking a
# process with live threads can deadlock the child (CPython's after-fork hooks).
tqdm.monitor_interval = 0

logger = logging.getLogger(__name__)

# Set by request_stop (a signal handler): the loop stops at its next safe point.
_STOP = threading.Event()


def request_stop(stop: bool = True) -> None:
    """Ask the running training to stop as Ctrl-C stops it (TrainingInterrupted, with the
    command that resumes it), after the current step and its due actions; ``False`` withdraws
    the request. Safe to call from a signal handler: a KeyboardInterrupt raised inside one lands
    wherever the main thread happens to be, and one that lands in a finaliser (a DataLoader's,
    a tensor's) is printed and dropped by Python, so the run went on training."""
    if stop:
        _STOP.set()
    else:
        _STOP.clear()

StepFn = Callable[[TrainState, Any], float]


class OutputDirInUse(AvadetError):
    """``resume=False`` on an output folder that holds checkpoints, without ``overwrite``."""

    def __init__(self, output_dir: Path, latest: str):
        self.output_dir = output_dir
        self.latest = latest
        super().__init__(
            f"{output_dir} already holds checkpoints (latest {latest}); resume it "
            "(resume=True, the default), choose another train.output_dir, or start over with "
            "resume=False and overwrite=True, which deletes them first"
        )


class TrainingInterrupted(KeyboardInterrupt):
    """The run was interrupted; ``checkpoint`` (None: none yet) is what resuming
    ``output_dir`` continues from. A ``KeyboardInterrupt``, so callers that stop on one still do."""

    def __init__(self, output_dir: Path, checkpoint: Optional[Path]):
        self.output_dir = output_dir
        self.checkpoint = checkpoint
        where = (f"resuming {output_dir} continues from {checkpoint.name}" if checkpoint
                 else f"{output_dir} holds no checkpoint yet: a rerun starts over")
        super().__init__(f"training interrupted; {where}")


@dataclass
class TrainResult:
    """``final_checkpoint``: ``<output_dir>/checkpoints/model_final.pt``; ``eval_result``: the
    last evaluation of this call (None if it evaluated nothing); ``iteration``: steps done;
    ``notes``: what rank 0 had to tell its user, in order (initialisation, resume, replaced
    keyframes, the end); empty on other ranks."""

    output_dir: Path
    final_checkpoint: Path
    metrics_csv: Path
    eval_result: Optional[EvalResult]
    iteration: int = 0
    notes: list[str] = field(default_factory=list)


def train(
    cfg: Config, *, resume: bool = True, overwrite: bool = False, loss_fn: LossFn = action_loss_sum
) -> TrainResult:
    """Train ``cfg``'s model on its train split; see the module docstring.

    ``resume``: continue from the latest checkpoint in ``train.output_dir`` if there is one.
    ``resume=False`` refuses an output folder that holds checkpoints (:class:`OutputDirInUse`)
    unless ``overwrite``, which deletes them (and the metrics) first. ``loss_fn``: the loss
    summed over a process's boxes and classes, ``(logits (K, C), labels (K, C)) -> scalar``
    (BCE by default). Under ``torchrun`` every process calls this; only rank 0 writes files.
    """
    info = init_distributed(cfg.train.device)
    try:
        return _train(cfg, info, resume=resume, overwrite=overwrite, loss_fn=loss_fn)
    finally:
        if info.distributed:
            teardown()


def _train(cfg: Config, info: DistInfo, *, resume: bool, overwrite: bool, loss_fn: LossFn) -> TrainResult:
    out = Path(cfg.train.output_dir).expanduser()
    lock = _lock_output_dir(out, info)
    try:
        _prepare_output_dir(out, resume=resume, overwrite=overwrite, info=info)
        handlers = attach_log_file(out / "log.txt" if info.is_main else None, console=False)
        metrics = MetricsLog(out, enabled=info.is_main)
        try:
            return _run(cfg, info, out, metrics, resume=resume, loss_fn=loss_fn)
        except Exception as exc:
            cause = disk_full_cause(exc)
            if cause is None:
                raise
            raise _out_of_space(cause, out) from None
        except KeyboardInterrupt:
            # Ctrl-C (or SIGTERM, where the caller turns it into one): say what a rerun resumes
            # from; files are consistent (every write is atomic or a whole appended row).
            raise TrainingInterrupted(out, latest_checkpoint(out)) from None
        finally:
            metrics.close()
            detach(handlers)
    finally:
        if lock is not None:
            lock.release()


def _lock_output_dir(out: Path, info: DistInfo) -> Optional[RunLock]:
    """Rank 0 takes the folder's lock before anything is written (another live run there
    would mix its files with ours); every process raises alike when it is held."""
    lock, holder, unusable = None, None, None
    if info.is_main:
        try:
            out.mkdir(parents=True, exist_ok=True)
            lock = lock_run_folder(out)
        except RunFolderLocked as exc:
            holder = exc.holder
        except OSError as exc:  # a file in the way, no such parent, a read-only file system
            where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out) else ""
            reason = "it is a file, not a folder" if out.is_file() else f"{exc.strerror}{where}"
            unusable = f"train.output_dir {out} cannot hold the run: {reason}"
    # Also the barrier: the folder exists before any process goes on.
    holder, unusable = broadcast_object((holder, unusable), info)
    if holder is not None:
        raise RunFolderLocked(out, holder)
    if unusable is not None:
        raise AvadetError(unusable)
    return lock


def _out_of_space(exc: OSError, out: Path) -> DiskFull:
    """A full disk as one line: the folder, and what a rerun resumes from (a checkpoint is
    renamed into place only once complete, so the newest one is whole)."""
    folder = exc.folder if isinstance(exc, DiskFull) else (
        Path(exc.filename).parent if isinstance(exc.filename, (str, Path)) else out)
    last = latest_checkpoint(out)
    resume = f"the run resumes from {last.name}" if last is not None else "the run starts over"
    return disk_full(exc, folder, f"free some space and run the same command again ({resume})")


def _prepare_output_dir(out: Path, *, resume: bool, overwrite: bool, info: DistInfo) -> None:
    # Rank 0 decides (the folder may exist only on its node) and every process raises alike.
    in_use = None
    if info.is_main:
        existing = latest_checkpoint(out)
        if existing is not None and not resume:
            if not overwrite:
                in_use = existing.name
            else:
                shutil.rmtree(checkpoint_dir(out))
                for name in ("metrics.csv", "log.txt"):
                    (out / name).unlink(missing_ok=True)
                shutil.rmtree(out / "eval", ignore_errors=True)
                shutil.rmtree(out / "tensorboard", ignore_errors=True)
    in_use = broadcast_object(in_use, info)
    if in_use:
        raise OutputDirInUse(out, in_use)


def _run(
    cfg: Config, info: DistInfo, out: Path, metrics: MetricsLog, *, resume: bool, loss_fn: LossFn
) -> TrainResult:
    if info.is_main:
        for path in remove_stale_temporaries(out):
            logger.info("removed %s, left by an interrupted save", path)
    found = read_resume_checkpoint(out, info) if resume else None
    state = build_state(
        cfg, info, init_checkpoint=cfg.train.init_checkpoint if found is None else None,
        loss_fn=loss_fn,
    )
    if found is not None:
        path, checkpoint = found
        # Logged first: a change is often why the checkpoint does not fit.
        changes = _config_changes(checkpoint["config"], config_to_dict(cfg))
        if changes and info.is_main:
            logger.warning("resuming with a changed config: %s", "; ".join(changes))
        resume_state(state, checkpoint, path)
    else:
        # Identical initial weights on every process (seeded in build_state); from here on
        # each process has its own stream (dropout masks differ between processes).
        seed_everything(state.seed + info.rank)
    # An evaluation cut short by an interruption comes after its checkpoint, so the resumed
    # run starts past it and would never redo it: metrics.csv would lack that eval row (and a
    # finished run its final mAP). Rank 0 sees the rows; every process evaluates.
    redo_eval = broadcast_object(
        found is not None and info.is_main and _eval_cut_short(cfg, state, metrics), info)
    if state.finished and not redo_eval:
        return _already_trained(state, out, metrics)
    _start(state, cfg, out, metrics)
    if info.distributed:
        device = state.device
        state.net = nn.parallel.DistributedDataParallel(
            state.model, device_ids=[device.index] if device.type == "cuda" else None
        )
    with tqdm(total=state.total_iters, initial=state.iteration, desc="train", unit="it",
              dynamic_ncols=True, disable=not info.is_main) as bar:
        actions = build_actions(cfg, state, output_dir=out, metrics=metrics, bar=bar)
        if redo_eval:
            for action in actions:
                if isinstance(action, Evaluate):
                    logger.info("redoing the evaluation at iteration %d (it was interrupted)",
                                state.iteration)
                    action.run(state)
        run_loop(state, actions)
    return _finish(state, out, metrics)


def _eval_cut_short(cfg: Config, state: TrainState, metrics: MetricsLog) -> bool:
    """Whether ``state.iteration`` (just resumed) was due an evaluation that left no row."""
    period = evaluation_period(cfg.train.eval_every_epochs, state.iters_per_epoch)
    due = cfg.train.eval_every_epochs > 0 and (state.finished or every(period, state.iteration))
    if not due or state.iteration == 0 or metrics.has_row("eval", state.iteration):
        return False
    return dataset_files(cfg.data).existing("val_annotations") is not None  # else never evaluates


def run_loop(state: TrainState, actions: Sequence[Action], *, step: StepFn = train_step) -> None:
    """Train until ``state.total_iters``: epoch by epoch from ``state.iteration`` (the seed
    plan's order, skipping what an interrupted epoch consumed), each batch one ``step`` and
    then every action that is due, in list order; a :func:`request_stop` ends it after them
    (KeyboardInterrupt)."""
    state.window.reset()
    while not state.finished:
        epoch, start = divmod(state.iteration, state.iters_per_epoch)
        state.sampler.set_epoch(epoch, start)
        state.train_set.set_seed_plan(state.seed, epoch)
        set_train_mode(state.net, freeze_bn=state.solver.freeze_bn)
        loader = training_loader(state.train_set, state.sampler, num_workers=state.num_workers,
                                 device=state.device)
        for batch in loader:
            step(state, batch)
            for action in actions:
                if action.due(state):
                    action.run(state)
            if _STOP.is_set():
                raise KeyboardInterrupt
            if state.finished:
                break


def _start(state: TrainState, cfg: Config, out: Path, metrics: MetricsLog) -> None:
    """Rank 0: the files of a run that (re)starts at ``state.iteration``."""
    if not state.info.is_main:
        return
    (checkpoint_dir(out) / FINAL_NAME).unlink(missing_ok=True)  # training continues past it
    metrics.truncate_after(state.iteration)
    with atomic_write(out / "config.yaml") as handle:
        handle.write(dump_config(cfg))
    logger.info(
        "training %d iterations (%d per epoch, global batch %d over %d process(es), device %s)",
        state.total_iters, state.iters_per_epoch, cfg.solver.batch_size,
        state.info.world_size, state.device,
    )


def _already_trained(state: TrainState, out: Path, metrics: MetricsLog) -> TrainResult:
    final = checkpoint_dir(out) / FINAL_NAME
    message = f"{out} is already trained to iteration {state.iteration} (of {state.total_iters})"
    if state.info.is_main:
        logger.info("%s", message)
    state.note(message)
    assert state.last_checkpoint is not None  # resumed from it
    if state.info.is_main and not final.is_file():
        # A kill during the final copy of an earlier run: the last checkpoint is the model.
        write_final_checkpoint(state.last_checkpoint, out)
        logger.info("wrote the missing %s from %s", final, state.last_checkpoint)
    barrier(state.info)
    return TrainResult(out, final, metrics.path, None, state.iteration, state.notes)


def _finish(state: TrainState, out: Path, metrics: MetricsLog) -> TrainResult:
    """``model_final.pt``: a copy of the last checkpoint, renamed into place (rank 0)."""
    final = checkpoint_dir(out) / FINAL_NAME
    if state.info.is_main:
        assert state.last_checkpoint is not None
        write_final_checkpoint(state.last_checkpoint, out)
        logger.info("training done: %s", final)
        result = state.eval_result
        score = f"; frame-mAP {result.map:.4f}" if result is not None else ""
        state.note(f"done at iteration {state.iteration}{score}; {final}")
    barrier(state.info)
    return TrainResult(out, final, metrics.path, state.eval_result, state.iteration, state.notes)


def _config_changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            changes.extend(_config_changes(a, b, name + "."))
        elif a != b:
            changes.append(f"{name}: {a!r} -> {b!r}")
    return changes
