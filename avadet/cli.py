"""The ``avadet`` command line: ``avadet COMMAND [options]``; the commands are in
:mod:`avadet.commands` (one module each).

Errors a user can act on (:class:`~avadet.errors.AvadetError`) are printed as one line
without a traceback, exit status 2, and so is a full disk (``ENOSPC``, ``EDQUOT``); an
interrupt exits with 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from avadet.commands import COMMANDS, command_module
from avadet.errors import disk_full_cause


class CommandParser(argparse.ArgumentParser):
    """A command's parser whose usage errors are one line, like every other error:
    ``avadet COMMAND: error: ... (see avadet COMMAND --help)``, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: ``--help`` lists every command with its one-line help."""
    from avadet import __version__

    parser = argparse.ArgumentParser(
        prog="avadet",
        description="Spatio-temporal action detection on AVA.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'avadet COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"avadet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        parser = build_parser()
        parser.parse_args(argv)  # prints help / version / usage errors
        parser.print_help()
        return 0 if not argv else 2
    name = argv[0]
    module = command_module(name)
    cmd_parser = CommandParser(prog=f"avadet {name}", description=COMMANDS[name])
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
    except Exception as exc:
        # A full disk or quota anywhere (a writer without its own message): the user's to fix,
        # so one line naming where, not a traceback through whichever library wrote. It may
        # hide behind the writer's own failure on its way out (an exception's context).
        full = disk_full_cause(exc)
        if full is None and isinstance(exc, OSError) and exc.filename:
            # A path the user gave that the OS refuses (not a folder, a folder, no access):
            # the OS's own words and the path are the message.
            print(f"avadet {name}: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        if full is None:
            raise
        where = os.path.dirname(os.path.abspath(full.filename)) if isinstance(full.filename, str) else None
        place = f" writing into {where}" if where else ""
        print(f"avadet {name}: error: {full.strerror or os.strerror(full.errno)}{place}; "
              "free some space and run again", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
