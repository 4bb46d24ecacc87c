"""Training loader throughput: clips/s from JPEG folders vs straight from the video files.

Generates (or reuses) a small synthetic AVA-layout set: ``--videos`` cut videos of
``--seconds`` s at ``--width x --height``, 30 fps, H.264 with the encoder settings a user's cut
of AVA has (``ffmpeg -ss 900 -t 901 -i in.mkv out.mp4`` re-encodes with libx264's defaults:
CRF 23, key frame at most every 250 frames, B-frames), its JPEGs extracted at quality 95
(``ffmpeg -q:v 1``-like), and annotations with one to three people on every keyframe.
Then times ``build_dataset(cfg, "train")`` (32x2 sampling, alpha 4, short-side jitter
256-320, crop 224, flip, colour jitter) through a shuffled DataLoader with each source and
``num_workers`` in ``--workers``, plus the clip reading alone (no transforms), and prints a
Markdown table with the video/JPEG ratio.

Contenders (``--sources``): ``frames`` (JPEG folders), ``video`` (avadet's PyAV source, one
decoder thread), ``video-libav-threads`` (the same with PyAV's default threading: libav's
cores + 1 slice threads, what ``VideoSource(threads=1)`` got before it set one thread), and
where installed ``decord`` and ``torchcodec`` (one thread, exact seeking) behind the same
``read``/``num_frames`` interface. Every loader measurement also reports the CPU and wall
milliseconds spent per item inside ``__getitem__`` (in the workers), so a slowdown can be told
apart as more work per clip (CPU) or waiting for a core (wall - CPU), plus the load average
at the start and end of the run.

Usage: ``python tools/benchmark.py data [--clips 64] [--workers 0 2] [--gop 250] [--keep DIR]
[--sources frames video ...] [--width 456 --height 256]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LABELMAP = "".join(f'item {{\n  name: "action{i}"\n  id: {i}\n}}\n' for i in range(1, 6))


def _scene(rng: np.random.Generator, width: int, height: int, num_frames: int):
    """A frame generator: textured background panning slowly, a few moving blobs (people)."""
    import cv2

    pad = 64
    noise = rng.random((height // 8 + pad, width // 8 + pad, 3)).astype(np.float32)
    background = cv2.resize(
        noise, (width + 8 * pad, height + 8 * pad), interpolation=cv2.INTER_CUBIC
    )
    background = cv2.GaussianBlur(background, (0, 0), 3) * 180 + 30
    grain = rng.normal(0, 6, (height, width, 3)).astype(np.float32)
    blobs = rng.random((3, 6))

    def frame(k: int) -> np.ndarray:
        dx = int(pad * 4 + 3 * pad * np.sin(k / 200.0))
        dy = int(pad * 4 + 2 * pad * np.cos(k / 300.0))
        img = background[dy : dy + height, dx : dx + width].copy()
        for b in blobs:
            cx = int((b[0] + 0.2 * np.sin(k / (20 + 40 * b[2]))) * width) % width
            cy = int((b[1] + 0.1 * np.cos(k / (15 + 30 * b[3]))) * height) % height
            color = tuple(float(c) for c in 255 * b[3:6])
            cv2.ellipse(img, (cx, cy), (width // 12, height // 4), 0, 0, 360, color, -1)
        img += grain if k % 2 else -grain  # sensor noise that changes every frame
        return np.clip(img, 0, 255).astype(np.uint8)

    return frame


def make_media(
    root: Path,
    *,
    videos: int,
    seconds: int,
    width: int,
    height: int,
    gop: int,
    preset: str = "medium",
    fps: int = 30,
    clip_lead: Optional[int] = None,
    x264_params: Optional[str] = None,
) -> None:
    """Write the synthetic set under ``root`` (videos/, frames/, annotations/). ``clip_lead``:
    key frames where the 32x2 training clips start, as ``avadet cut-videos`` places them
    (``avadet.prep.cut.clip_start_key_frames``); None: where x264 puts them."""
    import av
    import cv2
    import pandas as pd
    from av.video.frame import PictureType

    from avadet.prep.cut import clip_start_key_frames

    rng = np.random.default_rng(0)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "labelmap.pbtxt").write_text(LABELMAP)
    rows = []
    for v in range(videos):
        vid = f"bench{v:02d}"
        frame = _scene(rng, width, height, seconds * fps)
        path = root / "videos" / f"{vid}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = root / "frames" / vid
        folder.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = Fraction(1, fps)
            keys = (set(clip_start_key_frames(fps, seconds, clip_lead)) if clip_lead is not None
                    else set())
            # x264 puts its own key frame one frame early when the forced ones are gop apart.
            stream.options = {"crf": "23", "g": str(gop + (1 if keys else 0)), "preset": preset}
            if x264_params:
                stream.options = {**stream.options, "x264-params": x264_params}
            # One slice per frame, as the ffmpeg command line and avadet's cutter write: PyAV's
            # default (slice threading) makes x264 split frames into slices, which a decoder
            # with slice threads then decodes on two cores, unlike any real cut of AVA.
            stream.thread_type = "AUTO"
            for k in range(seconds * fps):
                image = frame(k)
                out = av.VideoFrame.from_ndarray(image, format="rgb24")
                out.pts = k
                if k in keys:
                    out.pict_type = PictureType.I
                for packet in stream.encode(out):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        # JPEGs from the encoded video, as extraction from the cut would give.
        with av.open(str(path)) as container:
            for k, decoded in enumerate(container.decode(video=0), start=1):
                bgr = decoded.to_ndarray(format="bgr24")
                cv2.imwrite(str(folder / f"{vid}_{k:06d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        for t in range(902, 900 + seconds - 1):
            for p in range(int(rng.integers(1, 4))):
                x1, y1 = rng.uniform(0, 0.6), rng.uniform(0, 0.4)
                rows.append((vid, t, x1, y1, x1 + 0.3, y1 + 0.55, int(rng.integers(1, 6)), p))
    df = pd.DataFrame(rows)
    df.to_csv(root / "annotations" / "train.csv", header=False, index=False, float_format="%.3f")


def _config(root: Path, source: str, seconds: int):
    from avadet.config import load_config

    return load_config(
        None,
        [
            f"data.root={root}",
            f"data.source={source}",
            "data.labelmap=annotations/labelmap.pbtxt",
            "data.train_annotations=annotations/train.csv",
            "data.train_exclusions=",
            # The val split reads the same keyframes in order, on the gt boxes.
            "data.val_annotations=annotations/train.csv",
            "data.val_exclusions=",
            "data.val_boxes=",
            f"data.segment_end={900 + seconds}",
            "data.num_frames=32",
            "data.sampling_rate=2",
            "model.alpha=4",
        ],
    )


class _PerProcess:
    """Readers opened in the process that uses them (DataLoader workers fork), at most 4."""

    def __init__(self, videos_dir: Path):
        self.videos_dir = Path(videos_dir)
        self._pid = None
        self._open: dict = {}
        self._count: dict[str, int] = {}

    def _reader(self, video_id: str):
        import os

        if self._pid != os.getpid():
            self._pid, self._open = os.getpid(), {}
        if video_id not in self._open:
            if len(self._open) >= 4:
                self._open.pop(next(iter(self._open)))
            self._open[video_id] = self._make(self.videos_dir / f"{video_id}.mp4")
        return self._open[video_id]

    def __getstate__(self):
        return dict(self.__dict__, _pid=None, _open={})


class DecordSource(_PerProcess):
    """decord's VideoReader (one thread; its get_batch seeks to the key frame before and
    decodes forward), RGB by its own libswscale conversion."""

    def _make(self, path):
        import decord

        return decord.VideoReader(str(path), num_threads=1)

    def num_frames(self, video_id: str) -> int:
        return len(self._reader(video_id))

    def read(self, video_id, indices):
        unique, inverse = np.unique(np.asarray(indices), return_inverse=True)
        return self._reader(video_id).get_batch(unique.tolist()).asnumpy()[inverse]


class TorchcodecSource(_PerProcess):
    """torchcodec's VideoDecoder (exact seek mode, one FFmpeg thread, NHWC RGB)."""

    def _make(self, path):
        from torchcodec.decoders import VideoDecoder

        return VideoDecoder(
            str(path), seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC"
        )

    def num_frames(self, video_id: str) -> int:
        return int(self._reader(video_id).metadata.num_frames)

    def read(self, video_id, indices):
        unique, inverse = np.unique(np.asarray(indices), return_inverse=True)
        return self._reader(video_id).get_frames_at(unique.tolist()).data.numpy()[inverse]


def _libav_threads_source(videos_dir: Path):
    """avadet's VideoSource with PyAV's default decoder threading (thread_count 0: libav
    starts cores + 1 slice threads), as ``threads=1`` behaved before it set one thread."""
    from avadet.data import VideoSource

    class LibavThreads(VideoSource):
        def _video(self, video_id):
            video = super()._video(video_id)
            ctx = video.stream.codec_context
            if not ctx.is_open:
                video.stream.thread_type, video.stream.thread_count = "SLICE", 0
            return video

    return LibavThreads(videos_dir)


def _contenders(names: list[str], root: Path, datasets: dict) -> None:
    """Add a dataset per extra source: the video dataset with its source replaced."""
    import copy

    makers = {
        "video-libav-threads": _libav_threads_source,
        "decord": DecordSource,
        "torchcodec": TorchcodecSource,
    }
    for name in names:
        if name in datasets:
            continue
        ds = copy.copy(datasets["video"])
        ds.source = makers[name](root / "videos")
        datasets[name] = ds


class _Timed:
    """The dataset, with CPU and wall seconds per ``__getitem__`` summed in shared memory
    (each worker adds its own; process CPU time counts every thread of the worker)."""

    def __init__(self, dataset):
        import multiprocessing

        self.dataset = dataset
        self.stats = multiprocessing.Array("d", 3)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        cpu, wall = time.process_time(), time.perf_counter()
        item = self.dataset[index]
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        with self.stats.get_lock():
            self.stats[0] += cpu
            self.stats[1] += wall
            self.stats[2] += 1
        return item

    def reset(self):
        with self.stats.get_lock():
            self.stats[0] = self.stats[1] = self.stats[2] = 0.0

    def per_item_ms(self) -> tuple[float, float]:
        n = max(self.stats[2], 1)
        return 1e3 * self.stats[0] / n, 1e3 * self.stats[1] / n


def _one_cv2_thread(_worker_id: int) -> None:
    import cv2

    cv2.setNumThreads(1)


def _time_loader(
    dataset,
    clips: int,
    workers: int,
    batch_size: int,
    seed: int,
    in_order: bool = False,
    cv2_threads_1: bool = False,
) -> tuple[float, float, float]:
    """Clips/s through a DataLoader: random keyframes (training), or consecutive keyframes
    from a random start (``in_order``: evaluation reads the val set in order)."""
    import torch

    from avadet.data import collate

    generator = torch.Generator().manual_seed(seed)
    total = clips + batch_size * max(workers, 1) * 2
    if in_order:
        start = int(torch.randint(0, max(len(dataset) - total, 1), (1,), generator=generator))
        sampler = list(range(start, min(start + total, len(dataset))))
    else:
        sampler = torch.utils.data.RandomSampler(dataset, num_samples=total, generator=generator)
    timed = _Timed(dataset)
    loader = torch.utils.data.DataLoader(
        timed,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        persistent_workers=False,
        worker_init_fn=_one_cv2_thread if cv2_threads_1 else None,
    )
    iterator = iter(loader)
    # Warm-up: worker start, first open of each video (index, container).
    for _ in range(max(workers, 1) * 2):
        next(iterator)
    timed.reset()
    start = time.perf_counter()
    done = 0
    while done < clips:
        done += len(next(iterator))
    elapsed = time.perf_counter() - start
    del iterator
    return (done / elapsed, *timed.per_item_ms())


def _time_reads(datasets: dict, clips: int, seed: int) -> dict[str, float]:
    """Clip reading alone (``source.read`` of the 32 Fast frames, no transforms) in this
    process, the two sources interleaved clip by clip on the same requests, so that load from
    other processes hits both alike. Returns clips/s per source."""
    rng = np.random.default_rng(seed)
    any_ds = next(iter(datasets.values()))
    order = rng.integers(0, len(any_ds), clips + 4)
    spent = dict.fromkeys(datasets, 0.0)
    for n, i in enumerate(order.tolist()):
        names = list(datasets) if n % 2 == 0 else list(datasets)[::-1]
        for name in names:
            ds = datasets[name]
            start = time.perf_counter()
            ds.source.read(ds.video_ids[i], ds.clip_indices(i))
            if n >= 4:  # the first reads open files and index videos
                spent[name] += time.perf_counter() - start
    return {name: clips / t for name, t in spent.items()}


def _media_facts(datasets: dict, seed: int = 0, clips: int = 200) -> dict:
    """What decides the seek cost: the key frame interval of the videos, and the frames a
    random training clip demuxes and decodes from the key frame before its first frame to its
    last (PyAV also skips unneeded non-reference frames in that span)."""
    ds = datasets["video"]
    source = ds.source
    intervals, spans = [], []
    for vid in sorted(set(ds.video_ids)):
        index = source.index(vid)
        key = np.searchsorted(index.pts, index.keyframe_pts)
        intervals.append(np.diff(np.append(key, index.num_frames)))
    rng = np.random.default_rng(seed)
    for i in rng.integers(0, len(ds), clips).tolist():
        index = source.index(ds.video_ids[i])
        clip = ds.clip_indices(i)
        key = np.searchsorted(index.pts, index.keyframe_pts)
        start = key[np.searchsorted(key, clip.min(), side="right") - 1]
        spans.append(clip.max() - start + 1)
    intervals = np.concatenate(intervals)
    return {
        "gop_mean": float(intervals.mean()),
        "gop_max": int(intervals.max()),
        "span_mean": float(np.mean(spans)),
    }


def _parity(datasets: dict, seed: int = 7, clips: int = 6) -> dict[str, int]:
    """max |difference| of each video contender's frames against avadet's ``video`` source on
    the same random training clips (0: bit-identical)."""
    rng = np.random.default_rng(seed)
    ref = datasets["video"]
    out = {}
    for name, ds in datasets.items():
        if name in ("frames", "video"):
            continue
        worst = 0
        for i in rng.integers(0, len(ref), clips).tolist():
            a = ref.source.read(ref.video_ids[i], ref.clip_indices(i)).astype(np.int16)
            b = ds.source.read(ref.video_ids[i], ref.clip_indices(i)).astype(np.int16)
            worst = max(worst, int(np.abs(a - b).max()) if a.shape == b.shape else 10**6)
        out[name] = worst
    return out


def compare_media(folders: list[Path], *, clips: int, rounds: int) -> int:
    """Clip reads alone (``VideoSource.read``, one process, one decoder thread) of the same
    random 32x2 training clips of ``bench00`` from the videos of each media folder, and from
    the JPEGs of the first; rounds interleave the contenders. Prints ms per clip read per
    round and the videos' size. For encoder settings (``--x264-params``, ``--clip-lead``)
    compared one variable at a time on media generated from the same scenes."""
    import cv2

    from avadet.data.sources import FrameFolderSource, VideoSource

    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    centres = [30 * int(s) for s in rng.integers(3, 38, clips)]
    sources = {f.name: VideoSource(f / "videos", threads=1) for f in folders}
    sources[f"{folders[0].name} JPEGs"] = FrameFolderSource(folders[0] / "frames")
    times: dict[str, list[float]] = {name: [] for name in sources}
    for _ in range(rounds):
        for name, source in sources.items():
            source.read("bench00", np.arange(0, 64, 2))  # open, index
            start = time.perf_counter()
            for c in centres:
                source.read("bench00", np.arange(c - 32, c + 32, 2))
            times[name].append((time.perf_counter() - start) / len(centres) * 1e3)
    print(f"{clips} random 32x2 clip reads of bench00 per round, {rounds} rounds interleaved; "
          f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}\n")
    print("| media | ms per clip read (each round) | best | MiB of video |")
    print("| --- | --- | ---: | ---: |")
    for name, got in times.items():
        folder = folders[0] if name.endswith(" JPEGs") else next(f for f in folders if f.name == name)
        sub = "frames" if name.endswith(" JPEGs") else "videos"
        size = sum(p.stat().st_size for p in (folder / sub).rglob("*") if p.is_file()) / 2**20
        print(f"| {name} | {', '.join(f'{t:.1f}' for t in got)} | {min(got):.1f} | {size:.1f} |")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py data", description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--width", type=int, default=456, help="AVA at short side 256: 456x256")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--gop", type=int, default=250, help="maximum key frame interval")
    parser.add_argument("--clip-lead", type=int, default=None,
                        help="key frames this many frames before each whole second, where the "
                             "32x2 training clips start (avadet cut-videos' default: 32)")
    parser.add_argument("--x264-params", default=None,
                        help="extra x264 settings of the generated videos (e.g. avadet "
                             "cut-videos' bframes=1:b-adapt=0:b-pyramid=none)")
    parser.add_argument("--clips", type=int, default=64, help="clips timed per measurement")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument(
        "--sources",
        nargs="+",
        default=["frames", "video", "video-libav-threads"],
        choices=["frames", "video", "video-libav-threads", "decord", "torchcodec"],
        help="contenders of the read and training-loader rows (frames and video always run)",
    )
    parser.add_argument(
        "--cv2-variant",
        action="store_true",
        help="also time the last --workers setting with cv2.setNumThreads(1) in each worker",
    )
    parser.add_argument("--no-val", action="store_true", help="skip the in-order val rows")
    parser.add_argument(
        "--preset", default="medium", help="libx264 preset (ffmpeg's default: medium)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds; best kept")
    parser.add_argument("--keep", type=Path, default=None, help="generate into / reuse this folder")
    parser.add_argument(
        "--generate-only", action="store_true", help="write the media (--keep) and stop"
    )
    parser.add_argument("--compare-media", type=Path, nargs="+", default=None,
                        help="only time clip reads from these generated media folders (and the "
                             "first one's JPEGs); see compare_media")
    args = parser.parse_args(argv)
    if args.compare_media:
        return compare_media(args.compare_media, clips=80, rounds=args.repeats)

    import torch

    from avadet.engine import build_dataset

    torch.set_num_threads(1)
    load_start = Path("/proc/loadavg").read_text().split()[:3]
    root = args.keep or Path(tempfile.mkdtemp(prefix="avadet_bench_data_"))
    try:
        if not (root / "annotations" / "train.csv").is_file():
            t0 = time.perf_counter()
            make_media(
                root,
                videos=args.videos,
                seconds=args.seconds,
                width=args.width,
                height=args.height,
                gop=args.gop,
                preset=args.preset,
                clip_lead=args.clip_lead,
                x264_params=args.x264_params,
            )
            print(f"generated {root} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            (root / "media.json").write_text(json.dumps(vars(args), default=str))
        if args.generate_only:
            return 0
        # The table describes the media actually measured (a reused --keep folder's own).
        media = json.loads((root / "media.json").read_text())
        jpeg_bytes = sum(p.stat().st_size for p in (root / "frames").rglob("*.jpg"))
        video_bytes = sum(p.stat().st_size for p in (root / "videos").glob("*.mp4"))
        names = ["frames", "video"] + [n for n in args.sources if n not in ("frames", "video")]
        datasets = {
            s: build_dataset(_config(root, s, media["seconds"]), "train")
            for s in ("frames", "video")
        }
        _contenders(names, root, datasets)
        val_sets = {
            s: build_dataset(_config(root, s, media["seconds"]), "val") for s in ("frames", "video")
        }
        facts = _media_facts(datasets)
        parity = _parity(datasets)
        settings = [f"loader, num_workers={w}" for w in args.workers]
        if args.cv2_variant:
            settings.append(f"loader, num_workers={args.workers[-1]}, cv2 1 thread")
        if not args.no_val:
            settings += [f"val in order, num_workers={w}" for w in args.workers]
        results: dict[tuple[str, str], float] = {}
        cost: dict[tuple[str, str], tuple[float, float]] = {}
        for r in range(args.repeats):
            for source, rate in _time_reads(datasets, args.clips, seed=r).items():
                results[("read", source)] = max(results.get(("read", source), 0.0), rate)
                print(f"round {r} {'read':34s} {source:20s} {rate:7.2f} clips/s", file=sys.stderr)
            for setting in settings:
                workers = int(setting.split("=")[1].split(",")[0])
                in_order = setting.startswith("val")
                contenders = ["frames", "video"] if in_order or "cv2" in setting else names
                # Rotate the order every round so that no contender always goes first.
                shift = r % len(contenders)
                for source in contenders[shift:] + contenders[:shift]:
                    if source == "decord" and workers > 0:
                        continue  # hangs or aborts in a forked worker once the parent decoded with it
                    ds = (val_sets if in_order else datasets)[source]
                    rate, cpu_ms, wall_ms = _time_loader(
                        ds, args.clips, workers, args.batch_size, r, in_order, "cv2" in setting
                    )
                    key = (setting, source)
                    if rate > results.get(key, 0.0):
                        results[key], cost[key] = rate, (cpu_ms, wall_ms)
                    print(
                        f"round {r} {setting:34s} {source:20s} {rate:7.2f} clips/s "
                        f"cpu {cpu_ms:6.1f} ms wall {wall_ms:6.1f} ms per item",
                        file=sys.stderr,
                    )
        load_end = Path("/proc/loadavg").read_text().split()[:3]
        print(
            f"\n{media['videos']} videos x {media['seconds']} s, {media['width']}x{media['height']}, "
            f"30 fps, H.264 (libx264 {media['preset']}) CRF 23 GOP <= {media['gop']}"
            + (f", key frames {media['clip_lead']} frames before each second (where clips "
               "start)" if media.get("clip_lead") is not None else "") + " "
            f"(key frames every {facts['gop_mean']:.0f} frames on average, at most "
            f"{facts['gop_max']}; a random training clip decodes from a key frame "
            f"{facts['span_mean']:.0f} frames before its end on average) "
            f"({video_bytes / 2**20:.1f} MiB) vs JPEG q95 ({jpeg_bytes / 2**20:.1f} MiB); "
            f"32x2 clips, {args.clips} clips per measurement, best of {args.repeats}; "
            f"load average {' '.join(load_start)} at the start, {' '.join(load_end)} at the end"
        )
        if parity:
            print(
                "max |frame difference| against avadet's video source: "
                + ", ".join(f"{k} {v}" for k, v in parity.items())
            )
        print()
        extra = [n for n in names if n not in ("frames", "video")]
        print(
            "| measurement | JPEG clips/s | video clips/s | video / JPEG | "
            + "".join(f"{n} / JPEG | " for n in extra)
        )
        print("| --- | ---: | ---: | ---: | " + "---: | " * len(extra))
        labels = {"read": "clip read only, random keyframes (1 process, interleaved)"}
        for setting in settings:
            kind = (
                "training loader (random keyframes)"
                if setting.startswith("loader")
                else ("val loader (keyframes in order)")
            )
            labels[setting] = f"{kind}, {setting.split(', ', 1)[1]}"
        for setting, label in labels.items():
            jpeg, video = results[(setting, "frames")], results[(setting, "video")]
            cells = [f"{results[(setting, n)] / jpeg:.2f}" if (setting, n) in results else ""
                     for n in extra]
            print(f"| {label} | {jpeg:.2f} | {video:.2f} | {video / jpeg:.2f} | "
                  + "".join(f"{c} | " for c in cells))
        print("\nPer item inside the loader (ms of CPU / ms of wall time in `__getitem__`):\n")
        print("| measurement | " + "".join(f"{n} | " for n in names))
        print("| --- | " + "---: | " * len(names))
        for setting in settings:
            cells = [
                f"{cost[(setting, n)][0]:.1f} / {cost[(setting, n)][1]:.1f}"
                if (setting, n) in cost else ""
                for n in names
            ]
            print(f"| {labels[setting]} | " + "".join(f"{c} | " for c in cells))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
