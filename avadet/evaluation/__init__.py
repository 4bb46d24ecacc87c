"""Frame-level mAP on AVA: the official protocol and its peers, vectorised.

Imports only :mod:`avadet.io` (files) and numpy/pandas: evaluation never depends on the
model, data or engine packages.
"""

from avadet.evaluation.frame_map import (
    EvalResult,
    average_precision,
    evaluate_files,
    evaluate_frame_map,
    heap_cap_mask,
    match_detections,
)
from avadet.evaluation.protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, get_protocol

__all__ = [
    "DEFAULT_PROTOCOL",
    "PROTOCOLS",
    "EvalResult",
    "Protocol",
    "average_precision",
    "evaluate_files",
    "evaluate_frame_map",
    "get_protocol",
    "heap_cap_mask",
    "match_detections",
]
