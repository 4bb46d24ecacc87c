"""``avadet convert-annotations INPUT --out AVA.csv --labelmap MAP.pbtxt``: a per-frame
box/label CSV or a CVAT for video 1.1 XML export -> AVA annotation CSV(s) and a label map
(see docs/custom_dataset.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="per-frame CSV (with a header) or a CVAT for video 1.1 XML")
    parser.add_argument("--out", required=True,
                        help="AVA CSV to write; with a split column use e.g. annotations/{split}.csv")
    parser.add_argument("--labelmap", required=True,
                        help="label map .pbtxt: read if it exists, else written from the labels")
    parser.add_argument("--videos", help="folder of the videos (<video_id>.mp4 ...): frame rate "
                                         "and size for frame numbers and pixel boxes")
    parser.add_argument("--normalized", action="store_true", help="boxes are already in [0, 1]")
    parser.add_argument("--segment-start", type=float, default=0.0,
                        help="seconds added to the keyframe times (data.segment_start; 0)")
    parser.add_argument("--first-id", type=int, default=1,
                        help="id of the first class when the label map is written (1)")
    parser.add_argument("--fps", type=float,
                        help="frame rate of every video, instead of reading it from --videos")
    parser.add_argument("--video-id", help="CVAT: the video id (default: the task's source name)")
    parser.add_argument("--person-label", default="person",
                        help="CVAT: tracks with this label take their actions from attributes")


def run(args: argparse.Namespace) -> int:
    from avadet.prep.convert import (
        VideosNeeded,
        convert_annotations,
        read_box_csv,
        read_cvat_video_xml,
    )

    source = Path(args.input)
    frame_size = None
    if source.suffix.lower() == ".xml":
        rows, frame_size = read_cvat_video_xml(source, video_id=args.video_id,
                                               person_label=args.person_label)
    else:
        rows = read_box_csv(source)
    if args.fps and "frame" in rows.columns and "time" not in rows.columns:
        rows = rows.assign(time=rows["frame"] / args.fps).drop(columns="frame")
    try:
        result = convert_annotations(
            rows, source=source, out=args.out, labelmap_path=args.labelmap,
            videos_dir=args.videos, normalized=args.normalized,
            segment_start=args.segment_start, first_id=args.first_id, frame_size=frame_size,
        )
    except VideosNeeded as exc:
        raise VideosNeeded(f"{exc} (--videos DIR, or --fps and --normalized)") from None
    for split, path in result.written.items():
        n = len(result.rows) if split == "all" else int((result.rows["split"] == split).sum())
        print(f"wrote {path}: {n} rows")
    print(f"{result.keyframes} keyframes, {len(result.labelmap)} classes "
          f"(ids {min(result.labelmap.ids)}..{max(result.labelmap.ids)}) in {args.labelmap}")
    if result.skipped_between_keyframes:
        print(f"left out {result.skipped_between_keyframes} boxes on frames between keyframes "
              "(AVA annotates the frame at each integer second)")
    return 0
