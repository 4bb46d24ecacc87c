"""``avadet demo [--out DIR] [--epochs N] [key=value ...]``: the whole system on a synthetic
AVA-format dataset, on the CPU (no download, no GPU)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from avadet.commands._common import add_threads_argument, set_threads

DEFAULT_OUT = "avadet_output/demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--preset", default="cpu",
                        help="synthetic preset (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    parser.add_argument("--epochs", type=float, default=None,
                        help="training epochs per model (default: the preset's, 24 for cpu)")
    add_threads_argument(parser)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides applied to both models, e.g. solver.base_lr=0.1")


def run(args: argparse.Namespace) -> int:
    from avadet import api

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    set_threads(args.threads)
    print("avadet demo: SlowFast vs Slow-only on a synthetic AVA-format dataset, on the CPU.\n"
          "Models are narrow (width 8 instead of 64) and low-resolution (96 px) versions of the "
          "R50 architecture: a full-width R50 SlowFast takes seconds per clip on a CPU.")
    report = api.run_demo(Path(args.out), preset=args.preset, seed=args.seed,
                          epochs=args.epochs, overrides=args.overrides, say=print)
    print()
    print("Validation frame-AP (%) with detected (noisy) person boxes, official protocol:")
    print(report["table"])
    print()
    print(report["comparison"])
    print(report["verdict"])
    print()
    print(f"Everything is in {Path(args.out).resolve()}:")
    for what, path in report["files"].items():
        print(f"  {what}: {path}")
    load = report["load_average_before"]
    print(f"(demo finished in {report['seconds'] / 60:.1f} min wall, "
          f"{report['cpu_seconds'] / 60:.1f} min CPU"
          + (f"; load average before it {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}" if load else "")
          + ")")
    return 0
