"""The scene plan, as the written files show it: AVA-like video ids, one arm label per
person and stable person ids, excluded and empty keyframes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avadet import synthetic as syn
from avadet.boxes import KEY_COLUMNS
from avadet.io import merge_box_labels, read_annotations, read_exclusions

ANN = "annotations"


def test_video_ids_look_like_ava(tiny: Path) -> None:
    ids = [v["video_id"] for v in syn.load_meta(tiny)["videos"]]
    assert all(len(i) == 11 for i in ids) and len(set(ids)) == len(ids)
    assert ids[0].startswith("-")  # AVA has ids like -5KQ66BBWC4: tools must not choke


def test_labels_per_person(tiny: Path) -> None:
    gt = read_annotations(tiny / ANN / "ava_train_v2.2.csv")
    ids = [c.id for c in syn.CLASSES]
    boxes, labels = merge_box_labels(gt, ids)
    group = np.array([c.group for c in syn.CLASSES])
    # Exactly one arm class, at most one body class and one held object per person.
    assert (labels[:, group == "arm"].sum(1) == 1).all()
    assert (labels[:, group == "body"].sum(1) <= 1).all()
    assert (labels[:, group == "object"].sum(1) <= 1).all()
    # Several people per keyframe with person ids stable across the video's keyframes.
    per_key = boxes.groupby(KEY_COLUMNS).person_id.apply(sorted)
    assert per_key.map(len).max() >= 2
    for _, ids_at in per_key.groupby(level=0):
        assert len({tuple(x) for x in ids_at}) == 1


def test_excluded_and_empty_keyframes_have_no_gt(tiny: Path) -> None:
    meta = syn.load_meta(tiny)
    excluded = {(v["video_id"], t) for v in meta["videos"] for t in v["excluded_keyframes"]}
    empty = {(v["video_id"], t) for v in meta["videos"] for t in v["empty_keyframes"]}
    assert excluded and empty and not excluded & empty
    listed = set()
    for split in ("train", "val"):
        ex = read_exclusions(tiny / ANN / f"ava_{split}_excluded_timestamps_v2.2.csv")
        listed |= set(zip(ex.video_id, ex.timestamp))
    assert listed == excluded
    gt_keys = set()
    for split in ("train", "val"):
        gt = read_annotations(tiny / ANN / f"ava_{split}_v2.2.csv")
        gt_keys |= set(zip(gt.video_id, gt.timestamp))
    assert not gt_keys & (excluded | empty)
    # Nobody is drawn around an empty keyframe (the frames of its second), while the other
    # keyframes show people.
    spec = syn.resolve_spec("tiny")
    for plan in syn.plan_dataset(spec, seed=0):
        for actor in plan.actors:
            visible = syn.actor_tracks(actor, plan.hidden, spec).visible
            for t in syn.keyframe_timestamps(spec):
                k = int(syn.keyframe_index(t, spec))
                assert visible[k] == ((plan.video_id, int(t)) not in empty)
