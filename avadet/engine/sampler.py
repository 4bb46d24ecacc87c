"""The seed plan's sampling side: which items each process reads at each iteration.

One seed plan for the whole run:

- epoch ``e``'s order is a permutation of the items drawn from ``(seed, e)`` only;
- global batch ``i`` of the epoch is positions ``[i * B, (i + 1) * B)`` of that permutation
  (the incomplete last batch is dropped, as PySlowFast's training loader does);
- with ``W`` processes, rank ``r`` takes positions ``r, r + W, ...`` of each global batch, so the
  union over the ranks of iteration ``i`` is exactly the one-process batch ``i``;
- each item's augmentation is drawn from ``(seed, e, item)``
  (:meth:`avadet.data.AvaDataset.set_seed_plan`).

So a run's data do not depend on the number of processes or DataLoader workers, and a run
resumed at iteration ``i`` of an epoch reads exactly what the uninterrupted run would have.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

import numpy as np
from torch.utils.data import Sampler

from avadet.errors import ConfigError


def epoch_permutation(num_items: int, seed: int, epoch: int) -> np.ndarray:
    """``(num_items,)`` int64: epoch ``epoch``'s order of the items."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(num_items).astype(np.int64)


def iterations_per_epoch(num_items: int, global_batch: int) -> int:
    if num_items < global_batch:
        raise ConfigError(
            f"the training set has {num_items} keyframes, fewer than solver.batch_size="
            f"{global_batch} (the global batch); lower solver.batch_size"
        )
    return num_items // global_batch


class SeedPlanBatchSampler(Sampler[list[int]]):
    """Batches of item indices for one process (a DataLoader ``batch_sampler``).

    Args:
        num_items: items in the dataset.
        global_batch: items per iteration summed over processes (``solver.batch_size``).
        seed: the run's seed (``train.seed``).
        rank, world_size: this process and how many there are (``global_batch`` must be a
            multiple of ``world_size``).
    Call :meth:`set_epoch` before iterating; ``start`` skips the first iterations of the
    epoch (a resumed run).
    """

    def __init__(
        self, num_items: int, global_batch: int, seed: int, *, rank: int = 0, world_size: int = 1
    ):
        if global_batch % world_size:
            raise ConfigError(
                f"solver.batch_size={global_batch} (global) is not a multiple of the "
                f"{world_size} processes"
            )
        self.num_items = num_items
        self.global_batch = global_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.iterations = iterations_per_epoch(num_items, global_batch)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        if not 0 <= start <= self.iterations:
            raise ValueError(f"start {start} outside the epoch's {self.iterations} iterations")
        self.epoch = epoch
        self.start = start

    def global_batches(self) -> np.ndarray:
        """``(iterations, global_batch)``: every global batch of the current epoch."""
        order = epoch_permutation(self.num_items, self.seed, self.epoch)
        return order[: self.iterations * self.global_batch].reshape(self.iterations, -1)

    def __len__(self) -> int:
        return self.iterations - self.start

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.global_batches()
        for i in range(self.start, self.iterations):
            yield batches[i, self.rank :: self.world_size].tolist()


class ShardSampler(Sampler[list[int]]):
    """Inference batches of one process: a contiguous shard of the items (keeps a video's
    keyframes together), in order, at most ``batch_size`` at a time.

    ``groups``: a key per item (its video id); a batch never holds two groups, so clips of
    videos whose frames differ in size are never zero-padded to a common size, which would
    change their scores (the convolutions see the padding): every keyframe is scored as
    PySlowFast and MMAction2 score it, alone at its own size, whatever the batch size.
    """

    def __init__(self, num_items: int, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 groups: Optional[Sequence[Any]] = None):
        if batch_size < 1:
            raise ConfigError(f"test.batch_size must be >= 1, got {batch_size}")
        shards = np.array_split(np.arange(num_items, dtype=np.int64), world_size)
        self.indices = shards[rank]
        self.batch_size = batch_size
        # Runs of one group in the shard, cut into batches: (start, stop) positions.
        runs = [0, len(self.indices)]
        if groups is not None and len(self.indices):
            keys = np.asarray(list(groups), dtype=object)[self.indices]
            runs = [0, *(np.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist(), len(keys)]
        self._bounds = [(s, min(s + batch_size, stop))
                        for start, stop in zip(runs[:-1], runs[1:])
                        for s in range(start, stop, batch_size)]

    def __len__(self) -> int:
        return len(self._bounds)

    def __iter__(self) -> Iterator[list[int]]:
        for start, stop in self._bounds:
            yield self.indices[start:stop].tolist()
