"""The record every check of the data doctor returns: what is wrong, where, how often, the fix;
and the few ways the checks build one (over a list of items, over table rows, from the strict
reader)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence, TypeVar, Union

import numpy as np

from avadet.errors import FormatError

if TYPE_CHECKING:
    from avadet.doctor.tables import RawTable

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
# How many offending rows / files a finding quotes.
MAX_EXAMPLES = 5
T = TypeVar("T")


@dataclass
class Finding:
    """One problem (or fact) found in the data a config points at.

    ``severity``: ``error`` when training would fail or silently degrade (the command then
    exits 1), ``warning`` when something looks wrong but may be intended, ``info`` for facts
    worth knowing (counts, the measured box recall). ``check``: a stable dotted name such as
    ``annotations.box_range``; ``path``: the file or folder at fault; ``count``: how many rows,
    files or videos are affected; ``examples``: up to :data:`MAX_EXAMPLES` of them
    (``file:line: row`` or a file name).
    """

    severity: Severity
    check: str
    path: str
    count: int
    message: str
    fix: str = ""
    examples: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        self.examples = [str(e) for e in self.examples[:MAX_EXAMPLES]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def findings_over(severity: Severity, check: str, path: Union[str, Path], items: Sequence[T],
                  message: str, fix: str, example: Callable[[T], str] = str) -> list[Finding]:
    """One finding counting ``items`` (rows, files or videos at fault) and quoting the first
    :data:`MAX_EXAMPLES` of them through ``example``; none when ``items`` is empty."""
    if not items:
        return []
    return [Finding(severity, check, str(path), len(items), message, fix,
                    [example(item) for item in items[:MAX_EXAMPLES]])]


def rows_finding(severity: Severity, check: str, table: RawTable, good_mask: np.ndarray,
                 mask: np.ndarray, message: str, fix: str) -> Finding:
    """A finding over the rows of ``table`` where ``mask`` holds.

    Args:
        good_mask: ``(N,)`` bool over the table's rows, the rows that parse.
        mask: ``(G,)`` bool over those parsed rows. ``message``: prefixed with the count
            unless it starts with a number.
    """
    full = np.zeros(len(table.rows), dtype=bool)
    full[np.flatnonzero(good_mask)[mask]] = True
    count = int(full.sum())
    return Finding(severity, check, str(table.path), count, f"{count} {message}"
                   if not message[0].isdigit() else message, fix, table.examples(full))


def strict_reader_findings(path: Path, reader: Callable[[Path], Any], check: str,
                           found: list[Finding]) -> list[Finding]:
    """What the strict reader training uses says about ``path``, when none of ``found`` (the
    lenient checks) already gave an error for that file: a safety net, the reader is the
    authority on what training accepts. ``check`` names the finding."""
    if any(f.severity == "error" and f.path == str(path) for f in found):
        return []
    try:
        reader(path)
    except FormatError as exc:
        return [Finding("error", check, str(path), 1,
                        f"the reader training uses rejects the file: {exc.reason}",
                        "fix the row it names", [str(exc)])]
    return []
