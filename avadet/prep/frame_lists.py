"""PySlowFast frame lists: one row per extracted frame, read by PySlowFast and pytorchvideo.

Format (space separated, one header line)::

    original_vido_id video_id frame_id path labels
    -5KQ66BBWC4 0 0 -5KQ66BBWC4/-5KQ66BBWC4_000001.jpg ""

``video_id`` is the video's index in the list, ``frame_id`` the 0-based frame index, ``path``
is relative to the frames folder and ``labels`` is empty (AVA labels live in the annotation
CSVs). The misspelt ``original_vido_id`` is the published header, kept verbatim.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd

from avadet.errors import FormatError
from avadet.io import atomic_write

PathLike = Union[str, Path]
LOG = logging.getLogger(__name__)
HEADER = "original_vido_id video_id frame_id path labels"
DEFAULT_TEMPLATE = "{video_id}_{index:06d}.jpg"


def frame_list_text(
    video_ids: Sequence[str],
    frame_numbers: Sequence[np.ndarray],
    *,
    template: str = DEFAULT_TEMPLATE,
) -> str:
    """The text of a frame list.

    Args:
        video_ids: videos in list order (their position is the ``video_id`` column).
        frame_numbers: per video, the 1-based file numbers of its frames in order; row ``i``
            of a video gets ``frame_id = i`` (the loaders index frames by position).
        template: file name template with ``video_id`` and 1-based ``index``.
    """
    parts = [HEADER + "\n"]
    for position, (video_id, numbers) in enumerate(zip(video_ids, frame_numbers)):
        numbers = np.asarray(numbers, dtype=np.int64)
        if len(numbers) == 0:
            continue
        names = pd.Series([template.format(video_id=video_id, index=int(n)) for n in numbers])
        rows = (
            f"{video_id} {position} "
            + pd.Series(np.arange(len(numbers))).astype(str)
            + f" {video_id}/"
            + names
            + ' ""\n'
        )
        parts.append("".join(rows.tolist()))
    return "".join(parts)


def write_frame_list(
    path: PathLike,
    video_ids: Sequence[str],
    num_frames: Sequence[int],
    *,
    template: str = DEFAULT_TEMPLATE,
) -> Path:
    """Write a frame list atomically for videos with frames ``1..num_frames[i]``."""
    numbers = [np.arange(1, int(n) + 1) for n in num_frames]
    path = Path(path)
    with atomic_write(path) as handle:
        handle.write(frame_list_text(video_ids, numbers, template=template))
    return path


def _template_regex(template: str, video_id: str) -> re.Pattern:
    """A regex matching the template's file names for one video, capturing the index."""
    probe = template.format(video_id="\0VID\0", index=123456789)
    pattern = re.escape(probe).replace(re.escape("\0VID\0"), re.escape(video_id))
    return re.compile("^" + pattern.replace("123456789", r"(\d+)") + "$")


def list_frame_numbers(folder: PathLike, video_id: str, *, template: str = DEFAULT_TEMPLATE) -> np.ndarray:
    """Sorted 1-based numbers of the frame files of ``video_id`` in ``folder``."""
    regex = _template_regex(template, video_id)
    folder = Path(folder)
    if not folder.is_dir():
        return np.zeros(0, dtype=np.int64)
    numbers = [int(m.group(1)) for name in (e.name for e in _scandir(folder)) if (m := regex.match(name))]
    return np.sort(np.asarray(numbers, dtype=np.int64))


def _scandir(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return [e for e in entries if e.is_file()]


def split_video_ids(annotation_csv: PathLike) -> list[str]:
    """Distinct video ids of an AVA annotation CSV, in order of first appearance."""
    path = Path(annotation_csv)
    try:
        ids = pd.read_csv(path, header=None, usecols=[0], dtype=str, keep_default_na=False)[0]
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except pd.errors.EmptyDataError:
        return []
    return list(dict.fromkeys(ids.tolist()))


def make_frame_lists(
    frames_dir: PathLike,
    out_dir: PathLike,
    splits: dict[str, Sequence[str]],
    *,
    template: str = DEFAULT_TEMPLATE,
    expected_frames: Optional[int] = None,
) -> dict[str, Path]:
    """Write ``out_dir/<split>.csv`` frame lists from the frames on disk.

    Args:
        frames_dir: the ``frames/`` folder holding ``<video_id>/<file>`` per video.
        out_dir: where ``train.csv`` / ``val.csv`` (one per key of ``splits``) go.
        splits: split name -> video ids, in list order.
        template: frame file name template (1-based ``index``).
        expected_frames: warn for videos with another frame count (27,030 for AVA).
    Returns:
        split name -> path written. Videos without frames are left out with a warning; a
        video whose frame numbers have gaps is listed with a warning (loaders index frames by
        position, so a gap shifts every later frame).
    """
    frames_dir, out_dir = Path(frames_dir), Path(out_dir)
    written: dict[str, Path] = {}
    for split, video_ids in splits.items():
        kept, numbers = [], []
        for video_id in video_ids:
            found = list_frame_numbers(frames_dir / video_id, video_id, template=template)
            if len(found) == 0:
                LOG.warning("%s: no frames for video %s; left out of %s.csv",
                            frames_dir / video_id, video_id, split)
                continue
            if found[0] != 1 or found[-1] != len(found):
                LOG.warning("%s: frame numbers have gaps (%d files, last %d)",
                            frames_dir / video_id, len(found), found[-1])
            if expected_frames is not None and len(found) != expected_frames:
                LOG.warning("%s: %d frames, expected %d", frames_dir / video_id, len(found),
                            expected_frames)
            kept.append(video_id)
            numbers.append(found)
        path = out_dir / f"{split}.csv"
        with atomic_write(path) as handle:
            handle.write(frame_list_text(kept, numbers, template=template))
        written[split] = path
    return written
