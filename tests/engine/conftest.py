"""Shared data for the engine tests: one synthetic 'tiny' dataset per session (~1 s), and a
training state on it for the tests of the loop's parts."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from avadet.config import Config, load_config
from avadet.data import Batch
from avadet.engine.distributed import DistInfo
from avadet.engine.solver import set_train_mode
from avadet.engine.state import TrainState, build_state
from avadet.engine.step import training_loader
from avadet.synthetic import make_synthetic


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 train + 1 val videos of 8 s at 64x48 (5 keyframes each), 8 classes; config.yaml."""
    return make_synthetic(tmp_path_factory.mktemp("data") / "tiny", preset="tiny", seed=0)


@pytest.fixture
def make_state(tiny_root: Path, tmp_path: Path) -> Callable[..., tuple[Config, TrainState]]:
    """``make_state(*overrides)``: the tiny config (output in ``tmp_path / "run"``) and a fresh
    one-process state of it at iteration 0 (2 iterations per epoch: 8 keyframes, batch 4)."""

    def make(*overrides: str) -> tuple[Config, TrainState]:
        cfg = load_config(tiny_root / "config.yaml", [f"train.output_dir={tmp_path / 'run'}", *overrides])
        return cfg, build_state(cfg, DistInfo())

    return make


def first_batches(state: TrainState, count: int) -> list[Batch]:
    """The first ``count`` batches of epoch 0 under the seed plan; the model in training mode."""
    state.sampler.set_epoch(0)
    state.train_set.set_seed_plan(state.seed, 0)
    set_train_mode(state.net, freeze_bn=state.solver.freeze_bn)
    loader = training_loader(state.train_set, state.sampler, num_workers=0, device=state.device)
    return [batch for _, batch in zip(range(count), loader)]


@pytest.fixture
def batches() -> Callable[[TrainState, int], list[Batch]]:
    """:func:`first_batches` (a fixture: test modules cannot import conftest)."""
    return first_batches
