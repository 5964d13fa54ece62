"""Rambachan–Roth sensitivity of Callaway–Sant'Anna event studies (``honest_did_cs``).

References:
- the covariance from the clustered influence functions: its diagonal equals the analytic
  event-study SEs of ``callaway_santanna`` (computed there by a different code path), and the
  average over the post periods has the SE that R ``did`` publishes for mpdta's dynamic
  aggregation (0.0199650; post-period ATT(g,t) are the same under both base periods);
- ``Delta^SD(0)`` on the CS event study equals GLS linear extrapolation of the pre-periods
  (statsmodels GLS), which checks the event-time bookkeeping (reference omitted, t = e + 1);
- simulation with a planted linear differential trend in municipality x half-year cells,
  estimated exactly as the report does (``panel=False``, count weights, municipality clusters).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from evaluering.errors import EstimationError
from evaluering.estimators.cs import callaway_santanna
from evaluering.inference import HonestCSResult, cs_event_covariance, honest_did_cs

MPDTA = Path(__file__).parent / "data" / "mpdta.csv"
R_DYNAMIC_SE = 0.0199650  # R did: aggte(att_gt(lemp ~ ..., mpdta), "dynamic"), bstrap = FALSE
R_DYNAMIC_ATT = -0.0772398


@pytest.fixture(scope="module")
def mpdta():
    return pd.read_csv(MPDTA, engine="pyarrow")


def _cs(d, **kw):
    return callaway_santanna(d, "lemp", "countyreal", "year", "first.treat", **kw)


@pytest.fixture(scope="module")
def uni(mpdta):
    return _cs(mpdta, base_period="universal", aggregation="dynamic")


# ------------------------------------------------------------------------------ covariance


@pytest.mark.parametrize("base", ["universal", "varying"])
def test_covariance_diagonal_equals_event_ses(mpdta, base):
    r = _cs(mpdta, base_period=base)
    e, V = cs_event_covariance(r)
    ev = r.components["event"]
    assert list(e) == list(ev["e"])
    se = np.sqrt(np.diag(V))
    ok = np.isfinite(ev["se"].to_numpy())
    assert np.allclose(se[ok], ev["se"].to_numpy()[ok], rtol=1e-10, atol=0)
    if base == "universal":
        assert not ok[list(e).index(-1)] and se[list(e).index(-1)] < 1e-12


def test_covariance_of_post_average_matches_r_dynamic_se(uni):
    e, V = cs_event_covariance(uni)
    l = (e >= 0) / (e >= 0).sum()
    att = uni.components["event"]["att"].to_numpy()
    assert l @ att == pytest.approx(R_DYNAMIC_ATT, abs=1e-6)
    assert np.sqrt(l @ V @ l) == pytest.approx(R_DYNAMIC_SE, abs=1e-6)
    # the full matrix is a proper covariance: symmetric, positive semi-definite
    assert np.allclose(V, V.T) and np.linalg.eigvalsh(V).min() > -1e-14


def test_unit_clusters_equal_unclustered_in_a_panel(mpdta, uni):
    rc = _cs(mpdta, base_period="universal", cluster="countyreal")
    assert np.allclose(cs_event_covariance(rc)[1], cs_event_covariance(uni)[1], rtol=0,
                       atol=1e-15)


# --------------------------------------------------------------------------- honest_did_cs


def test_betahat_sigma_and_target(uni):
    h = honest_did_cs(uni, Mbar_grid=[0.0, 1.0])
    assert isinstance(h, HonestCSResult)
    ev = uni.components["event"].set_index("e")
    assert h.n_pre == 3 and h.n_post == 4
    assert np.allclose(h.betahat, ev.loc[[-4, -3, -2, 0, 1, 2, 3], "att"].to_numpy(), atol=0)
    e, V = cs_event_covariance(uni)
    keep = [i for i, x in enumerate(e) if x != -1]
    assert np.array_equal(h.sigma, V[np.ix_(keep, keep)])
    # default target: the average of the post periods = CS's dynamic overall ATT
    assert h.l_vec == (0.25, 0.25, 0.25, 0.25)
    assert h.estimate == pytest.approx(uni.estimate, abs=1e-14)
    assert h.original_ci[0] == pytest.approx(uni.ci[0], abs=1e-12)
    assert h.original_ci[1] == pytest.approx(uni.ci[1], abs=1e-12)
    assert list(h.event["role"]) == ["pre"] * 3 + ["reference"] + ["post"] * 4
    with pytest.raises(ValueError):
        h.betahat[0] = 1.0


def test_smoothness_m0_is_gls_linear_extrapolation(uni):
    """Delta^SD(0): delta_e = s (e + 1); GLS of the pre-period coefficients on e + 1 (no
    intercept: delta_{-1} = 0), theta = mean_post(beta_e - s (e + 1))."""
    h = honest_did_cs(uni, method="smoothness", M_grid=[0.0])
    b, S = h.betahat, h.sigma
    t_pre = np.array([-3.0, -2.0, -1.0])
    t_post = np.array([1.0, 2.0, 3.0, 4.0])
    l = np.full(4, 0.25)
    # minimum-variance unbiased combination under linear trends, allowing correlation between
    # pre and post coefficients: theta = l'b_post - w'b_pre with GLS-like weights
    Spp, Spq = S[:3, :3], S[:3, 3:]
    Si = np.linalg.inv(Spp)
    c = -(l @ t_post)
    mu = (c + t_pre @ Si @ Spq @ l) / (t_pre @ Si @ t_pre)
    w = Si @ (-Spq @ l + mu * t_pre)
    v = np.r_[w, l]
    theta, sd = v @ b, np.sqrt(v @ S @ v)
    z = stats.norm.ppf(0.975)
    lo, hi = h.sensitivity.table[["ci_low", "ci_high"]].iloc[0]
    assert lo == pytest.approx(theta - z * sd, abs=1e-10)
    assert hi == pytest.approx(theta + z * sd, abs=1e-10)
    # with pre/post blocks uncorrelated this is plain GLS: check the construction on that case
    S0 = S.copy()
    S0[:3, 3:] = 0
    S0[3:, :3] = 0
    gls = sm.GLS(b[:3], t_pre[:, None], sigma=S0[:3, :3]).fit()
    from evaluering.inference.honest import flci_smoothness

    r0 = flci_smoothness(b, S0, 3, 4, 0.0, l_vec=l)
    assert r0["estimate"] == pytest.approx(l @ (b[3:] - gls.params[0] * t_post), abs=1e-10)


def test_window_anticipation_and_errors(mpdta, uni):
    h = honest_did_cs(uni, method="smoothness", M_grid=[0.0, 0.01], e_pre=-3, e_post=1)
    assert (h.n_pre, h.n_post) == (2, 2)
    ev = uni.components["event"].set_index("e")
    assert h.estimate == pytest.approx(ev.loc[[0, 1], "att"].mean(), abs=1e-14)
    with pytest.raises(ValueError, match="universal"):
        honest_did_cs(_cs(mpdta))
    with pytest.raises(ValueError, match="l_vec"):
        honest_did_cs(uni, l_vec=[1.0, 0.0])
    with pytest.raises(ValueError, match="pre-period"):
        honest_did_cs(uni, e_pre=-1)
    with pytest.raises(EstimationError):
        honest_did_cs(uni, e_pre=-7)
    with pytest.raises(ValueError):
        honest_did_cs(object())
    # anticipation: the reference period moves to e = -2; e = -1 is a post period with weight 0
    ra = _cs(mpdta, base_period="universal", anticipation=1)
    ha = honest_did_cs(ra, method="smoothness", M_grid=[0.0])
    assert ha.info["reference_e"] == -2
    post = ha.event[ha.event["role"] == "post"]
    assert post["e"].min() == -1 and post.loc[post["e"] == -1, "weight"].iloc[0] == 0.0
    assert post["weight"].sum() == pytest.approx(1.0)


def test_result_api(uni):
    h = honest_did_cs(uni, Mbar_grid=[0.0, 0.5, 1.0])
    s = h.summary()
    assert list(s.columns) == ["Mbar", "lb", "ub", "method"]
    assert s["method"].iloc[0] == "original" and len(s) == 4
    # Mbar = 0 is parallel trends after treatment: the original CI (up to the LF step)
    assert s["lb"].iloc[1] <= s["lb"].iloc[0] + 1e-9 and s["ub"].iloc[1] >= s["ub"].iloc[0] - 1e-9
    assert np.all(np.diff(s["lb"].iloc[1:]) < 0) and np.all(np.diff(s["ub"].iloc[1:]) > 0)
    d = h.to_dict()
    json.dumps(d)
    assert d["n_pre"] == 3 and len(d["table"]) == 3 and len(d["betahat"]) == 7
    assert h.plot() is not None and h.plot(kind="event") is not None
    hs = honest_did_cs(uni, method="smoothness", M_grid=[0.0, 0.01])
    assert list(hs.summary().columns) == ["M", "lb", "ub", "method"]
    # the breakdown value separates excluding from including zero
    bd = h.breakdown
    if 0 < bd < np.inf:
        inside = honest_did_cs(uni, Mbar_grid=[bd * 0.95]).summary().iloc[1]
        outside = honest_did_cs(uni, Mbar_grid=[bd * 1.05 + 1e-3]).summary().iloc[1]
        assert inside["ub"] < 0 and outside["ub"] >= 0


# ------------------------------------------------------------------------------ simulation


def _cells(seed, slope, tau=0.1, G=40, T=10):
    """Municipality x half-year cells: cohort 6 (10 municipalities), cohort 7 (6), 24 never
    treated; treated municipalities have a linear differential trend ``slope * t``."""
    rng = np.random.default_rng(seed)
    coh = np.zeros(G, int)
    coh[:10], coh[10:16] = 6, 7
    a, bt = rng.normal(0, 0.3, G), rng.normal(0, 0.1, T)
    k = np.repeat(np.arange(G), T)
    t = np.tile(np.arange(1, T + 1), G)
    g = coh[k]
    tr = g > 0
    y = (a[k] + bt[t - 1] + np.where(tr, slope * t, 0.0) + np.where(tr & (t >= g), tau, 0.0)
         + rng.normal(0, 0.05, G * T))
    return pd.DataFrame({"kommune_kode": k, "t": t, "kohorte": g, "y": y,
                         "y_n": rng.integers(50, 200, G * T)})


def _fit_cells(d):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return callaway_santanna(d, "y", None, "t", "kohorte", weights="y_n",
                                 cluster="kommune_kode", panel=False, base_period="universal")


def test_cells_covariance_matches_cluster_ses_and_dynamic_se():
    r = _fit_cells(_cells(0, 0.03))
    e, V = cs_event_covariance(r)
    ev = r.components["event"]
    ok = np.isfinite(ev["se"].to_numpy())
    assert np.allclose(np.sqrt(np.diag(V))[ok], ev["se"].to_numpy()[ok], rtol=1e-10)
    l = (e >= 0) / (e >= 0).sum()
    assert np.sqrt(l @ V @ l) == pytest.approx(r.info["overall"]["dynamic"]["se"], rel=1e-10)


def test_planted_linear_trend_smoothness_covers_naive_does_not():
    tau, slope, reps = 0.1, 0.04, 100
    cover0, cover_naive, centre0, centre_naive = [], [], [], []
    for s in range(reps):
        h = honest_did_cs(_fit_cells(_cells(s, slope)), method="smoothness", M_grid=[0.0])
        lo, hi = h.sensitivity.table[["ci_low", "ci_high"]].iloc[0]
        cover0.append(lo <= tau <= hi)
        centre0.append((lo + hi) / 2)
        cover_naive.append(h.original_ci[0] <= tau <= h.original_ci[1])
        centre_naive.append(h.estimate)
        if s < 3:
            # unbiased for linear trends: the M = 0 interval does not move with the slope
            h0 = honest_did_cs(_fit_cells(_cells(s, 0.0)), method="smoothness", M_grid=[0.0])
            lo0, hi0 = h0.sensitivity.table[["ci_low", "ci_high"]].iloc[0]
            assert (lo0, hi0) == pytest.approx((lo, hi), abs=1e-10)
    # the naive CI is centred on tau + slope * mean(e + 1 | e = 0..4) = tau + 3 slope
    assert np.mean(centre_naive) == pytest.approx(tau + 3 * slope, abs=0.02)
    assert np.mean(centre0) == pytest.approx(tau, abs=0.02)
    assert np.mean(cover_naive) <= 0.25
    # with 16 treated municipalities the extrapolation interval under-covers somewhat
    # (0.80 here, naive 0.05; the covariance is right, see test_covariance_*): documented in
    # docs/sensitivity.md. The test guards the planted-trend contrast.
    assert np.mean(cover0) >= 0.72
    assert np.mean(cover0) - np.mean(cover_naive) >= 0.45


def test_planted_linear_trend_relative_magnitudes_cover():
    """A linear trend changes by the same amount every period: delta is in Delta^RM(1)."""
    tau, slope = 0.1, 0.04
    hits, naive = [], []
    for s in range(12):
        h = honest_did_cs(_fit_cells(_cells(100 + s, slope)), Mbar_grid=[1.0], test="C")
        lo, hi = h.sensitivity.table[["ci_low", "ci_high"]].iloc[0]
        hits.append(lo <= tau <= hi)
        naive.append(h.original_ci[0] <= tau <= h.original_ci[1])
    assert np.mean(hits) >= 11 / 12
    assert np.mean(naive) <= 0.5


def test_universal_base_leaves_the_headline_unchanged():
    """docs/sensitivity.md recommends the report switch to base_period="universal": every
    post-period ATT(g,t) and every overall ATT (and SE) is the same as with "varying"."""
    d = _cells(7, 0.02)
    fits = {}
    for base in ("varying", "universal"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[base] = callaway_santanna(d, "y", None, "t", "kohorte", weights="y_n",
                                           cluster="kommune_kode", panel=False,
                                           control="notyet", base_period=base)
    v, u = fits["varying"], fits["universal"]
    pv = v.components["att_gt"].query("post").set_index(["group", "time"])
    pu = u.components["att_gt"].query("post").set_index(["group", "time"])
    assert np.allclose(pv[["att", "se"]].to_numpy(), pu.loc[pv.index, ["att", "se"]].to_numpy(),
                       rtol=1e-12, atol=1e-15)
    for k, val in v.info["overall"].items():
        assert u.info["overall"][k]["att"] == pytest.approx(val["att"], rel=1e-12)
        assert u.info["overall"][k]["se"] == pytest.approx(val["se"], rel=1e-12)
    # the pre-period event coefficients differ (short differences vs levels)
    assert not np.allclose(v.components["event"].query("e < -1")["att"].to_numpy(),
                           u.components["event"].query("e < -1")["att"].to_numpy()[1:])
