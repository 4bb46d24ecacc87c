"""The synthetic spec: presets, settings checked up front, the class list and label map."""

from __future__ import annotations

from pathlib import Path

import pytest

from avadet import synthetic as syn
from avadet.errors import ConfigError


def test_bad_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown synthetic setting"):
        syn.make_synthetic(tmp_path / "y", colour="red")
    with pytest.raises(ConfigError, match="preset"):
        syn.make_synthetic(tmp_path / "y", preset="huge")
    with pytest.raises(ConfigError, match="evenly spaced"):
        syn.resolve_spec("tiny", num_frames=32)  # linspace(0, 31, 8) is not uniform
    with pytest.raises(ConfigError, match="even"):
        syn.resolve_spec("tiny", width=65)


def test_default_label_map_is_unchanged_by_the_option() -> None:
    assert syn.dataset_classes(()) is syn.CLASSES
    assert syn.synthetic_labelmap().ids == list(range(1, 10))
