"""Where a run's numbers go: ``<output_dir>/metrics.csv`` (one row per log step and per
evaluation), TensorBoard when it is installed, and ``<output_dir>/log.txt``."""

from __future__ import annotations

import csv
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Optional

from avadet.errors import NO_SPACE_ERRNOS
from avadet.io import atomic_write

METRIC_FIELDS = ["kind", "epoch", "iteration", "loss", "lr", "samples_per_s", "map", "time_s"]


# Written at full resolution: 8 significant digits of a Unix time are whole 100 seconds.
_EXACT_FIELDS = frozenset({"time_s"})


def _cell(value: Any, exact: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if exact else f"{value:.8g}"
    return str(value)


class MetricsLog:
    """Append-only CSV of :data:`METRIC_FIELDS` rows (``kind`` "train" or "eval"), flushed
    after each row, mirrored to TensorBoard (``<output_dir>/tensorboard``) if importable.
    ``enabled=False`` (ranks other than 0) writes nothing."""

    def __init__(self, output_dir: Path, *, enabled: bool = True, tensorboard: bool = True):
        self.path = Path(output_dir) / "metrics.csv"
        self.enabled = enabled
        self._writer: Any = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except Exception:  # tensorboard not installed: the CSV is enough
                SummaryWriter = None
            if SummaryWriter is not None:
                self._writer = SummaryWriter(str(Path(output_dir) / "tensorboard"))

    def truncate_after(self, iteration: int) -> None:
        """Drop rows past ``iteration`` (a run resumed from an earlier checkpoint redoes them)."""
        if not self.enabled or not self.path.is_file():
            return
        with open(self.path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        kept = [r for r in rows if r.get("iteration", "").isdigit() and int(r["iteration"]) <= iteration]
        with atomic_write(self.path) as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)

    def has_row(self, kind: str, iteration: int) -> bool:
        """Whether a ``kind`` row of ``iteration`` was written (False when disabled)."""
        if not self.enabled or not self.path.is_file():
            return False
        with open(self.path, newline="", encoding="utf-8") as handle:
            return any(r.get("kind") == kind and r.get("iteration") == str(iteration)
                       for r in csv.DictReader(handle))

    def write(self, **row: Any) -> None:
        if not self.enabled:
            return
        new = not self.path.is_file() or os.path.getsize(self.path) == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(METRIC_FIELDS)
            writer.writerow([_cell(row.get(k), k in _EXACT_FIELDS) for k in METRIC_FIELDS])
        if self._writer is not None:
            step = int(row["iteration"])
            for key in ("loss", "lr", "samples_per_s", "map"):
                value = row.get(key)
                if isinstance(value, (int, float)) and not math.isnan(float(value)):
                    self._writer.add_scalar(f"{row['kind']}/{key}", float(value), step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _LogFile(logging.FileHandler):
    """``log.txt``: on a full disk a line is dropped quietly (logging would print a traceback
    per line); the run's next checkpoint or metrics row reports the full disk as one line."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            return
        super().handleError(record)


def attach_log_file(path: Optional[Path], *, console: bool) -> list[logging.Handler]:
    """Send the ``avadet`` loggers' INFO messages to ``path`` (and to stderr with ``console``);
    returns the handlers for :func:`detach`."""
    root = logging.getLogger("avadet")
    root.setLevel(logging.INFO)
    handlers: list[logging.Handler] = []
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(_LogFile(path, encoding="utf-8"))
    if console:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    return handlers


def detach(handlers: list[logging.Handler]) -> None:
    root = logging.getLogger("avadet")
    for handler in handlers:
        root.removeHandler(handler)
        handler.close()
