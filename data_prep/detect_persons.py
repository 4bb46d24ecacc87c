"""``python data_prep/detect_persons.py ARGS`` is ``avadet detect-persons ARGS`` (see docs/data_prep.md)."""

import sys

from avadet.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["detect-persons", *sys.argv[1:]]))
