"""Read a prediction file in pieces, keeping only what a capped protocol can evaluate.

The official reader keeps at most 50 rows per keyframe while it reads (a min-heap per
keyframe); :func:`read_capped_predictions` does the same a piece at a time, so that a
14-million-row file never sits in memory whole: about 3 million rows survive at AVA-val
scale.

Why the result is exactly that of capping the whole file (:func:`heap_cap_mask` over every
row): the heap is a streaming process whose state after a prefix of the file is the set of
rows it holds. Continuing from that state with the next piece gives the same heap as
starting from an empty heap, pushing the held rows (there are at most ``capacity`` of them,
so every one is pushed and none evicted) and then the piece. So each keyframe's survivors so
far, in file order, followed by the piece's rows, capped with :func:`heap_cap_mask`, give the
keyframe's survivors after the piece. File positions travel with the rows, so the tie rules
(file order up to the row that fills the heap with scores >= the 50th; identical tuples: the
later row stays) see the same order as on the whole file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd

from avadet.boxes import BOX_COLUMNS
from avadet.evaluation.heap_cap import heap_cap_mask
from avadet.evaluation.protocols import Protocol
from avadet.evaluation.tables import prediction_classes

PathLike = Union[str, Path]
# Keyframe code: video index * 2**32 + (timestamp + 2**31); the readers keep |timestamp|
# below 2**31.
_STAMP_SPAN = 2**32
_STAMP_OFFSET = 2**31


def _positions(known: pd.Index, values: np.ndarray, *, dtype) -> tuple[np.ndarray, pd.Index]:
    """``(N,)`` int64 position of each value in ``known``, and ``known`` grown by the values
    it lacked (in order of first appearance). Equal values come in runs (a file lists a
    keyframe's or a video's rows together), so one lookup per run."""
    starts = _run_starts(values)
    heads = values[starts]
    index = known.get_indexer(heads)
    unknown = index < 0
    if unknown.any():
        extra, uniques = pd.factorize(heads[unknown])
        index[unknown] = extra + len(known)
        known = known.append(pd.Index(uniques, dtype=dtype))
    return np.repeat(index.astype(np.int64), np.diff(np.r_[starts, len(values)])), known


class _Keyframes:
    """Dense ids for keyframes ``(video_id, timestamp)`` in order of first appearance."""

    def __init__(self) -> None:
        self.videos = pd.Index([], dtype=object)
        self.codes = pd.Index([], dtype=np.int64)

    def video_index(self, video_ids: np.ndarray) -> np.ndarray:
        """``(N,)`` int64 index of each video id (``(N,)`` object; new ids are added)."""
        # Files list a video's rows together: look up one id per run of equal ids.
        index, self.videos = _positions(self.videos, video_ids, dtype=object)
        return index

    def dense(self, video: np.ndarray, stamps: np.ndarray) -> np.ndarray:
        """``(N,)`` int64 dense keyframe id of each ``(video index, timestamp)`` (new
        keyframes are added)."""
        codes = video * _STAMP_SPAN + (stamps + _STAMP_OFFSET)
        index, self.codes = _positions(self.codes, codes, dtype=np.int64)
        return index

    def split(self, dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(video index, timestamp)`` int64 arrays of dense keyframe ids."""
        codes = self.codes.to_numpy()[dense]
        return codes // _STAMP_SPAN, codes % _STAMP_SPAN - _STAMP_OFFSET

    def __len__(self) -> int:
        return len(self.codes)


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Positions where a run of equal values starts (``(N,)`` in, ``(R,)`` int64 out)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, values[1:] != values[:-1]])


class _Block:
    """Surviving rows, each keyframe's in file order: parallel arrays ``key`` (dense keyframe id), ``pos``
    (file row), ``x1 y1 x2 y2``, ``action_id``, ``score``; ``alive`` marks the rows still
    held here (rows move out when their keyframe comes back in a later piece)."""

    def __init__(self, rows: dict[str, np.ndarray]):
        self.rows = rows
        self.alive: Optional[np.ndarray] = None  # None: all

    def pull(self, touched: np.ndarray) -> dict[str, np.ndarray]:
        """Remove and return the rows of keyframes where ``touched`` (bool per id) holds."""
        mask = touched[self.rows["key"]]
        if self.alive is None:
            self.alive = np.ones(len(mask), dtype=bool)
        mask &= self.alive
        self.alive &= ~mask
        return _take(self.rows, mask)

    def live(self) -> dict[str, np.ndarray]:
        return self.rows if self.alive is None else _take(self.rows, self.alive)


class _Piece:
    """The rows to cap next (each keyframe's in file order), without copying the piece's
    columns: first the carried survivors ``carried`` (gathered arrays), then the rows ``rows``
    of the piece's full-length columns ``source``. Both hold the fields of :class:`_Block`."""

    def __init__(self, carried: Optional[dict[str, np.ndarray]], source: dict[str, np.ndarray],
                 rows: np.ndarray):
        self.carried, self.source, self.rows = carried, source, rows
        self.split = 0 if carried is None else len(carried["key"])

    def column(self, name: str, index: Optional[np.ndarray] = None) -> np.ndarray:
        """Field ``name`` of every row (``index`` None) or of the rows ``index`` (ascending)."""
        ours = self.source[name]
        if index is None:
            mine = ours[self.rows]
            return mine if self.carried is None else np.concatenate([self.carried[name], mine])
        cut = np.searchsorted(index, self.split)
        mine = ours[self.rows[index[cut:] - self.split]]
        if self.carried is None:
            return mine
        return np.concatenate([self.carried[name][index[:cut]], mine])

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        """``(len(index), 4)`` ``x1, y1, x2, y2`` (the cap reads the boxes of tied rows only)."""
        order = np.argsort(index, kind="stable")
        boxes = np.empty((len(index), 4), dtype=np.float64)
        for i, name in enumerate(BOX_COLUMNS):
            boxes[order, i] = self.column(name, index[order])
        return boxes


class _CapStream:
    """Each keyframe's heap survivors so far, in blocks (each keyframe's rows in file order).

    A keyframe's survivors all live in one block (``home``); a new piece pulls the survivors
    of the keyframes it touches out of their blocks, caps them with its own rows and stores
    the result as a new block. In a file grouped by keyframe only the keyframe that straddles
    two pieces moves.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.blocks: list[_Block] = []
        self.home = np.zeros(0, dtype=np.int64)  # per dense keyframe id, -1: none yet
        self.dropped = 0

    def add(self, source: dict[str, np.ndarray], rows: np.ndarray, num_keyframes: int) -> None:
        """Cap the rows ``rows`` of a piece (``source``: its columns, the fields of
        :class:`_Block`; the piece comes after every earlier one in the file) together with
        the survivors of their keyframes."""
        if len(self.home) < num_keyframes:
            self.home = np.r_[self.home, np.full(num_keyframes - len(self.home), -1)]
        key = source["key"][rows]
        touched = np.zeros(num_keyframes, dtype=bool)
        touched[key] = True
        held = np.unique(self.home[touched])
        # Only the order within a keyframe matters to the cap: blocks from different pieces
        # hold different keyframes, so they are simply put one after the other.
        pulled = [self.blocks[b].pull(touched) for b in held[held >= 0]]
        piece = _Piece(_concat(pulled) if pulled else None, source, rows)
        keep = heap_cap_mask(piece.column("key"), piece.column("score"),
                             piece.column("action_id"), piece, self.capacity)
        kept = np.flatnonzero(keep)
        self.dropped += len(keep) - len(kept)
        self.blocks.append(_Block({name: piece.column(name, kept) for name in source}))
        self.home[touched] = len(self.blocks) - 1

    def survivors(self) -> dict[str, np.ndarray]:
        """Every surviving row, in file order (the blocks are freed)."""
        blocks, self.blocks = [b.live() for b in self.blocks], []
        blocks = [b for b in blocks if len(b["pos"])]
        if not blocks:
            return _empty_rows()
        rows = {}
        for name in list(blocks[0]):  # one column at a time: a single extra column in memory
            rows[name] = np.concatenate([b.pop(name) for b in blocks])
        pos = rows["pos"]
        if len(pos) > 1 and not (pos[1:] > pos[:-1]).all():
            order = np.argsort(pos, kind="stable")
            for name in rows:
                rows[name] = rows[name][order]
        return rows


def _take(rows: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[index] for name, values in rows.items()}


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _empty_rows() -> dict[str, np.ndarray]:
    rows = {name: np.zeros(0, dtype=np.float64) for name in ["score", *BOX_COLUMNS]}
    rows.update({name: np.zeros(0, dtype=np.int64) for name in ["key", "pos", "action_id"]})
    return rows


def read_capped_predictions(
    path: PathLike,
    class_ids: np.ndarray,
    exclusions: Optional[pd.DataFrame],
    proto: Protocol,
    *,
    chunk_rows: Optional[int] = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows of a prediction file that the evaluator would still hold after the cap.

    Applies, piece by piece, the steps of :func:`~avadet.evaluation.evaluate_frame_map` that
    come before the cap: the class filter, NaN scores, ``proto.min_score``, excluded
    keyframes (dropped whole: the cap works per keyframe), then ``proto.cap`` per keyframe.

    Args:
        path: prediction CSV (read with :func:`avadet.io.iter_predictions`: same checks and
            errors as :func:`avadet.io.read_predictions`).
        class_ids: ``(C,)`` sorted int64 evaluated class ids.
        exclusions: ``video_id, timestamp`` keyframes, or None.
        proto: a protocol with a cap.
        chunk_rows: rows read at a time (default :data:`avadet.io.ava_csv.PREDICTION_CHUNK_ROWS`).
    Returns:
        the surviving rows as :func:`~avadet.io.read_predictions` gives them (same columns
        and dtypes, file order, except ``video_id``: categorical), and the counts of the rows dropped on the way under the
        names of :attr:`EvalResult.counts`: ``pred_rows`` (every row of the file),
        ``pred_rows_other_classes``, ``pred_rows_nan_score``, ``pred_rows_low_score``,
        ``pred_rows_excluded``, ``pred_rows_over_cap``.
    """
    from avadet.io import iter_predictions
    from avadet.io.ava_csv import PREDICTION_CHUNK_ROWS

    if proto.cap is None:
        raise ValueError(f"protocol {proto.name!r} has no cap")
    keyframes = _Keyframes()
    excluded = np.zeros(0, dtype=np.int64)
    if exclusions is not None and len(exclusions):
        excluded = np.unique(keyframes.dense(
            keyframes.video_index(exclusions["video_id"].to_numpy(object)),
            exclusions["timestamp"].to_numpy(np.int64),
        ))
    counts = dict.fromkeys(["pred_rows", "pred_rows_other_classes", "pred_rows_nan_score",
                            "pred_rows_low_score", "pred_rows_excluded", "pred_rows_over_cap"], 0)
    stream = _CapStream(proto.cap)
    start = 0
    for chunk in iter_predictions(path, chunk_rows=chunk_rows or PREDICTION_CHUNK_ROWS):
        n = len(chunk)
        counts["pred_rows"] += n
        action = chunk["action_id"].to_numpy(np.int64)
        cls = prediction_classes(action, class_ids)
        score = chunk["score"].to_numpy(np.float64)
        in_class = cls >= 0
        finite = np.isfinite(score)
        counts["pred_rows_other_classes"] += int((~in_class).sum())
        counts["pred_rows_nan_score"] += int((in_class & ~finite).sum())
        keep = in_class & finite
        if proto.min_score is not None:
            high = score >= proto.min_score
            counts["pred_rows_low_score"] += int((keep & ~high).sum())
            keep &= high
        rows = np.flatnonzero(keep)
        key = np.full(n, -1, dtype=np.int64)
        key[rows] = keyframes.dense(
            keyframes.video_index(chunk["video_id"].to_numpy(object)[rows]),
            chunk["timestamp"].to_numpy(np.int64)[rows],
        )
        if len(excluded):
            out = np.isin(key[rows], excluded)
            counts["pred_rows_excluded"] += int(out.sum())
            rows = rows[~out]
        if len(rows):
            source = {"key": key, "pos": np.arange(start, start + n), "action_id": action,
                      "score": score}
            source.update({c: chunk[c].to_numpy(np.float64) for c in BOX_COLUMNS})
            stream.add(source, rows, len(keyframes))
            del source
        start += n
        del chunk
    counts["pred_rows_over_cap"] = stream.dropped
    kept = stream.survivors()
    video, stamps = keyframes.split(kept.pop("key"))
    del kept["pos"]
    # Categorical video ids: the evaluator looks each distinct id up once, not once a row.
    columns = {
        "video_id": pd.Categorical.from_codes(video, categories=keyframes.videos),
        "timestamp": stamps,
        **{c: kept.pop(c) for c in BOX_COLUMNS},
        "action_id": kept.pop("action_id"),
        "score": kept.pop("score"),
    }
    return pd.DataFrame(columns, copy=False), counts
