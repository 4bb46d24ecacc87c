"""Tracks and rendering: the aliasing construction (fast motions frozen for the Slow
pathway, still poses drawn like a random phase of the fast ones) down to the pixels."""

from __future__ import annotations

import numpy as np

from avadet import synthetic as syn


def test_fast_motion_is_frozen_for_the_slow_pathway() -> None:
    """A fast_wave / fast_bounce actor has the same pose in every slow frame of every clip
    and a different pose across the fast frames; slow_wave / slow_sway move in both."""
    spec = syn.resolve_spec("cpu")
    tau = syn.slow_stride(spec)
    fast_off, slow_off = syn.slow_frame_offsets(spec.num_frames, spec.sampling_rate, spec.alpha)
    assert tau == 10 and np.all(np.diff(slow_off) == tau)
    plans = syn.plan_dataset(spec, seed=0)
    centres = syn.keyframe_index(syn.keyframe_timestamps(spec), spec)
    seen = {name: 0 for name in ("fast_wave", "arm_still", "slow_wave", "fast_bounce", "slow_sway")}
    for plan in plans:
        for actor in plan.actors:
            tr = syn.actor_tracks(actor, plan.hidden, spec)
            for c in centres:
                ep = tr.episode[c + fast_off]
                if len(set(ep)) != 1:  # clip straddles an episode switch
                    continue
                arm, body = actor.arm[ep[0]], actor.body[ep[0]]
                slow_theta, fast_theta = tr.theta[c + slow_off], tr.theta[c + fast_off]
                slow_y, fast_y = tr.cy[c + slow_off], tr.cy[c + fast_off]
                slow_x = tr.cx[c + slow_off]
                if arm in ("fast_wave", "arm_still"):
                    assert np.ptp(slow_theta) < 1e-9
                else:
                    assert np.ptp(slow_theta) > 0.2
                assert (np.ptp(fast_theta) > 0.5) == (arm != "arm_still")
                if body == "fast_bounce":
                    assert np.ptp(slow_y) < 1e-9 and np.ptp(fast_y) > 1.0
                elif body == "slow_sway":
                    assert np.ptp(slow_x) > 1.0
                else:
                    assert np.ptp(fast_y) < 1e-9
                seen[arm] += 1
                if body:
                    seen[body] += 1
    assert min(seen.values()) > 20, seen


def test_still_pose_matches_a_random_phase_of_the_fast_motion() -> None:
    """To the Slow pathway, arm_still must look like a frozen fast_wave: same pose range."""
    spec = syn.resolve_spec("cpu", num_train_videos=40)
    poses: dict[str, list[float]] = {"fast_wave": [], "arm_still": []}
    for plan in syn.plan_dataset(spec, seed=3):
        for actor in plan.actors:
            tr = syn.actor_tracks(actor, plan.hidden, spec)
            for k in range(0, plan.num_frames, 30):
                name = actor.arm[tr.episode[k]]
                if name in poses:
                    poses[name].append(tr.theta[k])
    a, b = np.array(poses["fast_wave"]), np.array(poses["arm_still"])
    assert abs(a.mean() - b.mean()) < 0.1 and abs(a.std() - b.std()) < 0.1


def test_slow_frames_of_a_fast_motion_are_pixel_identical() -> None:
    """Rendered on a flat, noise-free background, the slow frames of a clip around a keyframe
    are bit-identical for an actor doing fast_wave (or fast_bounce), while its fast frames
    differ; a slow_wave actor's slow frames differ."""
    spec = syn.resolve_spec("cpu", actors_per_video=(1, 1), noise_std=0.0, num_train_videos=8, duration=14,
                            num_val_videos=0, empty_keyframes_per_split=0)
    fast_off, slow_off = syn.slow_frame_offsets(spec.num_frames, spec.sampling_rate, spec.alpha)
    margin = 8
    flat = np.full((spec.height + 2 * margin, spec.width + 2 * margin, 3), 128.0, np.float32)
    checked = {"frozen": 0, "moving": 0}
    for plan in syn.plan_dataset(spec, seed=4):
        (actor,) = plan.actors
        tracks = [syn.actor_tracks(actor, plan.hidden, spec)]
        frames = syn.render_frames(plan, tracks, spec, 0, plan.num_frames, flat, margin,
                                   np.random.default_rng(0))
        for c in syn.keyframe_index(syn.keyframe_timestamps(spec), spec):
            ep = set(tracks[0].episode[c + fast_off])
            if len(ep) != 1:
                continue
            ep = ep.pop()
            arm, body = actor.arm[ep], actor.body[ep]
            slow = frames[c + slow_off].astype(int)
            fast = frames[c + fast_off].astype(int)
            if arm in ("fast_wave", "arm_still") and body != "slow_sway":
                assert (slow == slow[0]).all()
                moving = arm == "fast_wave" or body == "fast_bounce"
                assert (fast != fast[0]).any() == moving
                checked["frozen"] += 1
            elif arm == "slow_wave":
                assert (slow != slow[0]).any()
                checked["moving"] += 1
    assert min(checked.values()) >= 5, checked
