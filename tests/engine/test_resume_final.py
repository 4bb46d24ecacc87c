"""A kill during the final copy (or any save) leaves a ``.tmp`` file and perhaps no
``model_final.pt``: the restart removes the leftovers and writes the missing final file from
the last checkpoint instead of saying "already trained" without it."""

from __future__ import annotations

from avadet.cli import main
from avadet.engine.checkpoint import read_training_checkpoint, remove_stale_temporaries


def test_a_restart_writes_the_missing_final_checkpoint_and_removes_leftovers(tiny_root, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--config", str(tiny_root / "config.yaml"), f"train.output_dir={out}",
            "solver.max_iters=4", "train.eval_every_epochs=0"]
    assert main(args) == 0
    folder = out / "checkpoints"
    final = folder / "model_final.pt"
    last = folder / "checkpoint_iter_0000004.pt"
    assert final.read_bytes() == last.read_bytes()

    # The kill: the final copy half written, another save's temporary file left behind.
    final.unlink()
    (folder / ".model_final.pt.tmp").write_bytes(last.read_bytes()[:1000])
    (folder / ".model_final.pt.abc123.tmp").write_bytes(b"partial")
    (folder / ".checkpoint_iter_0000006.pt.xyz.tmp").write_bytes(b"partial")
    capsys.readouterr()
    assert main(args) == 0
    assert "already trained to iteration 4" in capsys.readouterr().out
    assert final.read_bytes() == last.read_bytes()
    assert read_training_checkpoint(final)["iteration"] == 4
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint_iter_0000002.pt", "checkpoint_iter_0000004.pt", "model_final.pt"]
    assert "removed" in (out / "log.txt").read_text()

    # A complete run leaves no temporary file either, and a second restart changes nothing.
    assert main(args) == 0
    assert final.read_bytes() == last.read_bytes()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_remove_stale_temporaries_touches_only_dot_tmp_files(tmp_path):
    folder = tmp_path / "checkpoints"
    assert remove_stale_temporaries(tmp_path) == []
    folder.mkdir()
    keep = ["checkpoint_iter_0000001.pt", "model_final.pt", "notes.tmp", ".hidden"]
    gone = [".model_final.pt.tmp", ".checkpoint_iter_0000002.pt.k3j4.tmp"]
    for name in keep + gone:
        (folder / name).write_bytes(b"x")
    assert sorted(p.name for p in remove_stale_temporaries(tmp_path)) == sorted(gone)
    assert sorted(p.name for p in folder.iterdir()) == sorted(keep)
