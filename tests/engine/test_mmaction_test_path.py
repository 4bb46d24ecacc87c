"""``avadet test`` and ``avadet detect`` on an MMAction2 checkpoint reproduce MMAction2's own
AVA test path.

The reference rows were made by MMAction2 itself (tools/parity/mmaction_test_path.py, see
tests/fixtures/pyslowfast_dataset/README.md): its ``AVADataset`` in test mode with the
SlowFast R50 4x16x1 config's test pipeline, the model built from that config at base width 8
with the weights of tests/fixtures/models/mmaction_slowfast_r50_4x16x1_w8.json, and its
``AVAMetric`` / ``det2csv`` rows, on the tiny dataset: two 5 s videos (landscape and portrait,
both resized to a 256 short side with a rounded long side), keyframes whose best box is
under the 0.9 threshold (kept), a clip past a video's end (clamped) and an excluded keyframe.

avadet is given only the checkpoint and the dataset's paths: every preprocessing setting
(rounded resize, clip centred a frame later, ImageNet mean/std, per-axis box scaling, the
0.9 threshold keeping each keyframe's best box) must come from the checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from fixtures.mmaction_reference import read_recipe, write_checkpoint
from fixtures.parity_dataset import (
    dataset_config,
    detect_argv,
    read_rows,
    reference_rows,
    score_diff,
    write_land_video,
)

from avadet.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STEM = "mmaction_slowfast_r50_4x16x1_w8"
TOLERANCE = 1e-4
# MMAction2's test scores the keyframes of its annotation file, less the excluded ones; the
# reference also holds the excluded vid_land,0904 (MMAction2 run without the exclusion file).
EXCLUDED = ("vid_land", 904)


def _reference() -> pd.DataFrame:
    return reference_rows(STEM)


def _keyframes(rows: pd.DataFrame) -> set[tuple[str, int]]:
    return set(map(tuple, rows[["video_id", "timestamp"]].drop_duplicates().values))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mmaction")
    return write_checkpoint(read_recipe(FIXTURES / "models" / f"{STEM}.json"),
                            folder / f"{STEM}.pth")


def _avadet_test(tmp_path: Path, capsys, checkpoint: Path, *overrides: str) -> pd.DataFrame:
    """``avadet test`` rows at the keyframes of the reference."""
    out = tmp_path / "pred.csv"
    code = main(["test", "--config", str(dataset_config(tmp_path)), "--checkpoint", str(checkpoint),
                 "--output-csv", str(out), *overrides])
    assert code == 0, capsys.readouterr().err
    ours, theirs = read_rows(out), _reference()
    # MMAction2 scores the annotated keyframes; avadet every keyframe with person boxes
    # (vid_port,0905 too). Both sets hold all of MMAction2's, the excluded one included.
    assert _keyframes(theirs) <= _keyframes(ours)
    assert EXCLUDED in _keyframes(ours)
    return ours[[k in _keyframes(theirs) for k in zip(ours.video_id, ours.timestamp)]]


def test_avadet_test_gives_mmactions_rows(tmp_path, capsys, checkpoint):
    # At the default test.batch_size (8): the two videos' frames differ in size and are
    # never padded into one batch (MMAction2 scores one keyframe per batch).
    torch.set_num_threads(1)
    ours = _avadet_test(tmp_path, capsys, checkpoint)
    assert score_diff(ours, _reference()) <= TOLERANCE


def test_clipped_boxes_move_off_mmactions_rows(tmp_path, capsys, checkpoint):
    # PySlowFast's box clipping instead of the checkpoint's none: the boxes at the right and
    # bottom edges (vid_land,0903; vid_port,0902's second) end a pixel short and their scores
    # drift (measured: 1.3e-2); the others stay.
    torch.set_num_threads(1)
    ours = _avadet_test(tmp_path, capsys, checkpoint, "data.box_clipping=last_pixel")
    assert score_diff(ours, _reference()) > TOLERANCE
    inside = (ours.x2 < 0.99) & (ours.y2 < 0.99)
    theirs = _reference()
    assert score_diff(ours[inside], theirs[(theirs.x2 < 0.99) & (theirs.y2 < 0.99)]) <= TOLERANCE


@pytest.fixture(scope="module")
def land_video(tmp_path_factory) -> Path:
    return write_land_video(tmp_path_factory.mktemp("video"))


def test_avadet_detect_gives_mmactions_rows(tmp_path, capsys, checkpoint, land_video):
    torch.set_num_threads(1)
    code = main(detect_argv(land_video, checkpoint, tmp_path / "out"))
    assert code == 0, capsys.readouterr().err
    ours = read_rows(tmp_path / "out" / "vid_land.csv")
    theirs = _reference()
    theirs = theirs[theirs.video_id == "vid_land"]
    # vid_land's three keyframes with boxes: 902, 903 and the excluded 904 (its clip clamped).
    assert _keyframes(ours) == _keyframes(theirs) == {("vid_land", t) for t in (902, 903, 904)}
    assert score_diff(ours, theirs) <= TOLERANCE
    doc = json.loads((tmp_path / "out" / "vid_land.json").read_text())
    assert doc["checkpoint_source"] == "mmaction2"
