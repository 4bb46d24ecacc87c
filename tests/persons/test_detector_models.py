"""The faster torchvision person detectors (MobileNetV3-Large FPN, its 320 px version) and the
detector's input size: built with random weights, boxes in frame coordinates, weights from a
local file of the same model, one-line errors naming the model's URL when offline."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch

from avadet.cli import main
from avadet.commands import detect as detect_command
from avadet.errors import AvadetError, CheckpointError, WeightsUnavailable
from avadet.persons import PersonDetectorChoice
from avadet.persons.torchvision_backend import (
    DETECTOR_MODELS,
    TorchvisionPersonDetector,
    build_faster_rcnn,
)

FAST = ("mobilenet_v3_fpn", "mobilenet_v3_320")


def _frames():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
            rng.integers(0, 255, (90, 60, 3), dtype=np.uint8)]


@pytest.mark.parametrize("name", FAST)
def test_fast_models_find_boxes_in_frame_coordinates(name):
    torch.manual_seed(0)
    det = TorchvisionPersonDetector(weights=None, arch=name, min_size=64, max_size=96,
                                    score_threshold=0.0)
    assert DETECTOR_MODELS[name].title in det.describe()
    frames = _frames()
    with torch.no_grad():
        raw = det.model([torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in frames])
    # Random weights: call the most frequent class "person" so there are boxes to check.
    det.person_label = int(torch.bincount(torch.cat([r["labels"] for r in raw])).argmax())
    for frame, got, ref in zip(frames, det.detect(frames), raw):
        person = ref["labels"] == det.person_label
        assert len(got.boxes) == int(person.sum()) > 0
        h, w = frame.shape[:2]
        want = np.clip(ref["boxes"][person].numpy() / np.array([w, h, w, h], np.float32), 0, 1)
        order = np.argsort(-ref["scores"][person].numpy(), kind="stable")
        np.testing.assert_allclose(got.boxes, want[order], atol=1e-6)


def test_input_size_defaults_to_each_models_own():
    for name, size in (("r50_fpn", (800, 1333)), ("mobilenet_v3_fpn", (800, 1333)),
                       ("mobilenet_v3_320", (320, 640))):
        model = build_faster_rcnn(weights=None, arch=name)
        assert (model.transform.min_size[0], model.transform.max_size) == size, name
    model = build_faster_rcnn(weights=None, arch="mobilenet_v3_320", min_size=200)
    assert (model.transform.min_size[0], model.transform.max_size) == (200, 640)
    with pytest.raises(AvadetError, match="mobilenet_v3_320"):
        build_faster_rcnn(weights=None, arch="yolo")


def test_weights_file_of_the_same_model_and_of_another(tmp_path, monkeypatch):
    torch.manual_seed(1)
    ref = build_faster_rcnn(weights=None, arch="mobilenet_v3_320")
    path = tmp_path / "mnv3.pth"
    torch.save(ref.state_dict(), path)
    loaded = build_faster_rcnn(weights_path=path, arch="mobilenet_v3_320")
    for key, value in ref.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    # The MobileNet's file given to the R50-FPN: one line naming the model it is not.
    with pytest.raises(CheckpointError, match="not fasterrcnn_resnet50_fpn COCO weights") as err:
        build_faster_rcnn(weights_path=path, arch="r50_fpn")
    assert "\n" not in str(err.value)

    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    for name in FAST:
        with pytest.raises(WeightsUnavailable) as err:  # as the command builds it
            PersonDetectorChoice(model=name).build(score_threshold=0.5)
        message = str(err.value)
        assert DETECTOR_MODELS[name].url in message and "\n" not in message


def test_detect_flags_choose_the_model_and_size(tmp_path, capsys):
    assert detect_command.DETECTOR_MODELS == tuple(DETECTOR_MODELS)
    import argparse

    parser = argparse.ArgumentParser()
    detect_command.add_arguments(parser)
    base = ["v.mp4", "--checkpoint", "c.pt", "--out", str(tmp_path)]
    args = parser.parse_args(base)
    assert (args.detector_model, args.detector_min_size, args.detector_max_size) == (
        "r50_fpn", None, None)
    assert (args.batch_keyframes, args.persons_thread, args.decode_thread) == (None,) * 3
    args = parser.parse_args(base + ["--detector-model", "mobilenet_v3_fpn", "--detector-size",
                                     "320", "--batch-keyframes", "4", "--persons-thread",
                                     "--no-decode-thread"])
    assert (args.detector_model, args.detector_min_size) == ("mobilenet_v3_fpn", 320)
    assert (args.batch_keyframes, args.persons_thread, args.decode_thread) == (4, True, False)
    # Offline: the command's one line names the model's URL and the flag that fixes it.
    video = tmp_path / "v.mp4"
    from fixtures.detect_media import write_clip

    write_clip(video, 10, fps=10, width=32, height=24)
    code = main(["detect", str(video), "--checkpoint", str(tmp_path / "none.pt"), "--out",
                 str(tmp_path / "o"), "--detector-model", "mobilenet_v3_320",
                 "--detector-weights", str(tmp_path / "missing.pth"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
