"""Drawing detections on frames: a box per person in its track's colour, the track id and
the top actions with their scores."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from avadet.detect.results import KeyframeResult

SMALL_FRAME = 160  # pixels: below this short side only the track id is written
# A person's ``(C,)`` action scores -> the text lines drawn under their id.
LabelsOf = Callable[[np.ndarray], list[str]]


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A distinct, bright RGB colour per track id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 180)
    hsv = np.uint8([[[hue, 220, 255]]])
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def draw_people(
    frame: np.ndarray,
    boxes: np.ndarray,
    track_ids: Sequence[int],
    labels: Sequence[Sequence[str]],
) -> np.ndarray:
    """Draw on ``frame`` (``(H, W, 3)`` uint8 RGB, modified in place and returned).

    Args:
        boxes: ``(K, 4)`` normalised x1 y1 x2 y2.
        track_ids: ``(K,)``.
        labels: per person the text lines under the id (e.g. ``"talk 0.83"``).
    """
    height, width = frame.shape[:2]
    if min(width, height) < SMALL_FRAME:
        labels = [[] for _ in track_ids]  # no room for text: the id alone
    scale = max(0.3, min(width, height) / 720)
    thick = max(1, int(round(2 * scale)))
    line = int(22 * scale) + 2
    for box, tid, lines in zip(np.asarray(boxes).reshape(-1, 4), track_ids, labels):
        x1, y1, x2, y2 = (box * [width, height, width, height]).round().astype(int)
        colour = track_colour(int(tid))
        cv2.rectangle(frame, (x1, y1), (x2, y2), colour, thick)
        texts = [f"#{int(tid)}", *lines]
        y = max(y1 + line - 4, line - 4)
        for text in texts:
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, 1)
            cv2.rectangle(frame, (x1, y - th - 3), (x1 + tw + 3, y + 3), colour, -1)
            cv2.putText(frame, text, (x1 + 1, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
                        (0, 0, 0), 1, cv2.LINE_AA)
            y += line
    return frame


def draw_keyframe(frame: np.ndarray, keyframe: KeyframeResult,
                  labels_of: Optional[LabelsOf]) -> np.ndarray:
    """Draw ``keyframe``'s people on ``frame`` (``(H, W, 3)`` uint8 RGB, in place), each with
    the lines ``labels_of`` gives for their action scores (None: the id alone)."""
    lines = ([labels_of(row) for row in keyframe.action_scores] if labels_of
             else [[] for _ in keyframe.track_ids])
    return draw_people(frame, keyframe.boxes, keyframe.track_ids.tolist(), lines)


def pad_even(frame: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` -> ``(H + H % 2, W + W % 2, 3)``: an odd size padded by one edge row /
    column, as yuv420p encoding needs even sizes."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
