"""Cutting a segment and extracting frames at a fixed rate, on small coded videos."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from fixtures.prep_videos import decode_index, make_video

from avadet.errors import AvadetError, FormatError
from avadet.prep.cut import cut_video, cut_videos
from avadet.prep.extract import DONE_MARKER, extract_frames, extract_video_frames, is_done
from avadet.prep.media import iter_resampled_frames, probe_video


def _indices(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [decode_index(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def _jpeg_indices(folder: Path, video_id: str) -> list[int]:
    files = sorted(folder.glob(f"{video_id}_*.jpg"))
    return [decode_index(cv2.imread(str(f))[..., ::-1]) for f in files]


def test_coded_video_roundtrip(tmp_path: Path) -> None:
    video = make_video(tmp_path / "a.mp4", 40, 30)
    assert _indices(video) == list(range(40))
    assert probe_video(video).fps == 30


@pytest.mark.parametrize("fps", [30, 25])
def test_cut_segment_keeps_rate_and_starts_at_start(tmp_path: Path, fps: int) -> None:
    src = make_video(tmp_path / "movie.mp4", 6 * fps, fps)
    out = tmp_path / "cut" / "movie.mp4"
    count = cut_video(src, out, start=2, duration=3, clip_lead_frames=None)
    assert count == 3 * fps
    assert probe_video(out).fps == fps
    # Frame 0 of the cut is the source frame at 2 s: the AVA cut's frame k shows start + k/fps.
    assert _indices(out) == list(range(2 * fps, 5 * fps))
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp file
    # A key frame every second (gop_seconds=1), so random clip reads seek at most 1 s back.
    with av.open(str(out)) as container:
        keys = [i for i, p in enumerate(container.demux(video=0)) if p.size and p.is_keyframe]
    assert keys and max(np.diff([0, *keys, count])) <= fps


def _key_frames(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(round(p.pts * stream.time_base * stream.average_rate)
                      for p in container.demux(stream) if p.size and p.is_keyframe)


@pytest.mark.parametrize("fps", [30, 25])
def test_key_frames_where_training_clips_start(tmp_path: Path, fps: int) -> None:
    from avadet.data.sampling import keyframe_to_frame_index, sample_clip_indices
    from avadet.prep.cut import clip_start_key_frames

    src = make_video(tmp_path / "movie.mp4", 7 * fps, fps)
    out = tmp_path / "cut.mp4"
    count = cut_video(src, out, start=1, duration=6)  # default: 32 frames before each second
    keys = _key_frames(out)
    # (x264 may add key frames at scene cuts: this video changes wholesale every frame.)
    assert clip_start_key_frames(fps, 6, 32) == [n * fps - 32 for n in range(2, 7)]
    assert {0, *clip_start_key_frames(fps, 6, 32)} <= set(keys)
    # Each whole second's 32x2 clip starts on a key frame: no frame before it is decoded.
    for t in range(2, 6):
        centre = keyframe_to_frame_index(t, fps=fps, segment_start=0)
        first = int(sample_clip_indices(centre, num_frames=32, sampling_rate=2,
                                        total_frames=count)[0])
        assert first in keys, (t, first)
    assert max(np.diff([*keys, count])) <= fps + 1
    assert _indices(out) == list(range(fps, 7 * fps))  # the frames themselves are unchanged


def test_cuts_use_cavlc_unless_asked_for_cabac(tmp_path: Path) -> None:
    # x264 writes its settings into the stream (an SEI message): "cabac=0" is CAVLC.
    src = make_video(tmp_path / "movie.mp4", 60, 30)
    cut_video(src, tmp_path / "fast.mp4", start=0, duration=2)
    cut_video(src, tmp_path / "small.mp4", start=0, duration=2, fast_decode=False)
    assert b"cabac=0" in (tmp_path / "fast.mp4").read_bytes()
    assert b"cabac=1" in (tmp_path / "small.mp4").read_bytes()
    assert _indices(tmp_path / "fast.mp4") == list(range(60))


def test_cut_videos_skips_done_and_reports_bad(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_video(src / "m1.mp4", 90, 30)
    make_video(src / "m2.mkv.mp4", 90, 30)
    (src / "broken.mkv").write_bytes(b"not a video at all")
    dst = tmp_path / "dst"
    with pytest.raises(AvadetError, match="broken.mkv"):
        cut_videos(src, dst, start=1, duration=1, progress=False)
    assert sorted(p.name for p in dst.iterdir()) == ["m1.mp4", "m2.mkv.mp4"]
    stamp = (dst / "m1.mp4").stat().st_mtime_ns
    (src / "broken.mkv").unlink()
    assert cut_videos(src, dst, start=1, duration=1, progress=False) == {"m1": -1, "m2.mkv": -1}
    assert (dst / "m1.mp4").stat().st_mtime_ns == stamp


def test_short_source_gives_short_cut_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = make_video(tmp_path / "short.mp4", 60, 30)
    with caplog.at_level(logging.WARNING):
        assert cut_video(src, tmp_path / "o.mp4", start=1, duration=5) == 30
    assert "expected 150" in caplog.text


@pytest.mark.parametrize("src_fps", [30, 25, 60])
def test_resampling_by_timestamps(tmp_path: Path, src_fps: int) -> None:
    """Output frame k at time k/30 is the source frame showing that time."""
    src = make_video(tmp_path / "v.mp4", 2 * src_fps, src_fps)
    got = [decode_index(f.to_ndarray(format="rgb24")) for _, f in iter_resampled_frames(src, fps=30)]
    expected = [(k * src_fps) // 30 for k in range(60)]
    assert got == expected


def test_extract_frames_counts_names_and_content(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "vidA.mp4", 75, 25)  # 3 s at 25 fps -> 90 frames at 30 fps
    make_video(videos / "-vidB.mp4", 90, 30)
    frames = tmp_path / "frames"
    counts = extract_frames(videos, frames, expected_frames=90, progress=False)
    assert counts == {"vidA": 90, "-vidB": 90}
    names = sorted(p.name for p in (frames / "-vidB").glob("*.jpg"))
    assert names[0] == "-vidB_000001.jpg" and names[-1] == "-vidB_000090.jpg" and len(names) == 90
    assert _jpeg_indices(frames / "-vidB", "-vidB") == list(range(90))
    assert _jpeg_indices(frames / "vidA", "vidA") == [(k * 25) // 30 for k in range(90)]
    assert is_done(frames / "vidA") == 90


def test_extract_resumes_partial_folders(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    video = make_video(tmp_path / "v" / "clip.mp4", 60, 30)
    root = tmp_path / "frames"
    assert extract_video_frames(video, root) == 60
    folder = root / "clip"
    # Complete: skipped, nothing rewritten.
    stamp = (folder / "clip_000001.jpg").stat().st_mtime_ns
    assert extract_video_frames(video, root) == 60
    assert (folder / "clip_000001.jpg").stat().st_mtime_ns == stamp
    # Interrupted run: no marker, frames missing, a stale frame past the end: redone cleanly.
    (folder / DONE_MARKER).unlink()
    for k in range(30, 61):
        (folder / f"clip_{k:06d}.jpg").unlink()
    (folder / "clip_000099.jpg").write_bytes(b"stale")
    with caplog.at_level(logging.WARNING):
        counts = extract_frames(tmp_path / "v", root, expected_frames=27030, progress=False)
    assert counts == {"clip": 60}
    assert "expected 27030" in caplog.text
    assert len(list(folder.glob("*.jpg"))) == 60 and not (folder / "clip_000099.jpg").exists()
    assert is_done(folder) == 60
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_extract_parallel_and_bad_video(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    for name in ("a", "b"):
        make_video(videos / f"{name}.mp4", 30, 30)
    (videos / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(AvadetError, match="bad"):
        extract_frames(videos, tmp_path / "frames", workers=2, expected_frames=30, progress=False)
    assert is_done(tmp_path / "frames" / "a") == 30 and is_done(tmp_path / "frames" / "b") == 30
    assert is_done(tmp_path / "frames" / "bad") is None


def test_unreadable_video_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"garbage")
    with pytest.raises(FormatError, match="x.mp4"):
        list(iter_resampled_frames(bad, fps=30))
    with pytest.raises(FormatError, match="not found"):
        probe_video(tmp_path / "missing.mp4")


def test_command_lines(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from avadet.cli import main

    make_video(tmp_path / "raw" / "movie.mp4", 120, 30)
    assert main(["cut-videos", str(tmp_path / "raw"), str(tmp_path / "cut"), "--start", "1", "--duration", "2",
                     "--no-progress"]) == 0
    assert "cut 1 videos" in capsys.readouterr().out
    # 60 frames where 27,030 are expected: reported, exit status 1.
    assert main(["extract-frames", str(tmp_path / "cut"), str(tmp_path / "frames"), "--workers", "1",
                         "--no-progress"]) == 1
    assert "1 with an unexpected frame count" in capsys.readouterr().out
    assert main(["extract-frames", str(tmp_path / "cut"), str(tmp_path / "frames"), "--workers", "1",
                         "--expected-frames", "60", "--no-progress"]) == 0
    assert main(["cut-videos", str(tmp_path / "nowhere"), str(tmp_path / "x"), "--no-progress"]) == 2
