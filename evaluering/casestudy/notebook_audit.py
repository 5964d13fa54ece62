"""Run a parameterised analyst notebook headless and keep the executed copy as an audit file.

The runner lives with the report, which uses it to run a notebook as a trial's analysis
(:mod:`evaluering.report.notebook`); it is re-exported here for the case-study notebooks.
"""

from evaluering.report.notebook import NotebookFailed, run_notebook_audit

__all__ = ["run_notebook_audit", "NotebookFailed"]
