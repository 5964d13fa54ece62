"""Sun–Abraham IW estimator against fixest's published output and a statsmodels saturated fit."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from evaluering.errors import EstimationError
from evaluering.estimators.sunab import sun_abraham

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def stagg():
    return pd.read_csv(DATA / "base_stagg.csv", engine="pyarrow")


def test_matches_fixest_published_base_stagg(stagg):
    # feols(y ~ sunab(year_treated, year) | id + year, base_stagg), clustered by id, as printed
    # by the fixest author in lrberge/fixest issue #287 (relative periods -9..-2).
    published = {-9: (2.343297, 1.122482), -8: (-0.866391, 1.186767), -7: (-0.345837, 0.713641),
                 -6: (-0.471113, 0.731894), -5: (-0.796544, 0.527162), -4: (-0.280033, 0.429222),
                 -3: (-0.315766, 0.528401), -2: (0.241325, 0.457825)}
    r = sun_abraham(stagg, "y", "id", "year", "year_treated")
    ev = r.component("event").set_index("e")
    for e, (b, se) in published.items():
        assert ev.loc[e, "att"] == pytest.approx(b, abs=1e-6)
        assert ev.loc[e, "se"] == pytest.approx(se, abs=1e-6)


def test_weighted_matches_statsmodels_wls(stagg):
    d = stagg.copy()
    d["w"] = np.random.default_rng(5).uniform(0.5, 2.0, d["id"].nunique())[pd.factorize(d["id"])[0]]
    r = sun_abraham(d, "y", "id", "year", "year_treated", covariates=["x1"], weights="w")
    sm, terms, dd = _saturated_sm(d, weights="w")
    gt = r.component("att_gt").set_index(["group", "e"])
    for c, e, name in terms:
        assert gt.loc[(c, e), "att"] == pytest.approx(sm.params[name], abs=1e-9)
    post = [name for _, e, name in terms if e >= 0]
    a = pd.Series({nm: float(dd.loc[dd[nm] == 1, "w"].sum()) for nm in post})
    a /= a.sum()
    assert r.estimate == pytest.approx(float(a @ sm.params[post]), abs=1e-9)


def _saturated_sm(d, covariate=True, weights=None):
    d = d.copy()
    g = d["year_treated"].where(d["year_treated"] <= d["year"].max())
    rel = d["year"] - g
    terms = []
    for (c, e), _ in d.assign(c=g, e=rel).dropna(subset=["c"]).groupby(["c", "e"]):
        if e == -1:
            continue
        name = f"c{int(c)}_{'m' if e < 0 else 'p'}{abs(int(e))}"
        d[name] = ((g == c) & (rel == e)).astype(float)
        terms.append((int(c), int(e), name))
    f = "y ~ " + " + ".join(t[2] for t in terms) + (" + x1" if covariate else "") + " + C(id) + C(year)"
    mod = smf.wls(f, d, weights=d[weights]) if weights else smf.ols(f, d)
    fit = mod.fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(d["id"])[0]})
    return fit, terms, d


def test_matches_statsmodels_saturated_regression_with_covariate(stagg):
    r = sun_abraham(stagg, "y", "id", "year", "year_treated", covariates=["x1"])
    sm, terms, d = _saturated_sm(stagg)
    n, k_sm = len(d), sm.params.size
    k_ours = len(terms) + 1 + d["year"].nunique()  # slopes + year levels (id nested in cluster)
    scale = np.sqrt((n - k_sm) / (n - k_ours))
    gt = r.component("att_gt").set_index(["group", "e"])
    for c, e, name in terms:
        assert gt.loc[(c, e), "att"] == pytest.approx(sm.params[name], abs=1e-9)
        assert gt.loc[(c, e), "se"] == pytest.approx(sm.bse[name] * scale, rel=1e-7)
    # aggregation weights from raw cell counts, computed independently
    counts = {name: int(d[name].sum()) for _, _, name in terms}
    post = [name for _, e, name in terms if e >= 0]
    a = pd.Series({nm: counts[nm] for nm in post}, dtype=float)
    a /= a.sum()
    V = sm.cov_params().loc[post, post] * scale**2
    assert r.estimate == pytest.approx(float(a @ sm.params[post]), abs=1e-9)
    assert r.se == pytest.approx(float(np.sqrt(a @ V @ a)), rel=1e-7)
    # event time 2
    e2 = [name for _, e, name in terms if e == 2]
    a2 = pd.Series({nm: counts[nm] for nm in e2}, dtype=float)
    a2 /= a2.sum()
    ev = r.component("event").set_index("e")
    assert ev.loc[2, "att"] == pytest.approx(float(a2 @ sm.params[e2]), abs=1e-9)
    # the true effect of base_stagg on treated observations is -1 on average: covered
    truth = stagg.loc[stagg["year"] >= stagg["year_treated"], "treatment_effect_true"].mean()
    assert r.ci[0] < truth < r.ci[1]


def test_control_last_cohort_equals_never_treated_on_trimmed_sample(stagg):
    r = sun_abraham(stagg, "y", "id", "year", "year_treated", control="last", covariates=["x1"])
    d = stagg[stagg["year"] < 10].copy()
    d.loc[d["year_treated"] == 10, "year_treated"] = 10000
    sm, terms, _ = _saturated_sm(d)
    gt = r.component("att_gt").set_index(["group", "e"])
    for c, e, name in terms:
        assert gt.loc[(c, e), "att"] == pytest.approx(sm.params[name], abs=1e-9)
    assert r.n_obs == len(d) and r.info["control_cohort"] == 10


def test_errors(stagg):
    with pytest.raises(EstimationError, match="never-treated"):
        sun_abraham(stagg[stagg["year_treated"] < 100], "y", "id", "year", "year_treated")
    r = sun_abraham(stagg[stagg["year_treated"] < 100], "y", "id", "year", "year_treated",
                    control="last")
    assert np.isfinite(r.estimate)
    one = stagg[(stagg["year_treated"] != 5) | (stagg["id"] == stagg.loc[stagg["year_treated"] == 5, "id"].min())]
    assert "single unit" in sun_abraham(one, "y", "id", "year", "year_treated").info["notes"]


def test_equals_callaway_santanna_never_treated_on_balanced_panel():
    # Without covariates on a balanced panel with never-treated controls, each post-period
    # Sun-Abraham CATT is the same 2x2 comparison as CS's ATT(g,t) (base period g-1), and the
    # cell-share ATT equals CS's simple aggregation: a cross-check of two implementations.
    cs = pytest.importorskip("evaluering.estimators.cs")
    mp = pd.read_csv(DATA / "mpdta.csv", engine="pyarrow")
    c = cs.callaway_santanna(mp, "lemp", "countyreal", "year", "first.treat")
    s = sun_abraham(mp, "lemp", "countyreal", "year", "first.treat")
    assert s.estimate == pytest.approx(c.estimate, abs=1e-12)
    assert s.estimate == pytest.approx(-0.0400, abs=5e-5)  # did package, aggte(type="simple")
    cg = c.component("att_gt").query("time >= group").set_index(["group", "time"])["att"]
    sg = s.component("att_gt").query("e >= 0").set_index(["group", "time"])["att"]
    sg.index = sg.index.set_levels([lvl.astype(int) for lvl in sg.index.levels])
    assert np.allclose(sg.sort_index().to_numpy(), cg.sort_index().to_numpy(), atol=1e-12)
