"""AVA's CSV formats, read with pandas, vectorised and validated.

All files are header-less comma-separated rows ``video_id, timestamp, x1, y1, x2, y2,
action_id[, last]`` with boxes normalised to [0, 1]. The 8th column means different things:

============================  =====================================  ========================
file                          8th column                             reader
============================  =====================================  ========================
ground truth (train/val)      person id (absent: -1)                 :func:`read_annotations`
predictions                   score (absent: 1.0, the official rule) :func:`read_predictions`
person boxes (detector)       detector score; action is -1 or empty  :func:`read_person_boxes`
============================  =====================================  ========================

Readers return DataFrames with the columns ``video_id`` (str), ``timestamp`` (int64),
``x1 y1 x2 y2`` (float64) and ``action_id`` (int64) plus ``person_id`` (int64) or ``score``
(float64). ``902``, ``0902`` and ``902.0`` are the same keyframe. A malformed row raises
:class:`~avadet.errors.FormatError` naming the file, the line and what is wrong. The fast
path is one ``pandas.read_csv`` call; the file is scanned line by line only to put a line
number on an error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, NoReturn, Optional, Sequence, Union

import numpy as np
import pandas as pd

from avadet.boxes import BOX_COLUMNS, KEY_COLUMNS
from avadet.errors import FormatError
from avadet.io.atomic import atomic_write
from avadet.io.checks import check_readable, raise_utf8_error
from avadet.io.labelmap import LabelMap

PathLike = Union[str, Path]

_NUMERIC = ["timestamp", *BOX_COLUMNS, "action_id"]
# Boxes may poke out of [0, 1] by rounding in the released files; beyond this it is an error.
BOX_TOLERANCE = 0.01
# Integer columns are parsed as float64 and must be exact integers that also fit the int64
# arithmetic downstream (keyframe codes multiply timestamps by the number of videos):
# |value| < 2**31 holds every real timestamp (seconds), action id and person id.
INT_LIMIT = 2**31


def _physical_line(path: Path, row: int) -> int:
    """1-based line number of the ``row``-th non-blank line (pandas skips blank lines)."""
    seen = -1
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                seen += 1
                if seen == row:
                    return number
    return seen + 1


def _csv_options(last: str) -> dict:
    """``pandas.read_csv`` arguments for the 8 raw columns: numeric columns as float64 (NaN
    where a row is short), video ids verbatim (only an empty numeric field is missing)."""
    names = ["video_id", *_NUMERIC, last]
    dtypes = {name: np.float64 for name in names[1:]}
    dtypes["video_id"] = str
    return dict(
        header=None, names=names, dtype=dtypes, engine="c", skip_blank_lines=True,
        keep_default_na=False, na_values={name: [""] for name in names[1:]},
    )


def _empty_table(last: str) -> pd.DataFrame:
    options = _csv_options(last)
    return pd.DataFrame({n: pd.Series(dtype=options["dtype"][n]) for n in options["names"]})


def _read_table(path: Path, last: str) -> pd.DataFrame:
    """Read the 8 raw columns; numeric columns as float64 (NaN where a row is short)."""
    options = _csv_options(last)
    check_readable(path, "an AVA CSV file")
    try:
        return pd.read_csv(path, **options)
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except pd.errors.EmptyDataError:
        return _empty_table(last)
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            raise FormatError(
                path,
                f"expected at most {len(options['names'])} comma-separated columns, "
                f"found {match.group(3)}",
                line=int(match.group(2)),
            ) from None
        raise FormatError(path, f"cannot parse CSV: {_first_line(exc)}") from None
    except UnicodeDecodeError:
        raise_utf8_error(path)
        raise  # unreachable: raise_utf8_error always raises
    except (ValueError, TypeError):
        _raise_first_non_numeric(path, options["names"])
        raise  # unreachable: the diagnosis above always raises


def _first_line(exc: BaseException) -> str:
    """The first line of a library's message (pandas' parser errors span several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _raise_first_non_numeric(path: Path, names: list[str]) -> None:
    try:
        raw = pd.read_csv(path, header=None, names=names, dtype=str, keep_default_na=False)
    except UnicodeDecodeError:
        raise_utf8_error(path)  # pandas met the bad bytes only on this second reading
        raise  # unreachable
    first_bad: Optional[tuple[int, str, str]] = None
    for name in names[1:]:
        values = raw[name]
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna().to_numpy() & (values.str.strip() != "").to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            if first_bad is None or row < first_bad[0]:
                first_bad = (row, name, values.iloc[row])
    if first_bad is None:
        raise FormatError(path, "cannot parse the file as AVA CSV")
    row, name, value = first_bad
    hint = " (AVA files have no header line)" if row == 0 else ""
    raise FormatError(
        path, f"column '{name}' is not a number: {value!r}{hint}", line=_physical_line(path, row)
    )


def _fail_at(path: Path, mask: np.ndarray, reason: str, df: pd.DataFrame) -> None:
    if mask.any():
        row = int(np.argmax(mask))
        values = ",".join(
            str(v) for v in df.iloc[row][["video_id", *_NUMERIC]].tolist() if not pd.isna(v)
        )
        # A quoted field may hold a line break; the message stays one line.
        values = values.replace("\r", "\\r").replace("\n", "\\n")
        raise FormatError(path, f"{reason}: {values}", line=_physical_line(path, row))


def _require(df: pd.DataFrame, path: Path, columns: Sequence[str]) -> None:
    """Rows with missing fields (fewer than the 7 required columns, or an empty one)."""
    missing = _missing_text(df["video_id"])
    if missing.any():
        _fail_at(path, missing, "empty video id", df)
    for name in columns:
        missing = df[name].isna().to_numpy()
        _fail_at(path, missing, f"expected 7 or 8 columns; column '{name}' is missing or empty", df)


def _missing_text(column: pd.Series) -> np.ndarray:
    """``column.isna()`` as ``(N,)`` bool, for a text column whose values come in runs (a
    video's rows are together): each run of equal values is tested once. pandas' own test
    of a str column costs ~40 ns a row (~0.6 s on a 14-million-row prediction file); this,
    2-4x less."""
    values = column.to_numpy(object)
    if len(values) < 2:
        return pd.isna(values).astype(bool)
    try:
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    except (TypeError, ValueError):  # values whose comparison has no truth value (pd.NA)
        return column.isna().to_numpy()
    # Every value equals its run's first one, so it is missing exactly when that one is
    # (a missing value is NaN, None or NA: only None equals a neighbour, another None).
    return np.repeat(pd.isna(values[starts]).astype(bool), np.diff(np.r_[starts, len(values)]))


def _integral(df: pd.DataFrame, path: Path, name: str) -> np.ndarray:
    values = df[name].to_numpy()
    bad = values != np.floor(values)  # NaN and +-inf included
    _fail_at(path, bad, f"column '{name}' must be an integer", df)
    # Cast only what fits: 1e30 would become INT64_MIN.
    _fail_at(path, np.abs(values) >= INT_LIMIT,
             f"column '{name}' is out of range (|value| < 2**31)", df)
    return values.astype(np.int64)


def _looks_like_predictions(df: pd.DataFrame, path: Path) -> None:
    """A gt file whose 8th column holds fractions is most likely a prediction file given in
    its place (``avadet eval PRED GT``): say so rather than "person_id must be an integer"."""
    values = df["person_id"].to_numpy()
    fraction = (values != np.floor(values)) & ~np.isnan(values)
    if fraction.any() and ((values[fraction] > 0) & (values[fraction] < 1)).all():
        row = int(np.argmax(fraction))
        raise FormatError(
            path, "column 8 (person id) holds scores in (0, 1): this looks like a prediction "
            "file, not ground truth (are the gt and prediction files swapped?)",
            line=_physical_line(path, row),
        )


def _validate_boxes(df: pd.DataFrame, path: Path) -> None:
    x1, y1, x2, y2 = (df[c].to_numpy() for c in BOX_COLUMNS)
    lo, hi = -BOX_TOLERANCE, 1.0 + BOX_TOLERANCE
    outside = (x1 < lo) | (y1 < lo) | (x2 > hi) | (y2 > hi) | (x1 > hi) | (y1 > hi)
    outside |= (x2 < lo) | (y2 < lo)
    _fail_at(path, outside, "box outside the normalised range [0, 1]", df)
    _fail_at(path, x2 <= x1, "box has x2 <= x1", df)
    _fail_at(path, y2 <= y1, "box has y2 <= y1", df)


def _finish(df: pd.DataFrame, path: Path, last: str, default: float, integer: bool) -> pd.DataFrame:
    """Check the key and box columns, fill the optional 8th column, convert the types."""
    _require(df, path, _NUMERIC[:5])
    df["timestamp"] = _integral(df, path, "timestamp")
    df[last] = df[last].fillna(default)
    df[last] = _integral(df, path, last) if integer else df[last].astype(np.float64)
    df["video_id"] = df["video_id"].astype(str)
    return df


def read_annotations(
    path: PathLike, *, labelmap: Optional[LabelMap] = None, strict: bool = True
) -> pd.DataFrame:
    """Ground-truth annotations: one row per (box, action).

    Returns columns ``video_id, timestamp, x1, y1, x2, y2, action_id, person_id`` (person id
    -1 for 7-column rows). With ``strict`` every box must lie in [0, 1] (tolerance 0.01) with
    ``x2 > x1`` and ``y2 > y1``, and every action id must be in ``labelmap`` (when given).
    With ``strict=False`` (the official evaluator's reading) boxes are taken as they are and
    rows of actions outside ``labelmap`` are dropped.
    """
    path = Path(path)
    df = _read_table(path, "person_id")
    _require(df, path, ["action_id"])
    _looks_like_predictions(df, path)
    df = _finish(df, path, "person_id", -1, integer=True)
    df["action_id"] = _integral(df, path, "action_id")
    if strict:
        _validate_boxes(df, path)
        if labelmap is not None:
            unknown = ~np.isin(df["action_id"].to_numpy(), labelmap.ids)
            _fail_at(path, unknown, "action id not in the label map", df)
    elif labelmap is not None:
        df = df[np.isin(df["action_id"].to_numpy(), labelmap.ids)].reset_index(drop=True)
    return df


def read_predictions(path: PathLike, *, labelmap: Optional[LabelMap] = None) -> pd.DataFrame:
    """Detections: ``video_id, timestamp, x1, y1, x2, y2, action_id, score``.

    A 7-column row has score 1.0 (the official rule). Boxes are not validated: the protocol
    itself decides what an invalid box counts as. Rows of actions outside ``labelmap`` are
    dropped (the official class filter, applied at read time).
    """
    path = Path(path)
    df = _check_predictions(_read_table(path, "score"), path)
    if labelmap is not None:
        df = df[np.isin(df["action_id"].to_numpy(), labelmap.ids)].reset_index(drop=True)
    return df


def _check_predictions(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Validate and convert the raw prediction columns (see :func:`read_predictions`)."""
    _require(df, path, ["action_id"])
    df = _finish(df, path, "score", 1.0, integer=False)
    df["action_id"] = _integral(df, path, "action_id")
    # An infinite score wins every heap and sort comparison; the official code has no answer
    # for it (its heap reports "negative elements"). NaN stays: the evaluator counts and
    # ignores it with a warning.
    _fail_at(path, np.isinf(df["score"].to_numpy()), "score is infinite", df)
    return df


PREDICTION_CHUNK_ROWS = 1_000_000


def iter_predictions(
    path: PathLike, *, chunk_rows: int = PREDICTION_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """:func:`read_predictions` in pieces of at most ``chunk_rows`` rows, in file order.

    Each piece has the columns, dtypes and checks of :func:`read_predictions` (its index
    counts rows from the start of the file); an empty file gives one empty piece. Only one
    piece is held at a time, so a 14-million-row file can be reduced as it is read (the
    evaluator keeps 50 rows per keyframe). A malformed row raises the
    :class:`~avadet.errors.FormatError` that :func:`read_predictions` raises, with the same
    line number: the file is then read again whole to name it.
    """
    path = Path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    check_readable(path, "an AVA CSV file")
    try:
        reader = pd.read_csv(path, chunksize=chunk_rows, **_csv_options("score"))
    except pd.errors.EmptyDataError:
        yield _check_predictions(_empty_table("score"), path)
        return
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, TypeError) as exc:
        _raise_as_whole_file(path, exc)
    with reader:
        while True:
            try:
                chunk = next(reader, None)
                if chunk is None:
                    return
                # A chunk's row numbers are its own: a bad row is named from the whole file.
                chunk = _check_predictions(chunk, path)
            except (FormatError, pd.errors.ParserError, UnicodeDecodeError, ValueError,
                    TypeError) as exc:
                _raise_as_whole_file(path, exc)
            # Hand the piece over without keeping a reference here: the caller can free it
            # before asking for the next one.
            held = [chunk]
            del chunk
            yield held.pop()


def _raise_as_whole_file(path: Path, exc: BaseException) -> NoReturn:
    """Raise the error :func:`read_predictions` gives for ``path`` (which ``exc``, met in a
    piece of it, says is malformed)."""
    read_predictions(path)
    # Not reached unless the whole file reads cleanly where a piece did not.
    raise FormatError(path, f"cannot parse the file as AVA CSV: {_first_line(exc)}") from None


def read_person_boxes(
    path: PathLike, *, min_score: Optional[float] = None, keep_best: bool = False
) -> pd.DataFrame:
    """Person boxes from a detector: ``video_id, timestamp, x1, y1, x2, y2, score``.

    The files use the gt layout with the action column -1 or empty and the detector score in
    column 8 (a missing score reads as 1.0). Boxes are validated like gt boxes. One row per
    distinct box per keyframe (the highest score is kept); ``min_score`` keeps boxes with
    ``score >= min_score`` (PySlowFast's ``DETECTION_SCORE_THRESH``). ``keep_best``: a
    keyframe whose boxes all score below ``min_score`` keeps its best one(s) (MMAction2's
    ``min(person_det_score_thr, max score)``).
    """
    path = Path(path)
    df = _read_table(path, "score")
    df = _finish(df, path, "score", 1.0, integer=False)
    _fail_at(path, ~np.isfinite(df["score"].to_numpy()), "score is not a finite number", df)
    _validate_boxes(df, path)
    df = df.drop(columns=["action_id"])
    df = df.sort_values("score", ascending=False, kind="stable")
    df = df.drop_duplicates([*KEY_COLUMNS, *BOX_COLUMNS]).sort_index().reset_index(drop=True)
    if min_score is not None:
        threshold = np.full(len(df), min_score, dtype=np.float64)
        if keep_best:
            best = df.groupby(KEY_COLUMNS, sort=False)["score"].transform("max").to_numpy()
            threshold = np.minimum(threshold, best)
        df = df[df["score"].to_numpy() >= threshold].reset_index(drop=True)
    return df


def _column_count_error(path: Path, exc: Exception, expected: str) -> FormatError:
    """pandas' "Expected N fields in line L, saw M" as one line naming the file and line."""
    match = re.search(r"line (\d+), saw (\d+)", str(exc))
    line = int(match.group(1)) if match else None
    found = f", found {match.group(2)}" if match else ""
    return FormatError(path, f"expected {expected}{found}", line=line)


def read_exclusions(path: PathLike) -> pd.DataFrame:
    """Excluded keyframes: ``video_id, timestamp`` rows (AVA's excluded-timestamps CSV).

    Exactly 2 columns: a third one would shift every column (pandas would make the first its
    index) and silently lose every exclusion, so it is an error naming the line.
    """
    path = Path(path)
    check_readable(path, "an exclusions CSV file (video_id,timestamp)")
    names = ["video_id", "timestamp", "extra"]
    try:
        df = pd.read_csv(
            path, header=None, names=names, dtype=str, engine="c", skip_blank_lines=True,
            keep_default_na=False, na_values={name: [""] for name in names},
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame({"video_id": pd.Series(dtype=str), "timestamp": pd.Series(dtype=np.int64)})
    except UnicodeDecodeError:
        raise_utf8_error(path)
        raise  # unreachable
    except pd.errors.ParserError as exc:
        raise _column_count_error(path, exc, "2 columns: video_id,timestamp") from None
    extra = df["extra"].notna().to_numpy()
    if extra.any():
        row = int(np.argmax(extra))
        raise FormatError(path, "expected 2 columns: video_id,timestamp, found 3",
                          line=_physical_line(path, row))
    missing = (df["video_id"].isna() | df["timestamp"].isna()).to_numpy()
    if missing.any():
        raise FormatError(path, "expected 2 columns: video_id,timestamp; a field is empty",
                          line=_physical_line(path, int(np.argmax(missing))))
    stamps = pd.to_numeric(df["timestamp"], errors="coerce").to_numpy(np.float64)
    bad = np.isnan(stamps) | (stamps != np.floor(stamps)) | (np.abs(stamps) >= INT_LIMIT)
    if bad.any():
        row = int(np.argmax(bad))
        hint = " (exclusion files have no header line)" if row == 0 else ""
        raise FormatError(
            path,
            f"timestamp is not an integer below 2**31: {df['timestamp'].iloc[row]!r}{hint}",
            line=_physical_line(path, row),
        )
    return pd.DataFrame({"video_id": df["video_id"].astype(str), "timestamp": stamps.astype(np.int64)})


FRAME_LIST_COLUMNS = ["original_video_id", "video_index", "frame_index", "path", "labels"]


def read_frame_list(path: PathLike) -> pd.DataFrame:
    """PySlowFast frame list: a header line, then ``original_vido_id video_id frame_id path
    labels`` separated by spaces. Returns the columns :data:`FRAME_LIST_COLUMNS`."""
    path = Path(path)
    check_readable(path, "a frame list (space-separated, with a header line)")
    try:
        # All text: per-position dtypes fail inside pandas on a file with fewer columns.
        df = pd.read_csv(path, sep=" ", header=0, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise FormatError(path, "empty file: a frame list starts with a header line "
                          "(original_vido_id video_id frame_id path labels)") from None
    except UnicodeDecodeError:
        raise_utf8_error(path)
        raise  # unreachable
    except pd.errors.ParserError as exc:
        raise _column_count_error(path, exc, "5 space-separated columns") from None
    except ValueError as exc:
        raise FormatError(path, f"cannot parse the frame list: {_first_line(exc)}") from None
    if df.shape[1] != 5:
        raise FormatError(path, f"expected 5 space-separated columns, found {df.shape[1]}", 1)
    df.columns = FRAME_LIST_COLUMNS
    # pandas pads a short row with empty fields; only the labels may be empty.
    for name in ("original_video_id", "path"):
        empty = (df[name].str.strip() == "").to_numpy()
        if empty.any():
            raise FormatError(
                path, f"expected 5 space-separated columns; column '{name}' is missing or empty",
                line=_physical_line(path, int(np.argmax(empty)) + 1),
            )
    for name in ("video_index", "frame_index"):
        values = pd.to_numeric(df[name], errors="coerce")
        bad = (values.isna() | (values != np.floor(values)) | (values.abs() >= INT_LIMIT))
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise FormatError(
                path, f"column '{name}' is not an integer", line=_physical_line(path, row + 1)
            )
        df[name] = values.astype(np.int64)
    return df


def merge_box_labels(
    annotations: pd.DataFrame, class_ids: Sequence[int]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Merge the per-(box, action) rows of each box into one row with a multi-hot vector.

    Args:
        annotations: rows from :func:`read_annotations`.
        class_ids: the label ids in output column order.
    Returns:
        ``boxes``: one row per distinct ``(video_id, timestamp, x1, y1, x2, y2)`` in order of
        first appearance, with its ``person_id`` (the first row's); ``labels``: ``(N, C)``
        float32, ``labels[i, j] = 1`` when box ``i`` has action ``class_ids[j]``. A box whose
        actions are all outside ``class_ids`` keeps an all-zero row: the person is there.
    """
    keys = [*KEY_COLUMNS, *BOX_COLUMNS]
    group = annotations.groupby(keys, sort=False).ngroup().to_numpy()
    first = ~pd.Series(group).duplicated().to_numpy()
    boxes = annotations.loc[first, [*keys, "person_id"]].reset_index(drop=True)
    class_ids = np.asarray(class_ids, dtype=np.int64)
    order = np.argsort(class_ids, kind="stable")
    actions = annotations["action_id"].to_numpy()
    pos = np.searchsorted(class_ids[order], actions)
    pos = np.clip(pos, 0, max(len(class_ids) - 1, 0))
    known = (class_ids[order][pos] == actions) if len(class_ids) else np.zeros(len(actions), bool)
    labels = np.zeros((len(boxes), len(class_ids)), dtype=np.float32)
    labels[group[known], order[pos[known]]] = 1.0
    return boxes, labels


def write_ava_csv(path: PathLike, df: pd.DataFrame, value_column: Optional[str]) -> None:
    """Write AVA-format rows atomically (timestamps ``%04d``).

    ``df`` has ``video_id, timestamp, x1, y1, x2, y2, action_id`` and, unless
    ``value_column`` is None, an 8th column (``person_id`` or ``score``).
    """
    columns = [*KEY_COLUMNS, *BOX_COLUMNS, "action_id"]
    out = pd.DataFrame(
        {
            "video_id": df["video_id"].astype(str),
            "timestamp": df["timestamp"].astype(np.int64).map("{:04d}".format),
            **{c: df[c].astype(np.float64).map("{:.6g}".format) for c in BOX_COLUMNS},
            "action_id": df["action_id"].astype(np.int64),
        }
    )
    if value_column is not None:
        values = df[value_column]
        if np.issubdtype(values.dtype, np.integer):
            out[value_column] = values
        else:
            out[value_column] = values.astype(np.float64).map("{:.6g}".format)
        columns.append(value_column)
    with atomic_write(path) as handle:
        out[columns].to_csv(handle, header=False, index=False)
