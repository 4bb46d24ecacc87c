"""JPEG folders and video files return the same frames for the same request."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from fixtures.dataset_media import extract_frames, frame_number, index_frame, write_video

from avadet.data import ClipReadError, FrameFolderSource, VideoSource, sample_clip_indices
from avadet.data.sources import frame_to_rgb

NUM_FRAMES = 75


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """Two videos (B-frames, key frame every 12 frames; and an mkv, which stores no frame
    count) and their JPEGs."""
    root = tmp_path_factory.mktemp("media")
    write_video(root / "videos" / "vid_a.mp4", NUM_FRAMES, gop=12, bframes=2)
    write_video(root / "videos" / "-vid_b.mkv", 40, gop=25, bframes=0)
    assert extract_frames(root / "videos" / "vid_a.mp4", root / "frames", "vid_a") == NUM_FRAMES
    assert extract_frames(root / "videos" / "-vid_b.mkv", root / "frames", "-vid_b") == 40
    return root


def numbers(clip: np.ndarray) -> list[int]:
    return [frame_number(f) for f in clip]


def test_both_sources_count_the_frames(media):
    assert FrameFolderSource(media / "frames").num_frames("vid_a") == NUM_FRAMES
    assert VideoSource(media / "videos").num_frames("vid_a") == NUM_FRAMES
    assert VideoSource(media / "videos").num_frames("-vid_b") == 40


def test_mkv_without_frame_count_is_indexed_from_packets(media):
    with av.open(str(media / "videos" / "-vid_b.mkv")) as container:
        assert container.streams.video[0].frames == 0  # the container does not say
    source = VideoSource(media / "videos")
    np.testing.assert_array_equal(numbers(source.read("-vid_b", [0, 24, 25, 39])), [0, 24, 25, 39])


@pytest.mark.parametrize(
    "indices",
    [
        [0, 1, 2, 3],  # the first frames
        [11, 12, 13],  # across a key frame (GOP 12)
        [23, 24, 25],
        [70, 72, 74, 74, 74],  # the last frame, repeated (clamped clip)
        [74],
        [40, 5, 60, 5],  # unordered, repeats
        [0, 74],
    ],
)
def test_sources_return_the_requested_frames(media, indices):
    jpeg = FrameFolderSource(media / "frames").read("vid_a", indices)
    video = VideoSource(media / "videos").read("vid_a", indices)
    assert jpeg.shape == video.shape == (len(indices), 32, 96, 3)
    assert jpeg.dtype == video.dtype == np.uint8
    assert numbers(jpeg) == indices
    assert numbers(video) == indices
    # RGB: the red tint of every frame is in channel 0.
    assert video[..., 0].min() >= 40 and jpeg[..., 0].min() >= 40
    assert np.abs(jpeg.astype(int) - video.astype(int)).mean() < 3  # JPEG loss only


def test_clips_around_every_centre_match(media):
    """Every centre of the video, clamped clips at both ends, one reused container."""
    jpeg, video = FrameFolderSource(media / "frames"), VideoSource(media / "videos")
    for center in range(0, NUM_FRAMES, 3):
        idx = sample_clip_indices(center, num_frames=8, sampling_rate=2, total_frames=NUM_FRAMES)
        expected = idx.tolist()
        assert numbers(video.read("vid_a", idx)) == expected
        assert numbers(jpeg.read("vid_a", idx)) == expected
    assert len(video._open) == 1


def test_container_limit_and_reopen(media):
    source = VideoSource(media / "videos", max_open=1)
    assert numbers(source.read("vid_a", [3])) == [3]
    assert numbers(source.read("-vid_b", [30])) == [30]
    assert list(source._open) == ["-vid_b"]
    source.close()
    assert numbers(source.read("vid_a", [50, 51])) == [50, 51]


def test_threaded_decoding_gives_the_same_frames(media):
    source = VideoSource(media / "videos", threads=0)
    assert numbers(source.read("vid_a", [13, 30, 31, 62])) == [13, 30, 31, 62]


def test_missing_frame_names_the_file(media, tmp_path):
    frames = tmp_path / "frames"
    shutil.copytree(media / "frames" / "vid_a", frames / "vid_a")
    missing = frames / "vid_a" / "vid_a_000011.jpg"
    missing.unlink()
    source = FrameFolderSource(frames)
    assert source.num_frames("vid_a") == NUM_FRAMES  # the gap is not hidden by the count
    with pytest.raises(ClipReadError) as info:
        source.read("vid_a", [8, 9, 10, 11])
    assert info.value.path == str(missing) and "missing frame" in str(info.value)
    assert numbers(source.read("vid_a", [11, 12])) == [11, 12]


def test_corrupt_jpeg_names_the_file(media, tmp_path):
    frames = tmp_path / "frames"
    shutil.copytree(media / "frames" / "vid_a", frames / "vid_a")
    bad = frames / "vid_a" / "vid_a_000003.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ClipReadError, match="vid_a_000003.jpg: cannot decode"):
        FrameFolderSource(frames).read("vid_a", [2])


def test_missing_video_folder(media):
    with pytest.raises(ClipReadError, match="nope"):
        FrameFolderSource(media / "frames").num_frames("nope")
    with pytest.raises(ClipReadError, match=r"nope\.\{mp4"):
        VideoSource(media / "videos").num_frames("nope")


def test_undecodable_video_names_the_file(tmp_path, media):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "garbage.mp4").write_bytes(os.urandom(4096))
    data = (media / "videos" / "vid_a.mp4").read_bytes()
    (videos / "cut.mp4").write_bytes(data[: len(data) // 2])  # moov atom lost
    source = VideoSource(videos)
    for vid in ("garbage", "cut"):
        with pytest.raises(ClipReadError) as info:
            source.read(vid, [0])
        assert info.value.path == str(videos / f"{vid}.mp4")


def test_out_of_range_request_is_an_error(media):
    with pytest.raises(ClipReadError, match="outside the video's 75 frames"):
        VideoSource(media / "videos").read("vid_a", [74, 75])
    with pytest.raises(ClipReadError, match="missing frame"):
        FrameFolderSource(media / "frames").read("vid_a", [75])


def test_custom_template(media, tmp_path):
    folder = tmp_path / "img" / "vid_a"
    folder.mkdir(parents=True)
    for k in (1, 2, 3):
        shutil.copy(media / "frames" / "vid_a" / f"vid_a_{k:06d}.jpg", folder / f"img_{k:05d}.jpg")
    source = FrameFolderSource(tmp_path / "img", "img_{index:05d}.jpg")
    assert source.num_frames("vid_a") == 3
    assert numbers(source.read("vid_a", [2, 0])) == [2, 0]


_FORK_CHECK = """
import os, sys
from avadet.data.sources import VideoSource
source = VideoSource(sys.argv[1])
source.read("vid_a", [1])
parent_container = source._open["vid_a"]
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:  # child: must not reuse the parent's container (shared file offset)
    os.close(read_end)
    clip = source.read("vid_a", [40, 41])
    ok = source._open["vid_a"] is not parent_container and len(clip) == 2
    os.write(write_end, b"1" if ok else b"0")
    os._exit(0)
os.close(write_end)
os.waitpid(pid, 0)
print(os.read(read_end, 1).decode(), len(source.read("vid_a", [2, 3])))
"""


def test_forked_worker_opens_its_own_container(media):
    # Forked in a fresh single-threaded interpreter: forking a pytest-xdist worker (which runs
    # execnet threads) can deadlock the child in CPython's after-fork hooks.
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    out = subprocess.run([sys.executable, "-c", _FORK_CHECK, str(media / "videos")],
                         capture_output=True, text=True, timeout=120, env=env, check=True)
    assert out.stdout.split() == ["1", "2"]


_FORK_GC_CHECK = """
import gc, os, signal, sys
from avadet.data.sources import VideoSource
source = VideoSource(sys.argv[1], threads=int(sys.argv[2]))
source.read("vid_a", [1, 30])  # the decoder is open (and threaded with threads=0)
pid = os.fork()
if pid == 0:  # a DataLoader worker: reads, drops what it has, collects garbage, exits
    signal.alarm(20)  # a hang ends the child (status 14), never leaves it behind
    source.read("vid_a", [60, 62])
    source.close()
    gc.collect()
    os._exit(0)
_, status = os.waitpid(pid, 0)
print(status, len(source.read("vid_a", [5])))
"""


@pytest.mark.parametrize("threads", [1, 0])
def test_forked_worker_never_frees_the_parents_decoder(media, threads):
    # Freeing a decoder whose threads were started in the parent waits forever in the child.
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    out = subprocess.run(
        [sys.executable, "-c", _FORK_GC_CHECK, str(media / "videos"), str(threads)],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )
    assert out.stdout.split() == ["0", "1"]  # the child exited normally


def test_one_thread_means_no_decoder_threads(media):
    source = VideoSource(media / "videos")
    before = len(os.listdir("/proc/self/task"))
    source.read("vid_a", [3, 50])
    stream = source._open["vid_a"].stream
    assert stream.codec_context.thread_count == 1
    assert len(os.listdir("/proc/self/task")) == before


@pytest.fixture(scope="module")
def pyramid_video(tmp_path_factory) -> Path:
    """B-pyramid (B-frames used as references), GOP 40: the hard case for skipping frames."""
    root = tmp_path_factory.mktemp("pyramid")
    noise = np.random.default_rng(0).integers(0, 40, (32, 96, 3), dtype=np.uint8)

    def frame(k):
        return np.clip(index_frame(k).astype(int) + np.roll(noise, k, axis=1), 0, 255).astype(
            np.uint8
        )

    write_video(root / "p.mp4", 120, gop=40, bframes=3, frame_fn=frame)
    return root


def test_reads_are_bit_exact_against_a_full_decode(pyramid_video):
    """Random and sequential requests (seek, continue, reuse of the last clip, skipped
    non-reference frames) give exactly the frames of a plain decode from the start."""
    with av.open(str(pyramid_video / "p.mp4")) as container:
        reference = np.stack([frame_to_rgb(f) for f in container.decode(video=0)])
    assert len(reference) == 120
    source = VideoSource(pyramid_video)
    rng = np.random.default_rng(1)
    requests = [
        sample_clip_indices(c, num_frames=8, sampling_rate=2, total_frames=120)
        for c in range(0, 120, 7)
    ]
    requests += [np.sort(rng.integers(0, 120, 5)) for _ in range(25)]
    requests += [np.array([c]) for c in rng.integers(0, 120, 10)]
    # Clamped clips at both ends, clips across a GOP boundary (key frames at 0, 40, 80) and
    # backward seeks right after them.
    requests += [np.array([0, 0, 0, 1, 3]), np.array([114, 117, 119, 119, 119]),
                 np.arange(36, 46, 2), np.arange(76, 84), np.arange(30, 42, 3),
                 np.array([79, 80]), np.array([39, 40, 41]), np.array([119])]
    for indices in requests:
        np.testing.assert_array_equal(
            source.read("p", indices), reference[indices], err_msg=str(indices)
        )


def test_fast_rgb_conversion_is_close_to_swscale(pyramid_video):
    with av.open(str(pyramid_video / "p.mp4")) as container:
        frame = next(container.decode(video=0))
        fast = frame_to_rgb(frame)
        slow = frame.to_ndarray(format="rgb24")
    assert fast.shape == slow.shape and np.abs(fast.astype(int) - slow).mean() < 2


def test_truncated_jpeg_is_refused_before_decoding(media, tmp_path):
    from avadet.data.sources import jpeg_truncated

    frames = tmp_path / "frames"
    shutil.copytree(media / "frames" / "vid_a", frames / "vid_a")
    path = frames / "vid_a" / "vid_a_000004.jpg"
    whole = path.read_bytes()
    assert jpeg_truncated(whole[:2], whole[-64:]) is False
    assert jpeg_truncated(whole[:2], (whole + b"\x00\x00\n")[-64:]) is False  # padded: complete
    for cut in (whole[:-2], whole[: len(whole) * 3 // 4], whole[:100]):
        path.write_bytes(cut)
        with pytest.raises(ClipReadError, match="vid_a_000004.jpg: truncated JPEG"):
            FrameFolderSource(frames).read("vid_a", [3])
    assert jpeg_truncated(b"\x89P", b"IEND") is False  # not a JPEG: not judged here
    path.write_bytes(b"")
    with pytest.raises(ClipReadError, match="vid_a_000004.jpg: cannot decode"):
        FrameFolderSource(frames).read("vid_a", [3])
