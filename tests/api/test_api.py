"""The use-case API: what a Python user calls directly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from avadet import api
from avadet.api._config import as_config
from avadet.config import load_config
from avadet.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_a_config_is_a_path_or_a_config_with_overrides():
    path = REPO / "configs" / "synthetic" / "tiny.yaml"
    from_path = as_config(path, ["solver.base_lr=0.5"])
    from_object = as_config(load_config(path), ["solver.base_lr=0.5"])
    assert from_path == from_object and from_path.solver.base_lr == 0.5
    same = load_config(path)
    assert as_config(same) is same
    with pytest.raises(ConfigError, match="nope"):
        as_config(same, ["solver.nope=1"])


def test_every_use_case_is_there_and_evaluation_alone_needs_no_torch():
    for name in ("train", "test", "evaluate", "detect_video", "detect_persons", "check_data",
                 "make_synthetic", "run_demo"):
        assert callable(getattr(api, name)), name
    code = ("import sys; from avadet.api import evaluate; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_train_refuses_overwrite_while_resuming():
    with pytest.raises(ConfigError, match="overwrite"):
        api.train(load_config(None), resume=True, overwrite=True)
