"""avadet reproduces PySlowFast's AVA models: the reference checkpoints in tests/fixtures/models
(PySlowFast's own code, width 8, calibrated random weights) load from their .pyth and Caffe2
pickles, and the outputs match the saved ones."""

from __future__ import annotations

import pytest
import torch

from avadet.models import (
    ActionModel,
    AVAHead,
    SlowFast,
    SlowOnly,
    build_model,
    build_model_from_checkpoint,
    load_checkpoint,
    model_config_from_checkpoint,
)

R101_KERNELS = [3] * 6 + [1] * 17  # res4 of R101_50_50: temporal kernels in the first 6 blocks


def _explicit(stem: str) -> ActionModel:
    """The same architectures from plain arguments, no config."""
    if stem.startswith("pyslowfast_slow_8x8"):
        return ActionModel(SlowOnly(width_per_group=8), AVAHead(in_channels=(256,), aligned=False))
    if "r101" in stem:
        backbone = SlowFast(
            depth=101,
            width_per_group=8,
            lateral_kernel=5,
            slow_temporal_kernels=(1, 1, R101_KERNELS, 3),
            fast_temporal_kernels=(3, 3, R101_KERNELS, 3),
            slow_nonlocal=((), (), (6, 13, 20), ()),
            nonlocal_pool=(2, 2, 2),
        )
    else:
        backbone = SlowFast(width_per_group=8, alpha=4, lateral_kernel=7)
    return ActionModel(backbone, AVAHead(in_channels=backbone.out_channels, aligned="short" in stem))


STEMS = [
    "pyslowfast_slowfast_32x2_r50_c2_w8",
    "pyslowfast_slowfast_32x2_r50_short_w8",
    "pyslowfast_slowfast_32x2_r101_50_50_w8",
    "pyslowfast_slow_8x8_r50_c2_w8",
]


@pytest.mark.parametrize("stem", STEMS)
def test_pyth_from_embedded_cfg(stem, data_dir, check_outputs):
    io = torch.load(data_dir / f"{stem}_io.pt", weights_only=True)
    model, report = build_model_from_checkpoint(data_dir / f"{stem}.pyth")
    assert report.source == "pyslowfast" and report.ok
    assert sum(p.numel() for p in model.parameters()) == io["config_summary"]["params"]
    assert model.head.aligned == io["config_summary"]["head"]["roi_align"][0]["aligned"]
    check_outputs(model, io)


@pytest.mark.parametrize("stem", STEMS)
def test_pyth_into_explicit_model(stem, data_dir, check_outputs):
    io = torch.load(data_dir / f"{stem}_io.pt", weights_only=True)
    model = _explicit(stem)
    load_checkpoint(model, data_dir / f"{stem}.pyth")
    check_outputs(model, io)


@pytest.mark.parametrize("stem", [s for s in STEMS if "short" not in s])
def test_caffe2_pickle_gives_identical_weights(stem, data_dir, check_outputs):
    from_pyth, _ = build_model_from_checkpoint(data_dir / f"{stem}.pyth")
    model = build_model(model_config_from_checkpoint(data_dir / f"{stem}.pyth"))
    report = load_checkpoint(model, data_dir / f"{stem}_caffe2.pkl")
    assert report.source == "caffe2" and report.ok and report.ignored == ["model_iter"]
    expected = from_pyth.state_dict()
    for key, value in model.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(value, expected[key]), key
    check_outputs(model, torch.load(data_dir / f"{stem}_io.pt", weights_only=True))


def test_embedded_cfg_translation(data_dir):
    cfg = model_config_from_checkpoint(data_dir / "pyslowfast_slowfast_32x2_r101_50_50_w8.pyth")
    assert (cfg.depth, cfg.width_per_group, cfg.alpha, cfg.fusion_kernel_size) == (101, 8, 4, 5)
    assert cfg.slow_temporal_kernels == [1, 1, R101_KERNELS, 3]
    assert cfg.fast_temporal_kernels == [3, 3, R101_KERNELS, 3]
    assert cfg.nonlocal_blocks == [[], [], [6, 13, 20], []]
    assert cfg.nonlocal_pool == [2, 2, 2] and cfg.nonlocal_instantiation == "dot_product"
    assert cfg.res5_dilation == 2 and cfg.head == "ava" and cfg.roi_aligned is False
    slow = model_config_from_checkpoint(data_dir / "pyslowfast_slow_8x8_r50_c2_w8.pyth")
    assert slow.arch == "slow" and slow.slow_temporal_kernels == [1, 1, 3, 3]


def test_kinetics_and_unsupported_pyslowfast_cfgs(data_dir):
    import yaml

    from avadet.errors import ConfigError
    from avadet.models import config_from_pyslowfast_cfg

    raw = yaml.safe_load(torch.load(data_dir / "pyslowfast_slowfast_32x2_r50_c2_w8.pyth", weights_only=True)["cfg"])
    raw["DETECTION"]["ENABLE"] = False
    raw["RESNET"]["SPATIAL_STRIDES"][3] = [2, 2]
    raw["RESNET"]["SPATIAL_DILATIONS"][3] = [1, 1]
    raw["MODEL"].update(NUM_CLASSES=400, HEAD_ACT="softmax")
    cfg = config_from_pyslowfast_cfg(yaml.safe_dump(raw))
    assert (cfg.head, cfg.res5_dilation, cfg.num_classes, cfg.head_activation) == ("kinetics", 1, 400, "softmax")
    assert build_model(cfg).backbone.feature_stride == 32
    # A setting the cfg leaves out takes PySlowFast's default, e.g. DETECTION.ALIGNED: True.
    assert raw["DETECTION"]["ALIGNED"] is False and cfg.roi_aligned is False
    del raw["DETECTION"]["ALIGNED"]
    assert config_from_pyslowfast_cfg(yaml.safe_dump(raw)).roi_aligned is True
    raw["RESNET"]["NUM_GROUPS"] = 32
    with pytest.raises(ConfigError, match="NUM_GROUPS"):
        config_from_pyslowfast_cfg(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="not a PySlowFast config"):
        config_from_pyslowfast_cfg("a: 1")
