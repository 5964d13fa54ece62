"""The Danish evaluation report (``evaluering rapport``).

Public API: :func:`build_report` (a :class:`ReportConfig` → a published report folder),
:func:`load_config` (``evaluering.toml``), :func:`build_report_from_cli` (data folder +
catalogue), :class:`ReportResult`; the analysis behind the numbers is
:func:`evaluering.report.analysis.run_analysis`, per trial :func:`analyse_trial` (a
:class:`TrialAnalysis`, which a notebook can save with :func:`save_trial_analysis` for the build to
use: ``[notebooks.<trial>]`` in the config). See docs/report.md.
"""

from evaluering.report.analysis import (AnalysisOptions, TrialAnalysis, analyse_trial,
                                        load_trial_analysis, save_trial_analysis)
from evaluering.report.build import (BuildLocked, ReportConfig, ReportResult, build_report,
                                     build_report_from_cli, load_config)

__all__ = ["AnalysisOptions", "TrialAnalysis", "analyse_trial", "save_trial_analysis",
           "load_trial_analysis", "BuildLocked", "ReportConfig", "ReportResult", "build_report",
           "build_report_from_cli", "load_config"]
