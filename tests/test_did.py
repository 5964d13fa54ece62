"""2×2 DiD and TWFE against published numbers and independent computations."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from evaluering.errors import EstimationError
from evaluering.estimators.did import did2x2, twfe, twfe_design

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def mpdta():
    d = pd.read_csv(DATA / "mpdta.csv", engine="pyarrow")
    d["post"] = d["treat"] * (d["year"] >= d["first.treat"]).astype(int)
    return d


@pytest.fixture(scope="module")
def mp_small(mpdta):
    """Every 4th county (125 counties): keeps the dummy-variable reference regressions fast."""
    return mpdta[mpdta["countyreal"].rank(method="dense") % 4 == 0].reset_index(drop=True)


def test_twfe_mpdta_matches_fixest_published(mpdta):
    # feols(lemp ~ post | countyreal + year, cluster = ~countyreal): -0.036549 (0.013265)
    r = twfe(mpdta, "lemp", "countyreal", "year", "post", cluster="countyreal")
    assert r.estimate == pytest.approx(-0.036549, abs=5e-7)
    assert r.se == pytest.approx(0.013265, abs=5e-7)
    assert r.info["df"] == 499 and r.n_units == 500 and r.n_obs == 2500
    # default clustering is by unit
    assert twfe(mpdta, "lemp", "countyreal", "year", "post").se == r.se


def _sm_dummies(df, formula, cluster=None, weights=None, cov="cluster"):
    mod = smf.wls(formula, df, weights=df[weights]) if weights else smf.ols(formula, df)
    if cov == "cluster":
        return mod.fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(df[cluster])[0]})
    return mod.fit(cov_type="HC1")


@pytest.mark.parametrize("weighted", [False, True])
def test_twfe_matches_statsmodels_dummies_with_covariate_and_weights(mp_small, weighted):
    d = mp_small.copy()
    rng = np.random.default_rng(1)
    d["x"] = d["lpop"] * (d["year"] - 2003) + rng.normal(size=len(d))
    d["w"] = rng.uniform(0.5, 2.0, size=len(d))
    w = "w" if weighted else None
    r = twfe(d, "lemp", "countyreal", "year", "post", covariates=["x"], weights=w,
             cluster="countyreal")
    sm = _sm_dummies(d, "lemp ~ post + x + C(countyreal) + C(year)", "countyreal", w)
    assert r.estimate == pytest.approx(sm.params["post"], rel=1e-9)
    coef = r.component("coefficients").set_index("term")
    assert coef.loc["x", "estimate"] == pytest.approx(sm.params["x"], rel=1e-8)
    # statsmodels counts every dummy in K; fixest-style K drops the unit effects nested in the
    # clusters: rescale the (N-1)/(N-K) factor and compare the rest of the sandwich exactly.
    n, k_sm, k_ours = len(d), sm.params.size, r.info["k"]
    se_expected = sm.bse["post"] * np.sqrt((n - k_sm) / (n - k_ours))
    assert r.se == pytest.approx(se_expected, rel=1e-8)
    assert k_ours == 2 + 5  # post, x + 5 year levels


def test_twfe_hc1_matches_statsmodels(mp_small):
    r = twfe(mp_small, "lemp", "countyreal", "year", "post", cluster=False)
    sm = _sm_dummies(mp_small, "lemp ~ post + C(countyreal) + C(year)", cov="hc1")
    assert r.estimate == pytest.approx(sm.params["post"], rel=1e-9)
    assert r.se == pytest.approx(sm.bse["post"], rel=1e-8)
    assert r.info["vcov"] == "hc1"


def test_twfe_matches_linearmodels_panelols(mpdta):
    from linearmodels.panel import PanelOLS

    d = mpdta.set_index(["countyreal", "year"])
    rng = np.random.default_rng(2)
    d["w"] = rng.uniform(0.5, 2, len(d))
    lm = PanelOLS(d["lemp"], d[["post"]], entity_effects=True, time_effects=True,
                  weights=d["w"]).fit(cov_type="clustered", cluster_entity=True)
    r = twfe(mpdta.assign(w=d["w"].to_numpy()), "lemp", "countyreal", "year", "post", weights="w")
    assert r.estimate == pytest.approx(lm.params["post"], rel=1e-9)


def test_twfe_unbalanced_matches_statsmodels(mp_small):
    d = mp_small.sample(frac=0.8, random_state=3).reset_index(drop=True)
    r = twfe(d, "lemp", "countyreal", "year", "post", cluster=False)
    sm = _sm_dummies(d, "lemp ~ post + C(countyreal) + C(year)", cov="hc1")
    assert r.estimate == pytest.approx(sm.params["post"], rel=1e-8)
    assert r.se == pytest.approx(sm.bse["post"], rel=1e-7)


def test_frequency_weights_equal_replicated_rows(mpdta):
    d = mpdta.copy()
    rng = np.random.default_rng(4)
    d["fw"] = rng.integers(1, 4, len(d))
    expanded = d.loc[d.index.repeat(d["fw"])].reset_index(drop=True)
    a = twfe(d, "lemp", "countyreal", "year", "post", weights="fw", weight_type="frequency")
    b = twfe(expanded, "lemp", "countyreal", "year", "post")
    assert a.estimate == pytest.approx(b.estimate, rel=1e-9)
    assert a.se == pytest.approx(b.se, rel=1e-8)
    a1 = twfe(d, "lemp", "countyreal", "year", "post", weights="fw", weight_type="frequency",
              cluster=False)
    b1 = twfe(expanded, "lemp", "countyreal", "year", "post", cluster=False)
    assert a1.se == pytest.approx(b1.se, rel=1e-8)


def test_twfe_design_reproduces_fit(mpdta):
    des = twfe_design(mpdta, "lemp", "countyreal", "year", "post", cluster="countyreal")
    assert des.X.shape == (2500, 1) and des.n_clusters == 500 and des.k == 6
    # demeaned columns are orthogonal to unit and time dummies
    assert np.abs(np.bincount(des.unit_codes, des.X[:, 0])).max() < 1e-10
    assert np.abs(np.bincount(des.time_codes, des.y)).max() < 1e-10
    fit = des.fit()
    assert fit.beta[0] == pytest.approx(-0.036549, abs=5e-7)


def test_did2x2_card_krueger_matches_statsmodels():
    ck = pd.read_csv(DATA / "card_krueger.csv").dropna(subset=["fte"])
    r = did2x2(ck, "fte", "nj", "d", cluster="id")
    sm = smf.ols("fte ~ nj + d + nj:d", ck).fit(cov_type="cluster",
                                                cov_kwds={"groups": pd.factorize(ck["id"])[0]})
    assert r.estimate == pytest.approx(sm.params["nj:d"], rel=1e-10)
    assert r.se == pytest.approx(sm.bse["nj:d"], rel=1e-8)
    assert 2.6 < r.estimate < 3.0  # Card & Krueger's DiD in FTE employment (≈ 2.75)
    # the interaction equals the difference of the four cell-mean differences
    c = r.component("cells").set_index(["group", "post"])["mean"]
    assert r.estimate == pytest.approx((c[1, 1] - c[1, 0]) - (c[0, 1] - c[0, 0]), rel=1e-10)
    # weighted (WLS) with clustering
    ck = ck.assign(w=np.random.default_rng(1).uniform(0.5, 2, len(ck)))
    rw = did2x2(ck, "fte", "nj", "d", cluster="id", weights="w")
    smw = smf.wls("fte ~ nj + d + nj:d", ck, weights=ck["w"]).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(ck["id"])[0]})
    assert rw.estimate == pytest.approx(smw.params["nj:d"], rel=1e-10)
    assert rw.se == pytest.approx(smw.bse["nj:d"], rel=1e-8)
    # HC1 without clustering, with a covariate
    r2 = did2x2(ck, "fte", "nj", "d", covariates=["bk"])
    sm2 = smf.ols("fte ~ nj + d + nj:d + bk", ck).fit(cov_type="HC1")
    assert r2.estimate == pytest.approx(sm2.params["nj:d"], rel=1e-10)
    assert r2.se == pytest.approx(sm2.bse["nj:d"], rel=1e-8)


def _sim_panel(rng, n_units=60, n_t=8, effect=2.0, t0=5):
    unit = np.repeat(np.arange(n_units), n_t)
    time = np.tile(np.arange(1, n_t + 1), n_units)
    treated = (unit < n_units // 2)
    d = (treated & (time >= t0)).astype(float)
    a = rng.normal(size=n_units)[unit]
    lam = np.linspace(0, 1, n_t)[time - 1]
    e = rng.normal(size=(n_units, 1)) * 0.5 + rng.normal(size=(n_units, n_t))  # serial correlation
    y = a + lam + effect * d + e.ravel()
    return pd.DataFrame({"u": unit, "t": time, "d": d, "g": treated.astype(int),
                         "post": (time >= t0).astype(int), "y": y})


def test_planted_effect_recovered_with_nominal_coverage():
    rng = np.random.default_rng(11)
    hits_twfe = hits_2x2 = 0
    ests = []
    reps = 150
    for _ in range(reps):
        df = _sim_panel(rng)
        r = twfe(df, "y", "u", "t", "d")
        ests.append(r.estimate)
        hits_twfe += r.ci[0] <= 2.0 <= r.ci[1]
        r2 = did2x2(df, "y", "g", "post", cluster="u")
        hits_2x2 += r2.ci[0] <= 2.0 <= r2.ci[1]
        assert r2.estimate == pytest.approx(r.estimate, rel=1e-8)  # 2 groups, 1 date: identical
    assert abs(np.mean(ests) - 2.0) < 0.03
    assert 0.90 <= hits_twfe / reps <= 0.985
    assert 0.90 <= hits_2x2 / reps <= 0.985


def test_errors(mpdta):
    d = mpdta.copy()
    d.loc[3, "lemp"] = np.nan
    with pytest.raises(EstimationError, match="missing"):
        twfe(d, "lemp", "countyreal", "year", "post")
    with pytest.raises(EstimationError, match="collinear"):
        twfe(mpdta, "lemp", "countyreal", "year", "post", covariates=["lpop"])
    with pytest.raises(EstimationError, match="not in the data"):
        twfe(mpdta, "lemp", "countyreal", "year", "nope")
    with pytest.raises(EstimationError, match="four"):
        did2x2(mpdta[mpdta["treat"] == 1], "lemp", "treat", "post")


def test_repeated_cross_section_with_group_effects():
    # individuals drawn fresh each period; group (kommune) and period effects; planted effect 1.5
    rng = np.random.default_rng(5)
    rows = []
    for g in range(30):
        ag = rng.normal()
        for t in range(6):
            n = rng.integers(20, 40)
            treat = float(g < 15 and t >= 3)
            y = ag + 0.3 * t + 1.5 * treat + rng.normal(size=n)
            rows.append(pd.DataFrame({"kommune": g, "t": t, "d": treat, "y": y}))
    df = pd.concat(rows, ignore_index=True)
    r = twfe(df, "y", "kommune", "t", "d")
    sm = smf.ols("y ~ d + C(kommune) + C(t)", df).fit()
    assert r.estimate == pytest.approx(sm.params["d"], rel=1e-8)
    assert r.ci[0] < 1.5 < r.ci[1] and r.n_units == 30 and r.info["n_clusters"] == 30
