"""Reading a synthetic benchmark's results: evaluated classes grouped by what a model must
see to tell them apart, the mean AP per group, and evaluations side by side.

These read a generated dataset's metadata (:func:`avadet.synthetic.load_meta`) and evaluation
results; the generator itself never needs them.
"""

from __future__ import annotations

import math
from typing import Any, Optional

#: Class groups reported separately: what a model must see to tell the classes apart.
CLASS_GROUPS = ("all", "fast_motion", "slow_motion", "appearance")


def class_groups(meta: dict) -> dict[str, list[int]]:
    """Evaluated class ids per group of :data:`CLASS_GROUPS`, from a dataset's metadata
    (:func:`avadet.synthetic.load_meta`): ``fast_motion`` are the classes frozen for a Slow
    pathway."""
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


def side_by_side(results: dict[str, Any], groups: dict[str, list[int]]) -> str:
    """Per-class AP (percent) of several evaluations in adjacent columns, then group means and
    the mAP. ``results``: column title -> EvalResult over the same label map; ``groups``: as
    :func:`class_groups` returns."""
    titles = list(results)
    first = results[titles[0]]
    ids = sorted(first.per_class)
    name_width = max(len("class"), *(len(first.class_names.get(i, str(i))) for i in ids))
    width = max(10, *(len(t) for t in titles))
    kind = {c: g for g, members in groups.items() if g != "all" for c in members}

    def pct(value: float) -> str:
        return f"{'-':>{width}}" if math.isnan(value) else f"{100 * value:>{width}.2f}"

    head = f"{'id':>3}  {'class':<{name_width}}  {'cue':<12}" + "".join(f"  {t:>{width}}" for t in titles)
    lines = [head, "-" * len(head)]
    for c in ids:
        lines.append(
            f"{c:>3}  {first.class_names.get(c, str(c)):<{name_width}}  {kind.get(c, ''):<12}"
            + "".join(f"  {pct(results[t].per_class.get(c, float('nan')))}" for t in titles)
        )
    lines.append("-" * len(head))
    for group in groups:
        label = "frame-mAP (all classes)" if group == "all" else f"mean AP, {group} classes"
        means = [group_mean_ap(results[t].per_class, groups)[group] for t in titles]
        lines.append(f"{label:<{name_width + 19}}" + "".join(f"  {pct(m)}" for m in means))
    return "\n".join(lines)


#: How much one training run's group mean AP moves with the training seed: the larger sample
#: standard deviation, over 5 seeds, of SlowFast's and Slow-only's group means on the demo's
#: dataset (docs/synthetic_benchmark.md). Two single runs differ clearly only beyond twice it.
SINGLE_RUN_SPREAD = 0.05

_GROUP_TITLES = {
    "fast_motion": "fast motion (frozen to a Slow pathway)",
    "slow_motion": "slow motion",
    "appearance": "appearance",
    "all": "all classes (frame-mAP)",
}


def group_comparison(groups_ap: dict[str, dict[str, float]], first: str, second: str) -> str:
    """A table of each group's mean AP (percent) for two models and their difference.
    ``groups_ap``: model title -> :func:`group_mean_ap`'s result."""
    width = max(len(t) for t in _GROUP_TITLES.values())
    head = f"{'mean AP (%) per class group':<{width}}  {first:>10}  {second:>10}  {'difference':>10}"
    lines = [head, "-" * len(head)]
    for group in ("fast_motion", "slow_motion", "appearance", "all"):
        a, b = groups_ap[first].get(group, math.nan), groups_ap[second].get(group, math.nan)
        cells = [f"{100 * v:>10.2f}" if not math.isnan(v) else f"{'-':>10}" for v in (a, b)]
        diff = f"{100 * (a - b):>+10.2f}" if not math.isnan(a - b) else f"{'-':>10}"
        lines.append(f"{_GROUP_TITLES[group]:<{width}}  {cells[0]}  {cells[1]}  {diff}")
    return "\n".join(lines)


def verdict(groups_ap: dict[str, dict[str, float]], first: str = "SlowFast",
            second: str = "Slow-only", *, cost_ratio: Optional[float] = None,
            fast_share: Optional[float] = None, spread: float = SINGLE_RUN_SPREAD) -> str:
    """One sentence on what this run shows, computed from the group means: does ``first``
    see the fast motions ``second`` cannot (a fast-motion margin beyond ``2 * spread``), and is
    it worse on appearance (below ``-2 * spread``)?"""
    margin = 2 * spread
    fast = groups_ap[first].get("fast_motion", math.nan) - groups_ap[second].get("fast_motion", math.nan)
    look = groups_ap[first].get("appearance", math.nan) - groups_ap[second].get("appearance", math.nan)
    if math.isnan(fast):
        return "Verdict: no fast-motion classes were evaluated, nothing to compare."
    noise = f"single-run noise is about ±{100 * margin:.0f} AP"
    if fast > margin:
        said = (f"{first} sees the fast motions that {second} cannot: {100 * fast:+.1f} AP on the "
                f"fast-motion classes ({noise})")
    elif fast < -margin:
        said = (f"{second} is ahead on the fast-motion classes ({100 * fast:+.1f} AP, {noise}), "
                f"against what the architecture predicts")
    else:
        said = (f"no clear difference on the fast-motion classes in this run ({100 * fast:+.1f} "
                f"AP, within the {noise})")
    if not math.isnan(look):
        state = "not worse" if look >= -margin else "worse"
        said += f"; {state} on appearance ({100 * look:+.1f} AP)"
    if cost_ratio is not None:
        said += f"; it costs {cost_ratio:.2f}x {second}'s multiply-adds"
        if fast_share is not None:
            said += f" (its Fast pathway {fast_share:.0%} of them)"
    return f"Verdict: {said}."
