"""What a synthetic dataset is made of: its action classes, the :class:`SyntheticSpec` that
shapes it, the presets, and the clip sampling that sets the aliasing period.

Nothing here draws random numbers or touches files; :mod:`avadet.synthetic.plan` draws the
scene from a spec, :mod:`avadet.synthetic.render` paints it, :mod:`avadet.synthetic.write`
writes it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from avadet.errors import ConfigError
from avadet.io import LabelMap


@dataclass(frozen=True)
class SyntheticClass:
    """One action class: what defines it and whether the evaluation counts it."""

    id: int
    name: str
    group: str  # "arm", "body", "object", "hat"
    cue: str  # "motion" or "appearance"
    speed: str  # "fast" (aliased for the Slow pathway), "slow", or "" (appearance)
    evaluated: bool
    description: str


CLASSES: tuple[SyntheticClass, ...] = (
    SyntheticClass(1, "fast_wave", "arm", "motion", "fast", True,
                   "arm swings with a period of tau frames: frozen to the Slow pathway"),
    SyntheticClass(2, "arm_still", "arm", "motion", "fast", True,
                   "arm held still at a pose drawn like a random phase of fast_wave"),
    SyntheticClass(3, "slow_wave", "arm", "motion", "slow", True,
                   "arm swings slowly (1.5 s period): visible to both pathways"),
    SyntheticClass(4, "slow_sway", "body", "motion", "slow", True,
                   "whole figure sways sideways (2 s period)"),
    SyntheticClass(5, "fast_bounce", "body", "motion", "fast", True,
                   "figure bobs up and down with a period of tau frames: frozen to Slow"),
    SyntheticClass(6, "hold_red", "object", "appearance", "", True,
                   "holds a red square in the hand"),
    SyntheticClass(7, "hold_blue", "object", "appearance", "", True,
                   "holds a blue disc in the hand"),
    SyntheticClass(8, "hold_green", "object", "appearance", "", False,
                   "holds a green diamond (rare, not evaluated)"),
    SyntheticClass(9, "wear_hat", "hat", "appearance", "", True, "wears a yellow hat"),
)
CLASS_BY_NAME = {c.name: c for c in CLASSES}
# Every person has exactly one arm label, so a label map that keeps these keeps every person.
ARM_CLASSES = ("fast_wave", "arm_still", "slow_wave")


def dataset_classes(label_ids: tuple = ()) -> tuple[SyntheticClass, ...]:
    """The classes a dataset is written with: :data:`CLASSES`, or with ``label_ids`` (pairs
    ``(name, id)``) only the named classes, renumbered (a custom label map, e.g. ids 3..7).
    A class kept this way is evaluated."""
    if not label_ids:
        return CLASSES
    ids = {str(name): int(new) for name, new in label_ids}
    return tuple(dataclasses.replace(c, id=ids[c.name], evaluated=True)
                 for c in CLASSES if c.name in ids)


def motion_class_ids(speed: Optional[str] = None, label_ids: tuple = ()) -> list[int]:
    """Ids of the motion-defined classes (all, or only ``speed`` "fast"/"slow")."""
    return [c.id for c in dataset_classes(label_ids)
            if c.cue == "motion" and (speed is None or c.speed == speed)]


def synthetic_labelmap(evaluated_only: bool = False, label_ids: tuple = ()) -> LabelMap:
    """The synthetic label map (all classes, or the evaluated subset)."""
    return LabelMap({c.id: c.name for c in dataset_classes(label_ids)
                     if c.evaluated or not evaluated_only})


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that shapes a generated dataset. Presets are instances; ``**overrides`` of
    :func:`avadet.synthetic.make_synthetic` replace fields by name."""

    num_train_videos: int
    num_val_videos: int
    duration: int  # seconds per video; keyframes segment_start+2 .. segment_start+duration-2
    width: int
    height: int
    fps: int = 30
    segment_start: int = 900  # 0 for videos that are not cut out of a longer movie
    # A custom label map: ((class name, id), ...) keeps only the named classes under new ids
    # (every arm class must be kept: each person has one). Empty: all classes, ids 1..9.
    label_ids: tuple[tuple[str, int], ...] = ()
    actors_per_video: tuple[int, int] = (2, 3)  # inclusive range
    episode_seconds: tuple[int, int] = (2, 4)  # inclusive range of episode lengths
    # Clip sampling the dataset will use (written to config.yaml); sets the aliasing period.
    num_frames: int = 16
    sampling_rate: int = 2
    alpha: int = 4
    slow_wave_period: int = 45  # frames
    sway_period: int = 60  # frames
    noise_std: float = 4.0  # per-pixel Gaussian noise, grey levels
    empty_keyframes_per_split: int = 1  # keyframes with nobody in the picture
    excluded_keyframes_per_split: int = 1  # keyframes listed as excluded (no gt rows)
    # Detector noise of the predicted person boxes.
    box_jitter: float = 0.04  # std of each coordinate, fraction of the box's size
    miss_rate: float = 0.06
    false_positives_per_keyframe: float = 0.3
    # Media.
    write_frames: bool = True
    write_videos: bool = True
    jpeg_quality: int = 95
    crf: int = 18
    # Model and schedule written to config.yaml.
    width_per_group: int = 8
    depth: int = 50
    beta_inv: int = 8
    batch_size: int = 8
    max_epoch: float = 10.0
    base_lr: float = 0.05
    # BN statistics re-estimated on this many training batches before evaluation: with
    # batches of 8 the running averages lag far behind the weights (measured on the cpu
    # preset, 12 epochs: frame-mAP 0.41 without, 0.56 with).
    precise_bn_batches: int = 20
    train_jitter_scales: tuple[int, int] = (0, 0)  # (0, 0): short side .. 1.25 x short side
    test_short_side: int = 0  # 0: the frames' short side
    train_crop_size: int = 0  # 0: the frames' short side
    num_workers: int = 0


PRESETS: dict[str, SyntheticSpec] = {
    # Tests: 3 short videos at 64x48, a second or two to generate.
    "tiny": SyntheticSpec(
        num_train_videos=2, num_val_videos=1, duration=8, width=64, height=48,
        actors_per_video=(2, 3), max_epoch=2.0, batch_size=4, precise_bn_batches=0,
    ),
    # Trains in minutes on 2 CPU cores.
    "cpu": SyntheticSpec(
        num_train_videos=14, num_val_videos=4, duration=24, width=128, height=96,
        empty_keyframes_per_split=3, excluded_keyframes_per_split=3, max_epoch=24.0,
    ),
    # A larger benchmark for a GPU.
    "gpu": SyntheticSpec(
        num_train_videos=32, num_val_videos=8, duration=40, width=256, height=192,
        actors_per_video=(2, 4), empty_keyframes_per_split=8, excluded_keyframes_per_split=8,
        width_per_group=32, batch_size=16, max_epoch=20.0, base_lr=0.1, num_workers=4,
    ),
}


def resolve_spec(preset: str = "tiny", **overrides: Any) -> SyntheticSpec:
    """The preset's spec with ``overrides`` applied; unknown names are a ConfigError."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown synthetic preset {preset!r}; choose one of {sorted(PRESETS)}")
    names = {f.name for f in dataclasses.fields(SyntheticSpec)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"unknown synthetic setting(s) {unknown}; valid: {sorted(names)}")
    spec = dataclasses.replace(PRESETS[preset], **overrides)
    if spec.width % 2 or spec.height % 2:
        raise ConfigError(f"width and height must be even (yuv420p video), got {spec.width}x{spec.height}")
    if spec.num_train_videos < 0 or spec.num_val_videos < 0 or spec.num_train_videos + spec.num_val_videos < 1:
        raise ConfigError("need at least one video (num_train_videos + num_val_videos >= 1)")
    if spec.duration < 5:
        raise ConfigError(f"duration must be at least 5 s (keyframes start 2 s in), got {spec.duration}")
    if min(spec.actors_per_video) < 1 or spec.actors_per_video[0] > spec.actors_per_video[1]:
        raise ConfigError(f"actors_per_video must be a range (lo, hi) with lo >= 1, got {spec.actors_per_video}")
    slow_stride(spec)  # validates the sampling
    if spec.fps < 1:
        raise ConfigError(f"fps must be a positive integer, got {spec.fps}")
    if spec.label_ids:
        spec = dataclasses.replace(spec, label_ids=_checked_label_ids(spec.label_ids))
    return spec


def _checked_label_ids(label_ids: Any) -> tuple[tuple[str, int], ...]:
    """``label_ids`` (pairs or a ``{name: id}`` dict, e.g. from ``--set``) as ``(name, id)``
    pairs, after checking that they name known classes once each and keep every arm class."""
    try:
        items = label_ids.items() if isinstance(label_ids, dict) else label_ids
        pairs = [(str(name), int(new)) for name, new in items]
    except (TypeError, ValueError):
        raise ConfigError(f"label_ids must be (name, id) pairs, got {label_ids!r}") from None
    names = [n for n, _ in pairs]
    unknown = sorted(set(names) - set(CLASS_BY_NAME))
    if unknown:
        raise ConfigError(f"label_ids: unknown classes {unknown}; known: {sorted(CLASS_BY_NAME)}")
    if len(set(names)) != len(names) or len({i for _, i in pairs}) != len(pairs):
        raise ConfigError("label_ids: each class and each id must appear once")
    missing = [a for a in ARM_CLASSES if a not in names]
    if missing:
        raise ConfigError(f"label_ids must keep every arm class (each person has one): add {missing}")
    return tuple(pairs)


def slow_frame_offsets(num_frames: int, sampling_rate: int, alpha: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame offsets from the keyframe's frame of the Fast and the Slow pathway.

    Fast: ``range(-N*s/2, N*s/2, s)`` (PySlowFast). Slow: the fast frames at positions
    ``linspace(0, N-1, N // alpha)`` truncated to integers (PySlowFast's ``torch.linspace(...)
    .long()``). Returns ``(fast (N,), slow (N // alpha,))`` int64 offsets.
    """
    fast = np.arange(-num_frames * sampling_rate // 2, num_frames * sampling_rate // 2,
                     sampling_rate, dtype=np.int64)
    positions = np.linspace(0, num_frames - 1, num_frames // alpha).astype(np.int64)
    return fast, fast[positions]


def slow_stride(spec: SyntheticSpec) -> int:
    """The Slow pathway's frame stride ``tau`` in frames: the period of the fast motions."""
    _, slow = slow_frame_offsets(spec.num_frames, spec.sampling_rate, spec.alpha)
    steps = np.unique(np.diff(slow))
    if len(slow) < 2 or len(steps) != 1:
        raise ConfigError(
            f"num_frames={spec.num_frames}, alpha={spec.alpha}: the slow frames "
            f"linspace(0, N-1, N//alpha) are not evenly spaced ({slow.tolist()}), so no motion "
            "period is frozen for the Slow pathway; use e.g. num_frames 16 with alpha 4, or 8 with 4"
        )
    return int(steps[0])
