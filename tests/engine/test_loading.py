"""Every checkpoint format loads through one function, with its authors' preprocessing and the
AVA ids of its score columns; outputs match the reference made by PySlowFast's own code
(tests/fixtures/models, see ../shared/reference/README.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from avadet.config import load_config
from avadet.engine.checkpoint import inference_config, override_keys, save_checkpoint
from avadet.engine.loading import AUTHORED_DATA_KEYS, AVA_CLASS_IDS, load_model
from avadet.engine.state import _init_from
from avadet.errors import CheckpointError
from avadet.models import build_model
from avadet.models.checkpoint_keys import _pytorchvideo_key

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def _reference(stem: str) -> dict:
    return torch.load(MODELS / f"{stem}_io.pt", weights_only=True)


def _scores(loaded, io: dict) -> torch.Tensor:
    with torch.no_grad():
        return loaded.model(io["inputs"][-1], io["boxes"])  # the Fast-rate clip alone


@pytest.mark.parametrize("stem, short_side, threshold", [
    ("pyslowfast_slowfast_32x2_r50_short_w8", 224, 0.8),
    ("pyslowfast_slow_8x8_r50_c2_w8", 256, 0.9),
])
def test_pyslowfast_pyth_brings_its_model_ids_and_preprocessing(stem, short_side, threshold):
    loaded = load_model(MODELS / f"{stem}.pyth")
    assert loaded.source == "pyslowfast" and loaded.class_ids == AVA_CLASS_IDS
    io = _reference(stem)
    assert (_scores(loaded, io) - io["outputs"]["scores"]).abs().max() < 1e-5
    data = loaded.config.data
    assert (data.test_short_side, data.test_detection_score, data.box_scaling) == (
        short_side, threshold, "long_side")
    assert (data.mean, data.std) == ([0.45] * 3, [0.225] * 3)
    assert f"short side {short_side}" in loaded.describe()


def test_caffe2_pickle_takes_its_architecture_by_name():
    path = MODELS / "pyslowfast_slowfast_32x2_r101_50_50_w8_caffe2.pkl"
    loaded = load_model(path, arch="slowfast_32x2_r101_50_50")
    io = _reference("pyslowfast_slowfast_32x2_r101_50_50_w8")
    assert loaded.source == "caffe2"
    assert (_scores(loaded, io) - io["outputs"]["scores"]).abs().max() < 1e-5
    assert (loaded.config.data.num_frames, loaded.config.data.sampling_rate) == (32, 2)
    with pytest.raises(CheckpointError, match="records no architecture; name it with --arch"):
        load_model(path)
    with pytest.raises(CheckpointError, match="unknown architecture 'r42'"):
        load_model(path, arch="r42")
    # The wrong published architecture: the keys that do not fit are named.
    with pytest.raises(CheckpointError, match=r"does not fit the model: .*unexpected: res4_6_branch2a_w"):
        load_model(path, arch="slowfast_32x2_r50")


def test_pytorchvideo_state_dict_in_its_own_key_layout(tmp_path):
    """pytorchvideo's SLOWFAST_8x8_R50_DETECTION is PySlowFast's SLOWFAST_32x2_R50 (c2):
    the reference weights renamed to pytorchvideo's keys give PySlowFast's scores."""
    import pytorchvideo.models.hub as hub  # test extra: pytorchvideo's own key names

    theirs = list(hub.slowfast_r50_detection(pretrained=False).state_dict())
    ours = load_model(MODELS / "pyslowfast_slowfast_32x2_r50_c2_w8.pyth").model.state_dict()
    state = {k: ours[_pytorchvideo_key(k)] for k in theirs if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "ptv.pt")
    loaded = load_model(tmp_path / "ptv.pt")
    assert loaded.source == "pytorchvideo" and loaded.report.ok
    assert loaded.config.model.roi_aligned is False and loaded.config.data.box_scaling == "long_side"
    io = _reference("pyslowfast_slowfast_32x2_r50_c2_w8")
    assert (_scores(loaded, io) - io["outputs"]["scores"]).abs().max() < 1e-5


def test_avadet_checkpoint_keeps_its_training_settings(tmp_path):
    cfg = load_config(None, ["model.width_per_group=8", "model.num_classes=3",
                             "data.test_short_side=128", "data.box_scaling=long_side"])
    path = save_checkpoint(tmp_path / "m.pt", build_model(cfg), cfg, [2, 7, 9], epoch=0, iteration=0)
    loaded = load_model(path)
    assert (loaded.source, loaded.class_ids) == ("avadet", [2, 7, 9])
    assert loaded.config.data.test_short_side == 128 and loaded.authored == AUTHORED_DATA_KEYS


def test_files_that_are_no_checkpoint_are_one_line_errors(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="neither a torch checkpoint nor a pickle"):
        load_model(tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        load_model(tmp_path / "absent.pt")
    torch.save({"backbone.slow_stem.conv.weight": torch.zeros(1)}, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="avadet-style weights without a config"):
        load_model(tmp_path / "bare.pt")


def test_the_authors_preprocessing_wins_over_a_config_file_but_not_over_an_override():
    trained = dataclasses.replace(load_config(None, ["data.test_short_side=224",
                                                     "data.box_scaling=long_side"]))
    user = load_config(None, ["data.test_short_side=320", "data.root=/data"])
    cfg, ignored = inference_config(trained, user, authored=AUTHORED_DATA_KEYS)
    assert (cfg.data.test_short_side, cfg.data.box_scaling, cfg.data.root) == (224, "long_side", "/data")
    # The user set the short side (named); the box scaling was avadet's default (not named).
    assert ignored == ["data.test_short_side"]
    cfg, ignored = inference_config(trained, user, authored=AUTHORED_DATA_KEYS,
                                    explicit=override_keys(["data.test_short_side=320"]))
    assert cfg.data.test_short_side == 320 and "data.test_short_side" not in ignored
    assert cfg.data.box_scaling == "long_side"


def test_init_checkpoint_keeps_the_head_rows_of_the_trained_classes():
    path = MODELS / "pyslowfast_slow_8x8_r50_c2_w8.pyth"
    source = load_model(path).model.state_dict()
    cfg = dataclasses.replace(load_model(path).config.model, num_classes=3)
    model = build_model(cfg)
    note = _init_from(model, str(path), [1, 12, 80])
    assert "head rows of the 3 classes" in note
    own = model.state_dict()
    assert torch.equal(own["head.projection.weight"], source["head.projection.weight"][[0, 11, 79]])
    assert torch.equal(own["backbone.slow_res4.blocks.0.conv_a.weight"],
                       source["backbone.slow_res4.blocks.0.conv_a.weight"])
    # A class the checkpoint does not score (id 81): the backbone only, the head stays fresh.
    model = build_model(cfg)
    fresh = model.state_dict()["head.projection.weight"].clone()
    assert "head left fresh" in _init_from(model, str(path), [1, 12, 81])
    assert torch.equal(model.state_dict()["head.projection.weight"], fresh)
