"""The record every check of the data doctor returns: what is wrong, where, how often, the fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
# How many offending rows / files a finding quotes.
MAX_EXAMPLES = 5


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
