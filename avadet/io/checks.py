"""What every reader checks before it parses: the path is a regular, uncompressed file.

pandas and ``Path.read_text`` turn a directory, a gzip file, invalid UTF-8 or a device such
as ``/dev/zero`` into tracebacks, hangs or memory exhaustion; here each is one
:class:`~avadet.errors.FormatError` naming the file (and, for invalid UTF-8, the line).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from avadet.errors import FormatError

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"


def check_readable(path: Path, what: str) -> None:
    """Raise FormatError unless ``path`` is an existing regular file that is not compressed.

    Args:
        path: the file. what: what it should be, for the message ("a CSV file").
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except OSError as exc:
        raise FormatError(path, f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise FormatError(path, f"is a directory, expected {what}")
    if stat.S_ISFIFO(mode):
        # A pipe (``<(zcat gt.csv.gz)``) cannot be read twice, and the readers re-read a file
        # to name the line of an error: it would block there.
        raise FormatError(path, f"is a pipe; write it to a file first (expected {what})")
    if not stat.S_ISREG(mode):
        # A device can be endless (/dev/zero) or block forever.
        raise FormatError(path, f"is not a regular file, expected {what}")
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise FormatError(path, f"cannot read: {exc.strerror or exc}") from None
    if head.startswith(_GZIP_MAGIC):
        raise FormatError(path, f"is gzip-compressed; decompress it first (expected {what})")
    if head.startswith(_ZIP_MAGIC):
        raise FormatError(path, f"is a zip archive; extract it first (expected {what})")


def raise_utf8_error(path: Path) -> None:
    """Raise FormatError naming the first line of ``path`` that is not valid UTF-8."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FormatError(
                    path, f"not UTF-8 text (byte {line[exc.start]:#04x} at column "
                    f"{exc.start + 1})", line=number
                ) from None
    raise FormatError(path, "not UTF-8 text")
