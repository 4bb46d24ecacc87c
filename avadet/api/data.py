"""Use cases on a dataset: check it before training, and put person boxes on its keyframes."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import pandas as pd
from tqdm import tqdm

from avadet.api._config import ConfigLike, as_config
from avadet.boxes import KEY_COLUMNS, NO_ACTION, PREDICTION_COLUMNS
from avadet.config import Config
from avadet.data import keyframe_to_frame_index
from avadet.engine.build import dataset_files
from avadet.errors import ConfigError
from avadet.io import read_annotations, write_ava_csv
from avadet.persons import PersonDetector

logger = logging.getLogger("avadet.persons")
PathLike = Union[str, Path]
KEYFRAME_CHOICES = ("all", "annotated")


def check_data(config: ConfigLike, overrides: Sequence[str] = (), *, full_scan: bool = False,
               sample: int = 8, workers: int = min(8, os.cpu_count() or 2),
               progress: bool = True):
    """The data doctor's report on the dataset ``config`` points at: every problem that would
    make training fail or silently degrade, with where, how many and how to fix it
    (:class:`~avadet.doctor.DoctorReport`; ``report.ok`` is False when one is an error).

    ``full_scan`` decodes every frame; otherwise folders are listed, headers read and
    ``sample`` frames per video decoded, by ``workers`` threads.
    """
    from avadet.doctor.checks import run_checks

    cfg = as_config(config, overrides)
    return run_checks(cfg, dataset_files(cfg.data), full_scan=full_scan, sample=sample,
                      workers=workers, progress=progress)


def split_keyframes(cfg: Config, split: str, which: str = "all") -> pd.DataFrame:
    """``video_id timestamp`` of the keyframes of ``split`` to detect people on.

    ``all``: every integer second from ``segment_start + 2`` to ``segment_end - 2`` (AVA's
    902..1798) of each video of the split; ``annotated``: the keyframes in the split's gt file.
    The split's videos are those of its gt file.
    """
    data = cfg.data
    if split not in ("train", "val"):
        raise ConfigError(f"unknown split {split!r} (use 'train' or 'val')")
    if which not in KEYFRAME_CHOICES:
        raise ConfigError(f"keyframes must be one of {KEYFRAME_CHOICES}, got {which!r}")
    gt = read_annotations(dataset_files(data).require(
        f"{split}_annotations", " (it lists the split's videos)"))
    if which == "annotated":
        keys = gt[KEY_COLUMNS].drop_duplicates()
    else:
        stamps = np.arange(int(np.ceil(data.segment_start)) + 2, int(np.floor(data.segment_end)) - 1)
        videos = pd.unique(gt["video_id"])
        keys = pd.DataFrame({"video_id": np.repeat(videos, len(stamps)),
                             "timestamp": np.tile(stamps, len(videos))})
    return keys.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)


def detect_persons(
    config: ConfigLike,
    detector: PersonDetector,
    out_path: PathLike,
    overrides: Sequence[str] = (),
    *,
    split: str = "val",
    keyframes: str = "all",
    progress: bool = True,
) -> pd.DataFrame:
    """Run ``detector`` on the centre frame of each keyframe of ``split`` and write the boxes
    to ``out_path`` atomically, as an AVA person-box CSV (PySlowFast's
    ``ava_val_predicted_boxes.csv`` layout: ``video_id,timestamp,x1,y1,x2,y2,-1,score``).
    Keyframes whose centre frame lies past a video's end are skipped (counted in the log).
    Returns the rows written."""
    cfg = as_config(config, overrides)
    keys = split_keyframes(cfg, split, keyframes)
    source = dataset_files(cfg.data).source()
    centres = keyframe_to_frame_index(keys["timestamp"].to_numpy(), fps=cfg.data.fps,
                                      segment_start=cfg.data.segment_start)
    counts = {vid: source.num_frames(vid) for vid in pd.unique(keys["video_id"])}
    inside = (centres >= 0) & (centres < keys["video_id"].map(counts).to_numpy())
    if (~inside).any():
        logger.warning("%d keyframes lie outside their video's frames and are skipped",
                       int((~inside).sum()))
    keys, centres = keys[inside].reset_index(drop=True), centres[inside]
    started = time.perf_counter()
    df = _detect_keyframes(detector, source, keys, centres, progress)
    write_ava_csv(out_path, df, "score")
    logger.info("%d boxes on %d keyframes in %.1f s -> %s", len(df), len(keys),
                time.perf_counter() - started, out_path)
    return df


def _detect_keyframes(detector: PersonDetector, source, keys: pd.DataFrame,
                      centres: np.ndarray, progress: bool) -> pd.DataFrame:
    batch = getattr(detector, "batch_size", 8)
    rows = []
    bar = tqdm(total=len(keys), desc="person boxes", unit="keyframe", disable=not progress)
    for lo in range(0, len(keys), batch):
        part = keys.iloc[lo : lo + batch]
        frames = [source.read(vid, [c])[0]
                  for vid, c in zip(part["video_id"], centres[lo : lo + batch])]
        found = detector.detect(frames, list(zip(part["video_id"], part["timestamp"].astype(float))))
        for vid, t, det in zip(part["video_id"], part["timestamp"], found):
            for box, score in zip(det.boxes, det.scores):
                rows.append((vid, int(t), *box.tolist(), NO_ACTION, float(score)))
        bar.update(len(part))
    bar.close()
    df = pd.DataFrame(rows, columns=PREDICTION_COLUMNS)
    return df.astype({"timestamp": np.int64, "action_id": np.int64, "score": np.float64})
