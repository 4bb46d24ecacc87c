"""``avadet eval GT.csv PRED.csv --labelmap LABELMAP.pbtxt``: frame-mAP of a prediction file."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from avadet.evaluation.protocols import DEFAULT_PROTOCOL, PROTOCOLS

    parser.add_argument("gt", help="ground-truth CSV (AVA format, e.g. ava_val_v2.2.csv)")
    parser.add_argument("pred", help="prediction CSV: video,timestamp,x1,y1,x2,y2,action,score")
    parser.add_argument(
        "--labelmap", required=True,
        help="evaluated classes (.pbtxt), e.g. ava_action_list_v2.2_for_activitynet_2019.pbtxt",
    )
    parser.add_argument("--exclusions", help="excluded keyframes CSV (video_id,timestamp)")
    parser.add_argument("--json", metavar="OUT.json", help="write the mAP and per-class AP here")
    parser.add_argument("--plots", metavar="DIR", help="write PR curves and an AP chart here")
    parser.add_argument(
        "--protocol", default=DEFAULT_PROTOCOL, choices=list(PROTOCOLS),
        help="which evaluator's rules to reproduce (default: %(default)s); "
        + "; ".join(f"{p.name}: {p.description}" for p in PROTOCOLS.values()),
    )


def run(args: argparse.Namespace) -> int:
    from avadet.api.evaluation import evaluate, format_table, write_outputs

    result = evaluate(args.gt, args.pred, args.labelmap, args.exclusions,
                      protocol=args.protocol, keep_curves=bool(args.plots))
    for message in result.warnings:
        print(f"avadet eval: warning: {message}", file=sys.stderr)
    print(format_table(result))
    for path in write_outputs(result, json_path=args.json, plots_dir=args.plots):
        print(f"wrote {path}")
    return 0
