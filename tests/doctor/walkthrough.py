"""docs/custom_dataset.md's walk-through, step by step, on a synthetic stand-in for a user's
videos: 3 videos of 8 s at 25 fps, 5 classes with ids 3..7 (not AVA's label map)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from avadet import synthetic as syn
from avadet.io import read_annotations, read_labelmap

REPO = Path(__file__).resolve().parents[2]
FPS, WIDTH, HEIGHT, SECONDS = 25, 64, 48, 8
LABEL_IDS = (("fast_wave", 3), ("arm_still", 4), ("slow_wave", 5), ("hold_red", 6),
             ("wear_hat", 7))
CLASS_IDS = [3, 4, 5, 6, 7]


def avadet(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m avadet ARGS`` from the repository, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "avadet", *args], cwd=REPO, text=True,
                          capture_output=True, check=check)


def user_videos_and_csv(tmp: Path) -> Path:
    """``tmp/my_data`` with what a user starts from: ``videos/*.mp4`` at 25 fps, their
    detector's person boxes, and ``boxes.csv`` (pixels, frame numbers, class names, a split
    column, plus boxes on frames between keyframes as an interpolated track gives)."""
    made = syn.make_synthetic(tmp / "synthetic", preset="tiny", seed=0, fps=FPS,
                              segment_start=0, label_ids=LABEL_IDS, write_frames=False)
    root = tmp / "my_data"
    (root / "annotations").mkdir(parents=True)
    (made / "videos").rename(root / "videos")
    (made / "annotations" / "ava_val_predicted_boxes.csv").rename(
        root / "annotations" / "val_boxes.csv")
    names = read_labelmap(made / "annotations" / "ava_action_list_v2.2.pbtxt").names
    parts = []
    for split in ("train", "val"):
        gt = read_annotations(made / "annotations" / f"ava_{split}_v2.2.csv")
        parts.append(pd.DataFrame({
            "video_id": gt["video_id"], "frame": gt["timestamp"] * FPS,
            "x1": gt["x1"] * WIDTH, "y1": gt["y1"] * HEIGHT,
            "x2": gt["x2"] * WIDTH, "y2": gt["y2"] * HEIGHT,
            "label": gt["action_id"].map(names), "person_id": gt["person_id"], "split": split,
        }))
    rows = pd.concat(parts, ignore_index=True)
    between = rows.iloc[::5].assign(frame=lambda d: d["frame"] + 7)
    pd.concat([rows, between]).to_csv(root / "boxes.csv", index=False, float_format="%.2f")
    return root


def prepare(tmp: Path) -> Path:
    """Steps 1, 2 and 4: extract frames at 25 fps, convert the CSV, write the config.
    Returns the config's path."""
    root = user_videos_and_csv(tmp)
    subprocess.run([sys.executable, str(REPO / "data_prep" / "extract_frames.py"),
                    str(root / "videos"), str(root / "frames"), "--fps", str(FPS),
                    "--expected-frames", "0", "--workers", "1", "--no-progress"],
                   cwd=REPO, check=True, capture_output=True, text=True)
    avadet("convert-annotations", str(root / "boxes.csv"), "--videos", str(root / "videos"),
           "--out", str(root / "annotations" / "{split}.csv"),
           "--labelmap", str(root / "annotations" / "labels.pbtxt"), "--first-id", "3")
    config = {
        "data": {
            "root": str(root), "source": "frames", "frames_dir": "frames",
            "labelmap": "annotations/labels.pbtxt",
            "train_annotations": "annotations/train.csv",
            "val_annotations": "annotations/val.csv",
            "train_exclusions": "", "val_exclusions": "",
            "val_boxes": "annotations/val_boxes.csv",
            "classes": [],
            "fps": float(FPS), "segment_start": 0.0, "segment_end": float(SECONDS),
            "num_frames": 16, "sampling_rate": 2,
            "train_jitter_scales": [40, 48], "train_crop_size": 40, "test_short_side": 40,
            "train_color_jitter": False, "num_workers": 0,
        },
        "model": {"arch": "slowfast", "width_per_group": 4, "beta_inv": 4,
                  "num_classes": len(CLASS_IDS),
                  "dropout": 0.0},
        "solver": {"base_lr": 0.05, "max_epoch": 1.0, "warmup_epochs": 0.25,
                   "warmup_start_lr": 0.005,
                   "batch_size": 4, "schedule": "cosine"},
        "train": {"output_dir": str(root / "run"), "device": "cpu", "amp": False,
                  "eval_every_epochs": 1.0, "log_every_iters": 1, "checkpoint_every_iters": 100},
        "test": {"batch_size": 4, "output_csv": str(root / "run" / "predictions.csv")},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
