"""``avadet models [NAME] [--json]``: the published AVA checkpoints (the model zoo).

Without NAME: one line per checkpoint (name, source, architecture, AVA version, the authors'
val mAP, test short side, whether it is in the torch hub cache). With NAME: that entry in
full, with the ``avadet test`` command that should reproduce its mAP. ``--json``: the entries
as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from avadet.models.zoo import ZooEntry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="one model's details (a name from the list)")
    parser.add_argument("--json", action="store_true", help="print the entries as JSON")
    parser.add_argument("--data-root", default="data/ava",
                        help="dataset root written into the avadet test command "
                             "(default: %(default)s)")


def format_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from avadet.models import zoo

    if args.name:
        entry = zoo.get_entry(args.name)
        cached = zoo.is_cached(entry)
        if args.json:
            print(json.dumps({**entry.to_dict(), "cached": cached,
                              "cache_path": str(zoo.cached_path(entry)),
                              "test_command": zoo.reproduce_command(entry, args.data_root)},
                             indent=2))
            return 0
        print(describe(entry, cached, zoo.cached_path(entry),
                       zoo.reproduce_command(entry, args.data_root)))
        return 0
    if args.json:
        print(json.dumps([{**e.to_dict(), "cached": zoo.is_cached(e)} for e in zoo.ZOO], indent=2))
        return 0
    header = ["name", "source", "arch", "AVA", "val mAP", "short side", "cached"]
    rows = [[e.name, e.source, e.arch_label, f"v{e.ava_version}", f"{e.val_map:.2f}",
             str(e.preprocessing.test_short_side), "yes" if zoo.is_cached(e) else "-"]
            for e in zoo.ZOO]
    print(format_table(rows, header))
    print(f"\ncache: {home_short(zoo.cache_dir())} ('avadet models NAME' for a model's details)")
    return 0


def home_short(path: Path) -> str:
    """``path`` with the home folder written ``~``."""
    text, home = str(path), str(Path.home())
    return "~" + text[len(home):] if home != "/" and text.startswith(home + "/") else text


def describe(entry: ZooEntry, cached: bool, path: Path, command: str) -> str:
    """``entry`` in full, one field a line."""
    pre = entry.preprocessing
    sha = entry.sha256 or "not published"
    if entry.sha256 and len(entry.sha256) < 64:
        sha += " (its first 8 hex digits, from the file name)"
    arch = entry.architecture if isinstance(entry.architecture, str) else \
        ", ".join(f"{k}={v}" for k, v in entry.architecture.items())
    fields = [
        ("source", f"{entry.source} ({entry.reference})"),
        ("url", entry.url),
        ("sha256", sha),
        ("cached", f"{'yes' if cached else 'no'} ({home_short(path)})"),
        ("architecture", arch),
        ("authors' mAP", f"{entry.val_map:.2f} on AVA v{entry.ava_version} val"),
        ("pretrain", entry.pretrain),
        ("authors' config", entry.authors_config),
        ("preprocessing",
         f"short side {pre.test_short_side}, {pre.num_frames} frames at stride "
         f"{pre.sampling_rate}, mean {list(pre.mean)}, std {list(pre.std)}, boxes scaled "
         f"{pre.box_scaling.replace('_', '-')}, person boxes >= {pre.detection_threshold}"),
        *([("notes", entry.notes)] if entry.notes else []),
        ("reproduce", command),
    ]
    width = max(len(label) for label, _ in fields) + 2
    return "\n".join([entry.name] + [f"  {label + ':':<{width}}{value}" for label, value in fields])
