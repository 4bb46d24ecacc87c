"""A NaN or infinite loss stops training with a clear message; the last good checkpoint stays."""

from __future__ import annotations

import math

import pytest
import torch

from avadet.cli import main
from avadet.config import load_config
from avadet.engine import TrainingDiverged, train
from avadet.engine.checkpoint import latest_checkpoint, read_training_checkpoint
from avadet.engine.solver import action_loss_sum


def test_injected_nan_stops_before_the_step_and_keeps_the_last_checkpoint(tiny_root, tmp_path):
    calls = {"n": 0}

    def poisoned(logits, labels):
        calls["n"] += 1
        loss = action_loss_sum(logits, labels)
        return loss * math.nan if calls["n"] == 5 else loss

    out = tmp_path / "run"
    cfg = load_config(tiny_root / "config.yaml", [f"train.output_dir={out}", "solver.max_iters=8",
                                                  "train.checkpoint_every_iters=2", "train.eval_every_epochs=0"])
    with pytest.raises(TrainingDiverged) as info:
        train(cfg, loss_fn=poisoned)
    message = str(info.value)
    assert "loss is nan at iteration 5" in message and "checkpoint_iter_0000004.pt" in message
    assert "solver.base_lr" in message  # says what to do about it
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["checkpoint_iter_0000002.pt", "checkpoint_iter_0000004.pt"]  # no temp files left
    good = read_training_checkpoint(out / "checkpoints" / "checkpoint_iter_0000004.pt")
    assert good["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in good["model_state"].values() if v.is_floating_point())
    # The run can be resumed from it (e.g. after lowering the learning rate).
    assert train(cfg).iteration == 8


def test_huge_learning_rate_is_a_one_line_error(tiny_root, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--config", str(tiny_root / "config.yaml"), f"train.output_dir={out}",
                 "solver.max_iters=20", "train.checkpoint_every_iters=1", "train.eval_every_epochs=0",
                 "solver.base_lr=1.0e12", "solver.warmup_epochs=0"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("avadet train:")]
    assert len(lines) == 1 and lines[0].startswith("avadet train: error: training diverged:")
    assert "Traceback" not in err
    last = latest_checkpoint(out)
    if last is not None:  # whatever was written before the divergence is finite and readable
        state = read_training_checkpoint(last)
        assert all(torch.isfinite(v).all() for v in state["model_state"].values() if v.is_floating_point())
        assert last.name in lines[0]
