"""``avadet demo``: the whole system on the embedded default, no download, no GPU.

1. builds a synthetic AVA-format dataset (``docs/synthetic_dataset.md``) in which some
   actions exist only as fast motion;
2. trains a SlowFast model and its Slow-only baseline (same Slow pathway, same budget) on the
   CPU: a narrow (width 8), low-resolution (96 px) configuration of the R50 architecture,
   because a full-width R50 SlowFast takes seconds per clip on a CPU;
3. tests both on the validation videos with the detector-noise person boxes and prints their
   frame-mAP tables side by side, with the mean AP per class group;
4. writes the evaluator's plots and an annotated clip (``avadet detect`` with the SlowFast
   model) into the output folder, which it names at the end.

Every step reuses finished work when run again on the same folder (the dataset, finished
trainings; an interrupted training resumes from its last checkpoint).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from avadet.demo.analysis import class_groups, group_mean_ap, side_by_side
from avadet.errors import AvadetError

DEFAULT_OUT = "avadet_output/demo"
# The cpu preset with its own schedule (24 epochs): about 6 minutes in all on 2 cores, the
# same training as the synthetic benchmark (docs/synthetic_benchmark.md).
DEMO_PRESET = "cpu"
MODELS = (("slowfast", "config.yaml", "SlowFast"), ("slow", "config_slow.yaml", "Slow-only"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--preset", default=DEMO_PRESET, help="synthetic preset (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    parser.add_argument("--epochs", type=float, default=None,
                        help="training epochs per model (default: the preset's, 24 for cpu)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides applied to both models, e.g. solver.base_lr=0.1")


def run_demo(
    out: Path,
    *,
    preset: str = DEMO_PRESET,
    seed: int = 0,
    epochs: Optional[float] = None,
    overrides: Sequence[str] = (),
    annotate: bool = True,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns ``{"results": {title: EvalResult}, "table": str,
    "files": {what: Path}, "seconds": float}``."""
    # Imported here, not at the top: `avadet demo --help` should not load the generator.
    from avadet.io import atomic_write
    from avadet.synthetic import load_meta, make_synthetic

    out = Path(out)
    started = time.perf_counter()
    print(f"[1/4] synthetic AVA-format dataset ({preset} preset, seed {seed}) in {out / 'data'}")
    root = make_synthetic(out / "data", preset=preset, seed=seed)
    meta = load_meta(root)
    groups = class_groups(meta)

    results: dict[str, Any] = {}
    checkpoints: dict[str, Path] = {}
    files: dict[str, Path] = {}
    for step, (arch, config_name, title) in enumerate(MODELS, start=2):
        results[title], checkpoints[arch] = _train_and_test(
            out, root / config_name, arch, title, step, seed=seed, epochs=epochs,
            overrides=overrides, files=files)

    if annotate:
        files.update(_annotate(out, root, checkpoints["slowfast"]))

    table = side_by_side(results, groups)
    summary = {
        "seconds": time.perf_counter() - started,
        "map": {t: (None if math.isnan(r.map) else r.map) for t, r in results.items()},
        "groups": {t: group_mean_ap(r.per_class, groups) for t, r in results.items()},
        "files": {k: str(v) for k, v in files.items()},
    }
    with atomic_write(out / "summary.json") as f:
        json.dump(summary, f, indent=1, allow_nan=True)
    return {"results": results, "table": table, "files": files, "seconds": summary["seconds"]}


def _train_and_test(out: Path, config_path: Path, arch: str, title: str, step: int, *,
                    seed: int, epochs: Optional[float], overrides: Sequence[str],
                    files: dict[str, Path]) -> tuple[Any, Path]:
    """Train the model of ``config_path`` into ``out/arch``, test it on the val keyframes and
    evaluate its predictions. Adds its plots and predictions to ``files``; returns the
    EvalResult (with curves) and the final checkpoint."""
    from avadet.config import load_config
    from avadet.engine import test, train
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
    print(f"[{step}/4] training {title} ({cfg.model.arch}, width {cfg.model.width_per_group}, "
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
    for path in save_plots(result, out / "plots" / arch):
        files[f"plot {arch} {path.stem}"] = path
    files[f"predictions {arch}"] = Path(tested.predictions_csv)
    return result, Path(trained.final_checkpoint)


def _annotate(out: Path, root: Path, checkpoint: Path) -> dict[str, Path]:
    """Annotated clip of the first validation video with the SlowFast model: ``avadet
    detect`` with the dataset's detector boxes (the segment starts at 900 s, as AVA's cuts)."""
    from avadet.cli import main as cli_main
    from avadet.synthetic import load_meta

    meta = load_meta(root)
    video_id = next(v["video_id"] for v in meta["videos"] if v["split"] == "val")
    video = root / "videos" / f"{video_id}.mp4"
    target = out / "annotated"
    print(f"[4/4] annotated clip of {video.name} with the SlowFast model (avadet detect)")
    code = cli_main([
        "detect", str(video), "--checkpoint", str(checkpoint), "--out", str(target),
        "--persons", "csv", "--boxes", str(root / "annotations" / "ava_val_predicted_boxes.csv"),
        "--timestamp-offset", str(meta["spec"]["segment_start"]), "--start", "2",
        "--config", str(root / "config.yaml"), "--no-progress",
    ])
    if code != 0:
        raise AvadetError(f"avadet detect failed on {video} (exit {code})")
    return {
        "annotated video": target / f"{video_id}_annotated.mp4",
        "detections csv": target / f"{video_id}.csv",
        "detections json": target / f"{video_id}.json",
    }


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    print("avadet demo: SlowFast vs Slow-only on a synthetic AVA-format dataset, on the CPU.\n"
          "Models are narrow (width 8 instead of 64) and low-resolution (96 px) versions of the "
          "R50 architecture: a full-width R50 SlowFast takes seconds per clip on a CPU.")
    report = run_demo(Path(args.out), preset=args.preset, seed=args.seed, epochs=args.epochs,
                      overrides=args.overrides)
    print()
    print("Validation frame-AP (%) with detected (noisy) person boxes, official protocol:")
    print(report["table"])
    print()
    out = Path(args.out).resolve()
    print(f"Everything is in {out}:")
    for what, path in report["files"].items():
        print(f"  {what}: {path}")
    print(f"(demo finished in {report['seconds'] / 60:.1f} min)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:  # pragma: no cover - convenience
    parser = argparse.ArgumentParser(prog="avadet demo")
    add_arguments(parser)
    return run(parser.parse_args(argv))
