"""Command-line entry point; the work is done by :mod:`avadet.persons.cli` (see docs/detect.md).

``python data_prep/detect_persons.py --config CFG --out ava_val_predicted_boxes.csv`` is the
same as ``avadet detect-persons ...``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from avadet.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["detect-persons", *sys.argv[1:]]))
