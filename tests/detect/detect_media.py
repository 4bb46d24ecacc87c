"""Odd media for the detect tests: any rate and size, and files whose header lies."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def moving_square(k: int, width: int, height: int) -> np.ndarray:
    """Frame ``k``: a grey noisy background with a bright square moving right."""
    rng = np.random.default_rng(k)
    frame = rng.integers(60, 90, (height, width, 3), dtype=np.uint8)
    side = max(4, min(width, height) // 3)
    x = (3 * k) % max(1, width - side)
    frame[height // 4 : height // 4 + side, x : x + side] = (230, 200, 40)
    return frame


def write_clip(path: Path, num_frames: int, *, fps: int, width: int, height: int,
               codec: str = "libx264", container: str = "mp4", pix_fmt: str = "yuv420p") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt  # yuv444p allows odd sizes
        stream.time_base = Fraction(1, fps)
        for k in range(num_frames):
            frame = av.VideoFrame.from_ndarray(moving_square(k, width, height), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_lying_avi(path: Path, num_frames: int, claimed: int, *, fps: int = 25,
                    width: int = 64, height: int = 48) -> Path:
    """An AVI of ``num_frames`` frames whose headers (``avih`` total frames, ``strh`` length)
    claim ``claimed``: PyAV then reports ``stream.frames == claimed`` and a matching duration."""
    write_clip(path, num_frames, fps=fps, width=width, height=height, codec="mpeg4",
               container="avi")
    data = bytearray(path.read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    struct.pack_into("<I", data, avih + 8 + 16, claimed)  # dwTotalFrames
    struct.pack_into("<I", data, strh + 8 + 32, claimed)  # dwLength
    path.write_bytes(bytes(data))
    return path


def decoded_frames(path: Path) -> tuple[int, Fraction, tuple[int, int], int]:
    """``(frames decoded, average rate, (width, height), frames the header claims)``."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, Fraction(stream.average_rate), (stream.width, stream.height), stream.frames


def read_all(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
