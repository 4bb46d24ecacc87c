"""A full disk during training: one line naming the folder, exit 2, the last checkpoint whole."""

from __future__ import annotations

import errno
import hashlib

import pytest
import torch

from avadet.cli import main
from avadet.engine import checkpoint as checkpoint_module
from avadet.engine.checkpoint import read_training_checkpoint
from avadet.io import DiskFull, atomic_write


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_disk_full_during_a_checkpoint_save(tiny_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real_save = torch.save
    saves = []

    class FillingFile:
        """The checkpoint's file on a disk that is full after ``room`` bytes."""

        def __init__(self, f, room):
            self.f, self.room = f, room

        def write(self, data):
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

    def filling_save(obj, f, *args, **kwargs):
        # The first checkpoint fits; the second fills the disk part-way through its bytes, and
        # torch's zip writer then fails in turn on its way out (a RuntimeError whose context
        # is the ENOSPC), as on a real full file system.
        saves.append(obj["iteration"])
        return real_save(obj, f if len(saves) == 1 else FillingFile(f, 1 << 20), *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", filling_save)
    code = main(["train", "--config", str(tiny_root / "config.yaml"), f"train.output_dir={out}",
                 "solver.max_iters=4", "train.eval_every_epochs=0"])
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if not line.startswith("train:")]  # the progress bar's redraws
    assert code == 2
    assert saves == [2, 4]  # an epoch is 2 iterations: the save at 4 hit the full disk
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert err[0].startswith("avadet train: error: No space left on device writing into ")
    assert str(out) in err[0] and "checkpoint_iter_0000002.pt" in err[0]

    folder = out / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint_iter_0000002.pt"]  # no .tmp
    monkeypatch.undo()
    kept = read_training_checkpoint(folder / "checkpoint_iter_0000002.pt")
    assert kept["iteration"] == 2

    # Bit-identical to what an undisturbed run writes at iteration 2 (training is deterministic).
    again = tmp_path / "again"
    assert main(["train", "--config", str(tiny_root / "config.yaml"), f"train.output_dir={again}",
                 "solver.max_iters=2", "train.eval_every_epochs=0"]) == 0
    reference = read_training_checkpoint(again / "checkpoints" / "checkpoint_iter_0000002.pt")
    assert kept["model_state"].keys() == reference["model_state"].keys()
    for key, tensor in reference["model_state"].items():
        assert torch.equal(kept["model_state"][key], tensor), key
    capsys.readouterr()


def test_atomic_write_names_the_folder_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "out" / "metrics.csv"
    with atomic_write(path) as handle:
        handle.write("old\n")
    with pytest.raises(DiskFull) as info:
        with atomic_write(path) as handle:
            handle.write("new")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(info.value) == f"No space left on device writing into {path.parent}; free some space there and run again"
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert path.read_text() == "old\n" and sorted(p.name for p in path.parent.iterdir()) == ["metrics.csv"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_cli_turns_any_full_disk_into_one_line(code, capsys, monkeypatch, tmp_path):
    from avadet.commands import command_module

    def full(args):
        raise OSError(code, "No space left on device", str(tmp_path / "x" / "file.csv"))

    monkeypatch.setattr(command_module("eval"), "run", full)
    assert main(["eval", "gt.csv", "pred.csv", "--labelmap", "l.pbtxt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"avadet eval: error: No space left on device writing into {tmp_path / 'x'}; "
                   "free some space and run again"]
