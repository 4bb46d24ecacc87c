"""Person ids across keyframes by IoU linking: a box takes the id of the box it overlaps
most on the previous keyframes (greedy, highest IoU first), or a new id."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avadet.boxes import pairwise_iou


@dataclass
class IouTracker:
    """Links the boxes of successive keyframes.

    Args:
        min_iou: a box continues a track only if their IoU is at least this.
        max_missed: a track not seen for more than this many keyframes is closed (so a person
            the detector misses once keeps their id).
    """

    min_iou: float = 0.3
    max_missed: int = 1
    _boxes: dict[int, np.ndarray] = field(default_factory=dict)  # track id -> last box
    _missed: dict[int, int] = field(default_factory=dict)
    _next_id: int = 0

    def update(self, boxes: np.ndarray) -> np.ndarray:
        """Track ids ``(K,)`` int64 for the ``(K, 4)`` boxes of the next keyframe."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        ids = np.full(len(boxes), -1, np.int64)
        tracks = list(self._boxes)
        if tracks and len(boxes):
            iou = pairwise_iou(boxes, np.stack([self._boxes[t] for t in tracks]))
            order = np.argsort(-iou, axis=None, kind="stable")
            used_box, used_track = set(), set()
            for flat in order:
                i, j = divmod(int(flat), len(tracks))
                if iou[i, j] < self.min_iou:
                    break
                if i in used_box or j in used_track:
                    continue
                ids[i] = tracks[j]
                used_box.add(i)
                used_track.add(j)
        for i in np.flatnonzero(ids < 0):
            ids[i] = self._next_id
            self._next_id += 1
        seen = set(ids.tolist())
        for t in tracks:
            if t not in seen:
                self._missed[t] = self._missed.get(t, 0) + 1
                if self._missed[t] > self.max_missed:
                    del self._boxes[t], self._missed[t]
        for i, t in enumerate(ids.tolist()):
            self._boxes[t] = boxes[i]
            self._missed[t] = 0
        return ids
