"""The published AVA models by name: one builder per released architecture.

Each builder writes down the settings of one model as a :class:`~avadet.config.ModelConfig`
and builds it with :func:`~avadet.models.build_model`, so a published model and its YAML in
``configs/ava/`` go through the same code. What a builder does not name is ModelConfig's
default, which is PySlowFast's AVA setting: res5 dilated to feature stride 16, RoIAlign 7x7
at scale 1/16 with adaptive sampling, max-pooled RoI features, dropout 0.5, a sigmoid over 80
classes. ``tests/models/test_published.py`` checks every builder against its YAML.

Keyword arguments override any ModelConfig field, e.g. ``num_classes=60``,
``width_per_group=8`` (a narrow copy for CPU tests: the same layers with 1/8 of the
channels), ``dropout=0.0``; an unknown name is a :class:`~avadet.errors.ConfigError`::

    model = slowfast_32x2_r50(num_classes=60)
    model = PUBLISHED_MODELS["slow_8x8_r50"](width_per_group=8)

The builders return randomly initialised models; load weights with
:func:`~avadet.models.load_checkpoint`.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

from avadet.config import ModelConfig
from avadet.errors import ConfigError
from avadet.models.build import build_model
from avadet.models.heads import ActionModel


def slowfast_32x2_r50(**overrides: Any) -> ActionModel:
    """SlowFast 32x2 R50 for AVA: PySlowFast's ``configs/AVA/SLOWFAST_32x2_R50_SHORT.yaml``,
    avadet's ``configs/ava/slowfast_32x2_r50_short.yaml``.

    Clip: 32 frames at stride 2 (about 2.1 s at 30 fps) around the keyframe, of which the Slow
    pathway takes 8 (alpha 4); short side 224 at test (trained on 224 crops of a 256-320
    short side). Lateral kernel 7, aligned RoIAlign.
    """
    return build_model(published_config("slowfast_32x2_r50"), **overrides)


def slowfast_32x2_r101_50_50(**overrides: Any) -> ActionModel:
    """SlowFast 32x2 R101 with non-local blocks for AVA: PySlowFast's
    ``configs/AVA/c2/SLOWFAST_32x2_R101_50_50.yaml`` (its released Caffe2 model), avadet's
    ``configs/ava/slowfast_32x2_r101_50_50.yaml``.

    Clip: 32 frames at stride 2 around the keyframe, Slow pathway 8 (alpha 4); short side 256
    at test. "50_50": only the first 6 of res4's 23 blocks have a temporal kernel; non-local
    blocks (dot product, phi and g max-pooled 2x2x2) follow Slow res4 blocks 6, 13 and 20.
    Lateral kernel 5, unaligned RoIAlign.
    """
    return build_model(published_config("slowfast_32x2_r101_50_50"), **overrides)


def slow_8x8_r50(**overrides: Any) -> ActionModel:
    """Slow-only 8x8 R50 for AVA: PySlowFast's ``configs/AVA/c2/SLOW_8x8_R50.yaml`` (its
    released Caffe2 model), avadet's ``configs/ava/slow_8x8_r50.yaml``.

    Clip: 4 frames at stride 16 around the keyframe (DATA.NUM_FRAMES / SAMPLING_RATE of that
    config), all of them in the one pathway; short side 256 at test. Unaligned RoIAlign.
    """
    return build_model(published_config("slow_8x8_r50"), **overrides)


def slowfast_r50_detection(**overrides: Any) -> ActionModel:
    """pytorchvideo's ``slowfast_r50_detection`` (hub checkpoint
    ``SLOWFAST_8x8_R50_DETECTION.pyth``): the SlowFast R50 of :func:`slowfast_32x2_r50`
    with pytorchvideo's unaligned RoIAlign (torchvision's ``RoIAlign`` default). Its state
    dicts load with ``load_checkpoint(model, path)`` (source ``"pytorchvideo"``).

    Clip: 32 frames, of which the Slow pathway takes 8 (alpha 4; "8x8" names 8 Slow frames at
    stride 8, i.e. 32 Fast frames at stride 2); short side 256, as in pytorchvideo's AVA
    inference example. No avadet YAML; ``tests/models/test_pytorchvideo_parity.py`` checks
    the outputs against pytorchvideo.
    """
    return build_model(published_config("slowfast_r50_detection"), **overrides)


# PySlowFast's NUM_BLOCK_TEMP_KERNEL [6, 6] for R101 50_50's res4: kernel 3 in blocks 0-5,
# then 1.
_R101_50_50_RES4 = [3] * 6 + [1] * 17

# The architecture of each published model (what a builder does not name is ModelConfig's
# default); the builders above document where each comes from.
_PUBLISHED_CONFIGS: dict[str, ModelConfig] = {
    "slowfast_32x2_r50": ModelConfig(
        arch="slowfast", depth=50, alpha=4, fusion_kernel_size=7, roi_aligned=True),
    "slowfast_32x2_r101_50_50": ModelConfig(
        arch="slowfast",
        depth=101,
        alpha=4,
        fusion_kernel_size=5,
        slow_temporal_kernels=[1, 1, _R101_50_50_RES4, 3],
        fast_temporal_kernels=[3, 3, list(_R101_50_50_RES4), 3],
        nonlocal_blocks=[[], [], [6, 13, 20], []],
        nonlocal_pool=[2, 2, 2],
        nonlocal_instantiation="dot_product",
        roi_aligned=False,
    ),
    "slow_8x8_r50": ModelConfig(
        arch="slow",
        depth=50,
        slow_temporal_kernels=[1, 1, 3, 3],
        # The config's instantiation; it only matters if non-local blocks are added.
        nonlocal_instantiation="softmax",
        roi_aligned=False,
    ),
    "slowfast_r50_detection": ModelConfig(
        arch="slowfast", depth=50, alpha=4, fusion_kernel_size=7, roi_aligned=False),
}


def published_config(name: str, **overrides: Any) -> ModelConfig:
    """The :class:`ModelConfig` of the published model ``name`` (a key of
    :data:`PUBLISHED_MODELS`), with ``overrides``; an unknown name is a ConfigError."""
    if name not in _PUBLISHED_CONFIGS:
        raise ConfigError(f"unknown published model {name!r}; known: {', '.join(_PUBLISHED_CONFIGS)}")
    return dataclasses.replace(copy.deepcopy(_PUBLISHED_CONFIGS[name]), **overrides)


# Name -> builder, for command lines and loops over the published models.
PUBLISHED_MODELS: dict[str, Callable[..., ActionModel]] = {
    "slowfast_32x2_r50": slowfast_32x2_r50,
    "slowfast_32x2_r101_50_50": slowfast_32x2_r101_50_50,
    "slow_8x8_r50": slow_8x8_r50,
    "slowfast_r50_detection": slowfast_r50_detection,
}
