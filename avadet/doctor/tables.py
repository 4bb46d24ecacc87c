"""Lenient reading of AVA's CSV files: every row is kept and classified, never a first-error
stop, so the doctor can count all the problems of a file at once.

The strict readers of :mod:`avadet.io` raise on the first bad row (what training needs); here
a file is split into lines, each line into fields (vectorised with pandas string methods),
and each problem becomes a boolean mask over the rows with the row's physical line number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from avadet.errors import FormatError

BOX = ["x1", "y1", "x2", "y2"]
KEY = ["video_id", "timestamp"]


@dataclass
class RawTable:
    """The rows of an AVA CSV (``video_id, timestamp, x1, y1, x2, y2, action_id[, last]``).

    ``rows``: one row per non-blank line with columns ``video_id`` (str), ``timestamp``,
    ``x1 y1 x2 y2``, ``action_id``, ``last`` (float64, NaN where empty or not a number),
    ``line`` (1-based line number), ``text`` (the line), ``fields`` (its number of fields).
    ``malformed``: rows that a strict reader rejects before looking at values (not 7 or 8
    fields, an empty required field, a non-number, a non-integer timestamp or action);
    ``header``: the first line looks like a header (its numeric fields are not numbers).
    """

    path: Path
    rows: pd.DataFrame
    malformed: np.ndarray
    reasons: np.ndarray  # (N,) object: why each malformed row is rejected ("" if it is not)
    header: bool

    @property
    def good(self) -> pd.DataFrame:
        """The rows that parse, with ``timestamp`` and ``action_id`` as int64."""
        good = self.rows[~self.malformed].copy()
        good["timestamp"] = good["timestamp"].astype(np.int64)
        return good

    def examples(self, mask: np.ndarray, limit: int = 5) -> list[str]:
        picked = self.rows[mask].head(limit)
        return [f"{self.path}:{line}: {text}" for line, text in zip(picked["line"], picked["text"])]


def read_raw_table(path: Path, *, action_required: bool = True) -> RawTable:
    """Read ``path`` leniently (see :class:`RawTable`). ``action_required``: gt files need an
    action id in column 7; person-box files may leave it empty.

    Raises:
        FormatError: the file cannot be read at all (missing, not text).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(path, f"cannot read: {exc}") from None
    lines = pd.Series(text.split("\n"), dtype=object)
    lines = lines.str.rstrip("\r")
    numbers = np.arange(1, len(lines) + 1)
    keep = (lines.str.strip() != "").to_numpy()
    lines, numbers = lines[keep].reset_index(drop=True), numbers[keep]
    fields = (lines.str.count(",") + 1).to_numpy()
    parts = lines.str.split(",", n=8, expand=True) if len(lines) else pd.DataFrame()
    for j in range(9):
        if j not in parts.columns:
            parts[j] = None
    parts = parts.fillna("")

    def number(j: int) -> np.ndarray:
        return pd.to_numeric(parts[j].str.strip(), errors="coerce").to_numpy(np.float64)

    rows = pd.DataFrame({
        "video_id": parts[0].astype(str).str.strip().to_numpy(),
        "timestamp": number(1),
        **{name: number(j) for j, name in enumerate(BOX, start=2)},
        "action_id": number(6),
        "last": number(7),
        "line": numbers,
        "text": lines.to_numpy(),
        "fields": fields,
    })
    reasons = np.full(len(rows), "", dtype=object)

    def reject(mask: np.ndarray, why: str) -> None:
        new = mask & (reasons == "")
        reasons[new] = why

    reject((fields < 7) | (fields > 8), "expected 7 or 8 comma-separated fields")
    reject(rows["video_id"].to_numpy() == "", "empty video id")
    for j, name in ((1, "timestamp"), *((k, c) for k, c in enumerate(BOX, start=2))):
        raw = parts[j].str.strip().to_numpy()
        reject(raw == "", f"empty {name}")
        reject(np.isnan(rows[name].to_numpy()), f"{name} is not a number")
    stamp = rows["timestamp"].to_numpy()
    reject(stamp != np.floor(stamp), "timestamp is not an integer")
    action = rows["action_id"].to_numpy()
    raw_action = parts[6].str.strip().to_numpy()
    if action_required:
        reject(raw_action == "", "empty action id")
    reject((raw_action != "") & np.isnan(action), "action id is not a number")
    reject(~np.isnan(action) & (action != np.floor(action)), "action id is not an integer")
    raw_last = parts[7].str.strip().to_numpy()
    reject((raw_last != "") & np.isnan(rows["last"].to_numpy()), "column 8 is not a number")
    malformed = reasons != ""
    header = bool(len(rows)) and bool(malformed[0]) and bool(np.isnan(stamp[0]))
    return RawTable(path, rows, malformed, reasons, header)


def iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of row-aligned ``(N, 4)`` normalised ``x1 y1 x2 y2`` box pairs."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = union - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def best_iou(gt: pd.DataFrame, boxes: pd.DataFrame) -> np.ndarray:
    """For each row of ``gt`` (``video_id timestamp x1 y1 x2 y2``), the largest IoU with a
    row of ``boxes`` on the same keyframe (0 where the keyframe has none). ``(len(gt),)``."""
    out = np.zeros(len(gt), dtype=np.float64)
    if len(gt) == 0 or len(boxes) == 0:
        return out
    left = gt[KEY + BOX].reset_index(drop=True).assign(_i=np.arange(len(gt)))
    pairs = left.merge(boxes[KEY + BOX], on=KEY, suffixes=("", "_b"))
    if pairs.empty:
        return out
    iou = iou_pairs(pairs[BOX].to_numpy(np.float64),
                    pairs[[f"{c}_b" for c in BOX]].to_numpy(np.float64))
    best = pd.Series(iou).groupby(pairs["_i"].to_numpy()).max()
    out[best.index.to_numpy()] = best.to_numpy()
    return out
