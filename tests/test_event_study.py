"""Dynamic TWFE event study against statsmodels with explicit dummies, and simulations."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from evaluering.errors import EstimationError
from evaluering.estimators.event_study import event_study

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def mpdta():
    return pd.read_csv(DATA / "mpdta.csv", engine="pyarrow").rename(columns={"first.treat": "g"})


@pytest.fixture(scope="module")
def mp_small(mpdta):
    """Every 4th county (125 counties, all cohorts): fast dummy-variable reference fits."""
    return mpdta[mpdta["countyreal"].rank(method="dense") % 4 == 0].reset_index(drop=True)


def _sm_event(df, lo, hi, ref=-1, bin_=True):
    d = df.copy()
    rel = np.where(d["g"] > 0, d["year"] - d["g"], np.nan)
    if bin_:
        rel = np.where(np.isnan(rel), np.nan, np.minimum(np.maximum(rel, lo), hi))
    terms = []
    for e in range(lo, hi + 1):
        if e == ref:
            continue
        name = f"d_{'m' if e < 0 else 'p'}{abs(e)}"
        d[name] = (rel == e).astype(float)
        if d[name].sum() > 0:
            terms.append((e, name))
    f = "lemp ~ " + " + ".join(n for _, n in terms) + " + C(countyreal) + C(year)"
    fit = smf.ols(f, d).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(d["countyreal"])[0]})
    return fit, terms


@pytest.mark.parametrize("window", [None, (-2, 2)])
def test_event_study_matches_statsmodels_dummies(mp_small, window):
    r = event_study(mp_small, "lemp", "countyreal", "year", "g", window=window)
    lo, hi = window or (-4, 3)
    sm, terms = _sm_event(mp_small, lo, hi)
    ev = r.component("event").set_index("e")
    n, k_sm = len(mp_small), sm.params.size
    k_ours = len(terms) + 5
    scale = np.sqrt((n - k_sm) / (n - k_ours))
    for e, name in terms:
        assert ev.loc[e, "att"] == pytest.approx(sm.params[name], rel=1e-8, abs=1e-12)
        assert ev.loc[e, "se"] == pytest.approx(sm.bse[name] * scale, rel=1e-7)
    assert ev.loc[-1, "reference"] and ev.loc[-1, "att"] == 0
    # headline = mean of post coefficients, delta-method SE from the sm covariance
    post = [name for e, name in terms if e >= 0]
    a = pd.Series(1.0 / len(post), index=post)
    cov = sm.cov_params().loc[post, post] * scale**2
    assert r.estimate == pytest.approx(sm.params[post].mean(), rel=1e-8)
    assert r.se == pytest.approx(float(np.sqrt(a @ cov @ a)), rel=1e-7)
    # pre-trend Wald test on the leads, F(q, G-1)
    leads = [name for e, name in terms if e < 0]
    b = sm.params[leads].to_numpy()
    W = float(b @ np.linalg.solve(sm.cov_params().loc[leads, leads].to_numpy() * scale**2, b))
    assert r.info["pretrend_F"] == pytest.approx(W / len(leads), rel=1e-6)
    assert r.info["pretrend_q"] == len(leads) and r.info["pretrend_df"] == 124
    # uniform band is wider than the pointwise one
    est = ev[~ev["reference"]]
    assert (est["ucb_high"] - est["ucb_low"] > est["ci_high"] - est["ci_low"]).all()


def test_trimmed_window_drops_outside_observations(mp_small):
    r = event_study(mp_small, "lemp", "countyreal", "year", "g", window=(-2, 2), bin_endpoints=False)
    d = mp_small.copy()
    rel = np.where(d["g"] > 0, d["year"] - d["g"], 0)
    d = d[(d["g"] == 0) | ((rel >= -2) & (rel <= 2))]
    sm, terms = _sm_event(d, -2, 2, bin_=False)
    ev = r.component("event").set_index("e")
    for e, name in terms:
        assert ev.loc[e, "att"] == pytest.approx(sm.params[name], rel=1e-8)
    assert r.n_obs == len(d)


def _sim(rng, n_units=120, T=10, pretrend=0.0):
    cohorts = rng.choice([4, 6, 8, np.inf], size=n_units)
    unit = np.repeat(np.arange(n_units), T)
    t = np.tile(np.arange(1, T + 1), n_units)
    g = cohorts[unit]
    rel = t - g
    tau = np.where(rel >= 0, 1.0 + 0.5 * rel, 0.0)  # dynamic, same for every cohort
    pre = np.where(np.isfinite(g) & (rel < 0), pretrend * np.nan_to_num(rel, posinf=0, neginf=0), 0.0)
    y = rng.normal(size=n_units)[unit] + 0.2 * t + tau + pre + rng.normal(size=len(t))
    return pd.DataFrame({"u": unit, "t": t, "g": np.where(np.isfinite(g), g, 0), "y": y})


def test_planted_dynamic_effect_covered_and_pretrend_size():
    rng = np.random.default_rng(7)
    cover_ucb = cover_mean = reject = 0
    reps = 100
    for _ in range(reps):
        r = event_study(_sim(rng, n_units=200), "y", "u", "t", "g", draws=2000)
        ev = r.component("event")
        ev = ev[~ev["reference"]]
        truth = np.where(ev["e"] >= 0, 1.0 + 0.5 * ev["e"], 0.0)
        cover_ucb += bool(((ev["ucb_low"] <= truth) & (truth <= ev["ucb_high"])).all())
        true_mean = np.mean(1.0 + 0.5 * np.arange(0, 7))
        cover_mean += r.ci[0] <= true_mean <= r.ci[1]
        reject += r.info["pretrend_p"] < 0.05
    assert cover_ucb / reps >= 0.85  # 13 coefficients jointly
    assert cover_mean / reps >= 0.88
    assert reject / reps <= 0.12


def test_planted_pretrend_is_detected():
    r = event_study(_sim(np.random.default_rng(8), n_units=200, pretrend=0.4), "y", "u", "t", "g")
    assert r.info["pretrend_p"] < 0.001


def test_event_errors_and_no_never_treated(mpdta):
    d = mpdta[mpdta["g"] > 0]
    with pytest.raises(EstimationError, match="never-treated"):
        event_study(d, "lemp", "countyreal", "year", "g")
    r = event_study(d, "lemp", "countyreal", "year", "g", ref=(-1, -4))
    assert set(r.component("event").query("reference")["e"]) == {-1, -4}
    with pytest.raises(EstimationError, match="pre-periods"):
        event_study(mpdta[mpdta["year"] >= mpdta["g"].where(mpdta["g"] > 0, 0)],
                    "lemp", "countyreal", "year", "g")
    bad = mpdta.copy()
    bad.loc[0, "g"] = 2006
    with pytest.raises(EstimationError, match="varies within unit"):
        event_study(bad, "lemp", "countyreal", "year", "g")


def test_plot_runs(mpdta):
    import matplotlib

    matplotlib.use("Agg")
    r = event_study(mpdta, "lemp", "countyreal", "year", "g")
    ax = r.plot()
    assert ax.get_title() == "event: event"


def test_repeated_cross_sections_with_group_effects():
    # fresh individuals every period in 24 groups (kommuner); cohorts by group; planted effect 1
    rng = np.random.default_rng(4)
    rows = []
    gcoh = {k: (3 if k < 8 else 5 if k < 16 else 0) for k in range(24)}
    for k in range(24):
        for t in range(1, 8):
            n = int(rng.integers(10, 25))
            c = gcoh[k]
            eff = 1.0 if (c and t >= c) else 0.0
            rows.append(pd.DataFrame({"kommune": k, "t": t, "g": c,
                                      "y": 0.2 * k + 0.1 * t + eff + rng.normal(size=n)}))
    df = pd.concat(rows, ignore_index=True)
    r = event_study(df, "y", "kommune", "t", "g", window=(-2, 2))
    rel = np.where(df["g"] > 0, np.clip(df["t"] - df["g"], -2, 2), np.nan)
    for e in (-2, 0, 1, 2):
        df[f"d{e + 2}"] = (rel == e).astype(float)
    sm = smf.ols("y ~ d0 + d2 + d3 + d4 + C(kommune) + C(t)", df).fit()
    ev = r.component("event").set_index("e")
    for e in (-2, 0, 1, 2):
        assert ev.loc[e, "att"] == pytest.approx(sm.params[f"d{e + 2}"], rel=1e-8, abs=1e-10)
    assert r.n_units == 24 and r.info["n_clusters"] == 24
    assert r.ci[0] < 1.0 < r.ci[1]


def test_sup_t_critical_value():
    from scipy import stats

    from evaluering.estimators._ols import sup_t_critical

    # one coefficient: the pointwise t critical value; independent coefficients: Šidák
    assert sup_t_critical(np.eye(1), 0.05, draws=200_000, df=9) == pytest.approx(
        stats.t.ppf(0.975, 9), rel=0.02)
    k = 5
    sidak = stats.norm.ppf(1 - (1 - 0.95 ** (1 / k)) / 2)
    assert sup_t_critical(np.eye(k) * 4.0, 0.05, draws=200_000) == pytest.approx(sidak, rel=0.02)
    # perfectly correlated coefficients: back to the pointwise value
    assert sup_t_critical(np.ones((3, 3)), 0.05, draws=200_000) == pytest.approx(1.96, rel=0.02)
