"""The generator's shared test data: one 'tiny' dataset (seed 0) per test process (~1 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avadet import synthetic as syn


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return syn.make_synthetic(tmp_path_factory.mktemp("syn") / "tiny", preset="tiny", seed=0)
