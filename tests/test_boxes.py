"""avadet.boxes: the one home of the box conventions."""

from __future__ import annotations

import numpy as np

from avadet.boxes import (
    ANNOTATION_COLUMNS,
    BOX_COLUMNS,
    KEY_COLUMNS,
    PREDICTION_COLUMNS,
    clip_to_image,
    paired_iou,
    pairwise_iou,
    to_normalised,
    to_pixels,
)


def test_the_columns_of_ava_files():
    assert KEY_COLUMNS + BOX_COLUMNS == ["video_id", "timestamp", "x1", "y1", "x2", "y2"]
    assert ANNOTATION_COLUMNS[-2:] == ["action_id", "person_id"]
    assert PREDICTION_COLUMNS[-2:] == ["action_id", "score"]


def test_to_pixels_scales_and_clips():
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.25, 0.5, 0.5, 0.75], [-0.01, 0.2, 1.01, 0.4]])
    np.testing.assert_allclose(
        to_pixels(boxes, 200, 100),
        [[0, 0, 199, 99], [50, 50, 100, 75], [0, 20, 199, 40]],
    )
    assert to_pixels(np.zeros((0, 4)), 10, 10).shape == (0, 4)


def test_clip_boxes_convention():
    np.testing.assert_array_equal(clip_to_image(np.array([[-5, -5, 50, 50]]), 20, 10), [[0, 0, 19, 9]])


def test_to_normalised_inverts_to_pixels_inside_the_image():
    boxes = np.array([[0.1, 0.2, 0.5, 0.75]])
    np.testing.assert_allclose(to_normalised(to_pixels(boxes, 200, 100), 200, 100), boxes,
                               atol=1e-6)
    np.testing.assert_array_equal(to_normalised([[-10, 0, 400, 50]], 200, 100), [[0, 0, 1, 0.5]])


def test_iou_matrix_and_pairs_agree_with_hand_computed_values():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], np.float64)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]], np.float64)
    expected = np.array([[1 / 7, 1, 0], [0, 0.25, 0]])
    np.testing.assert_allclose(pairwise_iou(a, b), expected)
    np.testing.assert_allclose(paired_iou(a, b[:2]), [1 / 7, 0.25])
    # two empty boxes: IoU 0, not NaN
    assert pairwise_iou([[1, 1, 1, 1]], [[1, 1, 1, 1]]).tolist() == [[0.0]]
    assert pairwise_iou(np.zeros((0, 4)), b).shape == (0, 3)
