"""Small test videos whose frames carry their own index, readable after lossy coding."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avadet.prep.media import VideoWriter

W, H = 32, 24


def coded_frame(i: int) -> np.ndarray:
    """``(H, W, 3)`` grey frame: left half ``(i % 16) * 16 + 8``, right ``(i // 16) * 16 + 8``."""
    frame = np.empty((H, W, 3), np.uint8)
    frame[:, : W // 2] = (i % 16) * 16 + 8
    frame[:, W // 2 :] = (i // 16) * 16 + 8
    return frame


def decode_index(frame: np.ndarray) -> int:
    """Inverse of :func:`coded_frame` (tolerates coding noise of a few grey levels)."""
    lo = int(np.floor(frame[:, : W // 2].mean() / 16))
    hi = int(np.floor(frame[:, W // 2 :].mean() / 16))
    return hi * 16 + lo


def make_video(path: Path, num_frames: int, fps: float) -> Path:
    writer = VideoWriter(path, width=W, height=H, fps=fps, crf=0)
    for i in range(num_frames):
        writer.write(coded_frame(i))
    writer.close()
    return path
