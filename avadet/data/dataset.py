"""The AVA dataset: one item per keyframe, a clip around it, and the person boxes on it.

``build_dataset(cfg, split)`` is the one place where ``cfg.data`` (and ``cfg.model.arch`` /
``cfg.model.alpha``) become arguments. Boxes:

- ``train``: the gt boxes of every annotated keyframe (excluded keyframes removed), each with
  a multi-hot label row over ``class_ids`` (a person whose actions are all outside
  ``class_ids`` stays, with an all-zero row: it is a negative for every class). With
  ``data.train_use_detections``, detector boxes with score >= ``train_detection_score`` are
  added as extra boxes: a detection whose best IoU with a gt box of its keyframe is >= 0.5
  takes that person's labels, any other is a background person (all-zero labels).
  PySlowFast merges a detection into a gt box only when the coordinates are identical; the
  IoU rule gives the same result for those and also labels the detector's slightly shifted
  copies of annotated people.
- ``val``: detector boxes with score >= ``test_detection_score`` from ``data.val_boxes``
  (or the gt boxes with score 1 when ``data.val_boxes`` is empty), labelled by the same IoU
  rule from the val gt where it exists (for a validation loss; mAP is computed from the gt
  file itself).

Keyframes outside the segment (centre frame not in it) are dropped. A keyframe whose clip
cannot be read is counted in ``dataset.skipped``, logged by path once per video and process,
and replaced by another keyframe (train) or returned as an empty item that
:func:`collate_ava` drops (val).

Randomness (training augmentation, replacement keyframes): by default numpy's global
generator, which DataLoader seeds per worker. :meth:`AvaDataset.set_seed_plan` makes every
random choice of item ``i`` come from its own generator seeded by ``(seed, epoch, i)``
instead, so an item's augmentation does not depend on the worker, the process or what was
drawn before: the engine relies on it for reproducible, resumable and distributed runs.
"""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from avadet.boxes import BOX_COLUMNS, KEY_COLUMNS, paired_iou
from avadet.config import Config, resolve_path
from avadet.data.sampling import (
    keyframe_to_frame_index,
    sample_clip_indices,
    slow_pathway_positions,
    valid_keyframe_mask,
)
from avadet.data.sources import ClipReadError, FrameFolderSource, VideoSource
from avadet.data.transforms import eval_transform, train_transform
from avadet.errors import ConfigError
from avadet.io import (
    merge_box_labels,
    read_annotations,
    read_exclusions,
    read_labelmap,
    read_person_boxes,
)

logger = logging.getLogger(__name__)

KEY = KEY_COLUMNS
BOX = BOX_COLUMNS
# A detection at least this close to a gt box is that person (IoU, AVA's matching threshold).
MATCH_IOU = 0.5
# Attempts to replace an unreadable training keyframe before giving up.
MAX_REPLACEMENTS = 20

ClipSource = Union[FrameFolderSource, VideoSource]


def label_boxes_by_iou(
    boxes: pd.DataFrame, gt_boxes: pd.DataFrame, gt_labels: np.ndarray, min_iou: float = MATCH_IOU
) -> np.ndarray:
    """Labels for ``boxes`` taken from the gt box of the same keyframe with the largest IoU.

    Args:
        boxes: ``video_id timestamp x1 y1 x2 y2`` rows (normalised), e.g. detections.
        gt_boxes: the same columns, one row per gt person; ``gt_labels`` ``(G, C)`` aligned.
    Returns:
        ``(N, C)`` float32; all-zero for a box whose best IoU is below ``min_iou``.
    """
    num_classes = gt_labels.shape[1]
    out = np.zeros((len(boxes), num_classes), dtype=np.float32)
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return out
    left = boxes[KEY + BOX].reset_index(drop=True).assign(_i=np.arange(len(boxes)))
    right = gt_boxes[KEY + BOX].reset_index(drop=True).assign(_g=np.arange(len(gt_boxes)))
    pairs = left.merge(right, on=KEY, suffixes=("", "_gt"))
    if pairs.empty:
        return out
    iou = paired_iou(
        pairs[BOX].to_numpy(np.float64), pairs[[f"{c}_gt" for c in BOX]].to_numpy(np.float64)
    )
    pairs = pairs.assign(_iou=iou).sort_values(["_i", "_iou", "_g"], ascending=[True, False, True])
    best = pairs.drop_duplicates("_i")
    best = best[best["_iou"] >= min_iou]
    out[best["_i"].to_numpy()] = gt_labels[best["_g"].to_numpy()]
    return out


def _drop_keys(df: pd.DataFrame, keys: Optional[pd.DataFrame]) -> pd.DataFrame:
    if keys is None or keys.empty or df.empty:
        return df
    marked = df.merge(keys[KEY].drop_duplicates().assign(_x=True), on=KEY, how="left")
    return df[marked["_x"].isna().to_numpy()].reset_index(drop=True)


class AvaDataset(Dataset):
    """Keyframe clips with person boxes and multi-hot labels.

    Args:
        boxes: one row per (keyframe, person box): ``video_id`` (str), ``timestamp`` (int),
            ``x1 y1 x2 y2`` normalised, ``score`` (1.0 for gt boxes).
        labels: ``(N, C)`` float32 multi-hot, aligned with ``boxes``; column j is
            ``class_ids[j]``.
        class_ids: label ids in output column order.
        source: a clip source (:class:`FrameFolderSource` or :class:`VideoSource`).
        train: training augmentation and replacement of unreadable keyframes.
        fps, segment_start: the media time line (frame k shows ``segment_start + k / fps``).
        num_frames, sampling_rate: the Fast pathway's clip (PySlowFast's NUM_FRAMES,
            SAMPLING_RATE).
        alpha: frame-rate ratio; the Slow pathway gets ``num_frames // alpha`` frames at
            :func:`slow_pathway_positions`. ``None``: one pathway with all frames (Slow-only).
        jitter_scales, crop_size, flip, color_jitter: training augmentation.
        test_short_side: evaluation short side (0: unchanged).
        mean, std: per-channel normalisation after ``/255``.

    Item (dict): ``inputs`` list of float32 ``[slow (3, T/alpha, H, W), fast (3, T, H, W)]``
    (one ``(3, T, H, W)`` tensor without ``alpha``); ``boxes`` ``(K, 4)`` float32 x1 y1 x2 y2 in
    input pixels; ``labels`` ``(K, C)``; ``norm_boxes`` ``(K, 4)`` the normalised boxes;
    ``box_scores`` ``(K,)``; ``video_id``; ``timestamp``. An unreadable val keyframe gives the
    same keys with ``inputs = None`` and ``K = 0``.
    """

    def __init__(
        self,
        boxes: pd.DataFrame,
        labels: np.ndarray,
        class_ids: Sequence[int],
        source: ClipSource,
        *,
        train: bool,
        fps: float,
        segment_start: float,
        num_frames: int,
        sampling_rate: int,
        alpha: Optional[int],
        jitter_scales: Sequence[int] = (256, 320),
        crop_size: int = 224,
        flip: bool = True,
        color_jitter: bool = False,
        test_short_side: int = 256,
        mean: Sequence[float] = (0.45, 0.45, 0.45),
        std: Sequence[float] = (0.225, 0.225, 0.225),
    ):
        if len(boxes) != len(labels):
            raise ValueError(f"{len(boxes)} boxes but {len(labels)} label rows")
        boxes = boxes.reset_index(drop=True)
        self.class_ids = [int(c) for c in class_ids]
        self.source = source
        self.train = train
        self.fps = fps
        self.segment_start = segment_start
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.alpha = alpha
        self.jitter_scales = (int(jitter_scales[0]), int(jitter_scales[-1]))
        self.crop_size = crop_size
        self.flip = flip
        self.color_jitter = color_jitter
        self.test_short_side = test_short_side
        self.mean = list(mean)
        self.std = list(std)
        self.slow_positions = (
            torch.from_numpy(slow_pathway_positions(num_frames, alpha)) if alpha else None
        )
        # Keyframes in order of first appearance; item i owns rows starts[i]:starts[i+1] of the
        # box table sorted stably by keyframe.
        key = boxes.groupby(KEY, sort=False).ngroup().to_numpy()
        order = np.argsort(key, kind="stable")
        self._boxes = boxes[BOX].to_numpy(np.float32)[order]
        self._scores = boxes["score"].to_numpy(np.float32)[order]
        self._labels = np.asarray(labels, dtype=np.float32)[order]
        counts = np.bincount(key, minlength=key.max() + 1 if len(key) else 0)
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        first = boxes.drop_duplicates(KEY)
        self.video_ids = first["video_id"].astype(str).tolist()
        self.timestamps = first["timestamp"].astype(np.int64).tolist()
        self._skipped = multiprocessing.Value("l", 0)
        self._reported: set[str] = set()
        self.seed: Optional[int] = None
        self.epoch = 0

    def set_seed_plan(self, seed: Optional[int], epoch: int = 0) -> None:
        """Draw item ``i``'s random choices from a generator seeded by ``(seed, epoch, i)``
        (``seed=None``: numpy's global generator, the default). Call it before a DataLoader
        iterator is created: workers copy the dataset when they start."""
        if seed is not None and (seed < 0 or epoch < 0):
            raise ValueError(f"seed and epoch must be >= 0, got {seed}, {epoch}")
        self.seed = None if seed is None else int(seed)
        self.epoch = int(epoch)

    def item_rng(self, index: int) -> Optional[np.random.RandomState]:
        """The generator of item ``index`` under the seed plan (None without one)."""
        if self.seed is None:
            return None
        state = np.random.SeedSequence([self.seed, self.epoch, int(index)]).generate_state(4)
        return np.random.RandomState(state)

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def skipped(self) -> int:
        """Keyframes whose clip could not be read so far (over all DataLoader workers)."""
        return int(self._skipped.value)

    def keyframes(self) -> pd.DataFrame:
        """``video_id timestamp`` of every item, in item order."""
        return pd.DataFrame({"video_id": self.video_ids, "timestamp": self.timestamps})

    def clip_indices(self, index: int) -> np.ndarray:
        """``(num_frames,)`` 0-based frame indices of item ``index``'s Fast clip."""
        video_id = self.video_ids[index]
        center = keyframe_to_frame_index(
            self.timestamps[index], fps=self.fps, segment_start=self.segment_start
        )
        return sample_clip_indices(
            center,
            num_frames=self.num_frames,
            sampling_rate=self.sampling_rate,
            total_frames=self.source.num_frames(video_id),
        )

    def __getitem__(self, index: int) -> dict[str, Any]:
        attempts = MAX_REPLACEMENTS if self.train else 1
        rng = self.item_rng(index) if self.train else None
        for attempt in range(attempts):
            try:
                return self._load(index, rng)
            except ClipReadError as exc:
                with self._skipped.get_lock():
                    self._skipped.value += 1
                video_id = self.video_ids[index]
                if video_id not in self._reported:
                    self._reported.add(video_id)
                    logger.warning(
                        "skipping keyframe %s,%d (clip unreadable): %s",
                        video_id,
                        self.timestamps[index],
                        exc,
                    )
                if not self.train:
                    return self._empty(index)
                if attempt + 1 < attempts:
                    draw = rng if rng is not None else np.random
                    index = int(draw.randint(len(self)))
        raise ClipReadError(
            getattr(self.source, "frames_dir", getattr(self.source, "videos_dir", "?")),
            f"{attempts} keyframes in a row could not be read; the media look broken",
        )

    def _empty(self, index: int) -> dict[str, Any]:
        c = len(self.class_ids)
        return {
            "inputs": None,
            "boxes": torch.zeros(0, 4),
            "labels": torch.zeros(0, c),
            "norm_boxes": torch.zeros(0, 4),
            "box_scores": torch.zeros(0),
            "video_id": self.video_ids[index],
            "timestamp": int(self.timestamps[index]),
        }

    def _load(self, index: int, rng: Optional[np.random.RandomState] = None) -> dict[str, Any]:
        video_id = self.video_ids[index]
        clip = self.source.read(video_id, self.clip_indices(index))
        rows = slice(self._starts[index], self._starts[index + 1])
        norm_boxes = self._boxes[rows]
        if self.train:
            out = train_transform(
                clip,
                norm_boxes,
                jitter_scales=self.jitter_scales,
                crop_size=self.crop_size,
                flip=self.flip,
                color=self.color_jitter,
                mean=self.mean,
                std=self.std,
                rng=rng,
            )
        else:
            out = eval_transform(
                clip, norm_boxes, short_side=self.test_short_side, mean=self.mean, std=self.std
            )
        fast = out.clip
        inputs = [fast] if self.slow_positions is None else [fast[:, self.slow_positions], fast]
        keep = out.keep
        return {
            "inputs": inputs,
            "boxes": torch.from_numpy(np.ascontiguousarray(out.boxes, dtype=np.float32)),
            "labels": torch.from_numpy(self._labels[rows][keep]),
            "norm_boxes": torch.from_numpy(norm_boxes[keep]),
            "box_scores": torch.from_numpy(self._scores[rows][keep]),
            "video_id": video_id,
            "timestamp": int(self.timestamps[index]),
        }


def _shared_output(tensors: list[torch.Tensor]) -> Optional[torch.Tensor]:
    """In a DataLoader worker, an empty tensor in shared memory for ``torch.stack(tensors)``,
    so the batch is not copied once more to reach the main process (as default_collate)."""
    if torch.utils.data.get_worker_info() is None:
        return None
    numel = sum(t.numel() for t in tensors)
    storage = tensors[0].untyped_storage()._new_shared(numel * tensors[0].element_size())
    return tensors[0].new(storage).resize_(len(tensors), *tensors[0].shape)


def collate_ava(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch items of :class:`AvaDataset`; empty items (unreadable val clips) are dropped.

    Frames of different sizes (videos of different aspect ratios at test time) are padded at
    the bottom and right with zeros, which leaves the pixel boxes valid.

    Returns:
        ``inputs``: list (per pathway) of ``(B, 3, T, H, W)`` float32 (empty list if B = 0);
        ``boxes``: ``(K, 5)`` float32 ``[batch_index, x1, y1, x2, y2]`` in input pixels;
        ``labels`` ``(K, C)``; ``norm_boxes`` ``(K, 4)``; ``box_scores`` ``(K,)``;
        ``box_batch_index`` ``(K,)`` int64; ``video_ids`` and ``timestamps`` lists of length B.
    """
    items = [b for b in batch if b["inputs"] is not None]
    num_classes = batch[0]["labels"].shape[1] if batch else 0
    if not items:
        return {
            "inputs": [],
            "boxes": torch.zeros(0, 5),
            "labels": torch.zeros(0, num_classes),
            "norm_boxes": torch.zeros(0, 4),
            "box_scores": torch.zeros(0),
            "video_ids": [],
            "timestamps": [],
            "box_batch_index": torch.zeros(0, dtype=torch.int64),
        }
    inputs = []
    for p in range(len(items[0]["inputs"])):
        clips = [b["inputs"][p] for b in items]
        height = max(c.shape[-2] for c in clips)
        width = max(c.shape[-1] for c in clips)
        clips = [
            torch.nn.functional.pad(c, (0, width - c.shape[-1], 0, height - c.shape[-2]))
            if c.shape[-2:] != (height, width)
            else c
            for c in clips
        ]
        inputs.append(torch.stack(clips, out=_shared_output(clips)))
    index = torch.cat(
        [torch.full((len(b["boxes"]),), j, dtype=torch.int64) for j, b in enumerate(items)]
    )
    boxes = torch.cat([b["boxes"] for b in items]).float()
    return {
        "inputs": inputs,
        "boxes": torch.cat([index[:, None].float(), boxes], 1),
        "labels": torch.cat([b["labels"] for b in items]),
        "norm_boxes": torch.cat([b["norm_boxes"] for b in items]),
        "box_scores": torch.cat([b["box_scores"] for b in items]),
        "video_ids": [b["video_id"] for b in items],
        "timestamps": [int(b["timestamp"]) for b in items],
        "box_batch_index": index,
    }


# ---------------------------------------------------------------------------------------------
# The config boundary


def _required(root: str, path: str, what: str, hint: str = "") -> Path:
    resolved = resolve_path(root, path)
    if resolved is None:
        raise ConfigError(f"data.{what} is empty{hint}")
    if not resolved.is_file():
        raise ConfigError(f"data.{what}: no such file {resolved}{hint}")
    return resolved


def _optional(root: str, path: str) -> Optional[Path]:
    resolved = resolve_path(root, path)
    return resolved if resolved is not None and resolved.is_file() else None


def build_source(cfg: Config) -> ClipSource:
    """The clip source ``cfg.data.source`` names: ``"frames"`` or ``"video"``."""
    data = cfg.data
    if data.source == "frames":
        return FrameFolderSource(
            resolve_path(data.root, data.frames_dir) or Path("."), data.frame_template
        )
    if data.source == "video":
        return VideoSource(resolve_path(data.root, data.videos_dir) or Path("."))
    raise ConfigError(f"data.source must be 'frames' or 'video', got {data.source!r}")


def class_ids_of(cfg: Config) -> list[int]:
    """``cfg.data.classes`` if given (each must be in the label map), else the label map's ids."""
    labelmap = read_labelmap(_required(cfg.data.root, cfg.data.labelmap, "labelmap"))
    if not cfg.data.classes:
        return list(labelmap.ids)
    unknown = [c for c in cfg.data.classes if c not in labelmap]
    if unknown:
        raise ConfigError(
            f"data.classes: ids {unknown} are not in the label map {cfg.data.labelmap}"
        )
    if len(set(cfg.data.classes)) != len(cfg.data.classes):
        raise ConfigError("data.classes lists an id twice")
    return [int(c) for c in cfg.data.classes]


def load_split_boxes(
    cfg: Config, split: str, class_ids: Sequence[int]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The boxes and labels of ``split`` as :class:`AvaDataset` takes them (see module doc).

    Returns:
        ``boxes`` with columns ``video_id timestamp x1 y1 x2 y2 score`` (one row per box) and
        ``(N, C)`` float32 labels over ``class_ids``.
    """
    data = cfg.data
    root = data.root
    if split == "train":
        gt_path = _required(root, data.train_annotations, "train_annotations")
        excl_path = _optional(root, data.train_exclusions)
    elif split == "val":
        gt_path = _optional(root, data.val_annotations)
        excl_path = _optional(root, data.val_exclusions)
    else:
        raise ConfigError(f"unknown split {split!r} (use 'train' or 'val')")
    exclusions = read_exclusions(excl_path) if excl_path is not None else None

    gt_boxes = pd.DataFrame(columns=KEY + BOX)
    gt_labels = np.zeros((0, len(class_ids)), np.float32)
    if gt_path is not None:
        gt = _drop_keys(read_annotations(gt_path), exclusions)
        gt_boxes, gt_labels = merge_box_labels(gt, class_ids)
        gt_boxes = gt_boxes.assign(score=1.0)

    if split == "train":
        boxes, labels = gt_boxes, gt_labels
        if data.train_use_detections:
            det_path = _required(
                root,
                data.train_boxes,
                "train_boxes",
                " (needed by data.train_use_detections=true)",
            )
            dets = read_person_boxes(det_path, min_score=data.train_detection_score)
            dets = _drop_keys(dets, exclusions)
            # Only keyframes with gt: the others are unannotated, not empty.
            dets = dets.merge(gt_boxes[KEY].drop_duplicates(), on=KEY)
            det_labels = label_boxes_by_iou(dets, gt_boxes, gt_labels)
            boxes = pd.concat([gt_boxes[KEY + BOX + ["score"]], dets[KEY + BOX + ["score"]]])
            labels = np.concatenate([gt_labels, det_labels])
    else:
        if data.val_boxes:
            det_path = _required(
                root, data.val_boxes, "val_boxes", " (set data.val_boxes= to use the gt boxes)"
            )
            boxes = _drop_keys(
                read_person_boxes(det_path, min_score=data.test_detection_score), exclusions
            )
            labels = label_boxes_by_iou(boxes, gt_boxes, gt_labels)
        else:
            if gt_path is None:
                raise ConfigError("data.val_boxes is empty and data.val_annotations is missing")
            boxes, labels = gt_boxes, gt_labels

    boxes = boxes[KEY + BOX + ["score"]].reset_index(drop=True)
    boxes["video_id"] = boxes["video_id"].astype(str)
    boxes["timestamp"] = boxes["timestamp"].astype(np.int64)
    valid = valid_keyframe_mask(
        boxes["timestamp"].to_numpy(),
        fps=data.fps,
        segment_start=data.segment_start,
        segment_end=data.segment_end,
    )
    # Sorting by keyframe keeps a video's clips together: friendlier to the OS cache and to
    # the video source's open containers when read in order (val).
    order = boxes[valid].sort_values(KEY, kind="stable").index.to_numpy()
    return boxes.loc[order].reset_index(drop=True), np.asarray(labels, np.float32)[order]


def build_dataset(cfg: Config, split: str) -> AvaDataset:
    """The ``split`` (``"train"`` or ``"val"``) of ``cfg.data`` as an :class:`AvaDataset`."""
    data, model = cfg.data, cfg.model
    class_ids = class_ids_of(cfg)
    boxes, labels = load_split_boxes(cfg, split, class_ids)
    if model.arch == "slowfast":
        alpha: Optional[int] = model.alpha
        if data.num_frames // model.alpha < 1:
            raise ConfigError(
                f"data.num_frames={data.num_frames} is smaller than model.alpha={model.alpha}"
            )
    elif model.arch == "slow":
        alpha = None
    else:
        raise ConfigError(f"model.arch must be 'slowfast' or 'slow', got {model.arch!r}")
    if (
        len(data.train_jitter_scales) != 2
        or data.train_jitter_scales[0] > data.train_jitter_scales[1]
    ):
        raise ConfigError(
            f"data.train_jitter_scales must be [min, max], got {data.train_jitter_scales}"
        )
    if data.train_crop_size > data.train_jitter_scales[0] > 0:
        raise ConfigError(
            f"data.train_crop_size={data.train_crop_size} is larger than the smallest "
            f"training short side {data.train_jitter_scales[0]}"
        )
    return AvaDataset(
        boxes,
        labels,
        class_ids,
        build_source(cfg),
        train=split == "train",
        fps=data.fps,
        segment_start=data.segment_start,
        num_frames=data.num_frames,
        sampling_rate=data.sampling_rate,
        alpha=alpha,
        jitter_scales=data.train_jitter_scales,
        crop_size=data.train_crop_size,
        flip=data.train_flip,
        color_jitter=data.train_color_jitter,
        test_short_side=data.test_short_side,
        mean=data.mean,
        std=data.std,
    )
