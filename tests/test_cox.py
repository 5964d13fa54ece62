"""Cox PH (own Efron/Breslow implementation) against lifelines and statsmodels; planted HR."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from statsmodels.duration.hazard_regression import PHReg

from evaluering.errors import EstimationError
from evaluering.survival.cox import cox_did, cox_ph
from evaluering.survival.simulate import simulate_spells

DATA = Path(__file__).parent / "data"
COVS = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]


@pytest.fixture(scope="module")
def rossi():
    r = pd.read_csv(DATA / "rossi.csv", engine="pyarrow")
    r["cl"] = np.arange(len(r)) % 25  # deterministic clusters for the sandwich tests
    return r


def _lifelines(df, covs, **kw):
    cols = covs + list(kw.get("strata", [])) + ["week", "arrest"] + (["cl"] if "cluster_col" in kw else [])
    return CoxPHFitter().fit(df[cols], "week", "arrest", fit_options={"precision": 1e-12}, **kw)


@pytest.mark.parametrize("strata", [None, ["race"], ["wexp", "paro"]])
def test_efron_matches_lifelines_on_rossi(rossi, strata):
    covs = [c for c in COVS if c not in (strata or [])]
    f = cox_ph(rossi, "week", "arrest", covariates=covs, strata=strata)
    ref = _lifelines(rossi, covs, **({"strata": strata} if strata else {}))
    co = f["coefficients"].set_index("term")
    np.testing.assert_allclose(co["estimate"], ref.params_[covs], rtol=0, atol=1e-6)
    np.testing.assert_allclose(co["se"], ref.standard_errors_[covs], rtol=0, atol=1e-6)
    assert f["loglik"] == pytest.approx(ref.log_likelihood_, abs=1e-6)
    # published R coxph (Efron) coefficients for the unstratified model (Fox & Weisberg)
    if strata is None:
        np.testing.assert_allclose(co["estimate"], [-0.37942, -0.05744, 0.31390, -0.14980,
                                                    -0.43370, -0.08487, 0.09150], atol=6e-6)


def test_robust_and_clustered_match_lifelines_without_ties(rossi):
    # lifelines' sandwich ignores ties ("This does not handle ties", lifelines 0.15 notes);
    # on de-tied data the Efron score residuals reduce to the ordinary ones and must agree.
    r = rossi.assign(week=rossi["week"] + np.arange(len(rossi)) * 1e-5)
    for kw, lkw in [({"robust": True}, {"robust": True}), ({"cluster": "cl"}, {"cluster_col": "cl"}),
                    ({"cluster": "cl", "strata": ["race"]}, {"cluster_col": "cl", "strata": ["race"]})]:
        covs = [c for c in COVS if c not in kw.get("strata", [])]
        f = cox_ph(r, "week", "arrest", covariates=covs, **kw)
        ref = _lifelines(r, covs, **lkw)
        co = f["coefficients"].set_index("term")
        np.testing.assert_allclose(co["estimate"], ref.params_[covs], atol=1e-6)
        np.testing.assert_allclose(co["se"], ref.standard_errors_[covs], atol=1e-6)


@pytest.mark.parametrize("kw", [{"robust": True}, {"cluster": "cl"}, {"cluster": "cl", "strata": ["race"]}])
def test_breslow_with_ties_matches_statsmodels_phreg(rossi, kw):
    covs = [c for c in COVS if c not in kw.get("strata", [])]
    f = cox_ph(rossi, "week", "arrest", covariates=covs, ties="breslow", **kw)
    groups = rossi["cl"].to_numpy() if "cluster" in kw else np.arange(len(rossi))
    strata = rossi["race"].to_numpy() if "strata" in kw else None
    m = PHReg(rossi["week"].to_numpy(float), rossi[covs].to_numpy(float), status=rossi["arrest"].to_numpy(),
              strata=strata, ties="breslow").fit(groups=groups)
    co = f["coefficients"]
    np.testing.assert_allclose(co["estimate"], m.params, atol=1e-8)
    np.testing.assert_allclose(co["se"], m.bse, rtol=1e-7)


def test_efron_clustered_with_ties_close_to_tie_unaware_references(rossi):
    # With tied weeks our Efron score residuals (Therneau & Grambsch) differ from lifelines'
    # tie-unaware sandwich and from statsmodels' Breslow-form residuals, but only slightly.
    f = cox_ph(rossi, "week", "arrest", covariates=COVS, cluster="cl")
    ref = _lifelines(rossi, COVS, cluster_col="cl")
    np.testing.assert_allclose(f["coefficients"]["estimate"], ref.params_[COVS], atol=1e-6)
    ratio = f["coefficients"]["se"].to_numpy() / ref.standard_errors_[COVS].to_numpy()
    assert np.all(np.abs(ratio - 1) < 0.06)
    # score residuals sum to the gradient, which is 0 at the estimate
    assert np.abs(f["score_residuals_sorted"].sum(axis=0)).max() < 1e-8


def test_cox_did_covers_planted_hazard_ratio():
    hr = 1.10
    df = simulate_spells(n=60_000, n_kom=40, n_treated=10, hr=hr, seed=2024)
    r = cox_did(df, treated="treated", post="post", strata="kommune_kode", time_effects="start_kvartal",
                cluster="kommune_kode")
    assert r.method == "cox_did" and r.inference == "cluster" and r.n_units == 40
    assert r.ci[0] < np.log(hr) < r.ci[1]
    assert abs(r.estimate - np.log(hr)) < 0.06
    assert r.info["hazard_ratio"] == pytest.approx(np.exp(r.estimate))
    assert "treated" in r.info["dropped"]  # constant within municipality strata
    co = r.component("coefficients")
    assert co["term"].iloc[0] == "treated_x_post"
    # null effect: no false rejection with a planted HR of 1 (single seeded draw)
    r0 = cox_did(simulate_spells(n=30_000, n_kom=40, n_treated=10, hr=1.0, seed=22), treated="treated",
                 post="post", strata="kommune_kode", time_effects="start_kvartal", cluster="kommune_kode")
    assert r0.ci[0] < 0 < r0.ci[1]
    # same model through lifelines (strata + dummies + cluster) - coefficient agrees
    small = simulate_spells(n=6_000, n_kom=12, n_treated=4, hr=hr, seed=23)
    r1 = cox_did(small, treated="treated", post="post", strata="kommune_kode", time_effects="start_kvartal")
    work = small.assign(txp=small["treated"] * small["post"], E=(small["status"] == "job").astype(int))
    dummies = pd.get_dummies(work["start_kvartal"], prefix="q", drop_first=True, dtype=float)
    # post is collinear with the quarter dummies: lifelines gets txp + quarter dummies
    X = pd.concat([work[["txp", "varighed_uger", "E", "kommune_kode"]], dummies], axis=1)
    ref = CoxPHFitter().fit(X, "varighed_uger", "E", strata=["kommune_kode"], fit_options={"precision": 1e-12})
    assert r1.estimate == pytest.approx(ref.params_["txp"], abs=1e-6)
    assert r1.se == pytest.approx(ref.standard_errors_["txp"], abs=1e-6)


def test_cox_did_errors():
    df = simulate_spells(n=500, n_kom=4, n_treated=1, seed=3)
    with pytest.raises(EstimationError):
        cox_did(df.assign(treated=0), treated="treated", post="post")
    with pytest.raises(EstimationError):
        cox_did(df, treated="treated", post="post", ties="exact")
    with pytest.raises(EstimationError):
        cox_did(df.drop(columns="post"), treated="treated", post="post")


def test_cox_did_monte_carlo_unbiased_and_calibrated():
    truth = np.log(1.25)
    est, se = [], []
    for s in range(40):
        df = simulate_spells(n=8_000, n_kom=30, n_treated=8, hr=1.25, seed=700 + s, weeks=40)
        r = cox_did(df, treated="treated", post="post", strata="kommune_kode", time_effects="start_kvartal",
                    cluster="kommune_kode")
        est.append(r.estimate)
        se.append(r.se)
    est, se = np.array(est), np.array(se)
    sd = est.std(ddof=1)
    assert abs(est.mean() - truth) < 3 * sd / np.sqrt(len(est))
    assert 0.7 < se.mean() / sd < 1.3
    assert np.mean(np.abs(est - truth) < 1.96 * se) >= 0.85


def test_cox_score_bootstrap_equals_statsmodels_breslow(rossi):
    """Restricted fit, cluster score residuals and information at the restricted estimate
    from statsmodels' PHReg (Breslow ties); exact p-value over all 2^10 sign vectors."""
    import itertools

    r = rossi.assign(cl10=np.arange(len(rossi)) % 10)
    f = cox_ph(r, "week", "arrest", covariates=COVS, ties="breslow", cluster="cl10", bootstrap=99)
    assert f["bootstrap_draws"] == 1024 and f["score_bootstrap_term"] == "fin"
    t, e = r["week"].to_numpy(float), r["arrest"].to_numpy()
    mr = PHReg(t, r[COVS[1:]].to_numpy(float), status=e, ties="breslow").fit()
    full = PHReg(t, r[COVS].to_numpy(float), status=e, ties="breslow")
    b0 = np.r_[0.0, mr.params]
    U = full.score_residuals(b0)
    cl = r["cl10"].to_numpy()
    S = np.vstack([U[cl == g].sum(axis=0) for g in range(10)])
    info = -full.hessian(b0)
    s = S[:, 0] - S[:, 1:] @ np.linalg.solve(info[1:, 1:], info[1:, 0])
    T = s.sum() ** 2 / np.sum(s ** 2)
    v = np.array(list(itertools.product([-1, 1], repeat=10)))
    p = np.mean((v @ s) ** 2 / np.sum(s ** 2) >= T * (1 - 1e-12))
    assert f["score_statistic"] == pytest.approx(T, rel=1e-7)
    assert f["p_score_bootstrap"] == pytest.approx(p, abs=1e-12)


def test_cox_did_score_bootstrap_size_and_power():
    rej0, rej1 = [], []
    for s in range(20):
        for hr, out in ((1.0, rej0), (1.6, rej1)):
            df = simulate_spells(n=5_000, n_kom=20, n_treated=5, hr=hr, seed=900 + s, weeks=30)
            r = cox_did(df, treated="treated", post="post", strata="kommune_kode", time_effects="start_kvartal",
                        cluster="kommune_kode", bootstrap=399, seed=s)
            out.append(r.info["p_score_bootstrap"] < 0.05)
    assert np.mean(rej0) <= 0.2  # nominal 5 %; 20 draws
    assert np.mean(rej1) >= 0.6
