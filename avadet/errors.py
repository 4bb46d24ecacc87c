"""Errors a user can act on. The command line prints them as one line, without a traceback."""

from __future__ import annotations

import errno
from typing import Optional

# The errnos of a full disk or an exhausted quota: the user's to fix, not a bug of ours.
NO_SPACE_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e)


class AvadetError(Exception):
    """Base class of every error caused by the user's input rather than by a bug."""


class ConfigError(AvadetError, ValueError):
    """A configuration file or override is invalid (unknown key, wrong type)."""


class FormatError(AvadetError, ValueError):
    """A data file is malformed. The message names the file and, where known, the line."""

    def __init__(self, path: object, message: str, line: Optional[int] = None):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class WeightsUnavailable(AvadetError):
    """Pretrained weights could not be downloaded and no local file was given."""


class CheckpointError(AvadetError, ValueError):
    """A checkpoint cannot be read, or does not fit the model; the message lists the keys."""


def disk_full_cause(exc: Optional[BaseException]) -> Optional[OSError]:
    """The full-disk ``OSError`` that ``exc`` is or was raised while handling, if any: a
    writer's clean-up often fails in turn and hides it (``torch.save``'s zip writer raises a
    ``RuntimeError`` "unexpected pos" on its way out of an ``ENOSPC``)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``exc``'s message on one line (torch's, NumPy's and the config reader's can span
    several), cut at ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
