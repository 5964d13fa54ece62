"""Scheme catalogue and trial-catalogue loader (evaluering.reference.catalogue)."""

from __future__ import annotations

import datetime as dt
import textwrap

import pandas as pd
import pytest

from evaluering import contract
from evaluering.errors import InputError
from evaluering.reference import kommune_koder
from evaluering.reference import catalogue as cat

NJ = {"851", "810", "813", "860", "849", "825", "846", "773", "840", "787", "820"}
NZ = {"201", "151", "210", "250", "190", "270", "260", "217", "219"}


def _frikommuner() -> pd.DataFrame:
    from importlib import resources

    with resources.files("evaluering.reference").joinpath("frikommuner.csv").open(
            "r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str)


def test_ordninger_match_the_membership_table():
    """Scheme municipalities agree with frikommuner.csv (compiled independently by hand)."""
    fk = _frikommuner()
    by_name = {o.id: o for o in cat.load_ordninger()}
    fk1 = set(fk.loc[fk.ordning == "Frikommuneforsoeg I", "kode"])
    assert set(by_name["frikommuneforsoeg-1"].kommuner) == fk1 and len(fk1) == 9
    nj = set(fk.loc[fk.netvaerk_tema.str.contains("Nordjylland", na=False), "kode"])
    assert set(by_name["nordjysk-netvaerk"].kommuner) == nj == NJ
    nz = set(fk.loc[fk.netvaerk_tema.str.contains("Nordsjaelland", na=False), "kode"])
    assert set(by_name["nordsjaellandsk-netvaerk"].kommuner) == nz == NZ
    v23 = set(fk.loc[fk.ordning.str.startswith("Velfaerdskommune paa besk"), "kode"])
    assert set(by_name["velfaerdskommuner-2023"].kommuner) == v23 == {"219", "253", "740", "580"}
    # every scheme's municipalities are real, and every scheme has sources
    for o in cat.load_ordninger():
        assert set(o.kommuner) <= kommune_koder()
        assert o.kilder
        assert o.start < o.slut


def test_ordninger_dates_and_rounds():
    nj = cat.find_ordning("nordjysk-netvaerk")
    assert [(r.nr, r.start) for r in nj.runder] == [
        (1, dt.date(2017, 7, 1)), (2, dt.date(2018, 1, 1)), (3, dt.date(2018, 7, 1))]
    assert set(nj.udeluk_fra_kontrol) == NZ
    fk1 = cat.find_ordning("Frikommuneforsøg I")
    assert (fk1.start, fk1.slut, fk1.forlaenget_til) == (
        dt.date(2012, 1, 1), dt.date(2015, 12, 31), dt.date(2017, 7, 1))
    assert "607" not in fk1.beskaeftigelse_kommuner and "306" not in fk1.beskaeftigelse_kommuner
    v = cat.find_ordning("velfaerdskommuner-2023")
    assert (v.start, v.slut) == (dt.date(2023, 7, 1), dt.date(2026, 12, 31))
    # the contract's example spelling resolves to the same scheme
    assert cat.find_ordning("Frikommuneforsøg II, nordjysk netværk") is nj
    assert cat.find_ordning("no such scheme") is None
    known = {k.id: k for k in nj.kendte_forsoeg}
    assert known["samtaler-forsikrede"].maalgruppe == ("a-dagpenge",)
    assert known["rehabiliteringsteam"].runde == 2
    assert not known["samtaler-oevrige"].verificeret


def test_packaged_nordjylland_catalogue():
    fs = {f.id: f for f in cat.load_forsoeg(cat.forsoeg_nordjylland_path())}
    assert 3 <= len(fs) <= 4
    s = fs["samtaler-forsikrede"]
    assert s.maalgruppe == ("a-dagpenge",)
    assert s.start_for("860") == dt.date(2017, 9, 1)
    assert s.start_for("0851") == dt.date(2017, 7, 1)
    assert s.start_for("101") is None
    assert set(s.udfald) >= set(contract.OUTCOMES_TIME_TO_JOB)
    k = set(s.kontrol_kommuner())
    assert k == kommune_koder() - NJ - NZ and len(k) == 78
    assert s.eksponeret("860", "a-dagpenge", dt.date(2017, 9, 1))
    assert not s.eksponeret("860", "a-dagpenge", dt.date(2017, 8, 31))
    assert not s.eksponeret("860", "sygedagpenge", dt.date(2018, 1, 1))
    r = fs["rehabiliteringsteam"]
    assert r.start == dt.date(2018, 1, 1) and set(r.maalgruppe) == {"jobafklaring", "ressourceforloeb"}
    assert fs["laegeattester-sygedagpenge"].maalgruppe == ("sygedagpenge",)


def _write(tmp_path, text: str):
    p = tmp_path / "forsoeg.toml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_defaults_from_ordning(tmp_path):
    p = _write(tmp_path, """
        [[forsoeg]]
        id = "t1"
        navn = "Test"
        ordning = "nordjysk-netvaerk"
        maalgruppe = ["sygedagpenge"]
        udfald = ["tid_til_job", "laegeattester_pr_forloeb"]
        runde = 2
        """)
    (f,) = cat.load_forsoeg(p)
    assert set(f.kommuner) == NJ
    assert set(f.udeluk_fra_kontrol) == NZ
    assert f.start == dt.date(2018, 1, 1)
    assert f.slut == dt.date(2019, 12, 31)
    assert f.udfald == contract.OUTCOMES_TIME_TO_JOB + ("laegeattester_pr_forloeb",)
    assert dict(f.start_pr_kommune) == {}


def test_free_text_ordning_requires_keys(tmp_path):
    p = _write(tmp_path, """
        [[forsoeg]]
        id = "t1"
        navn = "Test"
        ordning = "Mit eget forsøg"
        maalgruppe = ["a-dagpenge"]
        udfald = ["hazard_job"]
        start = 2019-01-01
        slut = "2019-12-31"
        """)
    with pytest.raises(InputError, match="'kommuner'"):
        cat.load_forsoeg(p)


BASE = """
[[forsoeg]]
id = "t1"
navn = "Test"
ordning = "nordjysk-netvaerk"
maalgruppe = ["a-dagpenge"]
udfald = ["hazard_job"]
start = "2017-07-01"
slut = "2019-12-31"
"""


@pytest.mark.parametrize("extra,replace,match", [
    ('kommuner = ["851", "999"]\n', None, "unknown municipality code '999'"),
    (None, ('maalgruppe = ["a-dagpenge"]', 'maalgruppe = ["dagpenge"]'), "unknown ydelsesgruppe 'dagpenge'"),
    (None, ('udfald = ["hazard_job"]', 'udfald = ["tid_til_arbejde"]'), "unknown outcome id 'tid_til_arbejde'"),
    (None, ('start = "2017-07-01"', 'start = "2017-13-01"'), "key 'start'.*not a date"),
    (None, ('slut = "2019-12-31"', 'slut = "2016-12-31"'), "key 'slut'.*before start"),
    ('[forsoeg.start_pr_kommune]\n"101" = "2018-01-01"\n', None, "start_pr_kommune.101.*not in the trial"),
    ('[forsoeg.start_pr_kommune]\n"860" = "1. sept"\n', None, "start_pr_kommune.860.*not a date"),
    ('udelukk_fra_kontrol = ["201"]\n', None, "key 'udelukk_fra_kontrol': unknown key"),
    ('udeluk_fra_kontrol = ["12"]\n', None, "udeluk_fra_kontrol.*unknown municipality"),
    (None, ('id = "t1"', 'id = "T 1"'), "key 'id'"),
    (None, ('navn = "Test"\n', ''), "key 'navn': missing"),
])
def test_validation_errors_name_file_and_key(tmp_path, extra, replace, match):
    text = BASE
    if replace:
        text = text.replace(*replace)
    if extra:
        # keys must precede sub-tables
        if extra.startswith("["):
            text = text + extra
        else:
            text = text.replace('slut = "2019-12-31"\n', 'slut = "2019-12-31"\n' + extra)
    p = _write(tmp_path, text)
    with pytest.raises(InputError, match=match) as ei:
        cat.load_forsoeg(p)
    assert str(p) in str(ei.value)


def test_duplicate_ids_and_empty_and_bad_toml(tmp_path):
    p = _write(tmp_path, BASE + BASE)
    with pytest.raises(InputError, match="duplicate"):
        cat.load_forsoeg(p)
    p = _write(tmp_path, "titel = 'x'\n")
    with pytest.raises(InputError, match=r"no \[\[forsoeg\]\]"):
        cat.load_forsoeg(p)
    p = _write(tmp_path, "[[forsoeg]\nid=")
    with pytest.raises(InputError, match="not valid TOML"):
        cat.load_forsoeg(p)
    with pytest.raises(InputError, match="cannot read"):
        cat.load_forsoeg(tmp_path / "missing.toml")


def test_kommune_code_normalisation_and_dates(tmp_path):
    text = BASE.replace('start = "2017-07-01"', 'start = "01.07.2017"').replace(
        'slut = "2019-12-31"\n', 'slut = "2019-12-31"\nkommuner = ["0851", "860"]\n')
    p = _write(tmp_path, text + '[forsoeg.start_pr_kommune]\n"0860" = 2017-09-01\n')
    (f,) = cat.load_forsoeg(p)
    assert f.kommuner == ("851", "860")
    assert f.start == dt.date(2017, 7, 1)
    assert f.start_for("860") == dt.date(2017, 9, 1)
    assert set(f.udeluk_fra_kontrol) == NZ
    assert len(f.kontrol_kommuner()) == 98 - 2 - 9


def test_forsoeg_is_immutable_and_hashable():
    fs = cat.load_forsoeg(cat.forsoeg_nordjylland_path())
    again = cat.load_forsoeg(cat.forsoeg_nordjylland_path())
    assert fs == again and len(set(fs) | set(again)) == len(fs)
    with pytest.raises(Exception):
        fs[0].start = dt.date(2000, 1, 1)
    with pytest.raises(TypeError):
        fs[0].start_pr_kommune["860"] = dt.date(2000, 1, 1)
