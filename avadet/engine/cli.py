"""``avadet train`` and ``avadet test``.

    avadet train --config CFG [key=value ...] [--no-resume [--overwrite]]
    avadet test  --config CFG --checkpoint CKPT [key=value ...] [--output-csv P] [--json J]

Both run unchanged under ``torchrun`` (``torchrun --nproc_per_node N -m avadet train ...``).
"""

from __future__ import annotations

import argparse
import sys

# Registered in avadet/cli.py as avadet.engine.cli:train_command and :test_command.


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (e.g. configs/ava/*.yaml)")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value",
        help="config overrides, e.g. solver.base_lr=0.05 train.output_dir=runs/x",
    )


class train_command:  # a namespace the CLI table points at
    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        _common(parser)
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--resume", dest="resume", action="store_true", default=True,
            help="continue from the latest checkpoint in train.output_dir (the default)",
        )
        group.add_argument(
            "--no-resume", dest="resume", action="store_false",
            help="start from scratch; refused if train.output_dir holds checkpoints, "
            "unless --overwrite",
        )
        parser.add_argument(
            "--overwrite", action="store_true",
            help="with --no-resume: delete the folder's checkpoints, metrics and log first",
        )

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from avadet.config import load_config
        from avadet.engine.trainer import OutputDirInUse, train
        from avadet.errors import AvadetError

        if args.overwrite and args.resume:
            print("avadet train: --overwrite only applies with --no-resume", file=sys.stderr)
            return 2
        cfg = load_config(args.config, args.overrides)
        try:
            result = train(cfg, resume=args.resume, overwrite=args.overwrite)
        except OutputDirInUse as exc:
            raise AvadetError(
                f"{exc.output_dir} already holds checkpoints (latest {exc.latest}); resume it (the "
                "default), choose another train.output_dir, or pass --overwrite to start over"
            ) from None
        for note in result.notes:
            print(f"avadet train: {note}")
        return 0


class test_command:
    __test__ = False  # not a pytest class

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        _common(parser)
        parser.add_argument(
            "--checkpoint", help="avadet checkpoint (.pt); or give test.checkpoint=PATH"
        )
        parser.add_argument(
            "--output-csv", metavar="PRED.csv",
            help="where to write the predictions (default: test.output_csv in the checkpoint's run folder)",
        )
        parser.add_argument("--json", metavar="OUT.json", help="write the mAP and per-class AP here")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from avadet.config import load_config
        from avadet.engine.inference import test
        from avadet.errors import ConfigError
        from avadet.evaluation.report import format_table, write_json

        cfg = load_config(args.config, args.overrides)
        checkpoint = args.checkpoint or cfg.test.checkpoint
        if not checkpoint:
            raise ConfigError("no checkpoint: pass --checkpoint CKPT or test.checkpoint=CKPT")
        result = test(cfg, checkpoint, output_csv=args.output_csv)
        if result.predictions_csv is None:  # not rank 0
            return 0
        print(f"wrote {result.predictions_csv} ({len(result.predictions)} rows)")
        if result.eval_result is None:
            print("no ground truth for this split (data.val_annotations): predictions only")
            return 0
        for message in result.eval_result.warnings:
            print(f"avadet test: warning: {message}", file=sys.stderr)
        print(format_table(result.eval_result))
        if args.json:
            write_json(args.json, result.eval_result)
            print(f"wrote {args.json}")
        return 0
