"""Statistics Denmark StatBank CSV exports → municipality × period panel.

Accepted without options: UTF-8 with or without BOM or Windows-1252 (detected: strict UTF-8
first, then cp1252, recorded in the result), separator ``;`` or ``,`` (from the header line),
English or Danish labels (``OMRÅDE``/``AREA``, ``TID``/``TIME``, ``INDHOLD``/``CONTENT``), ``TID``
as ``2017Q3`` / ``2017K3``, ``2017M07`` or ``2017``, decimal comma or point, and ``..`` (or
``.``) for confidential cells, which become missing with ``fortrolig = True``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evaluering.errors import InputError
from evaluering.public.labels import kommune_kode_for_label

_AREA = ("OMRÅDE", "OMRADE", "OMRAADE", "AREA", "REGION")
_TIME = ("TID", "TIME")
_VALUE = ("INDHOLD", "CONTENT", "VALUE")
_CONFIDENTIAL = {"..", ".", "...", ":"}


@dataclass(frozen=True)
class StatbankTable:
    """A parsed StatBank export.

    ``panel``: one row per municipality × period (kommune_kode, periode, periode_start,
    frekvens, vaerdi, fortrolig, plus the other dimension columns as they came).
    ``aggregates``: rows for the country and regions (not municipalities).
    """

    panel: pd.DataFrame
    aggregates: pd.DataFrame
    encoding: str
    separator: str
    sha256: str
    source: str
    dimensions: tuple[str, ...] = field(default_factory=tuple)


def _decode(raw: bytes, path: str) -> tuple[str, str]:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise InputError("cannot decode the file", file=path,
                         expected="UTF-8 (with or without BOM) or Windows-1252") from exc


def parse_period(label: str) -> tuple[str, pd.Timestamp, str]:
    """'2017Q3'/'2017K3' → ('2017Q3', 2017-07-01, 'Q'); '2017M07' → ('2017M07', ..., 'M'); '2017'."""
    s = str(label).strip().upper()
    m = re.fullmatch(r"(\d{4})[QK]([1-4])", s)
    if m:
        y, q = int(m.group(1)), int(m.group(2))
        return f"{y}Q{q}", pd.Timestamp(y, 3 * q - 2, 1), "Q"
    m = re.fullmatch(r"(\d{4})M(\d{2})", s)
    if m:
        y, mo = int(m.group(1)), int(m.group(2))
        if 1 <= mo <= 12:
            return f"{y}M{mo:02d}", pd.Timestamp(y, mo, 1), "M"
    m = re.fullmatch(r"(\d{4})", s)
    if m:
        return s, pd.Timestamp(int(s), 1, 1), "Y"
    raise ValueError(f"not a StatBank period: {label!r}")


def _number(text: str) -> float:
    t = text.strip().replace("\u00a0", "").replace(" ", "")
    if "," in t:
        t = t.replace(".", "").replace(",", ".")
    return float(t)


def _pick(columns: list[str], candidates: tuple[str, ...], path: str, what: str) -> str:
    upper = {c.upper().strip(): c for c in columns}
    for cand in candidates:
        if cand in upper:
            return upper[cand]
    raise InputError(f"no {what} column", file=path, column="/".join(candidates[:2]),
                     expected=f"one of {', '.join(candidates)}")


def read_statbank(path: str | Path) -> StatbankTable:
    """Read a StatBank CSV export into a municipality × period panel (see module docstring)."""
    path = Path(path)
    raw = path.read_bytes()
    text, encoding = _decode(raw, str(path))
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError("the file is empty", file=str(path), expected="a header line")
    header = lines[0]
    sep = ";" if header.count(";") >= header.count(",") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=sep))
    columns = [c.strip() for c in rows[0]]
    body = [r for r in rows[1:] if any(x.strip() for x in r)]
    if not body:
        raise InputError("no data rows", file=str(path), expected="at least one row")
    bad = [i + 2 for i, r in enumerate(body) if len(r) != len(columns)]
    if bad:
        raise InputError(f"rows with a wrong number of fields, first at line {bad[0]}", file=str(path),
                         expected=f"{len(columns)} fields separated by '{sep}'")
    df = pd.DataFrame(body, columns=columns)
    area = _pick(columns, _AREA, str(path), "area")
    tid = _pick(columns, _TIME, str(path), "time")
    val = _pick(columns, _VALUE, str(path), "value")

    periods = []
    for lab in df[tid]:
        try:
            periods.append(parse_period(lab))
        except ValueError as exc:
            raise InputError(str(exc), file=str(path), column=tid,
                             expected="periods like 2017Q3, 2017M07 or 2017") from None
    df["periode"] = [p[0] for p in periods]
    df["periode_start"] = [p[1] for p in periods]
    df["frekvens"] = [p[2] for p in periods]
    conf = df[val].str.strip().isin(_CONFIDENTIAL)
    values = np.full(len(df), np.nan)
    for i, (txt, c) in enumerate(zip(df[val], conf)):
        if c or not txt.strip():
            continue
        try:
            values[i] = _number(txt)
        except ValueError:
            raise InputError(f"not a number: {txt!r} at line {i + 2}", file=str(path), column=val,
                             expected="a number (decimal comma or point) or '..'") from None
    df["vaerdi"] = values
    df["fortrolig"] = conf.to_numpy()

    codes = []
    unknown = set()
    for lab in df[area]:
        try:
            codes.append(kommune_kode_for_label(lab))
        except KeyError:
            unknown.add(lab)
            codes.append(None)
    if unknown:
        raise InputError(f"unknown area label(s): {', '.join(sorted(unknown)[:5])}", file=str(path),
                         column=area, expected="a municipality, region or country label in the checked mapping")
    df["kommune_kode"] = codes
    dims = tuple(c for c in columns if c not in (area, tid, val))
    keep = ["kommune_kode", area, "periode", "periode_start", "frekvens", "vaerdi", "fortrolig", *dims]
    is_muni = df["kommune_kode"].notna()
    panel = df.loc[is_muni, keep].rename(columns={area: "omraade"})
    panel = panel.sort_values(["kommune_kode", "periode_start", *dims], kind="stable").reset_index(drop=True)
    key = ["kommune_kode", "periode", *dims]
    dup = panel.duplicated(key)
    if dup.any():
        raise InputError("the same municipality and period appear twice", file=str(path),
                         expected="one row per area × period (× other dimensions)")
    aggregates = df.loc[~is_muni, keep].rename(columns={area: "omraade"}).reset_index(drop=True)
    return StatbankTable(panel=panel, aggregates=aggregates, encoding=encoding, separator=sep,
                         sha256=hashlib.sha256(raw).hexdigest(), source=path.name, dimensions=dims)
