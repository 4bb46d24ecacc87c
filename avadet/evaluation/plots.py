"""Precision-recall curves and a per-class AP bar chart as PNG files (matplotlib, Agg)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Union

import numpy as np

from avadet.evaluation.result import EvalResult

PathLike = Union[str, Path]


def _save(fig: object, path: Path) -> None:
    from avadet.io import atomic_write

    with atomic_write(path, mode="wb") as handle:
        fig.savefig(handle, format="png", dpi=100)  # type: ignore[attr-defined]


def save_plots(result: EvalResult, out_dir: PathLike, *, model: str = "") -> list[Path]:
    """Write ``ap_per_class.png`` and ``pr_curves.png`` under ``out_dir``.

    ``result`` must come from an evaluation run with ``keep_curves=True`` for the curves.
    ``model``: the name of the model the predictions came from, put in both titles (the
    figures of two models side by side say which is which). Returns the paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    items = sorted(
        ((i, ap) for i, ap in result.per_class.items() if not math.isnan(ap)),
        key=lambda item: -item[1],
    )
    labels = [f"{i} {result.class_names.get(i, str(i))}"[:40] for i, _ in items]
    values = [100 * ap for _, ap in items]
    fig, ax = plt.subplots(figsize=(8, 2 + 0.22 * max(len(items), 1)))
    ax.barh(np.arange(len(items)), values, color="tab:blue")
    ax.set_yticks(np.arange(len(items)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("AP (%)")
    ax.set_xlim(0, 100)
    who = f"{model}: " if model else ""
    ax.set_title(f"{who}frame-AP per class, mAP {100 * result.map:.2f}% ({result.protocol})")
    fig.tight_layout()
    path = out / "ap_per_class.png"
    _save(fig, path)
    plt.close(fig)
    written.append(path)

    curves = result.curves or {}
    shown = [i for i, _ in items if i in curves]
    if shown:
        # At most 4 panels a row, each large enough to read (a 60-class set makes a tall
        # page rather than one unreadable strip).
        cols = min(4, len(shown))
        rows = math.ceil(len(shown) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows + 0.8),
                                 squeeze=False)
        for ax, class_id in zip(axes.flat, shown):
            recall, precision = curves[class_id]
            # The interpolated curve the AP integrates: precision non-increasing from the right.
            interp = np.maximum.accumulate(precision[::-1])[::-1]
            ax.plot(recall, precision, lw=0.8, color="0.6", label="precision")
            ax.step(recall, interp, where="pre", lw=1.4, color="tab:red",
                    label="interpolated (what AP integrates)")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_title(
                f"{class_id} {result.class_names.get(class_id, '')}"[:32]
                + f"\nAP {100 * result.per_class[class_id]:.1f}%",
                fontsize=9,
            )
            ax.tick_params(labelsize=8)
        for ax in list(axes.flat)[len(shown):]:
            ax.axis("off")
        fig.supxlabel("recall")
        fig.supylabel("precision")
        fig.suptitle(f"{who}precision-recall per class at IoU 0.5, mAP "
                     f"{100 * result.map:.2f}% ({result.protocol})", fontsize=11)
        handles, names = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="upper right", fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
        path = out / "pr_curves.png"
        _save(fig, path)
        plt.close(fig)
        written.append(path)
    return written
