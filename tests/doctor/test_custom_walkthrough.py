"""docs/custom_dataset.md end to end: 25-fps videos and a user CSV -> convert -> check-data
(clean) -> ``avadet train`` (a tiny SlowFast, a few iterations) -> ``avadet test`` -> a finite
frame-mAP and predictions carrying only the label map's ids 3..7.

Needs the engine (``avadet train`` / ``avadet test``, docs: /work/ENGINE_CONTRACT.md)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from fixtures.walkthrough import CLASS_IDS, avadet, prepare  # noqa: E402

from avadet.evaluation import evaluate_files  # noqa: E402
from avadet.io import read_predictions  # noqa: E402


def _output(result) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"


def test_custom_dataset_walkthrough_trains_and_tests(tmp_path: Path) -> None:
    config = prepare(tmp_path)
    root = config.parent
    checked = avadet("check-data", "--config", str(config), "--quiet", check=False)
    assert checked.returncode == 0, _output(checked)

    trained = avadet("train", "--config", str(config), check=False)
    assert trained.returncode == 0, _output(trained)
    checkpoint = root / "run" / "checkpoints" / "model_final.pt"
    assert checkpoint.is_file(), _output(trained)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert list(state["class_ids"]) == CLASS_IDS

    tested = avadet("test", "--config", str(config), "--checkpoint", str(checkpoint),
                    check=False)
    assert tested.returncode == 0, _output(tested)
    predictions = root / "run" / "predictions.csv"  # test.output_csv in the config
    if not predictions.is_file():
        found = sorted((root / "run").rglob("*predictions*.csv"))
        assert found, _output(tested)
        predictions = found[0]
    pred = read_predictions(predictions)
    assert len(pred) > 0
    assert set(pred["action_id"].unique()) == set(CLASS_IDS)  # every class scored, no other id
    assert pred["score"].between(0, 1).all()
    result = evaluate_files(root / "annotations" / "val.csv", predictions,
                            root / "annotations" / "labels.pbtxt")
    assert math.isfinite(result.map) and 0.0 <= result.map <= 1.0
    assert "map" in tested.stdout.lower(), _output(tested)
