"""Goodman-Bacon decomposition: identity with TWFE (statsmodels), each 2×2 vs a regression."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from evaluering.errors import EstimationError
from evaluering.estimators.bacon import bacon_decomposition

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def mpdta():
    return pd.read_csv(DATA / "mpdta.csv", engine="pyarrow").rename(columns={"first.treat": "g"})


def test_identity_on_mpdta_against_linearmodels_twfe(mpdta):
    r = bacon_decomposition(mpdta, "lemp", "countyreal", "year", "g")
    from linearmodels.panel import PanelOLS

    d = mpdta.assign(D=((mpdta["g"] > 0) & (mpdta["year"] >= mpdta["g"])).astype(float))
    d = d.set_index(["countyreal", "year"])
    b_sm = PanelOLS(d["lemp"], d[["D"]], entity_effects=True, time_effects=True).fit().params["D"]
    comp = r.component("comparisons")
    assert float((comp["weight"] * comp["estimate"]).sum()) == pytest.approx(b_sm, abs=1e-8)
    assert comp["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (comp["weight"] > 0).all()
    assert r.estimate == pytest.approx(-0.036549, abs=5e-7)  # fixest-published TWFE
    s = r.summary().set_index("type")
    assert set(s.index) == {"treated_vs_never", "earlier_vs_later", "later_vs_earlier", "twfe (total)"}
    assert len(comp) == 3 + 3 + 3


def test_each_2x2_equals_a_two_group_regression(mpdta):
    r = bacon_decomposition(mpdta, "lemp", "countyreal", "year", "g")
    for row in r.component("comparisons").itertuples():
        ctrl_is_never = np.isinf(row.control)
        sel = (mpdta["g"] == row.treated) | ((mpdta["g"] == 0) if ctrl_is_never
                                             else (mpdta["g"] == row.control))
        d = mpdta[sel].copy()
        if row.type == "earlier_vs_later":
            d = d[d["year"] < row.control]
        elif row.type == "later_vs_earlier":
            d = d[d["year"] >= row.control]
        d["D"] = ((d["g"] == row.treated) & (d["year"] >= row.treated)).astype(float)
        # balanced two-group panel: group effects give the same D coefficient as unit effects
        b = smf.ols("lemp ~ D + C(g) + C(year)", d).fit().params["D"]
        assert row.estimate == pytest.approx(b, abs=1e-10)


def _panel(rng, n=60, T=9, with_never=True, with_always=True, dynamic=0.0):
    choices = [3, 5, 8] + ([0] if with_never else []) + ([1] if with_always else [])
    g = rng.choice(choices, size=n)
    unit = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(1, T + 1), n)
    gg = g[unit]
    treated = (gg > 0) & (t >= gg)
    y = (rng.normal(size=n)[unit] + 0.1 * t + treated * (2.0 + dynamic * (t - gg))
         + 0.5 * rng.normal(size=len(t)))
    return pd.DataFrame({"u": unit, "t": t, "g": gg, "y": y, "D": treated.astype(float)})


@pytest.mark.parametrize("seed,never,always", [(1, True, True), (2, False, True), (3, True, False),
                                               (4, False, False)])
def test_identity_on_simulated_panels(seed, never, always):
    d = _panel(np.random.default_rng(seed), with_never=never, with_always=always)
    r = bacon_decomposition(d, "y", "u", "t", "g")
    b_sm = smf.ols("y ~ D + C(u) + C(t)", d).fit().params["D"]
    comp = r.component("comparisons")
    assert float((comp["weight"] * comp["estimate"]).sum()) == pytest.approx(b_sm, abs=1e-8)
    assert comp["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert ("treated_vs_always" in set(comp["type"])) == always


def test_planted_effects_show_forbidden_comparison_bias():
    rng = np.random.default_rng(9)
    # constant effect 2: every 2×2 comparison is unbiased
    d = _panel(rng, n=400)
    s = bacon_decomposition(d, "y", "u", "t", "g").summary().set_index("type")["estimate"]
    assert np.allclose(s.to_numpy(), 2.0, atol=0.15)
    # effect growing by 0.5 per period: already-treated controls bias the later-vs-earlier terms down
    d = _panel(rng, n=400, dynamic=0.5)
    s = bacon_decomposition(d, "y", "u", "t", "g").summary().set_index("type")["estimate"]
    assert s["later_vs_earlier"] < s["treated_vs_never"] - 1.0


def test_unbalanced_panel_rejected(mpdta):
    with pytest.raises(EstimationError, match="balanced"):
        bacon_decomposition(mpdta.iloc[1:], "lemp", "countyreal", "year", "g")


def test_plot(mpdta):
    import matplotlib

    matplotlib.use("Agg")
    ax = bacon_decomposition(mpdta, "lemp", "countyreal", "year", "g").plot()
    assert ax.get_xlabel() == "weight"
