"""configs/ava/*.yaml reproduce PySlowFast's AVA configs: each loads, its model takes the
weights of the matching PySlowFast checkpoint (narrow w8 copies in tests/fixtures/models, same
architecture), and the recipe's settings are PySlowFast's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

from avadet.config import load_config
from avadet.models import build_model, config_from_pyslowfast_cfg, load_checkpoint

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "fixtures" / "models"

CASES = [
    ("slowfast_32x2_r50_short.yaml", "pyslowfast_slowfast_32x2_r50_short_w8.pyth"),
    ("slowfast_32x2_r101_50_50.yaml", "pyslowfast_slowfast_32x2_r101_50_50_w8.pyth"),
    ("slow_8x8_r50.yaml", "pyslowfast_slow_8x8_r50_c2_w8.pyth"),
]


def _pyslowfast_cfg(name: str) -> dict:
    return yaml.safe_load(torch.load(MODELS / name, map_location="cpu", weights_only=False)["cfg"])


@pytest.mark.parametrize("config, checkpoint", CASES)
def test_config_matches_pyslowfast(config, checkpoint):
    cfg = load_config(REPO / "configs" / "ava" / config)
    raw = _pyslowfast_cfg(checkpoint)
    theirs = config_from_pyslowfast_cfg(yaml.safe_dump(raw))
    ours = dataclasses.replace(cfg.model, width_per_group=theirs.width_per_group)
    fields = ["arch", "depth", "slow_temporal_kernels", "res5_dilation", "nonlocal_blocks", "head",
              "num_classes", "dropout", "roi_output_size", "roi_aligned", "roi_spatial_scale",
              "head_activation"]
    if ours.arch == "slowfast":
        fields += ["alpha", "beta_inv", "fusion_conv_channel_ratio", "fusion_kernel_size",
                   "fast_temporal_kernels"]
    if any(ours.nonlocal_blocks):
        fields += ["nonlocal_pool", "nonlocal_instantiation"]
    for name in fields:
        assert getattr(ours, name) == getattr(theirs, name), name
    # The narrow copy of the model takes PySlowFast's weights, every tensor.
    model = build_model(ours)
    report = load_checkpoint(model, MODELS / checkpoint)
    assert report.ok and not report.fresh
    # Data sampling and the test size.
    data = raw["DATA"]
    assert (cfg.data.num_frames, cfg.data.sampling_rate) == (data["NUM_FRAMES"], data["SAMPLING_RATE"])
    assert cfg.data.train_jitter_scales == data["TRAIN_JITTER_SCALES"]
    assert cfg.data.train_crop_size == data["TRAIN_CROP_SIZE"]
    assert cfg.data.test_short_side == data["TEST_CROP_SIZE"]
    assert cfg.data.test_detection_score == raw["AVA"]["DETECTION_SCORE_THRESH"]
    assert cfg.data.mean == data["MEAN"] and cfg.data.std == data["STD"]
    assert cfg.data.train_use_detections == (len(raw["AVA"]["TRAIN_PREDICT_BOX_LISTS"]) > 1)
    assert cfg.solver.batch_size == raw["TRAIN"]["BATCH_SIZE"]
    assert cfg.solver.bn_weight_decay == raw["BN"]["WEIGHT_DECAY"]
    assert cfg.solver.weight_decay == raw["SOLVER"]["WEIGHT_DECAY"]
    assert cfg.solver.momentum == raw["SOLVER"]["MOMENTUM"]
    assert cfg.solver.nesterov == raw["SOLVER"]["NESTEROV"]


def test_short_schedule_is_pyslowfasts():
    cfg = load_config(REPO / "configs" / "ava" / "slowfast_32x2_r50_short.yaml")
    solver = _pyslowfast_cfg("pyslowfast_slowfast_32x2_r50_short_w8.pyth")["SOLVER"]
    assert solver["LR_POLICY"] == "steps_with_relative_lrs" and cfg.solver.schedule == "steps"
    assert cfg.solver.steps == solver["STEPS"] and cfg.solver.lrs == solver["LRS"]
    assert cfg.solver.base_lr == solver["BASE_LR"]
    assert cfg.solver.max_epoch == solver["MAX_EPOCH"]
    assert cfg.solver.warmup_epochs == solver["WARMUP_EPOCHS"]
    assert cfg.solver.warmup_start_lr == solver["WARMUP_START_LR"]
