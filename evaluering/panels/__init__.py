"""Municipality × target group × period panels and the discrete-time survival table.

The panels themselves are built in SQL by :func:`evaluering.outcomes.build_outcomes`
(:mod:`evaluering.panels.sql`); this package adds the per-trial helper
:func:`forsoeg_panel` that turns a panel into the layout the DiD estimators read, and
:func:`period_nr` / :func:`period_label` (period labels in StatBank's form: ``2017Q3``,
``2017M07``, ``2017H1``).
Kaplan–Meier and RMST over the survival table: :mod:`evaluering.survival.km`
(``kaplan_meier_cells``).
"""

from evaluering.panels.sql import period_label, period_nr
from evaluering.panels.trial import additive_columns, forsoeg_panel

__all__ = ["additive_columns", "forsoeg_panel", "period_label", "period_nr"]
