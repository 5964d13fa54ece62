"""The Danish evaluation report (``evaluering rapport``).

Public API: :func:`build_report` (a :class:`ReportConfig` → a published report folder),
:func:`load_config` (``evaluering.toml``), :func:`build_report_from_cli` (data folder +
catalogue), :class:`ReportResult`; the analysis behind the numbers is
:func:`evaluering.report.analysis.run_analysis`. See docs/report.md.
"""

from evaluering.report.analysis import AnalysisOptions
from evaluering.report.build import (BuildLocked, ReportConfig, ReportResult, build_report,
                                     build_report_from_cli, load_config)

__all__ = ["AnalysisOptions", "BuildLocked", "ReportConfig", "ReportResult", "build_report",
           "build_report_from_cli", "load_config"]
