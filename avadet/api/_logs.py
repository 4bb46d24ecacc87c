"""A use case's log file: avadet's messages of one run, next to what the run writes."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator, Union


@contextlib.contextmanager
def log_to_file(path: Union[str, Path]) -> Iterator[None]:
    """Log avadet's messages (INFO and up) to ``path`` (rewritten) while the block runs."""
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger("avadet")
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        package_logger.removeHandler(handler)
        handler.close()
