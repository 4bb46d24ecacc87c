"""``avadet make-synthetic OUT [--preset tiny|cpu|gpu] [--seed N] [--set key=value ...]``:
a synthetic AVA-format dataset (docs/synthetic_dataset.md)."""

from __future__ import annotations

import argparse
import logging
import time

import yaml

from avadet.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from avadet.synthetic import PRESETS

    parser.add_argument("out", help="dataset folder to create (absent or empty)")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                        help="size: tiny (tests), cpu (trains in minutes on 2 cores), gpu")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes drawing videos in parallel (same output)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a different dataset already in OUT")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a generator setting, e.g. --set num_train_videos=4 "
                             "--set width=96 (repeatable)")


def _parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw)
        out[key.strip()] = tuple(value) if isinstance(value, list) else value
    return out


def run(args: argparse.Namespace) -> int:
    from avadet.api import make_synthetic
    from avadet.synthetic import load_meta

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    root = make_synthetic(args.out, preset=args.preset, seed=args.seed,
                          overwrite=args.overwrite, workers=args.workers, **_parse_overrides(args.overrides))
    meta = load_meta(root)
    videos = meta["videos"]
    n_train = sum(v["split"] == "train" for v in videos)
    print(f"wrote {root} ({args.preset}, seed {args.seed}): {n_train} train and "
          f"{len(videos) - n_train} val videos in {time.perf_counter() - started:.1f} s")
    print(f"config: {root / 'config.yaml'} (Slow-only baseline: {root / 'config_slow.yaml'})")
    print(f"motion-defined classes: {meta['motion_class_ids']} "
          f"(fast, frozen for the Slow pathway: {meta['fast_motion_class_ids']})")
    return 0
