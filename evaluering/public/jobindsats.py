"""Jobindsats JSON exports → municipality × period panel.

STAR's Jobindsats API returns ``[{"Variables": [...], "Data": [[...], ...]}]``: ``Variables``
names the columns (as strings or objects with a ``Name``/``Label`` key), each ``Data`` row holds
the values in that order. The area column is matched by name (``Område``/``Area``/``kommune``),
the period by ``Periode``/``Period``/``Tid`` (``2019M07``, ``2019QMAT``-free values such as
``2019Q3`` or ``2019``). Only recorded exports are read: the toolkit never calls the live API.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from evaluering.errors import InputError
from evaluering.public.labels import kommune_kode_for_label
from evaluering.public.statbank import _number, parse_period

_AREA = ("område", "omraade", "area", "kommune", "municipality")
_PERIOD = ("periode", "period", "tid", "time")


def _var_name(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        for key in ("Name", "name", "Label", "label", "Id", "id"):
            if key in v:
                return str(v[key])
    raise ValueError(f"cannot name variable {v!r}")


def read_jobindsats(path: str | Path) -> pd.DataFrame:
    """Read a recorded Jobindsats JSON export; returns a long municipality × period panel.

    Columns: kommune_kode, omraade, periode, periode_start, frekvens, the other dimension
    columns, and one ``vaerdi`` per measure in ``maal`` (long format). Confidential values
    (``..``, ``-`` or null) become NaN with ``fortrolig = True``.
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not valid JSON: {exc}", file=str(path),
                         expected='[{"Variables": [...], "Data": [[...]]}]') from None
    if isinstance(doc, dict):
        doc = [doc]
    frames = []
    for block in doc:
        if not isinstance(block, dict) or "Variables" not in block or "Data" not in block:
            raise InputError("a block without Variables/Data", file=str(path),
                             expected='[{"Variables": [...], "Data": [[...]]}]')
        names = [_var_name(v) for v in block["Variables"]]
        rows = block["Data"]
        if any(len(r) != len(names) for r in rows):
            raise InputError("a Data row does not match Variables", file=str(path),
                             expected=f"{len(names)} values per row")
        frames.append(pd.DataFrame(rows, columns=names))
    if not frames or all(f.empty for f in frames):
        raise InputError("no data rows", file=str(path), expected="at least one Data row")
    df = pd.concat(frames, ignore_index=True)
    lower = {c.lower(): c for c in df.columns}
    area = next((lower[a] for a in _AREA if a in lower), None)
    per = next((lower[a] for a in _PERIOD if a in lower), None)
    if area is None or per is None:
        raise InputError("no area or period variable", file=str(path), column="Område/Periode",
                         expected="variables naming the area and the period")
    dims = [c for c in df.columns if c not in (area, per)]
    # measures: the columns whose values are numeric (or confidential marks) in every row
    def numeric(col: pd.Series) -> bool:
        for v in col:
            if v is None or (isinstance(v, str) and v.strip() in ("..", "-", "")):
                continue
            if isinstance(v, (int, float)):
                continue
            try:
                _number(str(v))
            except ValueError:
                return False
        return True
    measures = [c for c in dims if numeric(df[c])]
    keys = [c for c in dims if c not in measures]
    long = df.melt(id_vars=[area, per, *keys], value_vars=measures, var_name="maal", value_name="raw")
    vals = np.full(len(long), np.nan)
    conf = np.zeros(len(long), dtype=bool)
    for i, v in enumerate(long["raw"]):
        if v is None or (isinstance(v, str) and v.strip() in ("..", "-", "")):
            conf[i] = True
        else:
            vals[i] = float(v) if isinstance(v, (int, float)) else _number(str(v))
    long["vaerdi"], long["fortrolig"] = vals, conf
    parsed = [parse_period(p) for p in long[per]]
    long["periode"] = [p[0] for p in parsed]
    long["periode_start"] = [p[1] for p in parsed]
    long["frekvens"] = [p[2] for p in parsed]
    codes = []
    for lab in long[area]:
        try:
            codes.append(kommune_kode_for_label(lab))
        except KeyError:
            raise InputError(f"unknown area label {lab!r}", file=str(path), column=area,
                             expected="a municipality label in the checked mapping") from None
    long["kommune_kode"] = codes
    out = long[long["kommune_kode"].notna()].rename(columns={area: "omraade"})
    out = out[["kommune_kode", "omraade", "periode", "periode_start", "frekvens", *keys, "maal",
               "vaerdi", "fortrolig"]]
    out.attrs["sha256"] = hashlib.sha256(raw).hexdigest()
    return out.sort_values(["kommune_kode", "periode_start", *keys, "maal"], kind="stable").reset_index(drop=True)
