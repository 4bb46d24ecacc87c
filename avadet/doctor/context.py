"""What the config points at: its files (a :class:`~avadet.data.DatasetFiles`, resolved once
by the caller) and the tables read from them.

Every path the doctor opens comes from :meth:`DataContext.path` or
:meth:`DataContext.media_root`, both read from that one description of the dataset's files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from avadet.config import Config
from avadet.data import DatasetFiles
from avadet.doctor.findings import Finding
from avadet.doctor.tables import BOX, KEY, RawTable, read_raw_table
from avadet.errors import FormatError
from avadet.io import LabelMap, read_exclusions, read_labelmap

SPLITS = ("train", "val")


@dataclass
class DataContext:
    """The config's files, resolved, and the tables read from them (None where absent).

    ``annotations[split]``: the lenient table of the split's gt file; ``gt[split]``: its rows
    that parse; ``labelmap``: the config's label map; ``class_ids``: the trained classes
    (``data.classes`` or the label map); ``exclusions[split]``: excluded keyframes.
    """

    cfg: Config
    files: DatasetFiles
    labelmap_path: Optional[Path] = None
    labelmap: Optional[LabelMap] = None
    class_ids: list[int] = field(default_factory=list)
    annotation_paths: dict[str, Optional[Path]] = field(default_factory=dict)
    annotations: dict[str, Optional[RawTable]] = field(default_factory=dict)
    gt: dict[str, pd.DataFrame] = field(default_factory=dict)
    exclusions: dict[str, pd.DataFrame] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def path(self, key: str) -> Optional[Path]:
        """The file of ``data.<key>`` (e.g. ``val_boxes``); None if unset."""
        return getattr(self.files, key)

    def media_root(self) -> Path:
        """The frames or videos folder, as ``data.source`` says (``.`` when unset)."""
        return self.files.media_dir


def _empty_gt() -> pd.DataFrame:
    return pd.DataFrame({"video_id": pd.Series(dtype=str), "timestamp": pd.Series(dtype=np.int64),
                         **{c: pd.Series(dtype=np.float64) for c in BOX},
                         "action_id": pd.Series(dtype=np.float64),
                         "last": pd.Series(dtype=np.float64)})


def load_context(cfg: Config, files: DatasetFiles) -> tuple[DataContext, list[Finding]]:
    """Read the label map, annotations and exclusions of ``files`` (the files of ``cfg``)."""
    ctx = DataContext(cfg, files)
    out = _load_labelmap(ctx)
    for split in SPLITS:
        out += _load_split(ctx, split)
    return ctx, out


def _load_labelmap(ctx: DataContext) -> list[Finding]:
    ctx.labelmap_path = ctx.path("labelmap")
    if ctx.labelmap_path is None:
        return [Finding("error", "labelmap.missing", "data.labelmap", 1,
                        "no label map configured", "set data.labelmap to a .pbtxt file")]
    try:
        ctx.labelmap = read_labelmap(ctx.labelmap_path)
    except FormatError as exc:
        fix = ("write the label map as item { name: \"...\" id: N } blocks"
               if ctx.labelmap_path.exists() else "point data.labelmap at an existing file")
        return [Finding("error", "labelmap.unreadable", exc.path, 1, exc.reason, fix, [str(exc)])]
    return []


def _load_split(ctx: DataContext, split: str) -> list[Finding]:
    """The split's annotation table (leniently) and its exclusions."""
    path = ctx.path(f"{split}_annotations")
    ctx.annotation_paths[split] = path
    ctx.annotations[split] = None
    ctx.gt[split] = _empty_gt()
    if path is None or not path.is_file():
        severity = "error" if split == "train" else "warning"
        effect = ("training cannot start" if split == "train"
                  else "there is no ground truth to evaluate against")
        return [Finding(severity, "annotations.missing", str(path or f"data.{split}_annotations"),
                        1, f"{split} annotation file not found: {effect}",
                        f"set data.{split}_annotations (relative to data.root) to the {split} CSV")]
    try:
        table = read_raw_table(path)
    except FormatError as exc:
        return [Finding("error", "annotations.unreadable", exc.path, 1, exc.reason,
                        "re-export the file as UTF-8 text")]
    ctx.annotations[split] = table
    ctx.gt[split] = table.good
    excl = ctx.path(f"{split}_exclusions")
    ctx.exclusions[split] = pd.DataFrame(columns=KEY)
    if excl is not None and excl.is_file():
        try:
            ctx.exclusions[split] = read_exclusions(excl)
        except FormatError as exc:
            return [Finding("error", "exclusions.malformed", exc.path, 1, exc.reason,
                            "exclusion files are video_id,timestamp rows without a header",
                            [str(exc)])]
    return []
