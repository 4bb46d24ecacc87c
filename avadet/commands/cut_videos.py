"""``avadet cut-videos SRC DST``: cut the annotated segment out of AVA movies
(``ffmpeg -ss 900 -t 901`` equivalent, PyAV re-encode to H.264 MP4 at the source frame rate)."""

from __future__ import annotations

import argparse

from avadet.commands._common import setup_console_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from avadet.prep.cut import AVA_DURATION, AVA_START, CLIP_LEAD_FRAMES

    parser.add_argument("src_dir", help="folder of downloaded movies")
    parser.add_argument("dst_dir", help="output folder (<stem>.mp4 per movie)")
    parser.add_argument("--start", type=float, default=AVA_START, help="seconds (default 900)")
    parser.add_argument("--duration", type=float, default=AVA_DURATION,
                        help="seconds (default 901: keyframes 902..1798 need 1 s of context)")
    parser.add_argument("--crf", type=int, default=18, help="x264 constant rate factor (18)")
    parser.add_argument("--preset", default="veryfast", help="x264 speed preset (veryfast)")
    parser.add_argument("--gop-seconds", type=float, default=1.0,
                        help="a key frame at least every this many seconds (default 1: cheap "
                             "random clip reads for training from video; 0: encoder default)")
    parser.add_argument("--clip-lead-frames", type=int, default=CLIP_LEAD_FRAMES,
                        help="put those key frames where training clips start, this many "
                             f"frames before each keyframe (default {CLIP_LEAD_FRAMES}: the "
                             "published models' 64-frame clips; -1: where the encoder puts "
                             "them)")
    parser.add_argument("--cabac", action="store_true",
                        help="x264's CABAC entropy coding (~10%% smaller files); by default "
                             "CAVLC, which training reads decode 1.47x faster")
    parser.add_argument("--log-file", help="also log to this file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from avadet.prep.cut import cut_videos

    setup_console_logging(args.log_file)
    results = cut_videos(args.src_dir, args.dst_dir, start=args.start, duration=args.duration,
                         crf=args.crf, preset=args.preset, gop_seconds=args.gop_seconds or None,
                         clip_lead_frames=(args.clip_lead_frames
                                           if args.clip_lead_frames >= 0 else None),
                         fast_decode=not args.cabac,
                         progress=not args.no_progress)
    done = sum(v >= 0 for v in results.values())
    print(f"cut {done} videos, skipped {len(results) - done} already done")
    return 0
