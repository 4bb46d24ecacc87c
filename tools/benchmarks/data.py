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

Usage: ``python tools/benchmark.py data [--clips 64] [--workers 0 2] [--gop 250] [--keep DIR]``
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
) -> None:
    """Write the synthetic set under ``root`` (videos/, frames/, annotations/)."""
    import av
    import cv2
    import pandas as pd

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
            stream.options = {"crf": "23", "g": str(gop), "preset": preset}
            for k in range(seconds * fps):
                image = frame(k)
                out = av.VideoFrame.from_ndarray(image, format="rgb24")
                out.pts = k
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


def _time_loader(
    dataset, clips: int, workers: int, batch_size: int, seed: int, in_order: bool = False
) -> float:
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
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        persistent_workers=False,
    )
    iterator = iter(loader)
    # Warm-up: worker start, first open of each video (index, container).
    for _ in range(max(workers, 1) * 2):
        next(iterator)
    start = time.perf_counter()
    done = 0
    while done < clips:
        done += len(next(iterator)["video_ids"])
    elapsed = time.perf_counter() - start
    del iterator
    return done / elapsed


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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py data", description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--height", type=int, default=300)
    parser.add_argument("--gop", type=int, default=250, help="maximum key frame interval")
    parser.add_argument("--clips", type=int, default=64, help="clips timed per measurement")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument(
        "--preset", default="medium", help="libx264 preset (ffmpeg's default: medium)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds; best kept")
    parser.add_argument("--keep", type=Path, default=None, help="generate into / reuse this folder")
    parser.add_argument(
        "--generate-only", action="store_true", help="write the media (--keep) and stop"
    )
    args = parser.parse_args(argv)

    import torch

    from avadet.engine import build_dataset

    torch.set_num_threads(1)
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
            )
            print(f"generated {root} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            (root / "media.json").write_text(json.dumps(vars(args), default=str))
        if args.generate_only:
            return 0
        # The table describes the media actually measured (a reused --keep folder's own).
        media = json.loads((root / "media.json").read_text())
        jpeg_bytes = sum(p.stat().st_size for p in (root / "frames").rglob("*.jpg"))
        video_bytes = sum(p.stat().st_size for p in (root / "videos").glob("*.mp4"))
        datasets = {
            s: build_dataset(_config(root, s, media["seconds"]), "train")
            for s in ("frames", "video")
        }
        val_sets = {
            s: build_dataset(_config(root, s, media["seconds"]), "val") for s in ("frames", "video")
        }
        settings = [f"loader, num_workers={w}" for w in args.workers]
        settings += [f"val in order, num_workers={w}" for w in args.workers]
        results: dict[tuple[str, str], float] = {}
        for r in range(args.repeats):
            for source, rate in _time_reads(datasets, args.clips, seed=r).items():
                results[("read", source)] = max(results.get(("read", source), 0.0), rate)
                print(f"round {r} {'read':24s} {source:6s} {rate:7.2f} clips/s", file=sys.stderr)
            for setting in settings:
                workers = int(setting.rsplit("=", 1)[1])
                in_order = setting.startswith("val")
                for source in ("frames", "video") if r % 2 == 0 else ("video", "frames"):
                    ds = (val_sets if in_order else datasets)[source]
                    rate = _time_loader(ds, args.clips, workers, args.batch_size, r, in_order)
                    key = (setting, source)
                    results[key] = max(results.get(key, 0.0), rate)
                    print(
                        f"round {r} {setting:24s} {source:6s} {rate:7.2f} clips/s", file=sys.stderr
                    )
        print(
            f"\n{media['videos']} videos x {media['seconds']} s, {media['width']}x{media['height']}, "
            f"30 fps, H.264 (libx264 {media['preset']}) CRF 23 GOP <= {media['gop']} "
            f"({video_bytes / 2**20:.1f} MiB) vs JPEG q95 "
            f"({jpeg_bytes / 2**20:.1f} MiB); 32x2 clips, {args.clips} clips per measurement, "
            f"best of {args.repeats}\n"
        )
        print("| measurement | JPEG clips/s | video clips/s | video / JPEG |")
        print("| --- | ---: | ---: | ---: |")
        labels = {"read": "clip read only, random keyframes (1 process, interleaved)"}
        for setting in settings:
            kind = (
                "training loader (random keyframes)"
                if setting.startswith("loader")
                else ("val loader (keyframes in order)")
            )
            labels[setting] = f"{kind}, {setting.split(', ')[1]}"
        for setting, label in labels.items():
            jpeg, video = results[(setting, "frames")], results[(setting, "video")]
            print(f"| {label} | {jpeg:.2f} | {video:.2f} | {video / jpeg:.2f} |")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
