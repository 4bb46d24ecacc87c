"""Lenient reading of AVA's CSV files: every row is kept and classified, never a first-error
stop, so the doctor can count all the problems of a file at once.

The strict readers of :mod:`avadet.io` raise on the first bad row (what training needs); here
a file is split into lines, each line into fields (vectorised with pandas string methods),
and each problem becomes a boolean mask over the rows with the row's physical line number.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from avadet.boxes import BOX_COLUMNS, KEY_COLUMNS, paired_iou
from avadet.errors import FormatError

BOX = BOX_COLUMNS
KEY = KEY_COLUMNS


@dataclass
class RawTable:
    """The rows of an AVA CSV (``video_id, timestamp, x1, y1, x2, y2, action_id[, last]``).

    ``rows``: one row per non-blank line with columns ``video_id`` (str, verbatim),
    ``timestamp``, ``x1 y1 x2 y2``, ``action_id``, ``last`` (float64, NaN where empty or not a
    number), ``line`` (1-based line number) and ``fields`` (its number of fields).
    ``malformed``: rows that a strict reader rejects before looking at values (not 7 or 8
    fields, an empty required field, a non-number, a non-integer timestamp or action), with
    the reason in ``reasons``; ``header``: the first line looks like a header.
    """

    path: Path
    rows: pd.DataFrame
    malformed: np.ndarray
    reasons: np.ndarray  # (N,) object: why each malformed row is rejected ("" if it is not)
    header: bool
    data: bytes = b""
    offsets: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))

    @property
    def good(self) -> pd.DataFrame:
        """The rows that parse, with ``timestamp`` as int64."""
        good = self.rows[~self.malformed].copy()
        good["timestamp"] = good["timestamp"].astype(np.int64)
        return good

    def text(self, row: int) -> str:
        start, stop = self.offsets[row]
        return self.data[start:stop].decode("utf-8", errors="replace").rstrip("\r")

    def examples(self, mask: np.ndarray, limit: int = 5) -> list[str]:
        rows = np.flatnonzero(mask)[:limit]
        lines = self.rows["line"].to_numpy()
        return [f"{self.path}:{lines[r]}: {self.text(r)}" for r in rows]


_NAMES = [*KEY, *BOX, "action_id", "last", "extra"]


def _line_offsets(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``(L, 2)`` byte ranges of the lines of ``data`` and ``(L,)`` their comma counts."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(buf) and buf[-1] != 10:
        ends = np.append(ends, len(buf))
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    commas = np.concatenate([[0], np.cumsum(buf == 44)])
    return np.stack([starts, ends], 1), commas[ends] - commas[starts]


def read_raw_table(path: Path, *, action_required: bool = True) -> RawTable:
    """Read ``path`` leniently (see :class:`RawTable`). ``action_required``: gt files need an
    action id in column 7; person-box files may leave it empty.

    One C-engine ``pandas.read_csv`` with numeric columns does a clean file; a file with a
    non-number is read again as text and each field converted on its own.

    Raises:
        FormatError: the file cannot be read at all (missing, not text).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except OSError as exc:
        raise FormatError(path, f"cannot read: {exc}") from None
    offsets, commas = _line_offsets(data)
    lengths = offsets[:, 1] - offsets[:, 0]
    stripped = np.array([len(data[a:b].strip()) for a, b in offsets[lengths <= 2]])
    blank = np.zeros(len(offsets), dtype=bool)
    blank[np.flatnonzero(lengths <= 2)[stripped == 0] if len(stripped) else []] = True
    keep = ~blank
    offsets, fields = offsets[keep], commas[keep] + 1
    numbers = np.flatnonzero(keep) + 1
    if not len(offsets):
        empty = pd.DataFrame({n: pd.Series(dtype=np.float64) for n in _NAMES[1:7]})
        empty.insert(0, "video_id", pd.Series(dtype=str))
        empty = empty.assign(line=pd.Series(dtype=np.int64), fields=pd.Series(dtype=np.int64))
        return RawTable(path, empty, np.zeros(0, bool), np.zeros(0, object), False, data, offsets)
    body = b"\n".join(data[a:b] for a, b in offsets) if blank.any() else data
    frame, text = _parse_fields(path, body, offsets, fields, data)
    rows = pd.DataFrame({
        "video_id": frame["video_id"].astype(str).to_numpy(),
        **{n: frame[n].to_numpy(np.float64) for n in _NAMES[1:8]},
        "line": numbers,
        "fields": fields,
    })
    reasons = _reject_reasons(rows, text, fields, action_required)
    malformed = reasons != ""
    header = bool(malformed[0]) and bool(np.isnan(rows["timestamp"].to_numpy()[0]))
    return RawTable(path, rows, malformed, reasons, header, data, offsets)


def _parse_fields(path: Path, body: bytes, offsets: np.ndarray, fields: np.ndarray,
                  data: bytes) -> tuple[pd.DataFrame, Optional[pd.DataFrame]]:
    """The ``(L,)`` non-blank lines of ``body`` split into the columns of ``_NAMES``.

    Args:
        offsets: ``(L, 2)`` byte ranges of those lines in ``data``. fields: ``(L,)`` their
            field counts.
    Returns:
        the table with numeric columns as float64 (NaN where empty or not a number), and
        the same fields as text when some field is not a number (None for a clean file).
    """
    if any(f > len(_NAMES) for f in fields.tolist()):  # more fields than read_csv takes
        body = b"\n".join(b",".join(data[a:b].split(b",")[: len(_NAMES)]) for a, b in offsets)
    read = dict(header=None, names=_NAMES, engine="c", skip_blank_lines=False,
                keep_default_na=False, quoting=csv.QUOTE_NONE)
    try:
        frame = pd.read_csv(io.BytesIO(body), dtype={"video_id": str, "extra": str,
                                                     **{n: np.float64 for n in _NAMES[1:8]}},
                            na_values={n: [""] for n in _NAMES[1:8]}, **read)
        text = None
    except (ValueError, TypeError):
        text = pd.read_csv(io.BytesIO(body), dtype=str, **read)
        frame = text.copy()
        for name in _NAMES[1:8]:
            frame[name] = pd.to_numeric(text[name].str.strip(), errors="coerce")
    if len(frame) != len(offsets):  # cannot happen without quoting; never misalign lines
        raise FormatError(path, f"read {len(frame)} rows from {len(offsets)} lines")
    return frame, text


def _reject_reasons(rows: pd.DataFrame, text: Optional[pd.DataFrame], fields: np.ndarray,
                    action_required: bool) -> np.ndarray:
    """``(N,)`` object: why a strict reader rejects each row, the first reason found ("" for
    a row it accepts). ``text``: the fields as text, None when every field parsed."""
    reasons = np.full(len(rows), "", dtype=object)

    def reject(mask: np.ndarray, why: str) -> None:
        reasons[mask & (reasons == "")] = why

    def empty(name: str) -> np.ndarray:
        if text is None:
            return np.isnan(rows[name].to_numpy())
        return (text[name].str.strip() == "").to_numpy()

    # The box reader also takes 6-field rows (no action, score 1.0); gt rows need the action.
    fewest = 7 if action_required else 6
    reject((fields < fewest) | (fields > 8), f"expected {fewest} to 8 comma-separated fields"
           if fewest == 6 else "expected 7 or 8 comma-separated fields")
    reject(rows["video_id"].to_numpy() == "", "empty video id")
    for name in _NAMES[1:6]:
        reject(empty(name), f"empty {name}")
        reject(np.isnan(rows[name].to_numpy()), f"{name} is not a number")
    stamp = rows["timestamp"].to_numpy()
    reject(stamp != np.floor(stamp), "timestamp is not an integer")
    action = rows["action_id"].to_numpy()
    action_empty = empty("action_id")
    if action_required:
        reject(action_empty, "empty action id")
    reject(~action_empty & np.isnan(action), "action id is not a number")
    reject(~np.isnan(action) & (action != np.floor(action)), "action id is not an integer")
    reject(~empty("last") & np.isnan(rows["last"].to_numpy()), "column 8 is not a number")
    return reasons


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
    iou = paired_iou(pairs[BOX].to_numpy(np.float64),
                    pairs[[f"{c}_b" for c in BOX]].to_numpy(np.float64))
    best = pd.Series(iou).groupby(pairs["_i"].to_numpy()).max()
    out[best.index.to_numpy()] = best.to_numpy()
    return out
