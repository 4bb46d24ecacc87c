"""Human and machine readable output of an :class:`~avadet.evaluation.EvalResult`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Union

from avadet.evaluation.result import EvalResult

PathLike = Union[str, Path]


def format_table(result: EvalResult) -> str:
    """Per-class AP table (best class first, classes without AP last) with the mAP.

    Columns: class id, name, gt instances, evaluated detections, AP in percent ("-" where a
    class is left out of the mean).
    """
    rows = sorted(
        result.per_class.items(),
        key=lambda item: (math.isnan(item[1]), -item[1] if not math.isnan(item[1]) else 0, item[0]),
    )
    name_width = max([len("class")] + [len(result.class_names.get(i, str(i))) for i, _ in rows])
    lines = [f"{'id':>4}  {'class':<{name_width}}  {'gt':>7}  {'dets':>9}  {'AP%':>6}"]
    lines.append("-" * len(lines[0]))
    for class_id, ap in rows:
        ap_text = "-" if math.isnan(ap) else f"{100 * ap:6.2f}"
        lines.append(
            f"{class_id:>4}  {result.class_names.get(class_id, str(class_id)):<{name_width}}  "
            f"{result.num_gt.get(class_id, 0):>7}  {result.num_pred.get(class_id, 0):>9}  "
            f"{ap_text:>6}"
        )
    counted = sum(1 for v in result.per_class.values() if not math.isnan(v))
    lines.append("-" * len(lines[0]))
    map_text = "nan" if math.isnan(result.map) else f"{100 * result.map:.2f}%"
    lines.append(
        f"frame-mAP@0.5IoU = {map_text} ({result.map:.6f}) over {counted} classes; "
        f"protocol: {result.protocol}"
    )
    return "\n".join(lines)


def write_json(path: PathLike, result: EvalResult) -> None:
    """Write ``{"mAP": float, "per_class": {"<id>": AP or null}, "protocol": name}``
    atomically (APs as fractions, not percent)."""
    from avadet.io import atomic_write

    payload = result.to_json()
    payload["protocol"] = result.protocol
    with atomic_write(path) as handle:
        json.dump(payload, handle, indent=1, allow_nan=False)
        handle.write("\n")
