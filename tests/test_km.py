"""Kaplan–Meier and Aalen–Johansen against lifelines; person-level = aggregated cells."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter

from evaluering.survival import (aalen_johansen, aalen_johansen_cells, kaplan_meier,
                                 kaplan_meier_cells, risk_table, risk_table_from_cells)
from evaluering.survival.discrete import spells_to_cells
from evaluering.survival.simulate import simulate_spells

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def waltons():
    return pd.read_csv(DATA / "waltons.csv", engine="pyarrow")


@pytest.mark.parametrize("ci_method", ["log-log", "plain"])
def test_km_matches_lifelines_on_waltons(waltons, ci_method):
    km = kaplan_meier(waltons, duration="T", status="E", event=None, by="group", ci_method=ci_method)
    assert set(km.table["group"]) == {"miR-137", "control"}
    for name, g in waltons.groupby("group"):
        f = KaplanMeierFitter().fit(g["T"], g["E"])
        tab = km.table[km.table["group"] == name].set_index("time")
        sf = f.survival_function_.iloc[:, 0]
        times = sf.index[sf.index > 0]
        assert list(times) == list(tab.index)
        np.testing.assert_allclose(tab.loc[times, "estimate"], sf.loc[times], rtol=0, atol=1e-12)
        # Greenwood standard error (lifelines keeps the cumulative sum of d/(n(n-d)))
        S = sf.loc[times].to_numpy()
        lo, hi = tab.loc[times, "ci_low"].to_numpy(), tab.loc[times, "ci_high"].to_numpy()
        if ci_method == "log-log":  # lifelines' default: exponential Greenwood
            ci = f.confidence_interval_
            np.testing.assert_allclose(lo, ci.loc[times].iloc[:, 0], rtol=0, atol=1e-10)
            np.testing.assert_allclose(hi, ci.loc[times].iloc[:, 1], rtol=0, atol=1e-10)
        else:
            # independent: Greenwood by hand
            d = g.groupby("T")["E"].sum().reindex(times).to_numpy()
            n = np.array([(g["T"] >= t).sum() for t in times])
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.cumsum(np.where(d > 0, d / (n * (n - d)), 0))
            se = S * np.sqrt(v)
            ok = S > 0
            np.testing.assert_allclose(tab.loc[times, "se"].to_numpy()[ok], se[ok], rtol=1e-12)
            np.testing.assert_allclose(lo[ok], np.clip(S - 1.959963984540054 * se, 0, 1)[ok], atol=1e-12)


def test_aj_matches_lifelines_with_second_cause(waltons):
    # de-tie deterministically (lifelines would otherwise jitter at random) and make cause 2
    w = waltons.copy()
    w["T"] = w["T"] + np.arange(len(w)) * 1e-4
    w["cause"] = np.where(w["E"] == 1, np.where(np.arange(len(w)) % 3 == 0, 2, 1), 0)
    aj = aalen_johansen(w, duration="T", status="cause", event=1, competing=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no jitter warning: the data really are untied
        f = AalenJohansenFitter().fit(w["T"], w["cause"], event_of_interest=1)
    cd = f.cumulative_density_.iloc[:, 0]
    times = cd.index[cd.index > 0]
    tab = aj.table.set_index("time")
    np.testing.assert_allclose(tab.loc[times, "estimate"], cd.loc[times], rtol=0, atol=1e-12)
    # delta-method variance; lifelines returns NaN at the last time, where the last spell
    # exits (n == d, a 0 * inf term whose limit is 0): we keep the finite value there
    v_ref = f.variance_.loc[times].to_numpy()
    assert np.isnan(v_ref).sum() == 1 and np.isnan(v_ref[-1])
    np.testing.assert_allclose(tab.loc[times, "se"].to_numpy()[:-1] ** 2, v_ref[:-1], rtol=0, atol=1e-12)
    assert np.isfinite(tab["se"]).all()
    ci = f.confidence_interval_.loc[times]
    pos = (tab.loc[times, "estimate"].to_numpy() > 0) & np.isfinite(v_ref)
    np.testing.assert_allclose(tab.loc[times, "ci_low"].to_numpy()[pos], ci.iloc[:, 0].to_numpy()[pos], atol=1e-10)
    np.testing.assert_allclose(tab.loc[times, "ci_high"].to_numpy()[pos], ci.iloc[:, 1].to_numpy()[pos], atol=1e-10)


def test_aj_with_ties_sums_to_one_minus_all_cause_km(waltons):
    w = waltons.assign(cause=np.where(waltons["E"] == 1, np.where(np.arange(len(waltons)) % 3 == 0, 2, 1), 0))
    f1 = aalen_johansen(w, duration="T", status="cause", event=1, competing=2, by="group").table
    f2 = aalen_johansen(w, duration="T", status="cause", event=2, competing=1, by="group").table
    km_all = kaplan_meier(w, duration="T", status="E", event=None, by="group").table
    np.testing.assert_allclose(f1["estimate"] + f2["estimate"], 1 - km_all["estimate"], atol=1e-12)
    # no competing cause: AJ = 1 - KM
    aj = aalen_johansen(w, duration="T", status="E", event=None, competing=(), by="group").table
    np.testing.assert_allclose(aj["estimate"], 1 - km_all["estimate"], atol=1e-12)


def test_person_level_and_cells_give_identical_curves():
    df = simulate_spells(n=4000, n_kom=6, n_treated=2, seed=11)
    cells = spells_to_cells(df, by=["kommune_kode", "start_kvartal", "treated", "post"])
    by = ["treated", "post"]
    rt_p = risk_table(df, by=by)
    rt_c = risk_table_from_cells(cells, by=by)
    pd.testing.assert_frame_equal(rt_p.reset_index(drop=True), rt_c, check_dtype=False)
    a = kaplan_meier(df, by=by).table
    b = kaplan_meier_cells(cells, by=by).table
    cols = ["treated", "post", "time", "n_risk", "n_event", "estimate", "se", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(a[cols], b[cols], check_dtype=False, rtol=0, atol=0)
    a = aalen_johansen(df, by=by).table
    b = aalen_johansen_cells(cells, by=by).table
    pd.testing.assert_frame_equal(a[cols], b[cols], check_dtype=False, rtol=0, atol=0)
    # KM of job from cells equals lifelines with education treated as censoring
    g = df[(df.treated == 1) & (df.post == 1)]
    f = KaplanMeierFitter().fit(g["varighed_uger"], g["status"] == "job")
    t = kaplan_meier_cells(cells, by=by).at([13, 26, 52])
    t = t[(t.treated == 1) & (t.post == 1)]
    np.testing.assert_allclose(t["estimate"], f.survival_function_at_times([13, 26, 52]), atol=1e-12)


def test_cells_without_censoring_column_derive_it():
    df = simulate_spells(n=2000, n_kom=4, n_treated=1, seed=5)
    cells = spells_to_cells(df, by=["kommune_kode"])
    a = risk_table_from_cells(cells, by=None)
    b = risk_table_from_cells(cells.drop(columns="n_censur"), censored=None, by=None)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_rmst_matches_lifelines_and_its_variance():
    from lifelines.utils import restricted_mean_survival_time

    df = simulate_spells(n=3000, n_kom=5, n_treated=2, seed=2)
    r = kaplan_meier(df).rmst(52)
    f = KaplanMeierFitter().fit(df["varighed_uger"], df["status"] == "job")
    ref = restricted_mean_survival_time(f, t=52)
    assert r["rmst"].iloc[0] == pytest.approx(ref, rel=1e-12)
    # without censoring RMST is the mean of min(T, h): its variance is Var(min(T,h))/n
    # (lifelines returns Var(min(T,h)) as "variance"); Klein–Moeschberger gives the same
    # up to the n/(n-1) factor of the plug-in moments.
    unc = df.assign(status="job")
    r = kaplan_meier(unc).rmst(52)
    ref, ref_var = restricted_mean_survival_time(
        KaplanMeierFitter().fit(unc["varighed_uger"], np.ones(len(unc))), t=52, return_variance=True)
    m = np.minimum(unc["varighed_uger"].to_numpy() + 0.0, 52)
    assert r["rmst"].iloc[0] == pytest.approx(m.mean(), rel=1e-12)
    assert r["se"].iloc[0] ** 2 == pytest.approx(m.var(ddof=0) / len(m), rel=1e-9)


def test_rmst_standard_error_matches_monte_carlo_spread():
    ests, ses = [], []
    # one fixed population (geometric weekly exits, random censoring), many samples
    rng = np.random.default_rng(7)
    for _ in range(200):
        t = rng.geometric(0.04, 400) - 1
        c = rng.geometric(0.02, 400) - 1
        df = pd.DataFrame({"varighed_uger": np.minimum(t, c), "status": np.where(t <= c, "job", "censureret")})
        r = kaplan_meier(df).rmst(30)
        ests.append(r["rmst"].iloc[0])
        ses.append(r["se"].iloc[0])
    sd = np.std(ests, ddof=1)
    assert abs(np.mean(ses) / sd - 1) < 0.12  # MC error of an sd from 200 draws ~ 5 %


def test_share_in_job_at_weeks_from_km_with_planted_exponential():
    # exponential exits (weekly hazard h), no censoring: S(t) = (1 - h)^(t+1) in whole weeks
    rng = np.random.default_rng(0)
    h = 0.05
    dur = rng.geometric(h, 200_000) - 1  # weeks 0, 1, ...
    df = pd.DataFrame({"varighed_uger": dur, "status": "job"})
    s = kaplan_meier(df).at([13, 26, 52])
    truth = (1 - h) ** (np.array([13, 26, 52]) + 1)
    assert np.all(np.abs(s["estimate"] - truth) < 4 * s["se"] + 1e-12)


def test_curve_beyond_follow_up():
    ended = pd.DataFrame({"varighed_uger": [1, 2, 3], "status": ["job", "job", "job"]})
    open_ = pd.DataFrame({"varighed_uger": [1, 2, 3], "status": ["job", "job", "censureret"]})
    assert kaplan_meier(ended).at([10])["estimate"].iloc[0] == 0.0
    assert kaplan_meier(ended).rmst(10)["rmst"].iloc[0] == pytest.approx(1 + 2 / 3 + 1 / 3)
    assert np.isnan(kaplan_meier(open_).at([10])["estimate"].iloc[0])
    assert np.isnan(kaplan_meier(open_).rmst(10)["rmst"].iloc[0])
    s = kaplan_meier(open_).at([0, 2, 3])
    assert s["estimate"].tolist() == pytest.approx([1.0, 1 / 3, 1 / 3])
    assert s["n_risk"].tolist() == [3, 2, 1]
