"""Callaway–Sant'Anna on mpdta against the published R `did` numbers.

Reference: R package `did` (Callaway & Sant'Anna), `att_gt(yname="lemp", tname="year",
idname="countyreal", gname="first.treat", data=mpdta)` with `aggte(...)` (bstrap=FALSE), and
`xformla=~lpop` (doubly robust; equal to Stata `csdid ..., method(dripw)`). Numbers as printed
by R (7 significant digits), given in the project's issue 4.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluering.estimators.cs import callaway_santanna, cs_aggregate

DATA = Path(__file__).parent / "data" / "mpdta.csv"

R_ATT_GT = [  # g, t, ATT, SE
    (2004, 2004, -0.0105032, 0.0232510), (2004, 2005, -0.0704232, 0.0309848),
    (2004, 2006, -0.1372587, 0.0364357), (2004, 2007, -0.1008114, 0.0343592),
    (2006, 2004, 0.0065201, 0.0233268), (2006, 2005, -0.0027508, 0.0195586),
    (2006, 2006, -0.0045946, 0.0177552), (2006, 2007, -0.0412245, 0.0202292),
    (2007, 2004, 0.0305067, 0.0150336), (2007, 2005, -0.0027259, 0.0163958),
    (2007, 2006, -0.0310871, 0.0178775), (2007, 2007, -0.0260544, 0.0166554),
]
R_AGG = {"simple": (-0.0399513, 0.0120340), "group": (-0.0310183, 0.0124461),
         "dynamic": (-0.0772398, 0.0199650), "calendar": (-0.0417004, 0.0159719)}
R_EVENT = [0.0305067, -0.0005631, -0.0244587, -0.0199318, -0.0509574, -0.1372587, -0.1008114]

# R prints 7 decimals: estimates agree to rounding (5e-8), SEs likewise
EST_TOL, SE_TOL = 1e-6, 1e-5


@pytest.fixture(scope="module")
def mpdta():
    return pd.read_csv(DATA, engine="pyarrow")


@pytest.fixture(scope="module")
def res(mpdta):
    return callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat")


def test_att_gt_matches_r(res):
    gt = res.components["att_gt"]
    assert len(gt) == len(R_ATT_GT)
    for (g, t, att, se), row in zip(R_ATT_GT, gt.itertuples()):
        assert (row.group, row.time) == (g, t)
        assert row.att == pytest.approx(att, abs=EST_TOL)
        assert row.se == pytest.approx(se, abs=SE_TOL)


@pytest.mark.parametrize("agg", ["simple", "group", "dynamic", "calendar"])
def test_aggregations_match_r(mpdta, res, agg):
    r = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", aggregation=agg)
    assert r.estimate == pytest.approx(R_AGG[agg][0], abs=EST_TOL)
    assert r.se == pytest.approx(R_AGG[agg][1], abs=SE_TOL)
    # re-aggregating an existing result gives the same
    r2 = cs_aggregate(res, agg)
    assert r2.estimate == r.estimate and r2.se == pytest.approx(r.se, rel=1e-12)
    lo, hi = r.ci
    assert lo == pytest.approx(r.estimate - 1.959964 * r.se, abs=1e-6)
    assert hi == pytest.approx(r.estimate + 1.959964 * r.se, abs=1e-6)


def test_event_study_matches_r(res):
    ev = res.components["event"]
    assert ev["e"].tolist() == [-3, -2, -1, 0, 1, 2, 3]
    np.testing.assert_allclose(ev["att"], R_EVENT, atol=EST_TOL)


def test_balanced_event_study_matches_r(res):
    r = cs_aggregate(res, "dynamic", balance_e=1)
    assert r.estimate == pytest.approx(-0.0287608, abs=EST_TOL)
    assert r.se == pytest.approx(0.0136856, abs=SE_TOL)
    # only cohorts with at least balance_e+1 post periods (2004, 2006) and e <= 1 remain
    assert r.components["event"]["e"].max() == 1


def test_not_yet_treated_matches_r(mpdta):
    r = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", control="notyet")
    assert r.estimate == pytest.approx(-0.0397636, abs=EST_TOL)
    assert r.se == pytest.approx(0.0120524, abs=SE_TOL)
    assert r.info["control"] == "notyet"


def test_pretest_matches_r(res):
    assert res.info["pretest_p"] == pytest.approx(0.16812, abs=5e-6)
    assert res.info["pretest_df"] == 5
    assert res.info["n_groups"] == 3


def test_covariates_dr_matches_r_and_stata(mpdta):
    r = callaway_santanna(mpdta, "lemp", "countyreal", "year", "first.treat", covariates=["lpop"])
    gt = r.components["att_gt"].set_index(["group", "time"])
    assert gt.loc[(2004, 2004), "att"] == pytest.approx(-0.0145297, abs=EST_TOL)
    assert gt.loc[(2004, 2004), "se"] == pytest.approx(0.0221292, abs=SE_TOL)
    assert gt.loc[(2007, 2007), "att"] == pytest.approx(-0.0287814, abs=EST_TOL)
    assert gt.loc[(2007, 2007), "se"] == pytest.approx(0.0162390, abs=SE_TOL)
    assert r.estimate == pytest.approx(-0.0417518, abs=EST_TOL)
    assert r.se == pytest.approx(0.0115028, abs=SE_TOL)
    grp = r.components["group"].set_index("group")
    assert grp.loc[2004, "att"] == pytest.approx(-0.0845759, abs=EST_TOL)
    assert grp.loc[2004, "se"] == pytest.approx(0.0245649, abs=SE_TOL)


def test_result_object(res):
    d = res.to_dict()
    assert d["method"] == "cs" and d["inference"] == "analytic"
    assert set(d["components"]) == {"att_gt", "event", "group", "calendar"}
    import json
    json.dumps(d)  # JSON-safe
    s = res.summary()
    assert s.loc[0, "estimate"] == res.estimate and s.loc[0, "n_units"] == 500
    assert res.n_obs == 2500
    ax = res.plot()
    assert ax is not None
