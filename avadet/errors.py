"""Errors a user can act on. The command line prints them as one line, without a traceback."""

from __future__ import annotations

from typing import Optional


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
