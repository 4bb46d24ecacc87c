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

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from fixtures.detect_media import write_frames

from avadet.cli import main
from avadet.engine.loading import load_model
from avadet.models.checkpoint_keys import _pytorchvideo_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DATASET = FIXTURES / "pyslowfast_dataset"
MODELS = FIXTURES / "models"
KEY = ["video_id", "timestamp", "x1", "y1", "x2", "y2", "action_id"]
TOLERANCE = 1e-4


def _config(tmp_path: Path) -> Path:
    """A config of the tiny dataset and nothing else: every preprocessing setting must come
    from the checkpoint."""
    path = tmp_path / "data.yaml"
    path.write_text(json.dumps({"data": {
        "root": str(DATASET),
        "labelmap": "annotations/ava_action_list_v2.2.pbtxt",
        "val_annotations": "annotations/ava_val_v2.2.csv",
        "val_exclusions": "annotations/ava_val_excluded_timestamps_v2.2.csv",
        "val_boxes": "annotations/ava_val_predicted_boxes.csv",
        "num_workers": 0,
    }, "test": {"batch_size": 1, "protocol": "pyslowfast"}}))
    return path


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


def _rows(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, header=None, names=[*KEY, "score"], dtype={"video_id": str})


def _score_diff(ours: pd.DataFrame, theirs: pd.DataFrame) -> float:
    """Max |score difference| over rows matched by key; the two must be the same rows."""
    ours = ours.assign(**{c: ours[c].round(6) for c in KEY[2:6]})
    theirs = theirs.assign(**{c: theirs[c].round(6) for c in KEY[2:6]})
    merged = ours.merge(theirs, on=KEY, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head()
    assert len(merged) == len(ours) == len(theirs)
    return float(np.abs(merged["score_x"] - merged["score_y"]).max())


@pytest.mark.parametrize("name, make, flags, stem", CASES, ids=[c[0] for c in CASES])
def test_avadet_test_gives_pyslowfasts_rows(tmp_path, capsys, name, make, flags, stem):
    torch.set_num_threads(1)
    out = tmp_path / "pred.csv"
    code = main(["test", "--config", str(_config(tmp_path)), "--checkpoint", str(make(tmp_path)),
                 *flags, "--output-csv", str(out)])
    assert code == 0, capsys.readouterr().err
    theirs = _rows(DATASET / "reference" / f"{stem}_rows.csv")
    assert _score_diff(_rows(out), theirs) <= TOLERANCE
    # The excluded keyframe is scored (PySlowFast's file has it) and left out by the evaluator.
    assert ("vid_land", 904) in set(map(tuple, _rows(out)[["video_id", "timestamp"]].values))
    expected = json.loads((DATASET / "reference" / f"{stem}_map.json").read_text())["mAP"]
    # The frame-mAP printed under PySlowFast's protocol is PySlowFast's evaluate_ava's.
    assert f"({expected:.6f})" in capsys.readouterr().out


@pytest.fixture(scope="module")
def land_video(tmp_path_factory) -> Path:
    """vid_land's 150 JPEG frames as a lossless 30 fps video (decoded pixels = the JPEGs')."""
    folder = DATASET / "frames" / "vid_land"
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.glob("*.jpg"))]
    h, w = frames[0].shape[:2]
    path = tmp_path_factory.mktemp("video") / "vid_land.mkv"
    return write_frames(path, frames, fps=30, width=w, height=h, codec="libx264rgb",
                        container="matroska", pix_fmt="rgb24", options={"crf": "0"})


@pytest.mark.parametrize("name, make, flags, stem", CASES, ids=[c[0] for c in CASES])
def test_avadet_detect_gives_the_same_rows(tmp_path, capsys, land_video, name, make, flags, stem):
    torch.set_num_threads(1)
    code = main(["detect", str(land_video), "--checkpoint", str(make(tmp_path)), *flags,
                 "--out", str(tmp_path / "out"), "--persons", "csv",
                 "--boxes", str(DATASET / "annotations" / "ava_val_predicted_boxes.csv"),
                 "--timestamp-offset", "900", "--no-video", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    ours = _rows(tmp_path / "out" / "vid_land.csv")
    theirs = _rows(DATASET / "reference" / f"{stem}_rows.csv")
    theirs = theirs[(theirs.video_id == "vid_land")
                    & theirs.timestamp.isin(ours.timestamp.unique())]
    assert len(theirs) and _score_diff(ours, theirs) <= TOLERANCE
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
    theirs = _rows(DATASET / "reference" / "pyslowfast_slow_8x8_r50_c2_w8_rows.csv")
    assert _score_diff(_rows(out), theirs) <= TOLERANCE


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
    theirs = _rows(DATASET / "reference" / f"{stem}_rows.csv")
    assert _score_diff(_rows(out), theirs) <= tolerance


def test_bf16_without_deploy_is_one_line(tmp_path, capsys):
    name, make, arch_flags, stem = CASES[0]
    code = main(["test", "--config", str(_config(tmp_path)), "--checkpoint", str(make(tmp_path)),
                 "--no-deploy", "--precision", "bf16", "--output-csv", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "test.deploy" in err[0], err


def test_avadet_detect_with_onnxruntime_gives_the_same_rows(tmp_path, capsys, land_video):
    name, make, flags, stem = CASES[0]
    torch.set_num_threads(1)
    code = main(["detect", str(land_video), "--checkpoint", str(make(tmp_path)), *flags,
                 "--backend", "onnxruntime",
                 "--out", str(tmp_path / "out"), "--persons", "csv",
                 "--boxes", str(DATASET / "annotations" / "ava_val_predicted_boxes.csv"),
                 "--timestamp-offset", "900", "--no-video", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    ours = _rows(tmp_path / "out" / "vid_land.csv")
    theirs = _rows(DATASET / "reference" / f"{stem}_rows.csv")
    theirs = theirs[(theirs.video_id == "vid_land")
                    & theirs.timestamp.isin(ours.timestamp.unique())]
    assert len(theirs) and _score_diff(ours, theirs) <= TOLERANCE
