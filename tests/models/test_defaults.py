"""Every model default is decided once, in ModelConfig: the constructors' keyword defaults
equal its fields, so ``SlowFast()`` and ``build_model()`` build the same model."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
import torch

from avadet.config import ModelConfig
from avadet.models import (
    AVAHead,
    FastOnly,
    KineticsHead,
    Lateral,
    NonLocal,
    ResStage,
    SlowFast,
    SlowOnly,
    build_model,
)
from avadet.models.build import _res5


def _config_defaults() -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(ModelConfig):
        has_factory = f.default_factory is not dataclasses.MISSING
        out[f.name] = f.default_factory() if has_factory else f.default
    return out


CONFIG = _config_defaults()

# Constructor parameter -> ModelConfig field, where the names differ.
RENAMED: dict[type, dict[str, str]] = {
    SlowFast: {"lateral_kernel": "fusion_kernel_size", "slow_nonlocal": "nonlocal_blocks"},
    SlowOnly: {"temporal_kernels": "slow_temporal_kernels"},
    FastOnly: {"temporal_kernels": "fast_temporal_kernels"},
    AVAHead: {
        "output_size": "roi_output_size",
        "spatial_scale": "roi_spatial_scale",
        "sampling_ratio": "roi_sampling_ratio",
        "aligned": "roi_aligned",
        "activation": "head_activation",
    },
    KineticsHead: {"activation": "head_activation"},
    Lateral: {"kind": "lateral", "temporal_kernel": "fusion_kernel_size", "norm": "lateral_norm"},
    ResStage: {},
    NonLocal: {"pool": "nonlocal_pool", "instantiation": "nonlocal_instantiation"},
}
# Defaults that are no ModelConfig setting, with their reason (a new one must be added here).
NOT_SETTINGS: dict[type, dict[str, str]] = {
    SlowFast: {
        "slow_stem_kernel": "fixed architecture: PySlowFast's stem kernels",
        "fast_stem_kernel": "fixed architecture: PySlowFast's stem kernels",
        "fast_nonlocal": "ModelConfig places non-local blocks in the Slow pathway only",
        "res5_stride": "ModelConfig.res5_stride 0: derived from res5_dilation (checked below)",
    },
    SlowOnly: {
        "stem_kernel": "fixed architecture: PySlowFast's stem kernel",
        "res5_stride": "ModelConfig.res5_stride 0: derived from res5_dilation (checked below)",
    },
    FastOnly: {
        "stem_kernel": "fixed architecture: PySlowFast's Fast stem kernel",
        "res5_stride": "ModelConfig.res5_stride 0: derived from res5_dilation (checked below)",
        "nonlocal_blocks": "ModelConfig places non-local blocks in the Slow pathway only",
    },
    AVAHead: {},
    KineticsHead: {},
    Lateral: {"out_channels": "derived by SlowFast from the fusion"},
    ResStage: {
        "spatial_stride": "set per stage by the backbone",
        "dilation": "set per stage by the backbone",
        "nonlocal_after": "set per stage by the backbone",
    },
    NonLocal: {"inner_channels": "half the channels, as PySlowFast"},
}
# Parameters with a ModelConfig counterpart that deliberately have no default.
REQUIRED: dict[type, set[str]] = {
    # ModelConfig's 80 classes and sigmoid are the AVA head's; Kinetics wants 400 and softmax.
    KineticsHead: {"num_classes", "activation"},
    # Passed down by SlowFast from its own arguments.
    Lateral: {"kind", "alpha"},
}


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: (1, 1, 3, 3) in a signature is [1, 1, 3, 3] in YAML."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("cls", list(RENAMED), ids=lambda c: c.__name__)
def test_constructor_defaults_are_model_config_defaults(cls):
    renamed, not_settings = RENAMED[cls], NOT_SETTINGS[cls]
    compared = 0
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self":
            continue
        field = renamed.get(name, name)
        if name in not_settings:
            continue
        if param.default is inspect.Parameter.empty:
            if field in CONFIG:
                assert name in REQUIRED.get(cls, set()), f"{cls.__name__}({name}) needs ModelConfig.{field}'s default"
            continue
        assert field in CONFIG, f"{cls.__name__}({name}): map it to ModelConfig or say why not"
        assert _plain(param.default) == CONFIG[field], f"{cls.__name__}({name}) vs ModelConfig.{field}"
        compared += 1
    assert compared >= 1  # at least one default is checked
    # The explicit lists name real parameters (no stale entries).
    params = set(inspect.signature(cls.__init__).parameters)
    assert set(renamed) | set(not_settings) | REQUIRED.get(cls, set()) <= params


def test_derived_res5_stride_matches():
    assert ModelConfig().res5_stride == 0  # derived
    res5 = _res5(ModelConfig())
    for cls in (SlowFast, SlowOnly, FastOnly):
        params = inspect.signature(cls.__init__).parameters
        assert params["res5_stride"].default == res5["res5_stride"]
        assert params["res5_dilation"].default == res5["res5_dilation"]


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_no_config_and_config_paths_build_the_same_full_size_model():
    with torch.device("meta"):
        configured = build_model()
        slow_configured = build_model(arch="slow", nonlocal_blocks=[[], [], [1, 3], []])
        backbone = SlowFast()
        slow = SlowOnly(nonlocal_blocks=((), (), (1, 3), ()))
        head = AVAHead(in_channels=backbone.out_channels)
    assert _shapes(backbone) == _shapes(configured.backbone)
    assert repr(backbone) == repr(configured.backbone)
    assert _shapes(slow) == _shapes(slow_configured.backbone)
    # The non-local pool used to differ (SlowOnly (1, 2, 2) vs ModelConfig [2, 2, 2]).
    pools = {m.pool.kernel_size for m in slow.modules() if isinstance(m, NonLocal)}
    assert pools == {m.pool.kernel_size for m in slow_configured.modules() if isinstance(m, NonLocal)} == {(2, 2, 2)}
    for attr in ("aligned", "spatial_scale", "output_size", "sampling_ratio", "activation"):
        assert getattr(head, attr) == getattr(configured.head, attr), attr
    assert head.aligned is True  # the AVA head used to default to False
    assert _shapes(head) == _shapes(configured.head)
