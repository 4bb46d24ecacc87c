"""PySlowFast frame lists from a frames folder, and the data_prep entry points."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from avadet.cli import main
from avadet.io import read_frame_list
from avadet.prep.frame_lists import (
    HEADER,
    make_frame_lists,
    split_video_ids,
    write_frame_list,
)

REPO = Path(__file__).resolve().parents[2]


def _touch_frames(root: Path, video_id: str, numbers) -> None:
    folder = root / video_id
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        (folder / f"{video_id}_{n:06d}.jpg").write_bytes(b"")
    (folder / ".done.json").write_text("{}")  # other files are ignored
    (folder / "notes.txt").write_text("")


def test_frame_lists_from_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frames = tmp_path / "frames"
    _touch_frames(frames, "-5KQ66BBWC4", range(1, 31))
    _touch_frames(frames, "vidB", [1, 2, 3, 5])  # a gap
    ann = tmp_path / "ava_train_v2.2.csv"
    ann.write_text("vidB,0902,0.1,0.1,0.5,0.5,1,0\n-5KQ66BBWC4,0902,0.1,0.1,0.5,0.5,1,0\n"
                   "vidB,0903,0.1,0.1,0.5,0.5,1,0\nmissingVid,0902,0.1,0.1,0.5,0.5,1,0\n")
    splits = {"train": split_video_ids(ann)}
    assert splits["train"] == ["vidB", "-5KQ66BBWC4", "missingVid"]
    with caplog.at_level(logging.WARNING):
        written = make_frame_lists(frames, tmp_path / "lists", splits, expected_frames=30)
    assert "gaps" in caplog.text and "missingVid" in caplog.text and "4 frames, expected 30" in caplog.text
    text = written["train"].read_text()
    assert text.splitlines()[0] == HEADER
    assert text.splitlines()[5] == '-5KQ66BBWC4 1 0 -5KQ66BBWC4/-5KQ66BBWC4_000001.jpg ""'
    df = read_frame_list(written["train"])
    assert df.original_video_id.tolist() == ["vidB"] * 4 + ["-5KQ66BBWC4"] * 30
    assert df.video_index.tolist() == [0] * 4 + [1] * 30
    assert df.frame_index.tolist() == list(range(4)) + list(range(30))
    assert df.path.iloc[3] == "vidB/vidB_000005.jpg"


def test_write_frame_list_roundtrip(tmp_path: Path) -> None:
    path = write_frame_list(tmp_path / "val.csv", ["a", "b"], [3, 2])
    df = read_frame_list(path)
    assert len(df) == 5 and df.path.tolist()[-1] == "b/b_000002.jpg"
    assert (df.labels == "").all()


def test_main_uses_the_annotation_splits(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    _touch_frames(frames, "tr", range(1, 4))
    _touch_frames(frames, "va", range(1, 3))
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "ava_train_v2.2.csv").write_text("tr,0902,0.1,0.1,0.5,0.5,1,0\n")
    (ann / "ava_val_v2.2.csv").write_text("va,0902,0.1,0.1,0.5,0.5,1,0\n")
    assert main(["make-frame-lists", str(frames), str(tmp_path / "fl"), "--annotations-dir", str(ann), "--expected-frames", "0"]) == 0
    assert read_frame_list(tmp_path / "fl" / "val.csv").original_video_id.tolist() == ["va", "va"]
    assert main(["make-frame-lists", str(frames), str(tmp_path / "fl"), "--annotations-dir", str(tmp_path / "nowhere")]) == 2


@pytest.mark.parametrize("script", ["download_annotations", "cut_videos", "extract_frames", "make_frame_lists",
                                    "convert_annotations", "detect_persons"])
def test_data_prep_scripts_show_help(script: str) -> None:
    out = subprocess.run([sys.executable, str(REPO / "data_prep" / f"{script}.py"), "--help"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout
