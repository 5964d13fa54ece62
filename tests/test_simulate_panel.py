"""Panel simulator: structure, truth bookkeeping, and recovery by independent estimators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from evaluering.reference import kommune_koder
from evaluering.simulate import simulate_panel


def _did_gt(df: pd.DataFrame, g: int, t: int, weighted: bool) -> float:
    """Callaway–Sant'Anna ATT(g,t) with never-treated controls and base period g-1,
    computed directly from cell means (unweighted or size-weighted)."""
    def m(mask, per):
        d = df[mask & (df.periode == per)]
        return np.average(d.y, weights=d.vaegt) if weighted else d.y.mean()
    G = df.kohorte == g
    C = df.kohorte == 0
    return (m(G, t) - m(G, g - 1)) - (m(C, t) - m(C, g - 1))


def test_structure_and_defaults():
    sp = simulate_panel(seed=1)
    d = sp.data
    assert set(d.kommune_kode) == kommune_koder()
    assert len(d) == 98 * 8 and not d.duplicated(["kommune_kode", "periode"]).any()
    assert set(d.kohorte) == {0, 2017, 2018, 2019}
    assert (d.groupby("kommune_kode").kohorte.nunique() == 1).all()
    assert (d.behandlet == ((d.kohorte > 0) & (d.periode >= d.kohorte))).all()
    assert (d.sand_effekt[d.behandlet == 0] == 0).all()
    # sizes: København largest weight, Læsø smallest
    w = d.drop_duplicates("kommune_kode").set_index("kommune_kode").vaegt
    assert w.idxmax() == "101" and w.idxmin() == "825"
    # the truth table is the cohort-period mean of the unit effects
    chk = d[d.kohorte > 0].groupby(["kohorte", "periode"]).sand_effekt.mean()
    assert np.allclose(sp.att_gt.set_index(["kohorte", "periode"]).att, chk)
    assert sp.att == pytest.approx(d.sand_effekt[d.behandlet == 1].mean())
    # heterogeneous and dynamic: effects grow with event time, differ by cohort
    for _, grp in sp.att_gt[sp.att_gt.e >= 0].groupby("kohorte"):
        assert grp.sort_values("e").att.is_monotonic_increasing
    g0 = sp.att_gt[sp.att_gt.e == 0].set_index("kohorte").att
    assert g0.nunique() == 3


def test_deterministic_and_explicit_cohorts():
    a = simulate_panel(n_units=40, periods=10, cohorts={4: ["U001", "U002"], 7: 5}, seed=3)
    b = simulate_panel(n_units=40, periods=10, cohorts={4: ["U001", "U002"], 7: 5}, seed=3)
    pd.testing.assert_frame_equal(a.data, b.data)
    c = a.data.drop_duplicates("kommune_kode").set_index("kommune_kode").kohorte
    assert c["U001"] == 4 and c["U002"] == 4 and (c == 7).sum() == 5
    with pytest.raises(ValueError):
        simulate_panel(n_units=5, periods=4, cohorts={2: 5})


@pytest.mark.parametrize("weighted", [False, True])
def test_noise_free_panel_is_recovered_exactly_by_did_of_means(weighted):
    """Without noise and with parallel trends, the 2x2 DiD of means equals the true
    ATT(g,t) (unit-weighted or size-weighted) exactly: an independent check of the truth."""
    sp = simulate_panel(seed=5, sigma=0.0, sd_trend=0.0)
    col = "att_vaegtet" if weighted else "att"
    for _, r in sp.att_gt.iterrows():
        if r.periode == sp.data.periode.min() or r.kohorte - 1 < sp.data.periode.min():
            continue
        est = _did_gt(sp.data, int(r.kohorte), int(r.periode), weighted)
        assert est == pytest.approx(r[col], abs=1e-9)


def test_homogeneous_effect_recovered_by_statsmodels_twfe():
    """With a constant effect, TWFE (statsmodels WLS, unit and period dummies) is unbiased:
    the planted effect lies within the 99.9 % interval, and the null is not rejected."""
    kw = dict(n_units=98, periods=8, cohorts={4: 10, 5: 10, 6: 10}, dynamic=0.0,
              cohort_spread=0.0, heterogeneity=0.0, sigma=0.5, seed=8)
    sp = simulate_panel(effect=0.7, **kw)
    fit = smf.wls("y ~ behandlet + C(kommune_kode) + C(periode)", data=sp.data,
                  weights=sp.data.vaegt).fit(cov_type="cluster",
                                               cov_kwds={"groups": sp.data.kommune_kode})
    lo, hi = fit.conf_int(alpha=0.001).loc["behandlet"]
    assert lo < 0.7 < hi and sp.att == pytest.approx(0.7)
    assert abs(fit.params["behandlet"] - 0.7) < 0.15
    null = simulate_panel(effect=0.0, **kw)
    assert (null.data.sand_effekt == 0).all() and null.att == 0 and null.params["no_effect"]
    fit0 = smf.wls("y ~ behandlet + C(kommune_kode) + C(periode)", data=null.data,
                   weights=null.data.vaegt).fit()
    assert abs(fit0.params["behandlet"]) < 0.15


def test_callable_effect_and_no_effect_flag():
    sp = simulate_panel(n_units=30, periods=6, cohorts={3: 5}, seed=2, heterogeneity=0.0,
                        effect=lambda g, e: 10.0 * (e + 1))
    assert sp.att_e.set_index("e").att.to_dict() == pytest.approx({0: 10, 1: 20, 2: 30, 3: 40})
    off = simulate_panel(n_units=30, periods=6, cohorts={3: 5}, seed=2, no_effect=True)
    assert (off.data.sand_effekt == 0).all()
