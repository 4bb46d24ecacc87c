"""The frame-mAP protocols avadet can reproduce, each as a plain record of its rules.

All of them are ports of the TensorFlow object-detection PASCAL evaluator (per-class AP at
IoU 0.5 on keyframes, all-points interpolation); they differ in the handful of rules below.
``docs/evaluation.md`` explains each difference and where it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional


@dataclass(frozen=True)
class Protocol:
    """The rules of one frame-mAP evaluator.

    Attributes:
        name: the ``--protocol`` name.
        description: one line for reports.
        cap: at most this many predictions per keyframe over all classes, kept with the
            official heap semantics; None for no cap.
        match_by_score: within a keyframe and class, detections are matched in descending
            score order (True) or in file order (False, PySlowFast).
        gt_by_person_id: gt boxes of a keyframe are ordered by descending person id (the
            official code sorts gt rows by their 8th column as if it were a score, 1.0 where
            a row has only 7 columns); this is the order in which IoU ties pick "the first"
            gt. False: file order.
        unmatched_keyframes: what happens to predictions on keyframes the gt does not have:
            ``"fp"`` (false positives), ``"ignore_file"`` (ignored unless the keyframe has a
            row of any class in the gt file: latest ActivityNet code) or ``"ignore_evaluated"``
            (ignored unless the keyframe has a gt row of an evaluated class: MMAction2).
        skip_classes_without_detections: a class with gt but no detection is left out of the
            mean (MMAction2) instead of counting AP 0.
        float32: boxes and scores are compared in float32 (MMAction2).
        min_score: predictions with ``score < min_score`` (float64) are dropped first. This
            stands in for MMAction2's rule, which keeps ``score > 0.002`` with the score
            rounded to float32: the two differ only on scores in (0.0019999999786, 0.002),
            which round to float32(0.002) = 0.0020000000949 and which MMAction2 keeps.
        excluded_gt_are_misses: gt rows on excluded keyframes still count in num_gt (so they
            can only be missed) instead of being removed (MMAction2).
        drop_degenerate_boxes: predicted boxes with ``x1 >= x2`` or ``y1 >= y2`` are dropped
            (the official rule). False: only inverted boxes (``x1 > x2`` or ``y1 > y2``, on
            which MMAction2 stops with an error) are dropped; zero-area boxes are evaluated.
    """

    name: str
    description: str
    cap: Optional[int]
    match_by_score: bool
    gt_by_person_id: bool
    unmatched_keyframes: str
    skip_classes_without_detections: bool
    float32: bool
    min_score: Optional[float]
    excluded_gt_are_misses: bool
    drop_degenerate_boxes: bool


# The official rules, written out in full; every other protocol is stated as the rules in
# which it departs from them (docs/evaluation.md has the table).
ACTIVITYNET_2019 = Protocol(
    name="activitynet2019",
    description="official ActivityNet 2019 / AVA v2.2 challenge code (exclusions, top-50 "
    "per keyframe, predictions on keyframes without gt are false positives)",
    cap=50,
    match_by_score=True,
    gt_by_person_id=True,
    unmatched_keyframes="fp",
    skip_classes_without_detections=False,
    float32=False,
    min_score=None,
    excluded_gt_are_misses=False,
    drop_degenerate_boxes=True,
)

PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        ACTIVITYNET_2019,
        replace(
            ACTIVITYNET_2019,
            name="activitynet",
            description="current official ActivityNet code (top-50 per keyframe, predictions on "
            "keyframes absent from the gt file ignored; exclusions applied to both files)",
            unmatched_keyframes="ignore_file",
        ),
        replace(
            ACTIVITYNET_2019,
            name="pyslowfast",
            description="PySlowFast ava_eval_helper (no cap, detections matched in file order)",
            cap=None,
            match_by_score=False,
            gt_by_person_id=False,
        ),
        replace(
            ACTIVITYNET_2019,
            name="mmaction2",
            description="MMAction2 ava_utils (no cap, gt keyframes only, classes without "
            "detections left out, float32, scores under 0.002 dropped, excluded gt counted as missed)",
            cap=None,
            unmatched_keyframes="ignore_evaluated",
            skip_classes_without_detections=True,
            float32=True,
            min_score=0.002,
            excluded_gt_are_misses=True,
            drop_degenerate_boxes=False,
        ),
    )
}

DEFAULT_PROTOCOL = "activitynet2019"


def get_protocol(protocol: str | Protocol) -> Protocol:
    """The :class:`Protocol` named ``protocol`` (or ``protocol`` itself)."""
    if isinstance(protocol, Protocol):
        return protocol
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        from avadet.errors import AvadetError

        raise AvadetError(
            f"unknown evaluation protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}"
        ) from None
