"""``avadet detect-persons --config CFG --out BOXES.csv``: person boxes on a dataset's
keyframes, written as an AVA person-box CSV (``video_id,timestamp,x1,y1,x2,y2,-1,score``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from avadet.commands._common import (
    add_config_arguments,
    add_detector_arguments,
    add_threads_argument,
    detector_choice,
    set_threads,
    weights_hint,
)

logger = logging.getLogger("avadet.persons")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_threads_argument(parser)
    add_config_arguments(parser, help="dataset config (YAML)")
    parser.add_argument("--out", required=True, help="person-box CSV to write")
    parser.add_argument("--split", default="val", choices=["train", "val"])
    parser.add_argument("--keyframes", default="all", choices=("all", "annotated"),
                        help="all: every second of the segment (as AVA's box files); "
                             "annotated: the gt file's keyframes")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    add_detector_arguments(parser, default_threshold=0.5)


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    from avadet import api
    from avadet.api._logs import log_to_file

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # The config and the detector first: a run that cannot start leaves no files behind.
    cfg = api.load_config(args.config, args.overrides)
    with weights_hint():
        detector = detector_choice(args).build(score_threshold=args.person_threshold,
                                               device=args.device)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with log_to_file(out.with_name(out.name + ".log")):
        logger.info("detect-persons: %s split of %s, %s keyframes, %s, threshold %s",
                    args.split, args.config, args.keyframes, detector.describe(),
                    args.person_threshold)
        df = api.detect_persons(cfg, detector, out, split=args.split, keyframes=args.keyframes)
    print(f"wrote {len(df)} person boxes to {out} ({detector.describe()})")
    return 0
