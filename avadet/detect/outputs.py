"""What ``avadet detect`` writes: an AVA-format prediction CSV and a JSON summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pandas as pd

from avadet.boxes import BOX_COLUMNS, PREDICTION_COLUMNS
from avadet.detect.results import EDGE_RULE, ClipSampling, DetectResult
from avadet.io import LabelMap, atomic_write, write_ava_csv

PathLike = Union[str, Path]
_INTEGER_TOLERANCE = 1e-6
_PREDICTION_DTYPES = {"video_id": str, "timestamp": np.float64,
                      **dict.fromkeys(BOX_COLUMNS, np.float64), "action_id": np.int64,
                      "score": np.float64}


def top_actions(scores: np.ndarray, class_ids: list[int], k: int) -> list[tuple[int, float]]:
    """The ``k`` highest ``(class_id, score)`` of one ``(C,)`` score row (0: all), best first."""
    order = np.argsort(-scores, kind="stable")
    if k > 0:
        order = order[:k]
    return [(class_ids[j], float(scores[j])) for j in order]


def prediction_table(result: DetectResult, *, timestamp_offset: float = 0.0,
                     top_k: int = 0) -> pd.DataFrame:
    """One block of rows per (keyframe, person), keyframes in time order and persons by
    descending person score; within a block one row per class (``top_k`` > 0: the ``top_k``
    best, best first; 0: every class in the model's column order). Columns
    :data:`~avadet.boxes.PREDICTION_COLUMNS` (``video_id timestamp x1 y1 x2 y2 action_id
    score``); ``timestamp`` is ``offset + t`` seconds."""
    class_ids = np.asarray(result.class_ids, np.int64)
    parts = []
    for kf in result.keyframes:
        k, c = kf.action_scores.shape
        if k == 0:
            continue
        if top_k > 0:
            cols = np.argsort(-kf.action_scores, axis=1, kind="stable")[:, : min(top_k, c)]
        else:
            cols = np.tile(np.arange(c), (k, 1))
        n = cols.shape[1]
        person = np.repeat(np.arange(k), n)
        parts.append(pd.DataFrame({
            "video_id": result.video_id,
            "timestamp": timestamp_offset + kf.time,
            **dict(zip(BOX_COLUMNS, kf.boxes[person].astype(np.float64).T)),
            "action_id": class_ids[cols.reshape(-1)],
            "score": kf.action_scores[person, cols.reshape(-1)].astype(np.float64),
        }, columns=PREDICTION_COLUMNS))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=_PREDICTION_DTYPES[c]) for c in PREDICTION_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def write_predictions_csv(path: PathLike, table: pd.DataFrame) -> Path:
    """Write the table as AVA rows (atomically). Integer-second timestamps are written as AVA
    writes them (``%04d``, readable by ``avadet eval``); others (``--interval 0.5``) with 3
    decimals."""
    stamps = table["timestamp"].to_numpy(np.float64)
    if np.all(np.abs(stamps - np.round(stamps)) < _INTEGER_TOLERANCE):
        write_ava_csv(path, table.assign(timestamp=np.round(stamps).astype(np.int64)), "score")
        return Path(path)
    out = table.copy()
    out["timestamp"] = table["timestamp"].map("{:.3f}".format)
    for name in (*BOX_COLUMNS, "score"):
        out[name] = table[name].map("{:.6g}".format)
    with atomic_write(path) as handle:
        out.to_csv(handle, header=False, index=False)
    return Path(path)


def sampling_summary(sampling: ClipSampling) -> dict[str, Any]:
    """The JSON record of how clips were taken from the video: the model's training rate and
    the video's rate, the clip's frames and stride (in frames of the training rate), the
    seconds from its first frame to its last, and the rule that maps its times to frames."""
    return {
        "trained_fps": sampling.trained_fps,
        "input_fps": sampling.input_fps,
        "num_frames": sampling.num_frames,
        "sampling_rate": sampling.sampling_rate,
        "clip_span_s": round(sampling.span_s, 6),
        "edge_rule": EDGE_RULE,
    }


def summary(
    result: DetectResult,
    *,
    labelmap: Optional[LabelMap],
    timestamp_offset: float,
    show_top: int,
    extra: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """The JSON document: the video, how clips were sampled (:func:`sampling_summary`), and
    per keyframe its centre frame, the input frames of its clip (``clip_frames``; their times
    are ``frame / fps``) and per person the track id, box, person score and top actions
    (names from ``labelmap`` where it has the id)."""
    names = labelmap.names if labelmap is not None else {}
    keyframes = []
    for kf in result.keyframes:
        people = []
        for i in range(len(kf.boxes)):
            people.append({
                "track_id": int(kf.track_ids[i]),
                "box": [round(float(v), 5) for v in kf.boxes[i]],
                "person_score": round(float(kf.person_scores[i]), 5),
                "actions": [
                    {"id": cid, "name": names.get(cid, str(cid)), "score": round(sc, 5)}
                    for cid, sc in top_actions(kf.action_scores[i], result.class_ids, show_top)
                ],
            })
        keyframes.append({"time": round(kf.time, 6), "timestamp": round(timestamp_offset + kf.time, 6),
                          "frame": kf.frame, "clip_frames": [int(j) for j in kf.clip_frames],
                          "persons": people})
    doc = {
        "video": str(result.video),
        "video_id": result.video_id,
        "fps": result.fps,
        "num_frames": result.num_frames,
        "width": result.width,
        "height": result.height,
        "timestamp_offset": timestamp_offset,
        "class_ids": result.class_ids,
        "class_names": {str(c): names.get(c, str(c)) for c in result.class_ids},
        "annotated_video": str(result.annotated_video) if result.annotated_video else None,
        "sampling": None if result.sampling is None else sampling_summary(result.sampling),
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
        **(extra or {}),
        "keyframes": keyframes,
    }
    return doc


def write_json(path: PathLike, doc: dict[str, Any]) -> Path:
    with atomic_write(path) as handle:
        json.dump(doc, handle, indent=1)
        handle.write("\n")
    return Path(path)
