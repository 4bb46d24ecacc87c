"""A use case's config argument: a YAML path or a :class:`Config`, plus overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

from avadet.config import Config, load_config, with_overrides

ConfigLike = Union[str, Path, Config]


def as_config(config: ConfigLike, overrides: Sequence[str] = ()) -> Config:
    """``config`` loaded (a path) or taken as it is (a :class:`Config`), with ``overrides``."""
    if isinstance(config, Config):
        return with_overrides(config, overrides) if overrides else config
    return load_config(config, overrides)
