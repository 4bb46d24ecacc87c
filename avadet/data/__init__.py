"""Data in: the dataset's files, clip sources (JPEG folders, video files), keyframe sampling,
box-aware transforms, annotation tables and the AVA dataset.

Boxes are AVA's normalised ``x1, y1, x2, y2`` in files and pixels of the network input from
:func:`avadet.boxes.to_pixels` on. Clips are at the Fast pathway's frame rate: the model, not
the data, knows its pathways. Nothing here reads a config: :mod:`avadet.engine.build` turns
``cfg.data`` into these arguments.
"""

from avadet.data.annotations import (
    drop_keyframes,
    keep_in_segment,
    label_boxes_by_iou,
    split_boxes,
)
from avadet.data.batch import Batch, Item, collate
from avadet.data.dataset import AvaDataset
from avadet.data.files import DatasetFiles, resolve_path
from avadet.data.sampling import (
    keyframe_to_frame_index,
    sample_clip_indices,
    valid_keyframe_mask,
)
from avadet.data.sources import ClipReadError, FrameFolderSource, VideoIndex, VideoSource
from avadet.data.transforms import TransformResult, eval_transform, train_transform

__all__ = [
    "AvaDataset",
    "Batch",
    "ClipReadError",
    "DatasetFiles",
    "FrameFolderSource",
    "Item",
    "TransformResult",
    "VideoIndex",
    "VideoSource",
    "collate",
    "drop_keyframes",
    "eval_transform",
    "keep_in_segment",
    "keyframe_to_frame_index",
    "label_boxes_by_iou",
    "resolve_path",
    "sample_clip_indices",
    "split_boxes",
    "train_transform",
    "valid_keyframe_mask",
]
