"""Tiny AVA-layout media for the data-layer tests: videos whose frames show their own index.

Frame ``k`` is painted with ``BITS`` vertical bars, bar ``b`` white when bit ``b`` of ``k`` is
set, so a decoded frame (JPEG or video, lossy) tells which frame it is: :func:`frame_number`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import cv2
import numpy as np

BITS = 12
BAR = 8  # pixels per bar
WIDTH = BITS * BAR  # 96
HEIGHT = 32


def index_frame(k: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB frame encoding ``k`` in bars (the red channel slightly tinted so
    a BGR/RGB swap is visible)."""
    frame = np.zeros((height, width, 3), np.uint8)
    for b in range(BITS):
        if (k >> b) & 1:
            frame[:, b * BAR : (b + 1) * BAR] = 255
    frame[..., 0] = np.maximum(frame[..., 0], 60)  # a red tint everywhere
    return frame


def frame_number(frame: np.ndarray) -> int:
    """Decode the index painted by :func:`index_frame` from an ``(H, W, 3)`` RGB frame."""
    grey = frame[..., 1].astype(np.float32)  # green: untouched by the red tint
    bars = grey[:, : BITS * BAR].reshape(frame.shape[0], BITS, BAR)[:, :, 2:-2].mean((0, 2))
    return int(sum(1 << b for b in range(BITS) if bars[b] > 128))


def write_video(
    path: Path,
    num_frames: int,
    *,
    fps: int = 30,
    gop: int = 12,
    codec: str = "libx264",
    bframes: int = 2,
    frame_fn=index_frame,
) -> Path:
    """Encode frames ``frame_fn(0) .. frame_fn(num_frames - 1)`` at constant ``fps``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        first = frame_fn(0)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        if codec == "libx264":
            options.update({"crf": "12", "bf": str(bframes), "preset": "veryfast"})
        stream.options = options
        for k in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_fn(k), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def extract_frames(video: Path, out_dir: Path, video_id: str) -> int:
    """Decode every frame of ``video`` into ``out_dir/<video_id>/<video_id>_%06d.jpg`` (1-based),
    as ffmpeg's extraction does for a constant-frame-rate video. Returns the frame count."""
    folder = out_dir / video_id
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            count += 1
            image = frame.to_ndarray(format="rgb24")[..., ::-1]
            cv2.imwrite(
                str(folder / f"{video_id}_{count:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95]
            )
    return count


LABELMAP = """item {
  name: "stand"
  id: 1
}
item {
  name: "sit"
  id: 2
}
item {
  name: "talk"
  id: 5
}
"""


def write_dataset(
    root: Path,
    *,
    videos: dict[str, int],
    rows: dict[str, list[str]],
    fps: int = 30,
    gop: int = 12,
    frames: bool = True,
    extra: Optional[dict[str, str]] = None,
) -> Path:
    """A small AVA-layout dataset under ``root``: ``videos/<vid>.mp4`` (``videos[vid]`` frames),
    the JPEGs under ``frames/`` and the annotation files ``rows[name]`` (CSV lines) written to
    ``annotations/<name>``. Returns ``root``."""
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    (ann / "labelmap.pbtxt").write_text(LABELMAP)
    for vid, n in videos.items():
        video = write_video(root / "videos" / f"{vid}.mp4", n, fps=fps, gop=gop)
        if frames:
            extract_frames(video, root / "frames", vid)
    for name, lines in rows.items():
        (ann / name).write_text("".join(line + "\n" for line in lines))
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    return root
