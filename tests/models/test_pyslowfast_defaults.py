"""A key a PySlowFast YAML omits takes PySlowFast's own default, key by key, in the model
settings (config_from_pyslowfast_cfg) and the test-path data settings
(pyslowfast_data_settings) of a .pyth checkpoint's cfg."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

from avadet.errors import ConfigError
from avadet.models import config_from_pyslowfast_cfg, pyslowfast_data_settings
from avadet.models.build import PYSLOWFAST_DEFAULTS

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"
CFGS = ["pyslowfast_slowfast_32x2_r50_short_w8.pyth", "pyslowfast_slow_8x8_r50_c2_w8.pyth"]

# PySlowFast slowfast/config/defaults.py (facebookresearch/SlowFast 287ec00): section, key, the
# line that sets it, its value. Every key config_from_pyslowfast_cfg reads.
MODEL_DEFAULTS = [
    ("MODEL", "ARCH", 393, "slowfast"),
    ("MODEL", "NUM_CLASSES", 399, 400),
    ("MODEL", "DROPOUT_RATE", 419, 0.5),
    ("MODEL", "HEAD_ACT", 428, "softmax"),
    ("RESNET", "TRANS_FUNC", 296, "bottleneck_transform"),
    ("RESNET", "NUM_GROUPS", 299, 1),
    ("RESNET", "WIDTH_PER_GROUP", 302, 64),
    ("RESNET", "STRIDE_1X1", 308, False),
    ("RESNET", "DEPTH", 317, 50),
    ("RESNET", "NUM_BLOCK_TEMP_KERNEL", 321, [[3], [4], [6], [3]]),
    ("RESNET", "SPATIAL_STRIDES", 324, [[1], [2], [2], [2]]),
    ("RESNET", "SPATIAL_DILATIONS", 327, [[1], [1], [1], [1]]),
    ("NONLOCAL", "LOCATION", 366, [[[]], [[]], [[]], [[]]]),
    ("NONLOCAL", "GROUP", 369, [[1], [1], [1], [1]]),
    ("NONLOCAL", "INSTANTIATION", 372, "dot_product"),
    ("NONLOCAL", "POOL", 376, [[[1, 2, 2], [1, 2, 2]]] * 4),
    ("SLOWFAST", "BETA_INV", 637, 8),
    ("SLOWFAST", "ALPHA", 641, 8),
    ("SLOWFAST", "FUSION_CONV_CHANNEL_RATIO", 644, 2),
    ("SLOWFAST", "FUSION_KERNEL_SZ", 648, 5),
    ("DETECTION", "ENABLE", 950, False),
    ("DETECTION", "ALIGNED", 953, True),
    ("DETECTION", "SPATIAL_SCALE_FACTOR", 956, 16),
    ("DETECTION", "ROI_XFORM_RESOLUTION", 959, 7),
]
# The same file, every key pyslowfast_data_settings reads.
DATA_DEFAULTS = [
    ("DATA", "NUM_FRAMES", 666, 8),
    ("DATA", "SAMPLING_RATE", 669, 8),
    ("DATA", "MEAN", 687, [0.45, 0.45, 0.45]),
    ("DATA", "STD", 693, [0.225, 0.225, 0.225]),
    ("DATA", "TEST_CROP_SIZE", 716, 256),
    ("AVA", "DETECTION_SCORE_THRESH", 996, 0.9),
    ("AVA", "BGR", 999, False),
    ("AVA", "TEST_FORCE_FLIP", 1010, False),
    ("AVA", "IMG_PROC_BACKEND", 1025, "cv2"),
]


def _raw(name: str) -> dict:
    return yaml.safe_load(torch.load(MODELS / name, weights_only=True)["cfg"])


def _outcome(function, raw: dict):
    """What ``function`` makes of the YAML ``raw``: its result, or its error message."""
    try:
        return function(yaml.safe_dump(raw))
    except ConfigError as exc:
        return f"ConfigError: {exc}"


def _without_and_with_default(raw: dict, section: str, key: str, default):
    omitted, explicit = copy.deepcopy(raw), copy.deepcopy(raw)
    omitted[section].pop(key, None)
    explicit[section][key] = copy.deepcopy(default)
    return omitted, explicit


def test_the_tables_are_the_code_s():
    listed = {(s, k): v for s, k, _, v in MODEL_DEFAULTS + DATA_DEFAULTS}
    assert listed == PYSLOWFAST_DEFAULTS


@pytest.mark.parametrize("checkpoint", CFGS)
@pytest.mark.parametrize("section, key, line, default", MODEL_DEFAULTS,
                         ids=[f"{s}.{k}" for s, k, _, _ in MODEL_DEFAULTS])
def test_an_omitted_model_key_takes_pyslowfasts_default(checkpoint, section, key, line, default):
    raw = _raw(checkpoint)
    # The key left out vs set to defaults.py's value: the same model settings (or the same
    # error), whatever the checkpoint's own value was.
    omitted, explicit = _without_and_with_default(raw, section, key, default)
    assert _outcome(config_from_pyslowfast_cfg, omitted) == _outcome(
        config_from_pyslowfast_cfg, explicit), f"{section}.{key} (defaults.py:{line})"


@pytest.mark.parametrize("checkpoint", CFGS)
@pytest.mark.parametrize("section, key, line, default", DATA_DEFAULTS,
                         ids=[f"{s}.{k}" for s, k, _, _ in DATA_DEFAULTS])
def test_an_omitted_data_key_takes_pyslowfasts_default(checkpoint, section, key, line, default):
    omitted, explicit = _without_and_with_default(_raw(checkpoint), section, key, default)
    assert _outcome(pyslowfast_data_settings, omitted) == _outcome(
        pyslowfast_data_settings, explicit), f"{section}.{key} (defaults.py:{line})"


def test_the_defaults_that_differ_from_the_ava_configs():
    # The AVA configs set these; a cfg without them is PySlowFast's plain default.
    raw = _raw(CFGS[0])
    assert raw["DETECTION"]["ALIGNED"] is True and raw["MODEL"]["HEAD_ACT"] == "sigmoid"
    del raw["MODEL"]["HEAD_ACT"]
    raw["DETECTION"]["ALIGNED"] = False
    cfg = config_from_pyslowfast_cfg(yaml.safe_dump(raw))
    assert (cfg.head_activation, cfg.roi_aligned) == ("softmax", False)
    del raw["DETECTION"]["ALIGNED"]
    assert config_from_pyslowfast_cfg(yaml.safe_dump(raw)).roi_aligned is True
    # R101 without NUM_BLOCK_TEMP_KERNEL: temporal kernels in the first 6 blocks of res4 only.
    slow = _raw(CFGS[1])
    slow["RESNET"]["DEPTH"] = 101
    del slow["RESNET"]["NUM_BLOCK_TEMP_KERNEL"]
    assert config_from_pyslowfast_cfg(yaml.safe_dump(slow)).slow_temporal_kernels == [
        1, 1, [3] * 6 + [1] * 17, 3]
    # SlowFast without it: the one-pathway default cannot build two pathways (nor can PySlowFast).
    del raw["RESNET"]["NUM_BLOCK_TEMP_KERNEL"]
    with pytest.raises(ConfigError, match="NUM_BLOCK_TEMP_KERNEL"):
        config_from_pyslowfast_cfg(yaml.safe_dump(raw))
    raw["RESNET"]["NUM_BLOCK_TEMP_KERNEL"] = [[3, 3], [4, 4], [6, 6]]  # a stage missing
    with pytest.raises(ConfigError, match="4 stages"):
        config_from_pyslowfast_cfg(yaml.safe_dump(raw))


@pytest.mark.parametrize("checkpoint, expected", [
    (CFGS[0], dict(num_frames=32, sampling_rate=2, test_short_side=224,
                   test_detection_score=0.8)),
    (CFGS[1], dict(num_frames=4, sampling_rate=16, test_short_side=256,
                   test_detection_score=0.9)),
])
def test_data_settings_of_the_checkpoints(checkpoint, expected):
    settings = pyslowfast_data_settings(torch.load(MODELS / checkpoint, weights_only=True)["cfg"])
    assert settings == dict(expected, mean=[0.45] * 3, std=[0.225] * 3, box_scaling="long_side")


@pytest.mark.parametrize("section, key, value", [
    ("AVA", "BGR", True), ("AVA", "TEST_FORCE_FLIP", True), ("AVA", "IMG_PROC_BACKEND", "pytorch"),
])
def test_data_settings_avadet_does_not_reproduce_are_refused(section, key, value):
    raw = _raw(CFGS[0])
    raw[section][key] = value
    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        pyslowfast_data_settings(yaml.safe_dump(raw))
