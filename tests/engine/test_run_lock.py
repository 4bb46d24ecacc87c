"""One training run per output folder: a second, concurrent ``avadet train`` is refused."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avadet.engine.runlock import LOCK_NAME, RunFolderLocked, lock_run_folder

pytest.importorskip("fcntl")

# A stand-in for a run in progress, in its own process: it holds the folder's lock exactly as
# the trainer's rank 0 does, says so, and waits to be stopped.
HOLDER = """
import sys, time
from pathlib import Path
from avadet.engine.runlock import lock_run_folder
lock = lock_run_folder(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(120)
"""


def _env():
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # this checkout's avadet, in the children too
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def test_second_train_on_a_folder_in_use_is_refused_naming_the_first(tiny_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                              text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run(
            [sys.executable, "-m", "avadet", "train", "--config", str(tiny_root / "config.yaml"),
             f"train.output_dir={out}", "solver.max_iters=1"],
            capture_output=True, text=True, timeout=300, env=_env(),
        )
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"pid {holder.pid} on host " in lines[0] and "in use by another training run" in lines[0]
    assert str(out) in lines[0]
    # Refused before writing anything: no checkpoints, metrics, log or config of its own.
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


def test_a_dead_holders_lock_file_does_not_block(tmp_path):
    holder = subprocess.run([sys.executable, "-c", HOLDER.replace("time.sleep(120)", ""),
                             str(tmp_path)], capture_output=True, text=True, timeout=120,
                            env=_env())
    assert holder.stdout.strip() == "locked"
    assert f"pid {os.getpid()}" not in (tmp_path / LOCK_NAME).read_text()  # left by the dead one
    lock = lock_run_folder(tmp_path)  # the kernel dropped the dead process's lock
    try:
        assert f"pid {os.getpid()} on host " in (tmp_path / LOCK_NAME).read_text()
    finally:
        lock.release()


def test_lock_is_exclusive_and_released(tmp_path):
    lock = lock_run_folder(tmp_path)
    with pytest.raises(RunFolderLocked, match=f"pid {os.getpid()} on host .*started"):
        lock_run_folder(tmp_path)  # a second open file description: flock refuses it too
    lock.release()
    lock_run_folder(tmp_path).release()


def test_the_lock_is_released_when_training_ends(tiny_root, tmp_path):
    from avadet.api import train

    out = tmp_path / "run"
    started = time.monotonic()
    train(tiny_root / "config.yaml", [f"train.output_dir={out}", "solver.max_iters=1",
                                      "train.eval_every_epochs=0"])
    assert time.monotonic() - started < 600
    lock_run_folder(out).release()  # free again


def test_an_output_dir_that_cannot_be_a_folder_is_one_line(tiny_root, tmp_path, capsys):
    from avadet.cli import main

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    (tmp_path / "locked_dir" / LOCK_NAME).mkdir(parents=True)
    cases = {
        a_file: "it is a file, not a folder",
        a_file / "sub": "Not a directory",
        tmp_path / "locked_dir": f"Is a directory ({tmp_path / 'locked_dir' / LOCK_NAME})",
    }
    for out, reason in cases.items():
        code = main(["train", "--config", str(tiny_root / "config.yaml"),
                     f"train.output_dir={out}"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert err == [f"avadet train: error: train.output_dir {out} cannot hold the run: {reason}"]
