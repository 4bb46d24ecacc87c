"""Turn a user's own box/label annotations into AVA's CSV and label map.

Two inputs:

- a **per-frame CSV** with a header naming its columns: ``video_id``, ``frame`` (0-based
  index in the video, at the video's own frame rate) or ``time`` (seconds), ``x1 y1 x2 y2``
  (pixels, or normalised with ``--normalized``), ``label`` (a class name or id) and,
  optionally, ``person_id`` and ``split``;
- a **CVAT "for video 1.1" XML** export: ``<track>`` elements of ``<box frame=... xtl ytl xbr
  ybr outside=...>``; the actions of a box are the track's label, or, for tracks labelled
  ``--person-label`` (default ``person``), the names of its boolean attributes that are
  ``true`` and the values of an attribute named ``action`` (``;``-separated for several).

AVA annotates one frame per second: a box belongs to keyframe ``t`` (integer seconds) when its
frame shows time ``t``, i.e. ``frame == floor(t * fps)``; boxes on the frames in between are
counted and left out. Output rows are ``video_id, segment_start + t, x1, y1, x2, y2,
action_id, person_id`` normalised to [0, 1] (clipped) and sorted, written atomically; a label
map is read (names must be in it) or written (new names get ids from ``--first-id``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd

from avadet.boxes import BOX_COLUMNS, KEY_COLUMNS
from avadet.errors import AvadetError, FormatError
from avadet.io import LabelMap, read_labelmap, write_ava_csv, write_labelmap
from avadet.prep.cut import VIDEO_EXTENSIONS
from avadet.prep.media import probe_video

PathLike = Union[str, Path]
BOX = BOX_COLUMNS


@dataclass
class ConversionResult:
    """What a conversion wrote and left out (``skipped_between_keyframes``: boxes on frames
    that show no integer second)."""

    rows: pd.DataFrame
    labelmap: LabelMap
    written: dict[str, Path]
    skipped_between_keyframes: int
    keyframes: int


class VideosNeeded(AvadetError):
    """The rows need each video's frame rate or size, and no videos folder was given."""


def _video_facts(videos_dir: Optional[Path], video_ids: Sequence[str]) -> dict[str, tuple[float, int, int]]:
    """``video_id -> (fps, width, height)`` from the video headers."""
    if videos_dir is None:
        raise VideosNeeded("frame numbers or pixel boxes need the videos folder for their "
                           "frame rate and size")
    out = {}
    for vid in video_ids:
        path = next((videos_dir / f"{vid}{ext}" for ext in VIDEO_EXTENSIONS
                     if (videos_dir / f"{vid}{ext}").is_file()), None)
        if path is None:
            raise AvadetError(f"{videos_dir}: no video {vid}.{{{'|'.join(e[1:] for e in VIDEO_EXTENSIONS)}}} "
                              "for the annotations of that video id")
        info = probe_video(path)
        out[vid] = (float(info.fps), int(info.width), int(info.height))
    return out


def read_box_csv(path: PathLike) -> pd.DataFrame:
    """The per-frame CSV as a DataFrame (header required; see the module doc)."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"video_id": str, "label": str, "split": str},
                         keep_default_na=False)
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise FormatError(path, f"cannot parse CSV: {exc}") from None
    df.columns = [str(c).strip() for c in df.columns]
    needed = ["video_id", *BOX, "label"]
    missing = [c for c in needed if c not in df.columns]
    if missing or not ({"frame", "time"} & set(df.columns)):
        raise FormatError(path, f"header must name video_id, frame or time, x1, y1, x2, y2, "
                          f"label[, person_id, split]; missing {missing or ['frame|time']}", 1)
    for name in [*BOX, *(c for c in ("frame", "time") if c in df.columns)]:
        values = pd.to_numeric(df[name], errors="coerce")
        if values.isna().any():
            row = int(np.argmax(values.isna().to_numpy()))
            raise FormatError(path, f"column '{name}' is not a number: {df[name].iloc[row]!r}",
                              line=row + 2)
        df[name] = values.astype(np.float64)
    return df


def read_cvat_video_xml(path: PathLike, *, video_id: Optional[str] = None,
                        person_label: str = "person") -> tuple[pd.DataFrame, tuple[int, int]]:
    """Boxes of a CVAT "for video 1.1" export as per-frame rows (pixels).

    Returns the rows (``video_id frame x1 y1 x2 y2 label person_id``, one per (box, action))
    and the frame size ``(width, height)`` from ``<original_size>``.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except ET.ParseError as exc:
        raise FormatError(path, f"not valid XML: {exc}", line=exc.position[0]) from None
    size = root.find("./meta/task/original_size")
    if size is None:
        size = root.find(".//original_size")
    if size is None:
        raise FormatError(path, "no <original_size> (export as 'CVAT for video 1.1')")
    width, height = int(size.findtext("width", "0")), int(size.findtext("height", "0"))
    if video_id is None:
        source = root.findtext("./meta/source") or root.findtext("./meta/task/source") or ""
        video_id = Path(source).stem or path.stem
    rows = []
    for track in root.iter("track"):
        label, person = track.get("label", ""), int(track.get("id", "-1"))
        for box in track.iter("box"):
            if box.get("outside", "0") == "1":
                continue
            actions = [label] if label != person_label else []
            for attr in box.iter("attribute"):
                name, value = attr.get("name", ""), (attr.text or "").strip()
                if name.lower() in ("action", "actions"):
                    actions += [v.strip() for v in value.split(";") if v.strip()]
                elif value.lower() == "true":
                    actions.append(name)
            coords = [float(box.get(k, "nan")) for k in ("xtl", "ytl", "xbr", "ybr")]
            for action in actions:
                rows.append((video_id, int(box.get("frame", "-1")), *coords, action, person))
    df = pd.DataFrame(rows, columns=["video_id", "frame", *BOX, "label", "person_id"])
    return df, (width, height)


def _label_ids(labels: pd.Series, labelmap: Optional[LabelMap], first_id: int,
               source: Path) -> tuple[np.ndarray, LabelMap]:
    names = labels.astype(str).str.strip()
    if labelmap is not None:
        by_name = {n: i for i, n in labelmap.names.items()}
        ids = names.map(lambda n: by_name.get(n, int(n) if n.lstrip("-").isdigit()
                                              and int(n) in labelmap else None))
        unknown = sorted(set(names[ids.isna()]))
        if unknown:
            raise FormatError(source, f"labels not in the label map: {unknown[:20]}")
        return ids.astype(np.int64).to_numpy(), labelmap
    new = sorted(set(names))
    mapping = {n: first_id + k for k, n in enumerate(new)}
    return names.map(mapping).astype(np.int64).to_numpy(), LabelMap({i: n for n, i in mapping.items()})


def _keyframe_seconds(df: pd.DataFrame, facts: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` whole seconds of each row and whether the row is on that keyframe's frame."""
    if "time" in df.columns:
        seconds = df["time"].to_numpy(np.float64)
        # The frame shown at time t: keyframe rows are those at (almost) an integer second.
        rounded = np.round(seconds)
        return rounded, np.abs(seconds - rounded) < 1e-3
    fps = df["video_id"].map(lambda v: facts[v][0]).to_numpy(np.float64)
    frame = df["frame"].to_numpy(np.float64)
    rounded = np.round(frame / fps)
    return rounded, frame == np.floor(rounded * fps + 1e-6)


def _normalised_boxes(df: pd.DataFrame, facts: dict, source: Path, *, normalized: bool,
                      frame_size: Optional[tuple[int, int]]) -> np.ndarray:
    """``(N, 4)`` boxes in [0, 1]; an empty or inverted box is an error naming its line."""
    if normalized:
        scale = np.ones((len(df), 4))
    else:
        if frame_size is not None:
            w = np.full(len(df), float(frame_size[0]))
            h = np.full(len(df), float(frame_size[1]))
        else:
            w = df["video_id"].map(lambda v: facts[v][1]).to_numpy(np.float64)
            h = df["video_id"].map(lambda v: facts[v][2]).to_numpy(np.float64)
        scale = np.stack([w, h, w, h], 1)
    boxes = np.clip(df[BOX].to_numpy(np.float64) / scale, 0.0, 1.0)
    bad = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if bad.any():
        row = int(np.argmax(bad))
        raise FormatError(source, f"box {df[BOX].iloc[row].tolist()} is empty or inverted "
                          "(boxes are x1,y1,x2,y2: top-left and bottom-right corners)", row + 2)
    return boxes


def _write_splits(table: pd.DataFrame, out: PathLike) -> dict[str, Path]:
    """One AVA CSV per split (``out`` holds ``{split}``), or ``out`` alone without splits."""
    written: dict[str, Path] = {}
    if "split" not in table.columns:
        write_ava_csv(Path(out), table, "person_id")
        return {"all": Path(out)}
    if "{split}" not in str(out):
        raise AvadetError(f"the annotations have a split column: the output path must contain "
                          f"'{{split}}', got {out}")
    for split, part in table.groupby("split", sort=True):
        path = Path(str(out).format(split=split))
        write_ava_csv(path, part, "person_id")
        written[str(split)] = path
    return written


def convert_annotations(
    rows: pd.DataFrame,
    *,
    source: PathLike,
    out: PathLike,
    labelmap_path: PathLike,
    videos_dir: Optional[PathLike] = None,
    normalized: bool = False,
    segment_start: float = 0.0,
    first_id: int = 1,
    frame_size: Optional[tuple[int, int]] = None,
) -> ConversionResult:
    """Write AVA CSV(s) for per-frame ``rows`` (from :func:`read_box_csv` or
    :func:`read_cvat_video_xml`).

    Args:
        out: the AVA CSV; with a ``split`` column it must contain ``{split}`` and one file is
            written per split.
        labelmap_path: read if it exists (labels must be its names or ids), else written.
        videos_dir: the videos, for each one's frame rate (frame numbers) and size (pixels).
        normalized: the boxes are already in [0, 1].
        segment_start: added to the keyframe seconds (0 for whole videos).
        frame_size: ``(width, height)`` of every video (CVAT exports state it).
    """
    source = Path(source)
    if segment_start != int(segment_start):
        raise AvadetError(f"segment_start must be whole seconds (AVA keyframes are integer "
                          f"timestamps), got {segment_start}")
    df = rows.reset_index(drop=True).copy()
    df["video_id"] = df["video_id"].astype(str).str.strip()
    ids = sorted(df["video_id"].unique())
    need_videos = "frame" in df.columns and "time" not in df.columns
    need_size = not normalized and frame_size is None
    facts = (_video_facts(Path(videos_dir) if videos_dir else None, ids)
             if need_videos or need_size else {})
    rounded, on_key = _keyframe_seconds(df, facts)
    boxes = _normalised_boxes(df, facts, source, normalized=normalized, frame_size=frame_size)
    labelmap_path = Path(labelmap_path)
    existing = read_labelmap(labelmap_path) if labelmap_path.is_file() else None
    action, labelmap = _label_ids(df["label"], existing, first_id, source)
    person = (pd.to_numeric(df["person_id"], errors="coerce").fillna(-1).astype(np.int64).to_numpy()
              if "person_id" in df.columns else np.full(len(df), -1, np.int64))
    table = pd.DataFrame({
        "video_id": df["video_id"],
        "timestamp": (rounded + segment_start).astype(np.int64),
        **{c: np.round(boxes[:, j], 4) for j, c in enumerate(BOX)},
        "action_id": action,
        "person_id": person,
    })
    if "split" in df.columns:
        table["split"] = df["split"].astype(str).str.strip()
    table = table[on_key].drop_duplicates()
    table = table.sort_values([*KEY_COLUMNS, "person_id", "action_id"], kind="stable")
    written = _write_splits(table, out)
    if existing is None:
        write_labelmap(labelmap_path, labelmap)
    return ConversionResult(table, labelmap, written, int((~on_key).sum()),
                            int(table.drop_duplicates(KEY_COLUMNS).shape[0]))


# ---------------------------------------------------------------------------------------------
# Command line: avadet convert-annotations
