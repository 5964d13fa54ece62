"""Wild cluster bootstrap: published Stata boottest numbers, brute-force refits, simulations."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from evaluering.errors import EstimationError
from evaluering.inference.wild import (
    WildBootResult,
    auxiliary_draws,
    auxiliary_weights,
    wild_bootstrap_ols,
    wild_cluster_bootstrap,
    wild_twfe,
)

DATA = Path(__file__).parent / "data"
X_COLS = ["selfemployed", "post", "post_self"]


@pytest.fixture(scope="module")
def collapsed() -> pd.DataFrame:
    return pd.read_csv(DATA / "boottest_collapsed.csv", engine="pyarrow")


# ------------------------------------------------------------------ published boottest example


def test_boottest_point_estimate_and_crv1(collapsed):
    # Stata: regress hasinsurance selfemployed post post_self, cluster(year)
    res = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                             r=0.04, B=999, ci=False)
    assert res.estimate == pytest.approx(0.054858, abs=5e-7)
    assert res.se == pytest.approx(0.007357, abs=5e-7)
    assert res.t_stat == pytest.approx(2.0194, abs=5e-5)
    assert res.n_clusters == 8 and res.n_obs == 16


def test_boottest_rademacher_enumerated(collapsed):
    # boottest post_self=.04, weight(rademacher): 2^8 = 256 draws enumerated, p = 18/256
    res = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                             r=0.04, B=999, bootstrap_weights="rademacher", ci=False)
    assert res.enumerated and res.B_effective == 256
    assert res.p * 256 == pytest.approx(18, abs=1e-9)
    assert "strict" in res.convention
    assert res.method == "WCR"


def test_boottest_webb_enumerated(collapsed):
    # boottest post_self=.04, weight(webb) with 6^8 = 1,679,616 draws: p = 0.0757
    res = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                             r=0.04, B=6 ** 8, bootstrap_weights="webb", ci=False)
    assert res.enumerated and res.B_effective == 6 ** 8
    assert res.p == pytest.approx(0.0757, abs=5e-4)


def test_webb_monte_carlo_close_to_enumeration(collapsed):
    res = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                             r=0.04, B=9999, bootstrap_weights="webb", seed=7, ci=False)
    assert not res.enumerated and res.B_effective == 9999
    # MC standard error sqrt(.0757*.9243/9999) ≈ 0.0026
    assert abs(res.p - 0.0757) < 4 * 0.0027
    # seeded: reproducible
    res2 = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                              r=0.04, B=9999, bootstrap_weights="webb", seed=7, ci=False)
    assert res2.p == res.p


# ------------------------------------------------------------------ brute force with statsmodels


def _brute_force_t(X, y, cl, j, r, V, weights=None, impose_null=True):
    """Refit statsmodels WLS per draw; CRV1 t statistic of coefficient j (draws in columns of V)."""
    w = np.ones(len(y)) if weights is None else weights
    if impose_null:
        others = [c for c in range(X.shape[1]) if c != j]
        fit0 = sm.WLS(y - r * X[:, j], X[:, others], weights=w).fit()
        fitted = fit0.fittedvalues + r * X[:, j]
        resid = y - fitted
        centre = r
    else:
        fit0 = sm.WLS(y, X, weights=w).fit()
        fitted, resid = fit0.fittedvalues, fit0.resid
        centre = fit0.params[j]
    codes = pd.factorize(cl, sort=True)[0]
    out = []
    for v in V.T:
        ystar = fitted + resid * v[codes]
        f = sm.WLS(ystar, X, weights=w).fit(cov_type="cluster", cov_kwds={"groups": codes})
        out.append((f.params[j] - centre) / f.bse[j])
    return np.array(out)


def _all_draws(kind, G):
    pts, _ = auxiliary_weights(kind)
    return np.array(list(itertools.product(pts, repeat=G))).T


def test_brute_force_no_fe(collapsed):
    X = sm.add_constant(collapsed[X_COLS].to_numpy(float))
    y = collapsed["hasinsurance"].to_numpy(float)
    cl = collapsed["year"].to_numpy()
    V = _all_draws("rademacher", 8)
    for impose in (True, False):
        ref = _brute_force_t(X, y, cl, 3, 0.04, V, impose_null=impose)
        res = wild_cluster_bootstrap(X, y, cl, param=3, r=0.04, B=1000, impose_null=impose,
                                     ci=False)
        assert res.enumerated
        np.testing.assert_allclose(np.sort(res.t_boot), np.sort(ref), rtol=1e-7, atol=1e-9)


def _sim_fe_data(seed, G=5, units_per=3, T=4, effect=0.0):
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(G):
        cshock = rng.normal()
        for u in range(units_per):
            ufe = rng.normal()
            for t in range(T):
                x1 = rng.normal() + 0.3 * t
                x2 = rng.normal() + 0.5 * g
                rows.append(dict(region=g, unit=f"{g}-{u}", time=t, x1=x1, x2=x2,
                                 w=rng.uniform(0.5, 3.0),
                                 y=effect * x1 + 0.5 * x2 + ufe + 0.4 * t
                                 + cshock * rng.normal() + rng.normal()))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("kind", ["rademacher", "webb"])
def test_brute_force_with_fixed_effects_and_weights(kind):
    """Absorbed unit FE (nested in clusters) + time FE (not nested) + WLS weights, enumerated."""
    df = _sim_fe_data(3, G=5 if kind == "rademacher" else 3)
    G = df["region"].nunique()
    X = df[["x1", "x2"]].to_numpy(float)
    y = df["y"].to_numpy(float)
    w = df["w"].to_numpy(float)
    cl = df["region"].to_numpy()
    # the same model with the fixed effects as dummy columns
    D = pd.get_dummies(df[["unit", "time"]].astype(str), drop_first=True).to_numpy(float)
    Xd = np.column_stack([X, np.ones(len(df)), D])
    V = _all_draws(kind, G)
    for impose in (True, False):
        ref = _brute_force_t(Xd, y, cl, 0, 0.3, V, weights=w, impose_null=impose)
        res = wild_cluster_bootstrap(X, y, cl, param=0, r=0.3, fe=[df["unit"], df["time"]],
                                     weights=w, B=V.shape[1], bootstrap_weights=kind,
                                     impose_null=impose, ci=False)
        assert res.enumerated and res.B_effective == V.shape[1]
        # statsmodels counts the unit dummies (nested in the clusters) in K; we do not (as
        # reghdfe/fixest): the CRV1 factors differ by a known constant
        n, K_sm = len(y), Xd.shape[1]
        K_ours = res.info["k"] + res.info["k_fe"]
        ratio = math.sqrt(((n - 1) / (n - K_ours)) / ((n - 1) / (n - K_sm)))
        np.testing.assert_allclose(np.sort(res.t_boot * ratio), np.sort(ref), rtol=1e-6,
                                   atol=1e-8)


def test_brute_force_random_draws_on_a_panel():
    """Monte Carlo draws, unit-clustered TWFE panel: first draws refitted with statsmodels."""
    rng = np.random.default_rng(17)
    df = _sim_panel(rng, G=30, T=20, effect=0.3)
    res = wild_twfe(df, "y", "unit", "time", "D", B=399, seed=42, bootstrap_weights="webb",
                    ci=False)
    V, prob = auxiliary_draws("webb", 30, 399, seed=42)
    assert V.shape == (30, 399) and prob is None and not res.enumerated
    codes = pd.factorize(df["unit"], sort=True)[0]
    Xd = np.column_stack([df["D"], np.ones(len(df)),
                          pd.get_dummies(df[["unit", "time"]].astype(str), drop_first=True)
                          .to_numpy(float)])
    ref = _brute_force_t(Xd, df["y"].to_numpy(float), codes, 0, 0.0, V[:, :6])
    n = len(df)
    ratio = math.sqrt(((n - 1) / (n - res.info["k"] - res.info["k_fe"]))
                      / ((n - 1) / (n - Xd.shape[1])))
    np.testing.assert_allclose(res.t_boot[:6] * ratio, ref, rtol=1e-8)


def test_fe_by_demeaning_equals_fe_by_dummies():
    df = _sim_fe_data(11, G=6)
    X = df[["x1", "x2"]].to_numpy(float)
    y = df["y"].to_numpy(float)
    cl = df["region"].to_numpy()
    D = pd.get_dummies(df[["unit", "time"]].astype(str), drop_first=True).to_numpy(float)
    Xd = np.column_stack([X, np.ones(len(df)), D])
    for impose in (True, False):
        a = wild_cluster_bootstrap(X, y, cl, param=0, r=0.1, fe=[df["unit"], df["time"]],
                                   B=64, impose_null=impose, small_sample=False)
        b = wild_cluster_bootstrap(Xd, y, cl, param=0, r=0.1, B=64, impose_null=impose,
                                   small_sample=False)
        assert a.enumerated and b.enumerated
        np.testing.assert_allclose(a.t_boot, b.t_boot, rtol=1e-7, atol=1e-9)
        assert a.estimate == pytest.approx(b.estimate, rel=1e-9)
        assert a.p == b.p
        np.testing.assert_allclose(a.ci, b.ci, rtol=1e-6)


def test_large_fe_path_equals_dense_path():
    """The demeaning route used for many FE levels equals the dense (D'D)⁻ route."""
    from evaluering.inference import wild as W

    df = _sim_fe_data(5, G=6)
    X = df[["x1", "x2"]].to_numpy(float)
    for fes in ([df["time"], df["x2"].round()], [df["time"], df["x2"].round(), df["unit"]],
                [df["x1"].round()]):
        prep = W._prepare(X, df["y"].to_numpy(float), df["region"].to_numpy(),
                          [f.to_numpy() for f in fes], df["w"].to_numpy(float))
        assert not prep.nested
        rng = np.random.default_rng(0)
        z = rng.normal(size=len(df))
        U = rng.normal(size=(len(df), 2))
        dense = W._fe_projection_term(prep, z, U)
        slow = W._fe_projection_term_demean(prep, z, U)
        np.testing.assert_allclose(dense, slow, rtol=1e-6, atol=1e-8)
    # the municipality panel shape (98 units × 96 months, clustered by unit): the reduced FE
    # system is singular, and rounding-level eigenvalues must not be inverted (a 2e-3 error
    # before that was handled)
    rng = np.random.default_rng(1)
    n_u, T = 98, 96
    unit = np.repeat(np.arange(n_u), T)
    time = np.tile(np.arange(T), n_u)
    X = rng.normal(size=(n_u * T, 1))
    prep = W._prepare(X, rng.normal(size=n_u * T), unit, [unit, time], None)
    z = rng.normal(size=n_u * T)
    U = rng.normal(size=(n_u * T, 1))
    dense = W._fe_projection_term(prep, z, U)
    slow = W._fe_projection_term_demean(prep, z, U)
    scale = np.abs(slow).max()
    np.testing.assert_allclose(dense, slow, rtol=0, atol=1e-9 * scale)


# ------------------------------------------------------------------ CI by test inversion


@pytest.mark.parametrize("impose", [True, False])
def test_ci_inverts_the_test(collapsed, impose):
    kw = dict(B=999, bootstrap_weights="rademacher", impose_null=impose)
    res = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self", **kw)
    lo, hi = res.ci
    assert lo < res.estimate < hi
    eps = 1e-6 * res.se
    for end, inside in ((lo, lo + eps), (hi, hi - eps)):
        outside = end - eps if end == lo else end + eps
        p_in = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year",
                                  param="post_self", r=inside, ci=False, **kw).p
        p_out = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year",
                                   param="post_self", r=outside, ci=False, **kw).p
        assert p_in >= 0.05 > p_out
        assert abs(p_in - 0.05) <= 2 / 256 + 1e-12  # p jumps by 1/256 (×2 for ±v symmetry)


def test_wcu_differs_from_wcr(collapsed):
    a = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                           r=0.04, B=999)
    b = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                           r=0.04, B=999, impose_null=False)
    assert a.method == "WCR" and b.method == "WCU"
    assert a.p != b.p
    assert not np.allclose(np.sort(np.abs(a.t_boot)), np.sort(np.abs(b.t_boot)))
    # WCU's bootstrap distribution does not depend on the hypothesised value
    c = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                           r=0.0, B=999, impose_null=False)
    np.testing.assert_allclose(b.t_boot, c.t_boot)


# ------------------------------------------------------------------ simulations


def _sim_panel(rng, G=10, T=8, effect=0.0, treated_share=0.5, noise=1.0):
    n_tr = max(1, int(round(G * treated_share)))
    treated = np.zeros(G, bool)
    treated[rng.choice(G, n_tr, replace=False)] = True
    unit = np.repeat(np.arange(G), T)
    time = np.tile(np.arange(T), G)
    D = (treated[unit] & (time >= T // 2)).astype(float)
    # cluster-correlated (AR(1) within unit) errors + unit and time effects
    e = np.zeros((G, T))
    e[:, 0] = rng.normal(size=G)
    for t in range(1, T):
        e[:, t] = 0.7 * e[:, t - 1] + rng.normal(size=G)
    y = rng.normal(size=G)[unit] + 0.2 * time + effect * D + noise * e.ravel()
    return pd.DataFrame({"unit": unit, "time": time, "D": D, "y": y})


def test_planted_effect_is_found_and_covered():
    rng = np.random.default_rng(2024)
    df = _sim_panel(rng, G=12, T=10, effect=1.5, noise=0.4)
    res = wild_twfe(df, "y", "unit", "time", "D", B=999, seed=1,
                    bootstrap_weights="webb")
    assert res.p < 0.01
    assert res.ci[0] < 1.5 < res.ci[1]
    # the point estimate is the TWFE coefficient (independent: statsmodels with dummies)
    fit = sm.OLS(df["y"], pd.get_dummies(df[["unit", "time"]].astype(str), drop_first=True)
                 .astype(float).assign(D=df["D"], const=1.0)).fit()
    assert res.estimate == pytest.approx(fit.params["D"], rel=1e-9)


def test_size_under_null_and_power():
    """WCR rejects a true null at about the nominal rate with 10 clusters; power with an effect."""
    rng = np.random.default_rng(99)
    n_sim = 150
    rej0 = rej1 = 0
    for _ in range(n_sim):
        df = _sim_panel(rng, G=10, T=6, effect=0.0)
        rej0 += wild_twfe(df, "y", "unit", "time", "D", B=199, seed=rng.integers(1 << 30),
                          bootstrap_weights="webb", ci=False).p < 0.10
        df1 = _sim_panel(rng, G=10, T=6, effect=2.0)
        rej1 += wild_twfe(df1, "y", "unit", "time", "D", B=199, seed=rng.integers(1 << 30),
                          bootstrap_weights="webb", ci=False).p < 0.10
    # nominal 10 %: binomial(150, .1) sd ≈ 2.4 % → accept [3 %, 18 %]
    assert 0.03 <= rej0 / n_sim <= 0.18
    assert rej1 / n_sim > 0.8


def test_many_clusters_agrees_with_analytic_t():
    """With many clusters the bootstrap p-value approaches the CRV1 t-test (statsmodels)."""
    rng = np.random.default_rng(5)
    G, m = 150, 4
    cl = np.repeat(np.arange(G), m)
    x = rng.normal(size=G * m) + rng.normal(size=G)[cl]
    y = 0.12 * x + rng.normal(size=G)[cl] + rng.normal(size=G * m)
    X = sm.add_constant(x)
    fit = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": cl}, use_t=True)
    res = wild_cluster_bootstrap(X, y, cl, param=1, B=9999, seed=3, bootstrap_weights="webb")
    assert res.se == pytest.approx(fit.bse[1], rel=1e-9)
    assert res.t_stat == pytest.approx(fit.tvalues[1], rel=1e-9)
    assert abs(res.p - fit.pvalues[1]) < 0.02
    lo, hi = fit.conf_int()[1]
    assert res.ci[0] == pytest.approx(lo, abs=0.1 * fit.bse[1])
    assert res.ci[1] == pytest.approx(hi, abs=0.1 * fit.bse[1])


# ------------------------------------------------------------------ API details


def test_mammen_enumeration_probabilities_sum_to_one(collapsed):
    res = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                             r=0.04, B=999, bootstrap_weights="mammen", ci=False)
    assert res.enumerated and res.draw_prob is not None
    assert res.draw_prob.sum() == pytest.approx(1.0)
    pts, pr = auxiliary_weights("mammen")
    assert pr @ pts == pytest.approx(0.0, abs=1e-12)
    assert pr @ pts ** 2 == pytest.approx(1.0)
    assert pr @ pts ** 3 == pytest.approx(1.0)


def test_restriction_row_and_result_object(collapsed):
    X = sm.add_constant(collapsed[X_COLS].to_numpy(float))
    y = collapsed["hasinsurance"].to_numpy(float)
    cl = collapsed["year"].to_numpy()
    a = wild_cluster_bootstrap(X, y, cl, param=np.array([0, 0, 0, 1.0]), r=0.04, B=999)
    b = wild_cluster_bootstrap(X, y, cl, param=3, r=0.04, B=999)
    assert a.p == b.p and a.ci == pytest.approx(b.ci)
    # post + post_self = 0 (a combination) against statsmodels' t_test
    fit = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": cl})
    c = wild_cluster_bootstrap(X, y, cl, param=[0, 0, 1.0, 1.0], r=0.0, B=999)
    tt = fit.t_test(np.array([[0, 0, 1.0, 1.0]]))
    assert c.estimate == pytest.approx(float(np.squeeze(tt.effect)), rel=1e-9)
    assert c.se == pytest.approx(float(np.squeeze(tt.sd)), rel=1e-9)
    assert isinstance(b, WildBootResult)
    s = b.summary()
    assert list(s["p"]) == [b.p] and s.shape[0] == 1
    d = b.to_dict()
    assert d["enumerated"] is True and d["B_effective"] == 256
    import json

    json.dumps(d)
    er = b.to_estimate_result()
    assert er.inference == "wild" and er.p == b.p
    with pytest.raises(Exception):
        b.p = 0.5  # frozen
    with pytest.raises(ValueError):
        b.t_boot[0] = 1.0  # read-only draws
    import matplotlib

    matplotlib.use("Agg")
    ax = b.plot()
    assert ax.get_title().startswith("x3 = 0.04")


def test_input_errors(collapsed):
    X = np.ones((16, 1))
    with pytest.raises(EstimationError):
        wild_cluster_bootstrap(X, collapsed["hasinsurance"], np.zeros(16), param=0)
    with pytest.raises(ValueError):
        wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                           bootstrap_weights="gauss")
    with pytest.raises(ValueError):
        wild_cluster_bootstrap(np.ones((16, 2)), collapsed["hasinsurance"], collapsed["year"],
                               param=np.ones((2, 2)))
    with pytest.raises(EstimationError):  # collinear with the FE
        wild_cluster_bootstrap(collapsed[["post"]].to_numpy(float), collapsed["hasinsurance"],
                               collapsed["year"], param=0, fe=[collapsed["year"]])


def test_wild_twfe_matches_toolkit_twfe_and_generic_path():
    """wild_twfe (twfe_design) = did.twfe point estimate and CR1 se = generic FE path draws."""
    from evaluering.estimators.did import twfe

    rng = np.random.default_rng(8)
    df = _sim_panel(rng, G=9, T=6, effect=0.5)
    df["w"] = rng.uniform(0.5, 2.0, len(df))
    df["x"] = rng.normal(size=len(df))
    a = wild_twfe(df, "y", "unit", "time", "D", covariates=["x"], weights="w", B=512,
                  bootstrap_weights="rademacher")
    ref = twfe(df, "y", "unit", "time", "D", covariates=["x"], weights="w")
    assert a.enumerated and a.B_effective == 512
    assert a.estimate == pytest.approx(ref.estimate, rel=1e-9)
    assert a.se == pytest.approx(ref.se, rel=1e-9)
    b = wild_bootstrap_ols(df, "y", ["D", "x"], "unit", param="D", fe=["unit", "time"],
                           weights="w", B=512)
    np.testing.assert_allclose(a.t_boot, b.t_boot, rtol=1e-7, atol=1e-9)
    assert a.p == b.p
    np.testing.assert_allclose(a.ci, b.ci, rtol=1e-7)


# ------------------------------------------------------------------ joint tests (q > 1)


def _brute_force_wald(X, y, cl, R, r, V, weights=None, impose_null=True):
    """Refit per draw; CRV1 Wald statistic from statsmodels' wald_test (draws in columns of V)."""
    w = np.ones(len(y)) if weights is None else weights
    fit = sm.WLS(y, X, weights=w).fit()
    beta, XtWX_inv = fit.params, np.linalg.inv(X.T @ (w[:, None] * X))
    if impose_null:
        d = R @ beta - r
        btil = beta - XtWX_inv @ R.T @ np.linalg.solve(R @ XtWX_inv @ R.T, d)
        centre_b, r_star = btil, r
    else:
        centre_b, r_star = beta, R @ beta
    fitted = X @ centre_b
    resid = y - fitted
    codes = pd.factorize(cl, sort=True)[0]
    out = []
    for v in V.T:
        f = sm.WLS(fitted + resid * v[codes], X, weights=w).fit(
            cov_type="cluster", cov_kwds={"groups": codes})
        out.append(float(np.squeeze(f.wald_test((R, r_star), use_f=False, scalar=True).statistic)))
    obs = sm.WLS(y, X, weights=w).fit(cov_type="cluster", cov_kwds={"groups": codes})
    W_obs = float(np.squeeze(obs.wald_test((R, r), use_f=False, scalar=True).statistic))
    return W_obs, np.array(out)


@pytest.mark.parametrize("impose", [True, False])
def test_joint_wald_brute_force_no_fe(collapsed, impose):
    X = sm.add_constant(collapsed[X_COLS].to_numpy(float))
    y = collapsed["hasinsurance"].to_numpy(float)
    cl = collapsed["year"].to_numpy()
    R = np.array([[0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    r = np.array([-0.015, 0.045])
    W_obs, ref = _brute_force_wald(X, y, cl, R, r, _all_draws("rademacher", 8),
                                   impose_null=impose)
    res = wild_cluster_bootstrap(X, y, cl, param=R, r=r, B=999, impose_null=impose)
    assert res.statistic == "F" and res.info["q"] == 2 and res.enumerated
    assert res.t_stat * 2 == pytest.approx(W_obs, rel=1e-9)   # same CRV1 factor (no FE)
    np.testing.assert_allclose(np.sort(res.t_boot * 2), np.sort(ref), rtol=1e-6, atol=1e-10)
    p_ref = np.mean(ref > W_obs * (1 + 1e-9))
    assert res.p == pytest.approx(p_ref)
    assert np.isnan(res.ci[0]) and np.isnan(res.estimate)


def test_joint_wald_brute_force_with_fe_and_weights():
    df = _sim_fe_data(4, G=5)
    X = df[["x1", "x2"]].to_numpy(float)
    y = df["y"].to_numpy(float)
    w = df["w"].to_numpy(float)
    cl = df["region"].to_numpy()
    D = pd.get_dummies(df[["unit", "time"]].astype(str), drop_first=True).to_numpy(float)
    Xd = np.column_stack([X, np.ones(len(df)), D])
    Rd = np.zeros((2, Xd.shape[1]))
    Rd[0, 0] = Rd[1, 1] = 1.0
    W_obs, ref = _brute_force_wald(Xd, y, cl, Rd, np.array([0.2, 0.5]),
                                   _all_draws("rademacher", 5), weights=w)
    res = wild_cluster_bootstrap(X, y, cl, param=[0, 1], r=[0.2, 0.5],
                                 fe=[df["unit"], df["time"]], weights=w, B=32)
    n = len(y)
    c_ratio = ((n - 1) / (n - res.info["k"] - res.info["k_fe"])) / ((n - 1) / (n - Xd.shape[1]))
    assert res.t_stat * 2 * c_ratio == pytest.approx(W_obs, rel=1e-8)
    np.testing.assert_allclose(np.sort(res.t_boot * 2 * c_ratio), np.sort(ref), rtol=1e-6,
                               atol=1e-10)


def test_joint_test_detects_planted_pretrend_and_accepts_flat_leads():
    """Event-study leads: joint H0 of no pre-trend, with and without a planted pre-trend."""
    rng = np.random.default_rng(31)
    G, T = 14, 8
    unit = np.repeat(np.arange(G), T)
    time = np.tile(np.arange(T), G)
    treated = np.arange(G) < 7
    rel = np.where(treated[unit], time - 5, -99)
    leads = {f"lead{k}": ((rel == -k)).astype(float) for k in (2, 3, 4)}
    base = pd.DataFrame({"unit": unit, "time": time, **leads,
                         "post": (treated[unit] & (time >= 5)).astype(float)})
    noise = rng.normal(size=G)[unit] + 0.3 * rng.normal(size=G * T)
    flat = base.assign(y=noise + 1.0 * base["post"])
    trend = base.assign(y=flat["y"] + 1.5 * (base["lead2"] - base["lead4"]))
    cols = ["lead2", "lead3", "lead4", "post"]
    p_flat = wild_twfe(flat, "y", "unit", "time", cols, param=["lead2", "lead3", "lead4"],
                       B=1999, seed=2, bootstrap_weights="webb").p
    p_trend = wild_twfe(trend, "y", "unit", "time", cols, param=["lead2", "lead3", "lead4"],
                        B=1999, seed=2, bootstrap_weights="webb").p
    assert p_flat > 0.05
    assert p_trend < 0.01


# ------------------------------------------------------------------ p-value types, speed


def test_p_value_types_follow_their_definitions(collapsed):
    kw = dict(r=0.04, B=999, ci=False)
    base = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self", **kw)
    tb, t = base.t_boot, base.t_stat
    tol = 1e-9 * max(1, abs(t))
    for p_type, expected in (
            ("greater", np.mean(tb > t + tol)),
            ("less", np.mean(tb < t - tol)),
            ("equal-tail", min(1.0, 2 * min(np.mean(tb <= t + tol), np.mean(tb > t + tol))))):
        res = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                                 p_type=p_type, **kw)
        assert res.p == pytest.approx(expected)
        np.testing.assert_array_equal(res.t_boot, tb)
    # one-sided test inverted: a one-sided interval
    res = wild_bootstrap_ols(collapsed, "hasinsurance", X_COLS, "year", param="post_self",
                             p_type="greater", B=999)
    assert np.isfinite(res.ci[0]) and res.ci[1] == np.inf


def test_municipality_panel_full_draws():
    """98 kommuner × 96 months TWFE with 9,999 draws and the CI runs through (its time is
    measured in benchmarks/, not here: no timed unit tests)."""
    rng = np.random.default_rng(0)
    df = _sim_panel(rng, G=98, T=96, effect=0.1)
    res = wild_twfe(df, "y", "unit", "time", "D", B=9999, seed=1)
    assert res.B_effective == 9999 and res.n_clusters == 98
    assert res.ci[0] < res.estimate < res.ci[1] and 0 <= res.p <= 1


def test_brute_force_mammen_enumerated_probability_weighted(collapsed):
    X = sm.add_constant(collapsed[X_COLS].to_numpy(float))
    y = collapsed["hasinsurance"].to_numpy(float)
    cl = collapsed["year"].to_numpy()
    pts, pr = auxiliary_weights("mammen")
    combos = list(itertools.product(range(2), repeat=8))
    V = np.array([[pts[i] for i in c] for c in combos]).T
    prob = np.array([np.prod([pr[i] for i in c]) for c in combos])
    ref = _brute_force_t(X, y, cl, 3, 0.04, V)
    res = wild_cluster_bootstrap(X, y, cl, param=3, r=0.04, B=999, bootstrap_weights="mammen",
                                 ci=False)
    assert res.enumerated
    np.testing.assert_allclose(np.sort(res.t_boot), np.sort(ref), rtol=1e-7, atol=1e-9)
    t = abs(res.t_stat)
    assert res.p == pytest.approx(float(prob[np.abs(ref) > t * (1 + 1e-9)].sum()), abs=1e-12)


def test_ci_ends_by_brute_force(collapsed):
    """At the WCR interval's ends the brute-force (statsmodels refit) p-value crosses alpha."""
    X = sm.add_constant(collapsed[X_COLS].to_numpy(float))
    y = collapsed["hasinsurance"].to_numpy(float)
    cl = collapsed["year"].to_numpy()
    res = wild_cluster_bootstrap(X, y, cl, param=3, B=999, alpha=0.1)
    V = _all_draws("rademacher", 8)

    def p_brute(r):
        tb = _brute_force_t(X, y, cl, 3, r, V)
        fit = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": cl})
        t = (fit.params[3] - r) / fit.bse[3]
        return np.mean(np.abs(tb) > abs(t) * (1 + 1e-9))

    eps = 1e-5 * res.se
    lo, hi = res.ci
    assert p_brute(lo + eps) >= 0.1 > p_brute(lo - eps)
    assert p_brute(hi - eps) >= 0.1 > p_brute(hi + eps)
