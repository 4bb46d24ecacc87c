"""build_dataset / AvaDataset / collate on a tiny AVA-layout dataset."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.dataset_media import frame_number, write_dataset

from avadet.config import load_config
from avadet.data import Item, collate, label_boxes_by_iou
from avadet.engine import build_dataset
from avadet.engine.build import read_split_tables
from avadet.engine.inference import EvalSetup, eval_setup, evaluate_predictions, prediction_rows
from avadet.errors import ConfigError
from avadet.models import slow_pathway_positions

MEAN, STD = 0.45, 0.225

TRAIN = [
    "vidA,0902,0.1,0.1,0.5,0.9,1,0",
    "vidA,0902,0.1,0.1,0.5,0.9,5,0",  # same person, second action
    "vidA,0902,0.6,0.2,0.9,0.8,2,1",
    "vidA,0903,0.2,0.2,0.4,0.4,1,0",
    "vidA,0904,0.2,0.2,0.4,0.4,1,0",  # excluded below
    "vidA,0910,0.2,0.2,0.4,0.4,1,0",  # outside the segment 900..905
    "-vidB,0901,0.2,0.2,0.4,0.4,3,0",  # action 3 is not in the label map: all-zero labels
]
VAL = [
    "vidA,0902,0.1,0.1,0.5,0.9,1,0",
    "vidA,0902,0.1,0.1,0.5,0.9,2,0",
    "vidA,0903,0.5,0.5,0.9,0.9,5,3",
]
VAL_BOXES = [
    "vidA,0902,0.12,0.1,0.5,0.88,,0.95",  # IoU ~0.9 with the gt person: labels 1 and 2
    "vidA,0902,0.6,0.6,0.7,0.7,,0.5",  # below the score threshold
    "vidA,0903,0.1,0.1,0.3,0.3,-1,0.85",  # no gt overlap: all-zero labels
    "-vidB,0902,0.3,0.3,0.6,0.6,-1,0.9",  # a keyframe without gt
]
TRAIN_BOXES = [
    "vidA,0902,0.6,0.2,0.88,0.82,,0.97",  # the second gt person, shifted
    "vidA,0902,0.0,0.0,0.05,0.05,,0.95",  # background person
    "vidA,0903,0.2,0.2,0.4,0.4,,0.5",  # below train_detection_score
    "-vidB,0902,0.3,0.3,0.6,0.6,-1,0.99",  # keyframe without gt: not used in training
]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_dataset(
        tmp_path_factory.mktemp("ava"),
        videos={"vidA": 150, "-vidB": 100},
        rows={
            "train.csv": TRAIN,
            "val.csv": VAL,
            "val_boxes.csv": VAL_BOXES,
            "train_boxes.csv": TRAIN_BOXES,
            "train_excl.csv": ["vidA,0904"],
            "val_excl.csv": ["vidA,0903"],
        },
    )


def config(root: Path, *extra: str):
    return load_config(
        None,
        [
            f"data.root={root}",
            "data.labelmap=annotations/labelmap.pbtxt",
            "data.train_annotations=annotations/train.csv",
            "data.val_annotations=annotations/val.csv",
            "data.train_exclusions=annotations/train_excl.csv",
            "data.val_exclusions=",
            "data.train_boxes=annotations/train_boxes.csv",
            "data.val_boxes=annotations/val_boxes.csv",
            "data.segment_end=905",
            "data.num_frames=8",
            "data.sampling_rate=2",
            "data.train_jitter_scales=[32,40]",
            "data.train_crop_size=32",
            "data.test_short_side=0",
            "data.train_color_jitter=false",
            "model.alpha=4",
            *extra,
        ],
    )


def frame_numbers(clip: torch.Tensor) -> list[int]:
    """Frame indices painted in a ``(3, T, H, W)`` normalised clip."""
    rgb = ((clip * STD + MEAN) * 255).round().clamp(0, 255).byte().permute(1, 2, 3, 0).numpy()
    return [frame_number(f) for f in rgb]


def test_train_split_boxes_and_labels(root):
    ds = build_dataset(config(root), "train")
    assert ds.class_ids == [1, 2, 5]
    assert ds.keyframes().values.tolist() == [["-vidB", 901], ["vidA", 902], ["vidA", 903]]
    rows = {
        (v, t): ds._labels[ds._starts[i] : ds._starts[i + 1]].tolist()
        for i, (v, t) in enumerate(ds.keyframes().values.tolist())
    }
    assert rows[("vidA", 902)] == [[1, 0, 1], [0, 1, 0]]
    assert rows[("-vidB", 901)] == [[0, 0, 0]]  # a person with no trained action stays
    item = ds[1]
    fast = item.clip  # the Fast-rate clip; the model takes the Slow frames from it
    assert fast.shape == (3, 8, 32, 32)
    assert slow_pathway_positions(8, 4).tolist() == [0, 7]  # linspace(0, 7, 2).long()
    assert item.boxes.dtype == torch.float32 and item.boxes.shape[1] == 4
    k = item.boxes.shape[0]
    assert item.labels.shape == (k, 3) and item.norm_boxes.shape == (k, 4)
    assert torch.equal(item.box_scores, torch.ones(k))
    assert (item.boxes[:, 2:] <= 31).all() and (item.boxes >= 0).all()


def test_class_subset_orders_columns(root):
    ds = build_dataset(config(root, "data.classes=[5,1]"), "train")
    assert ds.class_ids == [5, 1]
    assert ds._labels[ds._starts[1] : ds._starts[2]].tolist() == [[1, 1], [0, 0]]
    with pytest.raises(ConfigError, match=r"\[7\]"):
        build_dataset(config(root, "data.classes=[7]"), "train")


@pytest.mark.parametrize("source", ["frames", "video"])
def test_val_items_hold_the_keyframe_clip(root, source):
    ds = build_dataset(config(root, f"data.source={source}"), "val")
    assert ds.keyframes().values.tolist() == [["-vidB", 902], ["vidA", 902], ["vidA", 903]]
    item = ds[1]  # vidA 902: centre frame 60, 8 frames at stride 2
    assert frame_numbers(item.clip) == list(range(52, 68, 2))
    assert frame_numbers(item.clip[:, slow_pathway_positions(8, 4)]) == [52, 66]
    np.testing.assert_allclose(item.norm_boxes, [[0.12, 0.1, 0.5, 0.88]], rtol=1e-6)
    np.testing.assert_allclose(item.boxes, [[0.12 * 96, 3.2, 48, 0.88 * 32]], rtol=1e-5)
    assert item.labels.tolist() == [[1, 1, 0]]
    np.testing.assert_allclose(item.box_scores, [0.95])
    assert ds[2].labels.tolist() == [[0, 0, 0]]
    assert ds[0].labels.tolist() == [[0, 0, 0]]
    # -vidB 902 (a keyframe without gt) reads from its own video
    assert frame_numbers(ds[0].clip) == list(range(52, 68, 2))


def test_frames_and_video_give_the_same_items(root):
    a = build_dataset(config(root, "data.source=frames"), "val")
    b = build_dataset(config(root, "data.source=video"), "val")
    for i in range(len(a)):
        assert (a[i].clip - b[i].clip).abs().mean() < 0.05  # JPEG loss only
        assert torch.equal(a[i].boxes, b[i].boxes)


def test_val_without_detection_file_uses_gt_boxes(root):
    ds = build_dataset(config(root, "data.val_boxes="), "val")
    assert ds.keyframes().values.tolist() == [["vidA", 902], ["vidA", 903]]
    assert ds[0].labels.tolist() == [[1, 1, 0]]


def test_val_scores_excluded_keyframes_and_the_evaluator_leaves_them_out(root):
    # PySlowFast's test path scores every keyframe with boxes; exclusions are the evaluator's.
    cfg = config(root, "data.val_exclusions=annotations/val_excl.csv")
    ds = build_dataset(cfg, "val")
    assert ds.keyframes().values.tolist() == [["-vidB", 902], ["vidA", 902], ["vidA", 903]]
    tables = read_split_tables(cfg, "val")
    setup = eval_setup(cfg, ds.class_ids, tables)
    assert setup.exclusions.values.tolist() == [["vidA", 903]]
    # A prediction per box and class; the excluded keyframe's box would be a false positive of
    # class 1 ranked first (and its gt of class 5 a miss) if the evaluator did not drop it.
    batch = collate([ds[i] for i in range(len(ds))])
    scores = np.tile([0.5, 0.6, 0.7], (len(batch.box_index), 1))
    scores[-1] = [0.99, 0.1, 0.1]
    preds = prediction_rows(batch.video_ids, batch.timestamps, batch.box_index.numpy(),
                            batch.norm_boxes.numpy(), scores, ds.class_ids)
    assert (preds["timestamp"] == 903).sum() == 3
    kept = preds[preds["timestamp"] != 903]
    with_excluded, without = evaluate_predictions(preds, setup), evaluate_predictions(kept, setup)
    assert with_excluded.map == without.map == 0.5  # -vidB,0902 has no gt: false positives
    assert with_excluded.num_pred == without.num_pred and with_excluded.num_gt[5] == 0
    unexcluded = EvalSetup(dataclasses.replace(tables, exclusions=None), setup.labelmap,
                           setup.protocol)
    assert evaluate_predictions(preds, unexcluded).map < 1.0


def test_train_with_detections(root):
    ds = build_dataset(config(root, "data.train_use_detections=true"), "train")
    assert ds.keyframes().values.tolist() == [["-vidB", 901], ["vidA", 902], ["vidA", 903]]
    rows = slice(ds._starts[1], ds._starts[2])
    assert ds._labels[rows].tolist() == [[1, 0, 1], [0, 1, 0], [0, 1, 0], [0, 0, 0]]
    np.testing.assert_allclose(ds._scores[rows], [1, 1, 0.97, 0.95], rtol=1e-6)


def test_label_boxes_by_iou_takes_the_best_gt():
    import pandas as pd

    gt = pd.DataFrame(
        {
            "video_id": ["a", "a", "b"],
            "timestamp": [1, 1, 1],
            "x1": [0.0, 0.4, 0.0],
            "y1": [0.0] * 3,
            "x2": [0.5, 0.9, 0.5],
            "y2": [1.0] * 3,
        }
    )
    labels = np.eye(3, dtype=np.float32)
    boxes = pd.DataFrame(
        {
            "video_id": ["a", "a", "b", "c"],
            "timestamp": [1, 1, 2, 1],
            "x1": [0.38, 0.0, 0.0, 0.0],
            "y1": [0.0] * 4,
            "x2": [0.9, 0.3, 0.5, 0.5],
            "y2": [1.0] * 4,
        }
    )
    got = label_boxes_by_iou(boxes, gt, labels)
    assert got.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]]


def test_slow_only_has_one_pathway(root):
    ds = build_dataset(config(root, "model.arch=slow"), "val")
    item = ds[1]
    assert item.clip.shape == (3, 8, 32, 96)  # every frame goes to the one pathway


def test_unreadable_clips_are_counted_and_replaced(root, tmp_path, caplog):
    broken = tmp_path / "ava"
    shutil.copytree(root, broken)
    shutil.rmtree(broken / "frames" / "-vidB")
    (broken / "frames" / "vidA" / "vidA_000061.jpg").unlink()  # centre of vidA 902
    train = build_dataset(config(broken), "train")
    with caplog.at_level(logging.WARNING, logger="avadet.data"):
        np.random.seed(0)
        for i in range(len(train)):
            item = train[i]
            assert item.clip is not None and item.video_id == "vidA"
            assert item.timestamp == 903  # the only readable keyframe
    assert train.skipped >= 2
    assert "-vidB" in caplog.text and "vidA_000061.jpg" in caplog.text

    val = build_dataset(config(broken), "val")
    items = [val[i] for i in range(len(val))]
    assert val.skipped == 2
    assert [it.clip is None for it in items] == [True, True, False]
    batch = collate(items)
    assert batch.video_ids == ["vidA"] and batch.timestamps == [903]
    assert batch.clips.shape == (1, 3, 8, 32, 96)
    empty = collate(items[:2])
    assert (
        empty.boxes.shape == (0, 5) and len(empty) == 0 and len(empty.clips) == 0
        and empty.labels.shape == (0, 3)
    )


def test_skipped_counts_across_workers(root, tmp_path):
    broken = tmp_path / "ava"
    shutil.copytree(root, broken)
    shutil.rmtree(broken / "frames" / "-vidB")
    val = build_dataset(config(broken), "val")
    loader = torch.utils.data.DataLoader(val, batch_size=1, num_workers=2, collate_fn=collate)
    batches = list(loader)
    assert [b.video_ids for b in batches] == [[], ["vidA"], ["vidA"]]
    assert val.skipped == 1
    # batches stacked in the workers' shared memory hold the items' values
    for i in (1, 2):
        assert torch.equal(batches[i].clips[0], val[i].clip)


def test_collate_batches_and_pads():
    def item(h, w, k):
        return Item(
            clip=torch.ones(3, 8, h, w),
            boxes=torch.tensor([[1.0, 2.0, 3.0, 4.0]] * k),
            labels=torch.ones(k, 4),
            norm_boxes=torch.zeros(k, 4),
            box_scores=torch.full((k,), 0.5),
            video_id=f"v{h}",
            timestamp=902,
        )

    batch = collate([item(8, 10, 2), item(8, 12, 1), item(6, 12, 0)])
    assert batch.clips.shape == (3, 3, 8, 8, 12)
    assert batch.clips[0, :, :, :, 10:].abs().sum() == 0  # zero padding, right
    assert batch.clips[2, :, :, 6:].abs().sum() == 0  # and bottom
    assert batch.boxes.tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [1, 1, 2, 3, 4]]
    assert batch.box_index.tolist() == [0, 0, 1]
    assert batch.labels.shape == (3, 4) and batch.box_scores.shape == (3,)
    assert batch.video_ids == ["v8", "v8", "v6"] and batch.timestamps == [902] * 3


def test_config_errors_name_the_setting(root):
    with pytest.raises(ConfigError, match="train_annotations"):
        build_dataset(config(root, "data.train_annotations=annotations/nope.csv"), "train")
    with pytest.raises(ConfigError, match="data.source"):
        build_dataset(config(root, "data.source=hdf5"), "val")
    with pytest.raises(ConfigError, match="split"):
        build_dataset(config(root), "test")
    with pytest.raises(ConfigError, match="alpha"):
        build_dataset(config(root, "model.alpha=16"), "val")


def test_seed_plan_fixes_each_items_augmentation(root):
    ds = build_dataset(config(root, "data.train_color_jitter=true"), "train")
    ds.set_seed_plan(7, epoch=1)
    np.random.seed(0)
    first = [ds[i] for i in range(len(ds))]
    np.random.seed(99)  # the global generator plays no part under a seed plan
    again = [ds[i] for i in reversed(range(len(ds)))][::-1]  # nor does the reading order
    for a, b in zip(first, again):
        assert torch.equal(a.clip, b.clip)
        assert torch.equal(a.boxes, b.boxes)
    ds.set_seed_plan(7, epoch=2)
    assert any(not torch.equal(first[i].clip, ds[i].clip) for i in range(len(ds)))
    ds.set_seed_plan(None)  # back to numpy's global generator
    assert ds.item_rng(0) is None
    with pytest.raises(ValueError, match=">= 0"):
        ds.set_seed_plan(-1)


def test_seed_plan_draws_replacements_too(root, tmp_path):
    broken = tmp_path / "ava"
    shutil.copytree(root, broken)
    (broken / "frames" / "vidA" / "vidA_000061.jpg").unlink()  # centre of vidA 902
    ds = build_dataset(config(broken), "train")
    ds.set_seed_plan(3, epoch=0)
    bad = ds.timestamps.index(902)
    a, b = ds[bad], ds[bad]  # replaced by the same keyframe, augmented the same way
    assert a.timestamp == b.timestamp != 902
    assert torch.equal(a.clip, b.clip)


def test_a_truncated_jpeg_is_counted_and_skipped_not_grey_filled(root, tmp_path, caplog):
    broken = tmp_path / "ava"
    shutil.copytree(root, broken)
    cut = broken / "frames" / "vidA" / "vidA_000061.jpg"  # centre of vidA 902
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    # OpenCV 4 decodes such a file with a grey fill and only warns (newer builds refuse it):
    # the missing end-of-image marker is checked before decoding, whatever the build does.
    train = build_dataset(config(broken), "train")
    with caplog.at_level(logging.WARNING, logger="avadet.data"):
        np.random.seed(0)
        for i in range(len(train)):
            item = train[i]
            assert item.clip is not None and (item.video_id, item.timestamp) != ("vidA", 902)
    assert train.skipped >= 1
    assert "vidA_000061.jpg: truncated JPEG" in caplog.text
    val = build_dataset(config(broken), "val")
    items = [val[i] for i in range(len(val))]
    assert [(it.video_id, it.timestamp, it.clip is None) for it in items] == [
        ("-vidB", 902, False), ("vidA", 902, True), ("vidA", 903, False)]
    assert val.skipped == 1


@pytest.mark.parametrize("source", ["frames", "video"])
def test_keyframes_past_a_short_videos_end_are_counted_and_logged(root, tmp_path, caplog,
                                                                   source):
    from fixtures.dataset_media import write_video

    short = tmp_path / "ava"
    shutil.copytree(root, short)
    for k in range(91, 151):  # vidA keeps 90 frames (3 s): keyframe 903's centre is frame 90
        (short / "frames" / "vidA" / f"vidA_{k:06d}.jpg").unlink()
    write_video(short / "videos" / "vidA.mp4", 90)
    val = build_dataset(config(short, f"data.source={source}"), "val")
    with caplog.at_level(logging.WARNING, logger="avadet.data"):
        items = [val[i] for i in range(len(val))]
        items += [val[i] for i in range(len(val))]  # read twice: logged once
    assert all(it.clip is not None for it in items)
    assert val.past_end == 2 and val.skipped == 0
    lines = [r.getMessage() for r in caplog.records if "past its end" in r.getMessage()]
    assert lines == ["vidA has 90 frames (3.0 s at 30 fps): 1 of its 2 keyframes lie past its "
                     "end and are read as its last frame repeated; re-extract or re-cut the "
                     "video"]
