"""Settings shared by every test.

Torch's intra-op threads are sized to the cores each pytest-xdist worker really has: with
``-n 2`` on 2 cores, two workers of 2 OpenMP threads each oversubscribe the machine, and
OpenMP's spinning threads then slow a small model's training step 10-30x (measured: the
learning test took 381 s instead of 14 s). Tests that compare runs bit for bit only need the
same count within the test, which this gives.
"""

from __future__ import annotations

import logging
import os

import pytest
import torch
import tqdm

# No tqdm monitor thread: a process that forks (DataLoader workers, the fork tests) while it
# runs can deadlock in the child (seen: threading._after_fork hanging in a forked test).
tqdm.tqdm.monitor_interval = 0


def cpu_threads() -> int:
    """Cores per test process: all of them, divided by the number of xdist workers."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, (os.cpu_count() or 1) // max(1, workers))


@pytest.fixture(autouse=True)
def _torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(cpu_threads())
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _restore_logging():
    """Commands run in-process configure logging as a command line does (``basicConfig``, a
    level on ``avadet``): undo it, so that one test's console handler does not add lines to
    the stderr another test counts."""
    root, package = logging.getLogger(), logging.getLogger("avadet")
    saved = (list(root.handlers), root.level, list(package.handlers), package.level)
    yield
    root.handlers[:], package.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    package.setLevel(saved[3])
