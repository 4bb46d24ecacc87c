"""Shared data for the engine tests: one synthetic 'tiny' dataset per session (~1 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avadet.synthetic import make_synthetic


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 train + 1 val videos of 8 s at 64x48 (5 keyframes each), 8 classes; config.yaml."""
    return make_synthetic(tmp_path_factory.mktemp("data") / "tiny", preset="tiny", seed=0)
