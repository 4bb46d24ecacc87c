"""The demo: the whole system on the embedded default, no download, no GPU.

1. builds a synthetic AVA-format dataset (``docs/synthetic_dataset.md``) in which some
   actions exist only as fast motion;
2. trains a SlowFast model and its Slow-only baseline (same Slow pathway, same budget) on the
   CPU: a narrow (width 8), low-resolution (96 px) configuration of the R50 architecture,
   because a full-width R50 SlowFast takes seconds per clip on a CPU;
3. tests both on the validation videos with the detector-noise person boxes and returns their
   frame-mAP tables side by side, with the mean AP per class group;
4. writes the evaluator's plots and an annotated clip (:func:`~avadet.api.detect_video` with
   the SlowFast model) into the output folder.

Every step reuses finished work when run again on the same folder (the dataset, finished
trainings; an interrupted training resumes from its last checkpoint).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from avadet.api.demo_analysis import (
    class_groups,
    group_comparison,
    group_mean_ap,
    side_by_side,
    verdict,
)

DEFAULT_OUT = "avadet_output/demo"
# The cpu preset with its own schedule (24 epochs): 8.4 minutes in all on 2 idle cores
# (README), the same training as the synthetic benchmark (docs/synthetic_benchmark.md).
DEMO_PRESET = "cpu"
MODELS = (("slowfast", "config.yaml", "SlowFast"), ("slow", "config_slow.yaml", "Slow-only"))


def run_demo(
    out: Path,
    *,
    preset: str = DEMO_PRESET,
    seed: int = 0,
    epochs: Optional[float] = None,
    overrides: Sequence[str] = (),
    annotate: bool = True,
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns ``{"results": {title: EvalResult}, "table": str,
    "comparison": str, "verdict": str, "files": {what: Path}, "seconds": float,
    "cpu_seconds": float, "load_average_before": (1, 5, 15 min) or None}``: the per-class
    table, the per-group table and a one-line verdict computed from them. ``say`` hears one
    line per step."""
    # Imported here, not at the top: `avadet demo --help` should not load the generator.
    from avadet.io import atomic_write
    from avadet.synthetic import load_meta, make_synthetic

    out = Path(out)
    started, cpu_started = time.perf_counter(), time.process_time()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    say(f"[1/4] synthetic AVA-format dataset ({preset} preset, seed {seed}) in {out / 'data'}")
    root = make_synthetic(out / "data", preset=preset, seed=seed)
    meta = load_meta(root)
    groups = class_groups(meta)

    results: dict[str, Any] = {}
    checkpoints: dict[str, Path] = {}
    costs: dict[str, dict[str, float]] = {}
    files: dict[str, Path] = {}
    for step, (arch, config_name, title) in enumerate(MODELS, start=2):
        results[title], checkpoints[arch], costs[title] = _train_and_test(
            out, root / config_name, arch, title, step, seed=seed, epochs=epochs,
            overrides=overrides, files=files, say=say)

    if annotate:
        files.update(_annotate(out, root, checkpoints["slowfast"], say))

    table = side_by_side(results, groups)
    groups_ap = {t: group_mean_ap(r.per_class, groups) for t, r in results.items()}
    first, second = costs  # SlowFast, Slow-only: the order of MODELS
    said = verdict(groups_ap, first, second,
                   cost_ratio=costs[first]["gflops"] / costs[second]["gflops"],
                   fast_share=costs[first].get("fast_share"))
    summary = {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "load_average_before": load_before,
        "map": {t: (None if math.isnan(r.map) else r.map) for t, r in results.items()},
        "groups": groups_ap,
        "costs": costs,
        "verdict": said,
        "files": {k: str(v) for k, v in files.items()},
    }
    with atomic_write(out / "summary.json") as f:
        json.dump(summary, f, indent=1, allow_nan=True)
    return {"results": results, "table": table, "comparison": group_comparison(groups_ap, first, second),
            "verdict": said, "files": files, "seconds": summary["seconds"],
            "cpu_seconds": summary["cpu_seconds"], "load_average_before": load_before}


def _train_and_test(out: Path, config_path: Path, arch: str, title: str, step: int, *,
                    seed: int, epochs: Optional[float], overrides: Sequence[str],
                    files: dict[str, Path],
                    say: Callable[[str], None]) -> tuple[Any, Path, dict[str, float]]:
    """Train the model of ``config_path`` into ``out/arch``, test it on the val keyframes and
    evaluate its predictions. Adds its plots and predictions to ``files``; returns the
    EvalResult (with curves), the final checkpoint and the model's cost per test clip."""
    from avadet.config import load_config
    from avadet.engine import clip_cost_of, test, train
    from avadet.evaluation import evaluate_files
    from avadet.evaluation.plots import save_plots
    from avadet.evaluation.report import write_json

    cfg = load_config(
        config_path,
        [
            f"train.output_dir={out / arch}",
            f"train.seed={seed}",
            *([f"solver.max_epoch={epochs}"] if epochs else []),
            "train.eval_every_epochs=0",
            *overrides,
        ],
    )
    say(f"[{step}/4] training {title} ({cfg.model.arch}, width {cfg.model.width_per_group}, "
          f"{cfg.data.num_frames} frames at {cfg.data.train_crop_size} px, "
          f"{cfg.solver.max_epoch:g} epochs)")
    trained = train(cfg)
    tested = test(cfg, trained.final_checkpoint, output_csv=out / arch / "predictions.csv")
    data = cfg.data
    # Re-evaluate the written predictions with curves kept for the plots (the same files
    # `avadet eval` would read, so the table below is reproducible from them).
    result = evaluate_files(
        Path(data.root) / data.val_annotations,
        tested.predictions_csv,
        Path(data.root) / data.labelmap,
        Path(data.root) / data.val_exclusions,
        keep_curves=True,
    )
    write_json(out / arch / "eval.json", result)
    for path in save_plots(result, out / "plots" / arch, model=title):
        files[f"plot {arch} {path.stem}"] = path
    files[f"predictions {arch}"] = Path(tested.predictions_csv)
    cost = clip_cost_of(cfg)
    return result, Path(trained.final_checkpoint), cost


def _annotate(out: Path, root: Path, checkpoint: Path,
              say: Callable[[str], None]) -> dict[str, Path]:
    """Annotated clip of the first validation video with the SlowFast model, with the
    dataset's detector boxes (the segment starts at 900 s, as AVA's cuts)."""
    from avadet.api.detection import detect_video
    from avadet.persons import PersonDetectorChoice
    from avadet.synthetic import load_meta

    meta = load_meta(root)
    video_id = next(v["video_id"] for v in meta["videos"] if v["split"] == "val")
    video = root / "videos" / f"{video_id}.mp4"
    say(f"[4/4] annotated clip of {video.name} with the SlowFast model (avadet detect)")
    found = detect_video(
        video, checkpoint, out / "annotated", config=root / "config.yaml",
        persons=PersonDetectorChoice(
            "csv", boxes_csv=root / "annotations" / "ava_val_predicted_boxes.csv"),
        timestamp_offset=meta["spec"]["segment_start"], start=2, progress=False,
    )
    return {"annotated video": found.annotated, "detections csv": found.csv,
            "detections json": found.json}
