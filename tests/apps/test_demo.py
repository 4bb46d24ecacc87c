"""``avadet demo`` end to end on the tiny preset (a few iterations), and its side-by-side
table, so the README's main job keeps working."""

from __future__ import annotations

import json
import math

import av
import pytest

from avadet.cli import main as cli_main
from avadet.demo.analysis import class_groups, group_mean_ap, side_by_side
from avadet.evaluation import EvalResult
from avadet.synthetic import load_meta


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


def test_demo_runs_every_stage_and_names_its_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    code = cli_main(["demo", "--out", str(out), "--preset", "tiny", "--epochs", "1",
                     "solver.max_iters=2", "solver.precise_bn_batches=1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "SlowFast" in printed and "Slow-only" in printed and str(out.resolve()) in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["map"]) == {"SlowFast", "Slow-only"}
    groups = class_groups(load_meta(out / "data"))
    assert set(summary["groups"]["SlowFast"]) == set(groups)
    for arch in ("slowfast", "slow"):
        assert (out / arch / "checkpoints" / "model_final.pt").is_file()
        assert (out / arch / "predictions.csv").stat().st_size > 0
        assert (out / "plots" / arch / "ap_per_class.png").is_file()
    video = next(p for p in summary["files"].values() if p.endswith("_annotated.mp4"))
    with av.open(video) as annotated, av.open(str(out / "data" / "videos" / (
            video.split("/")[-1].replace("_annotated.mp4", ".mp4")))) as source:
        assert annotated.streams.video[0].average_rate == source.streams.video[0].average_rate
        assert sum(1 for _ in annotated.decode(video=0)) == sum(1 for _ in source.decode(video=0))
