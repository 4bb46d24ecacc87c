"""``avadet check-data --config CFG [key=value ...] [--full-scan] [--json OUT]``.

Exit status: 0 when no error-level finding exists (warnings allowed), 1 when one does
(training would fail or silently degrade), 2 for usage and config errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from avadet.commands._common import add_config_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, help="the training config (YAML)")
    parser.add_argument("--full-scan", action="store_true",
                        help="decode every frame (default: list folders, read headers and "
                             "decode a sample of frames per video)")
    parser.add_argument("--sample", type=int, default=8,
                        help="frames decoded per video without --full-scan (default 8)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 2),
                        help="threads inspecting videos in parallel")
    parser.add_argument("--json", metavar="OUT",
                        help="also write the findings as JSON to OUT ('-' for stdout only)")
    parser.add_argument("--quiet", action="store_true",
                        help="leave out info-level findings and the progress bar")


def run(args: argparse.Namespace) -> int:
    from avadet import api
    from avadet.doctor.report import format_report, report_to_dict, write_report_json

    to_stdout = args.json == "-"
    report = api.check_data(args.config, args.overrides, full_scan=args.full_scan,
                            sample=args.sample, workers=args.workers,
                            progress=not (args.quiet or to_stdout))
    if to_stdout:
        json.dump(report_to_dict(report), sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        print(format_report(report, show_info=not args.quiet))
        if args.json:
            write_report_json(args.json, report)
            print(f"wrote {args.json}")
    return 0 if report.ok else 1
