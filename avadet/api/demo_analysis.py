"""Reading a synthetic benchmark's results: evaluated classes grouped by what a model must
see to tell them apart, the mean AP per group, and evaluations side by side.

These read a generated dataset's metadata (:func:`avadet.synthetic.load_meta`) and evaluation
results; the generator itself never needs them.
"""

from __future__ import annotations

import math
from typing import Any

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
