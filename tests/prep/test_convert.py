"""convert-annotations: a user's per-frame CSV (pixels, frame numbers) or a CVAT video export
becomes AVA CSVs and a label map that avadet reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avadet import synthetic as syn
from avadet.cli import main as cli_main
from avadet.errors import AvadetError, FormatError
from avadet.io import read_annotations, read_labelmap
from avadet.prep.convert import convert_annotations, read_box_csv, read_cvat_video_xml

IDS = (("fast_wave", 3), ("arm_still", 4), ("slow_wave", 5), ("hold_red", 6), ("wear_hat", 7))
W, H, FPS = 64, 48, 25


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return syn.make_synthetic(tmp_path_factory.mktemp("conv") / "d", preset="tiny", fps=FPS,
                              segment_start=0, label_ids=IDS, write_frames=False)


def user_csv(dataset: Path, path: Path) -> pd.DataFrame:
    """The gt of both splits as a user would have it: pixel boxes, frame numbers, class names,
    a split column, plus boxes on frames between keyframes (tracks)."""
    names = read_labelmap(dataset / "annotations" / "ava_action_list_v2.2.pbtxt").names
    parts = []
    for split in ("train", "val"):
        gt = read_annotations(dataset / "annotations" / f"ava_{split}_v2.2.csv")
        parts.append(pd.DataFrame({
            "video_id": gt["video_id"], "frame": gt["timestamp"] * FPS,
            "x1": gt["x1"] * W, "y1": gt["y1"] * H, "x2": gt["x2"] * W, "y2": gt["y2"] * H,
            "label": gt["action_id"].map(names), "person_id": gt["person_id"], "split": split,
        }))
    rows = pd.concat(parts, ignore_index=True)
    between = rows.head(7).assign(frame=rows.head(7)["frame"] + 3)
    pd.concat([rows, between]).to_csv(path, index=False)
    return rows


def test_csv_round_trip_with_the_label_map(dataset: Path, tmp_path: Path) -> None:
    user_csv(dataset, tmp_path / "boxes.csv")
    labelmap = tmp_path / "labels.pbtxt"
    labelmap.write_text((dataset / "annotations" / "ava_action_list_v2.2.pbtxt").read_text())
    result = convert_annotations(read_box_csv(tmp_path / "boxes.csv"), source=tmp_path / "boxes.csv",
                                 out=tmp_path / "ann" / "{split}.csv", labelmap_path=labelmap,
                                 videos_dir=dataset / "videos")
    assert result.skipped_between_keyframes == 7
    for split in ("train", "val"):
        mine = read_annotations(tmp_path / "ann" / f"{split}.csv")
        ref = read_annotations(dataset / "annotations" / f"ava_{split}_v2.2.csv")
        key = ["video_id", "timestamp", "person_id", "action_id"]
        mine, ref = (d.sort_values(key).reset_index(drop=True) for d in (mine, ref))
        pd.testing.assert_frame_equal(mine[key], ref[key])
        np.testing.assert_allclose(mine[["x1", "y1", "x2", "y2"]], ref[["x1", "y1", "x2", "y2"]],
                                   atol=1e-4)


def test_cli_writes_a_new_label_map_from_the_names(dataset: Path, tmp_path: Path, capsys) -> None:
    user_csv(dataset, tmp_path / "boxes.csv")
    code = cli_main(["convert-annotations", str(tmp_path / "boxes.csv"), "--out",
                     str(tmp_path / "{split}.csv"), "--labelmap", str(tmp_path / "new.pbtxt"),
                     "--videos", str(dataset / "videos"), "--first-id", "3"])
    assert code == 0
    labelmap = read_labelmap(tmp_path / "new.pbtxt")
    assert labelmap.names == {3: "arm_still", 4: "fast_wave", 5: "hold_red", 6: "slow_wave",
                              7: "wear_hat"}  # names in sorted order
    gt = read_annotations(tmp_path / "train.csv", labelmap=labelmap)
    assert set(gt["action_id"]) <= {3, 4, 5, 6, 7}
    assert "left out 7 boxes" in capsys.readouterr().out


def test_unknown_label_and_bad_header_are_named(dataset: Path, tmp_path: Path) -> None:
    rows = user_csv(dataset, tmp_path / "boxes.csv")
    labelmap = tmp_path / "labels.pbtxt"
    labelmap.write_text('item {\n  name: "fast_wave"\n  id: 3\n}\n')
    with pytest.raises(FormatError, match="labels not in the label map"):
        convert_annotations(rows, source="boxes.csv", out=tmp_path / "{split}.csv",
                            labelmap_path=labelmap, videos_dir=dataset / "videos")
    (tmp_path / "bad.csv").write_text("video,frame,x,y,w,h,label\n")
    with pytest.raises(FormatError, match="header must name"):
        read_box_csv(tmp_path / "bad.csv")
    with pytest.raises(AvadetError, match="videos folder"):
        convert_annotations(rows, source="boxes.csv", out=tmp_path / "{split}.csv",
                            labelmap_path=tmp_path / "x.pbtxt")


CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><name>clip</name><size>60</size>
    <original_size><width>200</width><height>100</height></original_size>
  </task><source>my_clip.mp4</source></meta>
  <track id="0" label="person" source="manual">
    <box frame="0" outside="0" occluded="0" keyframe="1" xtl="20" ytl="10" xbr="60" ybr="90" z_order="0">
      <attribute name="wave">true</attribute><attribute name="sit">false</attribute>
    </box>
    <box frame="10" outside="0" occluded="0" keyframe="0" xtl="22" ytl="10" xbr="62" ybr="90" z_order="0">
      <attribute name="wave">true</attribute><attribute name="sit">false</attribute>
    </box>
    <box frame="25" outside="0" occluded="0" keyframe="1" xtl="30" ytl="10" xbr="70" ybr="90" z_order="0">
      <attribute name="wave">true</attribute><attribute name="sit">true</attribute>
    </box>
    <box frame="50" outside="1" occluded="0" keyframe="1" xtl="30" ytl="10" xbr="70" ybr="90" z_order="0"/>
  </track>
  <track id="1" label="run" source="manual">
    <box frame="50" outside="0" occluded="0" keyframe="1" xtl="100" ytl="0" xbr="200" ybr="100" z_order="0"/>
  </track>
</annotations>
"""


def test_cvat_video_export(tmp_path: Path) -> None:
    (tmp_path / "task.xml").write_text(CVAT)
    rows, size = read_cvat_video_xml(tmp_path / "task.xml")
    assert size == (200, 100) and set(rows["video_id"]) == {"my_clip"}
    assert sorted(rows["label"]) == ["run", "sit", "wave", "wave", "wave"]
    # Frame numbers need the frame rate: the exported time column is frame / 25 here.
    rows = rows.assign(time=rows["frame"] / 25.0).drop(columns="frame")
    result = convert_annotations(rows, source=tmp_path / "task.xml", out=tmp_path / "gt.csv",
                                 labelmap_path=tmp_path / "labels.pbtxt", frame_size=size,
                                 segment_start=0)
    gt = read_annotations(tmp_path / "gt.csv", labelmap=read_labelmap(tmp_path / "labels.pbtxt"))
    names = read_labelmap(tmp_path / "labels.pbtxt").names
    got = sorted((int(t), names[a], p, x1) for t, a, p, x1 in
                 gt[["timestamp", "action_id", "person_id", "x1"]].itertuples(index=False))
    assert got == [(0, "wave", 0, 0.1), (1, "sit", 0, 0.15), (1, "wave", 0, 0.15),
                   (2, "run", 1, 0.5)]
    assert result.skipped_between_keyframes == 1  # frame 10 shows t = 0.4 s
