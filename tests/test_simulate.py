"""Register simulator: determinism, contract conformance, weekly consistency, planted effects."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tomllib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from evaluering import contract
from evaluering.errors import InputError
from evaluering.reference import kommune_koder
from evaluering.reference.catalogue import load_forsoeg
from evaluering.simulate import simulate, week_columns

NJ = {"851", "810", "813", "860", "849", "825", "846", "773", "840", "787", "820"}
NZ = {"201", "151", "210", "250", "190", "270", "260", "217", "219"}
CPR = re.compile(r"^(\d{6})-?(\d{4})$")


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "small"
    simulate(out, scale="small", seed=3)
    return out, None   # its time is measured in benchmarks/ (no timed unit tests)


@pytest.fixture(scope="module")
def tables(small):
    out, _ = small
    return {r: pd.read_parquet(out / f"{r}.parquet")
            for r in ("forloeb", "kontakter", "ugestatus")}


def test_small_is_complete(small):
    out, _ = small
    names = {p.name for p in out.iterdir()}
    assert names == {"forloeb.parquet", "kontakter.parquet", "ugestatus.parquet",
                     "ydelseskoder.toml", "forsoeg.toml", "sandhed.json"}


def test_deterministic_per_seed(small, tmp_path):
    out, _ = small
    again = simulate(tmp_path / "again", scale="small", seed=3)
    assert _digest(again) == _digest(out)
    other = simulate(tmp_path / "other", scale="small", seed=4)
    d_other = _digest(other)
    assert d_other["forloeb.parquet"] != _digest(out)["forloeb.parquet"]


def test_forloeb_conforms_to_contract(tables):
    f = tables["forloeb"]
    assert list(f.columns) == [c for c, _ in contract.RAW_COLUMNS["forloeb"]]
    assert 5_000 <= len(f) <= 20_000
    assert set(f.kommune_kode) <= kommune_koder()
    assert set(f.ydelsesgruppe) <= set(contract.YDELSESGRUPPER)
    assert set(f.afgang.dropna()) <= set(contract.AFGANG)
    assert set(f.koen) <= set(contract.KOEN)
    assert set(f.herkomst) <= set(contract.HERKOMST)
    assert set(f.uddannelse) <= set(contract.UDDANNELSE)
    assert f.foedselsaar.between(*contract.FOEDSELSAAR_RANGE).all()
    assert (f.afgang.isna() == f.slut_dato.isna()).all()
    assert f.slut_dato.notna().mean() > 0.8 and f.slut_dato.isna().any()
    closed = f.dropna(subset=["slut_dato"])
    assert (closed.slut_dato >= closed.start_dato).all()
    assert f.start_dato.min() >= dt.date(2014, 1, 1)
    assert closed.slut_dato.max() <= dt.date(2021, 12, 31)
    assert f.start_dato.max() <= dt.date(2021, 12, 31)
    # all the benefit groups, every municipality, every afgang occur
    assert set(f.ydelsesgruppe) == set(contract.YDELSESGRUPPER)
    assert f.kommune_kode.nunique() == 98
    assert set(f.afgang.dropna()) == set(contract.AFGANG)
    # no CPR-shaped ids anywhere
    assert not f.person_id.str.match(CPR).any()
    # persons: several spells, some in different municipalities (moves)
    per = f.groupby("person_id").agg(n=("start_dato", "size"), k=("kommune_kode", "nunique"))
    assert per.n.max() > 3 and (per.k > 1).any()
    # covariates are constant per person
    assert (f.groupby("person_id")[["koen", "foedselsaar", "herkomst"]].nunique() == 1).all().all()


def test_spells_do_not_overlap(tables):
    f = tables["forloeb"].sort_values(["person_id", "start_dato"])
    end = f.slut_dato.fillna(dt.date(2099, 1, 1))
    same = f.person_id.eq(f.person_id.shift())
    # no overlap at all (stronger than the contract's per-group rule)
    assert not (same & (f.start_dato <= end.shift())).any()


def test_kontakter_conform_and_lie_in_spells(tables):
    k, f = tables["kontakter"], tables["forloeb"]
    assert list(k.columns) == [c for c, _ in contract.RAW_COLUMNS["kontakter"]]
    assert set(k.type) == set(contract.KONTAKT_TYPE)
    s = k.type == "samtale"
    assert set(k.kanal[s]) == set(contract.KANAL)
    assert k.kanal[~s].isna().all()
    assert k.attest[k.type != "laegeattest"].isna().all()
    assert set(k.attest[k.type == "laegeattest"]) == {"LAE285", "LAE265", "LAE125"}
    assert (k.minutter.dropna() >= 0).all() and (k.udgift_kr.dropna() >= 0).all()
    assert k.minutter.isna().any() and k.minutter.notna().mean() > 0.7
    assert set(k.kommune_kode) <= kommune_koder()
    assert not k.person_id.str.match(CPR).any()
    # every contact lies inside a spell of the same person in the same municipality
    m = k.reset_index().merge(f, on="person_id", suffixes=("", "_f"))
    inside = (m.dato >= m.start_dato) & (m.dato <= m.slut_dato.fillna(dt.date(2021, 12, 31))) \
        & (m.kommune_kode == m.kommune_kode_f)
    assert inside.groupby(m["index"]).any().reindex(k.index, fill_value=False).all()
    assert len(k) / len(f) > 5


def test_missing_numbers_are_null_not_nan(small):
    out, _ = small
    t = pq.read_table(out / "kontakter.parquet")
    for col in ("minutter", "udgift_kr"):
        c = t.column(col)
        assert c.null_count > 0
        assert not np.isnan(c.drop_null().to_numpy()).any()
    k = t.to_pandas()
    assert not k.duplicated().any()          # ingest would reject exact duplicates


@pytest.mark.slow
def test_ingest_accepts_everything(small, tmp_path):
    """Cross-check with the ingest layer (when installed): zero quarantined rows."""
    ingest_mod = pytest.importorskip("evaluering.ingest")
    out, _ = small
    res = ingest_mod.ingest(out, tmp_path / "processed")
    for reg, m in res.manifest["registers"].items():
        assert m["rows_quarantined"] == 0, (reg, m)
        assert m["rows_accepted"] == m["rows_read"] > 0


def test_ugestatus_layout_and_codes(small, tables):
    out, _ = small
    u = tables["ugestatus"]
    cols = week_columns()
    assert list(u.columns) == ["person_id"] + cols
    assert len(cols) == 418 and cols[0] == "y_1401" and cols[-1] == "y_2152"
    assert "y_1553" in cols and "y_2053" in cols and "y_1653" not in cols
    # consecutive ISO weeks
    idx = [contract.week_index(2000 + int(c[2:4]), int(c[4:])) for c in cols]
    assert np.all(np.diff(idx) == 1)
    mapping = tomllib.loads((out / "ydelseskoder.toml").read_text(encoding="utf-8"))
    assert "ILLUSTRAT" in (out / "ydelseskoder.toml").read_text(encoding="utf-8").upper()
    koder = mapping["koder"]
    assert set(koder.values()) <= set(contract.UGE_KATEGORIER)
    vals = pd.unique(u[cols].to_numpy().ravel())
    vals = {v for v in vals if v is not None and v == v}
    assert vals <= set(koder)
    assert {koder[v] for v in vals} == set(contract.UGE_KATEGORIER)
    assert set(u.person_id) == set(tables["forloeb"].person_id)
    assert u.person_id.is_unique


def _long_weeks(u: pd.DataFrame, koder: dict) -> pd.DataFrame:
    cols = [c for c in u.columns if c.startswith("y_")]
    m = u.set_index("person_id")[cols]
    arr = m.to_numpy()
    r, c = np.nonzero(pd.notna(arr))
    return pd.DataFrame({"person_id": m.index.to_numpy()[r], "w": c,
                         "kategori": [koder[x] for x in arr[r, c]]})


def _wk(d) -> np.ndarray:
    base = contract.week_index(2014, 1)
    return np.array([contract.week_index_of_date(x) - base for x in d])


def test_weekly_codes_consistent_with_spells(small, tables):
    out, _ = small
    koder = tomllib.loads((out / "ydelseskoder.toml").read_text(encoding="utf-8"))["koder"]
    f = tables["forloeb"].copy()
    f["w0"] = _wk(f.start_dato)
    f["w1"] = np.where(f.slut_dato.isna(), 417, _wk(f.slut_dato.fillna(dt.date(2021, 12, 31))))
    lw = _long_weeks(tables["ugestatus"], koder)
    ben = lw[lw.kategori.isin(contract.YDELSESGRUPPER)]
    # each benefit week lies in a spell of that person and group
    m = ben.reset_index().merge(f[["person_id", "ydelsesgruppe", "w0", "w1"]], on="person_id")
    ok = (m.w >= m.w0) & (m.w <= m.w1) & (m.kategori == m.ydelsesgruppe)
    assert ok.groupby(m["index"]).any().reindex(ben.index, fill_value=False).all()
    # each spell's first and last week carry its group's code; >= 85 % of its weeks do
    key = set(zip(ben.person_id, ben.w, ben.kategori))
    assert all((p, a, g) in key for p, a, g in zip(f.person_id, f.w0, f.ydelsesgruppe))
    assert all((p, b, g) in key for p, b, g in zip(f.person_id, f.w1, f.ydelsesgruppe))
    cnt = ben.merge(f, left_on=["person_id", "kategori"], right_on=["person_id", "ydelsesgruppe"])
    cnt = cnt[(cnt.w >= cnt.w0) & (cnt.w <= cnt.w1)]
    assert len(cnt) >= 0.85 * (f.w1 - f.w0 + 1).sum()
    assert len(cnt) < (f.w1 - f.w0 + 1).sum()          # some interruptions inside spells
    # after an exit to job: >= 4 weeks without any code (or the data end)
    allw = set(zip(lw.person_id, lw.w))
    job = f[f.afgang == "job"]
    for p, b in zip(job.person_id, job.w1):
        assert not any((p, b + i) in allw for i in range(1, 5))
    # after an exit to education: SU; after pension / death: the censoring code to the end
    for afg, kat in (("uddannelse", "su"), ("pension", "pension"),
                     ("doed_udvandret", "doed_udvandret")):
        sub = f[(f.afgang == afg) & (f.w1 < 417)]
        cats = dict(zip(zip(lw.person_id, lw.w), lw.kategori))
        assert len(sub) > 0
        assert all(cats.get((p, b + 1)) == kat for p, b in zip(sub.person_id, sub.w1))
        if kat != "su":
            assert all(cats.get((p, 417)) == kat for p in sub.person_id)


def test_municipality_sizes_follow_real_ordering(tables):
    f = tables["forloeb"]
    persons = f.drop_duplicates("person_id").kommune_kode.value_counts()
    assert persons.idxmax() == "101"                          # København
    assert persons["825"] <= persons.quantile(0.05)            # Læsø among the smallest
    assert persons["101"] > 30 * persons["825"]


def test_forsoeg_copy_and_sandhed(small):
    out, _ = small
    fs = load_forsoeg(out / "forsoeg.toml")
    assert {f.id for f in fs} == {"samtaler-forsikrede", "rehabiliteringsteam",
                                  "laegeattester-sygedagpenge", "samtaler-oevrige"}
    s = json.loads((out / "sandhed.json").read_text(encoding="utf-8"))
    assert set(s["forsoeg"]) == {f.id for f in fs}
    for tid, t in s["forsoeg"].items():
        assert set(t["effekt"]) == set(contract.OUTCOME_IDS)
        assert t["effekt"]["hazard_job"] == t["parametre"]["hazard_job"]
        assert t["n_forloeb_eksponeret"] > 0
        assert set(t["effekt_fuld_opfoelgning"]) == set(contract.OUTCOME_IDS)
        nf = t["n_forloeb_fuld_opfoelgning"]
        assert t["n_forloeb_eksponeret"] >= nf["job_13_uger"] >= nf["job_26_uger"] \
            >= nf["job_52_uger"] == nf["rmst_52_uger"]
    st = s["forsoeg"]["samtaler-forsikrede"]
    assert st["effekt"]["hazard_job"] == pytest.approx(1.10)
    # the in-person share shifts by the planted -30 pp (no clipping at these levels)
    assert st["effekt"]["andel_fysiske_samtaler"] == pytest.approx(-30.0)
    assert st["effekt"]["job_13_uger"] > 0 and st["effekt"]["rmst_52_uger"] < 0
    assert st["start_pr_kommune"]["860"] == "2017-09-01"
    rt = s["forsoeg"]["rehabiliteringsteam"]["effekt"]
    assert rt["rehab_pr_forloeb"] < 0 and rt["laegeattester_pr_forloeb"] < 0
    assert s["forsoeg"]["laegeattester-sygedagpenge"]["effekt"]["laegeattester_pr_forloeb"] < 0


def test_no_effect_option(tmp_path):
    out = simulate(tmp_path / "null", n_persons=1500, seed=5, effects={})
    s = json.loads((out / "sandhed.json").read_text(encoding="utf-8"))
    assert s["simulering"]["nul_effekt"] is True
    for t in s["forsoeg"].values():
        assert t["effekt"]["hazard_job"] == 1.0
        for k, v in t["effekt"].items():
            if k != "hazard_job":
                assert v == 0.0, (k, v)


def test_bad_options(tmp_path):
    with pytest.raises(InputError, match="unknown trial id"):
        simulate(tmp_path / "x", n_persons=100, effects={"nope": {"hazard_job": 1.2}})
    with pytest.raises(InputError, match="unknown effect"):
        simulate(tmp_path / "x", n_persons=100,
                 effects={"samtaler-forsikrede": {"hazard": 1.2}})
    with pytest.raises(InputError, match="scale"):
        simulate(tmp_path / "x", scale="huge")
    assert not (tmp_path / "x").exists()


def test_csv_format(tmp_path):
    out = simulate(tmp_path / "csv", n_persons=300, seed=2, fmt="csv")
    f = pd.read_csv(out / "forloeb.csv", dtype=str)
    assert list(f.columns) == [c for c, _ in contract.RAW_COLUMNS["forloeb"]]
    pqo = simulate(tmp_path / "pq", n_persons=300, seed=2)
    g = pd.read_parquet(pqo / "forloeb.parquet")
    assert len(f) == len(g)
    assert (f.start_dato.to_numpy() == g.start_dato.astype(str).to_numpy()).all()
    u = pd.read_csv(out / "ugestatus.csv", dtype=str)
    assert list(u.columns) == ["person_id"] + week_columns()



def test_cli_simulate_with_effects_file(tmp_path):
    from evaluering.cli import main

    eff = tmp_path / "eff.toml"
    eff.write_text('[samtaler-forsikrede]\nhazard_job = 1.3\n', encoding="utf-8")
    out = tmp_path / "raw" / "cli"
    assert main(["simulate", "--out", str(out), "--seed", "1", "--effects", str(eff)]) == 0
    s = json.loads((out / "sandhed.json").read_text(encoding="utf-8"))
    assert s["forsoeg"]["samtaler-forsikrede"]["effekt"]["hazard_job"] == 1.3
    assert s["forsoeg"]["rehabiliteringsteam"]["parametre"]["rehab"] == 1.0
    bad = tmp_path / "bad.toml"
    bad.write_text('[ukendt-forsoeg]\nhazard_job = 1.3\n', encoding="utf-8")
    assert main(["simulate", "--out", str(tmp_path / "x"), "--effects", str(bad)]) == 2
    assert main(["simulate", "--out", str(tmp_path / "x"), "--scale", "huge"]) == 2
    assert not (tmp_path / "x").exists()
    assert main(["simulate", "--out", str(tmp_path / "n"), "--no-effect", "--format", "csv"]) == 0
    assert (tmp_path / "n" / "forloeb.csv").exists()
