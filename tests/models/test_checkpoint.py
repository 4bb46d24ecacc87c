"""Bad checkpoints fail loudly, unsafe pickles run no code, formats are sniffed from bytes."""

from __future__ import annotations

import io
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from avadet.errors import CheckpointError
from avadet.models import build_model, load_checkpoint, read_checkpoint


def _tiny(**kwargs):
    torch.manual_seed(0)
    return build_model(width_per_group=8, **kwargs)


def _save(obj, path):
    torch.save(obj, path)
    return path


def test_roundtrip_avadet_state_dict_from_any_file_name(tmp_path):
    src = _tiny()
    path = _save({"model_state": src.state_dict()}, tmp_path / "weights.pkl")  # a zip, not a pickle
    dst = _tiny(num_classes=80)
    torch.nn.init.zeros_(dst.head.projection.weight)
    report = load_checkpoint(dst, path)
    assert report.source == "avadet" and report.ok
    assert torch.equal(dst.head.projection.weight, src.head.projection.weight)


def test_legacy_torch_format_is_sniffed(tmp_path):
    src = _tiny()
    path = tmp_path / "legacy.pth"
    torch.save(src.state_dict(), path, _use_new_zipfile_serialization=False)
    assert path.read_bytes()[:2] == b"\x80\x02"  # a plain pickle stream, not a zip
    report = load_checkpoint(_tiny(), path)
    assert report.ok and report.source == "avadet"


def test_missing_unexpected_and_mismatched_keys_are_named(tmp_path):
    state = _tiny().state_dict()
    missing = dict(state)
    del missing["backbone.fast_res3.blocks.1.conv_b.weight"]
    with pytest.raises(CheckpointError, match=r"missing: backbone\.fast_res3\.blocks\.1\.conv_b\.weight"):
        load_checkpoint(_tiny(), _save(missing, tmp_path / "a.pt"))

    extra = dict(state)
    extra["backbone.slow_res6.blocks.0.conv_a.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"unexpected: backbone\.slow_res6\.blocks\.0\.conv_a\.weight"):
        load_checkpoint(_tiny(), _save(extra, tmp_path / "b.pt"))

    wrong = dict(state)
    wrong["backbone.lateral_res2.conv.weight"] = torch.zeros(8, 4, 5, 1, 1)
    with pytest.raises(CheckpointError, match=r"backbone\.lateral_res2\.conv\.weight \(8, 4, 5, 1, 1\) vs model \(8, 4, 7, 1, 1\)"):
        load_checkpoint(_tiny(), _save(wrong, tmp_path / "c.pt"))


def test_strict_false_loads_the_rest_and_never_copies_a_mismatch(tmp_path):
    src = _tiny()
    state = dict(src.state_dict())
    state["backbone.lateral_res2.conv.weight"] = torch.ones(8, 4, 5, 1, 1)
    dst = build_model(width_per_group=8)
    before = dst.backbone.lateral_res2.conv.weight.clone()
    with pytest.warns(UserWarning, match="shape mismatches"):
        report = load_checkpoint(dst, _save(state, tmp_path / "c.pt"), strict=False)
    assert report.mismatched == [("backbone.lateral_res2.conv.weight", (8, 4, 5, 1, 1), (8, 4, 7, 1, 1))]
    assert torch.equal(dst.backbone.lateral_res2.conv.weight, before)
    assert torch.equal(dst.backbone.slow_stem.conv.weight, src.backbone.slow_stem.conv.weight)


def test_kinetics_to_ava_keeps_a_fresh_head(tmp_path):
    kinetics = _tiny(head="kinetics", num_classes=400, res5_dilation=1, head_activation="softmax")
    path = _save({"model_state": kinetics.state_dict()}, tmp_path / "k400.pyth")
    ava = _tiny(num_classes=80)
    head_before = ava.head.projection.weight.clone()
    with pytest.raises(CheckpointError, match=r"head\.projection\.weight \(400, 288\) vs model \(80, 288\)"):
        load_checkpoint(ava, path)
    report = load_checkpoint(ava, path, backbone_only=True)
    assert report.ok
    assert report.skipped == ["head.projection.weight", "head.projection.bias"]
    assert sorted(report.fresh) == ["head.projection.bias", "head.projection.weight"]
    assert torch.equal(ava.head.projection.weight, head_before)
    assert torch.equal(ava.backbone.slow_res5.blocks[2].conv_c.weight, kinetics.backbone.slow_res5.blocks[2].conv_c.weight)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("nested", [False, True])
def test_malicious_pickle_runs_no_code(tmp_path, nested):
    marker = tmp_path / "pwned"
    payload = {"blobs": {"conv1_w": _Evil(marker)}} if nested else _Evil(marker)
    path = tmp_path / "model_caffe2.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(CheckpointError, match=r"refusing to load global '(posix|os|nt)\.system'"):
        load_checkpoint(_tiny(), path)
    assert not marker.exists()


def _python2_style_pickle(obj) -> bytes:
    """A protocol-2 pickle as Python 2 wrote it: numpy.core module names, and the array bytes
    as 8-bit STRING opcodes (which Python 3 can only read with encoding='latin1')."""

    class Py2Pickler(pickle._Pickler):
        dispatch = dict(pickle._Pickler.dispatch)

        def save_bytes(self, data):
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
            self.memoize(data)

        dispatch[bytes] = save_bytes

    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def test_python2_caffe2_pickle_loads(tmp_path, data_dir):
    path = data_dir / "pyslowfast_slow_8x8_r50_c2_w8_caffe2.pkl"
    kind, blobs = read_checkpoint(path)
    data = _python2_style_pickle({"blobs": blobs})
    assert b"numpy.core.multiarray" in data and b"_codecs" not in data
    old = tmp_path / "py2_caffe2.pkl"
    old.write_bytes(data)
    kind2, blobs2 = read_checkpoint(old)
    assert kind == kind2 == "caffe2" and blobs.keys() == blobs2.keys()
    assert all(np.array_equal(blobs[k], blobs2[k]) for k in blobs)
    model = build_model(arch="slow", width_per_group=8, roi_aligned=False)
    assert load_checkpoint(model, old).ok


def test_garbage_and_wrong_source(tmp_path, data_dir):
    junk = tmp_path / "junk.pyth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="neither a torch checkpoint nor a pickle"):
        load_checkpoint(_tiny(), junk)
    with pytest.raises(CheckpointError, match="not a Caffe2 pickle"):
        load_checkpoint(_tiny(), data_dir / "pyslowfast_slowfast_32x2_r50_c2_w8.pyth", source="caffe2")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(_tiny(), tmp_path / "absent.pyth")
