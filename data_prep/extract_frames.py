"""``python data_prep/extract_frames.py ARGS`` is ``avadet extract-frames ARGS`` (see docs/data_prep.md)."""

import sys

from avadet.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["extract-frames", *sys.argv[1:]]))
