"""Person-detector backends: output format and coordinates, weights handling, the detectron2
path, CSV boxes, and the detect-persons command."""

from __future__ import annotations

import types
import urllib.error

import numpy as np
import pytest
import torch
from torch import nn

from avadet.api import detect_persons
from avadet.cli import main
from avadet.config import load_config
from avadet.errors import AvadetError, CheckpointError
from avadet.io import read_person_boxes
from avadet.persons import CsvPersonBoxes, build_person_detector, normalise_boxes
from avadet.persons.detectron2_backend import instances_to_person_boxes
from avadet.persons.torchvision_backend import TorchvisionPersonDetector, build_faster_rcnn
from avadet.synthetic import make_synthetic


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("persons") / "syn", preset="tiny")


def _frames():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
            rng.integers(0, 255, (90, 60, 3), dtype=np.uint8)]


class FixedDetections(nn.Module):
    """A torchvision-style detector returning given pixel boxes, to check the conversion."""

    def __init__(self, boxes, labels, scores):
        super().__init__()
        self.out = {"boxes": torch.tensor(boxes, dtype=torch.float32),
                    "labels": torch.tensor(labels), "scores": torch.tensor(scores)}
        self.seen: list[tuple[int, ...]] = []

    def forward(self, images):
        self.seen.extend(tuple(im.shape) for im in images)
        assert all(float(im.max()) <= 1.0 for im in images)  # images in [0, 1]
        return [dict(self.out) for _ in images]


def test_torchvision_backend_normalises_person_boxes_only():
    model = FixedDetections(
        boxes=[[6.4, 4.8, 32.0, 48.0], [0, 0, 10, 10], [-3.0, 12.0, 70.0, 24.0]],
        labels=[1, 3, 1], scores=[0.6, 0.99, 0.9],
    )
    det = TorchvisionPersonDetector(model=model, score_threshold=0.5, batch_size=1)
    (a, b) = det.detect(_frames())
    assert model.seen == [(3, 48, 64), (3, 90, 60)]  # CHW, each frame at its own size
    # Label 3 dropped; sorted by score; x / W, y / H, clipped to [0, 1].
    np.testing.assert_allclose(a.scores, [0.9, 0.6])
    np.testing.assert_allclose(a.boxes, [[0, 12 / 48, 1, 0.5], [0.1, 0.1, 0.5, 1.0]], atol=1e-6)
    assert a.boxes.dtype == np.float32 and a.scores.dtype == np.float32
    np.testing.assert_allclose(b.boxes[1], [6.4 / 60, 4.8 / 90, 32 / 60, 48 / 90], atol=1e-6)


def test_torchvision_r50_runs_with_random_weights_and_boxes_are_in_frame_coordinates():
    torch.manual_seed(0)
    det = TorchvisionPersonDetector(weights=None, score_threshold=0.0, min_size=64, max_size=96)
    frames = _frames()
    with torch.no_grad():
        raw = det.model([torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in frames])
    # Random weights favour arbitrary classes, and COCO's person (1) may get no box at all:
    # let the backend treat the most frequent class as "person" so there are boxes to check.
    det.person_label = int(torch.bincount(torch.cat([r["labels"] for r in raw])).argmax())
    found = det.detect(frames)
    for frame, got, ref in zip(frames, found, raw):
        person = ref["labels"] == det.person_label
        assert len(got.boxes) == int(person.sum()) > 0
        h, w = frame.shape[:2]
        expect = ref["boxes"][person].numpy() / np.array([w, h, w, h], np.float32)
        order = np.argsort(-ref["scores"][person].numpy(), kind="stable")
        np.testing.assert_allclose(got.boxes, np.clip(expect[order], 0, 1), atol=1e-5)
        assert np.all(got.boxes[:, 2] > got.boxes[:, 0]) and np.all(np.diff(got.scores) <= 0)


def test_local_weights_file_and_offline_message(tmp_path, monkeypatch, synthetic, capsys):
    torch.manual_seed(1)
    ref = build_faster_rcnn(weights=None, min_size=64, max_size=96)
    path = tmp_path / "frcnn.pth"
    torch.save(ref.state_dict(), path)
    loaded = build_faster_rcnn(weights_path=path, min_size=64, max_size=96)
    for key, value in ref.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    (tmp_path / "bad.pth").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="bad.pth"):
        build_faster_rcnn(weights_path=tmp_path / "bad.pth")

    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(AvadetError, match="weights file"):
        build_faster_rcnn(weights="default")
    # The command line prints it as one line, no traceback.
    code = main(["detect-persons", "--config", str(synthetic / "config.yaml"), "--out",
                 str(tmp_path / "b.csv"), "--detector-min-size", "64"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and "fasterrcnn_resnet50_fpn_coco" in err
    assert "--detector-weights" in err  # the command names the flag that fixes it


def test_detectron2_missing_says_how_to_install():
    try:
        import detectron2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("detectron2 is installed")
    with pytest.raises(AvadetError, match="detectron2.*install"):
        build_person_detector("detectron2", score_threshold=0.5)


def test_detectron2_instances_conversion():
    # detectron2's Instances: pred_boxes.tensor in pixels of the original frame, scores,
    # pred_classes with COCO person = 0.
    instances = types.SimpleNamespace(
        pred_boxes=types.SimpleNamespace(tensor=torch.tensor([[10.0, 5, 50, 45], [0, 0, 8, 8],
                                                              [30, 10, 70, 40]])),
        scores=torch.tensor([0.95, 0.9, 0.4]),
        pred_classes=torch.tensor([0, 2, 0]),
    )
    got = instances_to_person_boxes(instances, 80, 50, person_class=0, threshold=0.3)
    np.testing.assert_allclose(got.boxes, [[0.125, 0.1, 0.625, 0.9], [0.375, 0.2, 0.875, 0.8]])
    np.testing.assert_allclose(got.scores, [0.95, 0.4])


def test_normalise_drops_empty_and_low_boxes():
    got = normalise_boxes(np.array([[5, 5, 5, 9], [1, 1, 4, 4], [2, 2, 6, 6]]),
                          np.array([0.9, 0.2, 0.7]), 10, 10, 0.5)
    np.testing.assert_allclose(got.boxes, [[0.2, 0.2, 0.6, 0.6]])


def test_csv_backend_looks_up_keyframes(synthetic):
    path = synthetic / "annotations" / "ava_val_predicted_boxes.csv"
    table = read_person_boxes(path, min_score=0.5)
    det = CsvPersonBoxes(path, min_score=0.5)
    vid, t = table["video_id"].iloc[0], int(table["timestamp"].iloc[0])
    rows = table[(table.video_id == vid) & (table.timestamp == t)]
    frame = np.zeros((4, 4, 3), np.uint8)
    (got, none, half) = det.detect([frame] * 3, [(vid, float(t)), (vid, 1234.0), (vid, t + 0.5)])
    assert len(got.boxes) == len(rows) and len(none.boxes) == 0 and len(half.boxes) == 0
    ref = rows[["x1", "y1", "x2", "y2"]].to_numpy()[np.argsort(-rows["score"].to_numpy(), kind="stable")]
    np.testing.assert_allclose(got.boxes, ref, atol=1e-6)  # best score first
    with pytest.raises(AvadetError, match="key"):
        det.detect([frame])


def test_detect_persons_writes_an_ava_box_csv(synthetic, tmp_path):
    """The command's keyframe walk and writer: with the dataset's own box file as the
    'detector', the output holds exactly its boxes on every keyframe 902..906."""
    cfg = load_config(synthetic / "config.yaml")
    boxes_csv = synthetic / "annotations" / "ava_val_predicted_boxes.csv"
    out = tmp_path / "boxes.csv"
    df = detect_persons(cfg, CsvPersonBoxes(boxes_csv, min_score=0.5), out,
                        split="val", progress=False)
    back = read_person_boxes(out)
    ref = read_person_boxes(boxes_csv, min_score=0.5)
    assert len(back) == len(df) == len(ref)
    key = ["video_id", "timestamp", "x1", "y1", "x2", "y2"]
    merged = back.merge(ref, on=key, suffixes=("", "_ref"))
    assert len(merged) == len(ref)
    np.testing.assert_allclose(merged["score"], merged["score_ref"], atol=1e-6)
    lines = out.read_text().splitlines()
    assert lines[0].split(",")[1] in {f"{t:04d}" for t in range(902, 907)}
    assert {line.split(",")[6] for line in lines} == {"-1"}
    # And through the command line.
    assert main(["detect-persons", "--config", str(synthetic / "config.yaml"), "--out",
                 str(tmp_path / "cli.csv"), "--persons", "csv", "--boxes", str(boxes_csv),
                 "--person-threshold", "0.5"]) == 0
    assert (tmp_path / "cli.csv").read_text() == out.read_text()
    assert main(["detect-persons", "--config", str(synthetic / "config.yaml"), "--out",
                 str(tmp_path / "x.csv"), "--persons", "detectron2"]) == 2


def test_top_boxes_keeps_the_best_scoring_in_order():
    from avadet.persons import PersonBoxes, top_boxes

    scores = np.array([0.5, 0.9, 0.1, 0.9, 0.7], np.float32)
    boxes = np.arange(20, dtype=np.float32).reshape(5, 4)
    kept, dropped = top_boxes(PersonBoxes(boxes, scores), limit=3)
    assert dropped == 2 and kept.scores.tolist() == pytest.approx([0.9, 0.9, 0.7])
    assert kept.boxes[:, 0].tolist() == [4, 12, 16]
    same, none = top_boxes(PersonBoxes(boxes, scores), limit=5)
    assert none == 0 and same.boxes is boxes


def test_bad_detector_weights_give_the_whole_reason_in_one_line(tmp_path):
    import os

    from avadet.errors import CheckpointError
    from avadet.persons.torchvision_backend import build_faster_rcnn

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    cases = {
        "junk.pth": (b"garbage\n", "Unsupported operand"),
        "evil.pth": (Evil(), "unsupported GLOBAL posix.system"),
        "other.pth": ({"backbone.x": torch.zeros(2)}, "348 of the model's 348 tensors missing"),
        "list.pth": ([1, 2], "holds a list, not a state dict"),
    }
    for name, (content, reason) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
        with pytest.raises(CheckpointError) as info:
            build_faster_rcnn(weights=None, weights_path=path, min_size=64, max_size=96)
        message = str(info.value)
        assert message.startswith(str(path)) and reason in message, message
        assert "\n" not in message and "weights_only` set to `False`" not in message
    other = str(pytest.raises(CheckpointError, build_faster_rcnn, weights=None,
                              weights_path=tmp_path / "other.pth").value)
    assert "1 unexpected (backbone.x)" in other
