"""``--persons detectron2`` must not run code from the user's files. detectron2 is not
installed here: a stand-in module copies the two unsafe defaults the real one has (configs
merged with ``allow_unsafe=True``, ``.pkl`` weights read by a plain ``pickle.load``), so the
tests first show that the stand-in *would* run the files' code, then that the backend does not.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from avadet.errors import AvadetError


class _Node(dict):
    """A tiny CfgNode: attribute access, YAML merge (unsafe by default, like detectron2's)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def merge_from_file(self, filename, allow_unsafe=True):
        with open(filename) as f:
            doc = yaml.unsafe_load(f) if allow_unsafe else yaml.safe_load(f)
        _merge(self, doc or {})

    def merge_from_list(self, opts):
        assert not opts

    def freeze(self):
        pass


def _merge(node, values):
    for key, value in values.items():
        if isinstance(value, dict):
            _merge(node.setdefault(key, _Node()), value)
        else:
            node[key] = value


def _get_cfg():
    cfg = _Node()
    cfg.MODEL = _Node(WEIGHTS="", DEVICE="cpu", ROI_HEADS=_Node(SCORE_THRESH_TEST=0.05))
    cfg.INPUT = _Node(MIN_SIZE_TEST=32, MAX_SIZE_TEST=64, FORMAT="BGR")
    return cfg


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(2, 2)


class _Checkpointer:
    """detectron2's DetectionCheckpointer as far as reading goes: ``.pkl`` by pickle.load."""

    def __init__(self, model):
        self.model = model

    def _load_file(self, filename):
        if filename.endswith(".pkl"):
            with open(filename, "rb") as f:
                data = pickle.load(f, encoding="latin1")  # the unsafe default
            if "model" in data and "__author__" in data:
                return data
            return {"model": data, "__author__": "Caffe2", "matching_heuristics": True}
        return {"model": torch.load(filename, weights_only=False)}

    def load(self, path):
        checkpoint = self._load_file(path)
        state = {k: torch.as_tensor(v) for k, v in checkpoint["model"].items()}
        self.model.load_state_dict(state)
        return checkpoint


@pytest.fixture
def detectron2(monkeypatch):
    root = types.ModuleType("detectron2")
    modules = {
        "detectron2": root,
        "detectron2.config": types.SimpleNamespace(get_cfg=_get_cfg),
        "detectron2.checkpoint": types.SimpleNamespace(DetectionCheckpointer=_Checkpointer),
        "detectron2.modeling": types.SimpleNamespace(build_model=lambda cfg: _Model()),
        "detectron2.data": types.ModuleType("detectron2.data"),
        "detectron2.data.transforms": types.SimpleNamespace(
            ResizeShortestEdge=lambda sizes, max_size: None),
    }
    for name, module in modules.items():
        if "." in name:
            parent, child = name.rsplit(".", 1)
            setattr(modules[parent], child, module)
        monkeypatch.setitem(sys.modules, name, module)
    return modules


class _Marker:
    """Unpickling this creates the marker file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _files(tmp_path):
    marker = tmp_path / "MARKER"
    good_cfg = tmp_path / "good.yaml"
    good_cfg.write_text("MODEL:\n  ROI_HEADS:\n    SCORE_THRESH_TEST: 0.5\n")
    evil_cfg = tmp_path / "evil.yaml"
    evil_cfg.write_text(f"_BASE_: good.yaml\nMODEL:\n  X: !!python/object/apply:builtins.open "
                        f"['{marker}', 'w']\n")
    base_evil = tmp_path / "child.yaml"
    base_evil.write_text("_BASE_: evil.yaml\nINPUT:\n  FORMAT: RGB\n")
    weights = _Model().state_dict()
    good_pkl = tmp_path / "good.pkl"
    good_pkl.write_bytes(pickle.dumps({"model": {k: v.numpy() for k, v in weights.items()},
                                       "__author__": "test"}, protocol=2))
    evil_pkl = tmp_path / "evil.pkl"
    evil_pkl.write_bytes(pickle.dumps({"model": {"head.weight": _Marker(marker)},
                                       "__author__": "test"}))
    return marker, good_cfg, evil_cfg, base_evil, good_pkl, evil_pkl, weights


def test_the_stand_in_copies_detectron2s_unsafe_defaults(detectron2, tmp_path):
    marker, _, evil_cfg, _, _, evil_pkl, _ = _files(tmp_path)
    _get_cfg().merge_from_file(str(evil_cfg))
    assert marker.exists()
    marker.unlink()
    with pytest.raises(Exception):  # noqa: B017 - the marker is what matters
        _Checkpointer(_Model()).load(str(evil_pkl))
    assert marker.exists()


@pytest.mark.parametrize("which", ["config", "config_base", "weights"])
def test_no_code_runs_from_a_detectron2_config_or_weights(detectron2, tmp_path, which):
    from avadet.persons import build_person_detector

    marker, good_cfg, evil_cfg, base_evil, good_pkl, evil_pkl, _ = _files(tmp_path)
    cfg, weights = {"config": (evil_cfg, good_pkl), "config_base": (base_evil, good_pkl),
                    "weights": (good_cfg, evil_pkl)}[which]
    with pytest.raises(AvadetError) as info:
        build_person_detector("detectron2", score_threshold=0.7, detectron2_config=cfg,
                              detectron2_weights=weights)
    message = str(info.value)
    assert "\n" not in message and ("evil" in message)
    assert not marker.exists()


def test_a_safe_config_and_weights_still_load(detectron2, tmp_path):
    from avadet.persons import build_person_detector

    _, good_cfg, _, _, good_pkl, _, weights = _files(tmp_path)
    detector = build_person_detector("detectron2", score_threshold=0.7,
                                     detectron2_config=good_cfg, detectron2_weights=good_pkl)
    for name, value in detector.model.state_dict().items():
        assert torch.equal(value, weights[name])
    assert detector.score_threshold == 0.7
    # A Detectron (Caffe2) pickle: blobs, momentum dropped, marked for name matching.
    from avadet.persons.detectron2_backend import load_weights_file

    caffe2 = tmp_path / "c2.pkl"
    caffe2.write_bytes(pickle.dumps({"blobs": OrderedDict(
        conv1_w=np.ones((2, 3), np.float32), conv1_w_momentum=np.zeros((2, 3), np.float32))},
        protocol=2))
    loaded = load_weights_file(caffe2)
    assert list(loaded["model"]) == ["conv1_w"] and loaded["matching_heuristics"]


@pytest.mark.parametrize("payload", [
    b"not a pickle", b"", pickle.dumps(np.array([1, "a", None], dtype=object)),
    pickle.dumps({"w": np.zeros(3, [("a", "f4"), ("b", "O")])}),
    pickle.dumps(torch.zeros(3)),
])
def test_weights_pickles_that_are_not_plain_arrays_are_refused(tmp_path, payload):
    from avadet.persons.safe_pickle import load_weights_pickle

    path = tmp_path / "w.pkl"
    path.write_bytes(payload)
    with pytest.raises(AvadetError) as info:
        load_weights_pickle(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


class _ShortArray:
    """Pickles as NumPy's array recipe with 8 bytes of data for a shape needing 32."""

    def __reduce__(self):
        _reconstruct = np.zeros(0).__reduce__()[0]  # numpy's own recipe function
        return (_reconstruct, (np.ndarray, (0,), b"b"),
                (1, (4,), np.dtype("f8"), False, b"\x00" * 8))


def test_an_array_whose_data_is_shorter_than_its_shape_is_refused(tmp_path):
    from avadet.persons.safe_pickle import load_weights_pickle

    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": _ShortArray()}}))
    with pytest.raises(AvadetError, match="needs 32 bytes, the file holds 8"):
        load_weights_pickle(path)
