"""The frame-mAP rules one by one, on tables small enough to check by hand."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avadet.cli import main as avadet_main
from avadet.errors import AvadetError
from avadet.evaluation import evaluate_frame_map, heap_cap_mask

COLS = ["video_id", "timestamp", "x1", "y1", "x2", "y2", "action_id"]
BOX = (0.1, 0.1, 0.5, 0.5)


def gt_table(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[*COLS, "person_id"][: len(rows[0])] if rows else COLS)
    if "person_id" not in df:
        df["person_id"] = -1
    return df.astype({"timestamp": np.int64, "action_id": np.int64, "person_id": np.int64})


def pred_table(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[*COLS, "score"]).astype(
        {"timestamp": np.int64, "action_id": np.int64, "score": np.float64}
    )


def test_perfect_detections_give_ap_one_and_classes_without_gt_are_nan() -> None:
    gt = gt_table([("v", 902, *BOX, 1, 0), ("v", 903, *BOX, 2, 0)])
    pred = pred_table([("v", 902, *BOX, 1, 0.9), ("v", 903, *BOX, 2, 0.8)])
    r = evaluate_frame_map(gt, pred, {1: "a", 2: "b", 3: "c"})
    assert r.per_class[1] == 1.0 and r.per_class[2] == 1.0 and math.isnan(r.per_class[3])
    assert r.map == 1.0
    assert r.to_json() == {"mAP": 1.0, "per_class": {"1": 1.0, "2": 1.0, "3": None}}


def test_class_with_gt_but_no_detection_counts_zero() -> None:
    gt = gt_table([("v", 902, *BOX, 1, 0), ("v", 902, *BOX, 2, 0)])
    pred = pred_table([("v", 902, *BOX, 1, 0.9)])
    r = evaluate_frame_map(gt, pred, [1, 2])
    assert r.per_class == {1: 1.0, 2: 0.0} and r.map == 0.5
    mm = evaluate_frame_map(gt, pred, [1, 2], protocol="mmaction2")
    assert math.isnan(mm.per_class[2]) and mm.map == 1.0  # MMAction2 leaves it out


def test_no_fallback_to_second_best_gt() -> None:
    """Two people, two detections; both detections overlap person A best. The second one is a
    false positive even though it also overlaps person B by more than 0.5."""
    a, b = (0.0, 0.0, 0.4, 1.0), (0.1, 0.0, 0.5, 1.0)
    det = (0.05, 0.0, 0.45, 1.0)  # IoU 0.778 with both; A comes first (person id 1 > 0)
    gt = gt_table([("v", 902, *a, 1, 1), ("v", 902, *b, 1, 0)])
    pred = pred_table([("v", 902, *det, 1, 0.9), ("v", 902, *det, 1, 0.8)])
    r = evaluate_frame_map(gt, pred, [1])
    assert r.num_gt[1] == 2
    # TP then FP: precision 1 at recall 0.5, then nothing more.
    assert r.per_class[1] == pytest.approx(0.5)


def test_duplicate_gt_rows_count_twice() -> None:
    gt = gt_table([("v", 902, *BOX, 1, 0), ("v", 902, *BOX, 1, 0)])
    pred = pred_table([("v", 902, *BOX, 1, 0.9)])
    r = evaluate_frame_map(gt, pred, [1])
    assert r.num_gt[1] == 2 and r.per_class[1] == 0.5


def test_iou_exactly_half_is_a_match() -> None:
    gt = gt_table([("v", 902, 0.0, 0.0, 1.0, 1.0, 1, 0)])
    pred = pred_table([("v", 902, 0.0, 0.0, 0.5, 1.0, 1, 0.9)])
    assert evaluate_frame_map(gt, pred, [1]).per_class[1] == 1.0


def test_exclusions_and_class_filter() -> None:
    gt = gt_table([("v", 902, *BOX, 1, 0), ("v", 903, *BOX, 1, 0), ("v", 903, *BOX, 9, 0)])
    pred = pred_table(
        [("v", 903, *BOX, 1, 0.99), ("v", 902, *BOX, 1, 0.5), ("v", 902, *BOX, 9, 0.95)]
    )
    excl = pd.DataFrame({"video_id": ["v"], "timestamp": [903]})
    r = evaluate_frame_map(gt, pred, [1], exclusions=excl)
    assert r.per_class == {1: 1.0} and r.num_gt == {1: 1}
    assert r.counts["gt_rows_excluded"] == 1 and r.counts["pred_rows_excluded"] == 1
    assert r.counts["pred_rows_other_classes"] == 1 and r.counts["gt_rows_other_classes"] == 1
    # MMAction2 keeps the excluded gt row in num_gt: it can only be missed.
    mm = evaluate_frame_map(gt, pred, [1], exclusions=excl, protocol="mmaction2")
    assert mm.num_gt == {1: 2} and mm.per_class[1] == 0.5


def test_predictions_on_keyframes_without_gt_per_protocol() -> None:
    gt = gt_table([("v", 902, *BOX, 1, 0), ("v", 904, *BOX, 7, 0)])  # 904: other class only
    pred = pred_table(
        [
            ("v", 903, *BOX, 1, 0.95),  # keyframe absent from the gt file
            ("v", 904, *BOX, 1, 0.93),  # keyframe in the gt file, no evaluated gt
            ("w", 902, *BOX, 1, 0.91),  # video absent from the gt
            ("v", 902, *BOX, 1, 0.5),
        ]
    )
    ap = {p: evaluate_frame_map(gt, pred, [1], protocol=p) for p in
          ["activitynet2019", "activitynet", "pyslowfast", "mmaction2"]}
    assert ap["activitynet2019"].per_class[1] == pytest.approx(0.25)  # 3 FPs ranked first
    assert ap["pyslowfast"].per_class[1] == pytest.approx(0.25)
    assert ap["activitynet"].per_class[1] == pytest.approx(0.5)  # only 904 counts as FP
    assert ap["mmaction2"].per_class[1] == 1.0
    r = ap["activitynet2019"]
    assert r.counts["pred_rows_no_gt_keyframe"] == 3 and r.counts["pred_keyframes_no_gt"] == 3
    assert r.counts["pred_rows_no_gt_video"] == 1 and r.counts["pred_videos_no_gt"] == 1
    assert any("without ground truth" in w for w in r.warnings)


def test_invalid_boxes_dropped_after_the_cap() -> None:
    gt = gt_table([("v", 902, *BOX, 1, 0)])
    rows = [("v", 902, 0.5, 0.1, 0.5, 0.9, 1, 0.99)]  # zero width: invalid, but fills the heap
    rows += [("v", 902, *BOX, 1, 0.1 + i / 1000) for i in range(50)]
    pred = pred_table(rows)
    r = evaluate_frame_map(gt, pred, [1])
    assert r.counts["pred_rows_over_cap"] == 1 and r.counts["pred_rows_invalid_box"] == 1
    assert r.num_pred[1] == 49
    # Without the cap (PySlowFast) the zero-width box is still dropped, MMAction2 keeps it.
    assert evaluate_frame_map(gt, pred, [1], protocol="pyslowfast").num_pred[1] == 50
    assert evaluate_frame_map(gt, pred, [1], protocol="mmaction2").num_pred[1] == 51


def test_heap_cap_keeps_ties_like_the_official_heap() -> None:
    """Capacity 2, scores 0.5 0.5 0.5 0.9: the heap holds rows 0, 1 when row 2 (equal score,
    not strictly greater) is refused; row 3 then evicts the smaller tuple of rows 0 and 1."""
    keys = np.zeros(4, dtype=np.int64)
    scores = np.array([0.5, 0.5, 0.5, 0.9])
    actions = np.array([2, 1, 3, 1])
    boxes = np.zeros((4, 4))
    assert heap_cap_mask(keys, scores, actions, boxes, 2).tolist() == [True, False, False, True]


def test_pyslowfast_matches_in_file_order() -> None:
    gt = gt_table([("v", 902, *BOX, 1, 0)])
    pred = pred_table([("v", 902, *BOX, 1, 0.2), ("v", 902, *BOX, 1, 0.9)])
    assert evaluate_frame_map(gt, pred, [1]).per_class[1] == 1.0
    # File order: the 0.2 row takes the gt, the 0.9 row ranked first is a false positive.
    assert evaluate_frame_map(gt, pred, [1], protocol="pyslowfast").per_class[1] == 0.5


def test_mmaction2_drops_low_scores() -> None:
    gt = gt_table([("v", 902, *BOX, 1, 0)])
    pred = pred_table([("v", 902, *BOX, 1, 0.001)])
    assert evaluate_frame_map(gt, pred, [1]).per_class[1] == 1.0
    mm = evaluate_frame_map(gt, pred, [1], protocol="mmaction2")
    assert mm.counts["pred_rows_low_score"] == 1 and math.isnan(mm.map)


def test_score_ties_resolved_in_file_order() -> None:
    """Equal scores: the earlier row is ranked first (documented tie rule)."""
    gt = gt_table([("v", 902, *BOX, 1, 0), ("v", 903, *BOX, 1, 0)])
    far = (0.6, 0.6, 0.9, 0.9)
    tp_first = pred_table([("v", 902, *BOX, 1, 0.5), ("v", 903, *far, 1, 0.5)])
    fp_first = pred_table([("v", 903, *far, 1, 0.5), ("v", 902, *BOX, 1, 0.5)])
    assert evaluate_frame_map(gt, tp_first, [1]).per_class[1] == 0.5
    assert evaluate_frame_map(gt, fp_first, [1]).per_class[1] == 0.25


def test_unknown_protocol_is_a_clear_error() -> None:
    gt = gt_table([("v", 902, *BOX, 1, 0)])
    with pytest.raises(AvadetError, match="unknown evaluation protocol"):
        evaluate_frame_map(gt, pred_table([]), [1], protocol="voc2007")


def test_empty_predictions() -> None:
    gt = gt_table([("v", 902, *BOX, 1, 0)])
    r = evaluate_frame_map(gt, pred_table([]), [1, 2])
    assert r.per_class[1] == 0.0 and math.isnan(r.per_class[2]) and r.map == 0.0


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


LABELMAP = 'item {\n  name: "stand"\n  id: 1\n}\nitem {\n  name: "sit"\n  id: 2\n}\n'


def test_cli_reports_malformed_file_with_line(tmp_path: Path, capsys) -> None:
    gt = _write(tmp_path / "gt.csv", "v,0902,0.1,0.1,0.5,0.5,1,0\n")
    pred = _write(tmp_path / "pred.csv", "v,0902,0.1,0.1,0.5,0.5,1,0.9\nv,0903,0.1,abc,0.5,0.5,1,0.9\n")
    lm = _write(tmp_path / "lm.pbtxt", LABELMAP)
    code = avadet_main(["eval", str(gt), str(pred), "--labelmap", str(lm)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{pred}:2" in err and "Traceback" not in err


def test_cli_table_json_and_plots(tmp_path: Path, capsys) -> None:
    gt = _write(tmp_path / "gt.csv", "v,0902,0.1,0.1,0.5,0.5,1,0\nv,0902,0.1,0.1,0.5,0.5,2,0\n")
    pred = _write(
        tmp_path / "pred.csv",
        "v,902,0.1,0.1,0.5,0.5,1,0.9\nv,902,0.6,0.6,0.9,0.9,2,0.8\nv,902,0.1,0.1,0.5,0.5,2,0.7\n"
        "x,902,0.1,0.1,0.5,0.5,2,0.7\n",
    )
    lm = _write(tmp_path / "lm.pbtxt", LABELMAP)
    out = tmp_path / "out.json"
    code = avadet_main(
        ["eval", str(gt), str(pred), "--labelmap", str(lm), "--json", str(out),
         "--plots", str(tmp_path / "plots"), "--protocol", "pyslowfast"]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "stand" in captured.out and "sit" in captured.out and "pyslowfast" in captured.out
    lines = captured.out.splitlines()
    assert lines.index(next(s for s in lines if "stand" in s)) < lines.index(
        next(s for s in lines if " sit " in s)
    )  # sorted by AP: stand (100) before sit
    assert "warning" in captured.err and "1 videos" in captured.err
    payload = json.loads(out.read_text())
    assert payload["per_class"] == {"1": 1.0, "2": 0.5}  # FP 0.8, TP 0.7, FP 0.7 (later row)
    assert payload["mAP"] == 0.75
    for name in ("ap_per_class.png", "pr_curves.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluation_does_not_import_higher_layers() -> None:
    code = (
        "import sys, avadet.evaluation, avadet.evaluation.report, avadet.commands.eval,"
        " avadet.api.evaluation;"
        "bad = [m for m in sys.modules if m.split('.')[:2] in "
        "(['avadet', 'models'], ['avadet', 'data'], ['avadet', 'engine']) or m == 'torch'];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr


def test_nan_scores_are_ignored_with_a_warning() -> None:
    gt = gt_table([("v", 902, *BOX, 1, 0)])
    pred = pred_table([("v", 902, *BOX, 1, float("nan")), ("v", 902, *BOX, 1, 0.4)])
    r = evaluate_frame_map(gt, pred, [1])
    assert r.per_class[1] == 1.0 and r.counts["pred_rows_nan_score"] == 1
    assert any("NaN" in w for w in r.warnings)


def test_infinite_scores_are_ignored_with_a_warning_even_past_the_cap() -> None:
    """+-inf used to reach the official heap (50 per keyframe) and stop it ("negative
    elements"); the readers refuse inf, the in-memory API leaves such rows out, counted."""
    gt = gt_table([("v", 902, *BOX, 1, 0)])
    rows = [("v", 902, 0.6, 0.6, 0.9, 0.9, 1, 0.1 + i / 1000) for i in range(60)]
    rows += [("v", 902, *BOX, 1, float("inf")), ("v", 902, *BOX, 1, -float("inf")),
             ("v", 902, *BOX, 1, 0.05)]
    r = evaluate_frame_map(gt, pred_table(rows), [1])
    assert r.counts["pred_rows_nan_score"] == 2
    assert any("infinite" in w for w in r.warnings)
    assert r.counts["pred_rows_over_cap"] == 11  # 61 finite rows, 50 kept: 0.05 is cut
    assert r.per_class[1] == 0.0


def test_timestamps_far_apart_in_memory_do_not_overflow_keyframe_codes() -> None:
    gt = gt_table([("v", 0, *BOX, 1, 0), ("w", 2**62, *BOX, 1, 0)])
    pred = pred_table([("v", 0, *BOX, 1, 0.9), ("w", 2**62, *BOX, 1, 0.8),
                       ("w", -(2**62), *BOX, 1, 0.7)])
    r = evaluate_frame_map(gt, pred, [1])
    assert r.num_gt[1] == 2 and r.counts["pred_rows_no_gt_keyframe"] == 1
    assert r.per_class[1] == 1.0
