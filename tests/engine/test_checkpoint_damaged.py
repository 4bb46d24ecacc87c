"""Damaged, foreign and crafted avadet checkpoints: refused with one line naming the file (and
the field), through the library, resume, ``avadet train``, ``avadet test`` and ``avadet
detect``; never a traceback, never a model beyond the stated bound built."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from avadet.cli import main
from avadet.engine.checkpoint import (
    load_trained_model,
    read_training_checkpoint,
    save_checkpoint,
    tensors_sha256,
)
from avadet.engine.distributed import DistInfo
from avadet.engine.state import (
    build_state,
    read_resume_checkpoint,
    resume_state,
    save_training_checkpoint,
)
from avadet.engine.step import train_step
from avadet.errors import CheckpointError, ConfigError
from avadet.models.checkpoint import MAX_MODEL_PARAMETERS

Edit = Callable[[dict], Any]


def _rewrite(path: Path, edit: Edit, *, checksum: bool = True) -> Path:
    """``path`` with ``edit`` applied to its dict; with a matching checksum, so that the
    field checks (not the checksum) have to catch it."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    edit(obj)
    if checksum:
        obj["tensors_sha256"] = tensors_sha256(obj)
    torch.save(obj, path)
    return path


def _set(key: str, value: Any) -> Edit:
    def edit(obj: dict) -> None:
        obj[key] = value
    return edit


def _one_line(message: str, path: Path) -> str:
    assert "\n" not in message.strip() and "Traceback" not in message and str(path) in message
    return message


@pytest.fixture
def trained(make_state, tmp_path):
    """A resumable checkpoint after one step (optimiser buffers filled), in the run folder."""
    cfg, state = make_state()
    data = next(iter(_loader(state)))
    train_step(state, data)
    path = save_training_checkpoint(state, tmp_path / "run" / "checkpoints" / "checkpoint_iter_0000001.pt", cfg)
    return cfg, state, path


def _loader(state):
    from avadet.engine.step import training_loader

    state.sampler.set_epoch(0)
    state.train_set.set_seed_plan(state.seed, 0)
    return training_loader(state.train_set, state.sampler, num_workers=0, device=state.device)


def _flip_bytes_of(path: Path, tensor: torch.Tensor, count: int = 64) -> None:
    """Flip ``count`` bytes inside ``tensor``'s data in the file (torch stores it raw)."""
    data = bytearray(path.read_bytes())
    raw = tensor.detach().contiguous().numpy().tobytes()
    at = bytes(data).find(raw)
    assert at >= 0 and len(raw) >= count
    for i in range(count):
        data[at + i] ^= 0xFF
    path.write_bytes(bytes(data))


# --- resume: damaged and foreign training fields ----------------------------------------------

def _opt(edit: Callable[[dict], None]) -> Edit:
    def outer(obj: dict) -> None:
        edit(obj["optimizer_state"])
    return outer


def _rng(edit: Callable[[dict], None]) -> Edit:
    def outer(obj: dict) -> None:
        edit(obj["rng_state"][0])
    return outer


def _drop_params(opt: dict) -> None:
    opt["param_groups"][0]["params"] = opt["param_groups"][0]["params"][:5]


def _wrong_buffer(opt: dict) -> None:
    first = next(iter(opt["state"]))
    opt["state"][first]["momentum_buffer"] = torch.zeros(3)


def _foreign_id(opt: dict) -> None:
    opt["state"][10**6] = {"momentum_buffer": torch.zeros(1)}


def _adamw_groups(opt: dict) -> None:
    for group in opt["param_groups"]:
        del group["momentum"]
        group["betas"] = (0.9, 0.999)


# name -> (edit, the field the message must name)
RESUME_CASES: dict[str, tuple[Edit, str]] = {
    "format_version_str": (_set("avadet_checkpoint", "1"), "field 'avadet_checkpoint'"),
    "iteration_negative": (_set("iteration", -5), "field 'iteration'"),
    "iteration_str": (_set("iteration", "3"), "field 'iteration'"),
    "iteration_float": (_set("iteration", 2.5), "field 'iteration'"),
    "model_state_list": (_set("model_state", [1, 2]), "field 'model_state'"),
    "model_state_not_tensors": (lambda o: o["model_state"].update({"head.x": "y"}), "field 'model_state'"),
    "config_list": (_set("config", ["a"]), "field 'config'"),
    "class_ids_str": (_set("class_ids", "1,2,3"), "field 'class_ids'"),
    "class_ids_floats": (_set("class_ids", [1.5] * 8), "field 'class_ids'"),
    "optimizer_list": (_set("optimizer_state", [1]), "field 'optimizer_state'"),
    "optimizer_no_groups": (_opt(lambda o: o.pop("param_groups")), "field 'optimizer_state.param_groups'"),
    "optimizer_other_params": (_opt(_drop_params), "field 'optimizer_state.param_groups[0].params'"),
    "optimizer_extra_group": (_opt(lambda o: o["param_groups"].append(dict(o["param_groups"][0]))),
                              "field 'optimizer_state.param_groups'"),
    "optimizer_wrong_buffer": (_opt(_wrong_buffer), "momentum_buffer' is a torch.float32 tensor of shape (3,)"),
    "optimizer_foreign_id": (_opt(_foreign_id), "field 'optimizer_state.state[1000000]'"),
    "optimizer_lr_str": (_opt(lambda o: o["param_groups"][0].update(lr="fast")),
                         "field 'optimizer_state.param_groups[0].lr'"),
    "optimizer_lr_nan": (_opt(lambda o: o["param_groups"][0].update(lr=float("nan"))),
                         "field 'optimizer_state.param_groups[0].lr'"),
    "optimizer_of_adamw": (_opt(_adamw_groups), "field 'optimizer_state.param_groups[0].momentum' is missing"),
    "scheduler_lr_nan": (lambda o: o["scheduler_state"].update(lr=float("nan")), "field 'scheduler_state.lr'"),
    "extra_list": (_set("extra", [1]), "field 'extra'"),
    "iters_per_epoch_zero": (lambda o: o["extra"].update(iters_per_epoch=0), "field 'extra.iters_per_epoch'"),
    "rng_not_list": (_set("rng_state", {"torch": 1}), "field 'rng_state'"),
    "rng_torch_short": (_rng(lambda r: r.update(torch=r["torch"][:100])), "field 'rng_state[0].torch'"),
    "rng_torch_float": (_rng(lambda r: r.update(torch=r["torch"].float())), "field 'rng_state[0].torch'"),
    "rng_numpy_short": (_rng(lambda r: r["numpy"].__setitem__(1, r["numpy"][1][:10])), "field 'rng_state[0].numpy[1]'"),
    "rng_numpy_pos": (_rng(lambda r: r["numpy"].__setitem__(2, 10**6)), "field 'rng_state[0].numpy[2]'"),
    "rng_numpy_name": (_rng(lambda r: r["numpy"].__setitem__(0, "PCG64")), "field 'rng_state[0].numpy'"),
    "rng_python_short": (_rng(lambda r: r.update(python=(3, tuple(range(10)), None))), "field 'rng_state[0].python[1]'"),
    "rng_python_version": (_rng(lambda r: r.update(python=(9,) + tuple(r["python"][1:]))), "field 'rng_state[0].python[0]'"),
    "rng_missing": (_rng(lambda r: r.pop("python")), "field 'rng_state[0].python'"),
    "scaler_str": (_set("scaler_state", {"scale": "big"}), "field 'scaler_state.scale'"),
    "scaler_tensor": (_set("scaler_state", torch.zeros(2)), "field 'scaler_state'"),
    "rng_tensor": (_set("rng_state", torch.zeros(3)), "field 'rng_state'"),
    "weight_wrong_shape": (lambda o: o["model_state"].update({"head.projection.bias": torch.zeros(3)}),
                           "shape mismatch: head.projection.bias (3,) vs model (8,)"),
    "weight_missing": (lambda o: o["model_state"].pop("backbone.fast_stem.bn.running_mean"),
                       "missing: backbone.fast_stem.bn.running_mean"),
}


@pytest.mark.parametrize("name", sorted(RESUME_CASES))
def test_a_damaged_or_foreign_training_state_is_refused_naming_the_field(trained, make_state, name):
    cfg, _, path = trained
    edit, words = RESUME_CASES[name]
    _rewrite(path, edit)
    fresh_cfg, fresh = make_state()
    before = {k: v.clone() for k, v in fresh.model.state_dict().items()}
    with pytest.raises(CheckpointError) as exc:
        found = read_resume_checkpoint(path.parent.parent, DistInfo())
        assert found is not None
        resume_state(fresh, found[1], found[0])
    assert words in _one_line(str(exc.value), path)
    # Nothing was half-loaded.
    assert fresh.iteration == 0
    assert all(torch.equal(v, before[k]) for k, v in fresh.model.state_dict().items())


@pytest.mark.parametrize("name", ["iteration_negative", "optimizer_other_params", "rng_torch_short",
                                  "model_state_list"])
def test_avadet_train_resuming_a_damaged_checkpoint_exits_2_with_one_line(trained, tiny_root, capsys, name):
    cfg, _, path = trained
    _rewrite(path, RESUME_CASES[name][0])
    capsys.readouterr()
    code = main(["train", "--config", str(tiny_root / "config.yaml"),
                 f"train.output_dir={path.parent.parent}", "solver.max_iters=2"])
    err = capsys.readouterr().err
    assert code == 2 and RESUME_CASES[name][1] in _one_line(err, path)


# --- verified on load: checksum, finite weights ------------------------------------------------

def test_flipped_bytes_are_refused_everywhere(trained, tiny_root, tmp_path, capsys):
    cfg, state, path = trained
    _flip_bytes_of(path, state.model.state_dict()["head.projection.weight"])
    for load in (read_training_checkpoint, load_trained_model):
        with pytest.raises(CheckpointError, match="damaged: the sha256 of its tensors differs") as exc:
            load(path)
        _one_line(str(exc.value), path)
    with pytest.raises(CheckpointError, match="damaged"):
        read_resume_checkpoint(path.parent.parent, DistInfo())
    _check_commands_refuse(path, tiny_root, tmp_path, capsys, "damaged")


def test_flipped_bytes_in_the_optimizer_state_are_refused(trained):
    _, state, path = trained
    buffer = next(iter(state.optimizer.state.values()))["momentum_buffer"]
    _flip_bytes_of(path, buffer, count=8)
    with pytest.raises(CheckpointError, match="damaged"):
        read_training_checkpoint(path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(trained, tiny_root, tmp_path, capsys, bad):
    _, _, path = trained

    def poison(obj: dict) -> None:
        obj["model_state"]["head.projection.bias"][1] = bad

    _rewrite(path, poison)  # a consistent file whose weights are not finite
    with pytest.raises(CheckpointError, match=r"non-finite weights \(NaN or inf\) in head.projection.bias"):
        load_trained_model(path)
    with pytest.raises(CheckpointError, match="non-finite"):
        read_resume_checkpoint(path.parent.parent, DistInfo())
    _check_commands_refuse(path, tiny_root, tmp_path, capsys, "non-finite weights")


def test_a_checkpoint_without_a_checksum_still_loads_and_says_so(trained, caplog):
    _, state, path = trained
    _rewrite(path, lambda obj: obj.pop("tensors_sha256"), checksum=False)
    with caplog.at_level(logging.WARNING, logger="avadet"):
        model, _, _ = load_trained_model(path)
    assert "written before checkpoints carried a checksum; loading it unverified" in caplog.text
    assert all(torch.equal(v, state.model.state_dict()[k]) for k, v in model.state_dict().items())


def test_the_checksum_covers_every_tensor_and_nothing_else(trained):
    _, _, path = trained
    obj = read_training_checkpoint(path)
    assert obj["tensors_sha256"] == tensors_sha256(obj)
    obj["epoch"] = 99  # numbers are range-checked, not summed
    assert obj["tensors_sha256"] == tensors_sha256(obj)
    obj["rng_state"][0]["torch"] = obj["rng_state"][0]["torch"].clone()
    obj["rng_state"][0]["torch"][0] ^= 1
    assert obj["tensors_sha256"] != tensors_sha256(obj)


# --- memory-bomb configs ---------------------------------------------------------------------

@pytest.mark.parametrize("setting", [("width_per_group", 100000), ("num_classes", 10**9)])
def test_a_memory_bomb_config_is_refused_before_building(trained, tiny_root, tmp_path, capsys, setting):
    _, _, path = trained
    key, value = setting
    _rewrite(path, lambda obj: obj["config"]["model"].update({key: value}))
    with pytest.raises(CheckpointError, match=f"more than avadet builds \\({MAX_MODEL_PARAMETERS:,}") as exc:
        load_trained_model(path)
    _one_line(str(exc.value), path)
    _check_commands_refuse(path, tiny_root, tmp_path, capsys, "more than avadet builds")


def test_a_memory_bomb_training_config_is_refused_before_building(make_state):
    with pytest.raises(ConfigError, match="model: model config asks for .* parameters, more than"):
        make_state("model.width_per_group=100000")


def test_avadet_train_refuses_a_memory_bomb_config(tiny_root, tmp_path, capsys):
    code = main(["train", "--config", str(tiny_root / "config.yaml"),
                 f"train.output_dir={tmp_path / 'run'}", "model.width_per_group=100000"])
    err = capsys.readouterr().err
    assert code == 2 and "more than avadet builds" in err and "\n" not in err.strip()


def _check_commands_refuse(path: Path, tiny_root: Path, tmp_path: Path, capsys, words: str) -> None:
    """``avadet test`` and ``avadet detect`` on ``path``: exit 2, one line naming it, nothing
    written."""
    capsys.readouterr()
    pred = tmp_path / "pred.csv"
    code = main(["test", "--config", str(tiny_root / "config.yaml"), "--checkpoint", str(path),
                 "--output-csv", str(pred)])
    err = capsys.readouterr().err
    assert code == 2 and words in _one_line(err, path) and not pred.exists()
    video = sorted((tiny_root / "videos").glob("*.mp4"))[0]
    out = tmp_path / "detect"
    code = main(["detect", str(video), "--checkpoint", str(path), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and words in _one_line(err, path)
    assert not [p for p in out.rglob("*") if p.suffix in (".csv", ".json", ".mp4")]


# --- init_checkpoint: crafted Caffe2 pickles ----------------------------------------------------

_RECONSTRUCT = np.zeros(1).__reduce__()[0]


class _CraftedArray:
    def __init__(self, shape: Any, dtype: Any, data: Any):
        self.state = (1, shape, dtype, False, data)

    def __reduce__(self):
        return (_RECONSTRUCT, (np.ndarray, (0,), b"b"), self.state)


@pytest.mark.parametrize("blob, words", [
    (_CraftedArray((3,), np.dtype("O"), [1]), "refusing dtype 'O8'"),
    (_CraftedArray((256, 256), np.dtype("f4"), b"\0" * 4), "needs 262144 bytes, the file holds 4"),
    (_CraftedArray((2**40, 2**40), np.dtype("f4"), b"\0" * 4), "the file holds 4"),
    (_CraftedArray((-3,), np.dtype("f4"), b""), "invalid array shape"),
], ids=["object_dtype", "short_buffer", "huge_shape", "negative_shape"])
def test_train_init_checkpoint_refuses_crafted_pickles(make_state, tiny_root, tmp_path, capsys, blob, words):
    path = tmp_path / "k400_caffe2.pkl"
    path.write_bytes(pickle.dumps({"blobs": {"conv1_w": blob}}, protocol=2))
    cfg, _ = make_state()
    with pytest.raises(CheckpointError) as exc:
        build_state(cfg, DistInfo(), init_checkpoint=str(path))
    assert words in _one_line(str(exc.value), path) and "train.init_checkpoint" in str(exc.value)
    capsys.readouterr()
    code = main(["train", "--config", str(tiny_root / "config.yaml"),
                 f"train.output_dir={tmp_path / 'run2'}", f"train.init_checkpoint={path}"])
    err = capsys.readouterr().err
    assert code == 2 and words in _one_line(err, path)


def test_a_weights_only_file_saved_by_save_checkpoint_round_trips(make_state, tmp_path):
    cfg, state = make_state()
    path = save_checkpoint(tmp_path / "w.pt", state.model, cfg, state.class_ids, epoch=0, iteration=0)
    model, _, class_ids = load_trained_model(path)
    assert class_ids == state.class_ids
    assert all(torch.equal(v, state.model.state_dict()[k]) for k, v in model.state_dict().items())


# The fields inference reads (avadet test and avadet detect read no training state: a foreign
# optimiser or RNG state does not concern them and is checked on resume above).
INFERENCE_CASES = ["format_version_str", "model_state_list", "model_state_not_tensors",
                   "config_list", "class_ids_str", "class_ids_floats", "weight_wrong_shape",
                   "weight_missing"]


@pytest.mark.parametrize("name", INFERENCE_CASES)
def test_avadet_test_and_detect_refuse_a_checkpoint_with_damaged_fields(
        trained, tiny_root, tmp_path, capsys, name):
    _, _, path = trained
    _rewrite(path, RESUME_CASES[name][0])
    _check_commands_refuse(path, tiny_root, tmp_path, capsys, "")
