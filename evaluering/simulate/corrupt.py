"""A deliberately corrupted copy of a simulated data set, with the ground truth of its errors.

``corrupt_copy(src, dst, seed)`` rewrites the registers of ``src`` as the awkward CSV files a
municipality might deliver — Windows-1252, ``;`` as separator, Danish dates (``01-07-2017`` and
``01.07.2017`` mixed), decimal commas, municipality codes with a leading zero (``0851``),
missing values written as empty, ``NA`` or ``.``, an extra text column with Danish letters —
and injects bad rows. Every bad row is listed in ``forventet_karantaene.csv`` (UTF-8):
``register, source_file, source_line`` (1-based; the header is line 1) and ``reasons``
(the data contract's reason codes, sorted, joined by ``|``), so an ingest can be checked row
by row. Good rows stay valid after the re-encoding: an ingest that follows the contract
must accept all of them and quarantine exactly the listed rows with exactly those reasons.

Injected errors (each several times, at random places): forloeb — CPR-shaped ``person_id``,
impossible date, unknown municipality, unknown ``ydelsesgruppe``, ``slut_dato`` before
``start_dato``, ``afgang`` without ``slut_dato``, missing ``koen``, ``foedselsaar`` outside
1900–2010 and not a number, an exact duplicate, an overlapping spell; kontakter — impossible
date, negative minutes, a cost that is not a number, unknown ``type``, ``kanal`` on a
certificate, unknown municipality, CPR-shaped id, missing date, an exact duplicate;
ugestatus (wide) — an unknown weekly code, a CPR-shaped id, a missing id, an exact duplicate.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from evaluering._atomic import atomic_dir
from evaluering.errors import InputError

__all__ = ["corrupt_copy", "GROUND_TRUTH_FILE"]

GROUND_TRUTH_FILE = "forventet_karantaene.csv"
_MISSING = np.array(["", "NA", "."], dtype=object)


def _read(src: Path, register: str) -> pd.DataFrame:
    pqf = src / f"{register}.parquet"
    if pqf.exists():
        return pd.read_parquet(pqf)
    for ext in (".csv", ".csv.gz"):
        f = src / f"{register}{ext}"
        if f.exists():
            return pd.read_csv(f, dtype=str, keep_default_na=False, na_values=[""])
    raise InputError(f"no {register} register in {src}", file=str(src))


def _fmt_dates(values: pd.Series, rng: np.random.Generator, missing: np.ndarray) -> np.ndarray:
    d = pd.to_datetime(values.astype("string"), format="%Y-%m-%d", errors="coerce")
    a = d.dt.strftime("%d-%m-%Y").to_numpy(dtype=object)
    b = d.dt.strftime("%d.%m.%Y").to_numpy(dtype=object)
    out = np.where(rng.random(len(values)) < 0.5, a, b)
    na = d.isna().to_numpy()
    out[na] = missing[na]
    return out


def _fmt_num(values: pd.Series, decimals: int, missing: np.ndarray) -> np.ndarray:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    out = np.array([f"{v:.{decimals}f}".replace(".", ",") if v == v else "" for v in x],
                   dtype=object)
    na = np.isnan(x)
    out[na] = missing[na]
    return out


def _text(values: pd.Series, missing: np.ndarray) -> np.ndarray:
    s = values.astype("string")
    out = s.fillna("").to_numpy(dtype=object)
    na = s.isna().to_numpy()
    out[na] = missing[na]
    return out


def _kode(values: pd.Series, rng) -> np.ndarray:
    s = values.astype(str).to_numpy(dtype=object)
    lead = rng.random(len(s)) < 0.2
    s[lead] = np.array(["0" + v for v in s[lead]], dtype=object)
    return s


class _Injector:
    """Collects good rows (DataFrame of text) and bad rows placed after given good rows."""

    def __init__(self, good: pd.DataFrame, rng: np.random.Generator):
        self.good = good.reset_index(drop=True)
        self.rng = rng
        self.bad: list[tuple[float, dict, list[str]]] = []
        self.used: set[int] = set()

    def pick(self, mask: np.ndarray | None = None) -> int:
        idx = np.arange(len(self.good)) if mask is None else np.nonzero(mask)[0]
        idx = np.array([i for i in idx if i not in self.used])
        if idx.size == 0:
            raise InputError("the source data set is too small to corrupt")
        i = int(self.rng.choice(idx))
        self.used.add(i)
        return i

    def add(self, after: int, row: dict, reasons: list[str]) -> None:
        self.bad.append((after + 0.5 + 1e-6 * len(self.bad), row, sorted(reasons)))

    def row(self, i: int) -> dict:
        return self.good.iloc[i].to_dict()

    def inject(self, reason: str, mask: np.ndarray | None = None, row=None, **changes) -> None:
        """One bad row with one reason: pick an unused good row (within ``mask``), copy it
        (``row(i)``, default: as it is), set ``changes`` (a value, or a function of the
        picked row's index) and place it after its source row."""
        i = self.pick(mask)
        r = (row or self.row)(i)
        for col, v in changes.items():
            r[col] = v(i) if callable(v) else v
        self.add(i, r, [reason])

    def result(self) -> tuple[pd.DataFrame, list[tuple[int, list[str]]]]:
        keys = np.concatenate([np.arange(len(self.good), dtype=float),
                               np.array([b[0] for b in self.bad], dtype=float)])
        rows = pd.concat([self.good, pd.DataFrame([b[1] for b in self.bad],
                                                  columns=self.good.columns)],
                         ignore_index=True)
        order = np.argsort(keys, kind="stable")
        rows = rows.iloc[order].reset_index(drop=True)
        pos = {k: i for i, k in enumerate(order)}
        n = len(self.good)
        truth = sorted((pos[n + j] + 2, b[2]) for j, b in enumerate(self.bad))
        return rows, truth


def _corrupt_forloeb(f: pd.DataFrame, rng, kommune_navn: dict) -> tuple[pd.DataFrame, list]:
    n = len(f)
    miss = rng.choice(_MISSING, n)
    g = pd.DataFrame({
        "person_id": f.person_id.astype(str).to_numpy(dtype=object),
        "kommune_kode": _kode(f.kommune_kode, rng),
        "ydelsesgruppe": f.ydelsesgruppe.astype(str).to_numpy(dtype=object),
        "start_dato": _fmt_dates(f.start_dato, rng, miss),
        "slut_dato": _fmt_dates(f.slut_dato, rng, miss),
        "afgang": _text(f.afgang, miss),
        "koen": f.koen.astype(str).to_numpy(dtype=object),
        "foedselsaar": f.foedselsaar.astype(str).to_numpy(dtype=object),
        "herkomst": _text(f.herkomst, miss),
        "uddannelse": _text(f.uddannelse, miss),
        "kommune_navn": f.kommune_kode.astype(str).map(kommune_navn).to_numpy(dtype=object),
    })
    inj = _Injector(g, rng)
    closed = f.slut_dato.notna().to_numpy()
    start = pd.to_datetime(f.start_dato.astype("string"))
    slut = pd.to_datetime(f.slut_dato.astype("string"))
    long_closed = closed & ((slut - start).dt.days >= 3).fillna(False).to_numpy()
    new_id = iter(f"Q{i:07d}" for i in range(1, 10**6))

    def base(i: int) -> dict:
        r = g.iloc[i].to_dict()
        r["person_id"] = next(new_id)
        return r

    for j in range(3):
        inj.inject("cpr_i_person_id", row=base, person_id=f"0101{90 + j:02d}-12{j:02d}")
        inj.inject("ugyldig_dato", row=base, start_dato="31-02-2018")
        inj.inject("ukendt_kommune", row=base, kommune_kode="999")
        inj.inject("ukendt_kategori", row=base, ydelsesgruppe="dagpenge")
        inj.inject("slut_foer_start", closed, base,
                   slut_dato=lambda i: (start[i] - pd.Timedelta(days=10)).strftime("%d-%m-%Y"))
        inj.inject("afgang_uden_slut", closed, base, slut_dato="", afgang="job")
        inj.inject("manglende_vaerdi", row=base, koen="")
        inj.inject("foedselsaar_uden_for_interval", row=base, foedselsaar="1850")
        inj.inject("ugyldigt_tal", row=base, foedselsaar="19x0")
        inj.inject("dublet")
        inj.inject("overlap", long_closed,
                   start_dato=lambda i: (start[i] + pd.Timedelta(days=1)).strftime("%d.%m.%Y"))
    return inj.result()


def _corrupt_kontakter(k: pd.DataFrame, rng) -> tuple[pd.DataFrame, list]:
    n = len(k)
    miss = rng.choice(_MISSING, n)
    g = pd.DataFrame({
        "person_id": k.person_id.astype(str).to_numpy(dtype=object),
        "kommune_kode": _kode(k.kommune_kode, rng),
        "dato": _fmt_dates(k.dato, rng, miss),
        "type": k["type"].astype(str).to_numpy(dtype=object),
        "kanal": _text(k.kanal, miss),
        "attest": _text(k.attest, miss),
        "minutter": _fmt_num(k.minutter, 1, miss),
        "udgift_kr": _fmt_num(k.udgift_kr, 2, miss),
    })
    inj = _Injector(g, rng)
    samtale = (k["type"] == "samtale").to_numpy()
    attest = (k["type"] == "laegeattest").to_numpy()
    for j in range(3):
        inj.inject("ugyldig_dato", dato="32.01.2019")
        inj.inject("negativt_tal", minutter="-5")
        inj.inject("ugyldigt_tal", udgift_kr="ca. 500")
        inj.inject("ukendt_kategori", samtale, type="moede")
        inj.inject("kanal_uden_samtale", attest, kanal="telefon")
        inj.inject("ukendt_kommune", kommune_kode="999")
        inj.inject("cpr_i_person_id", person_id=f"1506{78 + j}1234")
        inj.inject("manglende_vaerdi", dato="")
        inj.inject("dublet")
    return inj.result()


def _corrupt_ugestatus(u: pd.DataFrame, rng) -> tuple[pd.DataFrame, list]:
    g = u.astype("string").fillna("").astype(object)
    inj = _Injector(g, rng)
    weeks = [c for c in g.columns if c.startswith("y_")]
    for j in range(2):
        inj.inject("ukendt_ydelseskode", row=lambda i: {
            **inj.row(i), "person_id": f"Q{9_000_000 + j}",
            weeks[int(rng.integers(len(weeks)))]: "424242"})
        inj.inject("cpr_i_person_id", person_id=f"02038{5 + j}-4321")
        inj.inject("manglende_vaerdi", person_id="")
        inj.inject("dublet")
    return inj.result()


def corrupt_copy(src: str | os.PathLike, dst: str | os.PathLike, seed: int = 0) -> Path:
    """Write a corrupted CSV copy of data set ``src`` to ``dst`` (see the module docstring).

    Meant for test-sized data sets (it holds each register in memory as text).
    """
    from evaluering.reference import kommuner

    src, dst = Path(src), Path(dst)
    rng = np.random.default_rng([int(seed), 4242])
    navn = dict(zip(kommuner()["kode"], kommuner()["navn"]))
    truth_rows = []
    with atomic_dir(dst) as tmp:
        for reg, fn in (("forloeb", lambda d: _corrupt_forloeb(d, rng, navn)),
                        ("kontakter", lambda d: _corrupt_kontakter(d, rng)),
                        ("ugestatus", lambda d: _corrupt_ugestatus(d, rng))):
            try:
                data = _read(src, reg)
            except InputError:
                if reg == "forloeb":
                    raise
                continue
            rows, truth = fn(data)
            name = f"{reg}.csv"
            with open(tmp / name, "w", encoding="cp1252", newline="") as fh:
                rows.to_csv(fh, sep=";", index=False, lineterminator="\r\n")
            truth_rows += [(reg, name, line, "|".join(r)) for line, r in truth]
        pd.DataFrame(truth_rows, columns=["register", "source_file", "source_line",
                                          "reasons"]).to_csv(tmp / GROUND_TRUTH_FILE,
                                                             index=False)
        for extra in ("ydelseskoder.toml", "forsoeg.toml", "sandhed.json"):
            if (src / extra).exists():
                shutil.copyfile(src / extra, tmp / extra)
    return dst
