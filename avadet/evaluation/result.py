"""The result type of a frame-mAP evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class EvalResult:
    """The outcome of one frame-mAP evaluation.

    Attributes:
        map: mean AP over the classes that count (NaN when none does).
        per_class: AP per label-map class id, NaN for a class left out of the mean (no gt;
            under ``mmaction2`` also gt without detections).
        num_gt: gt instances per class (duplicates included) as the protocol counts them.
        num_pred: evaluated detections per class (after every filter, TP + FP).
        protocol: the protocol's name.
        class_names: id -> name from the label map.
        counts: rows read and dropped at each step (see
            :func:`avadet.evaluation.evaluate_frame_map`).
        warnings: human-readable notes about suspicious input (also in ``counts``).
        curves: per class ``(recall, precision)`` arrays in ranking order, when asked for.
    """

    map: float
    per_class: dict[int, float]
    num_gt: dict[int, int]
    num_pred: dict[int, int]
    protocol: str
    class_names: dict[int, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    curves: Optional[dict[int, tuple[np.ndarray, np.ndarray]]] = None

    def to_json(self) -> dict:
        """``{"mAP": float or None, "per_class": {"<id>": AP or None}}`` (fractions)."""

        def number(value: float) -> Optional[float]:
            return None if np.isnan(value) else float(value)

        return {
            "mAP": number(self.map),
            "per_class": {str(k): number(v) for k, v in sorted(self.per_class.items())},
        }
