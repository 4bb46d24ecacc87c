"""``avadet train`` then ``avadet test`` on the synthetic tiny preset, through the command line:
checkpoints, metrics, logs, the prediction file and its frame-mAP."""

from __future__ import annotations

import csv
import json

import pandas as pd

from avadet.cli import main
from avadet.engine.checkpoint import read_training_checkpoint
from avadet.evaluation import evaluate_files
from avadet.io import read_predictions


def test_train_then_test_end_to_end(tiny_root, tmp_path, capsys):
    out = tmp_path / "run"
    config = str(tiny_root / "config.yaml")
    code = main(["train", "--config", config, f"train.output_dir={out}", "solver.max_iters=6",
                 "train.checkpoint_every_iters=3", "train.log_every_iters=2"])
    assert code == 0
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    # Every 3 iterations, each epoch end (2 iterations per epoch: 8 keyframes, batch 4), final.
    assert ckpts == [f"checkpoint_iter_{i:07d}.pt" for i in (2, 3, 4, 6)] + ["model_final.pt"]
    # Only the latest evaluation's predictions are kept.
    assert [p.name for p in (out / "eval").iterdir()] == ["predictions_iter_0000006.csv"]
    final = read_training_checkpoint(out / "checkpoints" / "model_final.pt")
    assert final["iteration"] == 6 and final["epoch"] == 3
    assert {"optimizer_state", "scheduler_state", "scaler_state", "rng_state"} <= set(final)
    assert (out / "config.yaml").is_file() and "iter 6/6" in (out / "log.txt").read_text()

    rows = list(csv.DictReader(open(out / "metrics.csv")))
    train_rows = [r for r in rows if r["kind"] == "train"]
    eval_rows = [r for r in rows if r["kind"] == "eval"]
    assert [int(r["iteration"]) for r in train_rows] == [2, 4, 6]
    assert all(float(r["loss"]) > 0 and float(r["samples_per_s"]) > 0 for r in train_rows)
    assert [int(r["iteration"]) for r in eval_rows] == [2, 4, 6]  # eval_every_epochs: 1
    capsys.readouterr()

    pred = tmp_path / "pred.csv"
    code = main(["test", "--config", config, "--checkpoint", str(out / "checkpoints" / "model_final.pt"),
                 "--output-csv", str(pred), "--json", str(tmp_path / "m.json")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "frame-mAP@0.5IoU" in printed
    # All 8 class scores for every detected box, as PySlowFast writes them.
    df = read_predictions(pred)
    per_box = df.groupby(["video_id", "timestamp", "x1", "y1", "x2", "y2"]).size()
    assert (per_box == 8).all() and sorted(df["action_id"].unique()) == [1, 2, 3, 4, 5, 6, 7, 9]
    assert df["score"].between(0, 1).all()
    # The test command reproduces the training-time evaluation of the same checkpoint ...
    test_map = json.loads((tmp_path / "m.json").read_text())["mAP"]
    assert abs(test_map - float(eval_rows[-1]["map"])) < 1e-7
    # ... and the file it wrote, evaluated by `avadet eval`'s code, gives that number exactly.
    ann = tiny_root / "annotations"
    again = evaluate_files(ann / "ava_val_v2.2.csv", pred,
                           ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
                           ann / "ava_val_excluded_timestamps_v2.2.csv")
    assert again.map == test_map
    train_time = pd.read_csv(out / "eval" / "predictions_iter_0000006.csv", header=None)
    assert train_time.equals(pd.read_csv(pred, header=None))


def test_no_resume_refuses_a_used_folder_unless_overwrite(tiny_root, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--config", str(tiny_root / "config.yaml"), f"train.output_dir={out}",
            "solver.max_iters=2", "train.eval_every_epochs=0"]
    assert main(args) == 0
    assert main(args) == 0  # resumes: already done, nothing to train
    assert "already trained" in capsys.readouterr().out
    assert main(args + ["--no-resume"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--no-resume", "--overwrite"]) == 0
    assert not (out / "eval").exists()


def test_test_without_checkpoint_is_a_one_line_error(tiny_root, capsys):
    assert main(["test", "--config", str(tiny_root / "config.yaml")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_an_unreadable_keyframe_is_replaced_and_reported(tiny_root, tmp_path, capsys):
    import shutil

    from avadet.config import load_config
    from avadet.engine import build_dataset

    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    cfg = load_config(root / "config.yaml", [f"data.root={root}"])
    train_set = build_dataset(cfg, "train")
    # Break the centre frame of the first training keyframe.
    video = train_set.video_ids[0]
    centre = int(train_set.clip_indices(0)[len(train_set.clip_indices(0)) // 2])
    (root / "frames" / video / f"{video}_{centre + 1:06d}.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "run"
    code = main(["train", "--config", str(root / "config.yaml"), f"data.root={root}",
                 f"train.output_dir={out}", "solver.max_iters=2", "train.eval_every_epochs=0"])
    assert code == 0  # the epoch went on
    assert "epoch 1: 1 unreadable keyframe(s) replaced" in capsys.readouterr().out
    assert "1 unreadable keyframe(s) replaced" in (out / "log.txt").read_text()


def test_slow_only_trains_and_tests(tiny_root, tmp_path, capsys):
    out = tmp_path / "slow"
    config = str(tiny_root / "config_slow.yaml")
    assert main(["train", "--config", config, f"train.output_dir={out}", "solver.max_iters=2",
                 "train.eval_every_epochs=0"]) == 0
    assert main(["test", "--config", config, "--checkpoint", str(out / "checkpoints" / "model_final.pt")]) == 0
    assert "frame-mAP@0.5IoU" in capsys.readouterr().out
    assert (out / "predictions.csv").is_file()  # test.output_csv, in the checkpoint's run folder
