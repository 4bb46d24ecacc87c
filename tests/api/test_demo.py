"""``avadet demo`` end to end on the tiny preset (a few iterations), so the README's main
job keeps working."""

from __future__ import annotations

import json

import av

from avadet.api.demo_analysis import class_groups
from avadet.cli import main as cli_main
from avadet.synthetic import load_meta


def test_demo_runs_every_stage_and_names_its_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    code = cli_main(["demo", "--out", str(out), "--preset", "tiny", "--epochs", "1",
                     "solver.max_iters=2", "solver.precise_bn_batches=1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "SlowFast" in printed and "Slow-only" in printed and str(out.resolve()) in printed
    assert "min CPU" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["map"]) == {"SlowFast", "Slow-only"}
    assert summary["cpu_seconds"] > 0 and summary["seconds"] > 0
    # The per-group comparison and a verdict computed from it, also kept in summary.json.
    assert "fast motion (frozen to a Slow pathway)" in printed
    assert summary["verdict"].startswith("Verdict: ") and summary["verdict"] in printed
    costs = summary["costs"]
    assert costs["SlowFast"]["gflops"] > costs["Slow-only"]["gflops"] > 0
    assert 0 < costs["SlowFast"]["fast_share"] < 0.5
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
