"""Reading the demo's results: the side-by-side table, class groups and group mean APs."""

from __future__ import annotations

import math

import pytest

from avadet.api.demo_analysis import CLASS_GROUPS, class_groups, group_mean_ap, side_by_side
from avadet.evaluation import EvalResult


def _result(per_class: dict[int, float]) -> EvalResult:
    names = {1: "fast_wave", 3: "slow_wave", 6: "hold_red"}
    aps = [v for v in per_class.values() if not math.isnan(v)]
    return EvalResult(map=sum(aps) / len(aps), per_class=per_class, num_gt={}, num_pred={},
                      protocol="activitynet2019", class_names=names)


def test_side_by_side_lists_classes_groups_and_map():
    groups = {"all": [1, 3, 6], "fast_motion": [1], "slow_motion": [3], "appearance": [6]}
    table = side_by_side(
        {"SlowFast": _result({1: 0.9, 3: 0.5, 6: 0.7}), "Slow-only": _result({1: 0.2, 3: float("nan"), 6: 0.8})},
        groups,
    )
    lines = table.splitlines()
    assert "SlowFast" in lines[0] and "Slow-only" in lines[0]
    fast_row = next(line for line in lines if line.startswith("  1  fast_wave"))
    assert fast_row.split()[-2:] == ["90.00", "20.00"] and "fast_motion" in fast_row
    assert next(line for line in lines if "slow_wave" in line).split()[-1] == "-"
    map_row = next(line for line in lines if line.startswith("frame-mAP"))
    assert map_row.split()[-2:] == ["70.00", "50.00"]
    assert group_mean_ap({1: 0.9, 3: float("nan")}, {"g": [1, 3], "none": [3]}) == {
        "g": 0.9, "none": pytest.approx(float("nan"), nan_ok=True)}


def test_class_groups_keep_only_evaluated_classes():
    # As in the default synthetic label map: hold_green (8) is an appearance class that is
    # not evaluated, so no group may count it.
    meta = {"evaluated_class_ids": [1, 2, 3, 4, 5, 6, 7, 9], "fast_motion_class_ids": [1, 2, 5],
            "slow_motion_class_ids": [3, 4], "appearance_class_ids": [6, 7, 8, 9]}
    groups = class_groups(meta)
    assert tuple(groups) == CLASS_GROUPS
    assert groups == {"all": [1, 2, 3, 4, 5, 6, 7, 9], "fast_motion": [1, 2, 5],
                      "slow_motion": [3, 4], "appearance": [6, 7, 9]}
