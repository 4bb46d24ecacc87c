"""The published models by name are their configs: for each configs/ava/*.yaml the named
builder and ``build_model(load_config(yaml))`` build the same modules (full width, on the meta
device); the published configs differ where the models do, so one model cannot pass for all;
narrow copies of the builders reproduce PySlowFast's reference outputs."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from avadet.config import load_config
from avadet.errors import ConfigError
from avadet.models import (
    PUBLISHED_MODELS,
    ActionModel,
    NonLocal,
    build_model,
    load_checkpoint,
    slow_8x8_r50,
    slowfast_32x2_r50,
    slowfast_32x2_r101_50_50,
    slowfast_r50_detection,
)
from avadet.models.checkpoint_keys import _pytorchvideo_key

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "ava"
BUILDER_OF_YAML: dict[str, Callable[..., ActionModel]] = {
    "slowfast_32x2_r50_short.yaml": slowfast_32x2_r50,
    "slowfast_32x2_r101_50_50.yaml": slowfast_32x2_r101_50_50,
    "slow_8x8_r50.yaml": slow_8x8_r50,
}
# ModelConfig fields in which the published configs differ, per pair.
EXPECTED_DIFFERENCES = {
    ("slowfast_32x2_r50_short.yaml", "slowfast_32x2_r101_50_50.yaml"): {
        "depth",
        "fusion_kernel_size",
        "slow_temporal_kernels",
        "fast_temporal_kernels",
        "nonlocal_blocks",
        "roi_aligned",
    },
    ("slowfast_32x2_r50_short.yaml", "slow_8x8_r50.yaml"): {"arch", "nonlocal_instantiation", "roi_aligned"},
    ("slowfast_32x2_r101_50_50.yaml", "slow_8x8_r50.yaml"): {
        "arch",
        "depth",
        "fusion_kernel_size",
        "slow_temporal_kernels",
        "fast_temporal_kernels",
        "nonlocal_blocks",
        "nonlocal_instantiation",
    },
}


def _meta(build: Callable[..., ActionModel], *args: Any, **kwargs: Any) -> ActionModel:
    with torch.device("meta"):
        return build(*args, **kwargs)


def _shapes(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def _nonlocal(model: ActionModel) -> list[tuple[str, Any, str]]:
    return [
        (name, m.pool.kernel_size if m.pool is not None else None, m.instantiation)
        for name, m in model.named_modules()
        if isinstance(m, NonLocal)
    ]


def _assert_same_model(mine: ActionModel, theirs: ActionModel) -> None:
    assert _shapes(mine) == _shapes(theirs)  # same keys, order and shapes
    assert mine.head.aligned == theirs.head.aligned
    assert _nonlocal(mine) == _nonlocal(theirs)
    for attr in ("activation", "spatial_scale", "output_size", "sampling_ratio"):
        assert getattr(mine.head, attr) == getattr(theirs.head, attr), attr
    assert mine.backbone.feature_stride == theirs.backbone.feature_stride
    assert repr(mine) == repr(theirs)  # every layer's kernel, stride, dilation, dropout, ...


def test_every_published_config_has_a_builder():
    yamls = sorted(p.name for p in CONFIGS.glob("*.yaml") if p.name != "ava_base.yaml")
    assert yamls == sorted(BUILDER_OF_YAML)
    assert list(PUBLISHED_MODELS) == [
        "slowfast_32x2_r50",
        "slowfast_32x2_r101_50_50",
        "slow_8x8_r50",
        "slowfast_r50_detection",
    ]
    assert all(PUBLISHED_MODELS[name].__name__ == name for name in PUBLISHED_MODELS)
    for builder in PUBLISHED_MODELS.values():  # the clip it expects and where it comes from
        doc = builder.__doc__ or ""
        assert "Clip:" in doc and "short side" in doc and ("PySlowFast" in doc or "pytorchvideo" in doc)


@pytest.mark.parametrize("yaml_name", sorted(BUILDER_OF_YAML))
def test_builder_equals_its_config(yaml_name):
    mine = _meta(BUILDER_OF_YAML[yaml_name])
    theirs = _meta(build_model, load_config(CONFIGS / yaml_name))
    _assert_same_model(mine, theirs)


def test_published_configs_differ_where_the_models_do():
    sections = {name: dataclasses.asdict(load_config(CONFIGS / name).model) for name in BUILDER_OF_YAML}
    pairs = {frozenset(pair) for pair in itertools.combinations(BUILDER_OF_YAML, 2)}
    assert {frozenset(pair) for pair in EXPECTED_DIFFERENCES} == pairs
    for (a, b), expected in EXPECTED_DIFFERENCES.items():
        assert {k for k in sections[a] if sections[a][k] != sections[b][k]} == expected, (a, b)
    models = {name: _meta(builder) for name, builder in PUBLISHED_MODELS.items()}
    for a, b in itertools.combinations(["slowfast_32x2_r50", "slowfast_32x2_r101_50_50", "slow_8x8_r50"], 2):
        assert _shapes(models[a]) != _shapes(models[b]), (a, b)
    assert _nonlocal(models["slowfast_32x2_r101_50_50"]) and not _nonlocal(models["slowfast_32x2_r50"])
    assert models["slowfast_32x2_r50"].head.aligned and not models["slow_8x8_r50"].head.aligned


def test_slowfast_r50_detection_is_pytorchvideos_model():
    import pytorchvideo.models.hub as hub  # test extra, as in test_pytorchvideo_parity

    mine = _meta(slowfast_r50_detection)
    # The model of test_pytorchvideo_parity, which matches pytorchvideo's outputs.
    _assert_same_model(mine, _meta(build_model, arch="slowfast", depth=50, fusion_kernel_size=7, roi_aligned=False))
    # Only the RoIAlign sets it apart from PySlowFast's SLOWFAST_32x2_R50_SHORT.
    short = _meta(slowfast_32x2_r50)
    assert _shapes(mine) == _shapes(short) and repr(mine) != repr(short)
    assert (mine.head.aligned, short.head.aligned) == (False, True)
    reference = _meta(hub.slowfast_r50_detection, pretrained=False)
    theirs = {_pytorchvideo_key(k): tuple(v.shape) for k, v in reference.state_dict().items()}
    assert dict(_shapes(mine)) == theirs
    roi = reference.detection_head.roi_layer
    assert (roi.aligned, roi.spatial_scale, roi.sampling_ratio) == (
        mine.head.aligned,
        mine.head.spatial_scale,
        mine.head.sampling_ratio,
    )
    assert isinstance(reference.detection_head.activation, torch.nn.Sigmoid) and mine.head.activation == "sigmoid"


# Narrow (width 8) PySlowFast references in tests/fixtures/models of each builder's architecture;
# SLOWFAST_32x2_R50 c2 is pytorchvideo's detection model (unaligned RoIAlign).
REFERENCES = {
    "slowfast_32x2_r50": "pyslowfast_slowfast_32x2_r50_short_w8",
    "slowfast_32x2_r101_50_50": "pyslowfast_slowfast_32x2_r101_50_50_w8",
    "slow_8x8_r50": "pyslowfast_slow_8x8_r50_c2_w8",
    "slowfast_r50_detection": "pyslowfast_slowfast_32x2_r50_c2_w8",
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_narrow_builders_reproduce_pyslowfast(name, data_dir, check_outputs):
    assert set(REFERENCES) == set(PUBLISHED_MODELS)
    model = PUBLISHED_MODELS[name](width_per_group=8)
    report = load_checkpoint(model, data_dir / f"{REFERENCES[name]}.pyth")
    assert report.ok and not report.fresh
    check_outputs(model, torch.load(data_dir / f"{REFERENCES[name]}_io.pt", weights_only=True))


def test_overrides():
    model = slowfast_32x2_r101_50_50(width_per_group=8, num_classes=3, dropout=0.0)
    assert model.head.projection.out_features == 3 and isinstance(model.head.dropout, torch.nn.Identity)
    assert model.backbone.lateral_res2.conv.kernel_size == (5, 1, 1)  # the rest stays the model's
    assert slowfast_r50_detection(width_per_group=8, roi_aligned=True).head.aligned is True
    with pytest.raises(ConfigError, match="unknown model setting"):
        slow_8x8_r50(num_clases=3)
