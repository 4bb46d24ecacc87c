"""Data in: clip sources (JPEG folders, video files), keyframe sampling, box-aware transforms
and the AVA dataset.

Boxes are AVA's normalised ``x1, y1, x2, y2`` in files and ``pixels of the network input``
from :func:`avadet.boxes.to_pixels` on.
"""

from avadet.data.dataset import (
    AvaDataset,
    build_dataset,
    build_source,
    class_ids_of,
    collate_ava,
    label_boxes_by_iou,
    load_split_boxes,
)
from avadet.data.sampling import (
    keyframe_to_frame_index,
    sample_clip_indices,
    slow_pathway_positions,
    valid_keyframe_mask,
)
from avadet.data.sources import ClipReadError, FrameFolderSource, VideoIndex, VideoSource
from avadet.data.transforms import (
    TransformResult,
    eval_transform,
    train_transform,
)

__all__ = [
    "AvaDataset",
    "ClipReadError",
    "FrameFolderSource",
    "TransformResult",
    "VideoIndex",
    "VideoSource",
    "build_dataset",
    "build_source",
    "class_ids_of",
    "collate_ava",
    "keyframe_to_frame_index",
    "label_boxes_by_iou",
    "load_split_boxes",
    "sample_clip_indices",
    "slow_pathway_positions",
    "eval_transform",
    "train_transform",
    "valid_keyframe_mask",
]
