"""A seeded synthetic AVA: videos, frames and every annotation file in AVA's exact layout.

:func:`make_synthetic` writes a dataset that the whole pipeline (data loading, training,
person boxes, evaluation, data checks) reads exactly like AVA::

    out_dir/
      videos/<vid>.mp4                      already cut: frame 0 shows time segment_start
      frames/<vid>/<vid>_000001.jpg ...     30 fps, 1-based
      frame_lists/{train,val}.csv           PySlowFast frame lists
      annotations/ava_{train,val}_v2.2.csv  gt rows, one per (box, action)
      annotations/ava_action_list_v2.2.pbtxt                     all classes
      annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt  evaluated classes
      annotations/ava_{train,val}_excluded_timestamps_v2.2.csv
      annotations/ava_{train,val}_predicted_boxes.csv            noisy detector boxes
      config.yaml, config_slow.yaml         ready configs (SlowFast, and a Slow-only baseline)
      synthetic_meta.json                   classes, motion-defined ids, the aliasing set-up

The scene: textured figures (striped ellipse body, head, one arm) on a smoothly panning,
noisy background. Each actor's labels are constant over *episodes* of 2-4 s that switch
half-way between keyframes, so a clip around a keyframe sees one set of labels. Classes:

- arm (exactly one): ``fast_wave``, ``arm_still``, ``slow_wave``;
- body (at most one): ``slow_sway`` (horizontal), ``fast_bounce`` (vertical);
- held object (at most one): ``hold_red`` (square), ``hold_blue`` (disc), ``hold_green``
  (diamond, not evaluated, like AVA's 20 rare classes);
- ``wear_hat``.

**Aliasing.** The Slow pathway sees the frames at offsets ``tau`` apart (``tau`` = the slow
frame stride in frames, 10 for 16 fast frames at stride 2 and alpha 4). A periodic motion
whose period is ``tau`` frames is sampled at the same phase in every slow frame, so it looks
frozen to the Slow pathway, while the Fast pathway (stride ``tau / alpha`` or so) sees
``tau / sampling_rate`` samples per period. ``fast_wave`` vs ``arm_still`` and
``fast_bounce`` vs no body motion differ only in such a motion; the frozen pose of the still
classes is drawn from the same distribution as a random phase of the fast ones, so a model
that sees only slow frames cannot tell them apart. ``slow_wave`` and ``slow_sway`` move slowly
enough for both pathways.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np
import pandas as pd
import yaml
from tqdm import tqdm

from avadet.config import load_config
from avadet.errors import AvadetError, ConfigError
from avadet.io import LabelMap, atomic_write, write_ava_csv
from avadet.prep.frame_lists import write_frame_list
from avadet.prep.media import open_video_writer

PathLike = Union[str, Path]
LOG = logging.getLogger(__name__)
GENERATOR_VERSION = 5  # bump whenever the output changes: old folders are then not reused
META_NAME = "synthetic_meta.json"


# ---------------------------------------------------------------------------------------------
# Classes


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
# Episode label probabilities per group; the empty string is "no label of this group".
ARM_CHOICES = (("fast_wave", 0.35), ("arm_still", 0.35), ("slow_wave", 0.30))
BODY_CHOICES = (("slow_sway", 0.30), ("fast_bounce", 0.30), ("", 0.40))
OBJECT_CHOICES = (("hold_red", 0.25), ("hold_blue", 0.25), ("hold_green", 0.12), ("", 0.38))
HAT_PROBABILITY = 0.35
OBJECT_COLOURS = {"hold_red": (225, 35, 35), "hold_blue": (35, 70, 230), "hold_green": (40, 190, 60)}
HAT_COLOUR = (235, 205, 40)


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


# ---------------------------------------------------------------------------------------------
# Presets


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that shapes a generated dataset. Presets are instances; ``**overrides`` of
    :func:`make_synthetic` replace fields by name."""

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
        try:
            items = spec.label_ids.items() if isinstance(spec.label_ids, dict) else spec.label_ids
            pairs = [(str(name), int(new)) for name, new in items]
        except (TypeError, ValueError):
            raise ConfigError(f"label_ids must be (name, id) pairs, got {spec.label_ids!r}") from None
        names = [n for n, _ in pairs]
        unknown = sorted(set(names) - set(CLASS_BY_NAME))
        if unknown:
            raise ConfigError(f"label_ids: unknown classes {unknown}; known: {sorted(CLASS_BY_NAME)}")
        if len(set(names)) != len(names) or len({i for _, i in pairs}) != len(pairs):
            raise ConfigError("label_ids: each class and each id must appear once")
        missing = [a for a in ARM_CLASSES if a not in names]
        if missing:
            raise ConfigError(f"label_ids must keep every arm class (each person has one): add {missing}")
        spec = dataclasses.replace(spec, label_ids=tuple(pairs))
    return spec


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


# ---------------------------------------------------------------------------------------------
# Scene plan: everything random is drawn here, from one generator per video, before drawing.


@dataclass
class ActorPlan:
    """One figure: constant looks and per-episode labels and phases."""

    person_id: int
    cx0: float  # pixels
    cy0: float
    rx: float
    ry: float
    side: float  # +1: arm on the right, -1: left
    body_colours: np.ndarray  # (2, 3) stripe colours
    skin: np.ndarray  # (3,)
    stripe_width: float
    episode_starts: np.ndarray  # (E,) first frame of each episode
    arm: list[str]  # (E,) arm class name
    body: list[str]  # (E,) body class name or ""
    obj: list[str]  # (E,) object class name or ""
    hat: np.ndarray  # (E,) bool
    arm_rest: np.ndarray  # (E,) radians, 0 = pointing down
    arm_phase: np.ndarray  # (E,)
    body_phase: np.ndarray  # (E,)
    object_colours: np.ndarray  # (E, 3)

    def labels_at(self, episode: int) -> list[int]:
        names = [self.arm[episode], self.body[episode], self.obj[episode]]
        names += ["wear_hat"] if self.hat[episode] else []
        return sorted(CLASS_BY_NAME[n].id for n in names if n)


@dataclass
class VideoPlan:
    video_id: str
    split: str
    num_frames: int
    actors: list[ActorPlan]
    hidden: np.ndarray  # (T,) bool: frames with nobody in the picture
    empty_keyframes: list[int] = field(default_factory=list)
    excluded_keyframes: list[int] = field(default_factory=list)
    seed: int = 0  # seeds the background and pixel noise


_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))


def _video_id(rng: np.random.Generator, leading_dash: bool) -> str:
    """An 11-character YouTube-like id (AVA's ids; some start with '-', e.g. -5KQ66BBWC4)."""
    chars = _ID_ALPHABET[rng.integers(0, 62, 11)]  # letters and digits
    if leading_dash:
        chars[0] = "-"
    return "".join(chars.tolist())


def _choose(rng: np.random.Generator, choices: tuple[tuple[str, float], ...], n: int) -> list[str]:
    names = [c[0] for c in choices]
    probs = np.array([c[1] for c in choices])
    return [names[i] for i in rng.choice(len(names), size=n, p=probs / probs.sum())]


def _muted(rng: np.random.Generator, n: int, lo: float = 50, hi: float = 200,
           saturation: float = 0.45) -> np.ndarray:
    """``(n, 3)`` low-saturation colours, so figures never look like the coloured objects."""
    colours = rng.uniform(lo, hi, (n, 3))
    grey = colours.mean(axis=1, keepdims=True)
    return grey + saturation * (colours - grey)


def _arm_side(drawn: float, slot: float, slot_width: float, width: int) -> float:
    """Figures in the outer slots hold their arm towards the centre, so a held object never
    leaves the picture; the others use the ``drawn`` side."""
    if slot_width < width and slot < slot_width:
        return 1.0
    if slot_width < width and slot > width - slot_width:
        return -1.0
    return drawn


def _plan_actor(rng: np.random.Generator, spec: SyntheticSpec, person_id: int, slot: float,
                slot_width: float, num_frames: int) -> ActorPlan:
    H, fps = spec.height, spec.fps
    ry = rng.uniform(0.16, 0.21) * H
    rx = ry * rng.uniform(0.48, 0.6)
    # Episodes of whole seconds that switch half-way between keyframes.
    lengths = rng.integers(spec.episode_seconds[0], spec.episode_seconds[1] + 1, spec.duration + 1)
    bounds = (np.concatenate([[0.0], 0.5 + np.cumsum(lengths)]) * fps).astype(np.int64)
    starts = bounds[bounds < num_frames]
    starts[0] = 0
    n = len(starts)
    return ActorPlan(
        person_id=person_id,
        cx0=slot + rng.uniform(-0.12, 0.12) * slot_width,
        cy0=rng.uniform(0.52, 0.6) * H,
        rx=rx,
        ry=ry,
        side=_arm_side(float(rng.choice([-1.0, 1.0])), slot, slot_width, spec.width),
        body_colours=_muted(rng, 2),
        skin=np.array([(224, 172, 105), (198, 134, 66), (141, 85, 36), (241, 194, 125)])[
            rng.integers(0, 4)
        ].astype(np.float64),
        stripe_width=max(1.5, ry * rng.uniform(0.18, 0.3)),
        episode_starts=starts,
        arm=_choose(rng, ARM_CHOICES, n),
        body=_choose(rng, BODY_CHOICES, n),
        obj=_choose(rng, OBJECT_CHOICES, n),
        hat=rng.random(n) < HAT_PROBABILITY,
        arm_rest=rng.uniform(1.15, 2.0, n),
        arm_phase=rng.uniform(0, 2 * np.pi, n),
        body_phase=rng.uniform(0, 2 * np.pi, n),
        object_colours=rng.uniform(-15, 15, (n, 3)),
    )


def keyframe_timestamps(spec: SyntheticSpec) -> np.ndarray:
    """Integer keyframe times ``segment_start + 2 .. segment_start + duration - 2`` (AVA: 902..1798)."""
    return np.arange(spec.segment_start + 2, spec.segment_start + spec.duration - 1, dtype=np.int64)


def keyframe_index(timestamp: np.ndarray, spec: SyntheticSpec) -> np.ndarray:
    """0-based frame index of keyframe ``t``: ``fps * (t - segment_start)`` (t=902 -> 60)."""
    return (np.asarray(timestamp, dtype=np.int64) - spec.segment_start) * spec.fps


def plan_dataset(spec: SyntheticSpec, seed: int) -> list[VideoPlan]:
    """Draw every video's plan. Deterministic in ``(spec, seed)``."""
    root = np.random.SeedSequence(seed)
    num_videos = spec.num_train_videos + spec.num_val_videos
    children = root.spawn(num_videos + 1)
    T = spec.duration * spec.fps
    plans: list[VideoPlan] = []
    used_ids: set[str] = set()
    for v in range(num_videos):
        rng = np.random.default_rng(children[v])
        video_id = _video_id(rng, leading_dash=(v == 0))
        while video_id in used_ids:
            video_id = _video_id(rng, leading_dash=False)
        used_ids.add(video_id)
        n = int(rng.integers(spec.actors_per_video[0], spec.actors_per_video[1] + 1))
        slot_width = spec.width / n
        slots = (np.arange(n) + 0.5) * slot_width
        actors = [_plan_actor(rng, spec, i, slots[i], slot_width, T) for i in range(n)]
        # Draw nearer (lower) figures last so they occlude farther ones.
        actors.sort(key=lambda a: a.cy0)
        split = "train" if v < spec.num_train_videos else "val"
        plans.append(VideoPlan(video_id, split, T, actors, np.zeros(T, bool),
                               seed=int(rng.integers(0, 2**31 - 1))))
    # Empty and excluded keyframes, spread over each split's (video, keyframe) pairs.
    rng = np.random.default_rng(children[-1])
    stamps = keyframe_timestamps(spec)
    for split, count_empty, count_excl in (
        ("train", spec.empty_keyframes_per_split, spec.excluded_keyframes_per_split),
        ("val", spec.empty_keyframes_per_split, spec.excluded_keyframes_per_split),
    ):
        videos = [p for p in plans if p.split == split]
        pairs = [(p, int(t)) for p in videos for t in stamps]
        want = min(count_empty + count_excl, max(len(pairs) - 1, 0))
        picks = rng.choice(len(pairs), size=want, replace=False) if want else []
        for rank, pick in enumerate(picks):
            plan, t = pairs[int(pick)]
            if rank < min(count_empty, want):
                plan.empty_keyframes.append(t)
                k = int(keyframe_index(t, spec))
                plan.hidden[max(0, k - spec.fps // 2) : k + spec.fps // 2] = True
            else:
                plan.excluded_keyframes.append(t)
    for plan in plans:
        plan.empty_keyframes.sort()
        plan.excluded_keyframes.sort()
    return plans


# ---------------------------------------------------------------------------------------------
# Per-frame tracks and boxes (vectorised over frames)


@dataclass
class ActorTracks:
    """Per-frame state of one actor, each array ``(T,)``."""

    cx: np.ndarray
    cy: np.ndarray
    theta: np.ndarray  # arm angle, 0 = down, pi/2 = sideways
    visible: np.ndarray
    episode: np.ndarray  # episode index per frame
    obj: np.ndarray  # 0 none, 1 red, 2 blue, 3 green
    hat: np.ndarray


_OBJECT_CODES = {"": 0, "hold_red": 1, "hold_blue": 2, "hold_green": 3}
ARM_AMPLITUDE = 0.9  # radians
BOUNCE_AMPLITUDE = 0.04  # fraction of the frame height
SWAY_AMPLITUDE = 0.05  # fraction of the frame width


def _cycle(k: np.ndarray, period: Union[int, np.ndarray]) -> np.ndarray:
    """Fraction of a cycle at frame ``k`` for integer ``period`` frames (0: no motion).

    Computed from ``k mod period`` so frames a whole period apart get bit-identical poses:
    the frozen look to the Slow pathway is exact, not just up to rounding.
    """
    period = np.broadcast_to(np.asarray(period, dtype=np.int64), k.shape)
    safe = np.maximum(period, 1)
    return np.where(period > 0, np.mod(k, safe) / safe, 0.0)


def actor_tracks(actor: ActorPlan, hidden: np.ndarray, spec: SyntheticSpec) -> ActorTracks:
    """Positions and arm angle per frame. A still class uses the pose of a random phase of its
    fast counterpart, so the Slow pathway cannot tell them apart."""
    T = len(hidden)
    k = np.arange(T, dtype=np.int64)
    ep = np.searchsorted(actor.episode_starts, k, side="right") - 1
    tau = slow_stride(spec)
    arm_period = {"fast_wave": tau, "slow_wave": spec.slow_wave_period, "arm_still": 0}
    periods = np.array([arm_period[a] for a in actor.arm], dtype=np.int64)[ep]
    theta = actor.arm_rest[ep] + ARM_AMPLITUDE * np.sin(
        2 * np.pi * _cycle(k, periods) + actor.arm_phase[ep])
    body = np.array(actor.body)[ep]
    body_phase = actor.body_phase[ep]
    sway = np.where(body == "slow_sway",
                    np.sin(2 * np.pi * _cycle(k, spec.sway_period) + body_phase), 0.0)
    # fast_bounce oscillates with period tau; no body motion freezes a random phase of it.
    bounce_period = np.where(body == "fast_bounce", tau, 0)
    bounce = np.where(body == "slow_sway", 0.0,
                      np.sin(2 * np.pi * _cycle(k, bounce_period) + body_phase))
    return ActorTracks(
        cx=actor.cx0 + SWAY_AMPLITUDE * spec.width * sway,
        cy=actor.cy0 + BOUNCE_AMPLITUDE * spec.height * bounce,
        theta=theta,
        visible=~hidden,
        episode=ep,
        obj=np.array([_OBJECT_CODES[o] for o in actor.obj])[ep],
        hat=actor.hat[ep],
    )


def _geometry(actor: ActorPlan, tr: ActorTracks) -> dict[str, np.ndarray]:
    """Part positions in pixels (continuous coordinates, pixel centres at ``j + 0.5``)."""
    hr = 0.72 * actor.rx
    head_y = tr.cy - actor.ry - 0.8 * hr
    sx = tr.cx + actor.side * 0.7 * actor.rx
    sy = tr.cy - 0.55 * actor.ry
    arm_len = 1.05 * actor.ry
    ex = sx + actor.side * arm_len * np.sin(tr.theta)
    ey = sy + arm_len * np.cos(tr.theta)
    return {"hr": np.broadcast_to(hr, tr.cx.shape), "head_y": head_y, "sx": sx, "sy": sy,
            "ex": ex, "ey": ey, "arm_hw": np.broadcast_to(max(1.0, 0.34 * actor.rx), tr.cx.shape),
            "hand_r": np.broadcast_to(max(1.2, 0.42 * actor.rx), tr.cx.shape),
            "obj_hs": np.broadcast_to(max(1.6, 0.5 * actor.rx), tr.cx.shape)}


def actor_boxes(actor: ActorPlan, tr: ActorTracks, spec: SyntheticSpec) -> np.ndarray:
    """``(T, 4)`` normalised ``x1, y1, x2, y2`` person boxes (body, head, hat, arm, object)."""
    g = _geometry(actor, tr)
    reach = np.where(tr.obj > 0, g["obj_hs"], g["hand_r"])
    top = np.where(tr.hat, g["head_y"] - 1.9 * g["hr"], g["head_y"] - g["hr"])
    x1 = np.minimum.reduce([tr.cx - actor.rx, tr.cx - g["hr"], g["ex"] - reach, g["sx"] - g["arm_hw"]])
    x2 = np.maximum.reduce([tr.cx + actor.rx, tr.cx + g["hr"], g["ex"] + reach, g["sx"] + g["arm_hw"]])
    y1 = np.minimum(top, g["ey"] - reach)
    y2 = np.maximum(tr.cy + actor.ry, g["ey"] + reach)
    boxes = np.stack([x1 / spec.width, y1 / spec.height, x2 / spec.width, y2 / spec.height], 1)
    return np.clip(boxes, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Drawing (vectorised over a chunk of frames and all pixels)


def _background(rng: np.random.Generator, spec: SyntheticSpec) -> tuple[np.ndarray, int]:
    """A smooth random texture larger than the frame, panned over time. Returns it and the margin."""
    margin = max(4, spec.width // 8)
    h, w = spec.height + 2 * margin, spec.width + 2 * margin
    coarse = rng.uniform(0, 1, (max(2, h // 10), max(2, w // 10), 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    tint = _muted(rng, 1, 70, 170, 0.5)[0].astype(np.float32)
    return np.clip(tint + 70 * (smooth - 0.5), 0, 255), margin


def render_frames(plan: VideoPlan, tracks: list[ActorTracks], spec: SyntheticSpec,
                  start: int, stop: int, background: np.ndarray, margin: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Frames ``start..stop-1`` as ``(C, H, W, 3)`` uint8 RGB.

    Each actor is drawn only inside the window its boxes cover over the chunk, so the cost
    scales with the actors' area rather than the frame's.
    """
    H, W, fps = spec.height, spec.width, spec.fps
    k = np.arange(start, stop)
    C = len(k)
    # Background pans on a slow ellipse; per-frame sensor noise on top.
    ox = np.round(margin + margin * 0.9 * np.sin(2 * np.pi * k / (7.0 * fps))).astype(int)
    oy = np.round(margin + margin * 0.6 * np.cos(2 * np.pi * k / (11.0 * fps))).astype(int)
    frames = np.stack([background[y : y + H, x : x + W] for x, y in zip(ox, oy)])
    scale = np.array([W, H, W, H], dtype=np.float64)
    for actor, tr in zip(plan.actors, tracks):
        visible = tr.visible[start:stop]
        if not visible.any():
            continue
        box = actor_boxes(actor, tr, spec)[start:stop][visible] * scale
        x0, y0 = (max(0, int(np.floor(box[:, i].min())) - 1) for i in (0, 1))
        x1, y1 = min(W, int(np.ceil(box[:, 2].max())) + 1), min(H, int(np.ceil(box[:, 3].max())) + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        _draw_actor(frames[:, y0:y1, x0:x1], x0, y0, actor, tr, start, stop)
    frames += spec.noise_std * rng.standard_normal((C, H, W, 3), dtype=np.float32)
    return np.clip(frames + 0.5, 0, 255).astype(np.uint8)


def _draw_actor(view: np.ndarray, x0: int, y0: int, actor: ActorPlan, tr: ActorTracks,
                start: int, stop: int) -> None:
    """Paint one actor into ``view`` ``(C, h, w, 3)``, the window at pixel ``(x0, y0)``."""
    h, w = view.shape[1:3]
    X = (np.arange(x0, x0 + w, dtype=np.float32) + 0.5)[None, None, :]
    Y = (np.arange(y0, y0 + h, dtype=np.float32) + 0.5)[None, :, None]
    g = _geometry(actor, tr)

    def col(a: np.ndarray) -> np.ndarray:
        return np.asarray(a)[start:stop].astype(np.float32)[:, None, None]

    vis = tr.visible[start:stop][:, None, None]

    def paint(mask: np.ndarray, colour: np.ndarray) -> None:
        # colour: (3,), (C, 3) per frame, or (C, h, w, 3)
        colour = np.asarray(colour, dtype=np.float32)
        if colour.ndim == 2:
            colour = colour[:, None, None, :]
        np.copyto(view, np.broadcast_to(colour, view.shape), where=(mask & vis)[..., None])

    cx, cy = col(tr.cx), col(tr.cy)
    # Body: striped ellipse; the stripes move with the body.
    body = ((X - cx) / actor.rx) ** 2 + ((Y - cy) / actor.ry) ** 2 <= 1.0
    stripes = np.broadcast_to((np.floor((Y - cy) / actor.stripe_width) % 2).astype(bool), body.shape)
    paint(body, np.where(stripes[..., None], actor.body_colours[0], actor.body_colours[1]))
    hr, head_y = col(g["hr"]), col(g["head_y"])
    paint((X - cx) ** 2 + (Y - head_y) ** 2 <= hr**2, actor.skin)
    hat = (np.abs(X - cx) <= 1.1 * hr) & (Y >= head_y - 1.9 * hr) & (Y <= head_y - 0.45 * hr)
    paint(hat & col(tr.hat).astype(bool), np.array(HAT_COLOUR))
    # Arm: a thick segment from the shoulder to the hand.
    sx, sy, ex, ey = col(g["sx"]), col(g["sy"]), col(g["ex"]), col(g["ey"])
    dx, dy = ex - sx, ey - sy
    u = np.clip(((X - sx) * dx + (Y - sy) * dy) / (dx**2 + dy**2 + 1e-9), 0.0, 1.0)
    # A dark sleeve and a skin-coloured hand: the arm stands out from the mid-grey scene.
    paint((X - sx - u * dx) ** 2 + (Y - sy - u * dy) ** 2 <= col(g["arm_hw"]) ** 2,
          actor.body_colours[0] * 0.45)
    # Held object at the hand.
    obj, hs = col(tr.obj), col(g["obj_hs"])
    paint(((X - ex) ** 2 + (Y - ey) ** 2 <= col(g["hand_r"]) ** 2) & (obj == 0), actor.skin)
    jitter = actor.object_colours[tr.episode[start:stop]]
    ax, ay = np.abs(X - ex), np.abs(Y - ey)
    shapes = {
        "hold_red": (1, (ax <= hs) & (ay <= hs)),  # square
        "hold_blue": (2, ax**2 + ay**2 <= hs**2),  # disc
        "hold_green": (3, ax + ay <= 1.3 * hs),  # diamond
    }
    for name, (code, shape) in shapes.items():
        if (obj == code).any():
            paint(shape & (obj == code), np.clip(np.array(OBJECT_COLOURS[name]) + jitter, 0, 255))


# ---------------------------------------------------------------------------------------------
# Annotation tables


def _round_boxes(boxes: np.ndarray) -> np.ndarray:
    """AVA writes boxes with 3 decimals."""
    return np.round(boxes, 3)


def annotation_table(plans: list[VideoPlan], spec: SyntheticSpec, split: str) -> pd.DataFrame:
    """Gt rows ``video_id timestamp x1 y1 x2 y2 action_id person_id`` for one split, one row per
    (box, action), sorted; excluded and empty keyframes have no rows."""
    stamps = keyframe_timestamps(spec)
    index = keyframe_index(stamps, spec)
    rows = []
    # Original class id -> the id written (classes left out of a custom label map are dropped).
    new_id = {CLASS_BY_NAME[c.name].id: c.id for c in dataset_classes(spec.label_ids)}
    for plan in (p for p in plans if p.split == split):
        keep = ~np.isin(stamps, plan.excluded_keyframes) & ~plan.hidden[index]
        for actor in plan.actors:
            tr = actor_tracks(actor, plan.hidden, spec)
            boxes = _round_boxes(actor_boxes(actor, tr, spec)[index])
            for t, box, ep in zip(stamps[keep], boxes[keep], tr.episode[index][keep]):
                for action in actor.labels_at(int(ep)):
                    if action in new_id:
                        rows.append((plan.video_id, int(t), *box.tolist(), new_id[action],
                                     actor.person_id))
    df = pd.DataFrame(rows, columns=["video_id", "timestamp", "x1", "y1", "x2", "y2",
                                     "action_id", "person_id"])
    df = df.astype({"timestamp": np.int64, "action_id": np.int64, "person_id": np.int64})
    return df.sort_values(["video_id", "timestamp", "person_id", "action_id"],
                          kind="stable").reset_index(drop=True)


def predicted_boxes_table(plans: list[VideoPlan], spec: SyntheticSpec, split: str,
                          seed: int) -> pd.DataFrame:
    """Detector-like person boxes on every keyframe of ``split``: true boxes with jitter and
    misses (scores mostly > 0.8), plus false positives (scores mostly low). Action column -1."""
    rng = np.random.default_rng([seed, 7, 0 if split == "train" else 1])
    stamps = keyframe_timestamps(spec)
    index = keyframe_index(stamps, spec)
    parts = []
    for plan in (p for p in plans if p.split == split):
        true = []
        for actor in plan.actors:
            tr = actor_tracks(actor, plan.hidden, spec)
            boxes = actor_boxes(actor, tr, spec)[index]
            visible = tr.visible[index]
            true.append(pd.DataFrame({"timestamp": stamps[visible], **dict(zip(
                ["x1", "y1", "x2", "y2"], boxes[visible].T))}))
        det = pd.concat(true, ignore_index=True)
        det = det[rng.random(len(det)) >= spec.miss_rate]
        size = np.stack([det.x2 - det.x1, det.y2 - det.y1] * 2, 1)
        coords = det[["x1", "y1", "x2", "y2"]].to_numpy() + rng.normal(0, spec.box_jitter, size.shape) * size
        scores = rng.beta(12.0, 1.0, len(det))
        # False positives: random person-shaped boxes, mostly low scores.
        n_fp = rng.poisson(spec.false_positives_per_keyframe, len(stamps))
        fp_t = np.repeat(stamps, n_fp)
        w = rng.uniform(0.1, 0.3, len(fp_t))
        h = rng.uniform(0.3, 0.7, len(fp_t))
        x1 = rng.uniform(0, 1 - w)
        y1 = rng.uniform(0, 1 - h)
        fp = np.stack([x1, y1, x1 + w, y1 + h], 1)
        fp_scores = rng.beta(1.3, 3.5, len(fp_t))
        parts.append(pd.DataFrame({
            "video_id": plan.video_id,
            "timestamp": np.concatenate([det.timestamp.to_numpy(), fp_t]),
            **dict(zip(["x1", "y1", "x2", "y2"], np.concatenate([coords, fp]).T)),
            "score": np.concatenate([scores, fp_scores]),
        }))
    columns = ["video_id", "timestamp", "x1", "y1", "x2", "y2", "score"]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {c: pd.Series(dtype=str if c == "video_id" else np.float64) for c in columns})
    boxes = _round_boxes(np.clip(df[["x1", "y1", "x2", "y2"]].to_numpy(), 0.0, 1.0))
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 0.001)
    df[["x1", "y1", "x2", "y2"]] = np.minimum(boxes, 1.0)
    df = df[(df.x2 > df.x1) & (df.y2 > df.y1)]
    df["score"] = np.round(df["score"].to_numpy(), 4)
    df["action_id"] = np.int64(-1)
    df["timestamp"] = df["timestamp"].astype(np.int64)
    return df.sort_values(["video_id", "timestamp", "score"], ascending=[True, True, False],
                          kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Configs and metadata


def config_dict(spec: SyntheticSpec, root: PathLike, *, arch: str = "slowfast") -> dict:
    """The ``config.yaml`` settings for this dataset (``arch`` "slowfast" or "slow").

    The Slow-only baseline reads ``num_frames / alpha`` frames at ``tau`` frames apart, the
    same temporal resolution as the SlowFast model's Slow pathway.
    """
    short = min(spec.width, spec.height)
    evaluated = [c.id for c in dataset_classes(spec.label_ids) if c.evaluated]
    tau = slow_stride(spec)
    jitter = list(spec.train_jitter_scales) if any(spec.train_jitter_scales) else [short, int(round(short * 1.25))]
    data = {
        "root": str(Path(root).resolve()),
        # Read JPEG folders when they were written, else decode the videos.
        "source": "frames" if spec.write_frames or not spec.write_videos else "video",
        "classes": evaluated,
        "fps": float(spec.fps),
        "segment_start": float(spec.segment_start),
        "segment_end": float(spec.segment_start + spec.duration),
        "num_frames": spec.num_frames,
        "sampling_rate": spec.sampling_rate,
        "train_use_detections": False,
        "train_jitter_scales": jitter,
        "train_crop_size": spec.train_crop_size or short,
        "test_short_side": spec.test_short_side or short,
        "train_flip": True,
        # Colour jitter could blur the colour-defined classes; off for this benchmark.
        "train_color_jitter": False,
        "num_workers": spec.num_workers,
    }
    if arch == "slow":
        data["num_frames"] = spec.num_frames // spec.alpha
        data["sampling_rate"] = tau
    return {
        "data": data,
        "model": {
            "arch": arch,
            "depth": spec.depth,
            "width_per_group": spec.width_per_group,
            "alpha": spec.alpha,
            "beta_inv": spec.beta_inv,
            "num_classes": len(evaluated),
            "dropout": 0.3,
        },
        "solver": {
            "base_lr": spec.base_lr,
            "schedule": "cosine",
            "max_epoch": spec.max_epoch,
            "warmup_epochs": min(1.0, spec.max_epoch / 4),
            "warmup_start_lr": spec.base_lr / 10,
            "weight_decay": 1e-5,
            "batch_size": spec.batch_size,
            "precise_bn_batches": spec.precise_bn_batches,
        },
        "train": {"amp": False, "eval_every_epochs": 1.0, "log_every_iters": 5},
        "test": {"batch_size": spec.batch_size},
    }


def _meta(spec: SyntheticSpec, preset: str, seed: int, plans: list[VideoPlan]) -> dict:
    tau = slow_stride(spec)
    fast, slow = slow_frame_offsets(spec.num_frames, spec.sampling_rate, spec.alpha)
    classes = dataset_classes(spec.label_ids)
    return {
        "generator_version": GENERATOR_VERSION,
        "preset": preset,
        "seed": seed,
        "spec": dataclasses.asdict(spec),
        "classes": [dataclasses.asdict(c) for c in classes],
        "evaluated_class_ids": [c.id for c in classes if c.evaluated],
        "motion_class_ids": motion_class_ids(label_ids=spec.label_ids),
        "fast_motion_class_ids": motion_class_ids("fast", spec.label_ids),
        "slow_motion_class_ids": motion_class_ids("slow", spec.label_ids),
        "appearance_class_ids": [c.id for c in classes if c.cue == "appearance"],
        "aliasing": {
            "tau_frames": tau,
            "fast_motion_period_frames": tau,
            "fast_offsets": fast.tolist(),
            "slow_offsets": slow.tolist(),
            "note": "fast_wave/fast_bounce repeat every tau frames, the slow frames' spacing: "
                    "every slow frame shows the same pose",
        },
        "videos": [
            {"video_id": p.video_id, "split": p.split, "num_frames": p.num_frames,
             "num_actors": len(p.actors), "empty_keyframes": p.empty_keyframes,
             "excluded_keyframes": p.excluded_keyframes}
            for p in plans
        ],
    }


# ---------------------------------------------------------------------------------------------
# The generator


def _write_media(plan: VideoPlan, spec: SyntheticSpec, root: Path, chunk: int = 30) -> None:
    rng = np.random.default_rng(plan.seed)
    background, margin = _background(rng, spec)
    tracks = [actor_tracks(a, plan.hidden, spec) for a in plan.actors]
    frame_dir = root / "frames" / plan.video_id
    if spec.write_frames:
        frame_dir.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality]
    with contextlib.ExitStack() as stack:
        writer = None
        if spec.write_videos:
            writer = stack.enter_context(open_video_writer(
                root / "videos" / f"{plan.video_id}.mp4", width=spec.width, height=spec.height,
                fps=spec.fps, crf=spec.crf, gop=spec.fps))
        for start in range(0, plan.num_frames, chunk):
            stop = min(start + chunk, plan.num_frames)
            frames = render_frames(plan, tracks, spec, start, stop, background, margin, rng)
            if writer is not None:
                writer.write(frames)
            if spec.write_frames:
                for i, frame in enumerate(frames):
                    name = frame_dir / f"{plan.video_id}_{start + i + 1:06d}.jpg"
                    if not cv2.imwrite(str(name), frame[..., ::-1], params):
                        raise AvadetError(f"{name}: cannot write JPEG")


def _media_task(args: tuple[VideoPlan, SyntheticSpec, Path]) -> str:
    _write_media(*args)
    return args[0].video_id


def _write_all_media(plans: list[VideoPlan], spec: SyntheticSpec, root: Path, workers: int) -> None:
    tasks = [(plan, spec, root) for plan in plans]
    if workers <= 1 or len(plans) == 1:
        for task in tqdm(tasks, desc="synthetic videos", unit="video", disable=len(tasks) < 4):
            _media_task(task)
        return
    with multiprocessing.get_context("spawn").Pool(min(workers, len(plans))) as pool:
        for _ in tqdm(pool.imap_unordered(_media_task, tasks), total=len(tasks),
                      desc="synthetic videos", unit="video"):
            pass


def write_annotations(plans: list[VideoPlan], spec: SyntheticSpec, root: Path, seed: int) -> None:
    """Every annotation file of the dataset under ``root/annotations``."""
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        write_ava_csv(ann / f"ava_{split}_v2.2.csv", annotation_table(plans, spec, split), "person_id")
        write_ava_csv(ann / f"ava_{split}_predicted_boxes.csv",
                      predicted_boxes_table(plans, spec, split, seed), "score")
        excluded = [(p.video_id, t) for p in plans if p.split == split for t in p.excluded_keyframes]
        with atomic_write(ann / f"ava_{split}_excluded_timestamps_v2.2.csv") as handle:
            handle.write("".join(f"{v},{t:04d}\n" for v, t in sorted(excluded)))
    with atomic_write(ann / "ava_action_list_v2.2.pbtxt") as handle:
        handle.write(synthetic_labelmap(label_ids=spec.label_ids).to_pbtxt())
    with atomic_write(ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt") as handle:
        handle.write(synthetic_labelmap(evaluated_only=True, label_ids=spec.label_ids).to_pbtxt())


def _same_dataset(out_dir: Path, meta: dict) -> bool:
    try:
        old = json.loads((out_dir / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all(old.get(k) == json.loads(json.dumps(meta[k])) for k in
               ("generator_version", "preset", "seed", "spec"))


def make_synthetic(out_dir: PathLike, *, preset: str = "tiny", seed: int = 0,
                   overwrite: bool = False, workers: int = 1, **overrides: Any) -> Path:
    """Generate a complete synthetic AVA-format dataset in ``out_dir``; return its path.

    Args:
        out_dir: the dataset root (created; must be absent or empty unless it already holds
            this very dataset, which is then reused, or ``overwrite`` is set).
        preset: "tiny" (tests, ~1 s), "cpu" (trains in minutes on 2 cores), "gpu".
        seed: the same seed and settings give byte-identical annotation files and frames.
        overwrite: replace an existing different dataset in ``out_dir``.
        workers: processes drawing and encoding videos in parallel (the output does not
            depend on it: each video has its own random stream).
        **overrides: :class:`SyntheticSpec` fields, e.g. ``num_train_videos=4, width=96``.
    Returns:
        ``out_dir`` (absolute). The dataset is built in a temporary sibling folder and moved
        into place at the end, so an interrupted run leaves no half dataset behind.
    """
    spec = resolve_spec(preset, **overrides)
    out_dir = Path(out_dir).expanduser().resolve()
    plans = plan_dataset(spec, seed)
    meta = _meta(spec, preset, seed, plans)
    if out_dir.exists() and any(out_dir.iterdir()):
        if _same_dataset(out_dir, meta):
            LOG.info("%s already holds this synthetic dataset; reusing it", out_dir)
            return out_dir
        if not overwrite:
            raise AvadetError(f"{out_dir}: folder is not empty and holds no matching synthetic "
                              "dataset; pick another folder or overwrite it (--overwrite)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    started = time.perf_counter()
    try:
        write_annotations(plans, spec, tmp, seed)
        if spec.write_frames or spec.write_videos:
            _write_all_media(plans, spec, tmp, workers)
        T = spec.duration * spec.fps
        for split in ("train", "val") if spec.write_frames else ():
            ids = [p.video_id for p in plans if p.split == split]
            write_frame_list(tmp / "frame_lists" / f"{split}.csv", ids, [T] * len(ids))
        for name, arch in (("config.yaml", "slowfast"), ("config_slow.yaml", "slow")):
            with atomic_write(tmp / name) as handle:
                yaml.safe_dump(config_dict(spec, out_dir, arch=arch), handle, sort_keys=False)
            load_config(tmp / name)  # must load cleanly; fails loudly if the schema moved
        with atomic_write(tmp / META_NAME) as handle:
            json.dump(meta, handle, indent=1)
            handle.write("\n")
        if out_dir.exists():
            shutil.rmtree(out_dir) if any(out_dir.iterdir()) else out_dir.rmdir()
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    LOG.info("synthetic dataset %s (%s, seed %d) in %.1f s", out_dir, preset, seed,
             time.perf_counter() - started)
    return out_dir


def load_meta(root: PathLike) -> dict:
    """The ``synthetic_meta.json`` of a generated dataset."""
    path = Path(root) / META_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AvadetError(f"{path}: not found; is {root} a synthetic dataset?") from None


#: Class groups reported separately: what a model must see to tell the classes apart.
CLASS_GROUPS = ("all", "fast_motion", "slow_motion", "appearance")


def class_groups(meta: dict) -> dict[str, list[int]]:
    """Evaluated class ids per group of :data:`CLASS_GROUPS`, from a dataset's metadata
    (:func:`load_meta`): ``fast_motion`` are the classes frozen for a Slow pathway."""
    evaluated = set(meta["evaluated_class_ids"])
    return {
        "all": sorted(evaluated),
        "fast_motion": sorted(evaluated & set(meta["fast_motion_class_ids"])),
        "slow_motion": sorted(evaluated & set(meta["slow_motion_class_ids"])),
        "appearance": sorted(evaluated & set(meta["appearance_class_ids"])),
    }


def group_mean_ap(per_class: dict[int, float], groups: dict[str, list[int]]) -> dict[str, float]:
    """Mean AP over each group's classes that have an AP (NaN ones are left out, as the mAP
    leaves out classes without gt); NaN for a group with none."""
    out = {}
    for name, ids in groups.items():
        aps = [per_class[c] for c in ids if c in per_class and per_class[c] == per_class[c]]
        out[name] = sum(aps) / len(aps) if aps else float("nan")
    return out
