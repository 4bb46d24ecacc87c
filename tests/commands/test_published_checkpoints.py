"""Published checkpoints of every format through ``avadet test`` and ``avadet detect``: the
prediction rows of PySlowFast's own test path on the same checkpoint and data.

The references (tests/fixtures/pyslowfast_dataset/reference, made by PySlowFast's code with
tools/parity/pyslowfast_test_path.py) cover three weight sets; each is given to avadet in
the formats that carry it:

- PySlowFast ``.pyth`` files: the SlowFast R50 SHORT (aligned RoIAlign, short side 224) and
  the Slow-only 8x8 (c2);
- the Caffe2 ``.pkl`` of the same Slow-only weights, named with ``--arch``;
- a pytorchvideo state dict: PySlowFast's SlowFast R50 (c2) weights under pytorchvideo's own
  key names (``slowfast_r50_detection``, which is that model converted).

``avadet detect`` reads the dataset's frames as a losslessly encoded 30 fps video with the
dataset's person boxes (``--persons csv``), so its rows must be the same as ``avadet test``'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fixtures.parity_dataset import (
    DATASET,
    dataset_config,
    detect_argv,
    read_rows,
    reference_rows,
    score_diff,
    write_land_video,
)

from avadet.cli import main
from avadet.engine.loading import load_model
from avadet.models.checkpoint_keys import _pytorchvideo_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MODELS = FIXTURES / "models"
TOLERANCE = 1e-4


def _config(tmp_path: Path) -> Path:
    return dataset_config(tmp_path, {"batch_size": 1, "protocol": "pyslowfast"})


def _pytorchvideo_file(tmp_path: Path) -> Path:
    import pytorchvideo.models.hub as hub  # test extra: pytorchvideo's own key names

    theirs = hub.slowfast_r50_detection(pretrained=False).state_dict()
    ours = load_model(MODELS / "pyslowfast_slowfast_32x2_r50_c2_w8.pyth").model.state_dict()
    state = {k: ours[_pytorchvideo_key(k)] for k in theirs if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "slowfast_r50_detection_w8.pt")
    return tmp_path / "slowfast_r50_detection_w8.pt"


# (name, checkpoint maker, extra flags, the PySlowFast reference it must reproduce)
CASES = [
    ("pyslowfast_slowfast", lambda tmp: MODELS / "pyslowfast_slowfast_32x2_r50_short_w8.pyth", [],
     "pyslowfast_slowfast_32x2_r50_short_w8"),
    ("pyslowfast_slow", lambda tmp: MODELS / "pyslowfast_slow_8x8_r50_c2_w8.pyth", [],
     "pyslowfast_slow_8x8_r50_c2_w8"),
    ("caffe2", lambda tmp: MODELS / "pyslowfast_slow_8x8_r50_c2_w8_caffe2.pkl",
     ["--arch", "slow_8x8_r50"], "pyslowfast_slow_8x8_r50_c2_w8"),
    ("pytorchvideo", _pytorchvideo_file, [], "pyslowfast_slowfast_32x2_r50_c2_w8"),
]


@pytest.mark.parametrize("name, make, flags, stem", CASES, ids=[c[0] for c in CASES])
def test_avadet_test_gives_pyslowfasts_rows(tmp_path, capsys, name, make, flags, stem):
    torch.set_num_threads(1)
    out = tmp_path / "pred.csv"
    code = main(["test", "--config", str(_config(tmp_path)), "--checkpoint", str(make(tmp_path)),
                 *flags, "--output-csv", str(out)])
    assert code == 0, capsys.readouterr().err
    theirs = reference_rows(stem)
    assert score_diff(read_rows(out), theirs) <= TOLERANCE
    # The excluded keyframe is scored (PySlowFast's file has it) and left out by the evaluator.
    assert ("vid_land", 904) in set(map(tuple, read_rows(out)[["video_id", "timestamp"]].values))
    expected = json.loads((DATASET / "reference" / f"{stem}_map.json").read_text())["mAP"]
    # The frame-mAP printed under PySlowFast's protocol is PySlowFast's evaluate_ava's.
    assert f"({expected:.6f})" in capsys.readouterr().out


@pytest.fixture(scope="module")
def land_video(tmp_path_factory) -> Path:
    return write_land_video(tmp_path_factory.mktemp("video"))


@pytest.mark.parametrize("name, make, flags, stem", CASES, ids=[c[0] for c in CASES])
def test_avadet_detect_gives_the_same_rows(tmp_path, capsys, land_video, name, make, flags, stem):
    torch.set_num_threads(1)
    code = main(detect_argv(land_video, make(tmp_path), tmp_path / "out", *flags))
    assert code == 0, capsys.readouterr().err
    ours = read_rows(tmp_path / "out" / "vid_land.csv")
    theirs = reference_rows(stem)
    theirs = theirs[(theirs.video_id == "vid_land")
                    & theirs.timestamp.isin(ours.timestamp.unique())]
    assert len(theirs) and score_diff(ours, theirs) <= TOLERANCE
    doc = json.loads((tmp_path / "out" / "vid_land.json").read_text())
    assert doc["checkpoint_source"] == name.split("_")[0]


def test_a_zoo_name_resolves_to_the_hub_cache(tmp_path, capsys, monkeypatch):
    """``--checkpoint pyslowfast_slow_8x8_r50``: the file in torch hub's cache (here a narrow
    copy with the published layout, PySlowFast's Caffe2 blobs), with the zoo entry's
    architecture and preprocessing, and no --arch."""
    from avadet.models.zoo import cached_path, find_entry

    torch.set_num_threads(1)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = cached_path(find_entry("pyslowfast_slow_8x8_r50"))
    cached.parent.mkdir(parents=True)
    cached.write_bytes((MODELS / "pyslowfast_slow_8x8_r50_c2_w8_caffe2.pkl").read_bytes())
    out = tmp_path / "pred.csv"
    code = main(["test", "--config", str(_config(tmp_path)), "--checkpoint",
                 "pyslowfast_slow_8x8_r50", "--output-csv", str(out)])
    assert code == 0, capsys.readouterr().err
    theirs = reference_rows("pyslowfast_slow_8x8_r50_c2_w8")
    assert score_diff(read_rows(out), theirs) <= TOLERANCE


def test_an_absent_zoo_file_offline_is_one_line_naming_the_url(tmp_path, capsys, monkeypatch):
    import urllib.error
    import urllib.request

    from avadet.models.zoo import cached_path, find_entry

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    entry = find_entry("pytorchvideo_slowfast_r50_detection")
    code = main(["detect", str(DATASET / "frames" / "vid_land" / "vid_land_000001.jpg"),
                 "--checkpoint", entry.name, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1, err
    assert entry.url in err[0] and str(cached_path(entry)) in err[0]


# The other inference paths on the same checkpoint and rows: the model as loaded (eval mode,
# no folding), bf16 (scores move by a few 1e-3), ONNX Runtime for detect.
PATHS = [(["--no-deploy"], TOLERANCE), (["--precision", "bf16"], 3e-2)]


@pytest.mark.parametrize("flags, tolerance", PATHS, ids=["no-deploy", "bf16"])
def test_avadet_test_inference_paths(tmp_path, capsys, flags, tolerance):
    from avadet.models.deploy import cpu_supports_bf16

    if "bf16" in flags and not cpu_supports_bf16():
        pytest.skip("this CPU has no native bf16")
    name, make, arch_flags, stem = CASES[0]
    torch.set_num_threads(1)
    out = tmp_path / "pred.csv"
    code = main(["test", "--config", str(_config(tmp_path)), "--checkpoint", str(make(tmp_path)),
                 *arch_flags, *flags, "--output-csv", str(out)])
    assert code == 0, capsys.readouterr().err
    theirs = reference_rows(stem)
    assert score_diff(read_rows(out), theirs) <= tolerance


def test_bf16_without_deploy_is_one_line(tmp_path, capsys):
    name, make, arch_flags, stem = CASES[0]
    code = main(["test", "--config", str(_config(tmp_path)), "--checkpoint", str(make(tmp_path)),
                 "--no-deploy", "--precision", "bf16", "--output-csv", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "test.deploy" in err[0], err


def test_avadet_detect_with_onnxruntime_gives_the_same_rows(tmp_path, capsys, land_video):
    name, make, flags, stem = CASES[0]
    torch.set_num_threads(1)
    code = main(detect_argv(land_video, make(tmp_path), tmp_path / "out", *flags,
                            "--backend", "onnxruntime"))
    assert code == 0, capsys.readouterr().err
    ours = read_rows(tmp_path / "out" / "vid_land.csv")
    theirs = reference_rows(stem)
    theirs = theirs[(theirs.video_id == "vid_land")
                    & theirs.timestamp.isin(ours.timestamp.unique())]
    assert len(theirs) and score_diff(ours, theirs) <= TOLERANCE
