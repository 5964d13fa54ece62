"""Ingest: clean data accepted in full, injected bad rows quarantined with exactly the right
reasons, dialects give identical canonical tables, file-level errors exit 2 and write nothing,
pseudonymisation, and no CPR number in any written byte.

Every expectation is computed in the test from the hand-built Python values
(tests/ingest_fixtures/builders.py), never captured from ingest's own output.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from evaluering import contract
from evaluering.cli import main as cli_main
from evaluering.errors import InputError
from evaluering.ingest import ingest
from ingest_fixtures import builders as B

D = dt.date


def read(out: Path, name: str) -> pd.DataFrame:
    return pq.read_table(out / f"{name}.parquet").to_pandas()


def assert_frame(got: pd.DataFrame, exp: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got.reset_index(drop=True), exp.reset_index(drop=True),
                                  check_dtype=True)


def quarantine_map(out: Path, register: str) -> dict[int, list[str]]:
    q = read(out, f"karantaene/{register}")
    return {int(line): list(reasons) for line, reasons in zip(q["source_line"], q["reasons"])}


# ---------------------------------------------------------------------------------------------
def test_clean_data_accepted_in_full(tmp_path):
    raw = B.write_dataset(tmp_path / "clean")
    res = ingest(raw, tmp_path / "out")
    out = res.out_dir
    assert_frame(read(out, "forloeb"), B.expected_forloeb())
    assert_frame(read(out, "kontakter"), B.expected_kontakter())
    assert_frame(read(out, "ugestatus"), B.expected_ugestatus())
    assert read(out, "ugestatus_personer")["person_id"].tolist() == sorted(B.UGESTATUS)
    m = json.loads((out / "manifest.json").read_text())
    n_long = len(B.UGESTATUS) * len(B.WEEKS)
    for reg, n in (("forloeb", len(B.FORLOEB)), ("kontakter", len(B.KONTAKTER)), ("ugestatus", n_long)):
        r = m["registers"][reg]
        assert (r["rows_read"], r["rows_accepted"], r["rows_quarantined"]) == (n, n, 0)
        assert r["reasons"] == {}
        assert r["dialect"]["encoding"] == "utf-8" and r["dialect"]["separator"] == ","
        sha = hashlib.sha256((raw / f"{reg}.csv").read_bytes()).hexdigest()
        assert r["files"] == {f"{reg}.csv": sha}
        assert len(read(out, f"karantaene/{reg}")) == 0
    u = m["registers"]["ugestatus"]
    assert u["first_week"] == contract.week_index(2017, 50)
    assert u["last_week"] == contract.week_index(2018, 3)
    assert (u["first_week_iso"], u["last_week_iso"]) == ("2017-W50", "2018-W03")
    assert u["dialect"]["layout"] == "long"
    assert json.loads((out / "ugestatus_range.json").read_text())["first_week"] == u["first_week"]
    assert m["registers"]["forloeb"]["extra_columns"] == {"note": "VARCHAR", "score": "DOUBLE",
                                                          "antal": "BIGINT", "kode_tekst": "VARCHAR"}
    assert m["registers"]["kontakter"]["dialect"]["decimal"] == "point"
    assert m["registers"]["forloeb"]["dialect"]["date_formats"] == ["iso"]
    # configuration copied with checksums
    for f in ("ydelseskoder.toml", "forsoeg.toml"):
        assert (out / f).read_bytes() == (raw / f).read_bytes()
        assert m["config"][f]["sha256"] == hashlib.sha256((raw / f).read_bytes()).hexdigest()
    assert m["toolkit"]["name"] == "evaluering"
    # canonical schemas of the contract
    s = pq.read_schema(out / "forloeb.parquet")
    assert [str(s.field(c).type) for c in ("spell_id", "start_dato", "slut_dato", "foedselsaar")] == \
        ["int64", "date32[day]", "date32[day]", "int16"]
    s = pq.read_schema(out / "ugestatus.parquet")
    assert s.names == ["person_id", "uge", "ydelseskode", "kategori"] and str(s.field("uge").type) == "int32"
    summ = res.summary()
    assert (summ["rows_read"] == summ["rows_accepted"] + summ["rows_quarantined"]).all()


def test_injected_bad_rows_quarantined_with_exactly_their_reasons(tmp_path):
    good = B.FORLOEB
    base = good[0]

    def row(**kw):
        r = dict(zip(B.FORLOEB_COLS, base))
        r.update(kw)
        return [r[c] for c in B.FORLOEB_COLS]

    bad = [  # (row, expected reasons)
        (row(person_id="B01", start_dato="2017-13-45"), ["ugyldig_dato"]),
        (row(person_id="B02", kommune_kode="999"), ["ukendt_kommune"]),
        (row(person_id="B03", start_dato=D(2018, 1, 1), slut_dato=D(2017, 1, 1)), ["slut_foer_start"]),
        (list(good[3]), ["dublet"]),
        (row(start_dato=D(2017, 8, 1), slut_dato=D(2017, 8, 31)), ["overlap"]),  # overlaps good[0]
        (row(person_id="P001", start_dato=D(2019, 1, 1), slut_dato=D(2019, 2, 1)), ["overlap"]),  # good[1] is open
        (row(person_id="0101801234"), ["cpr_i_person_id"]),
        (row(person_id="311299-1234", kommune_kode="0999", start_dato="31.02.2017"),
         ["cpr_i_person_id", "ugyldig_dato", "ukendt_kommune"]),
        (row(person_id="B04", slut_dato=None), ["afgang_uden_slut"]),
        (row(person_id="B05", afgang=None), ["afgang_uden_slut"]),
        (row(person_id="B06", foedselsaar=1850), ["foedselsaar_uden_for_interval"]),
        (row(person_id="B07", foedselsaar="198O"), ["ugyldigt_tal"]),
        (row(person_id="B08", koen=None), ["manglende_vaerdi"]),
        (row(person_id="B09", ydelsesgruppe="efterloen", herkomst="x"), ["ukendt_kategori"]),
        (row(person_id="B10", afgang="flyttet"), ["ukendt_kategori"]),
        (row(person_id="B11", note="ring 0101801234"), ["cpr_i_kolonne"]),
    ]
    rows = list(good) + [r for r, _ in bad]
    kbase = B.KONTAKTER[0]

    def krow(**kw):
        r = dict(zip(B.KONTAKT_COLS, kbase))
        r.update(kw)
        return [r[c] for c in B.KONTAKT_COLS]

    kbad = [
        (krow(minutter=-5), ["negativt_tal"]),
        (krow(kanal="brev"), ["ukendt_kategori"]),
        (krow(type="tilbud", kanal="telefon"), ["kanal_uden_samtale"]),
        (krow(minutter="tre"), ["ugyldigt_tal"]),
        (krow(udgift_kr=-1.5, dato="2017-02-29"), ["negativt_tal", "ugyldig_dato"]),
        (krow(kommune_kode="999", type="brev"), ["ukendt_kategori", "ukendt_kommune"]),
        (krow(person_id="1506754321"), ["cpr_i_person_id"]),
        (list(B.KONTAKTER[4]), ["dublet"]),
    ]
    krows = list(B.KONTAKTER) + [r for r, _ in kbad]
    ubad = [(["P001", "2017-W50", "555"], ["ukendt_ydelseskode"]),
            (["P002", "2017-W53", "111"], ["ugyldig_uge"]),
            (["P001", "2017-W50", "890"], ["uge_konflikt"]),
            ([None, "2017-W50", "111"], ["manglende_vaerdi"])]
    raw = B.write_dataset(tmp_path / "bad", forloeb=rows, kontakter=krows, ugestatus=None)
    urows = B.ugestatus_long_rows() + [r for r, _ in ubad]
    B.write_csv(raw / "ugestatus", ["person_id", "uge", "ydelseskode"], urows)
    res = ingest(raw, tmp_path / "out")
    out = res.out_dir

    assert quarantine_map(out, "forloeb") == {len(good) + 2 + i: sorted(r) for i, (_, r) in enumerate(bad)}
    assert quarantine_map(out, "kontakter") == {len(B.KONTAKTER) + 2 + i: sorted(r)
                                                for i, (_, r) in enumerate(kbad)}
    assert quarantine_map(out, "ugestatus") == {len(urows) - len(ubad) + 2 + i: r
                                                for i, (_, r) in enumerate(ubad)}
    # the good rows are accepted unchanged, with their original spell ids
    assert_frame(read(out, "forloeb"), B.expected_forloeb())
    assert_frame(read(out, "kontakter"), B.expected_kontakter())
    assert_frame(read(out, "ugestatus"), B.expected_ugestatus())
    m = res.manifest["registers"]
    for reg, nbad, ngood in (("forloeb", len(bad), len(good)), ("kontakter", len(kbad), len(B.KONTAKTER)),
                             ("ugestatus", len(ubad), len(urows) - len(ubad))):
        assert m[reg]["rows_read"] == ngood + nbad
        assert (m[reg]["rows_accepted"], m[reg]["rows_quarantined"]) == (ngood, nbad)
    exp_counts: dict[str, int] = {}
    for _, rs in bad:
        for r in rs:
            exp_counts[r] = exp_counts.get(r, 0) + 1
    assert dict(m["forloeb"]["reasons"]) == exp_counts
    assert set(exp_counts) <= set(contract.REASONS)
    # quarantine keeps the raw text and the source file; CPR numbers are masked
    q = read(out, "karantaene/forloeb")
    assert set(q["source_file"]) == {"forloeb.csv"}
    assert q.loc[q["source_line"] == len(good) + 2, "start_dato"].item() == "2017-13-45"
    assert (q["person_id"] == "<cpr fjernet>").sum() == 2
    assert "ring <cpr fjernet>" not in set(q["note"]) and "<cpr fjernet>" in set(q["note"])


def test_overlap_is_greedy_in_line_order(tmp_path):
    base = dict(zip(B.FORLOEB_COLS, B.FORLOEB[0]))

    def sp(pid, s, e, gruppe="a-dagpenge"):
        r = dict(base, person_id=pid, start_dato=s, slut_dato=e, afgang=None if e is None else "job",
                 ydelsesgruppe=gruppe)
        return [r[c] for c in B.FORLOEB_COLS]

    rows = [sp("A", D(2017, 1, 1), D(2017, 1, 10)),   # kept
            sp("A", D(2017, 1, 5), D(2017, 1, 15)),   # overlaps the first -> overlap
            sp("A", D(2017, 1, 12), D(2017, 1, 20)),  # overlaps only the quarantined one -> kept
            sp("A", D(2017, 1, 20), D(2017, 1, 25)),  # shares a day with the third -> overlap
            sp("A", D(2017, 1, 1), D(2017, 1, 3), gruppe="sygedagpenge"),  # other group -> kept
            sp("B", D(2017, 1, 1), None),             # open spell -> runs to infinity
            sp("B", D(2030, 1, 1), D(2030, 2, 1)),    # overlap with the open one
            sp("C", D(2017, 1, 2), D(2017, 1, 5)),
            sp("C", D(2016, 1, 1), D(2017, 1, 1)),    # ends the day before -> kept
            ]
    raw = B.write_dataset(tmp_path / "ovl", forloeb=rows, kontakter=False, ugestatus=None)
    out = ingest(raw, tmp_path / "out").out_dir
    assert quarantine_map(out, "forloeb") == {3: ["overlap"], 5: ["overlap"], 8: ["overlap"]}
    assert read(out, "forloeb")["spell_id"].tolist() == [1, 3, 5, 6, 8, 9]


# ---------------------------------------------------------------------------------------------
def _table_bytes(out: Path) -> dict[str, bytes]:
    names = ["forloeb.parquet", "kontakter.parquet", "ugestatus.parquet", "ugestatus_personer.parquet",
             "ugestatus_range.json"]
    return {n: (out / n).read_bytes() for n in names if (out / n).exists()}


def test_windows1252_semicolon_danish_dates_decimal_comma_identical(tmp_path):
    a = ingest(B.write_dataset(tmp_path / "a", B.PLAIN), tmp_path / "oa")
    raw_b = B.write_dataset(tmp_path / "b", B.DANISH)
    text = (raw_b / "forloeb.csv").read_bytes()
    assert b"\x80" in text and b"\r\n" in text and b";" in text  # really cp1252 (euro sign), CRLF
    with pytest.raises(UnicodeDecodeError):
        text.decode("utf-8")
    b = ingest(raw_b, tmp_path / "ob")
    for reg in ("forloeb", "kontakter", "ugestatus"):
        mb = b.manifest["registers"][reg]
        assert mb["rows_read"] == mb["rows_accepted"] == a.manifest["registers"][reg]["rows_read"]
        assert mb["rows_quarantined"] == 0
        assert mb["dialect"]["separator"] == ";"
        # forloeb has Danish letters and a euro sign; the other two are pure ASCII (= UTF-8)
        assert mb["dialect"]["encoding"] == ("cp1252" if reg == "forloeb" else "utf-8")
    assert list(b.manifest["registers"]["forloeb"]["dialect"]["date_formats"]) == ["dd-mm-yyyy", "dd.mm.yyyy"]
    assert b.manifest["registers"]["kontakter"]["dialect"]["decimal"] == "comma"
    assert _table_bytes(a.out_dir) == _table_bytes(b.out_dir)  # identical canonical tables, byte for byte
    assert read(b.out_dir, "forloeb")["note"].tolist() == [r[10] for r in B.FORLOEB]


def test_bom_gzip_and_parquet_inputs_identical(tmp_path):
    a = ingest(B.write_dataset(tmp_path / "a"), tmp_path / "oa")
    c = ingest(B.write_dataset(tmp_path / "c", B.BOM_GZ), tmp_path / "oc")
    assert c.manifest["registers"]["forloeb"]["dialect"]["encoding"] == "utf-8-sig"
    assert c.manifest["registers"]["forloeb"]["dialect"]["format"] == "csv.gz"
    assert _table_bytes(a.out_dir) == _table_bytes(c.out_dir)
    p = ingest(B.write_parquet_dataset(tmp_path / "p"), tmp_path / "op")
    assert p.manifest["registers"]["forloeb"]["dialect"]["format"] == "parquet"
    assert _table_bytes(a.out_dir) == _table_bytes(p.out_dir)


def test_wide_and_long_ugestatus_identical(tmp_path):
    lo = ingest(B.write_dataset(tmp_path / "long", ugestatus="long"), tmp_path / "ol")
    wi = ingest(B.write_dataset(tmp_path / "wide", ugestatus="wide"), tmp_path / "ow")
    assert wi.manifest["registers"]["ugestatus"]["dialect"]["layout"] == "wide"
    for n in ("ugestatus.parquet", "ugestatus_personer.parquet", "ugestatus_range.json"):
        assert (lo.out_dir / n).read_bytes() == (wi.out_dir / n).read_bytes(), n
    assert_frame(read(wi.out_dir, "ugestatus"), B.expected_ugestatus())
    assert wi.manifest["registers"]["ugestatus"]["rows_read"] == len(B.UGESTATUS)


def test_wide_unknown_code_quarantines_the_person_row(tmp_path):
    data = {k: dict(v) for k, v in B.UGESTATUS.items()}
    data["P002"][(2017, 51)] = "555"
    data["P009"] = {(2018, 1): "0101801234"}
    raw = B.write_dataset(tmp_path / "w", ugestatus="wide", ugestatus_data=data)
    out = ingest(raw, tmp_path / "o").out_dir
    qm = quarantine_map(out, "ugestatus")
    assert qm == {3: ["ukendt_ydelseskode"], 7: ["cpr_i_kolonne", "ukendt_ydelseskode"]}
    exp = {k: v for k, v in B.UGESTATUS.items() if k != "P002"}
    assert_frame(read(out, "ugestatus"), B.expected_ugestatus(exp))
    assert "P002" not in set(read(out, "ugestatus_personer")["person_id"])
    q = read(out, "karantaene/ugestatus")
    assert q.loc[q["person_id"] == "P002", "y_1751"].item() == "555"
    assert q.loc[q["source_line"] == 7, "y_1801"].item() == "<cpr fjernet>"


def test_deterministic_output(tmp_path):
    raw = B.write_dataset(tmp_path / "d", B.DANISH)
    o1 = ingest(raw, tmp_path / "o1").out_dir
    o2 = ingest(raw, tmp_path / "o2").out_dir
    files1 = sorted(p.relative_to(o1) for p in o1.rglob("*") if p.is_file())
    files2 = sorted(p.relative_to(o2) for p in o2.rglob("*") if p.is_file())
    assert files1 == files2
    for f in files1:
        assert (o1 / f).read_bytes() == (o2 / f).read_bytes(), f


# ---------------------------------------------------------------------------------------------
def test_line_numbers_are_physical_lines(tmp_path):
    """Blank lines count; a quoted field with an embedded newline (not supported: registers
    have none) becomes two malformed lines, both quarantined, none lost."""
    raw = B.write_dataset(tmp_path / "l", kontakter=False, ugestatus=None)
    lines = (raw / "forloeb.csv").read_text().splitlines()
    bad_kommune = lines[1].replace(",851,", ",999,", 1)
    embedded = lines[2].replace("Ærø; ø", '"line one\nline two"')
    assert embedded != lines[2]
    text = "\n".join([lines[0], lines[1], "", "  ", bad_kommune, embedded] + lines[3:6] + [""] + lines[6:]) + "\n"
    (raw / "forloeb.csv").write_text(text, encoding="utf-8")
    res = ingest(raw, tmp_path / "o")
    qm = quarantine_map(res.out_dir, "forloeb")
    assert qm == {5: ["ukendt_kommune"], 6: ["ugyldig_linje"], 7: ["ugyldig_linje"]}
    m = res.manifest["registers"]["forloeb"]
    # read = non-blank data lines: 12 good + bad_kommune + the two halves - the replaced line
    assert m["rows_read"] == len(B.FORLOEB) + 2 and m["rows_accepted"] == len(B.FORLOEB) - 1
    got = read(res.out_dir, "forloeb")
    assert got["person_id"].tolist() == [r[0] for i, r in enumerate(B.FORLOEB) if i != 1]


def test_quoted_fields_and_wrong_field_counts(tmp_path):
    header = ",".join(B.KONTAKT_COLS)
    text = "\n".join([
        header,
        'P001,851,2017-07-10,samtale,fysisk,,"30",',                # quoted number: fine
        '"P""2",101,2017-07-10,laegeattest,,"LAE,285",,"1,5"',     # quotes, separator inside
        "P003,101,2017-07-10,tilbud,,,",                           # one field short
        "P004,101,2017-07-10,tilbud,,,,,",                         # one field too many
        'P005,101,2017-07-10,"tilbud,,,,',                         # broken quoting
    ]) + "\n"
    raw = B.write_dataset(tmp_path / "q", kontakter=False, ugestatus=None)
    (raw / "kontakter.csv").write_text(text, encoding="utf-8")
    out = ingest(raw, tmp_path / "o").out_dir
    assert quarantine_map(out, "kontakter") == {4: ["ugyldig_linje"], 5: ["ugyldig_linje"],
                                                6: ["ugyldig_linje"]}
    got = read(out, "kontakter")
    assert got["person_id"].tolist() == ["P001", 'P"2']
    assert got["attest"].tolist() == [None, "LAE,285"]
    assert got["minutter"].tolist()[0] == 30.0 and got["udgift_kr"].tolist()[1] == 1.5


def test_extra_columns_typing_and_invalid_names(tmp_path):
    header = B.FORLOEB_COLS[:10] + ["heltal", "decimal", "tekst", "nul_foran", "2bad", "æble"]
    extra = [["1", "1,5", "abc", "01", "x", "y"], ["-20", "2", "7", "2", "x", "y"]]
    rows = [list(B.FORLOEB[i][:10]) + extra[i] for i in range(2)]
    raw = B.write_dataset(tmp_path / "e", kontakter=False, ugestatus=None)
    B.write_csv(raw / "forloeb", header, rows, B.Dialect(sep=";"))
    res = ingest(raw, tmp_path / "o")
    m = res.manifest["registers"]["forloeb"]
    assert m["extra_columns"] == {"heltal": "BIGINT", "decimal": "DOUBLE", "tekst": "VARCHAR",
                                  "nul_foran": "VARCHAR"}
    assert list(m["ignored_columns"]) == ["2bad", "æble"]
    got = read(res.out_dir, "forloeb")
    assert got["heltal"].tolist() == [1, -20] and got["decimal"].tolist() == [1.5, 2.0]
    assert got["nul_foran"].tolist() == ["01", "2"] and "2bad" not in got.columns


# ---------------------------------------------------------------------------------------------
def _cli(args, capsys):
    rc = cli_main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_cli_prints_reconciliation(tmp_path, capsys):
    raw = B.write_dataset(tmp_path / "c")
    rc, out, err = _cli(["ingest", str(raw), "--out", str(tmp_path / "o"), "--memory-limit", "1GB"], capsys)
    assert rc == 0, err
    lines = [ln.split("\t") for ln in out.splitlines()]
    assert ["forloeb", str(len(B.FORLOEB)), str(len(B.FORLOEB)), "0", "-"] in lines
    rc, out, err = _cli(["--quiet", "ingest", str(raw), "--out", str(tmp_path / "o")], capsys)
    assert rc == 0 and "forloeb" in out and "reading" not in err


def test_cli_missing_required_column_exits_2_and_writes_nothing(tmp_path, capsys):
    raw = B.write_dataset(tmp_path / "m")
    text = (raw / "kontakter.csv").read_text().splitlines()
    cut = [",".join(ln.split(",")[:2] + ln.split(",")[3:]) for ln in text]  # drop 'dato'
    (raw / "kontakter.csv").write_text("\n".join(cut) + "\n")
    target = tmp_path / "nested" / "out"
    rc, out, err = _cli(["ingest", str(raw), "--out", str(target)], capsys)
    assert rc == 2
    assert "kontakter.csv" in err and "'dato'" in err and "required" in err
    assert len([ln for ln in err.splitlines() if "error" in ln.lower()]) == 1
    assert err.splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "nested").exists()


def _assert_nothing_written(tmp_path, raw, match, **kw):
    target = tmp_path / "never" / "out"
    with pytest.raises(InputError, match=match):
        ingest(raw, target, **kw)
    assert not (tmp_path / "never").exists()


def test_file_level_errors_write_nothing(tmp_path):
    # forloeb missing
    raw = B.write_dataset(tmp_path / "a")
    (raw / "forloeb.csv").unlink()
    _assert_nothing_written(tmp_path, raw, "required register 'forloeb'")
    # no rows
    raw = B.write_dataset(tmp_path / "b")
    (raw / "kontakter.csv").write_text(",".join(B.KONTAKT_COLS) + "\n\n")
    _assert_nothing_written(tmp_path, raw, "kontakter.csv: no rows")
    # empty file
    (raw / "kontakter.csv").write_text("")
    _assert_nothing_written(tmp_path, raw, "kontakter.csv: no header")
    # malformed TOML
    raw = B.write_dataset(tmp_path / "c")
    (raw / "ydelseskoder.toml").write_text("[koder\n'111' = 'a-dagpenge'\n")
    _assert_nothing_written(tmp_path, raw, "ydelseskoder.toml: malformed TOML")
    # category outside the contract
    (raw / "ydelseskoder.toml").write_text('[koder]\n"111" = "loen"\n')
    _assert_nothing_written(tmp_path, raw, "maps to 'loen'")
    # ugestatus without a mapping
    (raw / "ydelseskoder.toml").unlink()
    _assert_nothing_written(tmp_path, raw, "needs a code mapping")
    # malformed forsoeg.toml
    raw = B.write_dataset(tmp_path / "d")
    (raw / "forsoeg.toml").write_text("[[forsoeg]\n")
    _assert_nothing_written(tmp_path, raw, "forsoeg.toml: malformed TOML")
    # unknown encoding: not UTF-8 and byte 0x81 is undefined in Windows-1252
    raw = B.write_dataset(tmp_path / "e")
    (raw / "kontakter.csv").write_bytes((raw / "kontakter.csv").read_bytes() + b"P9,851,2017-01-01,tilbud,\x81,,,\n")
    _assert_nothing_written(tmp_path, raw, "unknown encoding.*0x81")
    # UTF-16
    raw = B.write_dataset(tmp_path / "f")
    (raw / "forloeb.csv").write_bytes((raw / "forloeb.csv").read_text().encode("utf-16"))
    _assert_nothing_written(tmp_path, raw, "NUL bytes")
    # two files for one register
    raw = B.write_dataset(tmp_path / "g")
    B.write_csv(raw / "kontakter", B.KONTAKT_COLS, B.KONTAKTER, B.BOM_GZ)
    _assert_nothing_written(tmp_path, raw, "more than once")
    # wide layout with a week that does not exist
    raw = B.write_dataset(tmp_path / "h", ugestatus="wide")
    t = (raw / "ugestatus.csv").read_text().replace("y_1752", "y_1753", 1)
    (raw / "ugestatus.csv").write_text(t)
    _assert_nothing_written(tmp_path, raw, "y_1753.*not a valid ISO week")
    # weekly register with neither layout
    (raw / "ugestatus.csv").write_text("person_id,week,code\nP1,2017-W01,111\n")
    _assert_nothing_written(tmp_path, raw, "column 'uge'")
    # --koder pointing nowhere
    raw = B.write_dataset(tmp_path / "i")
    _assert_nothing_written(tmp_path, raw, "file not found", koder=tmp_path / "nope.toml")
    # invalid memory limit
    _assert_nothing_written(tmp_path, raw, "not a valid memory limit", memory_limit="lots")
    # a .csv.gz that is not gzip
    (raw / "kontakter.csv").unlink()
    (raw / "kontakter.csv.gz").write_bytes(b"not gzip at all")
    _assert_nothing_written(tmp_path, raw, "kontakter.csv.gz: cannot be read")


def test_output_folder_guard(tmp_path):
    raw = B.write_dataset(tmp_path / "g")
    with pytest.raises(InputError, match="replace the input"):
        ingest(raw, raw)
    with pytest.raises(InputError, match="replace the input"):
        ingest(raw, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("x")
    with pytest.raises(InputError, match="not an earlier ingest output"):
        ingest(raw, other)
    assert (other / "precious.txt").read_text() == "x"
    out = ingest(raw, tmp_path / "o").out_dir
    ingest(raw, out)  # an earlier output is replaced
    assert (out / "manifest.json").is_file()


def test_parquet_quarantine_lines_are_row_number_plus_one(tmp_path):
    import pyarrow as pa

    raw = B.write_parquet_dataset(tmp_path / "p")
    t = pq.read_table(raw / "forloeb.parquet")
    kk = t.column("kommune_kode").to_pylist()
    kk[4] = "999"
    t = t.set_column(t.schema.get_field_index("kommune_kode"), "kommune_kode", pa.array(kk))
    pq.write_table(t, raw / "forloeb.parquet")
    res = ingest(raw, tmp_path / "o")
    assert quarantine_map(res.out_dir, "forloeb") == {6: ["ukendt_kommune"]}
    assert read(res.out_dir, "karantaene/forloeb")["source_file"].tolist() == ["forloeb.parquet"]


def test_koder_override(tmp_path):
    raw = B.write_dataset(tmp_path / "k")
    alt = tmp_path / "alt.toml"
    alt.write_text('[koder]\n"111" = "a-dagpenge"\n')
    res = ingest(raw, tmp_path / "o", koder=alt)
    m = res.manifest["registers"]["ugestatus"]
    other_codes = sum(1 for w in B.UGESTATUS.values() for c in w.values() if c != "111")
    assert m["rows_quarantined"] == other_codes and m["reasons"] == {"ukendt_ydelseskode": other_codes}
    assert (res.out_dir / "ydelseskoder.toml").read_text() == alt.read_text()


def test_reconciliation_failure_raises_and_writes_nothing(tmp_path, monkeypatch):
    """If a written table does not hold the counted rows, the run fails and nothing is left."""
    from evaluering.ingest import core

    real = core._write_query

    def lossy(con, sql, path, schema):
        if path.name == "forloeb.parquet" and "karantaene" not in str(path):
            sql = sql.replace("ORDER BY _row", "AND _row > 1 ORDER BY _row")
        return real(con, sql, path, schema)

    monkeypatch.setattr(core, "_write_query", lossy)
    raw = B.write_dataset(tmp_path / "r")
    with pytest.raises(RuntimeError, match="forloeb: wrote"):
        ingest(raw, tmp_path / "o")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
def _all_output_text(out: Path) -> str:
    """Every file's raw bytes (decoded loosely) plus every Parquet value as text."""
    parts = []
    for p in sorted(out.rglob("*")):
        if not p.is_file():
            continue
        parts.append(p.read_bytes().decode("latin-1"))
        if p.suffix == ".parquet":
            parts.append(pq.read_table(p).to_pandas().astype(str).to_csv())
    return "\n".join(parts)


def _cpr_dataset(tmp_path, name):
    cprs = B.valid_cprs()
    base = dict(zip(B.FORLOEB_COLS, B.FORLOEB[0]))
    rows = list(B.FORLOEB)
    for i, c in enumerate(cprs):
        r = dict(base, person_id=c, start_dato=D(2010 + i, 1, 1), slut_dato=D(2010 + i, 2, 1))
        rows.append([r[col] for col in B.FORLOEB_COLS])
    krows = list(B.KONTAKTER) + [["0101801234", "851", D(2017, 7, 10), "samtale", "fysisk", None, 5, None]]
    udata = dict(B.UGESTATUS)
    udata["010180-1234"] = {(2017, 50): "111"}
    raw = B.write_dataset(tmp_path / name, forloeb=rows, kontakter=krows, ugestatus="long", ugestatus_data=udata)
    return raw, cprs


def test_cpr_quarantined_by_default_and_never_written(tmp_path, capsys, caplog):
    raw, cprs = _cpr_dataset(tmp_path, "c")
    rc, out, err = _cli(["ingest", str(raw), "--out", str(tmp_path / "o")], capsys)
    assert rc == 0
    text = _all_output_text(tmp_path / "o") + out + err + caplog.text
    for c in cprs + ["0101801234", "010180-1234"]:
        assert c not in text and c.replace("-", "") not in text
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["registers"]["forloeb"]["reasons"] == {"cpr_i_person_id": len(cprs)}
    assert m["registers"]["kontakter"]["reasons"] == {"cpr_i_person_id": 1}
    assert m["registers"]["ugestatus"]["reasons"] == {"cpr_i_person_id": len(B.WEEKS)}


def test_pseudonymisation_with_key(tmp_path, monkeypatch):
    key = "hemmelig nøgle"
    monkeypatch.setenv("EVALUERING_PSEUDONYM_KEY", key)
    raw, cprs = _cpr_dataset(tmp_path, "p")
    res = ingest(raw, tmp_path / "o")

    def h(c):  # independent HMAC-SHA256 of the 10 digits
        return hmac.new(key.encode("utf-8"), c.replace("-", "").encode(), hashlib.sha256).hexdigest()

    f = read(res.out_dir, "forloeb")
    assert f["person_id"].tolist()[-len(cprs):] == [h(c) for c in cprs]
    k = read(res.out_dir, "kontakter")
    assert k["person_id"].tolist()[-1] == h("0101801234")
    u = read(res.out_dir, "ugestatus")
    assert h("0101801234") in set(u["person_id"])  # same person, hyphenated in ugestatus
    assert h("0101801234") in set(read(res.out_dir, "ugestatus_personer")["person_id"])
    for reg in ("forloeb", "kontakter", "ugestatus"):
        assert res.manifest["registers"][reg]["rows_quarantined"] == 0
    assert res.manifest["pseudonymisation"]["key_set"] is True
    text = _all_output_text(res.out_dir)
    for c in cprs:
        assert c not in text and c.replace("-", "") not in text
    assert key not in text


def test_cpr_rule_python_and_sql_agree():
    import duckdb
    from hypothesis import given, settings, strategies as st

    from evaluering.ingest import is_cpr
    from evaluering.ingest._sql import macros

    con = duckdb.connect()
    for m in macros():
        con.execute(m)

    @settings(max_examples=100, deadline=None)
    @given(st.one_of(st.from_regex(r"\d{10}", fullmatch=True), st.from_regex(r"\d{6}-\d{4}", fullmatch=True),
                     st.text(max_size=12)))
    def check(v):
        sql = con.execute("SELECT is_cpr(nz(?))", [v]).fetchall()[0][0]
        assert sql == is_cpr(v.strip(" \t")), v

    check()
    assert is_cpr("290200-1234") and not is_cpr("290201-1234") and not is_cpr("3102801234")
    assert not is_cpr("12345678901") and not is_cpr("P0101801234")


def test_sql_week_and_date_parsing_agree_with_python():
    """The SQL ISO-week and date parsers against Python's datetime, over 1991-2030."""
    import duckdb

    from evaluering.ingest._sql import macros

    con = duckdb.connect()
    for m in macros():
        con.execute(m)
    cases, expected = [], []
    for y in range(1991, 2031):
        for w in range(0, 55):
            cases.append(f"{y}-W{w:02d}")
            try:
                expected.append(contract.week_index(y, w))
            except ValueError:
                expected.append(None)
    got = [r[0] for r in con.execute(
        "SELECT iso_week(v) FROM (SELECT unnest(?::VARCHAR[]) AS v, generate_subscripts(?::VARCHAR[], 1) AS i) ORDER BY i",
        [cases, cases]).fetchall()]
    assert got == expected
    assert sum(e is not None for e in expected) == sum(
        dt.date(y, 12, 28).isocalendar()[1] for y in range(1991, 2031))
    dates = ["2016-02-29", "29-02-2016", "29.02.2016", "2017-02-29", "31.04.2017", "2017-7-1",
             "1-7-2017", "01/07/2017", "2017-07-01 ", "20170701"]
    exp = [dt.date(2016, 2, 29)] * 3 + [None] * 7
    got = [con.execute("SELECT pdate(?)", [d]).fetchall()[0][0] for d in dates]
    assert got == exp


# ---------------------------------------------------------------------------------------------
def test_duplicates_are_whole_text_matches_with_blank_lines(tmp_path):
    """Exact duplicates are whole-line text matches: the same values written differently are
    not duplicates; a repeat after a blank line is; a repeated malformed line is both. Blank
    lines make the row ordinals (contact_id) differ from line numbers - 1."""
    raw = B.write_dataset(tmp_path / "d", ugestatus=None)
    lines = (raw / "kontakter.csv").read_text(encoding="utf-8").splitlines()
    n = len(B.KONTAKTER)
    first = lines[3]                                  # B.KONTAKTER[2]
    assert first.startswith("P002,")
    requoted = '"P002"' + first[len("P002"):]         # same values, other text
    malformed = "P099,101,2017-07-10"
    text = lines + [first, requoted, "", malformed, first, malformed]
    (raw / "kontakter.csv").write_text("\n".join(text) + "\n", encoding="utf-8")
    res = ingest(raw, tmp_path / "o")
    # physical lines: header 1, data 2..n+1, then n+2 first, n+3 requoted, n+4 blank, ...
    assert quarantine_map(res.out_dir, "kontakter") == {
        n + 2: ["dublet"], n + 5: ["ugyldig_linje"], n + 6: ["dublet"],
        n + 7: ["dublet", "ugyldig_linje"]}
    exp = B.expected_kontakter(list(B.KONTAKTER) + [B.KONTAKTER[2]])
    exp["contact_id"] = pd.array(list(range(1, n + 1)) + [n + 2], dtype="int64")
    assert_frame(read(res.out_dir, "kontakter"), exp)
    m = res.manifest["registers"]["kontakter"]
    assert (m["rows_read"], m["rows_accepted"], m["rows_quarantined"]) == (n + 5, n + 1, 4)
    assert dict(m["reasons"]) == {"dublet": 3, "ugyldig_linje": 2}


def test_parquet_duplicate_rows(tmp_path):
    import pyarrow as pa

    raw = B.write_parquet_dataset(tmp_path / "p")
    t = pq.read_table(raw / "kontakter.parquet")
    t = pa.concat_tables([t, t.slice(4, 1), t.slice(0, 1)])
    pq.write_table(t, raw / "kontakter.parquet")
    res = ingest(raw, tmp_path / "o")
    n = len(B.KONTAKTER)
    assert quarantine_map(res.out_dir, "kontakter") == {n + 2: ["dublet"], n + 3: ["dublet"]}
    assert_frame(read(res.out_dir, "kontakter"), B.expected_kontakter())


def test_wide_lines_of_every_split_path(tmp_path):
    """Wide lines without quotes, with whole-field quotes, and with quoted separators or
    escaped quotes (the RFC 4180 path) give the same weeks as the long layout written by
    Python's csv module; malformed and bad-code lines keep their raw fields in quarantine."""
    data = {"P001": {(2017, 50): "111", (2017, 51): "111", (2017, 52): "111"},
            "P002": {(2017, 50): "890", (2018, 1): "130", (2018, 2): "130", (2018, 3): "130"},
            "P,11": {(2018, 1): "651"},
            'P"12': {(2017, 50): "111"}}
    header, _ = B.ugestatus_wide(data)
    text = "\n".join([
        ",".join(header),
        "P001,111,111,111,,,",                        # no quotes
        '"P002","890",,,"130","130","130"',           # whole-field quotes
        '"P,11",,,,"651",,',                          # separator inside quotes
        '"P""12",111,,,,,',                           # escaped quote
        "P013,111,111",                               # too few fields
        '"P014","1,1",,,,,',                          # unknown code with a separator in it
    ]) + "\n"
    wide = B.write_dataset(tmp_path / "w", ugestatus=None)
    (wide / "ugestatus.csv").write_text(text, encoding="utf-8")
    long = B.write_dataset(tmp_path / "l", ugestatus="long", ugestatus_data=data)
    wo = ingest(wide, tmp_path / "ow").out_dir
    lo = ingest(long, tmp_path / "ol").out_dir
    assert_frame(read(wo, "ugestatus"), B.expected_ugestatus(data))
    for name in ("ugestatus.parquet", "ugestatus_personer.parquet"):
        assert (wo / name).read_bytes() == (lo / name).read_bytes(), name
    assert quarantine_map(wo, "ugestatus") == {6: ["ugyldig_linje"], 7: ["ukendt_ydelseskode"]}
    q = read(wo, "karantaene/ugestatus").set_index("source_line")
    assert q.loc[6, "person_id"] == "P013" and q.loc[6, "y_1750"] == "111"
    assert q.loc[6, "y_1751"] == "111" and q.loc[6, "y_1803"] is None
    assert q.loc[7, "person_id"] == "P014" and q.loc[7, "y_1750"] == "1,1"
    assert q.loc[7, "y_1751"] is None
