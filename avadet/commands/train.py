"""``avadet train --config CFG [key=value ...] [--no-resume [--overwrite]]``.

Runs unchanged under ``torchrun`` (``torchrun --nproc_per_node N -m avadet train ...``).
"""

from __future__ import annotations

import argparse
import sys

from avadet.commands._common import add_config_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", dest="resume", action="store_true", default=True,
                       help="continue from the latest checkpoint in train.output_dir (the default)")
    group.add_argument("--no-resume", dest="resume", action="store_false",
                       help="start from scratch; refused if train.output_dir holds checkpoints, "
                            "unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --no-resume: delete the folder's checkpoints, metrics and log first")


def run(args: argparse.Namespace) -> int:
    from avadet import api
    from avadet.api import OutputDirInUse
    from avadet.errors import AvadetError

    if args.overwrite and args.resume:
        print("avadet train: --overwrite only applies with --no-resume", file=sys.stderr)
        return 2
    try:
        result = api.train(args.config, args.overrides, resume=args.resume,
                           overwrite=args.overwrite)
    except OutputDirInUse as exc:
        raise AvadetError(
            f"{exc.output_dir} already holds checkpoints (latest {exc.latest}); resume it (the "
            "default), choose another train.output_dir, or pass --overwrite to start over"
        ) from None
    for note in result.notes:
        print(f"avadet train: {note}")
    return 0
