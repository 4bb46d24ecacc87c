"""``python data_prep/make_frame_lists.py ARGS`` is ``avadet make-frame-lists ARGS`` (see docs/data_prep.md)."""

import sys

from avadet.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["make-frame-lists", *sys.argv[1:]]))
