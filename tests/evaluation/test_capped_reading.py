"""Reading a prediction file in pieces with the cap applied per piece gives exactly the
result of reading it whole.

``evaluate_files`` under a capped protocol streams the prediction file
(``avadet.evaluation.capped_reading``); ``evaluate_frame_map`` on the whole table is the
reference. Piece boundaries inside keyframes, ties at the 50th score, identical tuples and
keyframes that come back after other keyframes are all exercised, against both the whole-file
path and the loop-by-loop heap of ``tests/fixtures/slow_reference.py``.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.slow_reference import slow_heap_cap
from hypothesis import given, settings
from hypothesis import strategies as st

from avadet.errors import FormatError
from avadet.evaluation import PROTOCOLS, evaluate_files, evaluate_frame_map
from avadet.evaluation.capped_reading import read_capped_predictions
from avadet.io import (
    iter_predictions,
    read_annotations,
    read_exclusions,
    read_labelmap,
    read_predictions,
)

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
CAPPED = [name for name, p in PROTOCOLS.items() if p.cap is not None]
COLUMNS = ["video_id", "timestamp", "x1", "y1", "x2", "y2", "action_id", "score"]


def _same_number(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _assert_same_result(got, want) -> None:
    """Bit-identical results: every AP, count and warning."""
    assert _same_number(got.map, want.map), (got.map, want.map)
    assert got.per_class.keys() == want.per_class.keys()
    for c in want.per_class:
        assert _same_number(got.per_class[c], want.per_class[c]), c
    assert got.num_gt == want.num_gt and got.num_pred == want.num_pred
    assert list(got.counts.items()) == list(want.counts.items())
    assert got.warnings == want.warnings


def _whole_file(d: Path, protocol: str, pred: Path | None = None):
    return evaluate_frame_map(
        read_annotations(d / "gt.csv", strict=False),
        read_predictions(pred or d / "pred.csv"),
        read_labelmap(d / "labelmap.pbtxt"),
        exclusions=read_exclusions(d / "exclusions.csv"),
        protocol=protocol,
    )


@pytest.mark.parametrize("protocol", CAPPED)
@pytest.mark.parametrize("case", ["case_a", "case_b", "case_c", "case_d"])
def test_reference_cases_read_in_pieces_equal_whole(case: str, protocol: str) -> None:
    d = DATA / case
    want = _whole_file(d, protocol)
    # 997 rows: a piece boundary inside most keyframes (each has ~80-400 rows), none aligned.
    for chunk_rows in (997, 65536, None):
        got = evaluate_files(d / "gt.csv", d / "pred.csv", d / "labelmap.pbtxt",
                             d / "exclusions.csv", protocol=protocol, chunk_rows=chunk_rows)
        _assert_same_result(got, want)


def _write_rows(path: Path, rows: list[tuple]) -> None:
    with open(path, "w") as handle:
        for video, stamp, x1, y1, x2, y2, action, score in rows:
            handle.write(f"{video},{stamp:04d},{x1},{y1},{x2},{y2},{action},{score!r}\n")


def _expected(table: pd.DataFrame, class_ids: list[int], excluded: set, capacity: int):
    """Rows of the whole table that the official reader keeps, by heapq, and the counts."""
    score = table["score"].to_numpy()
    in_class = table["action_id"].isin(class_ids).to_numpy()
    finite = np.isfinite(score)
    keys = list(zip(table["video_id"], table["timestamp"]))
    out = np.array([k in excluded for k in keys], dtype=bool)
    candidates = np.flatnonzero(in_class & finite & ~out)
    heap_rows = [(keys[i], *table.iloc[i][["score", "action_id", "x1", "y1", "x2", "y2"]])
                 for i in candidates]
    kept = candidates[slow_heap_cap(heap_rows, capacity)]
    counts = {
        "pred_rows": len(table),
        "pred_rows_other_classes": int((~in_class).sum()),
        "pred_rows_nan_score": int((in_class & ~finite).sum()),
        "pred_rows_low_score": 0,
        "pred_rows_excluded": int((in_class & finite & out).sum()),
        "pred_rows_over_cap": len(candidates) - len(kept),
    }
    return table.iloc[kept].reset_index(drop=True), counts


def _check_pieces(path: Path, class_ids: list[int], excluded: set, capacity: int,
                  chunk_rows: int) -> None:
    proto = dataclasses.replace(PROTOCOLS["activitynet2019"], cap=capacity)
    ex = pd.DataFrame({"video_id": [k[0] for k in excluded],
                       "timestamp": np.array([k[1] for k in excluded], dtype=np.int64)})
    got, counts = read_capped_predictions(path, np.array(sorted(class_ids)), ex, proto,
                                          chunk_rows=chunk_rows)
    want, want_counts = _expected(read_predictions(path), class_ids, excluded, capacity)
    assert counts == want_counts
    assert len(got) == len(want)
    assert got["video_id"].astype(str).tolist() == want["video_id"].tolist()
    for column in COLUMNS[1:]:
        assert got[column].dtype == want[column].dtype, column
        np.testing.assert_array_equal(got[column].to_numpy(), want[column].to_numpy())


def test_ties_at_the_50th_score_across_piece_boundaries(tmp_path: Path) -> None:
    """One keyframe of 130 rows: 30 above the tie, 60 tied at the 50th score (with identical
    tuples among them) arriving before and after the heap fills, 40 below; cut into pieces
    at sizes from 1 to 1000."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(130):
        kind = rng.choice(["above", "tie", "below"], p=[30 / 130, 60 / 130, 40 / 130])
        score = {"above": 0.9 - i / 1000, "tie": 0.5, "below": 0.1 + i / 10000}[kind]
        action = int(rng.integers(1, 4))
        x1 = float(rng.choice([0.1, 0.2]))
        rows.append(("vidA", 902, x1, 0.1, 0.5, 0.6, action, score))
    # A second keyframe interleaved with the first, and a third that comes back at the end.
    rows = rows[:60] + [("vidB", 903, 0.1, 0.1, 0.4, 0.4, 1, 0.5)] * 55 + rows[60:]
    rows += [("vidA", 905, 0.2, 0.2, 0.4, 0.4, 2, 0.3)] * 3 + [("vidB", 903, 0.1, 0.1, 0.4, 0.4,
                                                                 2, 0.7)] * 4
    path = tmp_path / "pred.csv"
    _write_rows(path, rows)
    for chunk_rows in [1, 2, 3, 7, 13, 29, 30, 31, 49, 50, 51, 59, 60, 61, 97, 131, 200, 1000]:
        _check_pieces(path, [1, 2, 3], set(), 50, chunk_rows)


def test_survivors_of_a_piece_are_not_a_sufficient_summary(tmp_path: Path) -> None:
    """Capping each piece alone and then the pieces' survivors together is NOT exact; the
    heap state must carry over. Capacity 2: row 0 (score s) in piece 1; piece 2 holds
    (s, action 2), (s, action 9), (u > s). The heap keeps (s, 2) and u; capping piece 2 alone
    first would keep (s, 9) instead."""
    rows = [("v", 1, 0.1, 0.1, 0.5, 0.5, 1, 0.5), ("v", 1, 0.1, 0.1, 0.5, 0.5, 2, 0.5),
            ("v", 1, 0.1, 0.1, 0.5, 0.5, 9, 0.5), ("v", 1, 0.1, 0.1, 0.5, 0.5, 1, 0.75)]
    path = tmp_path / "pred.csv"
    _write_rows(path, rows)
    for chunk_rows in (1, 2, 3, 4):
        proto = dataclasses.replace(PROTOCOLS["activitynet2019"], cap=2)
        got, _ = read_capped_predictions(path, np.array([1, 2, 9]), None, proto,
                                         chunk_rows=chunk_rows)
        assert got["action_id"].tolist() == [2, 1] and got["score"].tolist() == [0.5, 0.75]


def test_keyframes_coming_back_from_several_earlier_pieces(tmp_path: Path) -> None:
    """Runs of 1-20 rows of 5 keyframes in random order: a piece often touches keyframes whose
    survivors sit in different earlier pieces (they are merged back into file order first)."""
    rng = np.random.default_rng(2)
    keys = [("vidA", 902), ("vidA", 903), ("vidB", 902), ("vidB", 904), ("vidC", 902)]
    rows = []
    while len(rows) < 400:
        video, stamp = keys[int(rng.integers(len(keys)))]
        for _ in range(int(rng.integers(1, 21))):
            rows.append((video, stamp, float(rng.choice([0.1, 0.2])), 0.1, 0.5, 0.6,
                         int(rng.choice([1, 2, 3, 7])), float(rng.choice([0.25, 0.5, 0.75]))))
    path = tmp_path / "pred.csv"
    _write_rows(path, rows)
    for chunk_rows in (1, 3, 7, 16, 50, 399):
        for capacity in (1, 5, 50):
            _check_pieces(path, [1, 2, 3], {("vidB", 904)}, capacity, chunk_rows)


pred_row = st.tuples(
    st.sampled_from([("vidA", 902), ("vidA", 903), ("vidB", 902), ("vidC", 905)]),
    st.sampled_from([0.0, 0.2]), st.sampled_from([0.5, 1.0]),  # x1, x2: identical tuples
    st.sampled_from([1, 2, 3, 7]),  # 7: not evaluated
    st.sampled_from([0.25, 0.5, 0.75]),  # few levels: ties
)


@settings(max_examples=120, deadline=None)
@given(
    rows=st.lists(pred_row, min_size=1, max_size=40),
    capacity=st.integers(1, 5),
    chunk_rows=st.integers(1, 12),
    excluded=st.sets(st.sampled_from([("vidA", 903), ("vidC", 905)])),
)
def test_pieces_equal_heapq_on_random_files(rows, capacity, chunk_rows, excluded) -> None:
    table = [(v, t, x1, 0.1, x2, 0.9, a, s) for (v, t), x1, x2, a, s in rows]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pred.csv"
        _write_rows(path, table)
        _check_pieces(path, [1, 2, 3], excluded, capacity, chunk_rows)


@pytest.mark.parametrize("protocol", CAPPED)
def test_file_api_in_pieces_equals_whole_with_a_tiny_cap(tmp_path: Path, protocol: str) -> None:
    """The whole evaluation (not only the survivors) on case_d's gt with a file whose rows
    jump between keyframes, a cap of 3, and other classes in every piece."""
    d = DATA / "case_d"
    gt = read_annotations(d / "gt.csv", strict=False)
    keys = gt[["video_id", "timestamp"]].drop_duplicates().itertuples(index=False)
    keys = [tuple(k) for k in keys] + [("novid", 902)]
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(300):
        video, stamp = keys[int(rng.integers(len(keys)))]
        x1, y1 = float(rng.choice([0.1, 0.2, 0.3])), float(rng.choice([0.1, 0.2]))
        score = float(rng.choice([0.2, 0.4, 0.6]))
        rows.append((video, int(stamp), x1, y1, x1 + 0.4, y1 + 0.5,
                     int(rng.choice([1, 2, 3, 4, 5, 80])), score))
    pred = tmp_path / "pred.csv"
    _write_rows(pred, rows)
    proto = dataclasses.replace(PROTOCOLS[protocol], cap=3)
    labelmap = read_labelmap(d / "labelmap.pbtxt")
    want = evaluate_frame_map(gt, read_predictions(pred), labelmap,
                              exclusions=read_exclusions(d / "exclusions.csv"), protocol=proto)
    assert want.counts["pred_rows_over_cap"] > 0 and want.counts["pred_rows_other_classes"] > 0
    for chunk_rows in (1, 5, 64, 299, 300, 301):
        got = evaluate_files(d / "gt.csv", pred, d / "labelmap.pbtxt", d / "exclusions.csv",
                             protocol=proto, chunk_rows=chunk_rows)
        _assert_same_result(got, want)


@pytest.mark.parametrize(("line", "bad"), [
    (2, "vidA,0902,0.1,0.1,0.5,0.5,1,inf"),
    (23, "vidA,0902,abc,0.1,0.5,0.5,1,0.5"),
    (25, "vidA,09.5,0.1,0.1,0.5,0.5,1,0.5"),
    (30, "vidA,0902,0.1,0.1,0.5,0.5,1,0.5,7"),
    (30, "vidA,0902,0.1"),
])
def test_bad_row_in_a_later_piece_names_its_line(tmp_path: Path, line: int, bad: str) -> None:
    lines = ["vidA,0902,0.1,0.1,0.5,0.5,1,0.5"] * 30
    lines[line - 1] = bad
    path = tmp_path / "pred.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError) as whole:
        read_predictions(path)
    with pytest.raises(FormatError) as pieces:
        for _ in iter_predictions(path, chunk_rows=4):
            pass
    assert str(pieces.value) == str(whole.value)
    assert f":{line}" in str(whole.value)


def test_empty_prediction_file_in_pieces(tmp_path: Path) -> None:
    d = DATA / "case_b"
    pred = tmp_path / "pred.csv"
    pred.write_text("")
    pieces = list(iter_predictions(pred))
    assert len(pieces) == 1 and len(pieces[0]) == 0
    assert pieces[0].dtypes.to_dict() == read_predictions(pred).dtypes.to_dict()
    got = evaluate_files(d / "gt.csv", pred, d / "labelmap.pbtxt", d / "exclusions.csv")
    _assert_same_result(got, _whole_file(d, "activitynet2019", pred))


def test_pieces_have_the_whole_file_types_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "pred.csv"
    _write_rows(path, [("vidA", 902 + i % 3, 0.1, 0.1, 0.5, 0.5, 1 + i % 4, i / 10)
                       for i in range(10)])
    path.write_text(path.read_text() + "vidB,0903,0.1,0.1,0.5,0.5,2\n")  # 7 columns: 1.0
    whole = read_predictions(path)
    pieces = list(iter_predictions(path, chunk_rows=3))
    assert [len(p) for p in pieces] == [3, 3, 3, 2]
    joined = pd.concat(pieces)
    pd.testing.assert_frame_equal(joined, whole)
    with pytest.raises(ValueError):
        next(iter_predictions(path, chunk_rows=0))

