"""An independent, deliberately plain pandas/Python implementation of the outcome rules
(week-by-week loops per spell, per-contact candidate search), and tests that the SQL
tables equal it row for row on random registers.

The benchmark (benchmarks/bench_outcomes.py) imports ``reference_time_to_job`` and
``reference_resources`` as the "straightforward pandas implementation".
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluering import contract
from evaluering.outcomes import build_outcomes
from test_outcomes_helpers import D, FakeForsoeg

CENSUR = set(contract.UGE_CENSUR)
UDD = set(contract.UGE_UDDANNELSE)


def reference_time_to_job(forloeb: pd.DataFrame, ugestatus: pd.DataFrame, personer: set,
                          first_week: int, last_week: int, n_weeks: int = 4) -> pd.DataFrame:
    """Week-by-week: from max(S, first_week) look at each week in turn."""
    weekly: dict[str, dict[int, str]] = {}
    for pid, uge, kat in zip(ugestatus["person_id"], ugestatus["uge"], ugestatus["kategori"]):
        if first_week <= uge <= last_week:
            weekly.setdefault(pid, {})[int(uge)] = kat
    rows = []
    lim = last_week - n_weeks + 1
    for r in forloeb.itertuples(index=False):
        s = contract.week_index_of_date(r.start_dato)
        if r.person_id not in personer:
            rows.append((r.spell_id, None, "censureret", "ikke_i_ugeregister", None))
            continue
        wkly = weekly.get(r.person_id, {})
        res = None
        for t in range(max(s, first_week), last_week + 1):
            kat = wkly.get(t)
            if kat in UDD:
                res = (t - s, "uddannelse", None)
                break
            if kat in CENSUR:
                res = (t - s, "censureret", kat)
                break
            if kat is None and t <= lim and all(wkly.get(t + i) is None for i in range(n_weeks)):
                res = (t - s, "job", None)
                break
        fu = lim - s if lim >= s else None
        if res is None:
            res = (lim - s, "censureret", "data_slut") if lim >= max(s, first_week) else \
                (None, "censureret", "ingen_opfoelgning")
        rows.append((r.spell_id, *res, fu))
    out = pd.DataFrame(rows, columns=["spell_id", "varighed_uger", "status", "censur_aarsag",
                                      "opfoelgning_uger"])
    for h in (13, 26, 52):
        v = []
        for T, st, fu in zip(out["varighed_uger"], out["status"], out["opfoelgning_uger"]):
            if T is None or pd.isna(T) or fu is None or pd.isna(fu) or fu < h:
                v.append(None)
            elif st == "job":
                v.append(int(T <= h))
            elif st == "uddannelse" or T >= h:
                v.append(0)
            else:
                v.append(None)
        out[f"job_{h}_uger"] = v
    return out


def reference_resources(forloeb: pd.DataFrame, kontakter: pd.DataFrame, maalgrupper: set,
                        data_end: dt.date) -> pd.DataFrame:
    """Per contact: the open spells of the person, ordered by the documented tie-break."""
    by_person: dict[str, list] = {}
    for s in forloeb.itertuples(index=False):
        by_person.setdefault(s.person_id, []).append(s)
    owner = []
    for k in kontakter.itertuples(index=False):
        g = by_person.get(k.person_id)
        best = None
        if g is not None:
            cands = []
            for s in g:
                end = s.slut_dato if s.slut_dato is not None and not pd.isna(s.slut_dato) else dt.date.max
                if s.start_dato <= k.dato <= end:
                    cands.append(((0 if s.ydelsesgruppe in maalgrupper else 1),
                                  (0 if s.kommune_kode == k.kommune_kode else 1),
                                  -s.start_dato.toordinal(), s.spell_id, s))
            if cands:
                best = min(cands, key=lambda c: c[:4])[4]
        owner.append((k.contact_id, None if best is None else best.spell_id,
                      None if best is None else (k.dato - best.start_dato).days))
    own = pd.DataFrame(owner, columns=["contact_id", "spell_id", "dag"])
    kk = kontakter.merge(own, on="contact_id")
    rows = []
    per_spell = {sid: g for sid, g in kk.groupby("spell_id")}
    empty = kk.iloc[0:0]
    for s in forloeb.itertuples(index=False):
        c = per_spell.get(s.spell_id, empty)
        c26 = c[c["dag"] < 182]
        full = (data_end - s.start_dato).days >= 181 or (
            s.slut_dato is not None and not pd.isna(s.slut_dato) and s.slut_dato <= data_end)
        sam = c26[c26["type"] == "samtale"]
        known = sam["kanal"].notna().sum()
        rows.append(dict(
            spell_id=s.spell_id,
            samtaler_pr_forloeb=len(sam) if full else None,
            andel_fysiske_samtaler=((sam["kanal"] == "fysisk").sum() / known if known else None)
            if full else None,
            minutter_pr_forloeb=float(c26["minutter"].fillna(0).sum()) if full else None,
            laegeattester_pr_forloeb=int((c26["type"] == "laegeattest").sum()) if full else None,
            rehab_pr_forloeb=int((c26["type"] == "rehabiliteringsteam").sum()) if full else None,
            udgift_pr_forloeb=float(c26["udgift_kr"].fillna(0).sum()) if full else None,
            kontakter_hele=len(c)))
    return pd.DataFrame(rows), int(own["spell_id"].isna().sum())


def _canon(folder: Path):
    f = pd.read_parquet(folder / "forloeb.parquet")
    f["start_dato"] = pd.to_datetime(f["start_dato"]).dt.date
    f["slut_dato"] = [None if pd.isna(x) else pd.Timestamp(x).date() for x in f["slut_dato"]]
    k = pd.read_parquet(folder / "kontakter.parquet")
    k["dato"] = pd.to_datetime(k["dato"]).dt.date
    u = pd.read_parquet(folder / "ugestatus.parquet")
    p = set(pd.read_parquet(folder / "ugestatus_personer.parquet")["person_id"])
    return f, k, u, p


@pytest.fixture(scope="module")
def random_set(canonical_registers):
    return canonical_registers(n_persons=400, seed=7)


@pytest.mark.parametrize("n_weeks,window", [(4, None), (8, D(2019, 6, 30))])
def test_time_to_job_equals_week_by_week_reference(random_set, tmp_path, n_weeks, window):
    folder, info = random_set
    r = build_outcomes(folder, n_weeks=n_weeks, window_end=window, out_dir=tmp_path / "o")
    got = pd.read_parquet(r.files["tid_til_job"]).set_index("spell_id").sort_index()
    f, _, u, p = _canon(folder)
    last = info["last_week"] if window is None else contract.week_index_of_date(window)
    ref = reference_time_to_job(f, u, p, info["first_week"], last, n_weeks).set_index("spell_id")
    if window is not None:
        ref["censur_aarsag"] = ref["censur_aarsag"].replace({"data_slut": "vindue_slut"})
    assert len(got) == len(ref) == info["n_spells"]
    assert (got["status"] == ref["status"]).all()
    assert got["censur_aarsag"].fillna("-").equals(ref["censur_aarsag"].fillna("-"))
    pd.testing.assert_series_equal(got["varighed_uger"].astype("Float64"),
                                   ref["varighed_uger"].astype("Float64"), check_names=False)
    pd.testing.assert_series_equal(got["opfoelgning_uger"].astype("Float64"),
                                   ref["opfoelgning_uger"].astype("Float64"), check_names=False)
    for h in (13, 26, 52):
        pd.testing.assert_series_equal(got[f"job_{h}_uger"].astype("Float64"),
                                       ref[f"job_{h}_uger"].astype("Float64"), check_names=False)
    # the data set exercises every branch
    assert set(ref["status"]) == {"job", "uddannelse", "censureret"}
    assert {"ikke_i_ugeregister", "doed_udvandret", "pension"} <= set(ref["censur_aarsag"].dropna())


def test_resources_equal_per_contact_reference(random_set, tmp_path):
    folder, _ = random_set
    tr = FakeForsoeg("t", "T", "O", ("sygedagpenge",), D(2017, 1, 1), D(2025, 1, 1), ("851",))
    r = build_outcomes(folder, forsoeg=[tr], out_dir=tmp_path / "o")
    got = pd.read_parquet(r.files["ressourcer"]).set_index("spell_id").sort_index()
    f, k, _, _ = _canon(folder)
    data_end = r.manifest["parametre"]["data_slut"]
    # the window end (the trial's slut) lies after the data end: obs_end = data end
    ref, outside = reference_resources(f, k, {"sygedagpenge"}, data_end)
    ref = ref.set_index("spell_id").sort_index()
    for col in ref.columns:
        pd.testing.assert_series_equal(got[col].astype("Float64"), ref[col].astype("Float64"),
                                       check_names=False, rtol=1e-12)
    assert r.manifest["kontakter"]["uden_forloeb"] == outside > 0
    assert got["kontakter_hele"].sum() + outside == len(k)
