"""What the dataset hands the model: one keyframe (:class:`Item`) and a batch of them
(:class:`Batch`), shared by the data loader, the trainer and inference.

Clips are at the Fast pathway's frame rate; the model takes each pathway's frames from them
itself. Boxes are in pixels of the network input; ``norm_boxes`` keeps them in AVA's
normalised coordinates for the prediction rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class Item:
    """One keyframe.

    ``clip``: ``(3, T, H, W)`` float32, normalised (None: the clip could not be read; the
    item then has no boxes and :func:`collate` drops it). ``boxes``: ``(K, 4)`` float32
    x1 y1 x2 y2 in input pixels; ``labels``: ``(K, C)`` multi-hot; ``norm_boxes``: ``(K, 4)``
    normalised; ``box_scores``: ``(K,)`` (1 for gt boxes, the detector's score otherwise).
    """

    clip: Optional[torch.Tensor]
    boxes: torch.Tensor
    labels: torch.Tensor
    norm_boxes: torch.Tensor
    box_scores: torch.Tensor
    video_id: str
    timestamp: int


@dataclass
class Batch:
    """``B`` keyframes and their ``K`` boxes.

    ``clips``: ``(B, 3, T, H, W)`` float32 (frames of different sizes zero-padded at the
    bottom and right, which leaves the pixel boxes valid); ``boxes``: ``(K, 5)`` float32
    ``[batch_index, x1, y1, x2, y2]`` in input pixels, as the RoI head takes them;
    ``labels`` ``(K, C)``; ``norm_boxes`` ``(K, 4)``; ``box_scores`` ``(K,)``;
    ``video_ids`` and ``timestamps``: the B keyframes.
    """

    clips: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    norm_boxes: torch.Tensor
    box_scores: torch.Tensor
    video_ids: list[str]
    timestamps: list[int]

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def box_index(self) -> torch.Tensor:
        """``(K,)`` int64: the keyframe of each box in ``video_ids`` / ``timestamps``."""
        return self.boxes[:, 0].long()

    def to(self, device: torch.device) -> Batch:
        """The tensors on ``device`` (asynchronous copies from pinned memory on CUDA)."""
        non_blocking = torch.device(device).type == "cuda"
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by ``DataLoader(pin_memory=True)``."""
        return self._map(lambda t: t.pin_memory())

    def _map(self, fn) -> Batch:
        return dataclasses.replace(
            self, **{f.name: fn(getattr(self, f.name)) for f in dataclasses.fields(self)
                     if isinstance(getattr(self, f.name), torch.Tensor)})


def empty_batch(num_classes: int) -> Batch:
    return Batch(torch.zeros(0, 3, 0, 0, 0), torch.zeros(0, 5), torch.zeros(0, num_classes),
                 torch.zeros(0, 4), torch.zeros(0), [], [])


def _shared_output(tensors: list[torch.Tensor]) -> Optional[torch.Tensor]:
    """In a DataLoader worker, an empty tensor in shared memory for ``torch.stack(tensors)``,
    so the batch is not copied once more to reach the main process (as default_collate)."""
    if torch.utils.data.get_worker_info() is None:
        return None
    numel = sum(t.numel() for t in tensors)
    storage = tensors[0].untyped_storage()._new_shared(numel * tensors[0].element_size())
    return tensors[0].new(storage).resize_(len(tensors), *tensors[0].shape)


def _stack_padded(clips: list[torch.Tensor]) -> torch.Tensor:
    height = max(c.shape[-2] for c in clips)
    width = max(c.shape[-1] for c in clips)
    clips = [
        torch.nn.functional.pad(c, (0, width - c.shape[-1], 0, height - c.shape[-2]))
        if c.shape[-2:] != (height, width)
        else c
        for c in clips
    ]
    return torch.stack(clips, out=_shared_output(clips))


def collate(items: list[Item]) -> Batch:
    """Batch :class:`Item` s; items without a clip (unreadable val keyframes) are dropped."""
    num_classes = items[0].labels.shape[1] if items else 0
    items = [it for it in items if it.clip is not None]
    if not items:
        return empty_batch(num_classes)
    index = torch.cat(
        [torch.full((len(it.boxes),), j, dtype=torch.float32) for j, it in enumerate(items)]
    )
    boxes = torch.cat([it.boxes for it in items]).float()
    return Batch(
        clips=_stack_padded([it.clip for it in items]),
        boxes=torch.cat([index[:, None], boxes], 1),
        labels=torch.cat([it.labels for it in items]),
        norm_boxes=torch.cat([it.norm_boxes for it in items]),
        box_scores=torch.cat([it.box_scores for it in items]),
        video_ids=[it.video_id for it in items],
        timestamps=[int(it.timestamp) for it in items],
    )
