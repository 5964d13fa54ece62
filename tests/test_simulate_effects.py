"""Planted effects of the register simulator are recoverable by simple independent checks.

Each check is a difference-in-differences computed directly from the written registers
(pandas, not the simulator's code): North Jutland trial municipalities vs the control
municipalities (all others minus the North Zealand network), spells starting before vs
after the trial start. With the effect switched off the same statistic must be near the null.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from evaluering import contract
from evaluering.reference.catalogue import load_forsoeg
from evaluering.simulate import simulate

N = 25_000
PLANTED = {
    "samtaler-forsikrede": {"hazard_job": 1.5, "andel_fysiske": -0.30},
    "rehabiliteringsteam": {"rehab": 0.4},
}
NZ = {"201", "151", "210", "250", "190", "270", "260", "217", "219"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("eff")
    out = {}
    for name, eff in (("effect", PLANTED), ("null", {})):
        p = simulate(base / name, n_persons=N, seed=11, effects=eff)
        out[name] = (pd.read_parquet(p / "forloeb.parquet"),
                     pd.read_parquet(p / "kontakter.parquet"),
                     {f.id: f for f in load_forsoeg(p / "forsoeg.toml")})
        out[name + "_sandhed"] = json.loads((p / "sandhed.json").read_text(encoding="utf-8"))
    return out


def _arms(f: pd.DataFrame, trial) -> pd.DataFrame:
    """Label spells of the trial's target group: arm (treated/control), period (pre/post)."""
    f = f[f.ydelsesgruppe.isin(trial.maalgruppe)].copy()
    treated = f.kommune_kode.isin(trial.kommuner)
    control = ~treated & ~f.kommune_kode.isin(NZ)
    start_k = f.kommune_kode.map(lambda k: trial.start_for(k) or trial.start)
    pre = (f.start_dato >= dt.date(2015, 1, 1)) & (f.start_dato < trial.start)
    post = (f.start_dato >= start_k) & (f.start_dato <= trial.slut)
    f["arm"] = np.select([treated, control], ["T", "C"], "x")
    f["period"] = np.select([pre, post], ["pre", "post"], "x")
    return f[(f.arm != "x") & (f.period != "x")]


def _hazard_did(f: pd.DataFrame, trial) -> float:
    """Ratio of ratios of crude exit-to-self-support rates within 52 weeks of spell start."""
    a = _arms(f, trial)
    end = pd.to_datetime(a.slut_dato.fillna(dt.date(2021, 12, 31)))
    dur = (end - pd.to_datetime(a.start_dato)).dt.days / 7
    a = a.assign(weeks=np.minimum(dur, 52),
                 event=a.afgang.isin(["job", "andet"]) & (dur <= 52))
    g = a.groupby(["arm", "period"]).agg(e=("event", "sum"), w=("weeks", "sum"))
    rate = g.e / g.w
    return (rate["T", "post"] / rate["T", "pre"]) / (rate["C", "post"] / rate["C", "pre"])


def _share_did(f, k, trial) -> float:
    a = _arms(f, trial)
    s = k[k.type == "samtale"].merge(
        a[["person_id", "start_dato", "slut_dato", "arm", "period"]], on="person_id")
    s = s[(s.dato >= s.start_dato) & (s.dato <= s.slut_dato.fillna(dt.date(2021, 12, 31)))]
    sh = (s.kanal == "fysisk").groupby([s.arm, s.period]).mean()
    return (sh["T", "post"] - sh["T", "pre"]) - (sh["C", "post"] - sh["C", "pre"])


def _rehab_rate_did(f, k, trial) -> float:
    a = _arms(f, trial)
    end = pd.to_datetime(a.slut_dato.fillna(dt.date(2021, 12, 31)))
    a = a.assign(weeks=(end - pd.to_datetime(a.start_dato)).dt.days / 7 + 1 / 7)
    r = k[k.type == "rehabiliteringsteam"].merge(
        a[["person_id", "start_dato", "slut_dato", "arm", "period"]], on="person_id")
    r = r[(r.dato >= r.start_dato) & (r.dato <= r.slut_dato.fillna(dt.date(2021, 12, 31)))]
    ev = r.groupby(["arm", "period"]).size()
    w = a.groupby(["arm", "period"]).weeks.sum()
    rate = ev / w
    return (rate["T", "post"] / rate["T", "pre"]) / (rate["C", "post"] / rate["C", "pre"])


def test_planted_hazard_ratio_is_recovered(runs):
    f, _, fs = runs["effect"]
    f0, _, fs0 = runs["null"]
    t = fs["samtaler-forsikrede"]
    hr = _hazard_did(f, t)
    hr0 = _hazard_did(f0, fs0["samtaler-forsikrede"])
    assert 0.85 < hr0 < 1.18, hr0
    assert 1.30 < hr < 1.75, hr
    assert hr / hr0 > 1.25


def test_planted_in_person_share_is_recovered(runs):
    f, k, fs = runs["effect"]
    f0, k0, fs0 = runs["null"]
    d = _share_did(f, k, fs["samtaler-forsikrede"])
    d0 = _share_did(f0, k0, fs0["samtaler-forsikrede"])
    assert abs(d0) < 0.04, d0
    assert -0.36 < d < -0.24, d


def test_planted_rehab_reduction_is_recovered(runs):
    f, k, fs = runs["effect"]
    f0, k0, fs0 = runs["null"]
    r = _rehab_rate_did(f, k, fs["rehabiliteringsteam"])
    r0 = _rehab_rate_did(f0, k0, fs0["rehabiliteringsteam"])
    assert 0.6 < r0 < 1.6, r0
    assert 0.2 < r < 0.65, r


def test_sandhed_time_to_job_matches_an_empirical_did(runs):
    """The truth in sandhed.json (computed from potential outcomes inside the simulator) agrees
    with a DiD of shares in job within 13/26 weeks and of RMST measured from the written
    spells, within sampling noise (about 2.5 pp / 1 week standard error here)."""
    f, _, fs = runs["effect"]
    truth = runs["effect_sandhed"]["forsoeg"]["samtaler-forsikrede"]["effekt"]
    a = _arms(f, fs["samtaler-forsikrede"])
    w0 = np.array([contract.week_index_of_date(d) for d in a.start_dato])
    w1 = np.array([contract.week_index_of_date(d) if pd.notna(d) else 10**7
                   for d in a.slut_dato])
    wtj = np.where(a.afgang.isin(["job", "andet"]).to_numpy(), w1 + 1 - w0, 10**6)
    a = a.assign(j13=100.0 * (wtj <= 13), j26=100.0 * (wtj <= 26), r52=np.minimum(wtj, 52))
    g = a.groupby(["arm", "period"])[["j13", "j26", "r52"]].mean()
    did = (g.loc["T", "post"] - g.loc["T", "pre"]) - (g.loc["C", "post"] - g.loc["C", "pre"])
    assert truth["job_13_uger"] > 5 and truth["rmst_52_uger"] < -2
    assert abs(did["j13"] - truth["job_13_uger"]) < 7.5
    assert abs(did["j26"] - truth["job_26_uger"]) < 7.5
    assert abs(did["r52"] - truth["rmst_52_uger"]) < 3.0
    null = runs["null_sandhed"]["forsoeg"]["samtaler-forsikrede"]["effekt"]
    assert null["job_13_uger"] == 0 and null["rmst_52_uger"] == 0


def _cox_did(f: pd.DataFrame, trial):
    """Cox model (lifelines) of the weekly exit to self-support within 52 weeks with arm,
    period, arm x period and the person covariates; returns exp(coef) and the 99 % CI of
    the arm x period term."""
    from lifelines import CoxPHFitter

    a = _arms(f, trial)
    end = pd.to_datetime(a.slut_dato.fillna(dt.date(2021, 12, 31)))
    dur = (end - pd.to_datetime(a.start_dato)).dt.days / 7 + 1 / 7
    d = pd.DataFrame({
        "T": np.minimum(dur, 52).to_numpy(),
        "E": (a.afgang.isin(["job", "andet"]) & (dur <= 52)).astype(int).to_numpy(),
        "arm": (a.arm == "T").astype(int).to_numpy(),
        "post": (a.period == "post").astype(int).to_numpy(),
        "kvinde": (a.koen == "K").astype(int).to_numpy(),
        "alder": (pd.to_datetime(a.start_dato).dt.year - a.foedselsaar).to_numpy(),
    })
    d["arm_post"] = d.arm * d.post
    for h in ("vestlig", "ikke_vestlig"):
        d[h] = (a.herkomst == h).astype(int).to_numpy()
    for u in ("grundskole", "erhvervsfaglig", "videregaaende"):
        d[u] = (a.uddannelse == u).astype(int).to_numpy()
    m = CoxPHFitter(alpha=0.01).fit(d, "T", "E")
    lo, hi = np.exp(m.confidence_intervals_.loc["arm_post"]).tolist()
    return float(np.exp(m.params_["arm_post"])), lo, hi


def test_planted_hazard_ratio_inside_cox_interval(runs):
    """A second, model-based check: the planted (conditional) hazard ratio 1.5 lies in the
    99 % interval of a lifelines Cox DiD; with no effect the interval covers 1."""
    f, _, fs = runs["effect"]
    hr, lo, hi = _cox_did(f, fs["samtaler-forsikrede"])
    assert lo < 1.5 < hi and lo > 1.1, (hr, lo, hi)
    f0, _, fs0 = runs["null"]
    hr0, lo0, hi0 = _cox_did(f0, fs0["samtaler-forsikrede"])
    assert lo0 < 1.0 < hi0, (hr0, lo0, hi0)
