"""Estimators: functions of (aggregated) panel data and options returning ``EstimateResult``.

No estimator reads a file; each takes a pandas DataFrame or pyarrow Table with named columns.
"""

from __future__ import annotations

from evaluering.estimators.bacon import bacon_decomposition
from evaluering.estimators.bjs import bjs_imputation
from evaluering.estimators.cs import callaway_santanna, cs_aggregate, cs_influence
from evaluering.estimators.did import TwfeDesign, did2x2, twfe, twfe_design
from evaluering.estimators.event_study import event_study
from evaluering.estimators.sunab import sun_abraham
from evaluering.estimators.synth import synthdid, synthetic_control

__all__ = [
    "did2x2", "twfe", "twfe_design", "TwfeDesign", "bacon_decomposition", "event_study",
    "sun_abraham", "bjs_imputation", "callaway_santanna", "cs_aggregate", "cs_influence",
    "synthdid", "synthetic_control",
]
