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


def _groups(fast, look, slow=0.5):
    return {"fast_motion": fast, "slow_motion": slow, "appearance": look, "all": (fast + look + slow) / 3}


def test_group_comparison_lists_each_group_and_the_difference():
    from avadet.api.demo_analysis import group_comparison

    table = group_comparison({"SlowFast": _groups(0.8, 0.9), "Slow-only": _groups(0.45, 0.92)},
                             "SlowFast", "Slow-only")
    fast = next(line for line in table.splitlines() if line.startswith("fast motion"))
    assert fast.split()[-3:] == ["80.00", "45.00", "+35.00"]
    look = next(line for line in table.splitlines() if line.startswith("appearance"))
    assert look.split()[-1] == "-2.00"


@pytest.mark.parametrize("fast_a,look_a,expect", [
    (0.80, 0.88, ["sees the fast motions that Slow-only cannot: +35.0 AP", "not worse on appearance (-2.0 AP)"]),
    (0.50, 0.90, ["no clear difference on the fast-motion classes in this run (+5.0 AP"]),
    (0.30, 0.90, ["Slow-only is ahead on the fast-motion classes (-15.0 AP"]),
    (0.80, 0.70, ["worse on appearance (-20.0 AP)"]),
])
def test_verdict_follows_the_numbers(fast_a, look_a, expect):
    from avadet.api.demo_analysis import verdict

    said = verdict({"SlowFast": _groups(fast_a, look_a), "Slow-only": _groups(0.45, 0.90)},
                   cost_ratio=1.385, fast_share=0.238, spread=0.05)
    assert said.startswith("Verdict: ") and "1.39x Slow-only's multiply-adds (its Fast pathway 24%" in said
    for part in expect:
        assert part in said
    if look_a < 0.8:
        assert "not worse" not in said
