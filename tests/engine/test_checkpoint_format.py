"""avadet's checkpoint file: round trip, self-description, atomic writes, clear errors."""

from __future__ import annotations

import pickle

import pytest
import torch

from avadet.config import load_config
from avadet.engine.checkpoint import (
    iteration_checkpoint_path,
    latest_checkpoint,
    load_trained_model,
    read_training_checkpoint,
    save_checkpoint,
    tensors_sha256,
)
from avadet.errors import CheckpointError
from avadet.models import build_model, build_model_from_checkpoint


def _cfg():
    return load_config(
        None, ["model.width_per_group=8", "model.num_classes=3"]
    )


def test_round_trip_gives_the_same_scores(tmp_path):
    cfg = _cfg()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    path = save_checkpoint(tmp_path / "c.pt", model, cfg, [3, 5, 7], epoch=1, iteration=9)
    loaded, cfg2, class_ids = load_trained_model(path)
    assert class_ids == [3, 5, 7] and cfg2 == cfg and not loaded.training
    x = [torch.randn(1, 3, 2, 32, 32), torch.randn(1, 3, 8, 32, 32)]
    boxes = torch.tensor([[0, 2.0, 2.0, 20.0, 30.0]])
    with torch.no_grad():
        assert torch.equal(model(x, boxes), loaded(x, boxes))
    # Self-describing for the models package as well.
    other, report = build_model_from_checkpoint(path)
    assert report.ok
    assert read_training_checkpoint(path)["iteration"] == 9


def test_latest_checkpoint_prefers_final_then_most_iterations(tmp_path):
    cfg = _cfg()
    model = build_model(cfg)
    assert latest_checkpoint(tmp_path) is None
    for it in (5, 40, 12):
        save_checkpoint(iteration_checkpoint_path(tmp_path, it), model, cfg, [1, 2, 3], epoch=0, iteration=it)
    (tmp_path / "checkpoints" / ".checkpoint_iter_0000099.pt.abc.tmp").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path).name == "checkpoint_iter_0000040.pt"
    save_checkpoint(tmp_path / "checkpoints" / "model_final.pt", model, cfg, [1, 2, 3], epoch=1, iteration=41)
    assert latest_checkpoint(tmp_path).name == "model_final.pt"


def test_bad_files_say_what_is_wrong(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_training_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        read_training_checkpoint(tmp_path / "junk.pt")
    torch.save({"model_state": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an avadet training checkpoint"):
        read_training_checkpoint(tmp_path / "foreign.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"avadet_checkpoint": 1, "x": Evil()}))
    with pytest.raises(CheckpointError):
        read_training_checkpoint(tmp_path / "evil.pt")


def test_weights_that_do_not_fit_name_the_keys(tmp_path):
    cfg = _cfg()
    model = build_model(cfg)
    path = save_checkpoint(tmp_path / "c.pt", model, cfg, [1, 2, 3], epoch=0, iteration=0)
    obj = torch.load(path, weights_only=True)
    del obj["model_state"]["head.projection.bias"]
    obj["model_state"]["head.extra"] = torch.zeros(1)
    obj["tensors_sha256"] = tensors_sha256(obj)  # a consistent file, of another model
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match=r"missing: head.projection.bias.*unexpected: head.extra"):
        load_trained_model(path)


def test_prune_keeps_the_newest_iteration_checkpoints_and_the_final(tmp_path):
    from avadet.engine.checkpoint import prune_checkpoints

    cfg = _cfg()
    model = build_model(cfg)
    for it in (5, 10, 20, 40):
        save_checkpoint(iteration_checkpoint_path(tmp_path, it), model, cfg, [3, 5, 7], epoch=0, iteration=it)
    save_checkpoint(tmp_path / "checkpoints" / "model_final.pt", model, cfg, [3, 5, 7], epoch=0, iteration=40)
    assert prune_checkpoints(tmp_path, 0) == []
    deleted = prune_checkpoints(tmp_path, 2)
    assert sorted(p.name for p in deleted) == ["checkpoint_iter_0000005.pt", "checkpoint_iter_0000010.pt"]
    left = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert left == ["checkpoint_iter_0000020.pt", "checkpoint_iter_0000040.pt", "model_final.pt"]
