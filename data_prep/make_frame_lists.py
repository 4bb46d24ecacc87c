"""Command-line entry point; the work is done by :mod:`avadet.prep.frame_lists` (see docs/data_prep.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from avadet.prep.frame_lists import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
