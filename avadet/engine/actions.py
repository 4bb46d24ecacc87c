"""The periodic work of the training loop: small objects with ``due(state)`` and ``run(state)``.

After each step the loop runs, in list order, every action that is due
(:func:`build_actions` builds the list):

1. :class:`ProgressBar`: every step;
2. :class:`LogMetrics`: every ``train.log_every_iters`` and at the end, a metrics row (loss,
   lr, samples/s), a log line and the bar's postfix;
3. :class:`PreciseBN` (with ``solver.precise_bn_batches`` and BatchNorm layers): before each
   evaluation and at the end;
4. :class:`EpochReport`: at each epoch end, the unreadable keyframes the data layer replaced;
5. :class:`SaveCheckpoint`: every ``train.checkpoint_every_iters``, at each epoch end, before
   each evaluation and at the end (the model evaluated is the one saved);
6. :class:`Evaluate` (with val ground truth and ``train.eval_every_epochs``): every
   ``eval_every_epochs`` epochs and at the end, inference on the val split and frame-mAP,
   exactly as ``avadet test`` computes them.

Every action leaves the model in training mode.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterator, Optional, Protocol

import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from avadet.config import Config
from avadet.data import AvaDataset
from avadet.engine.build import build_dataset
from avadet.engine.checkpoint import iteration_checkpoint_path, prune_checkpoints
from avadet.engine.distributed import all_gather_objects, all_reduce_sum, barrier
from avadet.engine.inference import (
    EvalSetup,
    eval_setup,
    evaluate_predictions,
    inference_model,
    run_inference,
    to_device,
    write_predictions,
)
from avadet.engine.metrics import MetricsLog
from avadet.engine.sampler import SeedPlanBatchSampler
from avadet.engine.solver import batchnorm_layers, set_train_mode, update_precise_bn
from avadet.engine.state import TrainState, save_training_checkpoint
from avadet.engine.step import training_loader
from avadet.evaluation import EvalResult

# One source name for the whole run's lines in log.txt, whichever module writes them.
logger = logging.getLogger("avadet.engine.trainer")
# The evaluations' results, under their own name so that a command can show just these on the
# console (``avadet train`` does) while log.txt gets them with everything else.
EVAL_LOGGER = "avadet.engine.trainer.evaluation"
eval_logger = logging.getLogger(EVAL_LOGGER)


class Action(Protocol):
    """Periodic work: ``due`` says whether to run after the step that made ``state``."""

    def due(self, state: TrainState) -> bool: ...

    def run(self, state: TrainState) -> None: ...


def every(period: int, iteration: int) -> bool:
    """Whether ``iteration`` ends a period of ``period`` iterations (never for 0)."""
    return period > 0 and iteration % period == 0


def evaluation_period(eval_every_epochs: float, iters_per_epoch: int) -> int:
    """``train.eval_every_epochs`` in iterations (at least 1; 0: never)."""
    if eval_every_epochs <= 0:
        return 0
    return max(round(eval_every_epochs * iters_per_epoch), 1)


class ProgressBar:
    """Moves the progress bar to ``state.iteration`` (rank 0's bar; others are disabled)."""

    def __init__(self, bar: tqdm):
        self.bar = bar

    def due(self, state: TrainState) -> bool:
        return True

    def run(self, state: TrainState) -> None:
        self.bar.update(state.iteration - self.bar.n)


class LogMetrics:
    """Every ``every`` iterations and at the end: the window's mean loss, the learning rate
    and samples/s (``global_batch`` clips per step) as a ``train`` row of ``metrics``, a log
    line and the bar's postfix; then a new window."""

    def __init__(self, metrics: MetricsLog, bar: tqdm, *, every: int, global_batch: int):
        self.metrics = metrics
        self.bar = bar
        self.every = every
        self.global_batch = global_batch

    def due(self, state: TrainState) -> bool:
        return every(self.every, state.iteration) or state.finished

    def run(self, state: TrainState) -> None:
        window = state.window
        elapsed = max(time.perf_counter() - window.start, 1e-9)
        speed = window.steps * self.global_batch / elapsed
        mean_loss = window.loss_sum / window.steps
        self.bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{state.lr:.3g}", samples_s=f"{speed:.1f}")
        self.metrics.write(kind="train", epoch=state.epoch, iteration=state.iteration,
                           loss=mean_loss, lr=state.lr, samples_per_s=speed, time_s=time.time())
        logger.info("iter %d/%d epoch %.2f loss %.5f lr %.5g %.1f samples/s",
                    state.iteration, state.total_iters, state.epoch, mean_loss, state.lr, speed)
        window.reset()


class PreciseBN:
    """Before each evaluation (every ``eval_period`` iterations; 0: none) and at the end:
    every BatchNorm layer's running statistics re-estimated on the first ``batches`` training
    batches of the current epoch (PySlowFast's precise BN), averaged over the processes."""

    def __init__(self, *, batches: int, eval_period: int):
        self.batches = batches
        self.eval_period = eval_period

    def due(self, state: TrainState) -> bool:
        return state.finished or every(self.eval_period, state.iteration)

    def run(self, state: TrainState) -> None:
        info = state.info
        sampler = SeedPlanBatchSampler(
            len(state.train_set), state.sampler.global_batch, state.seed,
            rank=info.rank, world_size=info.world_size,
        )
        sampler.set_epoch(state.sampler.epoch)
        loader = training_loader(state.train_set, sampler, num_workers=state.num_workers,
                                 device=state.device)
        update_precise_bn(state.model, self._inputs(loader, state.device))
        if info.distributed:
            for bn in batchnorm_layers(state.model):
                for buf in (bn.running_mean, bn.running_var):
                    all_reduce_sum(buf, info).div_(info.world_size)
        set_train_mode(state.net, freeze_bn=state.solver.freeze_bn)

    def _inputs(
        self, loader: DataLoader, device: torch.device
    ) -> Iterator[tuple[list[torch.Tensor], torch.Tensor]]:
        for j, batch in enumerate(loader):
            if j >= self.batches:
                break
            yield to_device(batch, device)


class EpochReport:
    """At each epoch end (rank 0): logs how many unreadable keyframes of ``train_set`` the
    data layer replaced during the epoch, and notes it for the user when there were any."""

    def __init__(self, train_set: AvaDataset):
        self.skipped_before = train_set.skipped

    def due(self, state: TrainState) -> bool:
        return state.iteration % state.iters_per_epoch == 0

    def run(self, state: TrainState) -> None:
        skipped = state.train_set.skipped - self.skipped_before
        self.skipped_before = state.train_set.skipped
        if not state.info.is_main:
            return
        epoch = state.iteration // state.iters_per_epoch
        logger.info("epoch %d done; %d unreadable keyframe(s) replaced", epoch, skipped)
        if skipped:
            state.note(f"epoch {epoch}: {skipped} unreadable keyframe(s) replaced (see log.txt)")


class SaveCheckpoint:
    """Every ``every`` iterations, at each epoch end, before each evaluation (every
    ``eval_period``; 0: none) and at the end: ``checkpoints/checkpoint_iter_N.pt`` of
    ``output_dir`` (atomic, rank 0), then only the newest ``keep`` kept (0: all)."""

    def __init__(self, cfg: Config, output_dir: Path, *, every: int, eval_period: int, keep: int):
        self.cfg = cfg
        self.output_dir = output_dir
        self.every = every
        self.eval_period = eval_period
        self.keep = keep

    def due(self, state: TrainState) -> bool:
        i = state.iteration
        return (state.finished or i % state.iters_per_epoch == 0
                or every(self.every, i) or every(self.eval_period, i))

    def run(self, state: TrainState) -> None:
        path = iteration_checkpoint_path(self.output_dir, state.iteration)
        save_training_checkpoint(state, path, self.cfg)
        if state.info.is_main:
            prune_checkpoints(self.output_dir, self.keep)
        barrier(state.info)
        state.last_checkpoint = path


class Evaluate:
    """Every ``period`` iterations and at the end: the model's predictions on ``val_set``
    (:func:`~avadet.engine.inference.run_inference`, split over the processes) and their
    frame-mAP against ``setup``, into ``state.eval_result``. Rank 0 writes
    ``eval/predictions_iter_N.csv`` of ``output_dir`` (deleting earlier ones: ~0.5 GB each on
    AVA val), an ``eval`` row of ``metrics`` and a log line. The model is scored as
    ``avadet test`` scores a checkpoint (``deploy``, ``precision``: its inference path, from
    ``test.deploy`` / ``test.precision``), so both write the same predictions."""

    def __init__(self, val_set: AvaDataset, setup: EvalSetup, output_dir: Path,
                 metrics: MetricsLog, *, period: int, batch_size: int, num_workers: int,
                 deploy: bool = True, precision: str = "fp32"):
        self.val_set = val_set
        self.setup = setup
        self.output_dir = output_dir
        self.metrics = metrics
        self.period = period
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.deploy = deploy
        self.precision = precision

    def due(self, state: TrainState) -> bool:
        return state.finished or every(self.period, state.iteration)

    def run(self, state: TrainState) -> None:
        # A folded copy on the CPU (the training model is left as it is).
        model = inference_model(state.model, state.info.device, deploy=self.deploy,
                                precision=self.precision)
        predictions = run_inference(
            model, self.val_set, state.class_ids, batch_size=self.batch_size,
            num_workers=self.num_workers, info=state.info, amp=state.amp,
        )
        result = self._score(state, predictions) if state.info.is_main else None
        state.eval_result = all_gather_objects(result, state.info)[0]
        set_train_mode(state.net, freeze_bn=state.solver.freeze_bn)

    def _score(self, state: TrainState, predictions: pd.DataFrame) -> EvalResult:
        folder = self.output_dir / "eval"
        name = f"predictions_iter_{state.iteration:07d}.csv"
        previous = sorted(folder.glob("predictions_iter_*.csv"))
        write_predictions(folder / name, predictions)
        for old_file in previous:
            if old_file.name != name:
                old_file.unlink(missing_ok=True)
        result = evaluate_predictions(predictions, self.setup)
        eval_logger.info("eval at iteration %d (epoch %.2f): frame-mAP %.4f", state.iteration,
                         state.epoch, result.map)
        self.metrics.write(kind="eval", epoch=state.epoch, iteration=state.iteration,
                           lr=state.lr, map=float(result.map), time_s=time.time())
        return result


def validation_data(cfg: Config, class_ids: list[int]) -> Optional[tuple[AvaDataset, EvalSetup]]:
    """The val split and its ground truth, or None (with a warning) if there is none."""
    setup = eval_setup(cfg, class_ids)
    if setup is None:
        logger.warning("no val ground truth (data.val_annotations): no evaluation during training")
        return None
    return build_dataset(cfg, "val", tables=setup.tables, class_ids=class_ids), setup


def build_actions(
    cfg: Config, state: TrainState, *, output_dir: Path, metrics: MetricsLog, bar: tqdm
) -> list[Action]:
    """The periodic work of a run of ``cfg``, in the order it runs (module docstring)."""
    tcfg, solver = cfg.train, cfg.solver
    validation = None
    if tcfg.eval_every_epochs > 0:
        validation = validation_data(cfg, state.class_ids)
    eval_period = evaluation_period(tcfg.eval_every_epochs, state.iters_per_epoch) if validation else 0
    actions: list[Action] = [
        ProgressBar(bar),
        LogMetrics(metrics, bar, every=tcfg.log_every_iters, global_batch=solver.batch_size),
    ]
    if solver.precise_bn_batches > 0 and batchnorm_layers(state.model):
        actions.append(PreciseBN(batches=solver.precise_bn_batches, eval_period=eval_period))
    actions.append(EpochReport(state.train_set))
    actions.append(SaveCheckpoint(cfg, output_dir, every=tcfg.checkpoint_every_iters,
                                  eval_period=eval_period, keep=tcfg.keep_checkpoints))
    if validation is not None:
        val_set, setup = validation
        actions.append(Evaluate(val_set, setup, output_dir, metrics, period=eval_period,
                                batch_size=cfg.test.batch_size, num_workers=cfg.data.num_workers,
                                deploy=cfg.test.deploy, precision=cfg.test.precision))
    return actions
