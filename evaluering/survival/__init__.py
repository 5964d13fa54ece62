"""Survival analysis inside a difference-in-differences design.

- :mod:`~evaluering.survival.km`: Kaplan–Meier (Greenwood) and Aalen–Johansen cumulative
  incidence by group, from person-level spells or aggregated discrete-time cells; RMST.
- :mod:`~evaluering.survival.cox`: stratified Cox PH (Efron/Breslow ties, cluster-robust
  Lin–Wei sandwich) and ``cox_did``.
- :mod:`~evaluering.survival.discrete`: discrete-time hazard DiD (binomial GLM with cloglog or
  logit link) on (events, at risk) cells with fixed effects and clustered standard errors.
- :mod:`~evaluering.survival.staggered`: per municipality × start period survival summaries
  (share in job at 13/26/52 weeks, RMST) fed to CS/BJS; 2 × 2 DiD of KM shares.
- :mod:`~evaluering.survival.plots`: KM curves (2 × 2 small multiples), effects on shares.
- :mod:`~evaluering.survival.simulate`: spells with a planted hazard ratio.
"""

from evaluering.survival.cox import cox_did, cox_ph
from evaluering.survival.discrete import discrete_hazard_did, expand_cells, spells_to_cells
from evaluering.survival.km import (SurvivalCurves, aalen_johansen, aalen_johansen_cells,
                                    aalen_johansen_table, kaplan_meier, kaplan_meier_cells,
                                    kaplan_meier_table, risk_table, risk_table_from_cells)
from evaluering.survival.plots import plot_curves, plot_km_2x2, plot_share_effect
from evaluering.survival.simulate import simulate_spells, true_job_survival
from evaluering.survival.staggered import km_did_share, staggered_survival_did, survival_panel

__all__ = ["SurvivalCurves", "aalen_johansen", "aalen_johansen_cells", "aalen_johansen_table",
           "cox_did", "cox_ph", "discrete_hazard_did", "expand_cells", "kaplan_meier",
           "kaplan_meier_cells", "kaplan_meier_table", "risk_table", "risk_table_from_cells",
           "km_did_share", "plot_curves", "plot_km_2x2", "plot_share_effect", "simulate_spells",
           "spells_to_cells", "staggered_survival_did", "survival_panel", "true_job_survival"]
