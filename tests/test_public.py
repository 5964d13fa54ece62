"""Public-aggregate readers: StatBank CSV and Jobindsats JSON."""

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluering.errors import InputError
from evaluering.public import kommune_kode_for_label, read_jobindsats, read_statbank
from evaluering.reference import kommuner

AUK01 = resources.files("evaluering.reference").joinpath(
    "statbank/auk01_kontanthjaelp_kommuner_2014Q1-2021Q4.csv")
DATA = Path(__file__).parent / "data"


def test_auk01_real_file():
    t = read_statbank(str(AUK01))
    assert t.encoding == "utf-8-sig" and t.separator == ";"
    assert t.panel["kommune_kode"].nunique() == 98
    assert len(t.panel) == 98 * 32 and len(t.aggregates) == 32  # "All Denmark" rows
    laesoe = t.panel[t.panel.kommune_kode == "825"].set_index("periode")["vaerdi"]
    assert laesoe["2014Q1"] == 6 and laesoe["2014Q3"] == 1
    # the country total is the municipalities' sum plus a few persons without a municipality
    # (0.1-0.5 % in the raw file): never below it, never far above
    tot = t.aggregates.set_index("periode")["vaerdi"]
    s = t.panel.groupby("periode")["vaerdi"].sum().loc[tot.index]
    assert (s <= tot).all() and ((tot - s) / tot < 0.006).all()


def test_label_mapping_both_languages():
    k = kommuner()
    for code, navn in zip(k.kode, k.navn):
        assert kommune_kode_for_label(navn) == code
        assert kommune_kode_for_label(f"{navn} Kommune") == code
    assert kommune_kode_for_label("Copenhagen") == "101"
    assert kommune_kode_for_label("Vesthimmerlands") == "820"
    assert kommune_kode_for_label("Nordfyn") == "480"
    assert kommune_kode_for_label("All Denmark") is None
    assert kommune_kode_for_label("Region Nordjylland") is None
    with pytest.raises(KeyError):
        kommune_kode_for_label("Atlantis")


def test_danish_cp1252_export_with_confidential_cells(tmp_path):
    text = ("OMRÅDE;YDELSE;TID;INDHOLD\n"
            "Hele landet;Kontanthjælp;2017M07;1.234,5\n"
            "København;Kontanthjælp;2017M07;2.001,0\n"
            "Læsø;Kontanthjælp;2017M07;..\n"
            "Vesthimmerland;Kontanthjælp;2017M07;17,5\n")
    p = tmp_path / "x.csv"
    p.write_bytes(text.encode("cp1252"))
    t = read_statbank(p)
    assert t.encoding == "cp1252"
    got = t.panel.set_index("kommune_kode")
    assert got.loc["101", "vaerdi"] == 2001.0 and got.loc["820", "vaerdi"] == 17.5
    assert np.isnan(got.loc["825", "vaerdi"]) and bool(got.loc["825", "fortrolig"])
    assert got.loc["101", "periode_start"] == pd.Timestamp(2017, 7, 1)
    assert t.aggregates["vaerdi"].iloc[0] == 1234.5


def test_yearly_comma_separated_and_errors(tmp_path):
    p = tmp_path / "y.csv"
    p.write_text("AREA,TIME,CONTENT\nAalborg,2017,10.5\nAarhus,2018,3\n", encoding="utf-8")
    t = read_statbank(p)
    got = t.panel.set_index("kommune_kode")
    assert got.loc["851", "periode"] == "2017" and got.loc["851", "vaerdi"] == 10.5
    assert got.loc["751", "periode"] == "2018" and got.loc["751", "vaerdi"] == 3.0
    bad = tmp_path / "bad.csv"
    bad.write_text("AREA,TIME,CONTENT\nAtlantis,2017,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="Atlantis"):
        read_statbank(bad)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("AREA,VALUE\nAalborg,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="TID"):
        read_statbank(nocol)


def test_jobindsats_json_fixture():
    df = read_jobindsats(DATA / "jobindsats" / "y01a02_udsnit.json")
    assert set(df["kommune_kode"]) == {"851", "825", "820", "101"}
    a = df[(df.kommune_kode == "851") & (df.maal == "Fuldtidspersoner")].set_index("periode")["vaerdi"]
    assert a["2019M07"] == 2980.2 and a["2019M08"] == 2911.0
    l = df[df.kommune_kode == "825"]
    assert l["fortrolig"].all() and l["vaerdi"].isna().all()
    assert set(df["maal"]) == {"Antal berørte personer", "Fuldtidspersoner"}
