"""The ``avadet`` command line.

Each command lives in the module that owns its work and exposes two functions::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...

A module that holds several commands names each with ``module:attribute`` (an object with
those two functions). Modules are imported only when their command runs, so ``avadet --help`` stays fast and a
command's heavy dependencies never slow down another.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Optional, Sequence

# name -> (module, one-line help). A plain table: the reader sees exactly which code runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("avadet.demo.run", "the whole system on a synthetic dataset, on the CPU (no download)"),
    "check-data": ("avadet.doctor.cli", "check a dataset before training (the data doctor)"),
    "convert-annotations": ("avadet.prep.convert",
                            "per-frame box/label CSV or CVAT video XML -> AVA CSV + label map"),
    "eval": ("avadet.evaluation.cli", "frame-mAP of an AVA prediction CSV (official protocol)"),
    "make-synthetic": ("avadet.synthetic.cli", "generate a synthetic AVA-format dataset"),
    "detect-persons": ("avadet.persons.cli", "person boxes on a dataset's keyframes -> AVA box CSV"),
    "detect": ("avadet.detect.cli", "action detection on a video: CSV, JSON, annotated mp4"),
    "train": ("avadet.engine.cli:train_command", "train a model (resumable; torchrun for many processes)"),
    "test": ("avadet.engine.cli:test_command", "score the val keyframes with a checkpoint; frame-mAP"),
}


def resolve_command(name: str) -> Any:
    """The object with ``add_arguments`` and ``run`` behind command ``name``."""
    module_name, _, attribute = COMMANDS[name][0].partition(":")
    target = importlib.import_module(module_name)
    return getattr(target, attribute) if attribute else target


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avadet",
        description="Spatio-temporal action detection on AVA.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'avadet COMMAND --help' for a command's options.",
    )
    from avadet import __version__

    parser.add_argument("--version", action="version", version=f"avadet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)  # prints help / version / usage errors
        parser.print_help()
        return 0 if not argv else 2
    name = argv[0]
    help_text = COMMANDS[name][1]
    module = resolve_command(name)
    cmd_parser = argparse.ArgumentParser(prog=f"avadet {name}", description=help_text)
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    from avadet.errors import AvadetError

    try:
        return int(module.run(args) or 0)
    except AvadetError as exc:
        # Expected user-facing failures (bad files, bad configs): one clear line, no traceback.
        print(f"avadet {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"avadet {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
