"""``avadet extract-frames VIDEOS FRAMES``: JPEG frames (``<vid>/<vid>_%06d.jpg``, 1-based) at
a fixed rate from cut AVA videos; resumable, parallel over videos. Exit status 1 when a video
gives an unexpected frame count."""

from __future__ import annotations

import argparse
import os

from avadet.commands._common import setup_console_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from avadet.prep.extract import AVA_FRAMES

    parser.add_argument("videos_dir", help="folder of cut videos")
    parser.add_argument("frames_dir", help="output frames folder")
    parser.add_argument("--fps", type=float, default=30.0, help="output frame rate (30)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality 0-100 (95)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help="parallel processes")
    parser.add_argument("--expected-frames", type=int, default=AVA_FRAMES,
                        help="warn when a video has another count (27030 = 901 s x 30 fps; "
                             "0 to disable)")
    parser.add_argument("--log-file", help="also log to this file")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from avadet.prep.extract import extract_frames

    setup_console_logging(args.log_file)
    counts = extract_frames(args.videos_dir, args.frames_dir, fps=args.fps,
                            quality=args.quality, workers=args.workers,
                            expected_frames=args.expected_frames or None,
                            progress=not args.no_progress)
    off = {v: n for v, n in counts.items() if args.expected_frames and n != args.expected_frames}
    print(f"{len(counts)} videos extracted; {len(off)} with an unexpected frame count")
    return 1 if off else 0
