"""Survival summaries per municipality × start quarter, fed to CS/BJS; 2×2 KM share DiD."""

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time

from evaluering.errors import EstimationError
from evaluering.survival.simulate import simulate_spells, true_job_survival
from evaluering.survival.staggered import km_did_share, staggered_survival_did, survival_panel

HR = 1.5
T = 8


@pytest.fixture(scope="module")
def staggered():
    # no calendar effect, so parallel trends hold on every (non-linear) share scale
    df = simulate_spells(n=150_000, n_kom=40, n_treated=12, hr=HR, seed=5, quarter_effect=0.0,
                         cohorts=[3, 5], weeks=60)
    return df, survival_panel(df, carry=["kohorte"])


def test_panel_cells_match_lifelines(staggered):
    df, pan = staggered
    assert len(pan) == 40 * T and pan["n_spells"].sum() == len(df)
    for kom, q in [("k0", 0), ("k17", 5)]:
        g = df[(df["kommune_kode"] == kom) & (df["start_kvartal"] == q)]
        f = KaplanMeierFitter().fit(g["varighed_uger"], g["status"] == "job")
        row = pan[(pan["kommune_kode"] == kom) & (pan["start_kvartal"] == q)].iloc[0]
        for w in (13, 26, 52):
            assert row[f"job_{w}"] == pytest.approx(1 - f.survival_function_at_times(w).iloc[0], abs=1e-12)
            assert row[f"n_risk_{w}"] == (g["varighed_uger"] >= w).sum()
        assert row["rmst_52"] == pytest.approx(restricted_mean_survival_time(f, t=52), rel=1e-10)
        assert row["n_spells"] == len(g)


def _truth(df, fn, drop=()):
    """ATT averaging treated post (unit, period) cells equally (CS 'simple' weights cohorts by
    size, BJS averages treated observations: both give every treated post cell equal weight)."""
    lin0 = df["lin"] - np.log(HR) * df["treated"] * df["post"]
    u = df.assign(lin0=lin0).groupby("kommune_kode").agg(lin0=("lin0", "first"), coh=("kohorte", "first"))
    tr = u[(u["coh"] > 0) & ~u.index.isin(list(drop))]
    cell = fn(tr["lin0"] + np.log(HR)) - fn(tr["lin0"])
    w = T - tr["coh"]
    return float((cell * w).sum() / w.sum())


@pytest.mark.parametrize("estimator", ["cs", "bjs"])
def test_planted_effect_on_share_and_rmst_covered(staggered, estimator):
    df, pan = staggered
    r = staggered_survival_did(pan, "job_26", estimator=estimator)
    share26 = _truth(df, lambda lin: 1 - true_job_survival(26, lin))
    assert r.n_units == 40 and share26 > 0.1  # the planted HR 1.5 is a sizeable effect
    assert r.ci[0] < share26 < r.ci[1]
    r = staggered_survival_did(pan, "rmst_52", estimator=estimator)
    # a cell whose last spell is censored before week 52 has no RMST: its unit is dropped
    dropped = [u for u in r.info["dropped_units"].split(", ") if u]
    assert r.n_units == 40 - len(dropped) and len(dropped) <= 2
    # RMST of a step function on whole weeks: sum of S(w) for w = 0..51
    rmst = _truth(df, lambda lin: sum(true_job_survival(w, lin) for w in range(52)), dropped)
    assert rmst < -3
    assert r.ci[0] < rmst < r.ci[1]
    assert r.info["outcome"] == "rmst_52"


def test_km_did_share_covers_planted_difference():
    df = simulate_spells(n=100_000, n_kom=30, n_treated=8, hr=HR, seed=8)
    r = km_did_share(df, weeks=[13, 26, 52], headline_week=26)
    F = 1 - true_job_survival(26, df["lin"])
    m = F.groupby([df["treated"], df["post"]]).mean()  # mixture over persons = group KM limit
    truth = (m[(1, 1)] - m[(1, 0)]) - (m[(0, 1)] - m[(0, 0)])
    assert abs(truth) > 0.05
    assert r.ci[0] < truth < r.ci[1]
    ev = r.component("event")
    assert ev["e"].tolist() == [13, 26, 52]
    assert ev.loc[ev["e"] == 26, "att"].iloc[0] == r.estimate


def test_aj_share_and_errors(staggered):
    df, _ = staggered
    sub = df[df["kommune_kode"].isin(["k0", "k20"])]
    km = survival_panel(sub)
    aj = survival_panel(sub, share="aj")
    # with a competing exit the cumulative incidence of job is below 1 - KM of job
    assert (aj["job_26"] <= km["job_26"] + 1e-12).all() and (aj["job_26"] < km["job_26"]).any()
    with pytest.raises(EstimationError):
        survival_panel(sub, share="x")
    with pytest.raises(EstimationError):
        survival_panel(sub.assign(kohorte=np.arange(len(sub))), carry=["kohorte"])
    with pytest.raises(EstimationError):
        staggered_survival_did(survival_panel(sub, carry=["kohorte"]), "job_26", estimator="sdid")
