"""The data doctor's run: every check family over the data a config points at.

:func:`run_checks` reads everything a config points at (label map, annotations, exclusions,
person boxes, frame folders or videos: :mod:`avadet.doctor.context`) and runs every family,
each a function returning :class:`Finding` records:

- :func:`~avadet.doctor.annotations.check_config`: settings that contradict each other (class
  count of the model).
- :func:`~avadet.doctor.annotations.check_labelmap`: the label map and the trained class subset.
- :func:`~avadet.doctor.annotations.check_annotations`: malformed rows, boxes out of range or
  inverted, action ids not in the label map, keyframes outside the segment, persons whose
  boxes jump, duplicates.
- :func:`~avadet.doctor.annotations.check_exclusions`: excluded keyframes that carry gt rows,
  or of other videos.
- :func:`~avadet.doctor.annotations.check_classes`: evaluated classes without training
  examples.
- :func:`~avadet.doctor.media_checks.check_media`: videos without media, missing or unreadable
  media, wrong frame counts for the segment at the configured fps, wrong video fps, frame
  gaps, size changes, corrupt JPEGs (sampled, or every frame with ``full_scan``).
- :func:`~avadet.doctor.person_boxes.check_person_boxes`: coverage of the annotated keyframes,
  score distribution and the recall of the gt boxes at IoU 0.5 above the configured score
  threshold.

Files are read leniently (:mod:`avadet.doctor.tables`) so that every problem is counted;
a file the strict readers of :mod:`avadet.io` would reject is reported as an error with the
reason and line, never as a crash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from avadet.config import Config
from avadet.data import DatasetFiles
from avadet.doctor.annotations import (
    check_annotations,
    check_classes,
    check_config,
    check_exclusions,
    check_labelmap,
)
from avadet.doctor.context import load_context
from avadet.doctor.findings import Finding
from avadet.doctor.media import DEFAULT_SAMPLE
from avadet.doctor.media_checks import check_media
from avadet.doctor.person_boxes import check_person_boxes
from avadet.errors import AvadetError


@dataclass
class DoctorReport:
    """All findings of one run, the facts counted on the way, and the time taken."""

    findings: list[Finding]
    stats: dict[str, Any]
    seconds: float
    full_scan: bool

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def checks(self) -> set[str]:
        return {f.check for f in self.findings}

    def by_check(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]


def run_checks(cfg: Config, files: DatasetFiles, *, full_scan: bool = False,
               sample: int = DEFAULT_SAMPLE, workers: int = 4,
               progress: bool = True) -> DoctorReport:
    """Run every check family on the data ``cfg`` points at.

    Args:
        files: the dataset's files as ``cfg.data`` names them
            (:func:`avadet.engine.build.dataset_files`).
        full_scan: decode every frame (default: list folders, read headers, decode ``sample``
            frames per video).
        workers: threads inspecting videos in parallel.
    """
    started = time.perf_counter()
    ctx, findings = load_context(cfg, files)
    # check_labelmap settles the trained classes that check_config and check_classes read.
    findings += check_labelmap(ctx)
    findings += check_config(ctx)
    findings += check_annotations(ctx)
    findings += check_exclusions(ctx)
    findings += check_classes(ctx)
    try:
        findings += check_media(ctx, full_scan=full_scan, sample=sample, workers=workers,
                                progress=progress)
    except AvadetError as exc:
        findings.append(Finding("error", "media.unreadable", str(ctx.media_root()), 1, str(exc),
                                "check the media folder"))
    findings += check_person_boxes(ctx)
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    return DoctorReport(findings, ctx.stats, time.perf_counter() - started, full_scan)
