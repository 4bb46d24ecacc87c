"""The data doctor's cost per video: the default check (listing, headers, a few decoded frames)
against a full scan (every frame decoded) of the same media, in the same run.

Two workloads:

1. the synthetic ``cpu`` preset (18 videos of 24 s at 128x96, 30 fps: 720 frames each), JPEG
   folders and the H.264 videos;
2. one AVA-length cut: a 901 s, 30 fps video (27,030 frames, ``--long-size``, H.264 CRF 23,
   a key frame every 250 frames like ffmpeg's default re-encode) and its 27,030 JPEGs
   (quality 95) extracted from it, with gt on every keyframe 902..1799.

"s/video" is the whole ``run_checks`` time (annotations, label map, boxes included) divided by
the number of videos; "media stage" is the part spent on the media alone (the last run's).
Each check runs ``--repeat`` times (median reported) through :func:`avadet.doctor.run_checks`
with ``--workers`` threads; the page cache is warm (the media were just written or read), so
cold-disk listing and reading are not measured.

Usage: ``python tools/benchmark.py doctor [--keep DIR] [--long-size 320x240] [--repeat 3]
[--no-long]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _time(cfg, *, full_scan: bool, repeat: int, workers: int) -> tuple[float, dict]:
    from avadet.doctor import run_checks
    from avadet.engine import dataset_files

    times, report = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        report = run_checks(cfg, dataset_files(cfg.data), full_scan=full_scan,
                            workers=workers, progress=False)
        times.append(time.perf_counter() - started)
    assert report is not None
    if not report.ok:
        errors = [(f.check, f.message) for f in report.findings if f.severity == "error"]
        raise SystemExit(f"the benchmark data should be clean, the doctor found {errors}")
    return statistics.median(times), report.stats


def _long_media(root: Path, width: int, height: int) -> None:
    from benchmarks.data import make_media

    if (root / "frames" / "bench00").is_dir() and len(list((root / "frames" / "bench00").iterdir())) == 27030:
        return
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    make_media(root, videos=1, seconds=901, width=width, height=height, gop=250,
               preset="veryfast")
    print(f"wrote the 901 s video and its frames in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py doctor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", help="folder for the generated data (reused); default: temporary")
    parser.add_argument("--long-size", default="320x240", help="WxH of the 901 s video")
    parser.add_argument("--no-long", action="store_true", help="skip the 901 s workload")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    from avadet.config import load_config
    from avadet.synthetic import make_synthetic

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="avadet_doctor_bench_"))
    base.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        cpu = make_synthetic(base / "cpu", preset="cpu", workers=args.workers)
        workloads = [("synthetic cpu preset (128x96, 720 frames)", cpu / "config.yaml", [], 18)]
        if not args.no_long:
            width, height = (int(v) for v in args.long_size.lower().split("x"))
            long_root = base / f"long_{width}x{height}"
            _long_media(long_root, width, height)
            workloads.append((
                f"901 s cut ({width}x{height}, 27,030 frames)", None,
                [f"data.root={long_root}", "data.labelmap=annotations/labelmap.pbtxt",
                 "data.train_annotations=annotations/train.csv", "data.train_exclusions=",
                 "data.val_annotations=", "data.val_exclusions=", "data.val_boxes=",
                 "model.num_classes=5"], 1))
        for name, config, overrides, videos in workloads:
            for source in ("frames", "video"):
                cfg = load_config(config, [*overrides, f"data.source={source}"])
                quick, stats = _time(cfg, full_scan=False, repeat=args.repeat, workers=args.workers)
                full, full_stats = _time(cfg, full_scan=True, repeat=max(1, args.repeat // 2),
                                         workers=args.workers)
                rows.append((name, source, videos, stats["media_frames"], stats["media_decoded"],
                             quick / videos, stats["media_seconds_per_video"],
                             full_stats["media_decoded"], full / videos, full / quick))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("| workload | source | videos | frames | default: decoded | default: s/video "
          "| default, media stage: s/video | full scan: decoded | full scan: s/video "
          "| full / default |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, source, videos, frames, dec, quick, media, fdec, full, ratio in rows:
        print(f"| {name} | {source} | {videos} | {frames:,} | {dec:,} | {quick:.4f} | "
              f"{media:.4f} | {fdec:,} | {full:.3f} | {ratio:.0f}x |")
    return 0
