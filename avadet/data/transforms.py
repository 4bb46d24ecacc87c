"""Box-aware clip transforms, vectorised over the frames of a clip.

Box conventions (one per layer):

- files hold AVA's normalised ``x1, y1, x2, y2`` in ``[0, 1]``;
- everything here and after works in pixels of the current image: :func:`avadet.boxes.to_pixels` is
  the one conversion (``x * W``, ``y * H``, then clipped to ``[0, W-1] x [0, H-1]``, PySlowFast's
  convention). Every geometric step moves the boxes with the pixels: scaling multiplies by the
  size ratio, cropping subtracts the offset, a horizontal flip maps ``x -> W - 1 - x``
  (PySlowFast's ``flip_boxes``), and boxes are clipped to the final image again. At test time
  ``box_clipping="none"`` skips both clips (MMAction2's test pipeline, :data:`BOX_CLIPPINGS`).

Clips are ``(T, H, W, 3)`` uint8 RGB arrays from a clip source; the transforms return
``(3, T, H', W')`` float32 normalised tensors. Random choices come from ``rng`` (a
``np.random.RandomState``), by default numpy's global generator, which DataLoader seeds per
worker and the engine can replay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

from avadet.boxes import clip_to_image, to_pixels


@dataclass
class TransformResult:
    """``clip``: ``(3, T, H, W)`` float32 normalised; ``boxes``: ``(K, 4)`` float32 x1 y1 x2 y2 in
    pixels of ``clip``; ``keep``: ``(K_in,)`` bool, which input boxes survived (K = keep.sum())."""

    clip: torch.Tensor
    boxes: np.ndarray
    keep: np.ndarray


def _rng(rng: Optional[np.random.RandomState]) -> np.random.RandomState:
    return rng if rng is not None else np.random.mtrand._rand


RESIZE_ROUNDINGS = ("floor", "round")


def short_side_size(
    height: int, width: int, short_side: int, rounding: str = "floor"
) -> tuple[int, int]:
    """``(new_height, new_width)`` with the short side ``short_side`` and the aspect ratio kept.

    ``rounding="floor"``: the long side floored from the aspect ratio, as PySlowFast's
    ``scale``; ``"round"``: MMAction2's ``Resize(scale=(-1, short_side))`` (mmcv
    ``rescale_size``): ``s = short_side / min(H, W)``, each side ``int(side * s + 0.5)``.
    ``short_side <= 0`` keeps the size."""
    if rounding not in RESIZE_ROUNDINGS:
        raise ValueError(f"resize rounding must be one of {RESIZE_ROUNDINGS}, got {rounding!r}")
    if short_side <= 0 or min(height, width) == short_side:
        return height, width
    if rounding == "round":
        scale = short_side / min(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)
    if width <= height:
        return int(math.floor(height / width * short_side)), short_side
    return short_side, int(math.floor(width / height * short_side))


# How boxes follow a resize whose long side was floored (:func:`short_side_size`):
# "per_axis": x by W'/W and y by H'/H (each axis exactly as its pixels moved);
# "long_side": all four coordinates by the long side's ratio (W'/W for landscape frames,
# H'/H for portrait ones), PySlowFast's ``cv2_transform.scale_boxes`` and
# ``random_short_side_scale_jitter_list``: up to half a pixel off in the other axis.
BOX_SCALINGS = ("per_axis", "long_side")

# Whether test boxes are clipped: "last_pixel" to ``[0, W-1] x [0, H-1]`` of the frame, then of
# the resized input (PySlowFast's ``clip_boxes_to_image``); "none": scaled as they are, as
# MMAction2's ``RawFrameDecode`` and ``Resize`` do (a box to the frame's right edge ends at
# the input's width W', not at W' - 1 after scaling from W - 1).
BOX_CLIPPINGS = ("last_pixel", "none")


def box_scale(height: int, width: int, size: tuple[int, int], box_scaling: str) -> np.ndarray:
    """``(4,)`` float32 factors for ``x1 y1 x2 y2`` when an ``height x width`` image is resized
    to ``size = (H', W')`` (see :data:`BOX_SCALINGS`)."""
    if box_scaling == "per_axis":
        sx, sy = size[1] / width, size[0] / height
    elif box_scaling == "long_side":
        sx = sy = size[0] / height if width < height else size[1] / width
    else:
        raise ValueError(f"box_scaling must be one of {BOX_SCALINGS}, got {box_scaling!r}")
    return np.array([sx, sy] * 2, np.float32)


def resize(
    clip: np.ndarray, boxes: np.ndarray, size: tuple[int, int], *, box_scaling: str = "per_axis"
) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear resize (OpenCV ``INTER_LINEAR`` on uint8, PySlowFast's AVA backend) of a
    ``(T, H, W, C)`` clip to ``size = (H', W')``; ``(K, 4)`` pixel boxes are scaled by
    :func:`box_scale` (``per_axis``: ``W'/W`` and ``H'/H``)."""
    height, width = clip.shape[1:3]
    if (height, width) == tuple(size):
        return clip, boxes
    out = np.empty((clip.shape[0], size[0], size[1], clip.shape[3]), dtype=clip.dtype)
    for t in range(clip.shape[0]):
        cv2.resize(clip[t], (size[1], size[0]), dst=out[t], interpolation=cv2.INTER_LINEAR)
    return out, boxes * box_scale(height, width, size, box_scaling)


def crop(
    clip: np.ndarray, boxes: np.ndarray, top: int, left: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Crop a ``(T, H, W, C)`` clip to the window at ``(top, left)`` of ``height x width``;
    boxes are shifted by the offset (not clipped)."""
    clip = clip[:, top : top + height, left : left + width]
    return clip, boxes - np.array([left, top, left, top], np.float32)


def hflip(clip: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror a ``(T, H, W, C)`` clip left-right; box x -> ``W - 1 - x`` (x1 and x2 swap)."""
    width = clip.shape[2]
    flipped = boxes.copy()
    flipped[:, [0, 2]] = width - 1 - boxes[:, [2, 0]]
    return clip[:, :, ::-1], flipped


GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])  # BT.601 luma, as OpenCV's RGB2GRAY


def color_jitter_affine(
    frame_means: np.ndarray,
    *,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    rng: Optional[np.random.RandomState] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """PySlowFast's colour jitter as one affine map per pixel: ``x' = M x + b_t``.

    Brightness, contrast and saturation in a random order, each with a factor
    ``alpha = 1 + U(-v, v)`` shared by the frames of the clip: brightness ``x * alpha``;
    contrast ``x * alpha + g_t * (1 - alpha)`` with ``g_t`` the mean grey level of frame t;
    saturation ``x * alpha + grey(x) * (1 - alpha)`` with the pixel's grey level. Each step is
    affine, so the composition is too, and the clip is touched once instead of three times.
    Values are not clamped (as PySlowFast).

    Args:
        frame_means: ``(T, 3)`` mean RGB of each frame (in the unit the map is applied to).
    Returns:
        ``M`` ``(3, 3)`` and ``b`` ``(T, 3)``.
    """
    rng = _rng(rng)
    frame_means = np.asarray(frame_means, dtype=np.float64).reshape(-1, 3)
    matrix = np.eye(3)
    offset = np.zeros_like(frame_means)
    for op in rng.permutation(3):
        amount = (brightness, contrast, saturation)[op]
        if amount <= 0:
            continue
        alpha = float(1.0 + rng.uniform(-amount, amount))
        if op == 0:
            matrix, offset = alpha * matrix, alpha * offset
        elif op == 1:
            grey = (frame_means @ matrix.T + offset) @ GREY_WEIGHTS  # (T,) after the steps so far
            matrix = alpha * matrix
            offset = alpha * offset + (1 - alpha) * grey[:, None]
        else:
            step = alpha * np.eye(3) + (1 - alpha) * np.outer(np.ones(3), GREY_WEIGHTS)
            matrix, offset = step @ matrix, offset @ step.T
    return matrix, offset


def color_jitter(
    frames: torch.Tensor,
    *,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    rng: Optional[np.random.RandomState] = None,
) -> torch.Tensor:
    """Colour jitter (:func:`color_jitter_affine`) of ``(T, 3, H, W)`` RGB frames in ``[0, 1]``."""
    means = frames.mean((2, 3)).double().numpy()
    matrix, offset = color_jitter_affine(
        means, brightness=brightness, contrast=contrast, saturation=saturation, rng=rng
    )
    m = torch.from_numpy(matrix).float()
    b = torch.from_numpy(offset).float()
    return torch.einsum("ck,tkhw->tchw", m, frames) + b[:, :, None, None]


def to_input(
    clip: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    color: bool = False,
    rng: Optional[np.random.RandomState] = None,
) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 RGB -> the network input ``(3, T, H, W)`` float32:
    ``(jitter(x / 255) - mean) / std``, computed as one affine map per pixel."""
    t = clip.shape[0]
    pixels = torch.from_numpy(np.ascontiguousarray(clip)).reshape(t, -1, 3).float()
    scale = np.eye(3) / 255.0
    matrix, offset = scale, np.zeros((t, 3))
    if color:
        means = pixels.mean(1).double().numpy() / 255.0  # (T, 3)
        jitter, offset = color_jitter_affine(means, rng=rng)
        matrix = jitter @ scale
    std_arr = np.asarray(std, dtype=np.float64)
    matrix = matrix / std_arr[:, None]
    offset = (offset - np.asarray(mean, dtype=np.float64)) / std_arr  # (T, 3)
    out = torch.baddbmm(
        torch.from_numpy(offset).float()[:, None, :].expand(t, pixels.shape[1], 3),
        pixels,
        torch.from_numpy(matrix.T).float().expand(t, 3, 3),
    )  # (T, H*W, 3)
    return out.permute(2, 0, 1).reshape(3, t, clip.shape[1], clip.shape[2]).contiguous()


def visible_boxes(boxes: np.ndarray, min_size: float) -> np.ndarray:
    """``(K,)`` bool: clipped pixel boxes whose width and height are both >= ``min_size``."""
    return ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)


def random_short_side(min_size: int, max_size: int, rng: np.random.RandomState) -> int:
    """A short side drawn as PySlowFast does: ``round(1 / U(1/max, 1/min))`` (favours small
    scales slightly, i.e. uniform in inverse scale)."""
    if min_size >= max_size:
        return int(min_size)
    return int(round(1.0 / rng.uniform(1.0 / max_size, 1.0 / min_size)))


def train_transform(
    clip: np.ndarray,
    norm_boxes: np.ndarray,
    *,
    jitter_scales: tuple[int, int],
    crop_size: int,
    flip: bool,
    color: bool,
    mean: Sequence[float],
    std: Sequence[float],
    min_box_size: float = 1.0,
    box_scaling: str = "per_axis",
    rng: Optional[np.random.RandomState] = None,
) -> TransformResult:
    """Training augmentation: random short-side scale in ``jitter_scales``, random square crop
    of ``crop_size``, random horizontal flip (p = 0.5), optional colour jitter, normalisation.

    Args:
        clip: ``(T, H, W, 3)`` uint8 RGB.
        norm_boxes: ``(K, 4)`` normalised x1 y1 x2 y2.
        crop_size: side of the square crop (<= the scaled short side; 0: the short side).
        min_box_size: boxes narrower or lower than this many pixels after the crop (people
            cropped out) are dropped; ``keep`` says which.
        box_scaling: how boxes follow the scale (:data:`BOX_SCALINGS`).
    Returns:
        :class:`TransformResult` with ``clip`` ``(3, T, crop, crop)``.
    """
    rng = _rng(rng)
    t, height, width, _ = clip.shape
    boxes = to_pixels(norm_boxes, width, height)
    short = random_short_side(jitter_scales[0], jitter_scales[1], rng)
    frames, boxes = resize(clip, boxes, short_side_size(height, width, short),
                           box_scaling=box_scaling)
    height, width = frames.shape[1:3]
    size = crop_size if crop_size > 0 else min(height, width)
    if size > min(height, width):
        raise ValueError(f"crop {size} is larger than the scaled frame {height}x{width}")
    top = int(rng.randint(0, height - size + 1))
    left = int(rng.randint(0, width - size + 1))
    keep = visible_boxes(
        clip_to_image(boxes - np.array([left, top] * 2, np.float32), size, size), min_box_size
    )
    if len(boxes) and not keep.any():
        # Every person fell outside the crop: centre the crop on one of them instead, so the
        # sample still teaches something (PySlowFast keeps such degenerate boxes).
        j = int(rng.randint(len(boxes)))
        cx, cy = (boxes[j, :2] + boxes[j, 2:]) / 2
        top = int(np.clip(round(cy - size / 2), 0, height - size))
        left = int(np.clip(round(cx - size / 2), 0, width - size))
    frames, boxes = crop(frames, boxes, top, left, size, size)
    if flip and rng.uniform() < 0.5:
        frames, boxes = hflip(frames, boxes)
    boxes = clip_to_image(boxes, size, size)
    keep = visible_boxes(boxes, min_box_size)
    return TransformResult(to_input(frames, mean, std, color=color, rng=rng), boxes[keep], keep)


def eval_transform(
    clip: np.ndarray,
    norm_boxes: np.ndarray,
    *,
    short_side: int,
    mean: Sequence[float],
    std: Sequence[float],
    box_scaling: str = "per_axis",
    rounding: str = "floor",
    box_clipping: str = "last_pixel",
) -> TransformResult:
    """Evaluation transform: short side to ``short_side`` (0: unchanged; ``rounding`` as in
    :func:`short_side_size`), whole frame, no crop.

    Args:
        clip: ``(T, H, W, 3)`` uint8 RGB.
        norm_boxes: ``(K, 4)`` normalised x1 y1 x2 y2.
        box_scaling: how boxes follow the scale (:data:`BOX_SCALINGS`).
        box_clipping: whether boxes are clipped to the frame and the input
            (:data:`BOX_CLIPPINGS`).
    Returns:
        :class:`TransformResult`; every box is kept (detections are never dropped at test time).
    """
    if box_clipping not in BOX_CLIPPINGS:
        raise ValueError(f"box_clipping must be one of {BOX_CLIPPINGS}, got {box_clipping!r}")
    t, height, width, _ = clip.shape
    if box_clipping == "none":
        boxes = np.asarray(norm_boxes, np.float32).reshape(-1, 4) * np.array(
            [width, height, width, height], np.float32)
    else:
        boxes = to_pixels(norm_boxes, width, height)
    frames, boxes = resize(clip, boxes, short_side_size(height, width, short_side, rounding),
                           box_scaling=box_scaling)
    height, width = frames.shape[1:3]
    if box_clipping != "none":
        boxes = clip_to_image(boxes, width, height)
    keep = np.ones(len(boxes), dtype=bool)
    return TransformResult(to_input(frames, mean, std), boxes, keep)
