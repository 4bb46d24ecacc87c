"""The custom-dataset walk-through up to training: 25-fps videos and a user CSV become an AVA
dataset with a 5-class label map (ids 3..7) that check-data passes and the data layer and the
evaluation read with those ids. (Training and testing: test_custom_walkthrough.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures.walkthrough import CLASS_IDS, FPS, SECONDS, avadet, prepare  # noqa: E402

from avadet.config import load_config  # noqa: E402
from avadet.engine import build_dataset  # noqa: E402
from avadet.evaluation import evaluate_files  # noqa: E402
from avadet.io import read_annotations, read_labelmap  # noqa: E402


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare(tmp_path_factory.mktemp("custom"))


def test_frames_and_annotations_follow_the_custom_time_line(config: Path) -> None:
    root = config.parent
    for folder in (root / "frames").iterdir():
        assert len(list(folder.glob("*.jpg"))) == SECONDS * FPS
    labelmap = read_labelmap(root / "annotations" / "labels.pbtxt")
    assert labelmap.ids == CLASS_IDS
    for split in ("train", "val"):
        gt = read_annotations(root / "annotations" / f"{split}.csv", labelmap=labelmap)
        assert len(gt) and gt["timestamp"].between(2, SECONDS - 2).all()


def test_check_data_passes_and_reports_the_box_recall(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = avadet("check-data", "--config", str(config), "--json", str(out), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["errors"] == 0 and report["warnings"] == 0, report["findings"]
    assert report["stats"]["classes"] == 5 and report["stats"]["val_box_recall"] > 0.9
    assert report["stats"]["media_frames"] == 3 * SECONDS * FPS
    # The same dataset declared at AVA's 30 fps is caught: every folder is 25 fps x 8 s.
    wrong = avadet("check-data", "--config", str(config), "data.fps=30", "--quiet", check=False)
    assert wrong.returncode == 1 and "media.wrong_fps_count" in wrong.stdout


def test_data_layer_and_evaluation_use_the_label_map_ids(config: Path, tmp_path: Path) -> None:
    cfg = load_config(config)
    train = build_dataset(cfg, "train")
    assert train.class_ids == CLASS_IDS
    item = train[0]
    assert item.labels.shape[1] == 5 and item.clip.shape[1] == 16
    val = build_dataset(cfg, "val")
    assert len(val) > 0 and val[0].clip is not None
    # The gt itself as predictions scores a frame-mAP of 1 over the classes 3..7 with val gt.
    root = config.parent
    gt_path = root / "annotations" / "val.csv"
    result = evaluate_files(gt_path, gt_path, root / "annotations" / "labels.pbtxt")
    assert result.map == pytest.approx(1.0)
    assert set(result.per_class) == set(CLASS_IDS)
    assert all(np.isnan(v) or v == pytest.approx(1.0) for v in result.per_class.values())
