"""Property-based ingest tests: random row corruptions never crash ingest, never lose a row
(read = accepted + quarantined = the number of non-blank data lines written) and never let
a CPR number into any written byte."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings, strategies as st

from evaluering import contract
from evaluering.ingest import PSEUDONYM_ENV, ingest
from ingest_fixtures import builders as B

TEXT_ALPHABET = "abcxyzÆØÅæøå€0123456789-.,;:\"' _/"


@st.composite
def cprs(draw):
    day = draw(st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2029, 12, 31)))
    tail = draw(st.integers(0, 9999))
    sep = draw(st.sampled_from(["", "-"]))
    return f"{day:%d%m%y}{sep}{tail:04d}"


VALUES = st.one_of(
    st.sampled_from(["", "NA", ".", "  ", "2017-02-30", "31.12.1899", "01-13-2017", "-5", "-0,5",
                     "999", "0999", "1e400", "nan", "samtale", "brev", "2017-W53", "555", '"',
                     '""', "x;y", "x,y", "1.234,5", "12345678901"]),
    st.text(alphabet=TEXT_ALPHABET, max_size=12),
    cprs(),
)

OPS = st.sampled_from(["set", "set", "set", "cpr_pid", "drop_field", "add_field", "dup_line",
                       "blank_line", "junk_line", "swap", "quote"])


def corrupt(lines: list[str], sep: str, draw) -> tuple[list[str], list[str]]:
    """Apply random corruptions to data lines (index >= 1); returns (lines, injected CPRs)."""
    injected = []
    for _ in range(draw(st.integers(1, 6))):
        op = draw(OPS)
        i = draw(st.integers(1, len(lines) - 1))
        fields = lines[i].split(sep)
        if op == "set":
            v = draw(VALUES)
            j = draw(st.integers(0, max(len(fields) - 1, 0)))
            fields[j] = v
            lines[i] = sep.join(fields)
            injected.append(v)
        elif op == "cpr_pid":
            v = draw(cprs())
            fields[0] = v
            lines[i] = sep.join(fields)
            injected.append(v)
        elif op == "drop_field" and len(fields) > 1:
            del fields[draw(st.integers(0, len(fields) - 1))]
            lines[i] = sep.join(fields)
        elif op == "add_field":
            fields.insert(draw(st.integers(0, len(fields))), draw(VALUES))
            lines[i] = sep.join(fields)
        elif op == "dup_line":
            lines.insert(i, lines[i])
        elif op == "blank_line":
            lines.insert(i, draw(st.sampled_from(["", " ", "\t"])))
        elif op == "junk_line":
            v = draw(st.text(alphabet=TEXT_ALPHABET, min_size=1, max_size=30))
            lines.insert(i, v)
            injected.append(v)
        elif op == "swap":
            k = draw(st.integers(1, len(lines) - 1))
            lines[i], lines[k] = lines[k], lines[i]
        elif op == "quote":
            j = draw(st.integers(0, len(fields) - 1))
            fields[j] = '"' + fields[j].replace('"', '""') + '"'
            lines[i] = sep.join(fields)
    return lines, injected


def _written_text(out: Path) -> str:
    parts = []
    for p in sorted(out.rglob("*")):
        if p.is_file():
            parts.append(p.read_bytes().decode("latin-1"))
            if p.suffix == ".parquet":
                parts.append(pq.read_table(p).to_pandas().astype(str).to_csv())
    return "\n".join(parts)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_corruptions_never_crash_lose_rows_or_leak_cpr(data):
    dialect = data.draw(st.sampled_from([B.PLAIN, B.DANISH]))
    layout = data.draw(st.sampled_from(["long", "wide"]))
    with tempfile.TemporaryDirectory() as tmp:
        raw = B.write_dataset(Path(tmp) / "raw", dialect, ugestatus=layout)
        injected_all = []
        expected_rows = {}
        for reg in ("forloeb", "kontakter", "ugestatus"):
            path = raw / f"{reg}.csv"
            lines = path.read_bytes().decode(dialect.encoding).split(dialect.newline)[:-1]
            lines, injected = corrupt(lines, dialect.sep, data.draw)
            injected_all += injected
            path.write_bytes((dialect.newline.join(lines) + dialect.newline).encode(dialect.encoding))
            expected_rows[reg] = sum(1 for ln in lines[1:] if ln.strip(" \t"))
        key = data.draw(st.sampled_from([None, "k"]))
        prior = os.environ.pop(PSEUDONYM_ENV, None)
        if key:
            os.environ[PSEUDONYM_ENV] = key
        try:
            res = ingest(raw, Path(tmp) / "out")
        finally:
            os.environ.pop(PSEUDONYM_ENV, None)
            if prior is not None:
                os.environ[PSEUDONYM_ENV] = prior
        for reg, n in expected_rows.items():
            m = res.manifest["registers"][reg]
            assert m["rows_read"] == n
            assert m["rows_read"] == m["rows_accepted"] + m["rows_quarantined"]
            q = pq.read_table(res.out_dir / "karantaene" / f"{reg}.parquet").to_pandas()
            assert len(q) == m["rows_quarantined"]
            assert q["source_line"].is_unique
            for reasons in q["reasons"]:
                assert len(reasons) > 0 and set(reasons) <= set(contract.REASONS)
            main = pq.read_table(res.out_dir / f"{reg if reg != 'ugestatus' else 'ugestatus_personer'}.parquet")
            if reg != "ugestatus":
                assert main.num_rows == m["rows_accepted"]
        text = _written_text(res.out_dir)
        from evaluering.ingest import is_cpr

        for v in injected_all:
            if is_cpr(v):
                assert v not in text and v.replace("-", "") not in text, v
