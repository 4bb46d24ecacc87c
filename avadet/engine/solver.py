"""The optimisation recipe: optimiser, per-iteration learning rate, loss, BatchNorm handling.

PySlowFast's AVA recipe is the default (see ``configs/ava/``): SGD with momentum, Nesterov
and a small weight decay (none on BatchNorm parameters), a linear warm-up from
``warmup_start_lr`` to the schedule's value at ``warmup_epochs``, then steps with relative
learning rates or a half-cosine; the learning rate is set every iteration from the epoch as a
float (``iteration / iterations_per_epoch``). The loss is binary cross-entropy over the action
classes, computed on the logits (the same optimum as BCE on the sigmoid scores, without its
overflow).
"""

from __future__ import annotations

import bisect
import math
from typing import Iterable

import torch
from torch import nn

from avadet.config import SolverConfig
from avadet.errors import ConfigError

BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def check_solver(solver: SolverConfig) -> None:
    """Raise ConfigError for settings the schedule cannot use."""
    if solver.optimizer not in ("sgd", "adamw"):
        raise ConfigError(f"solver.optimizer must be 'sgd' or 'adamw', got {solver.optimizer!r}")
    if solver.schedule not in ("steps", "cosine"):
        raise ConfigError(f"solver.schedule must be 'steps' or 'cosine', got {solver.schedule!r}")
    if solver.base_lr <= 0:
        raise ConfigError(f"solver.base_lr must be > 0, got {solver.base_lr}")
    if solver.max_epoch <= 0:
        raise ConfigError(f"solver.max_epoch must be > 0, got {solver.max_epoch}")
    if solver.batch_size < 1:
        raise ConfigError(f"solver.batch_size must be >= 1, got {solver.batch_size}")
    if solver.schedule == "steps":
        if not solver.steps or solver.steps[0] != 0:
            raise ConfigError(f"solver.steps must start at epoch 0, got {solver.steps}")
        if any(b <= a for a, b in zip(solver.steps, solver.steps[1:])):
            raise ConfigError(f"solver.steps must increase, got {solver.steps}")
        if solver.lrs and len(solver.lrs) != len(solver.steps):
            raise ConfigError(
                f"solver.lrs has {len(solver.lrs)} values for {len(solver.steps)} solver.steps"
            )
    if solver.warmup_epochs < 0 or solver.warmup_epochs > solver.max_epoch:
        raise ConfigError(
            f"solver.warmup_epochs={solver.warmup_epochs} must lie in [0, max_epoch]"
        )


def scheduled_lr(solver: SolverConfig, epoch: float) -> float:
    """The learning rate at ``epoch`` (a float: iterations done / iterations per epoch),
    warm-up included."""
    def base(e: float) -> float:
        if solver.schedule == "cosine":
            progress = min(e / solver.max_epoch, 1.0)
            end = solver.cosine_end_lr
            return end + (solver.base_lr - end) * (math.cos(math.pi * progress) + 1.0) * 0.5
        index = bisect.bisect_right(solver.steps, e) - 1
        relative = solver.lrs[index] if solver.lrs else solver.lr_decay**index
        return solver.base_lr * relative

    if epoch < solver.warmup_epochs:
        target = base(solver.warmup_epochs)
        return solver.warmup_start_lr + (target - solver.warmup_start_lr) * epoch / solver.warmup_epochs
    return base(epoch)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def build_optimizer(model: nn.Module, solver: SolverConfig) -> torch.optim.Optimizer:
    """SGD (or AdamW) over the trainable parameters, BatchNorm's with ``bn_weight_decay``."""
    bn_params, other = [], []
    for module in model.modules():
        target = bn_params if isinstance(module, BN_TYPES) else other
        target.extend(p for p in module.parameters(recurse=False) if p.requires_grad)
    groups = [
        {"params": other, "weight_decay": solver.weight_decay},
        {"params": bn_params, "weight_decay": solver.bn_weight_decay},
    ]
    groups = [g for g in groups if g["params"]]
    lr = scheduled_lr(solver, 0.0)
    if solver.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=lr, momentum=solver.momentum, nesterov=solver.nesterov and solver.momentum > 0
        )
    return torch.optim.AdamW(groups, lr=lr)


def set_train_mode(model: nn.Module, *, freeze_bn: bool) -> nn.Module:
    """``model.train()``; with ``freeze_bn`` the BatchNorm layers stay in eval mode, so they
    normalise with their running statistics and do not update them (their affine weights still
    train), as PySlowFast's detection fine-tuning freezes BN statistics."""
    model.train()
    if freeze_bn:
        for module in model.modules():
            if isinstance(module, BN_TYPES):
                module.eval()
    return model


def action_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum over boxes and classes of binary cross-entropy on ``logits`` ``(K, C)`` against
    multi-hot ``labels`` ``(K, C)``. The caller divides by the global ``K * C``."""
    return nn.functional.binary_cross_entropy_with_logits(
        logits.float(), labels.to(logits.device, torch.float32), reduction="sum"
    )


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, BN_TYPES)]


@torch.no_grad()
def update_precise_bn(
    model: nn.Module, batches: Iterable[tuple[list[torch.Tensor], torch.Tensor]]
) -> int:
    """Re-estimate every BatchNorm layer's running mean and variance as the plain average of
    its batch statistics over ``batches`` (PySlowFast's precise BN), with every other layer in
    eval mode (dropout draws nothing). Returns the number of batches used; the caller averages
    the statistics over processes. The model is left in eval mode."""
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    momenta = [bn.momentum for bn in layers]
    saved = [(bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
             for bn in layers]
    model.eval()
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: the mean over the batches seen
        bn.train()
    count = 0
    try:
        for inputs, boxes in batches:
            model(inputs, boxes)
            count += 1
    finally:
        for bn, momentum, (mean, var, tracked) in zip(layers, momenta, saved):
            bn.momentum = momentum
            bn.eval()
            if count == 0:  # nothing seen (or interrupted before a batch): keep the old ones
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
                bn.num_batches_tracked.copy_(tracked)
    return count
