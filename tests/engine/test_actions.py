"""The loop's periodic actions alone: when each is due, and what one run of it does; the list
``build_actions`` makes; and ``run_loop`` with a stand-in step."""

from __future__ import annotations

import csv
import io
import logging
import math

import pytest
import torch
from tqdm import tqdm

from avadet.engine.actions import (
    EpochReport,
    Evaluate,
    LogMetrics,
    PreciseBN,
    ProgressBar,
    SaveCheckpoint,
    build_actions,
    evaluation_period,
    every,
    validation_data,
)
from avadet.engine.inference import evaluate_predictions, run_inference
from avadet.engine.metrics import MetricsLog
from avadet.engine.solver import batchnorm_layers
from avadet.engine.state import TrainingDiverged
from avadet.engine.trainer import run_loop


def _due_at(action, state, total: int = 10) -> list[int]:
    """The iterations 1..total after which ``action`` runs, in a run of ``total`` steps."""
    state.total_iters = total
    found = []
    for i in range(1, total + 1):
        state.iteration = i
        if action.due(state):
            found.append(i)
    return found


def test_periods():
    assert [i for i in range(1, 8) if every(3, i)] == [3, 6]
    assert not any(every(0, i) for i in range(1, 8))
    assert evaluation_period(0, 2) == 0 and evaluation_period(1.5, 2) == 3
    assert evaluation_period(0.1, 2) == 1  # never below one iteration


def test_each_action_is_due_on_its_schedule(make_state, tmp_path):
    cfg, state = make_state()
    assert state.iters_per_epoch == 2
    bar = tqdm(disable=True)
    metrics = MetricsLog(tmp_path, tensorboard=False)
    assert _due_at(ProgressBar(bar), state) == list(range(1, 11))
    assert _due_at(LogMetrics(metrics, bar, every=3, global_batch=4), state) == [3, 6, 9, 10]
    assert _due_at(PreciseBN(batches=1, eval_period=4), state) == [4, 8, 10]
    assert _due_at(PreciseBN(batches=1, eval_period=0), state) == [10]  # at the end only
    assert _due_at(EpochReport(state.train_set), state) == [2, 4, 6, 8, 10]
    # Every 3, each epoch end (2), before each evaluation (5) and at the end.
    save = SaveCheckpoint(cfg, tmp_path, every=3, eval_period=5, keep=0)
    assert _due_at(save, state, total=11) == [2, 3, 4, 5, 6, 8, 9, 10, 11]
    val_set, setup = validation_data(cfg, state.class_ids)
    evaluate = Evaluate(val_set, setup, tmp_path, metrics, period=4, batch_size=4, num_workers=0)
    assert _due_at(evaluate, state, total=9) == [4, 8, 9]


def test_log_metrics_writes_the_window_mean_and_starts_a_new_window(make_state, tmp_path, caplog):
    _, state = make_state()
    bar = tqdm(total=10, file=io.StringIO())
    metrics = MetricsLog(tmp_path, tensorboard=False)
    state.iteration, state.total_iters, state.lr = 3, 10, 0.125
    state.window.add(1.0)
    state.window.add(3.0)
    ProgressBar(bar).run(state)
    assert bar.n == 3
    with caplog.at_level(logging.INFO, logger="avadet"):
        LogMetrics(metrics, bar, every=3, global_batch=4).run(state)
    [row] = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert row["kind"] == "train" and row["iteration"] == "3" and float(row["epoch"]) == 1.5
    assert float(row["loss"]) == 2.0 and float(row["lr"]) == 0.125 and float(row["samples_per_s"]) > 0
    assert "iter 3/10 epoch 1.50 loss 2.00000 lr 0.125" in caplog.text
    assert "loss=2.0000" in bar.postfix and "lr=0.125" in bar.postfix
    assert state.window.steps == 0 and state.window.loss_sum == 0.0


def test_save_checkpoint_writes_atomically_and_keeps_the_newest(make_state, tmp_path):
    cfg, state = make_state()
    save = SaveCheckpoint(cfg, tmp_path, every=1, eval_period=0, keep=2)
    for i in (1, 2, 3):
        state.iteration = i
        save.run(state)
        assert state.last_checkpoint == tmp_path / "checkpoints" / f"checkpoint_iter_{i:07d}.pt"
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["checkpoint_iter_0000002.pt", "checkpoint_iter_0000003.pt"]  # no temp files
    assert torch.load(state.last_checkpoint, weights_only=True)["iteration"] == 3
    # Non-finite weights are never saved; the message names the last good checkpoint.
    with torch.no_grad():
        next(state.model.parameters()).fill_(math.nan)
    state.iteration = 4
    with pytest.raises(TrainingDiverged, match="non-finite weights or BN statistics after iteration 4.*checkpoint_iter_0000003"):
        save.run(state)
    assert len(list((tmp_path / "checkpoints").iterdir())) == 2
    # Nor are infinite BN statistics (huge, finite weights overflow the running variance while
    # the loss stays finite): such a checkpoint could not be read back.
    with torch.no_grad():
        next(state.model.parameters()).fill_(0.5)
        bn = next(m for m in state.model.modules() if isinstance(m, torch.nn.BatchNorm3d))
        bn.running_var.fill_(math.inf)
    with pytest.raises(TrainingDiverged, match="running_var"):
        save.run(state)
    assert len(list((tmp_path / "checkpoints").iterdir())) == 2


def test_epoch_report_counts_the_epochs_replaced_keyframes(make_state, caplog):
    _, state = make_state()
    report = EpochReport(state.train_set)
    state.iteration = 2
    with state.train_set._skipped.get_lock():  # what the data layer counts for an unreadable clip
        state.train_set._skipped.value += 2
    with caplog.at_level(logging.INFO, logger="avadet"):
        report.run(state)
        state.iteration = 4
        report.run(state)
    assert "epoch 1 done; 2 unreadable keyframe(s) replaced" in caplog.text
    assert "epoch 2 done; 0 unreadable keyframe(s) replaced" in caplog.text
    assert state.notes == ["epoch 1: 2 unreadable keyframe(s) replaced (see log.txt)"]


def test_precise_bn_re_estimates_the_statistics_without_drawing_from_the_rng(make_state):
    _, state = make_state()
    bn = batchnorm_layers(state.model)[0]
    before = bn.running_mean.clone()
    rng = torch.get_rng_state()
    PreciseBN(batches=2, eval_period=0).run(state)
    assert not torch.equal(bn.running_mean, before)
    assert torch.equal(torch.get_rng_state(), rng)  # a resumed run draws what this one does
    assert state.model.training and bn.momentum == 0.1  # back to training


def test_evaluate_scores_the_val_split_as_avadet_test_does(make_state, tmp_path):
    cfg, state = make_state()
    val_set, setup = validation_data(cfg, state.class_ids)
    metrics = MetricsLog(tmp_path, tensorboard=False)
    evaluate = Evaluate(val_set, setup, tmp_path, metrics, period=1, batch_size=4, num_workers=0)
    for i in (1, 2):
        state.iteration = i
        evaluate.run(state)
    assert [p.name for p in (tmp_path / "eval").iterdir()] == ["predictions_iter_0000002.csv"]
    assert state.model.training  # back to training
    want = evaluate_predictions(
        run_inference(state.model, val_set, state.class_ids, batch_size=4, progress=False), setup
    )
    assert state.eval_result is not None and state.eval_result.map == want.map
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [(r["kind"], r["iteration"]) for r in rows] == [("eval", "1"), ("eval", "2")]
    assert float(rows[-1]["map"]) == pytest.approx(want.map)


def test_build_actions_lists_the_periodic_work_in_order(make_state, tmp_path):
    kinds = []
    for overrides in ([], ["solver.precise_bn_batches=1", "train.eval_every_epochs=0"]):
        cfg, state = make_state(*overrides)
        actions = build_actions(cfg, state, output_dir=tmp_path, metrics=MetricsLog(tmp_path, tensorboard=False),
                                bar=tqdm(disable=True))
        kinds.append([type(a).__name__ for a in actions])
    assert kinds == [
        ["ProgressBar", "LogMetrics", "EpochReport", "SaveCheckpoint", "Evaluate"],
        ["ProgressBar", "LogMetrics", "PreciseBN", "EpochReport", "SaveCheckpoint"],
    ]


def test_run_loop_runs_each_due_action_after_each_step(make_state):
    _, state = make_state()
    state.total_iters = 5
    seen: list[tuple[int, int]] = []

    def counting_step(state, batch) -> float:  # stands in for train_step: no model at all
        seen.append((state.iteration, len(batch.boxes)))
        state.iteration += 1
        return 0.0

    class Record:
        def __init__(self):
            self.runs: list[tuple[int, int]] = []

        def due(self, state) -> bool:
            return state.iteration % 2 == 0

        def run(self, state) -> None:
            self.runs.append((state.iteration, state.sampler.epoch))

    record = Record()
    run_loop(state, [record], step=counting_step)
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4] and all(k > 0 for _, k in seen)
    assert record.runs == [(2, 0), (4, 1)]
    # Resumed mid-epoch: the loop starts at the epoch's next batch.
    state.iteration, state.total_iters = 5, 6
    run_loop(state, [record], step=counting_step)
    assert state.sampler.epoch == 2 and state.sampler.start == 1 and record.runs[-1] == (6, 2)


def test_a_requested_stop_ends_the_loop_after_the_step_and_its_actions(make_state):
    # What SIGTERM does (avadet train): the loop stops at a safe point, never inside a step,
    # a checkpoint or a finaliser; the request is withdrawn for the next run.
    from avadet.engine import request_stop

    _, state = make_state()
    state.total_iters = 5
    done: list[str] = []

    def step(state, batch) -> float:
        done.append(f"step {state.iteration}")
        state.iteration += 1
        if state.iteration == 2:
            request_stop()  # arrives during the second step
        return 0.0

    class Save:
        def due(self, state) -> bool:
            return True

        def run(self, state) -> None:
            done.append(f"save {state.iteration}")

    try:
        with pytest.raises(KeyboardInterrupt):
            run_loop(state, [Save()], step=step)
    finally:
        request_stop(False)
    assert done == ["step 0", "save 1", "step 1", "save 2"]
    state.total_iters = 3
    run_loop(state, [Save()], step=step)  # withdrawn: the next run trains to its end
    assert state.iteration == 3
