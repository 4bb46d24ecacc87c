"""A gt file that mixes 7- and 8-column rows (fixture ``case_d``), against the official rule.

The official reader (ActivityNet ``read_csv``; MMAction2 copies it) does ``score = 1.0; if
len(row) == 8: score = float(row[7])`` for the gt too, then sorts each keyframe's rows by
descending score. So a row without a person id sorts as 1.0: after person 3 and person 2,
before person 0. "The first gt" of an IoU tie is the first in that order.

Each keyframe of case_d has a detection with exactly equal IoU to two people of one class:
the boxes are dyadic, ``det = (0.125, 0, 0.625, 1)`` against ``(0, 0, 0.5, 1)`` and
``(0.25, 0, 0.75, 1)``: intersection 0.375, union 0.625, IoU 0.6 with both, bit for bit.

By hand, official order (activitynet2019, activitynet, mmaction2: same rules here):

- 0902 class 1: A = person 0 (8 columns), B = no 8th column (1.0). Order B, A. det 0.9 ties
  and takes B; det 0.8 sits on B (IoU 1.0 with B, 1/3 with A): B is taken, no fall-back: FP.
- 0905 class 1: E (7 columns), det 0.95 on it: TP. 0906: excluded, its det 0.99 is dropped.
  Class 1: num_gt 3, ranked 0.95 TP, 0.9 TP, 0.8 FP: precision 1, 1, 2/3 at recall 1/3,
  2/3, 2/3; AP = 1/3 + 1/3 = 2/3. (Sorting the 7-column row last, as avadet did, gives A
  to det 0.9 and B to det 0.8: AP 1.0.)
- 0903 class 2: person 3 before the 7-column row (3.0 > 1.0); det 0.7 ties and takes
  person 3, det 0.6 on the 7-column row: TP. 0904 class 2: person 2 before person 0;
  det 0.5 ties and takes person 2, det 0.4 on person 2: FP. Class 2: num_gt 4, ranked
  TP, TP, TP, FP: AP = 3/4.
- 0902 class 3: one gt, det 0.3 on it: AP 1.
- mAP = (2/3 + 3/4 + 1) / 3 = 0.80555...

PySlowFast takes the gt in file order: A at 0902 and person 0 at 0904 come first, every
detection is a TP and the mAP is 1.0.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from fixtures.slow_reference import slow_frame_map

from avadet.evaluation import PROTOCOLS, evaluate_files

CASE = Path(__file__).resolve().parents[1] / "fixtures" / "eval" / "case_d"
HAND = {"1": 2 / 3, "2": 0.75, "3": 1.0}
HAND_MAP = (2 / 3 + 0.75 + 1.0) / 3


def _rows(name: str) -> list[tuple]:
    """The file's rows as the official reader sees them: a 7-column row stays 7 long."""
    out = []
    with open(CASE / name, newline="") as handle:
        for row in csv.reader(handle):
            values = [row[0], int(row[1]), *(float(v) for v in row[2:6]), int(row[6])]
            if len(row) == 8:
                values.append(float(row[7]))
            out.append(tuple(values))
    return out


def test_fixture_is_mixed() -> None:
    lengths = {len(row) for row in _rows("gt.csv")}
    assert lengths == {7, 8}


@pytest.mark.parametrize("protocol", ["activitynet2019", "activitynet", "mmaction2"])
def test_official_order_reads_a_missing_8th_column_as_one(protocol: str) -> None:
    result = evaluate_files(CASE / "gt.csv", CASE / "pred.csv", CASE / "labelmap.pbtxt",
                            CASE / "exclusions.csv", protocol=protocol)
    for class_id, want in HAND.items():
        assert abs(result.per_class[int(class_id)] - want) <= 1e-12, (class_id, result.per_class)
    assert abs(result.map - HAND_MAP) <= 1e-12


def test_pyslowfast_takes_gt_in_file_order() -> None:
    result = evaluate_files(CASE / "gt.csv", CASE / "pred.csv", CASE / "labelmap.pbtxt",
                            CASE / "exclusions.csv", protocol="pyslowfast")
    assert result.per_class == {1: 1.0, 2: 1.0, 3: 1.0}


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_loop_reference_agrees_with_hand_and_vectorised(protocol: str) -> None:
    """The loop transcription of the official code, fed the raw 7/8-column rows."""
    proto = PROTOCOLS[protocol]
    excluded = [(v, int(t)) for v, t in csv.reader(open(CASE / "exclusions.csv"))]
    mean_ap, per_class, _ = slow_frame_map(_rows("gt.csv"), _rows("pred.csv"), [1, 2, 3],
                                           excluded, proto)
    if proto.gt_by_person_id:
        assert {str(k): v for k, v in per_class.items()} == pytest.approx(HAND, abs=1e-12)
        assert mean_ap == pytest.approx(HAND_MAP, abs=1e-12)
    result = evaluate_files(CASE / "gt.csv", CASE / "pred.csv", CASE / "labelmap.pbtxt",
                            CASE / "exclusions.csv", protocol=protocol)
    for class_id, ap in per_class.items():
        assert math.isclose(result.per_class[class_id], ap, abs_tol=1e-12)


def test_expected_files_hold_the_hand_values() -> None:
    for name in ("expected_activitynet2019.json", "expected_activitynet_latest.json"):
        expected = json.loads((CASE / name).read_text())
        assert expected["per_class"] == pytest.approx(HAND, abs=1e-15)
        assert expected["mAP"] == pytest.approx(HAND_MAP, abs=1e-15)
