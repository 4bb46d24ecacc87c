"""AVA file formats: readers that validate and name the file and line of a bad row, and
atomic writers. Everything here works on whole tables (pandas/numpy), never row by row."""

from avadet.io.atomic import DiskFull, atomic_write
from avadet.io.ava_csv import (
    BOX_COLUMNS,
    FRAME_LIST_COLUMNS,
    KEY_COLUMNS,
    iter_predictions,
    merge_box_labels,
    read_annotations,
    read_exclusions,
    read_frame_list,
    read_person_boxes,
    read_predictions,
    write_ava_csv,
)
from avadet.io.labelmap import LabelMap, ava_labelmap, read_labelmap, write_labelmap

__all__ = [
    "BOX_COLUMNS",
    "DiskFull",
    "FRAME_LIST_COLUMNS",
    "KEY_COLUMNS",
    "LabelMap",
    "atomic_write",
    "ava_labelmap",
    "iter_predictions",
    "merge_box_labels",
    "read_annotations",
    "read_exclusions",
    "read_frame_list",
    "read_labelmap",
    "read_person_boxes",
    "read_predictions",
    "write_ava_csv",
    "write_labelmap",
]
