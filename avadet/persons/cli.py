"""``avadet detect-persons --config CFG --out BOXES.csv``: person boxes on a dataset's
keyframes, written as an AVA person-box CSV (the layout of PySlowFast's
``ava_val_predicted_boxes.csv``: ``video_id,timestamp,x1,y1,x2,y2,-1,score``)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Union

import numpy as np
import pandas as pd
from tqdm import tqdm

from avadet.config import Config, load_config, resolve_path
from avadet.errors import ConfigError
from avadet.persons import PersonDetector, add_detector_arguments, detector_from_args

logger = logging.getLogger(__name__)
KEYFRAME_CHOICES = ("all", "annotated")


def split_keyframes(cfg: Config, split: str, which: str = "all") -> pd.DataFrame:
    """``video_id timestamp`` of the keyframes to detect people on.

    ``all``: every integer second from ``segment_start + 2`` to ``segment_end - 2`` (AVA's
    902..1798) of each video of the split; ``annotated``: the keyframes in the split's gt file.
    The split's videos are those of its gt file.
    """
    from avadet.io import read_annotations

    data = cfg.data
    if split not in ("train", "val"):
        raise ConfigError(f"unknown split {split!r} (use 'train' or 'val')")
    ann = resolve_path(data.root, data.train_annotations if split == "train" else data.val_annotations)
    if ann is None or not ann.is_file():
        raise ConfigError(f"data.{split}_annotations: no such file {ann} (it lists the split's videos)")
    gt = read_annotations(ann)
    if which == "annotated":
        keys = gt[["video_id", "timestamp"]].drop_duplicates()
    elif which == "all":
        stamps = np.arange(int(np.ceil(data.segment_start)) + 2, int(np.floor(data.segment_end)) - 1)
        videos = pd.unique(gt["video_id"])
        keys = pd.DataFrame({"video_id": np.repeat(videos, len(stamps)),
                             "timestamp": np.tile(stamps, len(videos))})
    else:
        raise ConfigError(f"keyframes must be one of {KEYFRAME_CHOICES}, got {which!r}")
    return keys.sort_values(["video_id", "timestamp"], kind="stable").reset_index(drop=True)


def detect_dataset_persons(
    cfg: Config,
    detector: PersonDetector,
    out_path: Union[str, Path],
    *,
    split: str = "val",
    keyframes: str = "all",
    progress: bool = True,
) -> pd.DataFrame:
    """Run ``detector`` on the centre frame of each keyframe of ``split`` and write the boxes
    to ``out_path`` (atomically). Keyframes whose centre frame lies past a video's end are
    skipped (counted in the log). Returns the rows written."""
    from avadet.data import keyframe_to_frame_index
    from avadet.engine.build import dataset_files
    from avadet.io import write_ava_csv

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
    batch = getattr(detector, "batch_size", 8)
    rows = []
    started = time.perf_counter()
    bar = tqdm(total=len(keys), desc="person boxes", unit="keyframe", disable=not progress)
    for lo in range(0, len(keys), batch):
        part = keys.iloc[lo : lo + batch]
        frames = [source.read(vid, [c])[0] for vid, c in zip(part["video_id"], centres[lo : lo + batch])]
        found = detector.detect(frames, list(zip(part["video_id"], part["timestamp"].astype(float))))
        for vid, t, det in zip(part["video_id"], part["timestamp"], found):
            for box, score in zip(det.boxes, det.scores):
                rows.append((vid, int(t), *box.tolist(), -1, float(score)))
        bar.update(len(part))
    bar.close()
    df = pd.DataFrame(rows, columns=["video_id", "timestamp", "x1", "y1", "x2", "y2",
                                     "action_id", "score"])
    df = df.astype({"timestamp": np.int64, "action_id": np.int64, "score": np.float64})
    write_ava_csv(out_path, df, "score")
    logger.info("%d boxes on %d keyframes in %.1f s -> %s", len(df), len(keys),
                time.perf_counter() - started, out_path)
    return df


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="dataset config (YAML)")
    parser.add_argument("--out", required=True, help="person-box CSV to write")
    parser.add_argument("--split", default="val", choices=["train", "val"])
    parser.add_argument("--keyframes", default="all", choices=KEYFRAME_CHOICES,
                        help="all: every second of the segment (as AVA's box files); "
                             "annotated: the gt file's keyframes")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    add_detector_arguments(parser, default_threshold=0.5)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out.with_name(out.name + ".log"), mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger("avadet")
    package_logger.addHandler(handler)
    try:
        cfg = load_config(args.config, args.overrides)
        detector = detector_from_args(args, score_threshold=args.person_threshold,
                                      device=args.device)
        logger.info("detect-persons: %s split of %s, %s keyframes, %s, threshold %s",
                    args.split, args.config, args.keyframes, detector.describe(),
                    args.person_threshold)
        df = detect_dataset_persons(cfg, detector, out, split=args.split,
                                    keyframes=args.keyframes)
    finally:
        package_logger.removeHandler(handler)
        handler.close()
    print(f"wrote {len(df)} person boxes to {out} ({detector.describe()})")
    return 0
