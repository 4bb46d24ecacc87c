"""``avadet make-frame-lists FRAMES OUT --annotations-dir ANN``: PySlowFast frame lists
(train.csv, val.csv) from a frames folder; the videos of each split come from the AVA
annotation CSVs."""

from __future__ import annotations

import argparse
from pathlib import Path

from avadet.commands._common import setup_console_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("frames_dir", help="frames folder (<vid>/<vid>_%%06d.jpg)")
    parser.add_argument("out_dir", help="output folder, e.g. data/ava/frame_lists")
    parser.add_argument("--annotations-dir", required=True,
                        help="folder with ava_train_v<version>.csv and ava_val_v<version>.csv")
    parser.add_argument("--version", default="2.2", help="annotation version in the file names")
    parser.add_argument("--expected-frames", type=int, default=27030,
                        help="warn for videos with another frame count (0 to disable)")


def run(args: argparse.Namespace) -> int:
    from avadet.prep.frame_lists import make_frame_lists, split_video_ids

    setup_console_logging(timestamps=False)
    ann = Path(args.annotations_dir)
    splits = {s: split_video_ids(ann / f"ava_{s}_v{args.version}.csv") for s in ("train", "val")}
    written = make_frame_lists(args.frames_dir, args.out_dir, splits,
                               expected_frames=args.expected_frames or None)
    for split, path in written.items():
        print(f"{split}: {path}")
    return 0
