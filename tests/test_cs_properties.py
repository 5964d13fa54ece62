"""Callaway–Sant'Anna: influence functions, independent computations, bootstrap, errors.

The influence functions are checked against numerical derivatives of the point estimator
itself: for a weighted estimator theta(w), the empirical influence of sampling unit i is
n * w_i * d theta / d w_i (scale the unit's weight by 1 +- h; the estimators are invariant to
the scale of the weights). This validates every variant (panel/RCS, DR/IPW/OR, aggregations
with the estimated-weight correction) independently of the analytic formulas.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from evaluering.errors import EstimationError
from evaluering.estimators.cs import callaway_santanna, cs_aggregate, cs_influence

MPDTA = Path(__file__).parent / "data" / "mpdta.csv"


@pytest.fixture(scope="module")
def mpdta():
    return pd.read_csv(MPDTA, engine="pyarrow")


def small_panel(n=80, T=5, seed=0):
    """Staggered panel with a covariate that shifts both cohort membership and trends."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    pr = np.exp(np.c_[np.zeros(n), 0.5 * x, -0.3 * x, 0.2 * x])
    pr /= pr.sum(1, keepdims=True)
    g = np.array([0, 3, 4, 5])[[rng.choice(4, p=p) for p in pr]]
    w = rng.uniform(0.5, 1.5, n)
    a = rng.normal(size=n)
    rows = []
    for t in range(1, T + 1):
        y = a + 0.3 * t + 0.2 * t * x + (g > 0) * (t >= g) * (1 + 0.5 * (t - g)) + rng.normal(size=n)
        rows.append(pd.DataFrame(dict(id=np.arange(n), t=t, g=g, y=y, x=x, w=w)))
    return pd.concat(rows, ignore_index=True)


def _theta(df, comp, kw):
    r = callaway_santanna(df, "y", "id", "t", "g", weights="w", **kw)
    if comp == "overall":
        return np.array([v["att"] for v in r.info["overall"].values()])
    return r.components[comp]["att"].to_numpy()


CASES = [
    (True, [], "dr", True, "never", "varying", "att_gt"),
    (True, [], "dr", True, "never", "varying", "event"),
    (True, [], "dr", True, "notyet", "varying", "overall"),
    (True, [], "dr", True, "never", "universal", "group"),
    (True, [], "dr", True, "never", "varying", "calendar"),
    (True, ["x"], "dr", False, "never", "varying", "att_gt"),
    (True, ["x"], "ipw", False, "never", "varying", "att_gt"),
    (True, ["x"], "reg", False, "never", "varying", "att_gt"),
    (True, ["x"], "dr", False, "notyet", "varying", "overall"),
    (False, [], "dr", True, "never", "varying", "att_gt"),
    (False, [], "dr", True, "notyet", "varying", "overall"),
    (False, ["x"], "dr", False, "never", "varying", "att_gt"),
    (False, ["x"], "ipw", False, "never", "varying", "att_gt"),
    (False, ["x"], "reg", False, "never", "varying", "att_gt"),
    (False, ["x"], "dr", False, "never", "varying", "event"),
]


@pytest.mark.parametrize("panel,covs,method,ss,control,base,comp", CASES)
def test_influence_function_is_derivative_of_estimator(panel, covs, method, ss, control, base, comp):
    df = small_panel()
    kw = dict(covariates=covs, est_method=method, panel=panel, _sufficient_stats=ss,
              control=control, base_period=base)
    r = callaway_santanna(df, "y", "id", "t", "g", weights="w", **kw)
    inf = cs_influence(r, comp)
    h = 1e-5
    for row in (0, 23, 66):
        d1, d2 = df.copy(), df.copy()
        m = (d1["id"] == inf.row_ids[row]) if panel else (d1.index == inf.row_ids[row])
        d1.loc[m, "w"] *= 1 + h
        d2.loc[m, "w"] *= 1 - h
        fd = (_theta(d1, comp, kw) - _theta(d2, comp, kw)) / (2 * h) * inf.n
        np.testing.assert_allclose(inf.values[row], fd, atol=1e-6 * max(1, np.abs(fd).max()))
    # the analytic SE is the root mean square of the influence function over n
    se = r.components[comp]["se"].to_numpy() if comp != "overall" else \
        np.array([v["se"] for v in r.info["overall"].values()])
    np.testing.assert_allclose(se, np.sqrt((inf.values ** 2).sum(0)) / inf.n, rtol=1e-10)


@pytest.mark.parametrize("panel", [True, False])
def test_dr_ipw_reg_identical_without_covariates(mpdta, panel):
    """Without covariates all three 2x2 estimators are the plain DiD of means (and the
    generic regression code path equals the sufficient-statistics path)."""
    base = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", panel=panel)
    ref = base.components["att_gt"]
    for m in ("dr", "ipw", "reg"):
        r = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", panel=panel,
                              est_method=m, _sufficient_stats=False)
        gt = r.components["att_gt"]
        np.testing.assert_allclose(gt["att"], ref["att"], atol=1e-12)
        np.testing.assert_allclose(gt["se"], ref["se"], rtol=1e-9)
        assert r.se == pytest.approx(base.se, rel=1e-9)


def test_panel_as_repeated_cross_sections_same_point_estimates(mpdta):
    p = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat")
    r = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", panel=False)
    np.testing.assert_allclose(r.components["att_gt"]["att"], p.components["att_gt"]["att"], atol=1e-12)
    assert r.n_obs == 2500 and r.n_units == 500
    # cross-section SEs ignore the within-unit correlation: they differ
    assert not np.allclose(r.components["att_gt"]["se"], p.components["att_gt"]["se"], rtol=0.05)


def _did_2x2(mpdta, g, t, b, cov="lpop"):
    """Change in lemp from b to t, treatment indicator and the covariate in the base period."""
    d = mpdta[mpdta["first.treat"].isin([g, 0])]
    wide = d.pivot(index="countyreal", columns="year", values="lemp")
    info = d.groupby("countyreal")[["first.treat"]].first()
    x = d[d["year"] == b].set_index("countyreal")[cov].loc[info.index]
    dy = (wide[t] - wide[b]).loc[info.index]
    D = (info["first.treat"] == g).astype(float)
    return dy.to_numpy(), D.to_numpy(), x.to_numpy()


@pytest.mark.parametrize("g,t,b,cov", [(2004, 2006, 2003, "lpop"), (2006, 2007, 2005, "lpop"),
                                       (2007, 2005, 2004, "lpop"), (2006, 2007, 2005, "xtv"),
                                       (2007, 2005, 2004, "xtv")])
def test_covariate_att_gt_against_statsmodels(mpdta, g, t, b, cov):
    """OR, IPW and DR ATT(g,t) with a covariate computed by hand with statsmodels (``xtv``
    varies over time: the base-period value is used)."""
    rng = np.random.default_rng(0)
    mpdta = mpdta.assign(xtv=mpdta["lpop"] + rng.normal(scale=0.5, size=len(mpdta)))
    dy, D, x = _did_2x2(mpdta, g, t, b, cov)
    X = sm.add_constant(x)
    ols = sm.OLS(dy[D == 0], X[D == 0]).fit()
    m = ols.predict(X)
    att_reg = np.mean(dy[D == 1] - m[D == 1])
    ps = sm.Logit(D, X).fit(disp=0).predict(X)
    wc = ps * (1 - D) / (1 - ps)
    att_ipw = dy[D == 1].mean() - np.sum(wc * dy) / wc.sum()
    att_dr = np.mean(dy[D == 1] - m[D == 1]) - np.sum(wc * (dy - m)) / wc.sum()
    for method, expected in (("reg", att_reg), ("ipw", att_ipw), ("dr", att_dr)):
        r = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat",
                              covariates=[cov], est_method=method)
        got = r.components["att_gt"].set_index(["group", "time"]).loc[(g, t), "att"]
        assert got == pytest.approx(expected, abs=1e-9), method


def test_universal_base_period_algebra(mpdta):
    """Universal base: post ATT(g,t) as with a varying base; pre ATT(g,t) are minus the sums
    of the varying-base short differences up to g-1; ATT(g, g-1) = 0 with no SE."""
    v = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat")
    u = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", base_period="universal")
    vg = v.components["att_gt"].set_index(["group", "time"])["att"]
    ug = u.components["att_gt"].set_index(["group", "time"])
    for (g, t), att in ug["att"].items():
        if t >= g:
            assert att == pytest.approx(vg[(g, t)], abs=1e-12)
        elif t == g - 1:
            assert att == 0 and np.isnan(ug.loc[(g, t), "se"])
        else:
            assert att == pytest.approx(-sum(vg[(g, s)] for s in range(t + 1, g)), abs=1e-12)
    assert u.info["base_period"] == "universal"
    assert 0 in u.components["event"]["e"].tolist() and -1 in u.components["event"]["e"].tolist()


def test_anticipation_by_hand(mpdta):
    r = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", anticipation=1)
    gt = r.components["att_gt"].set_index(["group", "time"])
    wide = mpdta.pivot(index="countyreal", columns="year", values="lemp")
    coh = mpdta.groupby("countyreal")["first.treat"].first()
    for g, t in ((2007, 2007), (2007, 2006), (2006, 2007)):
        d = wide[t] - wide[g - 2]
        expected = d[coh == g].mean() - d[coh == 0].mean()
        assert gt.loc[(g, t), "att"] == pytest.approx(expected, abs=1e-12)
        assert gt.loc[(g, t), "base"] == g - 2
    # cohort 2004 has no period before 2004-1 = 2003: dropped with a warning
    assert 2004 not in gt.index.get_level_values(0)
    assert any("dropped 20 unit" in w for w in r.info["warnings"])


def test_bootstrap_matches_analytic(mpdta):
    r = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", bootstrap=True,
                          n_boot=999, seed=1, aggregation="dynamic")
    a = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", aggregation="dynamic")
    assert r.inference == "bootstrap" and r.info["bootstrap_weights"] == "mammen"
    for comp in ("att_gt", "event", "group", "calendar"):
        rb, ra = r.components[comp]["se"].to_numpy(), a.components[comp]["se"].to_numpy()
        rel = np.abs(rb / ra - 1)
        assert rel.max() < 0.15 and rel.mean() < 0.06, comp  # Monte Carlo error of IQR SEs
    assert r.se == pytest.approx(a.se, rel=0.1)
    # uniform bands: sup-t critical value above the pointwise one, below Bonferroni
    crit = r.info["crit_val_att_gt"]
    assert 1.96 < crit < 3.2
    gt = r.components["att_gt"]
    assert (gt["ucb_high"] - gt["ucb_low"] > gt["ci_high"] - gt["ci_low"]).all()
    assert 1.96 < r.info["crit_val_event"] < 3.0
    # reproducible with a seed
    r2 = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", bootstrap=True,
                           n_boot=999, seed=1, aggregation="dynamic")
    assert r2.se == r.se


@pytest.mark.parametrize("covs", [[], ["lpop"]])
def test_clustered_analytic_matches_cluster_sums(mpdta, covs):
    df = mpdta.assign(state=mpdta["countyreal"] // 1000)
    a = callaway_santanna(df, "lemp", "countyreal", "year", "first.treat", cluster="state",
                          covariates=covs)
    # independent: sum the (materialised) influence functions within states with pandas
    st_of = df.groupby("countyreal")["state"].first()
    for comp in ("att_gt", "event", "overall"):
        inf = cs_influence(a, comp)
        sums = pd.DataFrame(inf.values).groupby(pd.Series(inf.row_ids).map(st_of).to_numpy()).sum()
        se = np.sqrt((sums.to_numpy() ** 2).sum(0)) / inf.n
        got = (a.components[comp]["se"].to_numpy() if comp != "overall"
               else np.array([v["se"] for v in a.info["overall"].values()]))
        np.testing.assert_allclose(got, se, rtol=1e-10)


def test_clustered_analytic_and_bootstrap(mpdta):
    df = mpdta.assign(state=mpdta["countyreal"] // 1000)
    a = callaway_santanna(df, "lemp", "countyreal", "year", "first.treat", cluster="state")
    assert a.info["n_clusters"] == df["state"].nunique()
    # clustering at the unit level is the unclustered analytic SE
    u = callaway_santanna(df, "lemp", "countyreal", "year", "first.treat", cluster="countyreal")
    p = callaway_santanna(df, "lemp", "countyreal", "year", "first.treat")
    np.testing.assert_allclose(u.components["att_gt"]["se"], p.components["att_gt"]["se"], rtol=1e-10)
    b = callaway_santanna(df, "lemp", "countyreal", "year", "first.treat", cluster="state",
                          bootstrap=True, n_boot=999, seed=3)
    rel = np.abs(b.components["att_gt"]["se"] / a.components["att_gt"]["se"] - 1)
    assert rel.max() < 0.2 and rel.mean() < 0.08


def test_cs_aggregate_options(mpdta):
    r = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat")
    d = cs_aggregate(r, "dynamic", min_e=-1, max_e=2)
    assert d.components["event"]["e"].tolist() == [-1, 0, 1, 2]
    ev = r.components["event"].set_index("e")["att"]
    assert d.estimate == pytest.approx(ev[[0, 1, 2]].mean(), abs=1e-12)
    assert d.info["aggregation"] == "dynamic"
    with pytest.raises(ValueError):
        cs_aggregate(r, "nonsense")


# ------------------------------------------------------------------------ error cases


def test_errors(mpdta):
    base = dict(y="lemp", unit="countyreal", time="year", cohort="first.treat")
    with pytest.raises(EstimationError, match="never-treated"):
        callaway_santanna(mpdta[mpdta["first.treat"] > 0], **base)
    # not-yet-treated controls work without never-treated units; the last cohort has no
    # comparison units once it is treated: those ATT(g,t) are skipped with a warning
    r = callaway_santanna(mpdta[mpdta["first.treat"] > 0], **base, control="notyet")
    gt = r.components["att_gt"]
    assert not ((gt["group"] == 2007) & (gt["time"] == 2007)).any()
    assert ((gt["group"] == 2006) & (gt["time"] == 2006)).any()
    assert any("ATT(2007,2007) skipped" in w for w in r.info["warnings"])
    bad = mpdta.copy()
    bad.loc[3, "lemp"] = np.nan
    with pytest.raises(EstimationError, match="missing"):
        callaway_santanna(bad, **base)
    bad = mpdta.copy()
    bad.loc[3, "year"] = np.nan
    with pytest.raises(EstimationError, match="missing"):
        callaway_santanna(bad, **base)
    with pytest.raises(EstimationError, match="duplicate"):
        callaway_santanna(pd.concat([mpdta, mpdta.iloc[:1]]), **base)
    with pytest.raises(EstimationError, match="two time periods"):
        callaway_santanna(mpdta[mpdta.year == 2004], **base)
    bad = mpdta.copy()
    bad.loc[bad.index[0], "first.treat"] = 2006  # cohort changes within a unit
    with pytest.raises(EstimationError, match="constant within"):
        callaway_santanna(bad, **base)
    bad = mpdta.astype({"first.treat": float})
    bad.loc[bad["first.treat"] == 2004, "first.treat"] = 2004.5
    with pytest.raises(EstimationError, match="not observed periods"):
        callaway_santanna(bad, **base)
    with pytest.raises(EstimationError, match="no treated cohort"):
        callaway_santanna(mpdta.assign(**{"first.treat": 0}), **base)
    with pytest.raises(ValueError):
        callaway_santanna(mpdta, **base, control="sometimes")
    with pytest.raises(EstimationError, match="unit column"):
        callaway_santanna(mpdta, "lemp", None, "year", "first.treat")
    with pytest.raises(EstimationError, match="singular"):
        callaway_santanna(mpdta.assign(c=1.0), **base, covariates=["c"])


def test_first_period_cohort_dropped_with_warning(mpdta):
    df = mpdta.copy()
    ids = df["countyreal"].drop_duplicates().iloc[:5]
    df.loc[df["countyreal"].isin(ids), "first.treat"] = 2003
    r = callaway_santanna(df, "lemp", "countyreal", "year", "first.treat")
    assert r.n_units == 495
    assert any("first period" in w for w in r.info["warnings"])
    assert 2003 not in set(r.components["att_gt"]["group"])


def test_unbalanced_panel_dropped_or_cross_section(mpdta):
    df = mpdta.drop(index=[0, 7, 12])  # three units lose one year
    r = callaway_santanna(df, "lemp", "countyreal", "year", "first.treat")
    assert r.n_units == 497 and any("not observed in every period" in w for w in r.info["warnings"])
    rc = callaway_santanna(df, "lemp", "countyreal", "year", "first.treat", panel=False,
                           cluster="countyreal")
    assert rc.n_obs == len(df) and rc.n_units == 500
    assert rc.estimate == pytest.approx(r.estimate, abs=0.01)


def test_single_unit_cohort_warns(mpdta):
    df = mpdta.copy()
    one = df.loc[df["first.treat"] == 0, "countyreal"].iloc[0]
    df.loc[df["countyreal"] == one, "first.treat"] = 2005
    r = callaway_santanna(df, "lemp", "countyreal", "year", "first.treat")
    assert any("single unit" in w for w in r.info["warnings"])
    assert 2005 in set(r.components["att_gt"]["group"])


def test_cross_section_clustered_by_unit_equals_panel(mpdta):
    """On a balanced panel, the repeated-cross-section estimator with influence functions
    summed within units reproduces the panel estimator's analytic SEs exactly (two separate
    code paths: cohort-period cells vs. unit rows)."""
    p = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", aggregation="group")
    r = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", panel=False,
                          cluster="countyreal", aggregation="group")
    for comp in ("att_gt", "event", "group", "calendar"):
        np.testing.assert_allclose(r.components[comp]["se"], p.components[comp]["se"], rtol=1e-9)
    assert r.se == pytest.approx(p.se, rel=1e-9)
    assert r.info["pretest_p"] == pytest.approx(p.info["pretest_p"], rel=1e-7)


def test_unconditional_estimator_is_fast_and_lean():
    """Sufficient-statistics path: 200 000 units x 10 periods (2 M rows) in well under a
    second of CPU (about 0.35 s measured) and a traced peak of a few times the input size."""
    import time
    import tracemalloc

    n, T = 200_000, 10
    rng = np.random.default_rng(0)
    g = rng.choice([0, 4, 6, 8], size=n)
    df = pd.DataFrame({"id": np.repeat(np.arange(n), T), "t": np.tile(np.arange(1, T + 1), n),
                       "g": np.repeat(g, T), "y": rng.normal(size=n * T)})
    input_mb = df.memory_usage().sum() / 2**20
    tracemalloc.start()
    try:
        c0 = time.process_time()
        r = callaway_santanna(df, "y", "id", "t", "g")
        cpu = time.process_time() - c0
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert len(r.components["att_gt"]) == 27
    assert cpu < 4.0
    assert peak_mb < 4 * input_mb


def test_weighted_covariate_att_gt_against_statsmodels(mpdta):
    """Sampling weights: WLS outcome model and weighted logit (statsmodels GLM with
    frequency weights) by hand give the weighted OR/IPW/DR ATT(g,t)."""
    g, t, b = 2006, 2007, 2005
    df = mpdta.assign(w=1.0 + (mpdta["countyreal"] % 4))
    dy, D, x = _did_2x2(df, g, t, b)
    wu = df[df["first.treat"].isin([g, 0])].groupby("countyreal")["w"].first().to_numpy()
    X = sm.add_constant(x)
    c = D == 0
    m = sm.WLS(dy[c], X[c], weights=wu[c]).fit().predict(X)
    ps = sm.GLM(D, X, family=sm.families.Binomial(), freq_weights=wu).fit().predict(X)
    wt, wc = wu * D, wu * ps * (1 - D) / (1 - ps)
    expected = {
        "reg": np.sum(wt * (dy - m)) / wt.sum(),
        "ipw": np.sum(wt * dy) / wt.sum() - np.sum(wc * dy) / wc.sum(),
        "dr": np.sum(wt * (dy - m)) / wt.sum() - np.sum(wc * (dy - m)) / wc.sum(),
    }
    for method, value in expected.items():
        r = callaway_santanna(df, "lemp", "countyreal", "year", "first.treat", weights="w",
                              covariates=["lpop"], est_method=method)
        got = r.components["att_gt"].set_index(["group", "time"]).loc[(g, t), "att"]
        assert got == pytest.approx(value, abs=1e-9), method


def test_aggregated_cells_reproduce_person_level_clustered_inference():
    """The influence function is linear in y within a (cohort, period) cell, so municipality x
    period cell means with weights = cell counts and clustering on municipality give exactly
    the person-level repeated-cross-section estimates and clustered SEs."""
    rng = np.random.default_rng(4)
    K, T = 30, 6
    coh = rng.choice([0, 3, 4, 5], size=K)
    rows = []
    for k in range(K):
        for t in range(1, T + 1):
            m = rng.integers(5, 40)
            eff = 0.5 if coh[k] and t >= coh[k] else 0.0
            y = rng.normal(0.3 * k / K + 0.1 * t + eff + rng.normal(scale=0.2), 1.0, size=m)
            rows.append(pd.DataFrame({"kom": k, "t": t, "g": coh[k], "y": y}))
    persons = pd.concat(rows, ignore_index=True)
    cells = persons.groupby(["kom", "t", "g"], as_index=False).agg(y=("y", "mean"), n=("y", "size"))
    for agg in ("simple", "dynamic"):
        p = callaway_santanna(persons, "y", None, "t", "g", panel=False, cluster="kom",
                              aggregation=agg)
        c = callaway_santanna(cells, "y", None, "t", "g", panel=False, cluster="kom", weights="n",
                              aggregation=agg)
        assert c.estimate == pytest.approx(p.estimate, abs=1e-12)
        assert c.se == pytest.approx(p.se, rel=1e-9)
        np.testing.assert_allclose(c.components["att_gt"]["se"], p.components["att_gt"]["se"],
                                   rtol=1e-9)
    assert c.n_obs == len(cells) and p.n_obs == len(persons)


def test_pretest_warns_on_near_singular_covariance():
    """Few treated clusters and many pre-periods (the report's design): the chi2 pre-test's
    covariance is near-singular and the result says so; mpdta's (well conditioned) does not."""
    import numpy as np
    import pandas as pd

    from evaluering.estimators.cs import callaway_santanna

    rng = np.random.default_rng(3)
    rows = []
    for u in range(40):
        g = 9 if u < 3 else 0                      # 3 treated clusters, 7 pre-periods
        for t in range(1, 13):
            n = int(rng.integers(5, 60))
            rows.append({"u": u, "t": t, "g": g, "n": n, "y": rng.normal(0, 1 / np.sqrt(n))})
    d = pd.DataFrame(rows)
    r = callaway_santanna(d, "y", None, "t", "g", weights="n", cluster="u", panel=False,
                          control="notyet")
    assert any("pre-test unreliable" in w for w in r.info["warnings"])
    mp = pd.read_csv(Path(__file__).parent / "data" / "mpdta.csv")
    r2 = callaway_santanna(mp, "lemp", "countyreal", "year", "first.treat")
    assert not any("pre-test unreliable" in w for w in r2.info["warnings"])
    assert r2.info["pretest_p"] == pytest.approx(0.16812, abs=5e-5)


@pytest.mark.parametrize("control", ["notyet", "never"])
def test_cells_as_repeated_cross_sections_equal_hand_did_of_weighted_means(control):
    """The report's form (panel=False, cell weights, clusters, unbalanced cells): every
    ATT(g,t) equals the 2x2 DiD of weighted cell means computed by hand in pandas, with the
    varying base period and R did's comparison groups (never treated, plus for "notyet" the
    cohorts not yet treated at max(t, base), the cohort itself excluded)."""
    rng = np.random.default_rng(5)
    coh = {u: (0 if u >= 20 else [4, 6, 8][u % 3]) for u in range(50)}
    rows = []
    for u in range(50):
        for t in range(1, 11):
            if rng.random() < 0.1:
                continue                                 # empty cells
            n = int(rng.integers(3, 80))
            eff = 0.5 * (t - coh[u] + 1) if coh[u] and t >= coh[u] else 0.0
            rows.append({"u": u, "t": t, "g": coh[u], "n": n,
                         "y": 0.1 * u + 0.2 * t + eff + rng.normal(0, 1 / np.sqrt(n))})
    d = pd.DataFrame(rows)
    r = callaway_santanna(d, "y", None, "t", "g", weights="n", cluster="u", panel=False,
                          control=control)
    gt = r.component("att_gt").set_index(["group", "time"])["att"]

    def wmean(x):
        return float(np.average(x["y"], weights=x["n"]))

    checked = 0
    for g in (4, 6, 8):
        for t in range(2, 11):
            b = t - 1 if t < g else g - 1
            grp = d[d["g"] == g]
            ctl = d[(d["g"] == 0) | ((d["g"] > max(t, b)) & (d["g"] != g))] if control == "notyet" \
                else d[d["g"] == 0]
            if (ctl.t == t).sum() == 0 or (ctl.t == b).sum() == 0:
                continue
            hand = (wmean(grp[grp.t == t]) - wmean(grp[grp.t == b])) - \
                   (wmean(ctl[ctl.t == t]) - wmean(ctl[ctl.t == b]))
            assert gt[(g, t)] == pytest.approx(hand, abs=1e-10), (g, t)
            checked += 1
    assert checked >= 25
