"""Command-line entry point; the work is done by :mod:`avadet.prep.convert` (see
docs/custom_dataset.md). Same as ``avadet convert-annotations``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from avadet.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["convert-annotations", *sys.argv[1:]]))
