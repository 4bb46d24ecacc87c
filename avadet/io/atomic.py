"""Atomic file output: a reader never sees a half-written file, a crash leaves the old one.

Temporary files are created private (``mkstemp``: mode 0600), which would survive the rename;
every finished file is given the mode a plain ``open()`` would have given it instead
(:func:`publish_mode`), so colleagues sharing a results folder can read it when the umask
says they may.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator, Optional, Union

from avadet.errors import AvadetError, disk_full_cause

PathLike = Union[str, "os.PathLike[str]"]

class DiskFull(AvadetError, OSError):
    """Writing into ``folder`` failed for lack of space (or quota). Still an ``OSError``
    with the original errno, for callers that handle those."""

    def __init__(self, folder: PathLike, strerror: str, code: int = errno.ENOSPC,
                 hint: str = "free some space there and run again"):
        super().__init__(code, strerror, str(folder))
        self.folder = Path(folder)
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.strerror} writing into {self.folder}; {self.hint}"


def disk_full(exc: OSError, folder: PathLike, hint: Optional[str] = None) -> DiskFull:
    """``exc`` (a full disk) as a :class:`DiskFull` naming ``folder``."""
    strerror = exc.strerror or os.strerror(exc.errno or errno.ENOSPC)
    code = exc.errno or errno.ENOSPC
    return DiskFull(folder, strerror, code) if hint is None else DiskFull(folder, strerror, code, hint)


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux's
    ``/proc/self/status``): ``os.umask`` can only be read by setting it, which races with
    other threads creating files."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(path: PathLike, *, directory: bool = False) -> int:
    """The permission bits ``open(path, "w")`` (``mkdir`` with ``directory``) would leave:
    those of the file it replaces if there is one, else 0666 (0777) less the umask."""
    with contextlib.suppress(OSError):
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode) == directory:
            return stat.S_IMODE(st.st_mode)
    return (0o777 if directory else 0o666) & ~current_umask()


def publish_mode(tmp: PathLike, final: PathLike, *, fd: Optional[int] = None,
                 directory: bool = False) -> None:
    """Give the temporary ``tmp`` (open as ``fd``, if given) the mode ``final`` should have,
    before it is renamed over ``final``."""
    mode = default_mode(final, directory=directory)
    if fd is not None and hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:
        os.chmod(tmp, mode)


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success fsync it and rename it over ``path``.

    The temporary file lives in the destination folder so that the final ``os.replace`` is a
    rename within one file system (atomic on POSIX and Windows). On an exception the temporary
    file is removed and ``path`` is left untouched; a full disk is raised as
    :class:`DiskFull` naming the folder. The file ends up with the mode a plain
    ``open()`` would give it (:func:`default_mode`), not ``mkstemp``'s private 0600.

    Example::

        with atomic_write("out/predictions.csv") as f:
            f.write(text)
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write supports mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            publish_mode(tmp, path, fd=handle.fileno())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        cause = disk_full_cause(exc)
        if cause is not None and not isinstance(exc, DiskFull):
            raise disk_full(cause, path.parent) from None
        raise
