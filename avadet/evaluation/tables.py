"""The evaluator's input tables as arrays: required columns, class ids, keyframe codes.

Keyframes ``(video_id, timestamp)`` become one int64 code and classes an index into the
sorted label-map ids, so that every later filter is an ``np.isin`` or a gather.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import pandas as pd

from avadet.boxes import BOX_COLUMNS, KEY_COLUMNS

# The gt's 8th column (person id) is optional: it only orders gt boxes.
GT_COLUMNS = [*KEY_COLUMNS, *BOX_COLUMNS, "action_id"]


def require_columns(df: pd.DataFrame, name: str, needed: list[str]) -> None:
    """Raise :class:`avadet.errors.AvadetError` naming the columns of ``needed`` that the
    ``name`` table (e.g. "prediction") lacks."""
    missing = [c for c in needed if c not in df.columns]
    if missing:
        from avadet.errors import AvadetError

        raise AvadetError(f"{name} table lacks the columns {missing}")


def class_table(labelmap: object) -> tuple[np.ndarray, dict[int, str]]:
    """Sorted class ids ``(C,)`` int64 and id -> name, from a LabelMap, a mapping id -> name,
    or an iterable of ids."""
    names_attr = getattr(labelmap, "names", None)
    if isinstance(names_attr, Mapping):
        names = {int(k): str(v) for k, v in names_attr.items()}
    elif isinstance(labelmap, Mapping):
        names = {int(k): str(v) for k, v in labelmap.items()}
    else:
        names = {int(k): str(k) for k in labelmap}  # type: ignore[union-attr]
    return np.array(sorted(names), dtype=np.int64), names


def prediction_classes(actions: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """Class index of each prediction, -1 where its action is not an evaluated class.

    Args:
        actions: ``(N,)`` int64 action ids. class_ids: ``(C,)`` sorted int64.
    Returns:
        ``(N,)`` int32 or int64 indices into ``class_ids``.
    """
    num_classes = len(class_ids)
    a_min, a_max = (int(actions.min()), int(actions.max())) if len(actions) else (0, 0)
    top = max(a_max, int(class_ids[-1]) if num_classes else 0)
    if a_min >= 0 and top < 1_000_000:
        # One gather instead of a binary search per row; small dtypes: fewer pages to touch.
        lut = np.full(top + 1, -1, dtype=np.int32)
        lut[class_ids] = np.arange(num_classes)
        return lut[actions]
    # Odd ids (negative or huge): binary search.
    pos = np.minimum(np.searchsorted(class_ids, actions), max(num_classes - 1, 0))
    found = class_ids[pos] == actions if num_classes else np.zeros(len(actions), dtype=bool)
    return np.where(found, pos, -1)


def keyframe_codes(
    tables: list[Optional[pd.DataFrame]],
) -> list[Optional[np.ndarray]]:
    """One int64 code per row for ``(video_id, int(timestamp))``, shared by all tables.

    Video ids are compared verbatim. The small tables come first so that the big prediction
    table is looked up in a hash index once rather than concatenated.

    Returns:
        per table a ``(len(table),)`` int64 array, None for a table that is None.
    """
    present = [t for t in tables if t is not None]
    small = [t for t in present if len(t) <= 1_000_000] or present[:1]
    vocab = pd.Index(pd.unique(np.concatenate([t["video_id"].to_numpy(object) for t in small])))
    t_min = min((int(t["timestamp"].min()) for t in present if len(t)), default=0)
    t_max = max((int(t["timestamp"].max()) for t in present if len(t)), default=0)
    span = t_max - t_min + 1
    rows = sum(len(t) for t in present)
    stamp_vocab: Optional[np.ndarray] = None
    if span * max(rows, 1) >= 2**62:
        # Far-apart timestamps (in-memory tables; the readers cap them at 2**31): code each
        # timestamp by its rank so that video * span + stamp cannot overflow int64.
        stamp_vocab = np.unique(np.concatenate(
            [t["timestamp"].to_numpy(np.int64) for t in present]))
        t_min, span = 0, len(stamp_vocab)
    codes: list[Optional[np.ndarray]] = []
    for table in tables:
        if table is None:
            codes.append(None)
            continue
        video = vocab.get_indexer(table["video_id"])
        unknown = video < 0
        if unknown.any():
            extra, uniques = pd.factorize(table["video_id"].to_numpy(object)[unknown])
            video[unknown] = extra + len(vocab)
            vocab = vocab.append(pd.Index(uniques))
        stamps = table["timestamp"].to_numpy(np.int64)
        if stamp_vocab is not None:
            stamps = np.searchsorted(stamp_vocab, stamps)
        codes.append(video.astype(np.int64) * span + (stamps - t_min))
    return codes
