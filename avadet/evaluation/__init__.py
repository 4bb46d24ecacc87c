"""Frame-level mAP on AVA: the official protocol and its peers, vectorised.

Imports only :mod:`avadet.io` (files) and numpy/pandas: evaluation never depends on the
model, data or engine packages.
"""

from avadet.evaluation.ap import average_precision
from avadet.evaluation.frame_map import evaluate_files, evaluate_frame_map
from avadet.evaluation.heap_cap import heap_cap_mask
from avadet.evaluation.matching import match_detections
from avadet.evaluation.protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, get_protocol
from avadet.evaluation.result import EvalResult

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
