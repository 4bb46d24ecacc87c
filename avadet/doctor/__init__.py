"""The data doctor: ``avadet check-data`` reads everything a config points at and reports each
problem with where it is, how many rows or files it affects and how to fix it.

A top-level consumer: it imports :mod:`avadet.io`, :mod:`avadet.data` and :mod:`avadet.config`;
nothing imports it.
"""

from avadet.doctor.checks import DoctorReport, run_checks
from avadet.doctor.findings import Finding
from avadet.doctor.media_checks import expected_frame_counts
from avadet.doctor.report import format_report, report_to_dict

__all__ = ["DoctorReport", "Finding", "expected_frame_counts", "format_report",
           "report_to_dict", "run_checks"]
