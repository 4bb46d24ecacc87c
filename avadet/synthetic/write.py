"""Writing a dataset: the annotation and person-box tables, the media, the ready configs and
the metadata, and :func:`make_synthetic`, which puts them together atomically.

Boxes in the tables are AVA's normalised ``x1, y1, x2, y2`` (:mod:`avadet.boxes`), rounded
to 3 decimals like AVA's files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np
import pandas as pd
import yaml
from tqdm import tqdm

from avadet.boxes import ANNOTATION_COLUMNS, BOX_COLUMNS, KEY_COLUMNS, NO_ACTION
from avadet.config import load_config
from avadet.errors import AvadetError
from avadet.io import atomic_write, write_ava_csv
from avadet.io.atomic import publish_mode
from avadet.prep.frame_lists import write_frame_list
from avadet.prep.media import open_video_writer
from avadet.synthetic.plan import VideoPlan, keyframe_index, keyframe_timestamps, plan_dataset
from avadet.synthetic.render import actor_boxes, actor_tracks, make_background, render_frames
from avadet.synthetic.spec import (
    CLASS_BY_NAME,
    SyntheticSpec,
    dataset_classes,
    motion_class_ids,
    resolve_spec,
    slow_frame_offsets,
    slow_stride,
    synthetic_labelmap,
)

PathLike = Union[str, Path]
LOG = logging.getLogger(__name__)
GENERATOR_VERSION = 5  # bump whenever the output changes: old folders are then not reused
META_NAME = "synthetic_meta.json"
SPLITS = ("train", "val")


# ---------------------------------------------------------------------------------------------
# Annotation tables


def _round_boxes(boxes: np.ndarray) -> np.ndarray:
    """AVA writes boxes with 3 decimals."""
    return np.round(boxes, 3)


def annotation_table(plans: list[VideoPlan], spec: SyntheticSpec, split: str) -> pd.DataFrame:
    """Gt rows (:data:`avadet.boxes.ANNOTATION_COLUMNS`) for one split, one row per (box,
    action), sorted; excluded and empty keyframes have no rows."""
    stamps = keyframe_timestamps(spec)
    index = keyframe_index(stamps, spec)
    rows = []
    # Original class id -> the id written (classes left out of a custom label map are dropped).
    new_id = {CLASS_BY_NAME[c.name].id: c.id for c in dataset_classes(spec.label_ids)}
    for plan in (p for p in plans if p.split == split):
        keep = ~np.isin(stamps, plan.excluded_keyframes) & ~plan.hidden[index]
        for actor in plan.actors:
            tr = actor_tracks(actor, plan.hidden, spec)
            boxes = _round_boxes(actor_boxes(actor, tr, spec)[index])
            for t, box, ep in zip(stamps[keep], boxes[keep], tr.episode[index][keep]):
                for action in actor.labels_at(int(ep)):
                    if action in new_id:
                        rows.append((plan.video_id, int(t), *box.tolist(), new_id[action],
                                     actor.person_id))
    df = pd.DataFrame(rows, columns=ANNOTATION_COLUMNS)
    df = df.astype({"timestamp": np.int64, "action_id": np.int64, "person_id": np.int64})
    return df.sort_values([*KEY_COLUMNS, "person_id", "action_id"],
                          kind="stable").reset_index(drop=True)


def _detected_true_boxes(plan: VideoPlan, spec: SyntheticSpec, rng: np.random.Generator
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The visible actors' keyframe boxes as a detector sees them: some missed, the rest
    jittered by ``box_jitter`` of their size, scores mostly > 0.8. Returns ``(timestamps (D,),
    boxes (D, 4), scores (D,))``."""
    stamps = keyframe_timestamps(spec)
    index = keyframe_index(stamps, spec)
    times, boxes = [], []
    for actor in plan.actors:
        tr = actor_tracks(actor, plan.hidden, spec)
        visible = tr.visible[index]
        times.append(stamps[visible])
        boxes.append(actor_boxes(actor, tr, spec)[index][visible])
    times_all, boxes_all = np.concatenate(times), np.concatenate(boxes)
    kept = rng.random(len(times_all)) >= spec.miss_rate
    times_all, boxes_all = times_all[kept], boxes_all[kept]
    size = np.stack([boxes_all[:, 2] - boxes_all[:, 0], boxes_all[:, 3] - boxes_all[:, 1]] * 2, 1)
    jittered = boxes_all + rng.normal(0, spec.box_jitter, size.shape) * size
    return times_all, jittered, rng.beta(12.0, 1.0, len(times_all))


def _false_positives(spec: SyntheticSpec, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random person-shaped boxes, about ``false_positives_per_keyframe`` a keyframe, mostly
    low scores. Returns ``(timestamps (F,), boxes (F, 4), scores (F,))``."""
    stamps = keyframe_timestamps(spec)
    n_fp = rng.poisson(spec.false_positives_per_keyframe, len(stamps))
    fp_t = np.repeat(stamps, n_fp)
    w = rng.uniform(0.1, 0.3, len(fp_t))
    h = rng.uniform(0.3, 0.7, len(fp_t))
    x1 = rng.uniform(0, 1 - w)
    y1 = rng.uniform(0, 1 - h)
    return fp_t, np.stack([x1, y1, x1 + w, y1 + h], 1), rng.beta(1.3, 3.5, len(fp_t))


def predicted_boxes_table(plans: list[VideoPlan], spec: SyntheticSpec, split: str,
                          seed: int) -> pd.DataFrame:
    """Detector-like person boxes on every keyframe of ``split``: true boxes with jitter and
    misses (scores mostly > 0.8), plus false positives (scores mostly low). Columns
    :data:`avadet.boxes.PREDICTION_COLUMNS`, the action :data:`avadet.boxes.NO_ACTION`."""
    rng = np.random.default_rng([seed, 7, 0 if split == "train" else 1])
    parts = []
    for plan in (p for p in plans if p.split == split):
        det_t, det_boxes, det_scores = _detected_true_boxes(plan, spec, rng)
        fp_t, fp_boxes, fp_scores = _false_positives(spec, rng)
        parts.append(pd.DataFrame({
            "video_id": plan.video_id,
            "timestamp": np.concatenate([det_t, fp_t]),
            **dict(zip(BOX_COLUMNS, np.concatenate([det_boxes, fp_boxes]).T)),
            "score": np.concatenate([det_scores, fp_scores]),
        }))
    columns = [*KEY_COLUMNS, *BOX_COLUMNS, "score"]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {c: pd.Series(dtype=str if c == "video_id" else np.float64) for c in columns})
    # Clipped and rounded like AVA's files; a box rounded to zero size is widened to 0.001.
    boxes = _round_boxes(np.clip(df[BOX_COLUMNS].to_numpy(), 0.0, 1.0))
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 0.001)
    boxes = np.minimum(boxes, 1.0)
    df[BOX_COLUMNS] = boxes
    df = df[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    df["score"] = np.round(df["score"].to_numpy(), 4)
    df["action_id"] = np.int64(NO_ACTION)
    df["timestamp"] = df["timestamp"].astype(np.int64)
    return df.sort_values([*KEY_COLUMNS, "score"], ascending=[True, True, False],
                          kind="stable").reset_index(drop=True)


def write_annotations(plans: list[VideoPlan], spec: SyntheticSpec, root: Path, seed: int) -> None:
    """Every annotation file of the dataset under ``root/annotations``."""
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        write_ava_csv(ann / f"ava_{split}_v2.2.csv", annotation_table(plans, spec, split), "person_id")
        write_ava_csv(ann / f"ava_{split}_predicted_boxes.csv",
                      predicted_boxes_table(plans, spec, split, seed), "score")
        excluded = [(p.video_id, t) for p in plans if p.split == split for t in p.excluded_keyframes]
        with atomic_write(ann / f"ava_{split}_excluded_timestamps_v2.2.csv") as handle:
            handle.write("".join(f"{v},{t:04d}\n" for v, t in sorted(excluded)))
    with atomic_write(ann / "ava_action_list_v2.2.pbtxt") as handle:
        handle.write(synthetic_labelmap(label_ids=spec.label_ids).to_pbtxt())
    with atomic_write(ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt") as handle:
        handle.write(synthetic_labelmap(evaluated_only=True, label_ids=spec.label_ids).to_pbtxt())


# ---------------------------------------------------------------------------------------------
# Media


def _write_media(plan: VideoPlan, spec: SyntheticSpec, root: Path, chunk: int = 30) -> None:
    """Render one video ``chunk`` frames at a time (memory stays flat) into its mp4 and its
    JPEG folder, whichever the spec asks for."""
    rng = np.random.default_rng(plan.seed)
    background, margin = make_background(rng, spec)
    tracks = [actor_tracks(a, plan.hidden, spec) for a in plan.actors]
    frame_dir = root / "frames" / plan.video_id
    if spec.write_frames:
        frame_dir.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality]
    with contextlib.ExitStack() as stack:
        writer = None
        if spec.write_videos:
            writer = stack.enter_context(open_video_writer(
                root / "videos" / f"{plan.video_id}.mp4", width=spec.width, height=spec.height,
                fps=spec.fps, crf=spec.crf, gop=spec.fps))
        for start in range(0, plan.num_frames, chunk):
            stop = min(start + chunk, plan.num_frames)
            frames = render_frames(plan, tracks, spec, start, stop, background, margin, rng)
            if writer is not None:
                writer.write(frames)
            if spec.write_frames:
                for i, frame in enumerate(frames):
                    name = frame_dir / f"{plan.video_id}_{start + i + 1:06d}.jpg"
                    if not cv2.imwrite(str(name), frame[..., ::-1], params):
                        raise AvadetError(f"{name}: cannot write JPEG")


def _media_task(args: tuple[VideoPlan, SyntheticSpec, Path]) -> str:
    # Module level, so that spawned pool workers can import it.
    _write_media(*args)
    return args[0].video_id


def _write_all_media(plans: list[VideoPlan], spec: SyntheticSpec, root: Path, workers: int) -> None:
    tasks = [(plan, spec, root) for plan in plans]
    if workers <= 1 or len(plans) == 1:
        for task in tqdm(tasks, desc="synthetic videos", unit="video", disable=len(tasks) < 4):
            _media_task(task)
        return
    with multiprocessing.get_context("spawn").Pool(min(workers, len(plans))) as pool:
        for _ in tqdm(pool.imap_unordered(_media_task, tasks), total=len(tasks),
                      desc="synthetic videos", unit="video"):
            pass


# ---------------------------------------------------------------------------------------------
# Configs and metadata


def config_dict(spec: SyntheticSpec, root: PathLike, *, arch: str = "slowfast") -> dict:
    """The ``config.yaml`` settings for this dataset (``arch`` "slowfast" or "slow").

    The Slow-only baseline reads ``num_frames / alpha`` frames at ``tau`` frames apart, the
    same temporal resolution as the SlowFast model's Slow pathway.
    """
    short = min(spec.width, spec.height)
    evaluated = [c.id for c in dataset_classes(spec.label_ids) if c.evaluated]
    tau = slow_stride(spec)
    jitter = list(spec.train_jitter_scales) if any(spec.train_jitter_scales) else [short, int(round(short * 1.25))]
    data = {
        "root": str(Path(root).resolve()),
        # Read JPEG folders when they were written, else decode the videos.
        "source": "frames" if spec.write_frames or not spec.write_videos else "video",
        "classes": evaluated,
        "fps": float(spec.fps),
        "segment_start": float(spec.segment_start),
        "segment_end": float(spec.segment_start + spec.duration),
        "num_frames": spec.num_frames,
        "sampling_rate": spec.sampling_rate,
        "train_use_detections": False,
        "train_jitter_scales": jitter,
        "train_crop_size": spec.train_crop_size or short,
        "test_short_side": spec.test_short_side or short,
        "train_flip": True,
        # Colour jitter could blur the colour-defined classes; off for this benchmark.
        "train_color_jitter": False,
        "num_workers": spec.num_workers,
    }
    if arch == "slow":
        data["num_frames"] = spec.num_frames // spec.alpha
        data["sampling_rate"] = tau
    return {
        "data": data,
        "model": {
            "arch": arch,
            "depth": spec.depth,
            "width_per_group": spec.width_per_group,
            "alpha": spec.alpha,
            "beta_inv": spec.beta_inv,
            "num_classes": len(evaluated),
            "dropout": 0.3,
        },
        "solver": {
            "base_lr": spec.base_lr,
            "schedule": "cosine",
            "max_epoch": spec.max_epoch,
            "warmup_epochs": min(1.0, spec.max_epoch / 4),
            "warmup_start_lr": spec.base_lr / 10,
            "weight_decay": 1e-5,
            "batch_size": spec.batch_size,
            "precise_bn_batches": spec.precise_bn_batches,
        },
        "train": {"amp": False, "eval_every_epochs": 1.0, "log_every_iters": 5},
        "test": {"batch_size": spec.batch_size},
    }


def _meta(spec: SyntheticSpec, preset: str, seed: int, plans: list[VideoPlan]) -> dict:
    """The content of ``synthetic_meta.json`` (see :func:`load_meta`)."""
    tau = slow_stride(spec)
    fast, slow = slow_frame_offsets(spec.num_frames, spec.sampling_rate, spec.alpha)
    classes = dataset_classes(spec.label_ids)
    return {
        "generator_version": GENERATOR_VERSION,
        "preset": preset,
        "seed": seed,
        "spec": dataclasses.asdict(spec),
        "classes": [dataclasses.asdict(c) for c in classes],
        "evaluated_class_ids": [c.id for c in classes if c.evaluated],
        "motion_class_ids": motion_class_ids(label_ids=spec.label_ids),
        "fast_motion_class_ids": motion_class_ids("fast", spec.label_ids),
        "slow_motion_class_ids": motion_class_ids("slow", spec.label_ids),
        "appearance_class_ids": [c.id for c in classes if c.cue == "appearance"],
        "aliasing": {
            "tau_frames": tau,
            "fast_motion_period_frames": tau,
            "fast_offsets": fast.tolist(),
            "slow_offsets": slow.tolist(),
            "note": "fast_wave/fast_bounce repeat every tau frames, the slow frames' spacing: "
                    "every slow frame shows the same pose",
        },
        "videos": [
            {"video_id": p.video_id, "split": p.split, "num_frames": p.num_frames,
             "num_actors": len(p.actors), "empty_keyframes": p.empty_keyframes,
             "excluded_keyframes": p.excluded_keyframes}
            for p in plans
        ],
    }


def load_meta(root: PathLike) -> dict:
    """The ``synthetic_meta.json`` of a generated dataset."""
    path = Path(root) / META_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AvadetError(f"{path}: not found; is {root} a synthetic dataset?") from None


# ---------------------------------------------------------------------------------------------
# The generator


def _same_dataset(out_dir: Path, meta: dict) -> bool:
    try:
        old = json.loads((out_dir / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # Through JSON, so tuples in the new spec compare equal to the lists read back.
    return all(old.get(k) == json.loads(json.dumps(meta[k])) for k in
               ("generator_version", "preset", "seed", "spec"))


def _write_dataset(tmp: Path, out_dir: Path, spec: SyntheticSpec, seed: int,
                   plans: list[VideoPlan], meta: dict, workers: int) -> None:
    """Every file of the dataset into ``tmp``; the configs name ``out_dir``, where ``tmp``
    will be moved."""
    write_annotations(plans, spec, tmp, seed)
    if spec.write_frames or spec.write_videos:
        _write_all_media(plans, spec, tmp, workers)
    T = spec.duration * spec.fps
    for split in SPLITS if spec.write_frames else ():
        ids = [p.video_id for p in plans if p.split == split]
        write_frame_list(tmp / "frame_lists" / f"{split}.csv", ids, [T] * len(ids))
    for name, arch in (("config.yaml", "slowfast"), ("config_slow.yaml", "slow")):
        with atomic_write(tmp / name) as handle:
            yaml.safe_dump(config_dict(spec, out_dir, arch=arch), handle, sort_keys=False)
        load_config(tmp / name)  # must load cleanly; fails loudly if the schema moved
    with atomic_write(tmp / META_NAME) as handle:
        json.dump(meta, handle, indent=1)
        handle.write("\n")


def make_synthetic(out_dir: PathLike, *, preset: str = "tiny", seed: int = 0,
                   overwrite: bool = False, workers: int = 1, **overrides: Any) -> Path:
    """Generate a complete synthetic AVA-format dataset in ``out_dir``; return its path.

    Args:
        out_dir: the dataset root (created; must be absent or empty unless it already holds
            this very dataset, which is then reused, or ``overwrite`` is set).
        preset: "tiny" (tests, ~1 s), "cpu" (trains in minutes on 2 cores), "gpu".
        seed: the same seed and settings give byte-identical annotation files and frames.
        overwrite: replace an existing different dataset in ``out_dir``.
        workers: processes drawing and encoding videos in parallel (the output does not
            depend on it: each video has its own random stream).
        **overrides: :class:`SyntheticSpec` fields, e.g. ``num_train_videos=4, width=96``.
    Returns:
        ``out_dir`` (absolute). The dataset is built in a temporary sibling folder and moved
        into place at the end, so an interrupted run leaves no half dataset behind.
    """
    spec = resolve_spec(preset, **overrides)
    out_dir = Path(out_dir).expanduser().resolve()
    plans = plan_dataset(spec, seed)
    meta = _meta(spec, preset, seed, plans)
    if out_dir.exists() and any(out_dir.iterdir()):
        if _same_dataset(out_dir, meta):
            LOG.info("%s already holds this synthetic dataset; reusing it", out_dir)
            return out_dir
        if not overwrite:
            raise AvadetError(f"{out_dir}: folder is not empty and holds no matching synthetic "
                              "dataset; pick another folder, or overwrite=True to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    started = time.perf_counter()
    try:
        _write_dataset(tmp, out_dir, spec, seed, plans, meta, workers)
        if out_dir.exists():
            shutil.rmtree(out_dir) if any(out_dir.iterdir()) else out_dir.rmdir()
        publish_mode(tmp, out_dir, directory=True)  # not mkdtemp's private 0700
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    LOG.info("synthetic dataset %s (%s, seed %d) in %.1f s", out_dir, preset, seed,
             time.perf_counter() - started)
    return out_dir
