"""The scene plan: everything random about a dataset, drawn before a single pixel is painted.

Each video draws from its own generator (spawned from the seed), so videos can be rendered
in any order or in parallel and still come out the same. A plan fixes the actors' looks and
places, their label *episodes* (2-4 s of constant labels that switch half-way between
keyframes, so a clip around a keyframe sees one set of labels), and which keyframes are empty
or excluded. :mod:`avadet.synthetic.render` turns a plan into per-frame motion and pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avadet.synthetic.spec import CLASS_BY_NAME, SyntheticSpec

# Episode label probabilities per group; the empty string is "no label of this group".
ARM_CHOICES = (("fast_wave", 0.35), ("arm_still", 0.35), ("slow_wave", 0.30))
BODY_CHOICES = (("slow_sway", 0.30), ("fast_bounce", 0.30), ("", 0.40))
OBJECT_CHOICES = (("hold_red", 0.25), ("hold_blue", 0.25), ("hold_green", 0.12), ("", 0.38))
HAT_PROBABILITY = 0.35
SKIN_TONES = np.array([(224, 172, 105), (198, 134, 66), (141, 85, 36), (241, 194, 125)])


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
        """Sorted original class ids (:data:`avadet.synthetic.spec.CLASSES`) of ``episode``."""
        names = [self.arm[episode], self.body[episode], self.obj[episode]]
        names += ["wear_hat"] if self.hat[episode] else []
        return sorted(CLASS_BY_NAME[n].id for n in names if n)


@dataclass
class VideoPlan:
    """One video: its actors (drawn far to near), ``num_frames`` frames and the keyframes
    (integer timestamps) that are empty or excluded."""

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


def muted_colours(rng: np.random.Generator, n: int, lo: float = 50, hi: float = 200,
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
    """One actor centred near ``slot`` (pixels), ``slot_width`` wide. The draws happen in the
    order of the fields below: changing it changes every dataset."""
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
        body_colours=muted_colours(rng, 2),
        skin=SKIN_TONES[rng.integers(0, 4)].astype(np.float64),
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


def _plan_video(rng: np.random.Generator, spec: SyntheticSpec, index: int,
                used_ids: set[str]) -> VideoPlan:
    """Video number ``index`` (train videos first) with an id not in ``used_ids`` (added)."""
    T = spec.duration * spec.fps
    video_id = _video_id(rng, leading_dash=(index == 0))
    while video_id in used_ids:
        video_id = _video_id(rng, leading_dash=False)
    used_ids.add(video_id)
    n = int(rng.integers(spec.actors_per_video[0], spec.actors_per_video[1] + 1))
    slot_width = spec.width / n
    slots = (np.arange(n) + 0.5) * slot_width
    actors = [_plan_actor(rng, spec, i, slots[i], slot_width, T) for i in range(n)]
    # Draw nearer (lower) figures last so they occlude farther ones.
    actors.sort(key=lambda a: a.cy0)
    split = "train" if index < spec.num_train_videos else "val"
    return VideoPlan(video_id, split, T, actors, np.zeros(T, bool),
                     seed=int(rng.integers(0, 2**31 - 1)))


def _mark_keyframes(rng: np.random.Generator, spec: SyntheticSpec, plans: list[VideoPlan]) -> None:
    """Pick each split's empty and excluded keyframes among its (video, keyframe) pairs; an
    empty keyframe hides every actor for the second around it."""
    stamps = keyframe_timestamps(spec)
    count_empty, count_excl = spec.empty_keyframes_per_split, spec.excluded_keyframes_per_split
    for split in ("train", "val"):
        videos = [p for p in plans if p.split == split]
        pairs = [(p, int(t)) for p in videos for t in stamps]
        # At least one keyframe per split stays plain (neither empty nor excluded).
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


def plan_dataset(spec: SyntheticSpec, seed: int) -> list[VideoPlan]:
    """Draw every video's plan (train videos first). Deterministic in ``(spec, seed)``."""
    num_videos = spec.num_train_videos + spec.num_val_videos
    # One stream per video and one for the keyframe picks, so what a video draws does not
    # depend on how many numbers the videos before it drew.
    children = np.random.SeedSequence(seed).spawn(num_videos + 1)
    used_ids: set[str] = set()
    plans = [_plan_video(np.random.default_rng(children[v]), spec, v, used_ids)
             for v in range(num_videos)]
    _mark_keyframes(np.random.default_rng(children[-1]), spec, plans)
    return plans
