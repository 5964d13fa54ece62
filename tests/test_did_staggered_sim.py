"""Planted heterogeneous, staggered effects: CS, SA and BJS recover the ATT, TWFE does not."""

import numpy as np
import pandas as pd

from evaluering.estimators.bjs import bjs_imputation
from evaluering.estimators.did import twfe
from evaluering.estimators.sunab import sun_abraham


def simulate(rng, n_units=300, T=10):
    """Cohorts 3/5/7 and never treated; effects grow with exposure and differ by cohort."""
    cohort = rng.choice([3, 5, 7, 0], size=n_units, p=[0.3, 0.25, 0.25, 0.2])
    unit = np.repeat(np.arange(n_units), T)
    t = np.tile(np.arange(1, T + 1), n_units)
    g = cohort[unit]
    treated = (g > 0) & (t >= g)
    tau = np.where(treated, 0.5 + 0.4 * (t - g) + 0.3 * (g == 3), 0.0)
    y = (rng.normal(size=n_units)[unit] + 0.2 * t + 0.3 * np.sin(t) + tau
         + rng.normal(scale=0.7, size=len(t)))
    df = pd.DataFrame({"u": unit, "t": t, "g": g, "y": y, "D": treated.astype(float)})
    return df, float(tau[treated].mean())


def test_modern_estimators_cover_truth_twfe_biased():
    try:
        from evaluering.estimators.cs import callaway_santanna
    except ImportError:  # pragma: no cover - CS module not installed
        callaway_santanna = None
    rng = np.random.default_rng(2024)
    reps = 20
    cover = {"sa": 0, "bjs": 0, "cs": 0, "twfe": 0}
    bias = {k: [] for k in cover}
    for _ in range(reps):
        df, truth = simulate(rng)
        res = {
            "sa": sun_abraham(df, "y", "u", "t", "g"),
            "bjs": bjs_imputation(df, "y", "u", "t", "g", pretrend_periods=0),
            "twfe": twfe(df, "y", "u", "t", "D"),
        }
        if callaway_santanna is not None:
            res["cs"] = callaway_santanna(df, "y", "u", "t", "g", aggregation="simple")
        for k, r in res.items():
            cover[k] += r.ci[0] <= truth <= r.ci[1]
            bias[k].append(r.estimate - truth)
    for k in ("sa", "bjs") + (("cs",) if callaway_santanna is not None else ()):
        assert cover[k] >= 17, (k, cover[k])
        assert abs(np.mean(bias[k])) < 0.03, (k, np.mean(bias[k]))
    # TWFE: forbidden comparisons with growing effects pull it far below the ATT
    assert np.mean(bias["twfe"]) < -0.25
    assert cover["twfe"] <= 2
