"""``avadet detect`` on synthetic and odd clips: CSV blocks, JSON, the annotated video's frame
count and rate, the clip each keyframe is scored on, padding, lying containers, memory."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from fixtures.detect_media import (
    decoded_frames,
    randomize_model,
    read_all,
    write_clip,
    write_faststart_mp4,
    write_lying_avi,
)

from avadet.cli import main
from avadet.config import load_config
from avadet.data.sources import VideoSource
from avadet.data.transforms import short_side_size
from avadet.detect import ClipDetector, ClipSettings, IouTracker
from avadet.detect.render import RenderLayout
from avadet.detect.results import EDGE_RULE
from avadet.detect.runner import count_frames
from avadet.engine import build_dataset, class_ids_of
from avadet.engine.checkpoint import load_trained_model, save_checkpoint
from avadet.io import read_person_boxes, read_predictions
from avadet.models import build_model
from avadet.persons import CsvPersonBoxes
from avadet.synthetic import make_synthetic

THRESHOLD = 0.8  # the configs' data.test_detection_score


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("detect")
    root = make_synthetic(tmp / "syn", preset="tiny")
    ckpts = {}
    for name in ("config.yaml", "config_slow.yaml"):
        cfg = load_config(root / name)
        torch.manual_seed(0)
        ckpts[name] = save_checkpoint(tmp / f"{name}.pt", randomize_model(build_model(cfg)), cfg,
                                      class_ids_of(cfg), epoch=0, iteration=0)
    val = load_config(root / "config.yaml")
    boxes = root / "annotations" / "ava_val_predicted_boxes.csv"
    vid = read_person_boxes(boxes)["video_id"].iloc[0]
    return {"root": root, "ckpt": ckpts, "boxes": boxes, "vid": vid, "tmp": tmp,
            "video": root / "videos" / f"{vid}.mp4", "cfg": val}


def test_cli_csv_blocks_json_and_video(setup, tmp_path):
    out = tmp_path / "out"
    code = main(["detect", str(setup["video"]), "--config", str(setup["root"] / "config.yaml"),
                 "--checkpoint", str(setup["ckpt"]["config.yaml"]), "--out", str(out),
                 "--persons", "csv", "--boxes", str(setup["boxes"]), "--timestamp-offset", "900",
                 "--no-progress"])
    assert code == 0
    vid = setup["vid"]
    class_ids = class_ids_of(setup["cfg"])
    pred = read_predictions(out / f"{vid}.csv")
    boxes = read_person_boxes(setup["boxes"], min_score=THRESHOLD)
    boxes = boxes[(boxes.video_id == vid) & boxes.timestamp.between(900, 907)]
    # One block of len(class_ids) rows per (keyframe, box), in class order, boxes as given.
    c = len(class_ids)
    assert len(pred) == c * len(boxes) > 0
    blocks = pred[["timestamp", "x1", "y1", "x2", "y2"]].to_numpy().reshape(-1, c, 5)
    assert np.all(blocks == blocks[:, :1])
    assert np.all(pred["action_id"].to_numpy().reshape(-1, c) == class_ids)
    assert np.all(np.diff(blocks[:, 0, 0]) >= 0)  # keyframes in time order
    got = pd.DataFrame(blocks[:, 0], columns=["timestamp", "x1", "y1", "x2", "y2"])
    want = boxes[["timestamp", "x1", "y1", "x2", "y2"]].astype(float)
    key = ["timestamp", "x1", "y1", "x2", "y2"]
    assert got.sort_values(key).round(4).values.tolist() == want.sort_values(key).round(4).values.tolist()
    assert (out / f"{vid}.csv").read_text().split(",")[1] in {f"{t:04d}" for t in range(900, 908)}

    doc = json.loads((out / f"{vid}.json").read_text())
    assert [k["timestamp"] for k in doc["keyframes"]] == [900.0 + t for t in range(8)]
    assert sum(len(k["persons"]) for k in doc["keyframes"]) == len(boxes)
    person = next(p for k in doc["keyframes"] for p in k["persons"])
    assert len(person["actions"]) == 3 and person["actions"][0]["name"] in doc["class_names"].values()
    assert doc["class_names"][str(class_ids[0])] == "fast_wave"  # names from the label map
    assert isinstance(person["track_id"], int)

    # Same frame count and rate as the input, drawn 8x larger (short side >= 360 px) with a
    # side panel for the actions; boxes drawn between keyframes only where the last keyframe
    # had people.
    n_in, rate_in, size_in, _ = decoded_frames(setup["video"])
    n_out, rate_out, size_out, _ = decoded_frames(out / f"{vid}_annotated.mp4")
    assert (n_out, rate_out) == (n_in, rate_in) == (240, 30) and size_in == (64, 48)
    layout = RenderLayout.for_frames(48, 64)
    assert layout.scale == 8 and layout.panel_width > 0
    assert size_out == (64 * 8 + layout.panel_width, 48 * 8)
    picture = read_all(out / f"{vid}_annotated.mp4")[:, :, : 64 * 8].astype(float)
    shrunk = picture.reshape(240, 48, 8, 64, 8, 3).mean(axis=(2, 4))
    diff = np.abs(shrunk - read_all(setup["video"]).astype(int)).mean(axis=(1, 2, 3))
    has_people = np.array([len(doc["keyframes"][min(f // 30, 7)]["persons"]) > 0
                           for f in range(240)])
    assert has_people.any() and (~has_people).any()
    # (Re-encoding alone changes frames by a few grey levels.)
    assert diff[has_people].min() > diff[~has_people].max()
    assert np.median(diff[has_people]) > 2 * np.median(diff[~has_people])
    assert (out / f"{vid}.log").read_text().count("s of video per second") == 1


@pytest.mark.parametrize("config", ["config.yaml", "config_slow.yaml"])
def test_keyframes_are_scored_on_the_datasets_clip(setup, config, tmp_path):
    """The streaming runner gives each keyframe the very clip and boxes the AVA dataset (and
    so training and ``avadet test``) gives it: same scores. With the annotated video written,
    so the boxes drawn on frames must not leak into later clips."""
    model, cfg, class_ids = load_trained_model(setup["ckpt"][config])
    cfg.data.source = "video"
    dataset = build_dataset(cfg, "val")
    runner = ClipDetector(model, ClipSettings.from_config(cfg), class_ids,
                          CsvPersonBoxes(setup["boxes"], min_score=THRESHOLD))
    result = runner.run(setup["video"], timestamp_offset=900, progress=False,
                        annotated_path=tmp_path / "a.mp4")
    by_time = {900 + round(k.time): k for k in result.keyframes}
    checked = 0
    for i in range(len(dataset)):
        item = dataset[i]
        if item.video_id != setup["vid"]:
            continue
        kf = by_time[item.timestamp]
        np.testing.assert_allclose(kf.boxes, item.norm_boxes.numpy(), atol=1e-6)
        assert kf.clip_frames.tolist() == dataset.clip_indices(i).tolist()
        rois = torch.cat([torch.zeros(len(item.boxes), 1), item.boxes], 1)
        with torch.no_grad():
            want = model(item.clip[None], rois).numpy()
        np.testing.assert_allclose(kf.action_scores, want, atol=1e-5)
        checked += 1
    assert checked >= 3
    # Scores depend on the clip (so equal scores above mean equal clips).
    rows = np.concatenate([k.action_scores for k in result.keyframes])
    assert rows.std(axis=0).max() > 1e-3


def test_odd_rate_size_and_a_clip_shorter_than_the_window(setup, tmp_path):
    """25 fps, 70x38, 20 frames (0.8 s; the model's window is 32 frames of 30 fps, 1.07 s):
    one keyframe at t = 0 whose clip repeats the first frame for the times before the video,
    and takes the 25 fps frames nearest to the 30 fps clip's times after it."""
    video = write_clip(tmp_path / "odd.mp4", 20, fps=25, width=70, height=38)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("odd,0,0.1,0.2,0.6,0.9,-1,0.95\nodd,0,0.5,0.1,0.9,0.8,-1,0.3\n")
    out = tmp_path / "out"
    assert main(["detect", str(video), "--checkpoint", str(setup["ckpt"]["config.yaml"]),
                 "--out", str(out), "--persons", "csv", "--boxes", str(boxes),
                 "--no-progress", "--top-k", "2"]) == 0
    n, rate, size, _ = decoded_frames(out / "odd_annotated.mp4")
    layout = RenderLayout.for_frames(38, 70)
    assert (n, rate, size) == (20, 25, (layout.size[1], layout.size[0])) == (20, 25, (932, 380))
    lines = (out / "odd.csv").read_text().splitlines()
    assert len(lines) == 2 and all(line.startswith("odd,0000,0.1,0.2,0.6,0.9,") for line in lines)
    assert float(lines[0].split(",")[7]) >= float(lines[1].split(",")[7])  # top-2, best first

    model, cfg, class_ids = load_trained_model(setup["ckpt"]["config.yaml"])
    runner = ClipDetector(model, ClipSettings.from_config(cfg), class_ids,
                          CsvPersonBoxes(boxes, min_score=0.8))
    result = runner.run(video, progress=False)
    assert [k.frame for k in result.keyframes] == [0]
    # Times -16/30 .. 14/30 s at stride 2/30 s; 2/30 s is 1.67 frames at 25 fps -> 2, etc.
    indices = result.keyframes[0].clip_frames
    assert indices.tolist() == [0] * 8 + [0, 2, 3, 5, 7, 8, 10, 12]
    doc = json.loads((out / "odd.json").read_text())
    assert doc["keyframes"][0]["clip_frames"] == indices.tolist()
    assert doc["sampling"] == {"trained_fps": 30.0, "input_fps": 25.0, "num_frames": 16,
                               "sampling_rate": 2, "clip_span_s": 1.0,
                               "edge_rule": EDGE_RULE}
    frames = VideoSource(tmp_path).read("odd", indices)
    h2, w2 = short_side_size(38, 70, cfg.data.test_short_side)  # 48 x 88
    clip = np.stack([cv2.resize(f, (w2, h2), interpolation=cv2.INTER_LINEAR) for f in frames])
    want = runner.score(clip, (38, 70), result.keyframes[0].boxes)
    np.testing.assert_allclose(result.keyframes[0].action_scores, want, atol=1e-6)


def test_odd_pixel_size_is_padded_by_one_edge_pixel(setup, tmp_path):
    # Large enough to be drawn at its own size (short side >= 360), so the odd sizes show.
    video = write_clip(tmp_path / "o.mp4", 30, fps=24, width=481, height=361, pix_fmt="yuv444p")
    boxes = tmp_path / "b.csv"
    boxes.write_text("o,0,0.1,0.1,0.5,0.9,-1,0.9\n")
    assert main(["detect", str(video), "--checkpoint", str(setup["ckpt"]["config.yaml"]),
                 "--out", str(tmp_path / "out"), "--persons", "csv", "--boxes", str(boxes),
                 "--no-progress"]) == 0
    assert decoded_frames(tmp_path / "out" / "o_annotated.mp4")[:3] == (30, 24, (482, 362))
    doc = json.loads((tmp_path / "out" / "o.json").read_text())
    assert (doc["width"], doc["height"], len(doc["keyframes"])) == (481, 361, 2)


@pytest.mark.parametrize("claimed", [500, 10])
def test_container_lying_about_its_frame_count(setup, tmp_path, claimed):
    video = write_lying_avi(tmp_path / "liar.avi", 40, claimed, fps=25)
    assert decoded_frames(video)[3] == claimed  # the header's claim
    assert count_frames(video) == 40
    model, cfg, class_ids = load_trained_model(setup["ckpt"]["config.yaml"])
    boxes = tmp_path / "b.csv"
    boxes.write_text("liar,0,0.1,0.1,0.5,0.9,-1,0.9\nliar,1,0.2,0.1,0.6,0.9,-1,0.9\n")
    runner = ClipDetector(model, ClipSettings.from_config(cfg), class_ids,
                          CsvPersonBoxes(boxes, min_score=0.5))
    result = runner.run(video, annotated_path=tmp_path / "a.mp4", progress=False)
    assert result.num_frames == 40 and [k.frame for k in result.keyframes] == [0, 25]
    assert [len(k.boxes) for k in result.keyframes] == [1, 1]
    assert result.keyframes[0].track_ids.tolist() == result.keyframes[1].track_ids.tolist()
    assert decoded_frames(tmp_path / "a.mp4")[:2] == (40, 25)


def test_memory_stays_a_window_not_the_video(setup, tmp_path):
    model, cfg, class_ids = load_trained_model(setup["ckpt"]["config.yaml"])
    runner = ClipDetector(model, ClipSettings.from_config(cfg), class_ids,
                          CsvPersonBoxes(setup["boxes"], min_score=THRESHOLD))
    result = runner.run(setup["video"], timestamp_offset=900, annotated_path=tmp_path / "a.mp4",
                        progress=False)
    window = cfg.data.num_frames * cfg.data.sampling_rate  # 32
    assert result.num_frames == 240
    assert result.peak_frames_held <= window + 30 + 2  # clip window + one keyframe interval


def test_keyframe_interval_and_start(setup, tmp_path):
    model, cfg, class_ids = load_trained_model(setup["ckpt"]["config.yaml"])
    runner = ClipDetector(model, ClipSettings.from_config(cfg), class_ids,
                          CsvPersonBoxes(setup["boxes"], min_score=THRESHOLD),
                          interval=2.5, start=0.5)
    result = runner.run(setup["video"], timestamp_offset=900, annotated_path=tmp_path / "a.mp4",
                        progress=False)
    assert [k.time for k in result.keyframes] == [0.5, 3.0, 5.5]
    assert [k.frame for k in result.keyframes] == [15, 90, 165]
    assert len(result.keyframes[0].boxes) == 0  # 900.5 is no CSV keyframe
    assert decoded_frames(tmp_path / "a.mp4")[0] == 240


def test_bad_inputs_are_one_line_errors(setup, tmp_path, capsys):
    ckpt = str(setup["ckpt"]["config.yaml"])
    assert main(["detect", str(tmp_path / "absent.mp4"), "--checkpoint", ckpt,
                 "--out", str(tmp_path / "o")]) == 2
    assert "video not found" in capsys.readouterr().err
    assert main(["detect", str(setup["video"]), "--checkpoint", ckpt, "--out", str(tmp_path / "o"),
                 "--persons", "csv", "--boxes", str(setup["boxes"]), "--video-id", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no boxes for video id 'nope'" in err and "Traceback" not in err
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    assert main(["detect", str(tmp_path / "junk.mp4"), "--checkpoint", ckpt, "--out",
                 str(tmp_path / "o"), "--persons", "csv", "--boxes", str(setup["boxes"]),
                 "--video-id", setup["vid"]]) == 2
    assert "junk.mp4" in capsys.readouterr().err
    # A file that is no video is reported as such before the person boxes are looked at.
    assert main(["detect", str(tmp_path / "junk.mp4"), "--checkpoint", ckpt, "--out",
                 str(tmp_path / "o2"), "--persons", "csv", "--boxes", str(setup["boxes"]),
                 "--video-id", "nope"]) == 2
    err = capsys.readouterr().err
    assert "junk.mp4: not a video" in err and "no boxes" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o2").exists()


def test_a_truncated_mp4_is_an_error_not_a_short_run(setup, tmp_path, capsys):
    whole = write_faststart_mp4(tmp_path / "whole.mp4", 240)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.45)])
    boxes = tmp_path / "b.csv"
    boxes.write_text("cut,0,0.1,0.1,0.5,0.9,-1,0.9\ncut,1,0.2,0.1,0.6,0.9,-1,0.9\n")
    assert main(["detect", str(cut), "--checkpoint", str(setup["ckpt"]["config.yaml"]),
                 "--out", str(tmp_path / "o"), "--persons", "csv", "--boxes", str(boxes),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cut.mp4: truncated video" in err and "of the 240 frames" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "cut_annotated.mp4").exists()
    assert not (tmp_path / "o" / "cut.csv").exists()


def test_200000_person_boxes_on_one_keyframe_are_capped(setup, tmp_path, caplog):
    """A box CSV with 200,000 rows on one keyframe: the best-scoring 1000 are scored, the rest
    dropped with a warning, instead of one allocation for 200,000 RoIs."""
    from avadet.persons import MAX_PERSONS_PER_KEYFRAME

    rng = np.random.default_rng(0)
    n = 200_000
    x1, y1 = rng.uniform(0, 0.5, n), rng.uniform(0, 0.5, n)
    scores = rng.uniform(0.5, 1.0, n)
    boxes = tmp_path / "crowd.csv"
    pd.DataFrame({"v": setup["vid"], "t": 902, "x1": x1.round(3), "y1": y1.round(3),
                  "x2": (x1 + 0.3).round(3), "y2": (y1 + 0.4).round(3), "a": -1,
                  "s": scores.round(4)}).to_csv(boxes, header=False, index=False)
    model, cfg, class_ids = load_trained_model(setup["ckpt"]["config.yaml"])
    with caplog.at_level("WARNING"):
        persons = CsvPersonBoxes(boxes, min_score=0.0)
    rows = read_person_boxes(boxes)  # the reader merges rows of the same box
    assert persons.dropped == len(rows) - MAX_PERSONS_PER_KEYFRAME > 100_000
    assert f"{persons.dropped} boxes dropped" in caplog.text
    runner = ClipDetector(model, ClipSettings.from_config(cfg), class_ids, persons,
                          interval=2.0, start=2.0)
    result = runner.run(setup["video"], timestamp_offset=900, progress=False)
    crowded = result.keyframes[0]
    assert crowded.time == 2.0 and crowded.action_scores.shape == (1000, len(class_ids))
    assert crowded.person_scores.min() >= np.sort(rows["score"].to_numpy(np.float32))[-1000]
    assert all(len(k.boxes) == 0 for k in result.keyframes[1:])


def test_iou_tracker_keeps_ids():
    tracker = IouTracker(min_iou=0.3, max_missed=1)
    a = np.array([[0.1, 0.1, 0.3, 0.6], [0.6, 0.2, 0.8, 0.7]])
    assert tracker.update(a).tolist() == [0, 1]
    moved = a[::-1] + 0.02  # listed in the other order, moved a little
    assert tracker.update(moved).tolist() == [1, 0]
    assert tracker.update(moved[:1]).tolist() == [1]  # person 0 missed once
    back = np.vstack([moved[:1], moved[1:] + 0.01, [[0.4, 0.0, 0.5, 0.2]]])
    assert tracker.update(back).tolist() == [1, 0, 2]  # 0 returns; a newcomer gets 2
    assert tracker.update(np.zeros((0, 4))).tolist() == []


def test_fractional_keyframe_times_keep_their_decimals(tmp_path):
    from pathlib import Path

    from avadet.detect import DetectResult, KeyframeResult
    from avadet.detect.outputs import prediction_table, write_predictions_csv

    kf = KeyframeResult(index=1, time=0.5, frame=15, boxes=np.array([[0.1, 0.2, 0.3, 0.4]], np.float32),
                        person_scores=np.array([0.9], np.float32), track_ids=np.array([0]),
                        action_scores=np.array([[0.2, 0.7, 0.1]], np.float32))
    result = DetectResult(Path("v.mp4"), "v", 30.0, 30, 64, 48, [4, 8, 15], [kf], None)
    table = prediction_table(result, timestamp_offset=900, top_k=2)
    assert table["action_id"].tolist() == [8, 4]
    text = write_predictions_csv(tmp_path / "p.csv", table).read_text()
    assert text.splitlines()[0] == "v,900.500,0.1,0.2,0.3,0.4,8,0.7"


def test_default_torchvision_backend_from_a_local_weights_file(setup, tmp_path):
    """The default detector path end to end, offline: R50-FPN weights from a file."""
    from avadet.persons.torchvision_backend import build_faster_rcnn

    torch.manual_seed(0)
    weights = tmp_path / "frcnn.pth"
    torch.save(build_faster_rcnn(weights=None, min_size=64, max_size=96).state_dict(), weights)
    out = tmp_path / "out"
    assert main(["detect", str(setup["video"]), "--checkpoint", str(setup["ckpt"]["config.yaml"]),
                 "--out", str(out), "--detector-weights", str(weights), "--detector-min-size", "64",
                 "--detector-max-size", "96", "--no-progress", "--interval", "2"]) == 0
    doc = json.loads((out / f"{setup['vid']}.json").read_text())
    assert doc["persons"].startswith("torchvision Faster R-CNN R50-FPN") and len(doc["keyframes"]) == 4
    assert doc["person_threshold"] == THRESHOLD
    assert decoded_frames(out / f"{setup['vid']}_annotated.mp4")[0] == 240
