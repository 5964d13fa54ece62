"""AUK01 case study: sample, TWFE against statsmodels, planted-effect simulation, disclosure of
the report chapter, determinism.

The real-data numbers are *not* asserted (they would be golden values of our own output);
what is asserted is the design (which municipalities and quarters), agreement with an
independent computation (statsmodels OLS with dummies), recovery of a planted effect in a
synthetic AUK01 file with the same structure, and the disclosure rule.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from evaluering.casestudy.auk01 import (MARK, _event_coefficients, auk01_chapter, auk01_panel,
                                        auk01_path, auk01_sample, load_auk01, quarter_index,
                                        run_auk01_case)
from evaluering.public import read_statbank

NJ = {"851", "810", "813", "860", "849", "825", "846", "773", "840", "787", "820"}
NZ = {"201", "151", "210", "250", "190", "270", "260", "217", "219"}
FK1_EMP = {"157", "159", "461", "630", "791"}  # Frikommuneforsøg I with employment trials, not NJ/NZ
FAST = dict(n_boot=199, n_perm=99, sdid_reps=20, honest_rm=False, sensitivity_boot=99)


@pytest.fixture(scope="module")
def panel():
    return auk01_panel()


@pytest.fixture(scope="module")
def real():
    return run_auk01_case(seed=3, **FAST)


# ----------------------------------------------------------------------------------- sample


def test_sample_municipalities_and_quarters(panel):
    roles = auk01_sample()
    assert len(roles) == 98
    assert set(roles.loc[roles["rolle"] == "behandlet", "kode"]) == NJ
    assert set(roles.loc[roles["rolle"] == "udeladt", "kode"]) == NZ | FK1_EMP
    ctrl = set(roles.loc[roles["rolle"] == "kontrol", "kode"])
    assert len(ctrl) == 98 - 11 - 9 - 5
    # FK I without employment trials and the 2023 free municipalities stay as controls
    assert {"607", "306", "253", "740", "580"} <= ctrl
    assert set(panel["kode"]) == NJ | ctrl
    quarters = sorted(panel["periode"].unique())
    assert quarters[0] == "2014Q1" and quarters[-1] == "2019Q4" and len(quarters) == 24
    assert (panel.groupby("kode")["t"].nunique() == 24).all()
    assert set(panel.loc[panel["D"] == 1, "periode"]) == {f"{y}Q{q}" for y in (2017, 2018, 2019)
                                                          for q in range(1, 5)} - {"2017Q1",
                                                                                   "2017Q2"}
    assert set(panel.loc[panel["D"] == 1, "kode"]) == NJ
    assert set(panel.loc[panel["kohorte"] > 0, "kohorte"]) == {quarter_index("2017Q3")} == {15}
    np.testing.assert_allclose(panel["y"], np.log(panel["antal"]))
    assert (panel["antal"] >= 1).all()


def test_sample_variants(panel):
    raw = load_auk01()
    with_fk1 = auk01_panel(data=raw, exclude_fk1=False)
    assert set(with_fk1["kode"]) - set(panel["kode"]) == FK1_EMP
    small = auk01_panel(data=raw, min_count=10)
    dropped = set(panel["kode"]) - set(small["kode"])
    # the municipalities with a quarter under 10 persons in 2014Q1-2019Q4, computed here
    win = raw[(raw["periode"] >= "2014Q1") & (raw["periode"] <= "2019Q4")]
    mins = win.groupby("kode")["antal"].min()
    assert dropped == set(mins.index[mins < 10]) & set(panel["kode"])
    assert "825" in dropped
    no820 = auk01_panel(data=raw, drop_vesthimmerland=True)
    assert set(no820.loc[no820["behandlet"] == 1, "kode"]) == NJ - {"820"}
    reg = auk01_panel(data=raw, placebo_region="Region Syddanmark")
    assert not set(reg["kode"]) & NJ
    assert set(reg.loc[reg["behandlet"] == 1, "region"]) == {"Region Syddanmark"}
    assert set(reg.loc[reg["behandlet"] == 1, "kode"]) == set(
        panel.loc[(panel["region"] == "Region Syddanmark"), "kode"])
    pl = auk01_panel(data=raw, start="2016Q1", last="2017Q2")
    assert pl["periode"].max() == "2017Q2" and pl.loc[pl["D"] == 1, "periode"].min() == "2016Q1"


def test_reader_matches_file(panel):
    """The analysis counts are the file's numbers for the total (independent parse with csv)."""
    import csv

    with open(auk01_path(), encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    body = [r for r in rows[1:] if r and r[0] == "Aalborg" and r[4] == "2018Q2"]
    assert len(body) == 1
    got = panel.loc[(panel["kode"] == "851") & (panel["periode"] == "2018Q2"), "antal"].item()
    assert got == float(body[0][5])


# ----------------------------------------------------------- independent computation (statsmodels)


def test_twfe_equals_statsmodels_dummies(panel):
    from evaluering.estimators.did import twfe

    r = twfe(panel, "y", "kode", "t", "D")
    X = pd.concat([panel[["D"]].astype(float),
                   pd.get_dummies(panel["kode"], prefix="k", drop_first=True, dtype=float),
                   pd.get_dummies(panel["t"], prefix="t", drop_first=True, dtype=float)], axis=1)
    X.insert(0, "const", 1.0)
    m = sm.OLS(panel["y"].to_numpy(), X).fit(
        cov_type="cluster", cov_kwds={"groups": panel["kode"].astype(int).to_numpy()})
    assert r.estimate == pytest.approx(m.params["D"], abs=1e-10)
    # statsmodels' CR1 uses K = all 108 parameters; the toolkit (like fixest) does not count the
    # municipality effects, which are nested in the clusters: K = D + 24 quarter levels.
    N, K_sm, K_ours = len(panel), len(m.params), 1 + 24
    assert r.se == pytest.approx(m.bse["D"] * math.sqrt((N - K_sm) / (N - K_ours)), rel=1e-8)
    assert r.n_units == 84 and r.n_obs == 84 * 24


def test_event_coefficients_equal_statsmodels(panel):
    from evaluering.estimators.event_study import event_study

    es_list, b, V = _event_coefficients(panel)
    df = panel.copy()
    names = []
    for e in es_list:
        n = f"ev_{'m' if e < 0 else 'p'}{abs(e)}"
        df[n] = (df["e"] == e).astype(float)
        names.append(n)
    X = pd.concat([df[names],
                   pd.get_dummies(df["kode"], prefix="k", drop_first=True, dtype=float),
                   pd.get_dummies(df["t"], prefix="t", drop_first=True, dtype=float)], axis=1)
    X.insert(0, "const", 1.0)
    m = sm.OLS(df["y"].to_numpy(), X).fit()
    np.testing.assert_allclose(b, m.params[names].to_numpy(), atol=1e-9)
    es = event_study(panel, "y", "kode", "t", "kohorte", ref=-1)
    ev = es.component("event")
    ev = ev[~ev["reference"]].sort_values("e")
    assert list(ev["e"]) == es_list
    np.testing.assert_allclose(ev["att"], b, atol=1e-10)
    np.testing.assert_allclose(ev["se"], np.sqrt(np.diag(V)), rtol=1e-10)


# ------------------------------------------------------------------ planted-effect simulation


def _synthetic_auk01(tmp_path, tau: float, seed: int):
    """An AUK01-shaped CSV: real municipality levels, a national trend and seasonality, noise,
    and ``tau`` added to log(count) in the North Jutland network from 2017Q3."""
    real = read_statbank(auk01_path())
    p = real.panel.copy()
    rng = np.random.default_rng(seed)
    t = p["periode"].map(quarter_index).to_numpy()
    level = p.groupby("kommune_kode")["vaerdi"].transform(
        lambda s: np.log(s.iloc[:14].mean())).to_numpy()
    unit_noise = {k: rng.normal(0, 0.004) for k in p["kommune_kode"].unique()}
    trend = np.array([unit_noise[k] for k in p["kommune_kode"]]) * t   # small unit trends
    season = 0.05 * np.cos(2 * np.pi * t / 4)
    D = (p["kommune_kode"].isin(NJ) & (t >= 15)).to_numpy()
    logc = level - 0.02 * t + season + trend + tau * D + rng.normal(0, 0.05, len(p))
    p["vaerdi"] = np.maximum(1, np.round(np.exp(logc)))
    lines = ["OMRÅDE;YDELSESTYPE;KØN;ALDER;TID;INDHOLD"]
    lines += [f"{a};{b};{c};{d};{e};{int(v)}" for a, b, c, d, e, v in
              zip(p["omraade"], p["YDELSESTYPE"], p["KØN"], p["ALDER"], p["periode"], p["vaerdi"])]
    path = tmp_path / f"auk01_sim_{tau}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("tau", [0.25, 0.0])
def test_planted_effect_recovered(tmp_path, tau):
    path = _synthetic_auk01(tmp_path, tau, seed=11)
    r = run_auk01_case(path, seed=1, n_boot=399, n_perm=199, sdid_reps=30, sensitivity=False,
                       honest=False)
    for res in (r.twfe, r.event_study, r.cs, r.sdid):
        assert abs(res.estimate - tau) < 4 * res.se + 0.01, (res.method, res.estimate, res.se)
        assert res.ci[0] - 0.01 < tau < res.ci[1] + 0.01, (res.method, res.ci)
    assert r.wild.ci[0] < tau < r.wild.ci[1]
    assert r.ri.ci[0] < tau < r.ri.ci[1]
    if tau > 0:
        assert r.wild.p < 0.01 and r.ri.p < 0.02 and r.twfe.p < 0.01
        assert r.cs.ci[0] > 0 and r.sdid.ci[0] > 0
    # pre-trend test: no planted differential trend beyond the small unit trends
    assert r.event_study.info["pretrend_p"] > 0.001


# -------------------------------------------------------------------------- chapter / result


def test_chapter_has_no_cell_under_five(real):
    ch = auk01_chapter(real)
    assert ch["kilde"].startswith("Kilde: Danmarks Statistik, AUK01")
    n_marked = 0
    for tab in ch["tabeller"]:
        assert len(tab["raekker"]) == len(tab["antal"])
        for cells, ns in zip(tab["raekker"], tab["antal"]):
            assert len(cells) == len(tab["kolonner"]) == len(ns)
            for c, n in zip(cells, ns):
                if n is not None and n < 5:
                    assert c == MARK, (tab["id"], cells)
                    n_marked += 1
    assert n_marked == ch["diskretionering"]["undertrykte_celler"] >= 3
    # Læsø: every count-based cell is suppressed (computed here from the panel, not the code)
    laesoe_min = real.panel.loc[real.panel["kode"] == "825", "antal"].min()
    assert laesoe_min < 5
    t1 = next(t for t in ch["tabeller"] if t["id"] == "auk01_kommuner")
    row = next(r for r in t1["raekker"] if r[0].startswith("Læsø"))
    assert row[1:] == [MARK, MARK, MARK]
    # no municipality row prints a number when that municipality has a quarter under 5
    small = set(real.panel.loc[real.panel["antal"] < 5, "navn"])
    for r in t1["raekker"]:
        if any(r[0].startswith(n) for n in small):
            assert all(c == MARK for c in r[1:])
    # the text never prints a small number next to Læsø
    for sec in ch["afsnit"]:
        for par in sec["tekst"]:
            if "Læsø" in par:
                assert not re.search(r"(?<![\d,.])[1-4](?![\d,.])", par), par


def test_chapter_figures_and_json(real, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ch = auk01_chapter(real)
    assert {f["id"] for f in ch["figurer"]} >= {"auk01_trend", "auk01_event", "auk01_sdid"}
    for fig in ch["figurer"]:
        ax = fig["tegn"]()
        assert ax is not None
        plt.close(ax.figure)
    from evaluering.casestudy import save_chapter_figures

    paths = save_chapter_figures(ch, tmp_path / "fig")
    assert set(paths) == {f["id"] for f in ch["figurer"]}
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths.values())
    d = real.to_dict()
    json.dumps(d)
    s = real.summary()
    assert {"twfe", "twfe_wild", "twfe_ri", "event_study", "cs", "sdid",
            "honest_smoothness"} <= set(s["method"])
    np.testing.assert_allclose(s["pct"], np.expm1(s["estimate"]))
    assert set(real.sensitivity["id"]) >= {"uden_smaa", "vaegtet", "placebo_2016K1",
                                         "placebo_midtjylland"}
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        real.twfe = None  # type: ignore[misc]
    assert not real.panel["y"].to_numpy().flags.writeable


def test_deterministic_for_fixed_seed():
    kw = dict(seed=5, n_boot=99, n_perm=49, sdid_reps=10, sensitivity=False, honest=False)
    a = run_auk01_case(**kw).to_dict()
    b = run_auk01_case(**kw).to_dict()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_danish_export_reads_the_same(tmp_path):
    """A Danish-label, Windows-1252, decimal-comma style export of the same cells gives the
    same analysis counts (only the municipalities and the total, as a Danish user would
    download them)."""
    from evaluering.reference import kommuner

    real = read_statbank(auk01_path()).panel
    names = dict(zip(kommuner()["kode"], kommuner()["navn"]))
    lines = ["OMRÅDE;YDELSESTYPE;KØN;ALDER;TID;INDHOLD"]
    lines += [f"{names[k]};Nettoledige kontanthjælpsmodtagere;I alt;Alder i alt;"
              f"{per.replace('Q', 'K')};{int(v)}"
              for k, per, v in zip(real["kommune_kode"], real["periode"], real["vaerdi"])]
    path = tmp_path / "auk01_dansk.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    a = load_auk01(path)
    b = load_auk01()
    pd.testing.assert_frame_equal(a, b)
    bad = tmp_path / "bad.csv"
    bad.write_text("OMRÅDE;YDELSESTYPE;KØN;ALDER;TID;INDHOLD\n"
                   "Aalborg;X;Mænd;Alder i alt;2017K1;5\nAalborg;X;Kvinder;Alder i alt;2017K1;6\n",
                   encoding="utf-8")
    from evaluering.errors import InputError

    with pytest.raises(InputError, match="KØN"):
        load_auk01(bad)
