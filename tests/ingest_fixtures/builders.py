"""Hand-built raw registers for the ingest tests, written in any of the contract's dialects.

Values are held as Python objects (``datetime.date``, ``int``, ``float``, ``str``, ``None``)
and formatted per dialect when written, so the same data can be written as UTF-8/``,``/ISO,
as Windows-1252/``;``/Danish dates/decimal comma, gzip'ed, with a BOM, or as Parquet. The
expected canonical tables are computed here directly from the Python values (independently
of the ingest code).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evaluering import contract

D = dt.date

FORLOEB_COLS = ["person_id", "kommune_kode", "ydelsesgruppe", "start_dato", "slut_dato", "afgang",
                "koen", "foedselsaar", "herkomst", "uddannelse", "note", "score", "antal", "kode_tekst"]
KONTAKT_COLS = ["person_id", "kommune_kode", "dato", "type", "kanal", "attest", "minutter", "udgift_kr"]

# person_id, kommune, gruppe, start, slut, afgang, koen, aar, herkomst, uddannelse, note, score, antal, kode_tekst
FORLOEB = [
    ["P001", "851", "a-dagpenge", D(2017, 7, 3), D(2017, 10, 1), "job", "K", 1980, "dansk", "gymnasial", "Århus", 1.5, 3, "007"],
    ["P001", "851", "a-dagpenge", D(2017, 10, 2), None, None, "K", 1980, "dansk", "gymnasial", "Ærø; ø", 2.0, 4, "010"],
    ["P002", "101", "kontanthjaelp", D(2016, 1, 15), D(2017, 3, 31), "uddannelse", "M", 1975, "ikke_vestlig", None, None, 0.25, 0, "x1"],
    ["P002", "101", "sygedagpenge", D(2017, 1, 1), D(2017, 2, 1), "andet", "M", 1975, "ikke_vestlig", "grundskole", "€ 5", 7.0, 12, "x2"],
    ["P003", "147", "sygedagpenge", D(2018, 2, 28), None, None, "K", 1990, "vestlig", "videregaaende", "Øster \"Bro\"", 3.75, 1, None],
    ["P004", "860", "jobafklaring", D(2019, 12, 31), D(2020, 1, 5), "pension", "M", 1960, None, "erhvervsfaglig", "a,b", 1.0, 2, "0"],
    ["P005", "773", "ledighedsydelse", D(2017, 5, 1), D(2017, 5, 1), "doed_udvandret", "K", 1900, "dansk", None, None, 10.5, 5, "y"],
    ["P006", "810", "integrationsydelse", D(2018, 1, 1), D(2018, 6, 30), "anden_ydelse", "M", 2010, "ikke_vestlig", "grundskole", "n", 0.0, 6, "z"],
    ["P007", "825", "fleksjob", D(2016, 3, 1), None, None, "K", 1970, "dansk", "videregaaende", "m", 2.5, 7, "w"],
    ["P008", "840", "revalidering", D(2017, 8, 15), D(2017, 12, 24), "job", "M", 1985, "vestlig", "gymnasial", "æøå ÆØÅ", 9.0, 8, "v"],
    ["P009", "101", "uddannelseshjaelp", D(2018, 9, 1), D(2019, 3, 1), "uddannelse", "K", 1999, "dansk", "grundskole", "k", 1.25, 9, "u"],
    ["P010", "851", "ressourceforloeb", D(2019, 1, 7), None, None, "M", 1965, "dansk", "erhvervsfaglig", "j", 4.0, 10, "t"],
]

# person_id, kommune, dato, type, kanal, attest, minutter, udgift_kr
KONTAKTER = [
    ["P001", "851", D(2017, 7, 10), "samtale", "fysisk", None, 30, None],
    ["P001", "851", D(2017, 8, 10), "samtale", "telefon", None, 15.5, None],
    ["P002", "101", D(2016, 2, 1), "samtale", "video", None, 45, 0],
    ["P002", "101", D(2017, 1, 10), "laegeattest", None, "LAE285", None, 450.75],
    ["P003", "147", D(2018, 3, 1), "rehabiliteringsteam", None, None, 120, 1200.5],
    ["P003", "147", D(2018, 3, 2), "samtale", "digital", None, 0, None],
    ["P004", "860", D(2020, 1, 2), "tilbud", None, None, None, 3000],
    ["P006", "810", D(2018, 2, 1), "samtale", None, None, 20.25, None],
    ["P008", "840", D(2017, 9, 1), "laegeattest", None, "LAE265", 10, 700],
    ["P010", "851", D(2019, 1, 8), "samtale", "fysisk", None, 60, None],
]

KODER = {"111": "a-dagpenge", "890": "sygedagpenge", "651": "su", "998": "doed_udvandret",
         "130": "kontanthjaelp"}
KODER_TOML = """beskrivelse = "Illustrative test mapping (not the real DREAM codes)"

[tekst]
"111" = "A-dagpenge"

[koder]
"111" = "a-dagpenge"
"890" = "sygedagpenge"
"651" = "su"
"998" = "doed_udvandret"
"130" = "kontanthjaelp"
"""

# weekly register: weeks 2017-W50 .. 2018-W03 (2017 has 52 ISO weeks)
WEEKS = [(2017, w) for w in range(50, 53)] + [(2018, w) for w in range(1, 4)]
UGESTATUS = {  # person -> {(year, week): code}; missing = self-supporting
    "P001": {(2017, 50): "111", (2017, 51): "111", (2017, 52): "111"},
    "P002": {(2017, 50): "890", (2018, 1): "130", (2018, 2): "130", (2018, 3): "130"},
    "P003": {(2018, 1): "651", (2018, 2): "651", (2018, 3): "998"},
    "P004": {},
    "P010": {(w): "111" for w in WEEKS},
}


@dataclass(frozen=True)
class Dialect:
    encoding: str = "utf-8"      # "utf-8", "utf-8-sig" or "cp1252"
    sep: str = ","
    dates: str = "iso"           # "iso" or "danish" (alternating dd-mm-yyyy / dd.mm.yyyy)
    decimal: str = "."
    missing: tuple[str, ...] = ("",)
    kommune_pad: bool = False    # '0851' instead of '851'
    gz: bool = False
    newline: str = "\n"


PLAIN = Dialect()
DANISH = Dialect(encoding="cp1252", sep=";", dates="danish", decimal=",",
                 missing=("NA", ".", ""), kommune_pad=True, newline="\r\n")
BOM_GZ = Dialect(encoding="utf-8-sig", gz=True)


def fmt(value, col: str, i: int, d: Dialect) -> str:
    if value is None:
        return d.missing[i % len(d.missing)]
    if isinstance(value, dt.date):
        if d.dates == "iso":
            return value.isoformat()
        return value.strftime("%d-%m-%Y" if i % 2 == 0 else "%d.%m.%Y")
    if isinstance(value, float):
        s = repr(value)
        return s.replace(".", d.decimal)
    if col == "kommune_kode" and d.kommune_pad:
        return "0" + str(value)
    return str(value)


def csv_text(header: list[str], rows: list[list], d: Dialect) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=d.sep, lineterminator=d.newline, quoting=csv.QUOTE_MINIMAL)
    w.writerow(header)
    for i, row in enumerate(rows):
        w.writerow([fmt(v, c, i, d) for v, c in zip(row, header)] + [str(v) for v in row[len(header):]])
    return buf.getvalue()


def write_csv(path_noext: Path, header: list[str], rows: list[list], d: Dialect = PLAIN,
              text: str | None = None) -> Path:
    text = csv_text(header, rows, d) if text is None else text
    data = text.encode(d.encoding)
    if d.gz:
        path = path_noext.with_name(path_noext.name + ".csv.gz")
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path = path_noext.with_name(path_noext.name + ".csv")
        path.write_bytes(data)
    return path


def ugestatus_long_rows(data=None) -> list[list]:
    data = UGESTATUS if data is None else data
    rows = []
    for p, weeks in data.items():
        for (y, w) in WEEKS:
            rows.append([p, f"{y}-W{w:02d}", weeks.get((y, w))])
    return rows


def ugestatus_wide(data=None) -> tuple[list[str], list[list]]:
    data = UGESTATUS if data is None else data
    header = ["person_id"] + [f"y_{y % 100:02d}{w:02d}" for (y, w) in WEEKS]
    rows = [[p] + [weeks.get(yw) for yw in WEEKS] for p, weeks in data.items()]
    return header, rows


def write_dataset(folder: Path, d: Dialect = PLAIN, *, forloeb=None, kontakter=None,
                  ugestatus: str | None = "long", ugestatus_data=None, koder: bool = True,
                  forsoeg: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "forloeb", FORLOEB_COLS, FORLOEB if forloeb is None else forloeb, d)
    if kontakter is not False:
        write_csv(folder / "kontakter", KONTAKT_COLS, KONTAKTER if kontakter is None else kontakter, d)
    if ugestatus == "long":
        write_csv(folder / "ugestatus", ["person_id", "uge", "ydelseskode"],
                  ugestatus_long_rows(ugestatus_data), d)
    elif ugestatus == "wide":
        header, rows = ugestatus_wide(ugestatus_data)
        write_csv(folder / "ugestatus", header, rows, d)
    if koder:
        (folder / "ydelseskoder.toml").write_text(KODER_TOML, encoding="utf-8")
    if forsoeg:
        (folder / "forsoeg.toml").write_text(
            '[[forsoeg]]\nid = "test"\nnavn = "Test"\nmaalgruppe = ["a-dagpenge"]\n'
            'start = "2017-07-01"\nkommuner = ["851"]\nslut = "2019-12-31"\n', encoding="utf-8")
    return folder


def write_parquet_dataset(folder: Path) -> Path:
    """The clean registers as typed Parquet (dates as date32, numbers numeric)."""
    folder.mkdir(parents=True, exist_ok=True)
    cols = list(zip(*FORLOEB))
    types = [pa.string(), pa.string(), pa.string(), pa.date32(), pa.date32(), pa.string(),
             pa.string(), pa.int32(), pa.string(), pa.string(), pa.string(), pa.float64(),
             pa.int64(), pa.string()]
    pq.write_table(pa.table({c: pa.array(v, type=t) for c, v, t in zip(FORLOEB_COLS, cols, types)}),
                   folder / "forloeb.parquet")
    cols = list(zip(*KONTAKTER))
    types = [pa.string(), pa.string(), pa.date32(), pa.string(), pa.string(), pa.string(),
             pa.float64(), pa.float64()]
    pq.write_table(pa.table({c: pa.array([None if v is None else (float(v) if t == pa.float64() else v)
                                          for v in vals], type=t)
                             for c, vals, t in zip(KONTAKT_COLS, cols, types)}),
                   folder / "kontakter.parquet")
    rows = ugestatus_long_rows()
    pq.write_table(pa.table({"person_id": [r[0] for r in rows], "uge": [r[1] for r in rows],
                             "ydelseskode": [r[2] for r in rows]}), folder / "ugestatus.parquet")
    (folder / "ydelseskoder.toml").write_text(KODER_TOML, encoding="utf-8")
    return folder


# ---- expected canonical tables, computed directly from the Python values -------------------

def expected_forloeb(rows=None, ids=None) -> pd.DataFrame:
    rows = FORLOEB if rows is None else rows
    ids = list(range(1, len(rows) + 1)) if ids is None else ids
    df = pd.DataFrame(rows, columns=FORLOEB_COLS)
    df.insert(0, "spell_id", pd.array(ids, dtype="int64"))
    df["kommune_kode"] = df["kommune_kode"].map(lambda k: f"{int(k):03d}")
    df["foedselsaar"] = df["foedselsaar"].astype("int16")
    df["score"] = df["score"].astype("float64")
    df["antal"] = df["antal"].astype("int64")
    return df


def expected_kontakter(rows=None) -> pd.DataFrame:
    rows = KONTAKTER if rows is None else rows
    df = pd.DataFrame(rows, columns=KONTAKT_COLS)
    df.insert(0, "contact_id", pd.array(range(1, len(rows) + 1), dtype="int64"))
    for c in ("minutter", "udgift_kr"):
        df[c] = df[c].astype("float64")
    return df


def expected_ugestatus(data=None) -> pd.DataFrame:
    data = UGESTATUS if data is None else data
    recs = sorted((p, contract.week_index(y, w), code, KODER[code])
                  for p, weeks in data.items() for (y, w), code in weeks.items())
    df = pd.DataFrame(recs, columns=["person_id", "uge", "ydelseskode", "kategori"])
    df["uge"] = df["uge"].astype("int32")
    return df


def valid_cprs() -> list[str]:
    return ["0101801234", "311299-1234", "2902001111", "1506754321"]
