"""The AVA dataset: one item per keyframe, a clip around it, and the person boxes on it.

The boxes and labels come from :mod:`avadet.data.annotations`; a config becomes a dataset in
:func:`avadet.engine.build_dataset`. Items are :class:`~avadet.data.batch.Item` s: the clip at
the Fast pathway's frame rate (the model takes each pathway's frames from it), the boxes in
input pixels.

A keyframe whose clip
cannot be read is counted in ``dataset.skipped``, logged by path once per video and process,
and replaced by another keyframe (train) or returned as an empty item that
:func:`collate_ava` drops (val). A keyframe whose centre frame lies past the end of a video
(or frame folder) shorter than its segment is read clamped, its clip repeating the last
frame, as PySlowFast does; such keyframes are counted in ``dataset.past_end`` and logged once
per video with how many of its keyframes lie past its end.

Randomness (training augmentation, replacement keyframes): by default numpy's global
generator, which DataLoader seeds per worker. :meth:`AvaDataset.set_seed_plan` makes every
random choice of item ``i`` come from its own generator seeded by ``(seed, epoch, i)``
instead, so an item's augmentation does not depend on the worker, the process or what was
drawn before: the engine relies on it for reproducible, resumable and distributed runs.
"""

from __future__ import annotations

import logging
import multiprocessing
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from avadet.boxes import BOX_COLUMNS, KEY_COLUMNS
from avadet.data.batch import Item
from avadet.data.files import ClipSource
from avadet.data.sampling import keyframe_to_frame_index, sample_clip_indices
from avadet.data.sources import ClipReadError
from avadet.data.transforms import eval_transform, train_transform

logger = logging.getLogger(__name__)

KEY = KEY_COLUMNS
BOX = BOX_COLUMNS
# Attempts to replace an unreadable training keyframe before giving up.
MAX_REPLACEMENTS = 20


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
        jitter_scales, crop_size, flip, color_jitter: training augmentation.
        test_short_side: evaluation short side (0: unchanged).
        box_scaling: how boxes follow a resize, train and eval
            (:data:`~avadet.data.transforms.BOX_SCALINGS`; ``"long_side"``: PySlowFast's).
        resize_rounding: "floor" (PySlowFast) or "round" (MMAction2), see
            :func:`~avadet.data.transforms.short_side_size`.
        clip_center_offset: frames added to each keyframe's centre frame before sampling
            (MMAction2's loader: 1).
        box_clipping: whether eval boxes are clipped to the frame and the input
            (:data:`~avadet.data.transforms.BOX_CLIPPINGS`; ``"none"``: MMAction2's); training
            always clips.
        mean, std: per-channel normalisation after ``/255``.

    Items are :class:`~avadet.data.batch.Item` s; an unreadable val keyframe gives an item
    without a clip and with no boxes.
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
        jitter_scales: Sequence[int] = (256, 320),
        crop_size: int = 224,
        flip: bool = True,
        color_jitter: bool = True,
        test_short_side: int = 256,
        mean: Sequence[float] = (0.45, 0.45, 0.45),
        std: Sequence[float] = (0.225, 0.225, 0.225),
        box_scaling: str = "per_axis",
        resize_rounding: str = "floor",
        clip_center_offset: int = 0,
        box_clipping: str = "last_pixel",
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
        self.jitter_scales = (int(jitter_scales[0]), int(jitter_scales[-1]))
        self.crop_size = crop_size
        self.flip = flip
        self.color_jitter = color_jitter
        self.test_short_side = test_short_side
        self.resize_rounding = resize_rounding
        self.clip_center_offset = int(clip_center_offset)
        self.mean = list(mean)
        self.std = list(std)
        self.box_scaling = box_scaling
        self.box_clipping = box_clipping
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
        self._past_end = multiprocessing.Value("l", 0)
        self._reported: set[str] = set()
        self._short_reported: set[str] = set()
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

    @property
    def past_end(self) -> int:
        """Keyframes read so far whose centre frame lies past their video's last frame (the
        clip repeats that frame; over all DataLoader workers)."""
        return int(self._past_end.value)

    def _centre(self, index: int) -> int:
        return int(keyframe_to_frame_index(self.timestamps[index], fps=self.fps,
                                           segment_start=self.segment_start))

    def _note_past_end(self, index: int, total: int) -> None:
        """Count keyframe ``index`` (centre past the last of ``total`` frames) and, the first
        time for its video in this process, log how many of the video's keyframes lie past
        its end."""
        with self._past_end.get_lock():
            self._past_end.value += 1
        video_id = self.video_ids[index]
        if video_id in self._short_reported:
            return
        self._short_reported.add(video_id)
        same = [i for i, v in enumerate(self.video_ids) if v == video_id]
        past = sum(self._centre(i) >= total for i in same)
        logger.warning(
            "%s has %d frames (%.1f s at %g fps): %d of its %d keyframes lie past its end "
            "and are read as its last frame repeated; re-extract or re-cut the video",
            video_id, total, total / self.fps, self.fps, past, len(same))

    def keyframes(self) -> pd.DataFrame:
        """``video_id timestamp`` of every item, in item order."""
        return pd.DataFrame({"video_id": self.video_ids, "timestamp": self.timestamps})

    def clip_indices(self, index: int) -> np.ndarray:
        """``(num_frames,)`` 0-based frame indices of item ``index``'s Fast clip."""
        video_id = self.video_ids[index]
        return sample_clip_indices(
            self._centre(index) + self.clip_center_offset,
            num_frames=self.num_frames,
            sampling_rate=self.sampling_rate,
            total_frames=self.source.num_frames(video_id),
        )

    def __getitem__(self, index: int) -> Item:
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

    def _empty(self, index: int) -> Item:
        return Item(None, torch.zeros(0, 4), torch.zeros(0, len(self.class_ids)),
                    torch.zeros(0, 4), torch.zeros(0), self.video_ids[index],
                    int(self.timestamps[index]))

    def _load(self, index: int, rng: Optional[np.random.RandomState] = None) -> Item:
        video_id = self.video_ids[index]
        indices = self.clip_indices(index)
        clip = self.source.read(video_id, indices)
        total = self.source.num_frames(video_id)
        if self._centre(index) >= total:
            self._note_past_end(index, total)
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
                box_scaling=self.box_scaling,
                rng=rng,
            )
        else:
            out = eval_transform(
                clip, norm_boxes, short_side=self.test_short_side, mean=self.mean, std=self.std,
                box_scaling=self.box_scaling,
                rounding=self.resize_rounding,
                box_clipping=self.box_clipping,
            )
        keep = out.keep
        return Item(
            clip=out.clip,
            boxes=torch.from_numpy(np.ascontiguousarray(out.boxes, dtype=np.float32)),
            labels=torch.from_numpy(self._labels[rows][keep]),
            norm_boxes=torch.from_numpy(norm_boxes[keep]),
            box_scores=torch.from_numpy(self._scores[rows][keep]),
            video_id=video_id,
            timestamp=int(self.timestamps[index]),
        )
