"""Person boxes read from an AVA person-box CSV (PySlowFast's ``ava_*_predicted_boxes.csv``,
or a file written by ``avadet detect-persons``) instead of running a detector."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from avadet.boxes import BOX_COLUMNS, KEY_COLUMNS
from avadet.errors import AvadetError
from avadet.io import read_person_boxes
from avadet.persons.base import (
    MAX_PERSONS_PER_KEYFRAME,
    PersonBoxes,
    PersonDetector,
    empty_boxes,
)

logger = logging.getLogger(__name__)

# A keyframe time this close to an integer second is that CSV timestamp.
_TIME_TOLERANCE = 1e-6


class CsvPersonBoxes(PersonDetector):
    """Boxes of ``(video_id, timestamp)`` looked up in a person-box CSV.

    Timestamps in the file are integer seconds (AVA's); a keyframe whose time is not an
    integer, or that has no rows, has no boxes. ``min_score`` keeps rows with
    ``score >= min_score``; of a keyframe's rows the ``MAX_PERSONS_PER_KEYFRAME`` best
    scoring are kept (the number dropped is logged and in ``dropped``).
    """

    needs_keys = True

    def __init__(self, path: Union[str, Path], *, min_score: float = 0.0):
        self.path = Path(path)
        df = read_person_boxes(self.path, min_score=min_score)
        df = df.sort_values([*KEY_COLUMNS, "score"], ascending=[True, True, False],
                            kind="stable")
        self._boxes: dict[tuple[str, int], PersonBoxes] = {}
        coords = df[BOX_COLUMNS].to_numpy(np.float32)
        scores = df["score"].to_numpy(np.float32)
        keys = list(zip(df["video_id"].astype(str), df["timestamp"].astype(np.int64)))
        starts = np.flatnonzero([True] + [a != b for a, b in zip(keys[:-1], keys[1:])])
        bounds = np.append(starts, len(keys))
        self.dropped = 0
        crowded = 0
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            vid, t = keys[lo]
            # Rows are sorted by descending score within a keyframe: the first are the best.
            if hi - lo > MAX_PERSONS_PER_KEYFRAME:
                self.dropped += int(hi - lo - MAX_PERSONS_PER_KEYFRAME)
                crowded += 1
                hi = lo + MAX_PERSONS_PER_KEYFRAME
            self._boxes[(vid, int(t))] = PersonBoxes(coords[lo:hi], scores[lo:hi])
        if self.dropped:
            logger.warning("%s: %d boxes dropped: %d keyframes have more than %d, the best "
                           "scoring %d of each are kept", self.path, self.dropped, crowded,
                           MAX_PERSONS_PER_KEYFRAME, MAX_PERSONS_PER_KEYFRAME)
        self.video_ids = sorted({vid for vid, _ in self._boxes})

    def has_video(self, video_id: str) -> bool:
        return video_id in self.video_ids

    def boxes_at(self, video_id: str, timestamp: float) -> PersonBoxes:
        second = round(float(timestamp))
        if abs(float(timestamp) - second) > _TIME_TOLERANCE:
            return empty_boxes()
        return self._boxes.get((video_id, int(second)), empty_boxes())

    def detect(
        self,
        frames: Sequence[np.ndarray],
        keys: Optional[Sequence[tuple[str, float]]] = None,
    ) -> list[PersonBoxes]:
        if keys is None or len(keys) != len(frames):
            raise AvadetError(
                f"{self.path}: CSV person boxes are looked up by (video_id, timestamp); "
                "pass one key per frame"
            )
        return [self.boxes_at(vid, t) for vid, t in keys]

    def describe(self) -> str:
        return f"boxes from {self.path.name}"
