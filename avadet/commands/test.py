"""``avadet test --config CFG --checkpoint CKPT [key=value ...] [--output-csv P] [--json J]``."""

from __future__ import annotations

import argparse
import sys

from avadet.commands._common import (
    ARCH_HELP,
    CHECKPOINT_HELP,
    add_config_arguments,
    add_inference_arguments,
    add_threads_argument,
    inference_overrides,
    set_threads,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_threads_argument(parser)
    add_config_arguments(parser)
    parser.add_argument("--checkpoint", help=CHECKPOINT_HELP + "; or give test.checkpoint=PATH")
    parser.add_argument("--arch", help=ARCH_HELP)
    parser.add_argument("--output-csv", metavar="PRED.csv",
                        help="where to write the predictions (default: test.output_csv in the "
                             "checkpoint's run folder)")
    parser.add_argument("--json", metavar="OUT.json", help="write the mAP and per-class AP here")
    add_inference_arguments(parser)


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    from avadet import api
    from avadet.api.evaluation import format_table, write_outputs

    overrides = list(args.overrides) + inference_overrides(args)
    result = api.test(args.config, args.checkpoint, overrides, output_csv=args.output_csv,
                      arch=args.arch)
    if result.predictions_csv is None:  # not rank 0
        return 0
    print(f"wrote {result.predictions_csv} ({len(result.predictions)} rows)")
    if result.eval_result is None:
        print("no ground truth for this split (data.val_annotations): predictions only")
        return 0
    for message in result.eval_result.warnings:
        print(f"avadet test: warning: {message}", file=sys.stderr)
    print(format_table(result.eval_result))
    for path in write_outputs(result.eval_result, json_path=args.json):
        print(f"wrote {path}")
    return 0
