"""Drawing detections on frames: a box per person in its track's colour, the track id and
the top actions with their scores, legible at any input size (:class:`RenderLayout`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from avadet.detect.results import KeyframeResult

# The annotated video is drawn at a legible scale whatever the input's size: frames are enlarged
# by a whole factor until their short side is at least RENDER_SHORT_SIDE, and text is drawn at
# FONT_SCALE (capitals about 10 px high) or larger on large frames.
RENDER_SHORT_SIDE = 360
FONT_SCALE = 0.5
# Inputs whose short side is below this get each person's actions in a side panel (on the
# frame the labels would cover the people, who are then only tens of pixels wide); larger ones
# get the labels under each box.
PANEL_BELOW = 360
PANEL_WIDTH = 232  # pixels at FONT_SCALE: "carry/hold (an object) 0.99" fits
_FONT = cv2.FONT_HERSHEY_SIMPLEX
# A person's ``(C,)`` action scores -> the text lines drawn under their id.
LabelsOf = Callable[[np.ndarray], list[str]]


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A distinct, bright RGB colour per track id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 180)
    hsv = np.uint8([[[hue, 220, 255]]])
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


@dataclass(frozen=True)
class RenderLayout:
    """How a video of ``(height, width)`` input frames is drawn: enlarged ``scale`` times,
    text at ``font_scale``, and a side panel of ``panel_width`` pixels on the right (0: the
    labels are drawn under each box)."""

    height: int
    width: int
    scale: int
    font_scale: float
    panel_width: int

    @classmethod
    def for_frames(cls, height: int, width: int) -> RenderLayout:
        short = min(height, width)
        scale = max(1, math.ceil(RENDER_SHORT_SIDE / max(short, 1)))
        font_scale = FONT_SCALE * max(1.0, short * scale / 720)
        panel = int(round(PANEL_WIDTH * font_scale / FONT_SCALE)) if short < PANEL_BELOW else 0
        return cls(height, width, scale, font_scale, panel + panel % 2)

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the drawn frames before :func:`pad_even`."""
        return self.height * self.scale, self.width * self.scale + self.panel_width

    @property
    def line_height(self) -> int:
        (_, th), base = cv2.getTextSize("Ag", _FONT, self.font_scale, 1)
        return th + base + 4


def _put(frame: np.ndarray, text: str, x: int, y: int, layout: RenderLayout,
         background: Optional[tuple[int, int, int]], colour=(0, 0, 0)) -> None:
    """``text`` with its baseline at ``y``, on a filled ``background`` box (None: none)."""
    (tw, th), base = cv2.getTextSize(text, _FONT, layout.font_scale, 1)
    if background is not None:
        cv2.rectangle(frame, (x, y - th - 2), (x + tw + 3, y + base), background, -1)
    cv2.putText(frame, text, (x + 1, y), _FONT, layout.font_scale, colour, 1, cv2.LINE_AA)


def _fit(text: str, width: int, layout: RenderLayout) -> str:
    """``text``, cut with ".." to fit ``width`` pixels."""
    while len(text) > 3 and cv2.getTextSize(text, _FONT, layout.font_scale, 1)[0][0] > width:
        text = text[:-3] + ".."
    return text


def draw_people(
    frame: np.ndarray,
    boxes: np.ndarray,
    track_ids: Sequence[int],
    labels: Sequence[Sequence[str]],
    layout: Optional[RenderLayout] = None,
) -> np.ndarray:
    """Draw people on ``frame`` (``(H, W, 3)`` uint8 RGB, already at ``layout``'s size without
    its panel; modified in place and returned): a box and the track id per person, and, when
    ``layout`` has no side panel, their ``labels`` under the id.

    Args:
        boxes: ``(K, 4)`` normalised x1 y1 x2 y2.
        track_ids: ``(K,)``.
        labels: per person the text lines under the id (e.g. ``"talk 0.83"``).
        layout: the drawing scale (default: for ``frame``'s own size, labels on the boxes).
    """
    height, width = frame.shape[:2]
    if layout is None:
        layout = dataclasses.replace(RenderLayout.for_frames(height, width), scale=1, panel_width=0)
    thick = max(1, int(round(2 * layout.font_scale / FONT_SCALE)))
    line = layout.line_height
    for box, tid, lines in zip(np.asarray(boxes).reshape(-1, 4), track_ids, labels):
        x1, y1, x2, y2 = (box * [width, height, width, height]).round().astype(int)
        colour = track_colour(int(tid))
        cv2.rectangle(frame, (x1, y1), (x2, y2), colour, thick)
        texts = [f"#{int(tid)}", *([] if layout.panel_width else lines)]
        y = max(y1 + line - 4, line - 4)
        for text in texts:
            _put(frame, _fit(text, max(width - x1 - 4, 24), layout), max(x1, 0), y, layout, colour)
            y += line
    return frame


def draw_panel(panel: np.ndarray, track_ids: Sequence[int], labels: Sequence[Sequence[str]],
               layout: RenderLayout) -> np.ndarray:
    """Fill ``panel`` (``(H, panel_width, 3)``, in place) with each person's id in their track
    colour and their action lines under it; what does not fit ends with a "+N more" line."""
    panel[:] = 32
    line = layout.line_height
    height, width = panel.shape[:2]
    y = line
    order = sorted(range(len(track_ids)), key=lambda i: int(track_ids[i]))
    for n, i in enumerate(order):
        block = 1 + len(labels[i])
        if y + (block - 1) * line > height - 4:
            _put(panel, f"+{len(order) - n} more", 6, min(y, height - 6), layout, None, (200, 200, 200))
            break
        _put(panel, f"#{int(track_ids[i])}", 6, y, layout, track_colour(int(track_ids[i])))
        y += line
        for text in labels[i]:
            _put(panel, _fit(text, width - 16, layout), 12, y, layout, None, (235, 235, 235))
            y += line
        y += line // 3
    return panel


def render_frame(frame: np.ndarray, keyframe: Optional[KeyframeResult],
                 labels_of: Optional[LabelsOf], layout: RenderLayout) -> np.ndarray:
    """The annotated picture of ``frame`` (``(H, W, 3)`` uint8 RGB, the input's size): enlarged
    by ``layout.scale``, ``keyframe``'s people drawn on it (None: nobody), each with the lines
    ``labels_of`` gives for their action scores (None: the id alone), in the side panel if the
    layout has one. A new ``layout.size`` array."""
    if layout.scale > 1:
        frame = cv2.resize(frame, (layout.width * layout.scale, layout.height * layout.scale),
                           interpolation=cv2.INTER_NEAREST)
    else:
        frame = np.ascontiguousarray(frame)
    if keyframe is not None:
        lines = ([labels_of(row) for row in keyframe.action_scores] if labels_of
                 else [[] for _ in keyframe.track_ids])
        ids = keyframe.track_ids.tolist()
        draw_people(frame, keyframe.boxes, ids, lines, layout)
    else:
        ids, lines = [], []
    if not layout.panel_width:
        return frame
    panel = np.empty((frame.shape[0], layout.panel_width, 3), np.uint8)
    draw_panel(panel, ids, lines, layout)
    return np.concatenate([frame, panel], axis=1)


def pad_even(frame: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` -> ``(H + H % 2, W + W % 2, 3)``: an odd size padded by one edge row /
    column, as yuv420p encoding needs even sizes."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
