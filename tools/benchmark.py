#!/usr/bin/env python
"""Benchmarks behind every performance claim in docs/benchmarks.md.

Usage: ``python tools/benchmark.py AREA [options]`` with AREA one of the modules in
``tools/benchmarks/`` (``data``, ``models``, ``eval``, ``train``, ``detect``, ``persons``, ``doctor``,
``synthetic``, ``jpeg``). Each reports its result as a ratio against a reference measured in the same
run, and prints a Markdown table ready for docs/benchmarks.md.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

AREAS = {
    "data": "training loader: JPEG folders vs video files, num_workers 0 and 2",
    "models": "CPU inference: avadet vs pytorchvideo on the identical architecture",
    "eval": "frame-mAP at AVA-val scale: avadet vs the official ActivityNet code",
    "train": "training throughput (samples/s) of a small config on the CPU",
    "detect": "avadet detect on a clip: decoding, person detection, action model",
    "persons": "person detectors: speed vs the R50-FPN default, recall where weights exist",
    "synthetic": "SlowFast vs Slow-only on the synthetic benchmark (the paper's claim), 3 seeds",
    "doctor": "avadet check-data per video: default (sampled) check vs a full decode",
    "jpeg": "frame reading: the checked JPEG reader vs a plain cv2.imread",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in AREAS:
        print(__doc__)
        for name, text in AREAS.items():
            print(f"  {name:8s} {text}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    module = importlib.import_module(f"benchmarks.{argv[0]}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
