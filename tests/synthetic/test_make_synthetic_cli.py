"""``avadet make-synthetic``."""

from __future__ import annotations

from pathlib import Path

import pytest

from avadet import synthetic as syn
from avadet.cli import main as cli_main
from avadet.config import load_config


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    rc = cli_main(["make-synthetic", str(out), "--seed", "2", "--set", "write_videos=false",
                   "--set", "num_train_videos=1"])
    assert rc == 0
    assert "motion-defined classes" in capsys.readouterr().out
    assert syn.load_meta(out)["spec"]["num_train_videos"] == 1
    assert not (out / "videos").exists()
    assert load_config(out / "config.yaml").data.source == "frames"
    assert cli_main(["make-synthetic", str(out), "--set", "nonsense=1"]) == 2
