"""Writing a dataset: layout, readability by avadet.io, determinism, detector noise, configs,
metadata, reuse, custom label maps, and the aliasing as the written JPEGs show it."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml

from avadet import synthetic as syn
from avadet.boxes import BOX_COLUMNS, KEY_COLUMNS, pairwise_iou
from avadet.config import load_config
from avadet.errors import AvadetError, ConfigError
from avadet.io import (
    merge_box_labels,
    read_annotations,
    read_exclusions,
    read_frame_list,
    read_labelmap,
    read_person_boxes,
)

REPO = Path(__file__).resolve().parents[2]
ANN = "annotations"


def test_layout_and_every_file_reads(tiny: Path) -> None:
    spec = syn.PRESETS["tiny"]
    meta = syn.load_meta(tiny)
    full = read_labelmap(tiny / ANN / "ava_action_list_v2.2.pbtxt")
    evaluated = read_labelmap(tiny / ANN / "ava_action_list_v2.2_for_activitynet_2019.pbtxt")
    assert full.ids == [c.id for c in syn.CLASSES]
    assert set(evaluated.ids) < set(full.ids)
    assert evaluated.ids == meta["evaluated_class_ids"]
    n_frames = spec.duration * spec.fps
    for split in ("train", "val"):
        gt = read_annotations(tiny / ANN / f"ava_{split}_v2.2.csv", labelmap=full, strict=True)
        videos = [v["video_id"] for v in meta["videos"] if v["split"] == split]
        assert set(gt.video_id) <= set(videos) and len(gt) > 0
        assert gt.timestamp.between(902, 900 + spec.duration - 2).all()
        boxes = read_person_boxes(tiny / ANN / f"ava_{split}_predicted_boxes.csv")
        assert boxes.score.between(0, 1).all() and len(boxes) > 0
        read_exclusions(tiny / ANN / f"ava_{split}_excluded_timestamps_v2.2.csv")
        frame_list = read_frame_list(tiny / "frame_lists" / f"{split}.csv")
        assert frame_list.original_video_id.unique().tolist() == videos
        assert (frame_list.groupby("original_video_id").size() == n_frames).all()
        first = frame_list.iloc[0]
        assert first.path == f"{first.original_video_id}/{first.original_video_id}_000001.jpg"
        assert first.frame_index == 0
    for video in meta["videos"]:
        vid = video["video_id"]
        jpgs = sorted((tiny / "frames" / vid).glob("*.jpg"))
        assert len(jpgs) == n_frames
        assert jpgs[0].name == f"{vid}_000001.jpg" and jpgs[-1].name == f"{vid}_{n_frames:06d}.jpg"
        image = cv2.imread(str(jpgs[0]))
        assert image.shape == (spec.height, spec.width, 3)
        with av.open(str(tiny / "videos" / f"{vid}.mp4")) as container:
            stream = container.streams.video[0]
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            assert float(stream.average_rate) == spec.fps
        assert len(decoded) == n_frames
        # The video and the JPEGs show the same picture (both lossy: compare coarsely).
        jpeg_rgb = cv2.imread(str(jpgs[60]))[..., ::-1].astype(np.float32)
        assert np.abs(decoded[60].astype(np.float32) - jpeg_rgb).mean() < 12


def test_config_loads_and_points_at_the_dataset(tiny: Path) -> None:
    cfg = load_config(tiny / "config.yaml")
    assert Path(cfg.data.root) == tiny
    assert cfg.data.segment_start == 900 and cfg.data.fps == 30
    assert cfg.model.num_classes == len(cfg.data.classes) == len(syn.load_meta(tiny)["evaluated_class_ids"])
    assert cfg.data.test_short_side == min(syn.PRESETS["tiny"].width, syn.PRESETS["tiny"].height)
    for rel in (cfg.data.labelmap, cfg.data.train_annotations, cfg.data.val_annotations,
                cfg.data.train_exclusions, cfg.data.val_exclusions, cfg.data.train_boxes,
                cfg.data.val_boxes, cfg.data.frames_dir, cfg.data.videos_dir):
        assert (tiny / rel).exists(), rel
    slow = load_config(tiny / "config_slow.yaml")
    assert slow.model.arch == "slow"
    # The Slow-only baseline sees frames tau apart, like SlowFast's Slow pathway.
    assert slow.data.sampling_rate == syn.load_meta(tiny)["aliasing"]["tau_frames"]


def test_same_seed_gives_identical_files_other_seed_differs(tmp_path: Path) -> None:
    kwargs = dict(preset="tiny", write_videos=False, write_frames=False)
    a = syn.make_synthetic(tmp_path / "a", seed=5, **kwargs)
    b = syn.make_synthetic(tmp_path / "b", seed=5, **kwargs)
    c = syn.make_synthetic(tmp_path / "c", seed=6, **kwargs)
    names = sorted(p.name for p in (a / ANN).iterdir())
    assert len(names) == 8
    for name in names:
        assert (a / ANN / name).read_bytes() == (b / ANN / name).read_bytes(), name
    assert (a / ANN / "ava_train_v2.2.csv").read_bytes() != (c / ANN / "ava_train_v2.2.csv").read_bytes()


def test_video_only_dataset_reads_videos(tmp_path: Path) -> None:
    out = syn.make_synthetic(tmp_path / "v", preset="tiny", write_frames=False)
    assert load_config(out / "config.yaml").data.source == "video"
    assert not (out / "frames").exists() and not (out / "frame_lists").exists()
    assert len(list((out / "videos").glob("*.mp4"))) == 3


def test_frames_are_deterministic(tmp_path: Path) -> None:
    kw = dict(preset="tiny", seed=1, write_videos=False, num_train_videos=1, num_val_videos=1, duration=5)
    a = syn.make_synthetic(tmp_path / "a", **kw)
    b = syn.make_synthetic(tmp_path / "b", **kw)
    files = sorted((a / "frames").rglob("*.jpg"))
    assert len(files) == 2 * 150
    for f in files[::37]:
        assert f.read_bytes() == (b / f.relative_to(a)).read_bytes()


def test_predicted_boxes_are_noisy_but_true_ones_score_high(tmp_path: Path) -> None:
    root = syn.make_synthetic(tmp_path / "d", preset="cpu", seed=2, write_videos=False,
                              write_frames=False)
    gt = read_annotations(root / ANN / "ava_val_v2.2.csv")
    gt_boxes = gt.drop_duplicates([*KEY_COLUMNS, "person_id"])
    det = read_person_boxes(root / ANN / "ava_val_predicted_boxes.csv")
    raw = np.loadtxt(root / ANN / "ava_val_predicted_boxes.csv", delimiter=",", usecols=6)
    assert (raw == -1).all()
    matched = np.zeros(len(det), bool)
    recalled = 0
    for (vid, t), g in gt_boxes.groupby(KEY_COLUMNS):
        sel = ((det.video_id == vid) & (det.timestamp == t)).to_numpy()
        if not sel.any():
            continue
        iou = pairwise_iou(g[BOX_COLUMNS].to_numpy(), det.loc[sel, BOX_COLUMNS].to_numpy())
        matched[np.flatnonzero(sel)] |= iou.max(0) >= 0.5
        recalled += int((iou.max(1) >= 0.5).sum())
    assert 0.85 < recalled / len(gt_boxes) < 1.0  # misses exist, most people are found
    assert (~matched).sum() > 0  # false positives exist
    assert np.median(det.score[matched]) > 0.9 > np.median(det.score[~matched])
    # Jitter: detections are near, not on, the true boxes.
    assert not det[BOX_COLUMNS].round(3).isin(gt_boxes[["x1", "y1"]]).all(axis=None)


def test_meta_lists_the_class_groups(tiny: Path) -> None:
    meta = json.loads((tiny / "synthetic_meta.json").read_text())
    names = {c["id"]: c["name"] for c in meta["classes"]}
    assert {names[i] for i in meta["fast_motion_class_ids"]} == {"fast_wave", "arm_still", "fast_bounce"}
    assert {names[i] for i in meta["slow_motion_class_ids"]} == {"slow_wave", "slow_sway"}
    assert set(meta["motion_class_ids"]).isdisjoint(meta["appearance_class_ids"])


def test_reuse_refuse_and_overwrite(tmp_path: Path) -> None:
    kw = dict(preset="tiny", write_videos=False, write_frames=False)
    out = syn.make_synthetic(tmp_path / "x", seed=0, **kw)
    stamp = (out / ANN / "ava_train_v2.2.csv").stat().st_mtime_ns
    assert syn.make_synthetic(out, seed=0, **kw) == out  # same dataset: reused as is
    assert (out / ANN / "ava_train_v2.2.csv").stat().st_mtime_ns == stamp
    with pytest.raises(AvadetError, match="not empty"):
        syn.make_synthetic(out, seed=1, **kw)
    syn.make_synthetic(out, seed=1, overwrite=True, **kw)
    assert syn.load_meta(out)["seed"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


@pytest.mark.parametrize("preset", sorted(syn.PRESETS))
def test_shipped_configs_match_the_generator(preset: str) -> None:
    """configs/synthetic/<preset>.yaml is what make-synthetic writes, apart from data.root."""
    shipped = yaml.safe_load((REPO / "configs" / "synthetic" / f"{preset}.yaml").read_text())
    generated = syn.config_dict(syn.resolve_spec(preset), "/x")
    shipped["data"].pop("root")
    generated["data"].pop("root")
    assert shipped == generated
    load_config(REPO / "configs" / "synthetic" / f"{preset}.yaml")


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = scores[positive], scores[~positive]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def test_written_frames_show_fast_motion_only_at_the_fast_stride(tmp_path: Path) -> None:
    """On the JPEGs as written (noise, panning background, JPEG coding), the share of
    strongly changing pixels inside a person's box between consecutive *fast* frames separates
    fast_wave from arm_still; between consecutive *slow* frames it does not."""
    kw = dict(preset="cpu", num_train_videos=8, num_val_videos=0, duration=12, write_videos=False)
    root = syn.make_synthetic(tmp_path / "m", seed=0, **kw)
    spec = syn.resolve_spec(**kw)
    plans = {p.video_id: p for p in syn.plan_dataset(spec, 0)}
    fast_off, slow_off = syn.slow_frame_offsets(spec.num_frames, spec.sampling_rate, spec.alpha)
    boxes, labels = merge_box_labels(read_annotations(root / ANN / "ava_train_v2.2.csv"), [1, 2, 3, 4, 5])
    scale = np.array([spec.width, spec.height] * 2)

    def changing(video_id: str, t: int, box: np.ndarray, offsets: np.ndarray) -> float:
        c = (t - 900) * spec.fps
        x1, y1, x2, y2 = np.round(box * scale).astype(int)
        frames = [cv2.imread(str(root / "frames" / video_id / f"{video_id}_{c + o + 1:06d}.jpg"))
                  [y1:y2, x1:x2].astype(np.float32) for o in offsets]
        return float(np.mean([(np.abs(a - b).max(-1) > 40).mean() for a, b in zip(frames, frames[1:])]))

    fast, slow, is_wave = [], [], []
    for i, row in boxes.iterrows():
        # fast_wave vs arm_still only, without body motion (it moves the whole box).
        if not labels[i, :2].any() or labels[i, 3:].any():
            continue
        plan = plans[row.video_id]
        actor = next(a for a in plan.actors if a.person_id == row.person_id)
        c = (row.timestamp - 900) * spec.fps
        if len(set(syn.actor_tracks(actor, plan.hidden, spec).episode[c + fast_off])) != 1:
            continue  # the clip's first frame belongs to the previous episode
        box = row[BOX_COLUMNS].to_numpy(float)
        fast.append(changing(row.video_id, row.timestamp, box, fast_off))
        slow.append(changing(row.video_id, row.timestamp, box, slow_off))
        is_wave.append(bool(labels[i, 0]))
    is_wave = np.array(is_wave)
    assert 5 <= is_wave.sum() <= len(is_wave) - 5
    assert _auc(np.array(fast), is_wave) > 0.9
    assert 0.25 < _auc(np.array(slow), is_wave) < 0.75


CUSTOM_IDS = (("fast_wave", 3), ("arm_still", 4), ("slow_wave", 5), ("hold_red", 6), ("wear_hat", 7))


def test_custom_label_map_fps_and_segment(tmp_path: Path) -> None:
    root = syn.make_synthetic(tmp_path / "custom", preset="tiny", seed=0, fps=25,
                              segment_start=0, label_ids=CUSTOM_IDS)
    plain = syn.make_synthetic(tmp_path / "plain", preset="tiny", seed=0, fps=25,
                               segment_start=0, write_frames=False, write_videos=False)
    full = read_labelmap(root / ANN / "ava_action_list_v2.2.pbtxt")
    assert full.names == {3: "fast_wave", 4: "arm_still", 5: "slow_wave", 6: "hold_red",
                          7: "wear_hat"}
    assert read_labelmap(root / ANN / "ava_action_list_v2.2_for_activitynet_2019.pbtxt").ids == full.ids
    cfg = load_config(root / "config.yaml")
    assert (cfg.data.fps, cfg.data.segment_start, cfg.data.segment_end) == (25.0, 0.0, 8.0)
    assert cfg.data.classes == [3, 4, 5, 6, 7] and cfg.model.num_classes == 5
    vid = syn.load_meta(root)["videos"][0]["video_id"]
    assert len(list((root / "frames" / vid).glob("*.jpg"))) == 8 * 25
    with av.open(str(root / "videos" / f"{vid}.mp4")) as container:
        assert container.streams.video[0].average_rate == 25
    for split in ("train", "val"):
        gt = read_annotations(root / ANN / f"ava_{split}_v2.2.csv", labelmap=full)
        assert set(gt["action_id"]) <= {3, 4, 5, 6, 7}
        assert gt["timestamp"].min() >= 2 and gt["timestamp"].max() <= 6
        # Every person of the default numbering keeps a row (each has an arm class).
        persons = gt.drop_duplicates([*KEY_COLUMNS, "person_id"])
        default = read_annotations(plain / ANN / f"ava_{split}_v2.2.csv")
        assert len(persons) == len(default.drop_duplicates([*KEY_COLUMNS, "person_id"]))
    with pytest.raises(ConfigError, match="arm class"):
        syn.resolve_spec("tiny", label_ids=(("hold_red", 1),))
    with pytest.raises(ConfigError, match="unknown classes"):
        syn.resolve_spec("tiny", label_ids=(("dance", 1),) + CUSTOM_IDS[:3])
