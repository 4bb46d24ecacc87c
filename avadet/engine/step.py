"""One training iteration, and the loader of the training batches.

The loss of an iteration: BCE summed over this process's boxes and classes and divided by the
*global* number of box-class terms (summed over the processes), times the number of
processes, so that DistributedDataParallel's gradient average equals the one-process gradient
of the whole global batch even when processes hold different numbers of boxes.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import DataLoader

from avadet.data import AvaDataset, Batch, collate
from avadet.engine.distributed import all_reduce_sum
from avadet.engine.inference import to_device
from avadet.engine.sampler import SeedPlanBatchSampler
from avadet.engine.solver import scheduled_lr, set_lr
from avadet.engine.state import TrainingDiverged, TrainState


def training_loader(
    dataset: AvaDataset, sampler: SeedPlanBatchSampler, *, num_workers: int, device: torch.device
) -> DataLoader:
    """Collated batches of ``dataset`` in the order of ``sampler`` (this process's share)."""
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        # Worker seeds come from this generator, never from the global RNG (which dropout
        # uses): the global stream then depends only on the iterations done.
        generator=torch.Generator(),
    )


def batch_on_device(
    batch: Batch, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The one place the trainer reads a batch: ``clips`` ``(B, 3, T, H, W)`` at the Fast
    pathway's rate, ``boxes`` ``(K, 5)`` ``[batch_index, x1, y1, x2, y2]`` in input pixels
    (both as inference reads them) and multi-hot ``labels`` ``(K, C)``, on ``device``."""
    clips, boxes = to_device(batch, device)
    labels = batch.labels.to(device, non_blocking=device.type == "cuda")
    return clips, boxes, labels


def train_step(state: TrainState, batch: Batch) -> float:
    """One optimiser step on this process's share ``batch`` of the global batch; returns the
    loss of the whole global batch (mean BCE over its box-class terms).

    Sets the scheduled learning rate, runs forward (float16 autocast with ``state.amp``),
    backward, optional gradient clipping and the step, then counts the iteration and adds the
    loss to ``state.window``. A NaN or infinite loss raises TrainingDiverged before the step.
    """
    device = state.device
    state.lr = scheduled_lr(state.solver, state.epoch)
    set_lr(state.optimizer, state.lr)
    clips, boxes, labels = batch_on_device(batch, device)
    with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=state.amp):
        output = state.net(clips, boxes, return_logits=True)
    loss_sum = state.loss_fn(output.logits, labels)
    stats = torch.stack([loss_sum.detach(), torch.tensor(float(labels.numel()), device=device)])
    all_reduce_sum(stats, state.info)
    terms = stats[1].clamp(min=1.0)
    global_loss = float(stats[0] / terms)
    if not math.isfinite(global_loss):
        raise TrainingDiverged(
            f"training diverged: the loss is {global_loss} at iteration {state.iteration + 1} "
            f"(epoch {state.epoch:.2f}, lr {state.lr:.4g}); stopped before that step; the last "
            f"good checkpoint is {state.last_checkpoint or 'none (none written)'}; lower "
            "solver.base_lr, lengthen solver.warmup_epochs or set solver.clip_grad_norm"
        )
    loss = loss_sum * state.info.world_size / terms
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    if state.solver.clip_grad_norm > 0:
        state.scaler.unscale_(state.optimizer)
        nn.utils.clip_grad_norm_(state.model.parameters(), state.solver.clip_grad_norm)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.iteration += 1
    state.window.add(global_loss)
    return global_loss
