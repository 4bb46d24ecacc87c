"""The person-detector interface: frames in, normalised person boxes and scores out.

Every backend turns a list of ``(H, W, 3)`` uint8 RGB frames into one :class:`PersonBoxes`
per frame: ``boxes`` ``(K, 4)`` float32 AVA-normalised ``x1, y1, x2, y2`` in ``[0, 1]`` of that
frame, ``scores`` ``(K,)`` float32, sorted by descending score, at or above the detector's
threshold. A backend that reads boxes from a file rather than looking at the pixels (the CSV
backend) needs to know which keyframe each frame is: ``keys`` gives ``(video_id, timestamp)``
per frame; the image backends ignore it.
"""

from __future__ import annotations

import abc
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch


class PersonBoxes(NamedTuple):
    """``boxes`` ``(K, 4)`` float32 normalised x1 y1 x2 y2; ``scores`` ``(K,)`` float32."""

    boxes: np.ndarray
    scores: np.ndarray


# Person boxes scored on one keyframe at most. A crowded AVA keyframe has a few dozen people;
# the RoI head's work (and memory) grows with the boxes, and 200,000 of them ask for one
# tensor too large to allocate. The best-scoring ones are kept, and the drop is logged.
MAX_PERSONS_PER_KEYFRAME = 1000


def top_boxes(found: PersonBoxes, limit: int = MAX_PERSONS_PER_KEYFRAME) -> tuple[PersonBoxes, int]:
    """The ``limit`` best-scoring boxes of ``found`` (ties keep their order), and how many
    were dropped."""
    extra = len(found.scores) - limit
    if extra <= 0:
        return found, 0
    keep = np.sort(np.argsort(-found.scores, kind="stable")[:limit])
    return PersonBoxes(found.boxes[keep], found.scores[keep]), extra


def empty_boxes() -> PersonBoxes:
    return PersonBoxes(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


def normalise_boxes(
    pixel_boxes: np.ndarray, scores: np.ndarray, width: int, height: int, threshold: float
) -> PersonBoxes:
    """Pixel boxes of a ``width x height`` frame -> :class:`PersonBoxes`: divided by the frame
    size, clipped to ``[0, 1]``, boxes below ``threshold`` or of zero area dropped, sorted by
    descending score.

    Args:
        pixel_boxes: ``(K, 4)`` x1 y1 x2 y2 in pixels of the frame the detector saw.
        scores: ``(K,)``.
    """
    boxes = np.asarray(pixel_boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    boxes = np.clip(boxes / np.array([width, height, width, height], np.float32), 0.0, 1.0)
    keep = (scores >= threshold) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores = boxes[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    return PersonBoxes(boxes[order], scores[order])


class PersonDetector(abc.ABC):
    """Finds people in frames. Subclasses implement :meth:`detect`."""

    #: True when the detector reads boxes by keyframe (``keys`` required), not from pixels.
    needs_keys: bool = False

    @abc.abstractmethod
    def detect(
        self,
        frames: Sequence[np.ndarray],
        keys: Optional[Sequence[tuple[str, float]]] = None,
    ) -> list[PersonBoxes]:
        """One :class:`PersonBoxes` per frame of ``frames`` (each ``(H, W, 3)`` uint8 RGB)."""

    def describe(self) -> str:
        """One line for logs and benchmark tables."""
        return type(self).__name__


class BatchedPersonDetector(PersonDetector):
    """A detector that looks at pixels, ``batch_size`` frames per forward pass: subclasses
    implement :meth:`detect_batch`."""

    batch_size: int = 4

    def detect(
        self,
        frames: Sequence[np.ndarray],
        keys: Optional[Sequence[tuple[str, float]]] = None,
    ) -> list[PersonBoxes]:
        out: list[PersonBoxes] = []
        with torch.no_grad():
            for start in range(0, len(frames), self.batch_size):
                out += self.detect_batch(frames[start : start + self.batch_size])
        return out

    @abc.abstractmethod
    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[PersonBoxes]:
        """One :class:`PersonBoxes` per frame of a batch (each ``(H, W, 3)`` uint8 RGB)."""
