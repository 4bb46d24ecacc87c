"""``python data_prep/download_annotations.py ARGS`` is ``avadet download-annotations ARGS`` (see docs/data_prep.md)."""

import sys

from avadet.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["download-annotations", *sys.argv[1:]]))
