"""``avadet download-annotations OUT``: the AVA annotations (resumable, verified, unpacked)
and, optionally, PySlowFast's person boxes, frame lists and video file lists."""

from __future__ import annotations

import argparse

from avadet.commands._common import setup_console_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", help="annotations folder, e.g. data/ava/annotations")
    parser.add_argument("--version", default="2.2", choices=["2.1", "2.2"])
    parser.add_argument("--no-boxes", action="store_true",
                        help="skip the LFB person boxes ava_{train,val,test}_predicted_boxes.csv")
    parser.add_argument("--frame-lists", action="store_true",
                        help="also fetch PySlowFast frame lists into OUT_DIR/frame_lists/")
    parser.add_argument("--file-lists", action="store_true",
                        help="also fetch the video file lists ava_file_names_*_v2.1.txt")
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--log-file", help="also log to this file")


def run(args: argparse.Namespace) -> int:
    from avadet.prep.download import ava_artifacts, download_annotations

    setup_console_logging(args.log_file)
    artifacts = ava_artifacts(args.version, boxes=not args.no_boxes,
                              frame_lists=args.frame_lists, file_lists=args.file_lists)
    manifest = download_annotations(args.out_dir, artifacts, retries=args.retries,
                                    timeout=args.timeout)
    for name in (a.name for a in artifacts):
        print(f"{name}: {manifest[name]['size']} bytes sha256 {manifest[name]['sha256']}")
    return 0
