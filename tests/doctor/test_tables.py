"""The doctor's lenient CSV reading: every row kept with its physical line and a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avadet.doctor.tables import best_iou, read_raw_table
from avadet.errors import FormatError
from avadet.io import read_annotations


def test_line_numbers_survive_blank_lines_crlf_and_long_rows(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_bytes(b"vid,0902,0.1,0.1,0.5,0.5,1,0\r\n\r\n"
                     b"vid,0903,0.1,0.1,0.5,0.5,1,0,9,9,9,9\r\n"
                     b"\n"
                     b"vid,0904.5,0.1,0.1,0.5,0.5,1,0\n"
                     b"-vid,0905,0.1,0.1,0.5,0.5,2\n")
    table = read_raw_table(path)
    assert table.rows["line"].tolist() == [1, 3, 5, 6]
    assert table.malformed.tolist() == [False, True, True, False]
    assert table.reasons[1] == "expected 7 or 8 comma-separated fields"
    assert table.reasons[2] == "timestamp is not an integer"
    assert table.examples(table.malformed) == [
        f"{path}:3: vid,0903,0.1,0.1,0.5,0.5,1,0,9,9,9,9", f"{path}:5: vid,0904.5,0.1,0.1,0.5,0.5,1,0"]
    good = table.good
    assert good["video_id"].tolist() == ["vid", "-vid"] and good["timestamp"].tolist() == [902, 905]
    assert np.isnan(good["last"].iloc[1])  # 7 columns: no person id


def test_text_fields_and_header(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text("video_id,timestamp,x1,y1,x2,y2,action_id,person_id\n"
                    "vid,0902,0.1,0.1,0.5,0.5,one,0\n"
                    "vid,0903,0.1,0.1,0.5,0.5,,0\n"
                    "vid,0904,0.1,0.1,0.5,0.5,3,0\n")
    table = read_raw_table(path)
    assert table.header
    assert list(table.reasons[1:]) == ["action id is not a number", "empty action id", ""]
    # The strict reader agrees that the file is unusable, naming the first bad line.
    with pytest.raises(FormatError, match=":1:"):
        read_annotations(path)


def test_box_rows_may_leave_out_action_and_score(tmp_path: Path) -> None:
    path = tmp_path / "boxes.csv"
    path.write_text("vid,0902,0.1,0.1,0.5,0.5\nvid,0902,0.1,0.1,0.5,0.5,,0.7\n")
    assert not read_raw_table(path, action_required=False).malformed.any()
    assert read_raw_table(path).malformed.tolist() == [True, True]


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="file not found"):
        read_raw_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("\n\n")
    assert read_raw_table(tmp_path / "empty.csv").rows.empty


def test_best_iou_per_gt_box() -> None:
    import pandas as pd

    gt = pd.DataFrame({"video_id": ["a", "a", "b"], "timestamp": [1, 1, 1],
                       "x1": [0.0, 0.5, 0.0], "y1": [0.0] * 3, "x2": [0.4, 1.0, 0.4], "y2": [1.0] * 3})
    boxes = pd.DataFrame({"video_id": ["a", "a"], "timestamp": [1, 1],
                          "x1": [0.0, 0.6], "y1": [0.0, 0.0], "x2": [0.2, 1.0], "y2": [1.0, 1.0]})
    np.testing.assert_allclose(best_iou(gt, boxes), [0.5, 0.8, 0.0])
