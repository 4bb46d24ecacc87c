"""``python data_prep/cut_videos.py ARGS`` is ``avadet cut-videos ARGS`` (see docs/data_prep.md)."""

import sys

from avadet.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["cut-videos", *sys.argv[1:]]))
