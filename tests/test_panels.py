"""Panels: reconciliation with the canonical tables, cell values against pandas, the
discrete-time survival table against lifelines' Kaplan-Meier, a planted hazard, and the
per-trial helper."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from evaluering import contract
from evaluering.outcomes import build_outcomes
from evaluering.panels import forsoeg_panel
from test_outcomes_helpers import D, FakeForsoeg, spell, weeks, write_canonical

TRIAL = FakeForsoeg("samtaler", "Samtaler", "FK II", ("a-dagpenge", "kontanthjaelp"), D(2017, 7, 1),
                    D(2021, 12, 31), ("851", "860"), udeluk_fra_kontrol=("201",),
                    start_pr_kommune={"860": D(2017, 9, 1)})


@pytest.fixture(scope="module")
def built(canonical_registers, tmp_path_factory):
    folder, _ = canonical_registers(n_persons=500, seed=11)
    r = build_outcomes(folder, forsoeg=[TRIAL], out_dir=tmp_path_factory.mktemp("pan") / "o")
    out = {n: pd.read_parquet(p) for n, p in r.files.items() if n != "manifest"}
    f = pd.read_parquet(folder / "forloeb.parquet")
    k = pd.read_parquet(folder / "kontakter.parquet")
    for c in ("start_dato", "slut_dato"):
        f[c] = pd.to_datetime(f[c])
    k["dato"] = pd.to_datetime(k["dato"])
    return r, out, f, k


def test_panel_totals_reconcile_with_canonical_tables(built):
    r, out, f, k = built
    data_end = pd.Timestamp(r.manifest["parametre"]["data_slut"])
    for name in ("panel_kvartal", "panel_maaned"):
        p = out[name]
        assert not p.duplicated(["kommune_kode", "ydelsesgruppe", "periode_nr"]).any()
        assert p["forloeb_startet"].sum() == len(f)                          # every spell once
        assert p["forloeb_afsluttet"].sum() == f["slut_dato"].notna().sum()
        days = ((f["slut_dato"].fillna(data_end) - f["start_dato"]).dt.days + 1).sum()
        assert p["dage_paa_ydelse"].sum() == days                           # every spell-day once
        # every contact exactly once: inside spells (whole spell) or in the outside tally
        outside = out["kontakter_uden_forloeb"]["n_kontakter"].sum()
        assert p["kontakter_hele_sum"].sum() + outside == len(k)
        t = out["tid_til_job"]
        for o in ("job_13_uger", "job_26_uger", "job_52_uger", "rmst_52_uger"):
            assert p[f"{o}_n"].sum() == t[o].notna().sum()
            assert p[f"{o}_sum"].sum() == pytest.approx(t[o].sum())
        res = out["ressourcer"]
        for o in ("samtaler_pr_forloeb", "minutter_pr_forloeb", "udgift_pr_forloeb"):
            assert p[f"{o}_n"].sum() == res[o].notna().sum()
            assert p[f"{o}_sum"].sum() == pytest.approx(res[o].sum())
        assert p["hazard_job_haendelser"].sum() == (t["status"] == "job").sum()
        assert "person_id" not in p.columns


@pytest.mark.parametrize("name,freq,kind", [("panel_kvartal", "Q", "Q"), ("panel_maaned", "M", "M")])
def test_period_labels_are_statbank_labels_of_the_period(built, name, freq, kind):
    """``periode`` is StatBank's TID form (2017Q3, 2017M07): the public layer's StatBank
    parser reads it back to the period's first day, and pandas' own Period gives the same
    label from ``periode_fra``."""
    from evaluering.public.statbank import parse_period

    _, out, _, _ = built
    p = out[name]
    assert p["periode"].notna().all() and len(p) > 0
    fra = pd.to_datetime(p["periode_fra"])
    for lab, d in zip(p["periode"], fra):
        norm, start, k = parse_period(lab)
        assert (norm, start, k) == (lab, d, kind)
    per = fra.dt.to_period(freq)
    want = (per.dt.year.astype(str) + kind
            + (per.dt.quarter.astype(str) if freq == "Q" else per.dt.month.map("{:02d}".format)))
    assert (p["periode"] == want).all()
    # the number and the label name the same period
    k = 4 if freq == "Q" else 12
    assert (p["periode"].str[:4].astype(int) == p["periode_nr"] // k).all()


def test_survival_table_start_quarter_labels(built):
    from evaluering.public.statbank import parse_period

    _, out, _, _ = built
    s, t = out["overlevelse"], out["tid_til_job"]
    labs = s[["start_kvartal", "start_kvartal_nr"]].drop_duplicates()
    assert not labs["start_kvartal"].duplicated().any()          # one label per quarter number
    for lab, nr in zip(labs["start_kvartal"], labs["start_kvartal_nr"]):
        _, start, kind = parse_period(lab)
        assert kind == "Q" and start.year * 4 + start.quarter - 1 == nr
    # the label is the quarter of the spells' start dates (pandas, from the per-spell table)
    d = pd.to_datetime(t["start_dato"])
    q = d.dt.year.astype(str) + "Q" + d.dt.quarter.astype(str)
    assert set(labs["start_kvartal"]) == set(q[t["varighed_uger"].notna()])


def test_period_label_helpers_and_sql_agree():
    """period_label (Python), period_label_sql (DuckDB) and pandas' Period name the same
    periods for every month 1990-2039, and the SQL translates to Spark."""
    import duckdb

    from evaluering.engine import to_spark_sql
    from evaluering.panels import period_label, period_nr
    from evaluering.panels.sql import period_label_sql

    days = pd.date_range("1990-01-01", "2039-12-31", freq="MS") + pd.Timedelta(days=13)
    con = duckdb.connect()
    for periode, freq, fmt in (("maaned", "M", lambda p: f"{p.year}M{p.month:02d}"),
                               ("kvartal", "Q", lambda p: f"{p.year}Q{p.quarter}"),
                               ("halvaar", None, lambda p: f"{p.year}H{1 + (p.month > 6)}")):
        nrs = [period_nr(d.date(), periode) for d in days]
        want = [fmt(d.to_period(freq) if freq else d) for d in days]
        assert [period_label(n, periode) for n in nrs] == want
        got = con.execute(f"SELECT {period_label_sql('nr', periode)} AS l FROM "
                          "(SELECT UNNEST(?) AS nr)", [nrs]).df()["l"].tolist()
        assert got == want
        assert "FLOOR" in to_spark_sql(f"SELECT {period_label_sql('nr', periode)} FROM t")
    with pytest.raises(ValueError):
        period_label(1, "uge")


def test_panel_cells_equal_pandas_groupby(built):
    r, out, f, _ = built
    data_end = pd.Timestamp(r.manifest["parametre"]["data_slut"])
    p = out["panel_kvartal"].set_index(["kommune_kode", "ydelsesgruppe", "periode_nr"])
    t = out["tid_til_job"].merge(f[["spell_id", "foedselsaar", "koen"]], on="spell_id")
    t["q"] = pd.to_datetime(t["start_dato"]).dt.year * 4 + (pd.to_datetime(t["start_dato"]).dt.quarter - 1)
    g = t.groupby(["kommune_kode", "ydelsesgruppe", "q"])
    exp_mean = g["job_26_uger"].mean()
    exp_n = g["job_26_uger"].count()
    exp_pers = g["person_id"].nunique()
    exp_k = g["koen"].apply(lambda s: (s == "K").sum())
    for key in exp_n.index:
        cell = p.loc[key]
        assert cell["job_26_uger_n"] == exp_n[key]
        assert cell["personer_startet"] == exp_pers[key]
        assert cell["n_kvinder"] == exp_k[key]
        if exp_n[key]:
            assert cell["job_26_uger"] == pytest.approx(exp_mean[key])
        else:
            assert pd.isna(cell["job_26_uger"])
    # stocks: open at the quarter's (observed) last day, and full-time equivalents
    q = p.reset_index()
    for _, row in q.sample(40, random_state=1).iterrows():
        fra, til = pd.Timestamp(row["periode_fra"]), pd.Timestamp(row["periode_til"])
        s = f[(f["kommune_kode"] == row["kommune_kode"]) & (f["ydelsesgruppe"] == row["ydelsesgruppe"])]
        end = s["slut_dato"].fillna(data_end)
        ov = s[(s["start_dato"] <= til) & (end >= fra)]
        e = end[ov.index]
        days = ((e.clip(upper=til) - ov["start_dato"].clip(lower=fra)).dt.days + 1).sum()
        assert row["dage_paa_ydelse"] == days
        assert row["helaarspersoner"] == pytest.approx(days / ((til - fra).days + 1))
        assert row["forloeb_aabne"] == ((ov["slut_dato"].isna()) | (ov["slut_dato"] > til)).sum()


def _km_from_table(tab: pd.DataFrame) -> pd.Series:
    agg = tab.groupby("uge")[["n_risiko", "n_job"]].sum()
    agg = agg[agg["n_job"] > 0]
    return (1 - agg["n_job"] / agg["n_risiko"]).cumprod()


def test_survival_table_reproduces_lifelines_kaplan_meier(built):
    _, out, _, _ = built
    t = out["tid_til_job"].dropna(subset=["varighed_uger"])
    surv = out["overlevelse"]
    assert surv.groupby(["kommune_kode", "ydelsesgruppe", "start_kvartal_nr", "forsoeg_eksponeret"])[
        "n_risiko"].first().sum() == len(t)
    for sub_t, sub_s in [(t, surv)] + [
            (t[t["kommune_kode"] == kk], surv[surv["kommune_kode"] == kk]) for kk in ("851", "101")] + [
            (t[t["forsoeg_eksponeret"] != ""], surv[surv["forsoeg_eksponeret"] != ""])]:
        kmf = KaplanMeierFitter().fit(sub_t["varighed_uger"], event_observed=sub_t["status"] == "job")
        ours = _km_from_table(sub_s)
        theirs = kmf.survival_function_.iloc[:, 0]
        theirs = theirs[theirs.index.isin(ours.index)]
        assert len(ours) > 10
        np.testing.assert_allclose(ours.to_numpy(), theirs.loc[ours.index].to_numpy(), rtol=1e-12)
        # at-risk counts equal lifelines' event table
        et = kmf.event_table
        at = sub_s.groupby("uge")["n_risiko"].sum()
        common = et.index[et.index.isin(at.index)]
        np.testing.assert_array_equal(at.loc[common].to_numpy(), et.loc[common, "at_risk"].to_numpy())


def test_survival_columns_and_competing_counts(built):
    _, out, _, _ = built
    s, t = out["overlevelse"], out["tid_til_job"].dropna(subset=["varighed_uger"])
    assert list(s.columns[:6]) == ["kommune_kode", "ydelsesgruppe", "start_kvartal", "start_kvartal_nr",
                                   "forsoeg_eksponeret", "uge"]
    assert s["n_job"].sum() == (t["status"] == "job").sum()
    assert s["n_uddannelse"].sum() == (t["status"] == "uddannelse").sum()
    assert s["n_censur"].sum() == (t["status"] == "censureret").sum()
    # at risk decreases by exactly the spells leaving at each week
    key = ["kommune_kode", "ydelsesgruppe", "start_kvartal_nr", "forsoeg_eksponeret"]
    for _, g in s.groupby(key):
        left = (g["n_job"] + g["n_uddannelse"] + g["n_censur"]).to_numpy()
        r = g["n_risiko"].to_numpy()
        np.testing.assert_array_equal(r[1:], r[:-1] - left[:-1])
        assert r[-1] == left[-1]


def test_planted_weekly_hazard_and_hazard_ratio_are_recovered(tmp_path):
    """One spell per person, benefit for T ~ Geometric(h) weeks then self-support."""
    rng = np.random.default_rng(2024)
    first = contract.week_index_of_date(D(2016, 1, 4))
    last = first + 200
    h = {"851": 0.10, "101": 0.05}
    sp, uw = [], []
    for i in range(3000):
        kom = "851" if i % 2 else "101"
        s = first + int(rng.integers(0, 150))
        T = int(rng.geometric(h[kom]))
        sp.append(spell(i + 1, f"q{i}", kom, "a-dagpenge", contract.week_monday(s) + dt.timedelta(days=2)))
        uw += weeks(f"q{i}", s, min(s + T - 1, last))
    write_canonical(tmp_path / "p", sp, ugestatus=uw, week_range=(first, last))
    r = build_outcomes(tmp_path / "p")
    surv = pd.read_parquet(r.files["overlevelse"])
    t = pd.read_parquet(r.files["tid_til_job"])
    est = {}
    for kom, hk in h.items():
        g = surv[(surv["kommune_kode"] == kom) & (surv["uge"] >= 1)]
        n, d = g["n_risiko"].sum(), g["n_job"].sum()
        est[kom] = d / n
        assert abs(est[kom] - hk) < 4 * np.sqrt(hk * (1 - hk) / n)
        # share in job within 13 weeks among spells with full follow-up: 1-(1-h)^13
        j = t.loc[t["kommune_kode"] == kom, "job_13_uger"].dropna()
        p13 = 1 - (1 - hk) ** 13
        assert abs(j.mean() - p13) < 4 * np.sqrt(p13 * (1 - p13) / len(j))
    assert est["851"] / est["101"] == pytest.approx(2.0, rel=0.2)
    # the panel's hazard_job (events per week at risk incl. week 0) is consistent
    p = pd.read_parquet(r.files["panel_kvartal"])
    g = p.groupby("kommune_kode")[["hazard_job_haendelser", "hazard_job_risikouger"]].sum()
    assert (g["hazard_job_haendelser"] / g["hazard_job_risikouger"]).loc["851"] == pytest.approx(
        surv.loc[surv.kommune_kode == "851", "n_job"].sum()
        / surv.loc[surv.kommune_kode == "851", "n_risiko"].sum())


def test_forsoeg_panel_marks_design_and_sums_target_groups(built):
    _, out, _, _ = built
    p = out["panel_kvartal"]
    tp = forsoeg_panel(p, TRIAL, "kvartal")
    assert not tp.duplicated(["kommune_kode", "periode_nr"]).any()
    roles = tp.groupby("kommune_kode")["rolle"].first().to_dict()
    assert roles == {"851": "behandlet", "860": "behandlet", "101": "kontrol", "201": "udelukket",
                     "461": "kontrol"}
    base = p.loc[p["ydelsesgruppe"].isin(TRIAL.maalgruppe), "periode_nr"].min()
    coh = tp.groupby("kommune_kode")["kohorte"].first().to_dict()
    assert coh["851"] == 2017 * 4 + 2 - base + 1        # 2017Q3
    assert coh["860"] == 2017 * 4 + 2 - base + 1        # 2017-09-01 lies in 2017Q3
    lab = tp.groupby("kommune_kode")["kohorte_periode"].first()
    assert lab["851"] == lab["860"] == "2017Q3"
    assert tp.loc[tp["kohorte"] > 0, "kohorte_periode"].notna().all()
    # the cohort's label is the label of the panel row where t == kohorte
    for k, c in coh.items():
        if c > 0:
            assert tp.loc[(tp["kommune_kode"] == k) & (tp["t"] == c), "periode"].iloc[0] == lab[k]
    assert coh["101"] == coh["201"] == 0
    assert tp["t"].min() == 1
    sub = p[p["ydelsesgruppe"].isin(TRIAL.maalgruppe)]
    assert tp["forloeb_startet"].sum() == sub["forloeb_startet"].sum()
    assert tp["job_26_uger_n"].sum() == sub["job_26_uger_n"].sum()
    # ratio columns recomputed from the summed parts
    row = tp[tp["job_26_uger_n"] > 0].iloc[0]
    assert row["job_26_uger"] == pytest.approx(row["job_26_uger_sum"] / row["job_26_uger_n"])
    assert (tp.loc[tp["behandlet"] & (tp["t"] >= tp["kohorte"]), "efter"]).all()
    assert not tp.loc[~tp["behandlet"], "efter"].any()
    assert "udelukket" not in set(forsoeg_panel(p, TRIAL, drop_excluded=True)["rolle"])


def test_survival_table_km_and_rmst_equal_lifelines(built):
    """The survival layer's KM/RMST on this layer's survival table equal lifelines on persons."""
    from lifelines.utils import restricted_mean_survival_time

    from evaluering.survival.km import kaplan_meier_cells

    _, out, _, _ = built
    t = out["tid_til_job"].dropna(subset=["varighed_uger"])
    surv = out["overlevelse"]
    kmf = KaplanMeierFitter().fit(t["varighed_uger"], event_observed=t["status"] == "job")
    curves = kaplan_meier_cells(surv)
    km = curves.summary().set_index("time")["estimate"]
    theirs = kmf.survival_function_.iloc[:, 0]
    common = theirs.index[theirs.index.isin(km.index)]
    np.testing.assert_allclose(km.loc[common].to_numpy(), theirs.loc[common].to_numpy(), rtol=1e-12)
    assert curves.rmst(52)["rmst"].iloc[0] == pytest.approx(
        restricted_mean_survival_time(kmf, t=52), rel=1e-9)
    by = kaplan_meier_cells(surv, by=["kommune_kode"]).rmst(26).set_index("kommune_kode")["rmst"]
    sub = t[t["kommune_kode"] == "860"]
    k2 = KaplanMeierFitter().fit(sub["varighed_uger"], event_observed=sub["status"] == "job")
    assert by.loc["860"] == pytest.approx(restricted_mean_survival_time(k2, t=26), rel=1e-9)
