"""Frame-mAP of a prediction file, and what a report of it writes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from avadet.evaluation import EvalResult, evaluate_files
from avadet.evaluation.protocols import DEFAULT_PROTOCOL
from avadet.evaluation.report import format_table, write_json

PathLike = Union[str, Path]

__all__ = ["evaluate", "format_table", "write_outputs"]


def evaluate(gt: PathLike, predictions: PathLike, labelmap: PathLike,
             exclusions: Optional[PathLike] = None, *, protocol: str = DEFAULT_PROTOCOL,
             keep_curves: bool = False) -> EvalResult:
    """Per-class AP at IoU 0.5 and their mean over ``labelmap``'s classes, by the rules of
    ``protocol`` (``activitynet2019``: the official code's numbers exactly). ``keep_curves``
    keeps the precision-recall curves, for plots."""
    return evaluate_files(gt, predictions, labelmap, exclusions, protocol=protocol,
                          keep_curves=keep_curves)


def write_outputs(result: EvalResult, *, json_path: Optional[PathLike] = None,
                  plots_dir: Optional[PathLike] = None) -> list[Path]:
    """Write the mAP and per-class AP as JSON and/or the PR curves and AP chart; returns the
    files written."""
    written = []
    if json_path:
        write_json(json_path, result)
        written.append(Path(json_path))
    if plots_dir:
        from avadet.evaluation.plots import save_plots

        written += [Path(p) for p in save_plots(result, plots_dir)]
    return written
