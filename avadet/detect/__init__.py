"""Action detection on movie clips: keyframes of a video, person boxes on them, action scores
per box from a trained checkpoint, person ids by IoU linking, and the outputs (AVA CSV, JSON,
annotated video). The top layer with the engine: it may import persons, models,
engine.checkpoint, data and io; nothing below imports it."""

from avadet.detect.runner import ClipDetector, ClipSettings, DetectResult, KeyframeResult
from avadet.detect.tracking import IouTracker

__all__ = [
    "ClipDetector",
    "ClipSettings",
    "DetectResult",
    "IouTracker",
    "KeyframeResult",
]
