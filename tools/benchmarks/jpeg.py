"""Frame reading: the checked reader of JPEG folders (``read_bytes``, end-of-image marker,
``cv2.imdecode``) against a plain ``cv2.imread`` (the reader before truncated JPEGs were
refused), on the same files, interleaved round by round.

Usage: ``python tools/benchmark.py jpeg [--frames 300] [--sizes 455x256 1280x720] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _write_frames(folder: Path, count: int, width: int, height: int) -> list[Path]:
    import cv2

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 3)
    paths = []
    for i in range(count):
        path = folder / f"v_{i + 1:06d}.jpg"
        cv2.imwrite(str(path), np.roll(base, i, axis=1), [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return paths


def _time(read, paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        read(path)
    return (time.perf_counter() - started) / len(paths)


def main(argv: list[str]) -> int:
    import cv2

    from avadet.data.sources import _decode_image

    parser = argparse.ArgumentParser(prog="benchmark.py jpeg")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--sizes", nargs="+", default=["455x256", "1280x720"])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; best kept")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| frame size | cv2.imread (ms) | avadet checked reader (ms) | ratio (checked / imread) |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            folder = Path(tmp) / size
            folder.mkdir()
            paths = _write_frames(folder, args.frames, width, height)
            plain, checked = [], []
            for _ in range(args.rounds):  # interleaved: both see the same cache and load
                plain.append(_time(lambda p: cv2.imread(str(p), cv2.IMREAD_COLOR), paths))
                checked.append(_time(_decode_image, paths))
            a, b = min(plain), min(checked)
            print(f"| {size} | {a * 1e3:.3f} | {b * 1e3:.3f} | {b / a:.3f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0
