import numpy as np
import pandas as pd
import pytest

from avadet.errors import FormatError
from avadet.io import (
    LabelMap,
    atomic_write,
    merge_box_labels,
    read_annotations,
    read_exclusions,
    read_frame_list,
    read_person_boxes,
    read_predictions,
    write_ava_csv,
)

GT = """\
vid_A,0902,0.1,0.2,0.5,0.9,12,0
vid_A,0902,0.1,0.2,0.5,0.9,80,0
vid_A,902,0.6,0.1,0.9,0.8,3,1

-l0Trd5k_PG,1798,0.0,0.0,1.0,1.0,17
"""


def write(tmp_path, text, name="f.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_annotations_types_and_keys(tmp_path):
    df = read_annotations(write(tmp_path, GT))
    assert list(df.columns) == [
        "video_id", "timestamp", "x1", "y1", "x2", "y2", "action_id", "person_id"
    ]
    assert df["timestamp"].tolist() == [902, 902, 902, 1798]  # 0902 and 902 are one key
    assert df["video_id"].tolist()[-1] == "-l0Trd5k_PG"  # ids kept verbatim
    assert df["person_id"].tolist() == [0, 0, 1, -1]  # 7-column row: no person id
    assert df["action_id"].dtype == np.int64 and df["x1"].dtype == np.float64


def test_labelmap_filter_strict_and_lenient(tmp_path):
    path = write(tmp_path, GT)
    labelmap = LabelMap({3: "a", 12: "b", 17: "c"})
    with pytest.raises(FormatError, match=r"f\.csv:2: action id not in the label map"):
        read_annotations(path, labelmap=labelmap)
    df = read_annotations(path, labelmap=labelmap, strict=False)
    assert df["action_id"].tolist() == [12, 3, 17]


@pytest.mark.parametrize(
    "row, line, reason",
    [
        ("vid,0903,0.1,0.2,0.5,0.9,12,0,7", 2, "expected at most 8 comma-separated columns, found 9"),
        ("vid,0903,0.1,0.2,0.5,0.9", 2, "column 'action_id' is missing"),
        ("vid,0903,0.1,abc,0.5,0.9,12,0", 2, "column 'y1' is not a number: 'abc'"),
        ("vid,0903,0.1,0.2,1.5,0.9,12,0", 2, "box outside the normalised range"),
        ("vid,0903,0.5,0.2,0.1,0.9,12,0", 2, "box has x2 <= x1"),
        ("vid,0903,0.1,0.9,0.5,0.2,12,0", 2, "box has y2 <= y1"),
        ("vid,0903.5,0.1,0.2,0.5,0.9,12,0", 2, "column 'timestamp' must be an integer"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, row, line, reason):
    path = write(tmp_path, "vid,0902,0.1,0.2,0.5,0.9,12,0\n" + row + "\n", name="bad.csv")
    with pytest.raises(FormatError) as info:
        read_annotations(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert reason in str(info.value)


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    path = write(tmp_path, "vid,0902,0.1,0.2,0.5,0.9,12,0\n\n\nvid,0903,0.1,x,0.5,0.9,12,0\n")
    with pytest.raises(FormatError) as info:
        read_annotations(path)
    assert info.value.line == 4


def test_header_line_gets_a_hint(tmp_path):
    path = write(tmp_path, "video_id,timestamp,x1,y1,x2,y2,action_id,person_id\n" + GT)
    with pytest.raises(FormatError, match=r":1: .*no header"):
        read_annotations(path)


def test_small_tolerance_outside_unit_box_is_accepted(tmp_path):
    df = read_annotations(write(tmp_path, "v,0902,-0.005,0.0,1.004,1.0,1,0\n"))
    assert len(df) == 1


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="file not found"):
        read_annotations(tmp_path / "nope.csv")


def test_empty_file_gives_empty_table(tmp_path):
    df = read_predictions(write(tmp_path, ""))
    assert len(df) == 0 and "score" in df.columns


def test_predictions_default_score_and_no_box_validation(tmp_path):
    text = "v,0902,0.5,0.2,0.1,0.9,12,0.25\nv,0902,0.1,0.2,1.3,0.9,5\n"
    df = read_predictions(write(tmp_path, text), labelmap=LabelMap({5: "a", 12: "b"}))
    assert df["score"].tolist() == [0.25, 1.0]
    assert df["x1"].tolist() == [0.5, 0.1]  # invalid boxes are the protocol's business


def test_person_boxes_dedup_threshold_and_empty_action(tmp_path):
    text = (
        "v,0902,0.1,0.2,0.5,0.9,-1,0.95\n"
        "v,0902,0.1,0.2,0.5,0.9,,0.97\n"
        "v,0902,0.6,0.2,0.9,0.9,-1,0.5\n"
    )
    df = read_person_boxes(write(tmp_path, text))
    assert list(df.columns) == ["video_id", "timestamp", "x1", "y1", "x2", "y2", "score"]
    assert df["score"].tolist() == [0.97, 0.5]
    assert read_person_boxes(write(tmp_path, text), min_score=0.8)["score"].tolist() == [0.97]


def test_person_boxes_keep_the_best_of_a_keyframe_below_the_threshold(tmp_path):
    """MMAction2's rule: threshold min(thr, the keyframe's best score)."""
    text = (
        "v,0902,0.1,0.2,0.5,0.9,-1,0.95\n"
        "v,0902,0.6,0.2,0.9,0.9,-1,0.5\n"
        "v,0903,0.1,0.2,0.5,0.9,-1,0.4\n"
        "v,0903,0.6,0.2,0.9,0.9,-1,0.3\n"
    )
    assert read_person_boxes(write(tmp_path, text), min_score=0.9)["score"].tolist() == [0.95]
    kept = read_person_boxes(write(tmp_path, text), min_score=0.9, keep_best=True)
    assert kept["score"].tolist() == [0.95, 0.4]


def test_exclusions(tmp_path):
    df = read_exclusions(write(tmp_path, "vid_A,0960\nvid_B,1037\n"))
    assert df.values.tolist() == [["vid_A", 960], ["vid_B", 1037]]
    with pytest.raises(FormatError, match=r":2: timestamp is not an integer"):
        read_exclusions(write(tmp_path, "vid_A,0960\nvid_B,xx\n"))


def test_frame_list(tmp_path):
    text = (
        "original_vido_id video_id frame_id path labels\n"
        'vidA 0 0 vidA/vidA_000001.jpg ""\n'
        'vidA 0 1 vidA/vidA_000002.jpg ""\n'
    )
    df = read_frame_list(write(tmp_path, text, "train.csv"))
    assert df["path"].tolist() == ["vidA/vidA_000001.jpg", "vidA/vidA_000002.jpg"]
    assert df["frame_index"].tolist() == [0, 1]


def test_merge_box_labels_multi_hot(tmp_path):
    df = read_annotations(write(tmp_path, GT))
    boxes, labels = merge_box_labels(df, [3, 12, 17, 80])
    assert len(boxes) == 3
    assert boxes["person_id"].tolist() == [0, 1, -1]
    np.testing.assert_array_equal(labels, [[0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 1, 0]])
    # Classes outside the subset leave the person as an all-negative box, not lost.
    _, sub = merge_box_labels(df, [3])
    np.testing.assert_array_equal(sub, [[0], [1], [0]])


def test_write_ava_csv_round_trip(tmp_path):
    df = pd.DataFrame(
        {
            "video_id": ["v", "v"], "timestamp": [902, 1798], "x1": [0.1, 0.2], "y1": [0.2, 0.3],
            "x2": [0.5, 0.6], "y2": [0.9, 0.95], "action_id": [12, 80], "score": [0.123456, 1.0],
        }
    )
    path = tmp_path / "out" / "pred.csv"
    write_ava_csv(path, df, "score")
    assert path.read_text().splitlines()[0] == "v,0902,0.1,0.2,0.5,0.9,12,0.123456"
    back = read_predictions(path)
    pd.testing.assert_frame_equal(back, df)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as handle:
            handle.write("new half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
