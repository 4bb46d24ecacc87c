"""The annotated video is legible whatever the input size: small frames are enlarged by a whole
factor and get each person's actions in a side panel; text is never smaller than FONT_SCALE."""

from __future__ import annotations

import numpy as np
import pytest

from avadet.detect.render import (
    FONT_SCALE,
    RENDER_SHORT_SIDE,
    RenderLayout,
    render_frame,
    track_colour,
)
from avadet.detect.results import KeyframeResult


@pytest.mark.parametrize("height,width,scale,panel", [
    (96, 128, 4, True),      # the demo's clips
    (256, 340, 2, True),     # AVA-sized test input
    (38, 70, 10, True),
    (480, 640, 1, False),
    (1080, 1920, 1, False),
])
def test_layout_enlarges_small_frames_and_keeps_big_ones(height, width, scale, panel):
    layout = RenderLayout.for_frames(height, width)
    assert layout.scale == scale
    assert min(height, width) * layout.scale >= RENDER_SHORT_SIDE
    assert (layout.panel_width > 0) == panel
    assert layout.size == (height * scale, width * scale + layout.panel_width)
    assert layout.font_scale >= FONT_SCALE
    assert layout.line_height >= 16  # lines of text never crowd into each other


def _keyframe(boxes, ids, classes=3):
    rows = np.linspace(0.2, 0.9, len(ids) * classes).reshape(len(ids), classes)
    return KeyframeResult(index=0, time=0.0, frame=0, boxes=np.array(boxes, float),
                          person_scores=np.ones(len(ids)), track_ids=np.array(ids),
                          action_scores=rows)


def _labels(row):
    return [f"fast_wave {row[0]:.2f}", f"hold_red {row[1]:.2f}", f"wear_hat {row[2]:.2f}"]


def _text_rows(region):
    """Row spans (top, bottom) of the bright text lines in a dark panel region."""
    bright = (region.max(axis=2) > 150).any(axis=1)
    spans, start = [], None
    for y, on in enumerate(bright):
        if on and start is None:
            start = y
        if not on and start is not None:
            spans.append((start, y))
            start = None
    return spans


def test_small_frame_gets_enlarged_boxes_and_a_panel_with_every_persons_actions():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 100, (96, 128, 3), dtype=np.uint8)  # dark: text and boxes stand out
    layout = RenderLayout.for_frames(96, 128)
    kf = _keyframe([[0.05, 0.1, 0.3, 0.9], [0.4, 0.1, 0.6, 0.9], [0.7, 0.1, 0.95, 0.9]], [3, 1, 2])
    out = render_frame(frame.copy(), kf, _labels, layout)
    assert out.shape == (*layout.size, 3)
    picture, panel = out[:, : 128 * 4], out[:, 128 * 4:]
    # Away from the boxes and their id tags, the picture is the input enlarged 4x, pixel for pixel.
    assert np.array_equal(picture[-8:, :], np.kron(frame[-2:], np.ones((4, 4, 1), np.uint8)))
    # Every person's box is drawn in their track colour on the picture, and their id heads a
    # block in the panel in the same colour.
    for tid in (1, 2, 3):
        colour = np.array(track_colour(tid))
        assert (np.abs(picture.astype(int) - colour).max(axis=2) == 0).sum() > 100
        assert (np.abs(panel.astype(int) - colour).max(axis=2) == 0).sum() > 50
    # 3 people x (id + 3 actions) lines, each at least 9 px tall (the label text of the old
    # renderer was about 5 px at 340x256 and absent below 160 px).
    spans = _text_rows(panel[:, 10:])
    assert len(spans) == 12
    assert min(b - a for a, b in spans) >= 7 and np.median([b - a for a, b in spans]) >= 9


def test_panel_says_how_many_people_did_not_fit():
    layout = RenderLayout.for_frames(96, 128)
    n = 30
    boxes = [[i / n, 0.1, (i + 0.8) / n, 0.9] for i in range(n)]
    out = render_frame(np.zeros((96, 128, 3), np.uint8), _keyframe(boxes, list(range(n))), _labels, layout)
    panel = out[:, 128 * 4:]
    spans = _text_rows(panel[:, 10:])
    assert spans[-1][1] < panel.shape[0]  # nothing drawn past the bottom
    # The last line is "+K more" in grey, not another person's colour.
    last = panel[spans[-1][0]:spans[-1][1], 6:]
    assert (np.abs(last.astype(int) - 200).max(axis=2) <= 30).sum() > 20


def test_large_frame_keeps_its_size_and_draws_labels_under_the_box():
    layout = RenderLayout.for_frames(480, 640)
    frame = np.zeros((480, 640, 3), np.uint8)
    out = render_frame(frame, _keyframe([[0.1, 0.1, 0.5, 0.9]], [7]), _labels, layout)
    assert out.shape == (480, 640, 3)
    tag = out[50:150, 66:320]  # under the box's top-left corner: id and 3 label lines
    assert len(_text_rows(np.where(tag == np.array(track_colour(7)), 0, tag))) >= 3
    assert np.array_equal(render_frame(frame.copy(), None, _labels, layout), frame)
