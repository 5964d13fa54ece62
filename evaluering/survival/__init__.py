"""Survival analysis inside a difference-in-differences design.

- :mod:`evaluering.survival.km`: Kaplan–Meier (Greenwood) and Aalen–Johansen cumulative
  incidence by group, from person-level spells or aggregated discrete-time cells.
"""

from evaluering.survival.km import (SurvivalCurves, aalen_johansen, aalen_johansen_cells,
                                    aalen_johansen_table, kaplan_meier, kaplan_meier_cells,
                                    kaplan_meier_table, risk_table, risk_table_from_cells)

__all__ = ["SurvivalCurves", "aalen_johansen", "aalen_johansen_cells", "aalen_johansen_table",
           "kaplan_meier", "kaplan_meier_cells", "kaplan_meier_table", "risk_table",
           "risk_table_from_cells"]
