"""One training iteration alone: ``train_step(state, batch)`` on a fresh tiny state."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from avadet.engine.solver import action_loss_sum, scheduled_lr
from avadet.engine.state import TrainingDiverged
from avadet.engine.step import batch_on_device, train_step


def _weights(state) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.model.named_parameters()}


def test_a_step_gives_a_finite_loss_and_moves_the_weights(make_state, batches):
    _, state = make_state()
    batch = batches(state, 1)[0]
    before = _weights(state)
    loss = train_step(state, batch)
    assert math.isfinite(loss) and loss > 0
    assert state.iteration == 1
    assert state.lr == scheduled_lr(state.solver, 0.0)  # the schedule at the step's start
    assert state.optimizer.param_groups[0]["lr"] == state.lr
    assert state.window.steps == 1 and state.window.loss_sum == loss
    after = _weights(state)
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(moved) > len(before) // 2 and "head.projection.weight" in moved
    assert all(torch.isfinite(v).all() for v in after.values())
    # A second step continues the schedule from the new iteration.
    train_step(state, batches(state, 2)[1])
    assert state.iteration == 2 and state.lr == scheduled_lr(state.solver, 1 / state.iters_per_epoch)


def test_the_loss_is_the_mean_over_every_box_and_class(make_state, batches):
    # Without dropout a training-mode forward is deterministic: the loss can be recomputed.
    _, state = make_state("model.dropout=0")
    batch = batches(state, 1)[0]
    inputs, boxes, labels = batch_on_device(batch, state.device)
    with torch.no_grad():
        logits = state.net(inputs, boxes, return_logits=True).logits
    want = float(action_loss_sum(logits, labels)) / labels.numel()
    assert train_step(state, batch) == pytest.approx(want, rel=1e-5)


def test_a_non_finite_loss_stops_before_the_step(make_state, batches):
    _, state = make_state()
    state.loss_fn = lambda logits, labels: action_loss_sum(logits, labels) * math.inf
    state.last_checkpoint = Path("run/checkpoints/checkpoint_iter_0000000.pt")
    batch = batches(state, 1)[0]
    before = _weights(state)
    with pytest.raises(TrainingDiverged, match=r"loss is (inf|nan) at iteration 1 .*checkpoint_iter_0000000"):
        train_step(state, batch)
    assert state.iteration == 0 and state.window.steps == 0
    assert not state.optimizer.state  # no step was taken
    assert all(torch.equal(before[k], v) for k, v in _weights(state).items())
