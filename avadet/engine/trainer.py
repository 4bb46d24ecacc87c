"""The training loop: ``train(cfg)``, one process or many (``torchrun``), resumable.

One iteration: the global batch of the seed plan (:mod:`avadet.engine.sampler`), rank ``r``
reading its share; forward (autocast on CUDA with ``train.amp``); BCE summed over this
process's boxes and classes and divided by the *global* number of box-class terms (summed
over the processes), times the number of processes, so that DDP's gradient average equals
the one-process gradient of the whole batch; backward, optional gradient clipping, step.

After iteration ``i``:

- every ``train.log_every_iters``: a metrics row (loss, lr, samples/s) and the progress bar;
- every ``train.checkpoint_every_iters``, at each epoch end and at the end: a checkpoint
  with the model, optimiser, schedule, grad scaler and RNG states (of every process) and the
  progress, written atomically by rank 0;
- every ``train.eval_every_epochs`` and at the end: precise BN statistics (if
  ``solver.precise_bn_batches``), a checkpoint, then :func:`~avadet.engine.inference.run_inference`
  on the val split and frame-mAP, exactly as ``avadet test`` computes it.

A NaN or infinite loss stops the run before the step that would use it
(:class:`TrainingDiverged`); nothing is written after the last good checkpoint.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from avadet.config import Config, config_to_dict, dump_config
from avadet.data import AvaDataset, collate
from avadet.engine.build import build_dataset
from avadet.engine.checkpoint import (
    FINAL_NAME,
    checkpoint_dir,
    iteration_checkpoint_path,
    latest_checkpoint,
    prune_checkpoints,
    read_training_checkpoint,
    save_checkpoint,
    unwrap,
)
from avadet.engine.distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    broadcast_object,
    init_distributed,
    teardown,
)
from avadet.engine.inference import (
    eval_setup,
    evaluate_predictions,
    run_inference,
    to_device,
    write_predictions,
)
from avadet.engine.metrics import MetricsLog, attach_log_file, detach
from avadet.engine.sampler import SeedPlanBatchSampler
from avadet.engine.solver import (
    action_loss_sum,
    batchnorm_layers,
    build_optimizer,
    check_solver,
    scheduled_lr,
    set_lr,
    set_train_mode,
    update_precise_bn,
)
from avadet.errors import AvadetError, CheckpointError, ConfigError
from avadet.evaluation import EvalResult
from avadet.io import atomic_write
from avadet.models import build_model, load_checkpoint

# tqdm's monitor thread would be running when the DataLoader forks its workers; forking a
# process with live threads can deadlock the child (CPython's after-fork hooks).
tqdm.monitor_interval = 0

logger = logging.getLogger(__name__)


class TrainingDiverged(AvadetError):
    """The loss became NaN or infinite; the run stopped without saving the bad state."""


@dataclass
class TrainResult:
    """``final_checkpoint``: ``<output_dir>/checkpoints/model_final.pt``; ``eval_result``: the
    last evaluation of this call (None if it evaluated nothing); ``iteration``: steps done."""

    output_dir: Path
    final_checkpoint: Path
    metrics_csv: Path
    eval_result: Optional[EvalResult]
    iteration: int = 0


# ---------------------------------------------------------------------------------------------
# RNG states (checkpointed per process, so a resumed run draws what the uninterrupted one did)


def capture_rng_state(device: torch.device) -> dict[str, Any]:
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
# Helpers


def _loader(dataset: AvaDataset, sampler: Any, cfg: Config, info: DistInfo) -> DataLoader:
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.data.num_workers,
        pin_memory=info.device.type == "cuda",
        # Worker seeds come from this generator, never from the global RNG (which dropout
        # uses): the global stream then depends only on the iterations done.
        generator=torch.Generator(),
    )


def _non_finite_parameters(model: nn.Module) -> list[str]:
    return [n for n, p in unwrap(model).named_parameters() if not torch.isfinite(p).all()]


def _prepare_output_dir(out: Path, *, resume: bool, overwrite: bool, info: DistInfo) -> None:
    # Rank 0 decides (the folder may exist only on its node) and every process raises alike.
    problem = None
    if info.is_main:
        existing = latest_checkpoint(out)
        if existing is not None and not resume:
            if not overwrite:
                problem = (
                    f"{out} already holds checkpoints (latest {existing.name}); resume it (the "
                    "default), choose another train.output_dir, or pass --overwrite to start over"
                )
            else:
                shutil.rmtree(checkpoint_dir(out))
                for name in ("metrics.csv", "log.txt"):
                    (out / name).unlink(missing_ok=True)
                shutil.rmtree(out / "eval", ignore_errors=True)
                shutil.rmtree(out / "tensorboard", ignore_errors=True)
    problem = broadcast_object(problem, info)
    if problem:
        raise AvadetError(problem)


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


def _check_config(cfg: Config, train_set: AvaDataset) -> None:
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


# ---------------------------------------------------------------------------------------------
# The loop


def train(cfg: Config, *, resume: bool = True, overwrite: bool = False) -> TrainResult:
    """Train ``cfg``'s model on its train split; see the module docstring.

    ``resume``: continue from the latest checkpoint in ``train.output_dir`` if there is one.
    ``resume=False`` refuses an output folder that holds checkpoints unless ``overwrite``,
    which deletes them (and the metrics) first.
    Under ``torchrun`` every process calls this; only rank 0 writes files.
    """
    info = init_distributed(cfg.train.device)
    try:
        return _train(cfg, info, resume=resume, overwrite=overwrite)
    finally:
        if info.distributed:
            teardown()


def _train(cfg: Config, info: DistInfo, *, resume: bool, overwrite: bool) -> TrainResult:
    out = Path(cfg.train.output_dir).expanduser()
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    barrier(info)
    _prepare_output_dir(out, resume=resume, overwrite=overwrite, info=info)
    handlers = attach_log_file(out / "log.txt" if info.is_main else None, console=False)
    metrics = MetricsLog(out, enabled=info.is_main)
    try:
        return _run(cfg, info, out, metrics, resume=resume)
    finally:
        metrics.close()
        detach(handlers)


def _run(cfg: Config, info: DistInfo, out: Path, metrics: MetricsLog, *, resume: bool) -> TrainResult:
    solver, tcfg = cfg.solver, cfg.train
    seed = int(tcfg.seed)
    device = info.device
    seed_everything(seed)
    train_set = build_dataset(cfg, "train")
    _check_config(cfg, train_set)
    class_ids = train_set.class_ids
    sampler = SeedPlanBatchSampler(
        len(train_set), solver.batch_size, seed, rank=info.rank, world_size=info.world_size
    )
    per_epoch = sampler.iterations
    total = solver.max_iters if solver.max_iters > 0 else max(1, round(solver.max_epoch * per_epoch))
    eval_period = round(tcfg.eval_every_epochs * per_epoch) if tcfg.eval_every_epochs > 0 else 0
    eval_period = max(eval_period, 1) if tcfg.eval_every_epochs > 0 else 0
    amp = bool(tcfg.amp and device.type == "cuda")

    model = build_model(cfg)
    # Rank 0 reads the checkpoint and hands it to the others: the output folder need not be
    # shared between nodes.
    ckpt_path = latest_checkpoint(out) if resume and info.is_main else None
    state: Optional[dict] = None
    problem = None
    if ckpt_path is not None:
        try:
            state = read_training_checkpoint(ckpt_path)
        except CheckpointError as exc:
            problem = str(exc)
        if state is not None and "optimizer_state" not in state:
            problem = f"{ckpt_path}: holds no training state; cannot resume from it"
    if info.distributed:
        problem = broadcast_object(problem, info)
        if problem is None:
            ckpt_path, state = broadcast_object((ckpt_path, state), info)
    if problem:
        raise CheckpointError(problem)
    if state is None and tcfg.init_checkpoint:
        # Rank 0 loads it; DistributedDataParallel copies rank 0's weights to the others.
        problem = None
        if info.is_main:
            try:
                report = load_checkpoint(model, tcfg.init_checkpoint, backbone_only=True)
            except AvadetError as exc:
                problem = f"train.init_checkpoint: {exc}"
            else:
                logger.info("init: %s", report.summary())
                print(f"avadet train: initialised from {report.summary()}")
        problem = broadcast_object(problem, info)
        if problem:
            raise CheckpointError(problem)
    model.to(device)
    optimizer = build_optimizer(model, solver)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    iteration = 0
    if state is not None:
        extra = state.get("extra", {})
        if int(extra.get("iters_per_epoch", per_epoch)) != per_epoch:
            raise CheckpointError(
                f"{ckpt_path}: made with {extra.get('iters_per_epoch')} iterations per epoch, "
                f"this config gives {per_epoch} (the training set or solver.batch_size changed); "
                "start a new train.output_dir"
            )
        changes = _config_changes(state["config"], config_to_dict(cfg))
        if changes and info.is_main:
            logger.warning("resuming with a changed config: %s", "; ".join(changes))
        try:
            unwrap(model).load_state_dict(state["model_state"])
        except RuntimeError as exc:
            raise CheckpointError(f"{ckpt_path}: does not fit this model config: {exc}") from None
        optimizer.load_state_dict(state["optimizer_state"])
        if state.get("scaler_state"):
            scaler.load_state_dict(state["scaler_state"])
        iteration = int(state["iteration"])
        rng_states = state.get("rng_state") or []
        if len(rng_states) == info.world_size:
            restore_rng_state(rng_states[info.rank], device)
        else:
            if info.is_main:
                logger.warning(
                    "checkpoint has RNG states of %d processes, this run has %d: reseeding",
                    len(rng_states), info.world_size,
                )
            seed_everything(seed + 7919 * iteration + info.rank)
        if info.is_main:
            print(f"avadet train: resuming from {ckpt_path} (iteration {iteration})")
    else:
        # Identical initial weights on every process (seeded above); from here on each
        # process has its own stream (dropout masks differ between processes).
        seed_everything(seed + info.rank)

    if iteration >= total:
        final = checkpoint_dir(out) / FINAL_NAME
        if info.is_main:
            print(f"avadet train: {out} is already trained to iteration {iteration} (of {total})")
        return TrainResult(out, final if final.is_file() else ckpt_path, metrics.path, None, iteration)
    if info.is_main:
        (checkpoint_dir(out) / FINAL_NAME).unlink(missing_ok=True)  # training continues past it
        metrics.truncate_after(iteration)
        with atomic_write(out / "config.yaml") as handle:
            handle.write(dump_config(cfg))
        logger.info(
            "training %d iterations (%d per epoch, global batch %d over %d process(es), device %s)",
            total, per_epoch, solver.batch_size, info.world_size, device,
        )

    net: nn.Module = model
    if info.distributed:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    val_set = None
    setup = None
    if eval_period:
        setup = eval_setup(cfg, class_ids)
        if setup is None:
            logger.warning("no val ground truth (data.val_annotations): no evaluation during training")
        else:
            val_set = build_dataset(cfg, "val", tables=setup.tables, class_ids=class_ids)

    last_saved: Optional[Path] = ckpt_path
    eval_result: Optional[EvalResult] = None

    def save(path: Path, lr: float) -> Path:
        bad = _non_finite_parameters(model)
        if bad:
            raise TrainingDiverged(
                f"training diverged: non-finite weights after iteration {iteration} "
                f"({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}); not saved; the last "
                f"good checkpoint is {last_saved or 'none (none written)'}; lower solver.base_lr "
                "or set solver.clip_grad_norm"
            )
        rng = all_gather_objects(capture_rng_state(device), info)
        if info.is_main:
            save_checkpoint(
                path, model, cfg, class_ids, epoch=iteration // per_epoch, iteration=iteration,
                training_state={
                    "optimizer_state": optimizer.state_dict(),
                    "scheduler_state": {"iteration": iteration, "lr": lr, "total_iters": total},
                    "scaler_state": scaler.state_dict(),
                    "rng_state": rng,
                    "extra": {
                        "iters_per_epoch": per_epoch,
                        "iter_in_epoch": iteration % per_epoch,
                        "world_size": info.world_size,
                        "seed": seed,
                    },
                },
            )
            prune_checkpoints(out, tcfg.keep_checkpoints)
        barrier(info)
        return path

    def precise_bn(epoch: int) -> None:
        if solver.precise_bn_batches <= 0 or not batchnorm_layers(model):
            return
        bn_sampler = SeedPlanBatchSampler(
            len(train_set), solver.batch_size, seed, rank=info.rank, world_size=info.world_size
        )
        bn_sampler.set_epoch(epoch)
        loader = _loader(train_set, bn_sampler, cfg, info)

        def batches():
            for j, batch in enumerate(loader):
                if j >= solver.precise_bn_batches:
                    break
                yield to_device(batch, device)

        update_precise_bn(model, batches())
        if info.distributed:
            for bn in batchnorm_layers(model):
                for buf in (bn.running_mean, bn.running_var):
                    all_reduce_sum(buf, info).div_(info.world_size)

    def evaluate(lr: float) -> EvalResult:
        assert val_set is not None and setup is not None
        predictions = run_inference(
            model, val_set, class_ids, batch_size=cfg.test.batch_size,
            num_workers=cfg.data.num_workers, info=info, amp=amp,
        )
        result = None
        if info.is_main:
            # Only the latest evaluation's rows are kept (AVA val: ~10M rows, ~0.5 GB a file).
            previous = sorted((out / "eval").glob("predictions_iter_*.csv"))
            write_predictions(out / "eval" / f"predictions_iter_{iteration:07d}.csv", predictions)
            for old_file in previous:
                if old_file.name != f"predictions_iter_{iteration:07d}.csv":
                    old_file.unlink(missing_ok=True)
            result = evaluate_predictions(predictions, setup)
            logger.info("eval at iteration %d: frame-mAP %.4f", iteration, result.map)
            metrics.write(kind="eval", epoch=iteration / per_epoch, iteration=iteration, lr=lr,
                          map=float(result.map), time_s=time.time())
        result = all_gather_objects(result, info)[0]
        return result

    bar = tqdm(total=total, initial=iteration, desc="train", unit="it", dynamic_ncols=True,
               disable=not info.is_main)
    window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
    lr = scheduled_lr(solver, iteration / per_epoch)
    try:
        while iteration < total:
            epoch, start = divmod(iteration, per_epoch)
            sampler.set_epoch(epoch, start)
            train_set.set_seed_plan(seed, epoch)
            set_train_mode(net, freeze_bn=solver.freeze_bn)
            skipped_before = train_set.skipped
            for batch in _loader(train_set, sampler, cfg, info):
                lr = scheduled_lr(solver, iteration / per_epoch)
                set_lr(optimizer, lr)
                inputs, boxes = to_device(batch, device)
                labels = batch.labels.to(device, non_blocking=device.type == "cuda")
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                    output = net(inputs, boxes, return_logits=True)
                loss_sum = action_loss_sum(output.logits, labels)
                stats = torch.stack(
                    [loss_sum.detach(), torch.tensor(float(labels.numel()), device=device)]
                )
                all_reduce_sum(stats, info)
                terms = stats[1].clamp(min=1.0)
                global_loss = float(stats[0] / terms)
                if not math.isfinite(global_loss):
                    raise TrainingDiverged(
                        f"training diverged: the loss is {global_loss} at iteration {iteration + 1} "
                        f"(epoch {iteration / per_epoch:.2f}, lr {lr:.4g}); stopped before that "
                        f"step; the last good checkpoint is {last_saved or 'none (none written)'}; "
                        "lower solver.base_lr, lengthen solver.warmup_epochs or set "
                        "solver.clip_grad_norm"
                    )
                loss = loss_sum * info.world_size / terms
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if solver.clip_grad_norm > 0:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), solver.clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                iteration += 1
                bar.update(1)
                window_loss += global_loss
                window_steps += 1

                if iteration % tcfg.log_every_iters == 0 or iteration == total:
                    elapsed = max(time.perf_counter() - window_start, 1e-9)
                    speed = window_steps * solver.batch_size / elapsed
                    mean_loss = window_loss / window_steps
                    bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.3g}", samples_s=f"{speed:.1f}")
                    metrics.write(kind="train", epoch=iteration / per_epoch, iteration=iteration,
                                  loss=mean_loss, lr=lr, samples_per_s=speed, time_s=time.time())
                    logger.info("iter %d/%d epoch %.2f loss %.5f lr %.5g %.1f samples/s",
                                iteration, total, iteration / per_epoch, mean_loss, lr, speed)
                    window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()

                epoch_end = iteration % per_epoch == 0
                last = iteration == total
                do_eval = bool(val_set is not None and (last or iteration % eval_period == 0))
                if do_eval or last:
                    precise_bn(epoch)
                if epoch_end and info.is_main:
                    skipped = train_set.skipped - skipped_before
                    logger.info("epoch %d done; %d unreadable keyframe(s) replaced", epoch + 1, skipped)
                    if skipped:
                        print(f"avadet train: epoch {epoch + 1}: {skipped} unreadable keyframe(s) "
                              "replaced (see log.txt)")
                if do_eval or last or epoch_end or iteration % tcfg.checkpoint_every_iters == 0:
                    last_saved = save(iteration_checkpoint_path(out, iteration), lr)
                if do_eval:
                    eval_result = evaluate(lr)
                    set_train_mode(net, freeze_bn=solver.freeze_bn)
                if last:
                    break
    finally:
        bar.close()

    final = checkpoint_dir(out) / FINAL_NAME
    if info.is_main:
        assert last_saved is not None
        tmp = final.with_name(f".{FINAL_NAME}.tmp")
        shutil.copyfile(last_saved, tmp)
        tmp.replace(final)
        logger.info("training done: %s", final)
        if eval_result is not None:
            print(f"avadet train: done at iteration {iteration}; frame-mAP {eval_result.map:.4f}; {final}")
        else:
            print(f"avadet train: done at iteration {iteration}; {final}")
    barrier(info)
    return TrainResult(out, final, metrics.path, eval_result, iteration)

