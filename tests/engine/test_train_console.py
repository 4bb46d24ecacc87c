"""What ``avadet train`` tells its user: each evaluation's frame-mAP on the console, how to
resume an interrupted run, and metrics.csv rows with the time at full resolution."""

from __future__ import annotations

import csv
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from avadet.cli import main
from avadet.engine import trainer as trainer_module


def _env():
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # this checkout's avadet, in the child too
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def test_each_evaluation_is_shown_on_the_console(tiny_root, tmp_path, capsys):
    out = tmp_path / "run"
    before = time.time()
    assert main(["train", "--config", str(tiny_root / "config.yaml"), f"train.output_dir={out}",
                 "solver.max_iters=4", "train.log_every_iters=2"]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    evals = [line for line in lines if "frame-mAP" in line and "eval at" in line]
    assert [line.split(" (")[0] for line in evals] == [
        "avadet train: eval at iteration 2", "avadet train: eval at iteration 4"]
    assert all(line.startswith("avadet train: eval at iteration ") for line in evals)
    # Only the evaluations join the notes: the per-step log lines stay in log.txt.
    assert not any(" loss " in line for line in lines)
    assert "iter 4/4" in (out / "log.txt").read_text()
    assert "eval at iteration 4" in (out / "log.txt").read_text()

    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [(r["kind"], r["iteration"]) for r in rows] == [
        ("train", "2"), ("eval", "2"), ("train", "4"), ("eval", "4")]
    for row in rows:
        t = float(row["time_s"])
        assert before <= t <= time.time()
        assert row["time_s"] == repr(t) and t != round(t, -2)  # not 8 significant digits


def test_interrupt_says_how_to_resume_and_never_to_overwrite(tiny_root, tmp_path, capsys,
                                                             monkeypatch):
    out = tmp_path / "run"
    config = str(tiny_root / "config.yaml")
    real_loop = trainer_module.run_loop

    def interrupted_loop(state, actions, **kwargs):
        real_loop(state, actions, **kwargs)  # runs to max_iters (2: one epoch, one checkpoint)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module, "run_loop", interrupted_loop)
    code = main(["train", "--config", config, f"train.output_dir={out}", "solver.max_iters=2",
                 "train.eval_every_epochs=0", "--no-resume", "--overwrite"])
    assert code == 130
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("avadet")]
    assert err == [
        f"avadet train: training interrupted; resuming {out} continues from "
        f"checkpoint_iter_0000002.pt; resume with: avadet train --config {shlex.quote(config)} "
        f"{shlex.quote(f'train.output_dir={out}')} solver.max_iters=2 train.eval_every_epochs=0"
    ]


def test_sigterm_stops_a_real_run_with_the_resume_command(tiny_root, tmp_path):
    out = tmp_path / "run"
    argv = ["--config", str(tiny_root / "config.yaml"), f"train.output_dir={out}",
            "solver.max_iters=1000", "train.eval_every_epochs=0", "data.num_workers=1"]
    proc = subprocess.Popen([sys.executable, "-m", "avadet", "train", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    first = out / "checkpoints" / "checkpoint_iter_0000002.pt"
    try:
        deadline = time.monotonic() + 300
        while not first.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert first.is_file(), "no checkpoint within 300 s"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    last = [line for line in stderr.splitlines() if line.startswith("avadet")]
    assert len(last) == 1 and "Traceback" not in stderr, stderr
    assert last[0].startswith(f"avadet train: training interrupted; resuming {out} continues "
                              "from checkpoint_iter_")
    assert last[0].endswith("; resume with: avadet train " + shlex.join(argv))


def test_an_evaluation_cut_short_is_redone_on_resume(tiny_root, tmp_path, capsys, monkeypatch):
    from avadet.engine import actions as actions_module

    out = tmp_path / "run"
    args = ["train", "--config", str(tiny_root / "config.yaml"), f"train.output_dir={out}",
            "solver.max_iters=4"]
    real_run = actions_module.Evaluate.run

    def cut_at_4(self, state):
        if state.iteration == 4:  # the final evaluation, after the final checkpoint
            raise KeyboardInterrupt
        real_run(self, state)

    monkeypatch.setattr(actions_module.Evaluate, "run", cut_at_4)
    assert main(args) == 130
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [(r["kind"], r["iteration"]) for r in rows][-1] == ("train", "4")  # no eval row yet
    monkeypatch.undo()
    capsys.readouterr()

    assert main(args) == 0  # resumes at 4 (finished), evaluates, then writes model_final.pt
    printed = capsys.readouterr().out
    assert "avadet train: eval at iteration 4" in printed and "frame-mAP" in printed
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [(r["kind"], r["iteration"]) for r in rows] == [  # train rows: every 10 and the end
        ("eval", "2"), ("train", "4"), ("eval", "4")]
    assert (out / "checkpoints" / "model_final.pt").is_file()
    assert main(args) == 0  # and a third run has nothing left to do
    assert "already trained" in capsys.readouterr().out
