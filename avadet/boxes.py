"""The one home of AVA's box conventions: column names, normalised <-> pixel boxes, IoU.

Files hold AVA's normalised ``x1, y1, x2, y2`` (fractions of the frame's width and height);
the model works in pixels of its input. Every package that names AVA's columns, converts a
box or measures an overlap takes it from here. The evaluator (:mod:`avadet.evaluation`) keeps
its own IoU arithmetic on purpose: it reproduces the official ActivityNet code's float
operations in their order, so that its APs match the official ones to the last bit.
"""

from __future__ import annotations

import numpy as np

KEY_COLUMNS = ["video_id", "timestamp"]
BOX_COLUMNS = ["x1", "y1", "x2", "y2"]
# The eight columns of every AVA box CSV; the 8th is the person id (annotations), the
# detector or action score (person boxes, predictions).
ANNOTATION_COLUMNS = [*KEY_COLUMNS, *BOX_COLUMNS, "action_id", "person_id"]
PREDICTION_COLUMNS = [*KEY_COLUMNS, *BOX_COLUMNS, "action_id", "score"]
# The action id of a person box that carries no action (AVA's ``ava_*_predicted_boxes.csv``).
NO_ACTION = -1


def to_pixels(norm_boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised ``(K, 4)`` x1 y1 x2 y2 in ``[0, 1]`` -> ``(K, 4)`` float32 pixels of a
    ``width x height`` image, clipped to ``[0, W-1] x [0, H-1]``."""
    boxes = np.asarray(norm_boxes, dtype=np.float32).reshape(-1, 4)
    return clip_to_image(boxes * np.array([width, height, width, height], np.float32),
                         width, height)


def to_normalised(pixel_boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel ``(K, 4)`` x1 y1 x2 y2 of a ``width x height`` image -> ``(K, 4)`` float64
    fractions of the width and height, clipped to ``[0, 1]``."""
    boxes = np.asarray(pixel_boxes, dtype=np.float64).reshape(-1, 4)
    scale = np.array([width, height, width, height], np.float64)
    return np.clip(boxes / scale, 0.0, 1.0)


def clip_to_image(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(K, 4)`` pixel boxes clipped to ``[0, W-1] x [0, H-1]`` (a new float32 array)."""
    out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width - 1)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height - 1)
    return out


def _areas(boxes: np.ndarray) -> np.ndarray:
    return np.prod(np.clip(boxes[..., 2:] - boxes[..., :2], 0, None), axis=-1)


def _ratio(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M)`` of ``(N, 4)`` and ``(M, 4)`` x1 y1 x2 y2 boxes (one unit for
    both); 0 where both boxes are empty."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = _areas(a)[:, None] + _areas(b)[None, :] - inter
    return _ratio(inter, union)


def paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``(N,)`` of row-aligned box pairs ``a[i]``, ``b[i]`` (``(N, 4)`` each)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, :2], b[:, :2])
    rb = np.minimum(a[:, 2:], b[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    return _ratio(inter, _areas(a) + _areas(b) - inter)
