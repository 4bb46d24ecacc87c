"""One training run per output folder: ``<output_dir>/.lock``, held with ``flock`` by rank 0.

Two runs writing one folder would mix their checkpoints, ``model_final.pt`` and
``metrics.csv`` silently. The lock is the kernel's, tied to the open file: it goes away with
the process however that ends (exit, crash, SIGKILL), so a ``.lock`` file left by a dead run
never blocks the next one. The file's text (pid, host, start time) only names the holder in
the refusal.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import socket
from pathlib import Path
from typing import Optional

from avadet.errors import AvadetError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not guarded
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunFolderLocked(AvadetError):
    """Another live process holds ``output_dir``'s lock; ``holder`` says who, as it wrote."""

    def __init__(self, output_dir: Path, holder: str):
        self.output_dir = output_dir
        self.holder = holder
        super().__init__(
            f"{output_dir} is in use by another training run ({holder}); wait for it to end, "
            "or choose another train.output_dir"
        )


class RunLock:
    """The held lock of one folder; :meth:`release` (or the process's end) frees it."""

    def __init__(self, path: Path, fd: Optional[int]):
        self.path = path
        self._fd = fd

    def release(self) -> None:
        # The file stays: unlinking it would let a third run lock a fresh inode while a
        # second still waits on the old one.
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None


def _holder_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    # The holder writes its line just after locking; a refusal in between has no text yet.
    return " ".join(text.split()) or "a process that has not written its pid yet"


def lock_run_folder(output_dir: Path) -> RunLock:
    """Take ``output_dir/.lock`` without waiting, or raise :class:`RunFolderLocked` naming the
    holder (``pid N on host H, started T``)."""
    path = Path(output_dir) / LOCK_NAME
    if fcntl is None:
        return RunLock(path, None)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunFolderLocked(Path(output_dir), _holder_text(path)) from None
    except BaseException:
        os.close(fd)
        raise
    started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    line = f"pid {os.getpid()} on host {socket.gethostname()}, started {started}\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, line.encode("utf-8"), 0)
    except OSError:  # e.g. a full disk: the lock holds without its text; the run reports it
        pass
    return RunLock(path, fd)
