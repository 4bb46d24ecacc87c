"""From a plan to pixels: per-frame motion tracks, the parts' geometry, person boxes, and the
painted frames.

The scene: textured figures (striped ellipse body, head, one arm) on a smoothly panning, noisy
background. Everything is vectorised over frames (tracks, boxes) or over a chunk of frames and
all pixels of an actor's window (painting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import cv2
import numpy as np

from avadet.synthetic.plan import ActorPlan, VideoPlan, muted_colours
from avadet.synthetic.spec import SyntheticSpec, slow_stride

OBJECT_COLOURS = {"hold_red": (225, 35, 35), "hold_blue": (35, 70, 230), "hold_green": (40, 190, 60)}
HAT_COLOUR = (235, 205, 40)
_OBJECT_CODES = {"": 0, "hold_red": 1, "hold_blue": 2, "hold_green": 3}
ARM_AMPLITUDE = 0.9  # radians
BOUNCE_AMPLITUDE = 0.04  # fraction of the frame height
SWAY_AMPLITUDE = 0.05  # fraction of the frame width


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


def _cycle(k: np.ndarray, period: Union[int, np.ndarray]) -> np.ndarray:
    """Fraction of a cycle at frame ``k`` for integer ``period`` frames (0: no motion).

    Computed from ``k mod period`` so frames a whole period apart get bit-identical poses:
    the frozen look to the Slow pathway is exact, not just up to rounding.
    """
    period = np.broadcast_to(np.asarray(period, dtype=np.int64), k.shape)
    safe = np.maximum(period, 1)
    return np.where(period > 0, np.mod(k, safe) / safe, 0.0)


def actor_tracks(actor: ActorPlan, hidden: np.ndarray, spec: SyntheticSpec) -> ActorTracks:
    """Positions and arm angle per frame (``hidden``: ``(T,)`` bool). A still class uses the
    pose of a random phase of its fast counterpart, so the Slow pathway cannot tell them apart."""
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
    """Part positions in pixels (continuous coordinates, pixel centres at ``j + 0.5``), each
    ``(T,)``: head radius and centre height, shoulder, hand, arm half-width, hand radius and
    the held object's half-size."""
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


def make_background(rng: np.random.Generator, spec: SyntheticSpec) -> tuple[np.ndarray, int]:
    """A smooth random texture larger than the frame, panned over time: ``(H + 2m, W + 2m, 3)``
    float32 grey levels and the margin ``m``."""
    margin = max(4, spec.width // 8)
    h, w = spec.height + 2 * margin, spec.width + 2 * margin
    coarse = rng.uniform(0, 1, (max(2, h // 10), max(2, w // 10), 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    tint = muted_colours(rng, 1, 70, 170, 0.5)[0].astype(np.float32)
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
