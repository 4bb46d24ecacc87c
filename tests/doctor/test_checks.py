"""The data doctor on a synthetic dataset: clean passes; each planted defect is named (check,
file, count) with a fix, and makes the command exit 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from avadet import synthetic as syn
from avadet.cli import main as cli_main
from avadet.config import load_config
from avadet.doctor import DoctorReport, expected_frame_counts, run_checks
from avadet.engine import dataset_files
from avadet.prep.media import open_video_writer

ANN = "annotations"
TRAIN = "ava_train_v2.2.csv"
VAL = "ava_val_v2.2.csv"
VAL_BOXES = "ava_val_predicted_boxes.csv"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return syn.make_synthetic(tmp_path_factory.mktemp("doctor") / "clean", preset="tiny", seed=0)


@pytest.fixture
def copy(clean: Path, tmp_path: Path) -> Path:
    """A private copy of the clean dataset to plant a defect in."""
    root = tmp_path / "data"
    shutil.copytree(clean, root)
    return root


def check(root: Path, *overrides: str, **kwargs) -> DoctorReport:
    cfg = load_config(root / "config.yaml", [f"data.root={root}", *overrides])
    return run_checks(cfg, dataset_files(cfg.data), progress=False, workers=2, **kwargs)


def only(report: DoctorReport, name: str):
    found = report.by_check(name)
    assert len(found) == 1, (name, [(f.check, f.message) for f in report.findings])
    finding = found[0]
    assert finding.fix, name
    return finding


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, rows: list[str]) -> None:
    path.write_text("".join(f"{r}\n" for r in rows))


def video_ids(root: Path, split: str) -> list[str]:
    return [v["video_id"] for v in syn.load_meta(root)["videos"] if v["split"] == split]


def frame_files(root: Path, vid: str) -> list[Path]:
    return sorted((root / "frames" / vid).glob("*.jpg"))


# ---------------------------------------------------------------------------------------------


def test_clean_dataset_passes_without_warnings(clean: Path) -> None:
    for source in ("frames", "video"):
        report = check(clean, f"data.source={source}")
        assert report.ok, [(f.check, f.message) for f in report.findings]
        assert report.warnings == 0, [(f.check, f.message) for f in report.findings
                                      if f.severity == "warning"]
        assert report.stats["media_videos"] == 3
        assert report.stats["media_frames"] == 3 * 8 * 30
        assert report.stats["val_box_recall"] > 0.9
    assert cli_main(["check-data", "--config", str(clean / "config.yaml"), "--quiet"]) == 0


def test_full_scan_decodes_every_frame(clean: Path) -> None:
    assert check(clean).stats["media_decoded"] == 3 * 8
    full = check(clean, full_scan=True)
    assert full.ok and full.stats["media_decoded"] == 3 * 8 * 30
    video = check(clean, "data.source=video", full_scan=True)
    assert video.ok and video.stats["media_decoded"] == 3 * 8 * 30


def test_expected_frame_counts_follow_the_config() -> None:
    assert expected_frame_counts(30.0, 900.0, 1800.0) == (27000, 27030)
    assert expected_frame_counts(25.0, 0.0, 8.0) == (200, 225)


# -- media -------------------------------------------------------------------------------------


def test_missing_frame_folder(copy: Path) -> None:
    vid = video_ids(copy, "train")[0]
    shutil.rmtree(copy / "frames" / vid)
    report = check(copy)
    f = only(report, "media.missing")
    assert not report.ok and f.severity == "error" and f.count == 1
    assert vid in f.examples[0] and "train: 1" in f.message


def test_annotated_video_without_any_media(copy: Path) -> None:
    rows = lines(copy / ANN / VAL)
    write_lines(copy / ANN / VAL, rows + ["NoSuchVideo,0903,0.1,0.1,0.5,0.5,1,0"] * 2)
    f = only(check(copy), "media.missing")
    assert f.count == 1 and "NoSuchVideo" in f.examples[0] and "(2 rows)" in f.examples[0]


def test_frames_extracted_at_25_fps_are_named(copy: Path) -> None:
    vid = video_ids(copy, "train")[1]
    files = frame_files(copy, vid)
    # 8 s at 25 fps instead of 30, resampled by time as an extraction at 25 fps is: file k
    # shows the 30 fps frame at k / 25 s. (Deleting frames instead would be a folder cut
    # short, which the video tells apart: see the next test.)
    resampled = [files[round(k * 30 / 25)].read_bytes() for k in range(200)]
    for path, data in zip(files, resampled):
        path.write_bytes(data)
    for path in files[200:]:
        path.unlink()
    f = only(check(copy), "media.wrong_fps_count")
    assert f.severity == "error" and f.count == 1
    assert "200 frames = 25 fps" in f.examples[0] and "--fps 30" in f.fix


def test_a_folder_cut_short_is_not_called_another_frame_rate(copy: Path) -> None:
    vid = video_ids(copy, "train")[1]
    for path in frame_files(copy, vid)[192:]:  # 192 frames = 24 (or 23.976) fps x 8 s
        path.unlink()
    report = check(copy)
    assert not report.by_check("media.wrong_fps_count")
    f = only(report, "media.truncated")
    assert f.severity == "error" and f.count == 1 and vid in f.examples[0]
    assert "192 frames, its video 240: the last 48 are missing" in f.examples[0]
    # Without the video the count alone cannot tell: the frame-rate reading stays.
    shutil.rmtree(copy / "videos")
    assert only(check(copy), "media.wrong_fps_count").count == 1


def test_frames_ending_before_the_last_keyframe(copy: Path) -> None:
    vid = video_ids(copy, "train")[0]
    for path in frame_files(copy, vid)[150:]:
        path.unlink()
    f = only(check(copy), "media.too_short")
    assert f.count == 1 and vid in f.examples[0] and "150 frames" in f.examples[0]


def test_gap_in_a_frame_folder(copy: Path) -> None:
    vid = video_ids(copy, "val")[0]
    for path in frame_files(copy, vid)[99:102]:
        path.unlink()
    f = only(check(copy), "media.frame_gaps")
    assert f.count == 3 and "[100, 101, 102]" in f.examples[0]


def test_empty_and_truncated_jpegs(copy: Path) -> None:
    vid = video_ids(copy, "train")[0]
    files = frame_files(copy, vid)
    files[10].write_bytes(b"")
    first = files[0].read_bytes()
    files[0].write_bytes(first[: len(first) // 2])  # frame 1 is always sampled
    middle = files[55].read_bytes()
    files[55].write_bytes(middle[: len(middle) // 2])  # not among the 8 sampled frames
    report = check(copy)
    assert only(report, "media.empty_frames").count == 1
    f = only(report, "media.corrupt")
    # The default check reads every frame file's end marker: the unsampled one is found too.
    assert f.count == 2 and files[0].name in f.examples[0] and "truncated" in f.examples[0]
    assert any(files[55].name in e and "truncated" in e for e in f.examples)
    assert "end markers read" in f.message
    assert report.stats["media_markers_checked"] == 3 * 8 * 30 - 1  # all but the empty file
    full = only(check(copy, full_scan=True), "media.corrupt")
    assert full.count == 2 and any(files[55].name in e for e in full.examples)


def test_frame_size_change_inside_a_video(copy: Path) -> None:
    vid = video_ids(copy, "val")[0]
    last = frame_files(copy, vid)[-1]
    cv2.imwrite(str(last), np.zeros((24, 32, 3), np.uint8))
    f = only(check(copy), "media.size_changes")
    assert f.count == 1 and "32x24" in f.examples[0] and "64x48" in f.examples[0]


def test_frames_named_another_way_or_from_zero(copy: Path) -> None:
    vid = video_ids(copy, "train")[0]
    for path in frame_files(copy, vid):
        number = int(path.stem.rsplit("_", 1)[1])
        path.rename(path.with_name(f"img_{number:05d}.jpg"))
    f = only(check(copy), "media.unreadable")
    assert f.count == 1 and "data.frame_template" in f.examples[0]
    assert "'img_{index:05d}.jpg'" in f.examples[0]
    vid = video_ids(copy, "train")[1]
    for path in frame_files(copy, vid):  # ascending: each name is free when it is taken
        number = int(path.stem.rsplit("_", 1)[1])
        path.rename(path.with_name(f"{vid}_{number - 1:06d}.jpg"))
    z = only(check(copy), "media.zero_based")
    assert z.count == 1 and vid in z.examples[0]


def _rewrite_video(path: Path, fps: int, frames: int) -> None:
    with open_video_writer(path, width=64, height=48, fps=fps) as writer:
        writer.write(np.full((frames, 48, 64, 3), 128, np.uint8))


def test_video_at_the_wrong_frame_rate(copy: Path) -> None:
    vid = video_ids(copy, "train")[0]
    _rewrite_video(copy / "videos" / f"{vid}.mp4", fps=25, frames=200)
    report = check(copy, "data.source=video")
    f = only(report, "media.video_fps")
    assert f.count == 1 and "25.000 fps" in f.examples[0]
    assert only(report, "media.wrong_fps_count").count == 1


def test_unreadable_video(copy: Path) -> None:
    vid = video_ids(copy, "val")[0]
    (copy / "videos" / f"{vid}.mp4").write_bytes(b"not a video at all" * 10)
    f = only(check(copy, "data.source=video"), "media.unreadable")
    assert f.count == 1 and vid in f.examples[0]


# -- annotations ---------------------------------------------------------------------------------


def test_boxes_in_pixels_and_inverted(copy: Path) -> None:
    rows = lines(copy / ANN / TRAIN)
    fields = rows[3].split(",")
    pixel = ",".join(fields[:2] + ["8", "10", "30", "40"] + fields[6:])
    inverted = ",".join(fields[:2] + [fields[4], fields[3], fields[2], fields[5]] + fields[6:])
    rows[3], rows[7], rows[9] = pixel, inverted, inverted
    write_lines(copy / ANN / TRAIN, rows)
    report = check(copy)
    f = only(report, "annotations.box_range")
    assert f.count == 1 and f.path.endswith(TRAIN) and "pixel" in f.fix
    assert f.examples[0].startswith(f"{copy / ANN / TRAIN}:4:")
    g = only(report, "annotations.box_inverted")
    assert g.count == 2 and ":8:" in g.examples[0] and ":10:" in g.examples[1]
    assert cli_main(["check-data", "--config", str(copy / "config.yaml"), f"data.root={copy}",
                     "--quiet"]) == 1


def test_malformed_rows_and_header_are_all_counted(copy: Path) -> None:
    rows = lines(copy / ANN / VAL)
    rows[2] = "only,three,fields"
    rows[4] = rows[4].replace(",", ",x", 1)  # non-numeric timestamp
    write_lines(copy / ANN / VAL, ["video_id,timestamp,x1,y1,x2,y2,action_id,person_id"] + rows)
    report = check(copy)
    assert only(report, "annotations.header").count == 1
    f = only(report, "annotations.malformed")
    assert f.count == 2 and "7 or 8" in f.message and "timestamp is not a number" in f.message
    assert f.examples[0].startswith(f"{copy / ANN / VAL}:4:")


def test_action_ids_missing_from_the_label_map(copy: Path) -> None:
    rows = lines(copy / ANN / TRAIN)
    rows[0] = ",".join(rows[0].split(",")[:6] + ["42", rows[0].split(",")[7]])
    write_lines(copy / ANN / TRAIN, rows)
    f = only(check(copy), "annotations.unknown_action")
    assert f.severity == "warning" and "42" in f.message and ":1:" in f.examples[0]


def test_label_map_numbering_the_classes_differently(copy: Path) -> None:
    names = syn.synthetic_labelmap(evaluated_only=True).names
    (copy / ANN / "shifted.pbtxt").write_text("".join(
        f'item {{\n  name: "{n}"\n  id: {i + 100}\n}}\n' for i, n in names.items()))
    report = check(copy, "data.labelmap=annotations/shifted.pbtxt", "data.classes=[]")
    f = [x for x in report.by_check("annotations.unknown_action") if x.path.endswith(TRAIN)][0]
    assert f.severity == "error" and "number the classes differently" in f.fix


def test_timestamps_relative_to_the_video_start(copy: Path) -> None:
    rows = []
    for row in lines(copy / ANN / VAL):
        fields = row.split(",")
        fields[1] = f"{int(fields[1]) - 900:04d}"
        rows.append(",".join(fields))
    write_lines(copy / ANN / VAL, rows)
    f = only(check(copy), "annotations.outside_segment")
    assert f.count == len(rows) and f.path.endswith(VAL) and "segment_start: 0" in f.fix


def test_person_whose_box_jumps(copy: Path) -> None:
    rows = [r.split(",") for r in lines(copy / ANN / TRAIN)]
    # A person at one side of the picture on two consecutive keyframes...
    seen = {(r[0], int(r[1]), r[7]): r for r in rows}
    key = next((v, t + 1, p) for (v, t, p), r in seen.items()
               if (v, t + 1, p) in seen and (float(r[2]) + float(r[4])) / 2 < 0.35)
    # ...teleports to the other side on the second one.
    for r in rows:
        if (r[0], int(r[1]), r[7]) == key:
            r[2:6] = ["0.8", "0.1", "0.98", "0.6"]
    write_lines(copy / ANN / TRAIN, [",".join(r) for r in rows])
    f = only(check(copy), "annotations.person_jump")
    assert f.severity == "warning" and 1 <= f.count <= 2
    assert any(f",{key[1]:04d},0.8,0.1" in e for e in f.examples)


def test_duplicate_rows(copy: Path) -> None:
    rows = lines(copy / ANN / VAL)
    write_lines(copy / ANN / VAL, rows + rows[:3])
    f = only(check(copy), "annotations.duplicates")
    assert f.count == 3


def test_exclusions_of_annotated_keyframes_and_of_the_other_split(copy: Path) -> None:
    first = lines(copy / ANN / VAL)[0].split(",")
    other = (copy / ANN / "ava_train_excluded_timestamps_v2.2.csv").read_text()
    (copy / ANN / "ava_val_excluded_timestamps_v2.2.csv").write_text(
        f"{first[0]},{first[1]}\n" + other)
    report = check(copy)
    f = only(report, "exclusions.annotated")
    n = sum(r.startswith(f"{first[0]},{first[1]},") for r in lines(copy / ANN / VAL))
    assert f.count == n and f.examples == [f"{first[0]},{first[1]}"]
    assert only(report, "exclusions.unknown_videos").count == 1


# -- classes and config ------------------------------------------------------------------------


def test_evaluated_class_without_training_examples(copy: Path) -> None:
    val_classes = {int(r.split(",")[6]) for r in lines(copy / ANN / VAL)}
    victim = sorted(val_classes & {1, 2, 3, 4, 5, 6, 7, 9})[0]
    write_lines(copy / ANN / TRAIN,
                [r for r in lines(copy / ANN / TRAIN) if int(r.split(",")[6]) != victim])
    f = only(check(copy), "classes.no_training_examples")
    assert f.count == 1 and f.examples[0].startswith(f"{victim} ")


def test_model_class_count_mismatch(copy: Path) -> None:
    f = only(check(copy, "model.num_classes=80"), "config.num_classes")
    assert "num_classes: 8" in f.fix


def test_trained_class_not_in_the_label_map(copy: Path) -> None:
    f = only(check(copy, "data.classes=[1,2,99]", "model.num_classes=2"), "labelmap.classes")
    assert "99" in f.message


# -- person boxes ------------------------------------------------------------------------------


def test_person_boxes_of_other_video_ids(copy: Path) -> None:
    # A detector run that lower-cased the ids: no box lands on a gt keyframe (mAP 0).
    write_lines(copy / ANN / VAL_BOXES, [r.lower() for r in lines(copy / ANN / VAL_BOXES)])
    report = check(copy)
    f = only(report, "boxes.recall")
    assert f.severity == "error" and f.path.endswith(VAL_BOXES)
    assert report.stats["val_box_recall"] == 0.0 and "video ids" in f.fix
    coverage = only(report, "boxes.coverage")
    assert coverage.severity == "error" and coverage.count == report.stats["val_keyframes"]
    ids = only(report, "boxes.video_ids")
    assert ids.severity == "error" and "verbatim" in ids.fix


def test_gt_file_given_as_person_boxes(copy: Path) -> None:
    f = only(check(copy, f"data.val_boxes=annotations/{TRAIN}"), "boxes.scores_are_ids")
    assert f.severity == "error"


def test_missing_person_box_file_and_high_threshold(copy: Path) -> None:
    (copy / ANN / VAL_BOXES).unlink()
    assert only(check(copy), "boxes.missing").severity == "error"


def test_threshold_above_every_score(copy: Path) -> None:
    report = check(copy, "data.test_detection_score=1.5")
    assert only(report, "boxes.below_threshold").severity == "error"


# -- command line --------------------------------------------------------------------------------


def test_cli_json_and_exit_codes(copy: Path, tmp_path: Path, capsys) -> None:
    (copy / ANN / TRAIN).unlink()
    out = tmp_path / "report.json"
    code = cli_main(["check-data", "--config", str(copy / "config.yaml"), f"data.root={copy}",
                     "--json", str(out)])
    assert code == 1
    payload = json.loads(out.read_text())
    assert payload["ok"] is False and payload["errors"] >= 1
    missing = [f for f in payload["findings"] if f["check"] == "annotations.missing"]
    assert missing and missing[0]["severity"] == "error" and missing[0]["path"].endswith(TRAIN)
    assert set(missing[0]) == {"severity", "check", "path", "count", "message", "fix", "examples"}
    text = capsys.readouterr().out
    assert "FAILED" in text and "annotations.missing" in text
    # A config error is a usage error: exit 2 with one line.
    assert cli_main(["check-data", "--config", str(copy / "config.yaml"), "data.nope=1"]) == 2
    assert "unknown key 'data.nope'" in capsys.readouterr().err


def test_the_ok_line_says_what_the_default_check_read(clean: Path) -> None:
    from avadet.doctor.report import format_report

    last = format_report(check(clean)).splitlines()[-1]
    assert last.startswith("OK: no errors") and "JPEG start and end markers read" in last
    assert "--full-scan decodes all" in last
    video = format_report(check(clean, "data.source=video")).splitlines()[-1]
    assert "the other frames not decoded" in video
