"""MMAction2's AVA checkpoints load into avadet's model and give MMAction2's scores.

The references (tests/fixtures/models/mmaction_*, made by tools/parity/make_mmaction_fixtures.py
with MMAction2's own modules, base width 8) are recipes of the checkpoint: the test writes
MMAction2's ``{"meta", "state_dict"}`` file from it (the weights' hash is checked) and loads
that file like a user's.
"""

from __future__ import annotations

import copy

import pytest
import torch
from fixtures.mmaction_reference import make_input, read_recipe, write_checkpoint

from avadet.errors import CheckpointError
from avadet.models import build_model, load_checkpoint, mmaction_settings, read_checkpoint
from avadet.models.checkpoint_keys import guess_style
from avadet.models.checkpoint_mmaction import mmaction_key, parse_config_text

SLOWFAST = "mmaction_slowfast_r50_4x16x1_w8"
SLOWONLY = "mmaction_slowonly_r50_4x16x1_w8"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def _write(data_dir, tmp_path, stem, name=None, edit=None):
    recipe = read_recipe(data_dir / f"{stem}.json")
    path = write_checkpoint(recipe, tmp_path / (name or f"{stem}.pth"))
    if edit is not None:
        obj = torch.load(path, weights_only=True)
        edit(obj)
        torch.save(obj, path)
    return path


def _load(path):
    cfg, data, class_ids = mmaction_settings(read_checkpoint(path)[1], path)
    model = build_model(cfg).eval()
    report = load_checkpoint(model, path)
    return model, report, cfg, data, class_ids


def _run(model, data_dir, stem):
    io = torch.load(data_dir / f"{stem}_io.pt", weights_only=True)
    clip = make_input(tuple(io["input_shape"]), io["input_seed"])
    with torch.no_grad():
        return model(clip, io["rois"], return_logits=True), io


@pytest.mark.parametrize("stem", [SLOWFAST, SLOWONLY])
def test_reference_checkpoint_reproduces_mmaction_scores(stem, data_dir, tmp_path):
    model, report, cfg, data, class_ids = _load(_write(data_dir, tmp_path, stem))
    assert report.source == "mmaction2" and report.ok
    out, io = _run(model, data_dir, stem)
    # MMAction2's column 0 is the background: avadet's columns are its 1..80.
    assert io["scores"].shape == (3, 81) and out.scores.shape == (3, 80)
    assert (out.scores - io["scores"][:, 1:]).abs().max().item() <= 1e-5
    assert (out.logits - io["logits"][:, 1:]).abs().max().item() <= 1e-5 * max(1.0, io["logits"].abs().max().item())
    assert (out.features - io["roi_features"]).abs().max().item() <= 1e-5 * max(1.0, io["roi_features"].abs().max().item())
    # The reference is not degenerate: scores spread between 0 and 1.
    assert ((io["scores"] > 0.05) & (io["scores"] < 0.95)).float().mean() > 0.5
    assert class_ids == list(range(1, 81))
    assert data["test_short_side"] == 256 and data["resize_rounding"] == "round"
    assert data["clip_center_offset"] == 1 and data["test_detection_score"] == 0.9
    assert data["test_keep_best_detection"] is True
    assert data["box_clipping"] == "none"  # proposals scaled to the input as they are
    # Every data setting is a DataConfig field, valid as a config.
    from avadet.config import Config, DataConfig, validate

    validate(Config(data=DataConfig(**data)))
    assert data["mean"] == pytest.approx(IMAGENET_MEAN) and data["std"] == pytest.approx(IMAGENET_STD)
    assert cfg.res5_stride == 1 and cfg.res5_dilation == 1 and cfg.roi_output_size == 8
    assert cfg.roi_aligned and cfg.depth == 50 and cfg.width_per_group == 8


def test_slowfast_settings_are_mmaction_s(data_dir, tmp_path):
    _, _, cfg, data, _ = _load(_write(data_dir, tmp_path, SLOWFAST))
    assert (cfg.arch, cfg.alpha, cfg.beta_inv, cfg.fusion_kernel_size) == ("slowfast", 8, 8, 5)
    assert cfg.lateral_norm is False and cfg.slow_frames == "stride"
    assert (data["num_frames"], data["sampling_rate"]) == (32, 2)


def test_slowonly_settings_are_mmaction_s(data_dir, tmp_path):
    _, _, cfg, data, _ = _load(_write(data_dir, tmp_path, SLOWONLY))
    assert cfg.arch == "slow" and cfg.slow_temporal_kernels == [1, 1, 3, 3]
    assert (data["num_frames"], data["sampling_rate"]) == (4, 16)


def test_pyslowfast_slow_frames_would_give_other_scores(data_dir, tmp_path):
    """The Slow frame rule matters: PySlowFast's linspace positions miss the reference."""
    model, *_ = _load(_write(data_dir, tmp_path, SLOWFAST))
    model.backbone.slow_frames = "linspace"
    out, io = _run(model, data_dir, SLOWFAST)
    assert (out.scores - io["scores"][:, 1:]).abs().max().item() > 1e-3


def test_without_meta_the_zoo_file_name_gives_the_clip(data_dir, tmp_path):
    def drop_meta(obj):
        del obj["meta"]

    name = "slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb_20220906-5180ea3c.pth"
    path = _write(data_dir, tmp_path, SLOWFAST, name=name, edit=drop_meta)
    model, report, cfg, data, _ = _load(path)
    assert (cfg.alpha, data["num_frames"], data["sampling_rate"]) == (8, 32, 2)
    out, io = _run(model, data_dir, SLOWFAST)
    assert (out.scores - io["scores"][:, 1:]).abs().max().item() <= 1e-5

    nameless = _write(data_dir, tmp_path, SLOWFAST, name="weights.pth", edit=drop_meta)
    with pytest.raises(CheckpointError, match=r"weights\.pth.*TxTAUx1"):
        mmaction_settings(read_checkpoint(nameless)[1], nameless)


def test_background_column_is_sliced_off(data_dir, tmp_path):
    path = _write(data_dir, tmp_path, SLOWONLY)
    state = torch.load(path, weights_only=True)["state_dict"]
    model, report, *_ = _load(path)
    assert torch.equal(model.head.projection.weight, state["roi_head.bbox_head.fc_cls.weight"][1:])
    assert torch.equal(model.head.projection.bias, state["roi_head.bbox_head.fc_cls.bias"][1:])
    assert any("fc_cls.weight[0] (background)" in k for k in report.ignored)


def test_custom_classes_name_the_columns(data_dir, tmp_path):
    def three_classes(obj):
        sd = obj["state_dict"]
        sd["roi_head.bbox_head.fc_cls.weight"] = sd["roi_head.bbox_head.fc_cls.weight"][:4].clone()
        sd["roi_head.bbox_head.fc_cls.bias"] = sd["roi_head.bbox_head.fc_cls.bias"][:4].clone()
        obj["meta"]["cfg"] += "\ncustom_classes = [11, 12, 17]\n"

    path = _write(data_dir, tmp_path, SLOWONLY, edit=three_classes)
    model, report, cfg, data, class_ids = _load(path)
    assert report.ok and cfg.num_classes == 3
    assert class_ids == [11, 12, 17] and data["classes"] == [11, 12, 17]


def test_missing_and_extra_keys_are_named(data_dir, tmp_path):
    def drop(obj):
        del obj["state_dict"]["backbone.fast_path.layer2.1.conv2.conv.weight"]

    path = _write(data_dir, tmp_path, SLOWFAST, edit=drop)
    cfg, *_ = mmaction_settings(read_checkpoint(path)[1], path)
    with pytest.raises(CheckpointError, match=r"missing: backbone\.fast_res3\.blocks\.1\.conv_b\.weight"):
        load_checkpoint(build_model(cfg), path)

    def extra(obj):
        obj["state_dict"]["backbone.slow_path.layer1.0.conv4.conv.weight"] = torch.zeros(1)

    path = _write(data_dir, tmp_path, SLOWFAST, name="extra.pth", edit=extra)
    with pytest.raises(CheckpointError, match=r"unexpected: backbone\.slow_path\.layer1\.0\.conv4\.conv\.weight"):
        load_checkpoint(build_model(cfg), path)


def test_unsupported_parts_fail_naming_the_file(data_dir, tmp_path):
    def non_local(obj):
        obj["state_dict"]["backbone.layer3.1.non_local_block.g.conv.weight"] = torch.zeros(1)

    path = _write(data_dir, tmp_path, SLOWONLY, name="nl.pth", edit=non_local)
    with pytest.raises(CheckpointError, match=r"nl\.pth: MMAction2 non-local block"):
        mmaction_settings(read_checkpoint(path)[1], path)

    def temporal_max(obj):
        obj["meta"]["cfg"] = obj["meta"]["cfg"].replace(
            "with_temporal_pool=True", "temporal_pool_mode='max', with_temporal_pool=True")

    path = _write(data_dir, tmp_path, SLOWONLY, name="tmax.pth", edit=temporal_max)
    with pytest.raises(CheckpointError, match=r"tmax\.pth: .*temporal_pool_mode='max'"):
        mmaction_settings(read_checkpoint(path)[1], path)


def test_key_style_is_sniffed(data_dir):
    recipe = read_recipe(data_dir / f"{SLOWFAST}.json")
    keys = [k for k, _, _ in recipe["tensors"]]
    assert guess_style(keys) == "mmaction2"
    slowonly = [k for k, _, _ in read_recipe(data_dir / f"{SLOWONLY}.json")["tensors"]]
    assert guess_style(slowonly) == "mmaction2"
    assert guess_style(["backbone.slow_path.conv1.conv.weight"]) == "mmaction2"
    assert guess_style(["roi_head.bbox_head.fc_cls.weight"]) == "mmaction2"
    # avadet's own keys also start with "backbone.": they stay avadet's.
    assert guess_style(list(build_model(width_per_group=8).state_dict())) == "avadet"


def test_key_map_examples():
    assert mmaction_key("backbone.slow_path.conv1.bn.running_var") == "backbone.slow_stem.bn.running_var"
    assert mmaction_key("backbone.conv1.conv.weight") == "backbone.slow_stem.conv.weight"
    assert mmaction_key("backbone.slow_path.conv1_lateral.conv.weight") == "backbone.lateral_pool1.conv.weight"
    assert mmaction_key("backbone.slow_path.layer3_lateral.conv.weight") == "backbone.lateral_res4.conv.weight"
    assert mmaction_key("backbone.fast_path.layer4.0.downsample.bn.bias") == "backbone.fast_res5.blocks.0.shortcut_bn.bias"
    assert mmaction_key("backbone.layer2.3.conv3.bn.weight") == "backbone.slow_res3.blocks.3.bn_c.weight"
    assert mmaction_key("roi_head.bbox_head.fc_cls.bias") == "head.projection.bias"
    assert mmaction_key("backbone.layer3.1.non_local_block.g.conv.weight") is None


def test_config_text_is_read_as_data_not_run():
    cfg = parse_config_text(
        "import os\nroot = 'data/ava'\nann = f'{root}/a.csv'\nx = os.system('echo hi')\n"
        "model = dict(backbone=dict(speed_ratio=8, strides=(1, 2, 2, 1)), scale=(-1, 256))\n"
    )
    assert cfg["ann"] == "data/ava/a.csv"
    assert cfg["model"] == {"backbone": {"speed_ratio": 8, "strides": (1, 2, 2, 1)}, "scale": (-1, 256)}
    assert "not evaluated" in repr(cfg["x"])


def test_meta_settings_win_over_the_name(data_dir, tmp_path):
    """An 8x8 config in meta (alpha 4, fusion kernel 7 in the weights' shapes) is read from
    the config, whatever the file is called."""
    recipe = copy.deepcopy(read_recipe(data_dir / f"{SLOWFAST}.json"))
    recipe["meta"]["cfg"] = recipe["meta"]["cfg"].replace("resample_rate=8", "resample_rate=4").replace(
        "speed_ratio=8", "speed_ratio=4")
    path = write_checkpoint(recipe, tmp_path / "x_4x16x1_.pth")
    cfg, data, _ = mmaction_settings(read_checkpoint(path)[1], path)
    assert cfg.alpha == 4 and (data["num_frames"], data["sampling_rate"]) == (32, 2)


@pytest.mark.parametrize(
    "edit",
    [
        lambda sd, meta: sd.__setitem__("backbone.slow_path.layer1.0.conv1.conv.weight", torch.zeros(3)),
        lambda sd, meta: sd.__setitem__("roi_head.bbox_head.fc_cls.weight", torch.zeros(1, 288)),
        lambda sd, meta: meta.__setitem__("cfg", "model = dict(backbone=dict(speed_ratio='8'))"),
        lambda sd, meta: meta.__setitem__("cfg", "model = dict(roi_head=dict(bbox_roi_extractor=dict(output_size='x')))"),
        lambda sd, meta: meta.__setitem__("cfg", "def f(:"),
    ],
    ids=["1d-conv", "no-class", "string-alpha", "string-roi-size", "bad-syntax"],
)
def test_crafted_checkpoints_fail_in_one_line(edit, data_dir, tmp_path):
    path = _write(data_dir, tmp_path, SLOWFAST, name="crafted.pth",
                  edit=lambda obj: edit(obj["state_dict"], obj["meta"]))
    with pytest.raises(CheckpointError, match=r"^\S*crafted\.pth: ") as info:
        mmaction_settings(read_checkpoint(path)[1], path)
    assert "\n" not in str(info.value)


def test_a_huge_model_is_refused_before_it_is_built(data_dir, tmp_path):
    def huge(obj):
        obj["state_dict"]["roi_head.bbox_head.fc_cls.weight"] = torch.zeros(1, 288).expand(10**6, 288)

    path = _write(data_dir, tmp_path, SLOWONLY, name="huge.pth", edit=huge)
    with pytest.raises(CheckpointError, match="parameters"):
        mmaction_settings(read_checkpoint(path)[1], path)
