"""``python data_prep/convert_annotations.py ARGS`` is ``avadet convert-annotations ARGS`` (see docs/data_prep.md)."""

import sys

from avadet.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["convert-annotations", *sys.argv[1:]]))
