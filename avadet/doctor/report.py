"""The data doctor's output: a summary table for people, JSON for scripts."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Union

from avadet.doctor.checks import DoctorReport
from avadet.io import atomic_write

PathLike = Union[str, Path]
_MARK = {"error": "ERROR", "warning": "warn", "info": "info"}


def format_report(report: DoctorReport, *, width: int = 100, show_info: bool = True) -> str:
    """Findings one per block (severity, check, count, where, what, fix, examples), then a
    summary table of the counts and a verdict line."""
    lines: list[str] = []
    shown = [f for f in report.findings if show_info or f.severity != "info"]
    for f in shown:
        lines.append(f"[{_MARK[f.severity]:>5}] {f.check}  ({f.count})  {f.path}")
        for text, prefix in ((f.message, "        "), (f.fix and f"fix: {f.fix}", "        ")):
            if text:
                lines += textwrap.wrap(text, width, initial_indent=prefix,
                                       subsequent_indent=prefix + "  ")
        for example in f.examples:
            lines.append(f"          e.g. {example}"[: width + 40])
    if shown:
        lines.append("")
    lines.append(summary_table(report))
    verdict = ("OK: no errors" if report.ok else
               f"FAILED: {report.errors} error finding(s): training would fail or silently degrade")
    if report.full_scan:
        mode = "full scan (every frame decoded)"
    elif "media_markers_checked" in report.stats:
        mode = ("sampled frames decoded; every frame file's JPEG start and end markers read, "
                "the rest of each file not decoded: --full-scan decodes all")
    else:
        mode = "sampled frames decoded; the other frames not decoded: --full-scan decodes all"
    lines.append(f"{verdict}; {report.warnings} warning(s); {report.seconds:.2f} s ({mode})")
    return "\n".join(lines)


def summary_table(report: DoctorReport) -> str:
    """``family | errors | warnings | info`` over the check families, plus the facts."""
    families: dict[str, dict[str, int]] = {}
    for f in report.findings:
        family = f.check.split(".")[0]
        families.setdefault(family, {"error": 0, "warning": 0, "info": 0})[f.severity] += 1
    header = f"{'check':<14} {'errors':>6} {'warnings':>8} {'info':>5}"
    rows = [header, "-" * len(header)]
    for family in ("config", "labelmap", "annotations", "exclusions", "classes", "media", "boxes"):
        c = families.get(family, {"error": 0, "warning": 0, "info": 0})
        rows.append(f"{family:<14} {c['error']:>6} {c['warning']:>8} {c['info']:>5}")
    stats = report.stats
    facts = []
    for key, label in (("train_rows", "train rows"), ("val_rows", "val rows"),
                       ("classes", "classes"), ("media_videos", "videos"),
                       ("media_frames", "frames"), ("media_decoded", "decoded"),
                       ("val_box_recall", "val box recall")):
        if key in stats:
            facts.append(f"{label} {stats[key]:,}" if isinstance(stats[key], int)
                         else f"{label} {stats[key]}")
    if "media_seconds_per_video" in stats:
        facts.append(f"{stats['media_seconds_per_video'] * 1000:.1f} ms/video")
    rows.append("-" * len(header))
    rows.append("; ".join(facts))
    return "\n".join(rows)


def report_to_dict(report: DoctorReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "errors": report.errors,
        "warnings": report.warnings,
        "seconds": round(report.seconds, 3),
        "full_scan": report.full_scan,
        "stats": report.stats,
        "findings": [f.to_dict() for f in report.findings],
    }


def write_report_json(path: PathLike, report: DoctorReport) -> None:
    """Write :func:`report_to_dict` atomically."""
    with atomic_write(path) as handle:
        json.dump(report_to_dict(report), handle, indent=1, default=str)
        handle.write("\n")
