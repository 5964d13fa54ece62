"""BJS imputation estimator vs a direct statsmodels fit on untreated observations, an
independent dense computation of the Theorem-3 variance, and simulations."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from evaluering.errors import EstimationError
from evaluering.estimators.bjs import bjs_imputation

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def stagg():
    d = pd.read_csv(DATA / "base_stagg.csv", engine="pyarrow")
    d["w"] = np.random.default_rng(3).uniform(0.5, 2.0, len(d))
    return d


@pytest.mark.parametrize("weighted", [False, True])
def test_point_estimates_match_statsmodels_imputation(stagg, weighted):
    d = stagg
    r = bjs_imputation(d, "y", "id", "year", "year_treated", covariates=["x1"],
                       weights="w" if weighted else None)
    treated = d["year"] >= d["year_treated"]
    d0, d1 = d[~treated], d[treated].copy()
    mod = (smf.wls("y ~ x1 + C(id) + C(year)", d0, weights=d0["w"]) if weighted
           else smf.ols("y ~ x1 + C(id) + C(year)", d0)).fit()
    d1["tau"] = d1["y"] - mod.predict(d1)
    om = d1["w"] if weighted else pd.Series(1.0, index=d1.index)
    assert r.estimate == pytest.approx(np.average(d1["tau"], weights=om), abs=1e-9)
    d1["h"] = d1["year"] - d1["year_treated"]
    ev = r.component("event").set_index("e")
    for h, grp in d1.groupby("h"):
        assert ev.loc[h, "att"] == pytest.approx(np.average(grp["tau"], weights=om[grp.index]), abs=1e-9)
    gr = r.component("group").set_index("group")
    for c, grp in d1.groupby("year_treated"):
        assert gr.loc[c, "att"] == pytest.approx(np.average(grp["tau"], weights=om[grp.index]), abs=1e-9)


def _dense_bjs_se(d, target, w=None):
    """Theorem-3 variance written out with dense matrices and explicit loops."""
    treated = (d["year"] >= d["year_treated"]).to_numpy()
    om = np.ones(len(d)) if w is None else d[w].to_numpy()
    ids = np.sort(d["id"].unique())
    years = np.sort(d["year"].unique())
    Z = np.column_stack([(d["id"].to_numpy() == i).astype(float) for i in ids]
                        + [(d["year"].to_numpy() == t).astype(float) for t in years[1:]]
                        + [d["x1"].to_numpy()])
    y = d["y"].to_numpy()
    Z0, Z1 = Z[~treated], Z[treated]
    om0, om1 = om[~treated], om[treated]
    A = Z0.T @ (Z0 * om0[:, None])
    beta = np.linalg.solve(A, Z0.T @ (om0 * y[~treated]))
    e0 = y[~treated] - Z0 @ beta
    tau = y[treated] - Z1 @ beta
    w1 = target(d[treated]).astype(float) * om1
    w1 = w1 / w1.sum()
    v0 = -om0 * (Z0 @ np.linalg.solve(A, Z1.T @ w1))
    d1 = d[treated].assign(tau=tau, v=w1, h=lambda x: x["year"] - x["year_treated"])
    eps1 = np.empty(len(d1))
    for k, (_, row) in enumerate(d1.iterrows()):
        same = d1[(d1["year_treated"] == row["year_treated"]) & (d1["h"] == row["h"])
                  & (d1["id"] != row["id"])]
        if (same["v"] ** 2).sum() > 0:
            eps1[k] = row["tau"] - np.sum(same["v"] ** 2 * same["tau"]) / np.sum(same["v"] ** 2)
        else:  # fallback: same horizon, other units
            same = d1[(d1["h"] == row["h"]) & (d1["id"] != row["id"])]
            if (same["v"] ** 2).sum() > 0:
                eps1[k] = row["tau"] - np.sum(same["v"] ** 2 * same["tau"]) / np.sum(same["v"] ** 2)
            else:
                same = d1[d1["id"] != row["id"]]
                eps1[k] = row["tau"] - np.sum(same["v"] ** 2 * same["tau"]) / np.sum(same["v"] ** 2)
    s = (pd.Series(v0 * e0, index=d.loc[~treated, "id"]).groupby(level=0).sum()
         .add(pd.Series(w1 * eps1, index=d.loc[treated, "id"]).groupby(level=0).sum(), fill_value=0))
    return float(np.sqrt((s**2).sum()))


def test_variance_matches_dense_theorem3_computation(stagg):
    r = bjs_imputation(stagg, "y", "id", "year", "year_treated", covariates=["x1"])
    assert r.se == pytest.approx(_dense_bjs_se(stagg, lambda x: np.ones(len(x))), rel=1e-8)
    rw = bjs_imputation(stagg, "y", "id", "year", "year_treated", covariates=["x1"], weights="w")
    assert rw.se == pytest.approx(_dense_bjs_se(stagg, lambda x: np.ones(len(x)), w="w"), rel=1e-8)
    ev = r.component("event").set_index("e")
    for h in (0, 3, 8):  # h = 8: a single cohort (5 units) — fallback is not needed
        se_h = _dense_bjs_se(stagg, lambda x, h=h: ((x["year"] - x["year_treated"]) == h).to_numpy())
        assert ev.loc[h, "se"] == pytest.approx(se_h, rel=1e-8)


def test_pretrend_test_matches_statsmodels(stagg):
    r = bjs_imputation(stagg, "y", "id", "year", "year_treated", covariates=["x1"],
                       pretrend_periods=2)
    d0 = stagg[stagg["year"] < stagg["year_treated"]].copy()
    rel = d0["year"] - d0["year_treated"]
    d0["l1"], d0["l2"] = (rel == -1).astype(float), (rel == -2).astype(float)
    sm = smf.ols("y ~ l1 + l2 + x1 + C(id) + C(year)", d0).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(d0["id"])[0]})
    n, k_sm, k_ours = len(d0), sm.params.size, 3 + d0["year"].nunique()
    scale2 = (n - k_sm) / (n - k_ours)
    b = sm.params[["l1", "l2"]].to_numpy()
    W = float(b @ np.linalg.solve(sm.cov_params().loc[["l1", "l2"], ["l1", "l2"]] * scale2, b))
    assert r.info["pretrend_F"] == pytest.approx(W / 2, rel=1e-7)
    assert r.info["pretrend_df"] == d0["id"].nunique() - 1


def _sim(rng, n_units=150, T=10, hetero=True):
    cohorts = rng.choice([3, 5, 7, np.inf], size=n_units)
    unit = np.repeat(np.arange(n_units), T)
    t = np.tile(np.arange(1, T + 1), n_units)
    g = cohorts[unit]
    rel = t - g
    tau = np.where(rel >= 0, (1.0 + 0.3 * rel + (0.1 * (g - 5) if hetero else 0)), 0.0)
    y = rng.normal(size=n_units)[unit] + 0.3 * t + tau + rng.normal(size=len(t))
    d = pd.DataFrame({"u": unit, "t": t, "g": np.where(np.isfinite(g), g, 0), "y": y, "tau": tau})
    return d, float(tau[rel >= 0].mean())


def test_planted_effect_coverage():
    rng = np.random.default_rng(21)
    hits, reps, ests = 0, 150, []
    for _ in range(reps):
        d, truth = _sim(rng, hetero=False)
        r = bjs_imputation(d, "y", "u", "t", "g", pretrend_periods=0)
        hits += r.ci[0] <= truth <= r.ci[1]
        ests.append(r.estimate - truth)
    assert abs(np.mean(ests)) < 0.02
    assert 0.90 <= hits / reps <= 0.995


def test_errors():
    mp = pd.read_csv(DATA / "mpdta.csv", engine="pyarrow")
    with pytest.raises(EstimationError, match="no untreated observations in period"):
        bjs_imputation(mp[mp["first.treat"] > 0], "lemp", "countyreal", "year", "first.treat")
    bad = mp.copy()
    bad.loc[bad["countyreal"] == bad["countyreal"].iloc[0], "first.treat"] = 2003
    with pytest.raises(EstimationError, match="pre-periods"):
        bjs_imputation(bad, "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(EstimationError, match="horizon"):
        bjs_imputation(mp, "lemp", "countyreal", "year", "first.treat", horizons=[7])
