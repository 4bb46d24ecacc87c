"""Parity with the official ActivityNet AVA evaluator on three reference workloads.

``tests/fixtures/eval/case_{a,b,c}`` hold gt, predictions, label map and exclusions, and the
official code's results (``expected_*.json``, made with activitynet/ActivityNet commit
3fee089 for the 2019 challenge and HEAD for the latest code). Cases b and c carry the edge
cases: duplicates, excluded keyframes, keyframes and videos without gt, unpadded timestamps,
boxes past the border, invalid boxes, gt of classes that are not evaluated. Case d (a gt
file mixing 7- and 8-column rows, IoU ties between two people) is small enough to compute by
hand from the official algorithm: tests/evaluation/test_mixed_gt_columns.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from avadet.cli import main as avadet_main
from avadet.evaluation import evaluate_files, evaluate_frame_map
from avadet.io import read_annotations, read_exclusions, read_labelmap, read_predictions

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
CASES = ["case_a", "case_b", "case_c", "case_d"]
EXPECTED = {"activitynet2019": "expected_activitynet2019.json",
            "activitynet": "expected_activitynet_latest.json"}


def _check(got: dict, expected: dict) -> None:
    assert set(got["per_class"]) == set(expected["per_class"])
    for class_id, want in expected["per_class"].items():
        have = got["per_class"][class_id]
        if want is None:
            assert have is None, class_id
        else:
            assert have is not None and abs(have - want) <= 1e-9, (class_id, have, want)
    assert abs(got["mAP"] - expected["mAP"]) <= 1e-9


def _expected(case: str, protocol: str) -> dict:
    return json.loads((DATA / case / EXPECTED[protocol]).read_text())


@pytest.mark.parametrize("protocol", list(EXPECTED))
@pytest.mark.parametrize("case", CASES)
def test_in_memory_api_reproduces_official(case: str, protocol: str) -> None:
    d = DATA / case
    labelmap = read_labelmap(d / "labelmap.pbtxt")
    result = evaluate_frame_map(
        read_annotations(d / "gt.csv", strict=False),
        read_predictions(d / "pred.csv"),
        labelmap,
        exclusions=read_exclusions(d / "exclusions.csv"),
        protocol=protocol,
    )
    assert result.protocol == protocol
    _check(result.to_json(), _expected(case, protocol))


@pytest.mark.parametrize("protocol", list(EXPECTED))
@pytest.mark.parametrize("case", CASES)
def test_file_api_reproduces_official(case: str, protocol: str) -> None:
    d = DATA / case
    result = evaluate_files(
        d / "gt.csv", d / "pred.csv", d / "labelmap.pbtxt", d / "exclusions.csv", protocol=protocol
    )
    _check(result.to_json(), _expected(case, protocol))
    # The gt counts are those of the official evaluator: rows after the class filter and the
    # exclusions, duplicates included.
    nulls = {int(k) for k, v in _expected(case, protocol)["per_class"].items() if v is None}
    assert {k for k, n in result.num_gt.items() if n == 0} == nulls


@pytest.mark.parametrize("case", CASES)
def test_cli_json_reproduces_official(case: str, tmp_path: Path, capsys) -> None:
    d = DATA / case
    out = tmp_path / "sub" / "result.json"
    code = avadet_main(
        ["eval", str(d / "gt.csv"), str(d / "pred.csv"), "--labelmap", str(d / "labelmap.pbtxt"),
         "--exclusions", str(d / "exclusions.csv"), "--json", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "protocol: activitynet2019" in printed
    got = json.loads(out.read_text())
    _check(got, _expected(case, "activitynet2019"))
    assert got["protocol"] == "activitynet2019"
    # The table names classes with their gt counts; the mAP line matches the JSON.
    assert f"({got['mAP']:.6f})" in printed
    first_class = next(k for k, v in got["per_class"].items() if v is not None)
    assert f"action_{first_class}" in printed


def test_cli_latest_protocol(tmp_path: Path) -> None:
    d = DATA / "case_b"
    out = tmp_path / "r.json"
    assert avadet_main(
        ["eval", str(d / "gt.csv"), str(d / "pred.csv"), "--labelmap", str(d / "labelmap.pbtxt"),
         "--exclusions", str(d / "exclusions.csv"), "--json", str(out), "--protocol",
         "activitynet"]
    ) == 0
    _check(json.loads(out.read_text()), _expected("case_b", "activitynet"))


def test_all80_labelmap_evaluates_more_classes() -> None:
    """With all 80 classes nothing is filtered: the mAP is a different, finite number."""
    d = DATA / "case_b"
    r60 = evaluate_files(d / "gt.csv", d / "pred.csv", d / "labelmap.pbtxt", d / "exclusions.csv")
    r80 = evaluate_files(
        d / "gt.csv", d / "pred.csv", d / "labelmap_all80.pbtxt", d / "exclusions.csv"
    )
    assert len(r80.per_class) == 80 and len(r60.per_class) == 60
    assert r80.counts["pred_rows_other_classes"] == 0
    assert r60.counts["pred_rows_other_classes"] > 0
    assert not math.isnan(r80.map)
    for class_id in r60.per_class:  # shared classes are unaffected except through the cap
        assert r60.num_gt[class_id] == r80.num_gt[class_id]
