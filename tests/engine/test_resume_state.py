"""Saving and resuming alone: a state written by ``save_training_checkpoint`` and read back
into a freshly built state by ``resume_state`` is the saved one, and goes on identically."""

from __future__ import annotations

import copy
import logging
import random

import numpy as np
import pytest
import torch

from avadet.engine.checkpoint import latest_checkpoint, read_training_checkpoint, save_checkpoint
from avadet.engine.distributed import DistInfo
from avadet.engine.state import (
    build_state,
    read_resume_checkpoint,
    resume_state,
    save_training_checkpoint,
)
from avadet.engine.step import train_step
from avadet.errors import CheckpointError


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _same_optimizer(a: dict, b: dict) -> bool:
    """Two optimiser state dicts: the same groups and, per parameter, the same buffers."""
    return (a["param_groups"] == b["param_groups"] and a["state"].keys() == b["state"].keys()
            and all(_same(a["state"][i], b["state"][i]) for i in a["state"]))


def test_resumed_state_equals_the_saved_one_and_continues_identically(make_state, batches, tmp_path):
    cfg, state = make_state()
    data = batches(state, 2)
    train_step(state, data[0])
    path = save_training_checkpoint(state, tmp_path / "checkpoints" / "c.pt", cfg)
    saved = {
        "lr": state.lr,
        "model": {k: v.clone() for k, v in state.model.state_dict().items()},
        "optimizer": copy.deepcopy(state.optimizer.state_dict()),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state()[1].copy(),
        "python_rng": random.getstate(),
    }
    train_step(state, data[1])  # the uninterrupted run's next step (dropout draws from the RNG)

    torch.rand(7), np.random.rand(3), random.random()  # a new process's generators differ
    fresh = build_state(cfg, DistInfo())
    resume_state(fresh, read_training_checkpoint(path), path)
    assert fresh.iteration == 1 and fresh.lr == saved["lr"] and fresh.last_checkpoint == path
    assert _same(fresh.model.state_dict(), saved["model"])
    assert _same_optimizer(fresh.optimizer.state_dict(), saved["optimizer"]) and fresh.optimizer.state
    assert torch.equal(torch.get_rng_state(), saved["torch_rng"])
    assert np.array_equal(np.random.get_state()[1], saved["numpy_rng"])
    assert random.getstate() == saved["python_rng"]
    assert fresh.notes == [f"resuming from {path} (iteration 1)"]
    train_step(fresh, data[1])
    assert _same(fresh.model.state_dict(), state.model.state_dict())
    assert _same_optimizer(fresh.optimizer.state_dict(), state.optimizer.state_dict())


def test_a_checkpoint_of_another_epoch_length_is_refused(make_state, tmp_path):
    cfg, state = make_state()
    path = save_training_checkpoint(state, tmp_path / "c.pt", cfg)
    checkpoint = read_training_checkpoint(path)
    checkpoint["extra"]["iters_per_epoch"] = 99
    with pytest.raises(CheckpointError, match="made with 99 iterations per epoch, this config gives 2"):
        resume_state(state, checkpoint, path)


def test_rng_states_of_another_process_count_reseed(make_state, tmp_path, caplog):
    cfg, state = make_state()
    path = save_training_checkpoint(state, tmp_path / "c.pt", cfg)
    checkpoint = read_training_checkpoint(path)
    checkpoint["rng_state"] = checkpoint["rng_state"] * 2  # written by 2 processes
    checkpoint["iteration"] = 3
    with caplog.at_level(logging.WARNING, logger="avadet"):
        resume_state(state, checkpoint, path)
    assert "RNG states of 2 processes, this run has 1: reseeding" in caplog.text
    torch.manual_seed(state.seed + 7919 * 3)
    want = torch.get_rng_state()
    resume_state(state, checkpoint, path)
    assert torch.equal(torch.get_rng_state(), want)


def test_read_resume_checkpoint_finds_the_latest_or_nothing(make_state, tmp_path):
    cfg, state = make_state()
    out = tmp_path / "run"
    assert read_resume_checkpoint(out, DistInfo()) is None
    save_training_checkpoint(state, out / "checkpoints" / "checkpoint_iter_0000001.pt", cfg)
    found = read_resume_checkpoint(out, DistInfo())
    assert found is not None
    path, checkpoint = found
    assert path == latest_checkpoint(out) and checkpoint["iteration"] == 0
    # A weights-only file (no optimiser state) cannot be resumed from.
    save_checkpoint(out / "checkpoints" / "model_final.pt", state.model, cfg, state.class_ids,
                    epoch=0, iteration=0)
    with pytest.raises(CheckpointError, match="holds no training state"):
        read_resume_checkpoint(out, DistInfo())
