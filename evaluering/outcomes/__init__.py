"""Outcomes per spell (time to job, resource use, exposure) computed in SQL over Parquet.

Public API: :func:`build_outcomes` (writes the outcome tables, panels and survival table)
and :class:`OutcomesResult`. Definitions: ``docs/outcomes.md``.
"""

from evaluering.outcomes.build import OUTPUT_FILES, OutcomesResult, build_outcomes

__all__ = ["OUTPUT_FILES", "OutcomesResult", "build_outcomes"]
