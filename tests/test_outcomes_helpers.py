"""Builders of canonical (processed) tables by hand, shared by the outcome/panel tests.

No tests here: the module only writes small canonical tables into a folder, in exactly the
layout of the data contract (see evaluering/contract.py), so that the outcome tests do not
depend on ingest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evaluering import contract
from evaluering.reference import kommune_koder

D = dt.date
FORLOEB_SCHEMA = pa.schema([
    ("spell_id", pa.int64()), ("person_id", pa.string()), ("kommune_kode", pa.string()),
    ("ydelsesgruppe", pa.string()), ("start_dato", pa.date32()), ("slut_dato", pa.date32()),
    ("afgang", pa.string()), ("koen", pa.string()), ("foedselsaar", pa.int16()),
    ("herkomst", pa.string()), ("uddannelse", pa.string()),
])
KONTAKTER_SCHEMA = pa.schema([
    ("contact_id", pa.int64()), ("person_id", pa.string()), ("kommune_kode", pa.string()),
    ("dato", pa.date32()), ("type", pa.string()), ("kanal", pa.string()), ("attest", pa.string()),
    ("minutter", pa.float64()), ("udgift_kr", pa.float64()),
])
UGE_SCHEMA = pa.schema([("person_id", pa.string()), ("uge", pa.int32()),
                        ("ydelseskode", pa.string()), ("kategori", pa.string())])


@dataclasses.dataclass(frozen=True)
class FakeForsoeg:
    """Same fields and methods as evaluering.reference.catalogue.Forsoeg (test stand-in)."""

    id: str
    navn: str
    ordning: str
    maalgruppe: tuple[str, ...]
    start: dt.date
    slut: dt.date
    kommuner: tuple[str, ...]
    udfald: tuple[str, ...] = ()
    udeluk_fra_kontrol: tuple[str, ...] = ()
    start_pr_kommune: Mapping[str, dt.date] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}))

    def start_for(self, kode: str) -> dt.date | None:
        if kode not in self.kommuner:
            return None
        return self.start_pr_kommune.get(kode, self.start)

    def kontrol_kommuner(self) -> tuple[str, ...]:
        return tuple(sorted(kommune_koder() - set(self.kommuner) - set(self.udeluk_fra_kontrol)))


def spell(spell_id, person_id, kommune, gruppe, start, slut=None, afgang=None, koen="K",
          foedselsaar=1980, herkomst="dansk", uddannelse=None) -> dict:
    return dict(spell_id=spell_id, person_id=person_id, kommune_kode=kommune, ydelsesgruppe=gruppe,
                start_dato=start, slut_dato=slut, afgang=afgang, koen=koen,
                foedselsaar=foedselsaar, herkomst=herkomst, uddannelse=uddannelse)


def weeks(person_id: str, first: int, last: int, kategori: str = "a-dagpenge") -> list[dict]:
    """Weekly rows for weeks first..last inclusive (week indices)."""
    return [dict(person_id=person_id, uge=u, ydelseskode="x", kategori=kategori)
            for u in range(first, last + 1)]


def write_canonical(folder: Path, forloeb: list[dict] | pd.DataFrame,
                    kontakter: list[dict] | pd.DataFrame | None = None,
                    ugestatus: list[dict] | pd.DataFrame | None = None,
                    personer: list[str] | None = None,
                    week_range: tuple[int, int] | None = None) -> Path:
    """Write canonical tables into ``folder``; ugestatus_personer defaults to the persons in
    ``ugestatus``; the range goes to ugestatus_range.json."""
    folder.mkdir(parents=True, exist_ok=True)
    f = pd.DataFrame(forloeb)
    pq.write_table(pa.Table.from_pandas(f, schema=FORLOEB_SCHEMA, preserve_index=False),
                   folder / "forloeb.parquet")
    if kontakter is not None:
        k = pd.DataFrame(kontakter, columns=KONTAKTER_SCHEMA.names)
        pq.write_table(pa.Table.from_pandas(k, schema=KONTAKTER_SCHEMA, preserve_index=False),
                       folder / "kontakter.parquet")
    if ugestatus is not None:
        u = pd.DataFrame(ugestatus, columns=UGE_SCHEMA.names)
        pq.write_table(pa.Table.from_pandas(u, schema=UGE_SCHEMA, preserve_index=False),
                       folder / "ugestatus.parquet")
        pers = sorted(set(u["person_id"])) if personer is None else sorted(set(personer))
        pq.write_table(pa.table({"person_id": pa.array(pers, pa.string())}),
                       folder / "ugestatus_personer.parquet")
        if week_range is not None:
            (folder / "ugestatus_range.json").write_text(
                json.dumps({"first_week": week_range[0], "last_week": week_range[1]}))
    return folder


def random_registers(folder: Path, n_persons: int = 300, seed: int = 1,
                     start: dt.date = D(2016, 1, 4), end: dt.date = D(2019, 12, 29),
                     hazard: Mapping[str, float] | None = None,
                     kommuner=("851", "860", "101", "201", "461"),
                     grupper=("a-dagpenge", "kontanthjaelp", "sygedagpenge")) -> dict:
    """A random but structurally complete register set (spells, contacts, weekly register).

    Each person has 1-3 spells; during a spell the person is on benefit every week until a
    job week drawn from a geometric distribution with the municipality's weekly ``hazard``
    (default 0.06), after which the person is self-supporting (unless a later spell starts).
    Some persons exit to SU, emigrate or are absent from the weekly register. Contacts fall
    inside and outside spells. Returns the parameters used.
    """
    rng = np.random.default_rng(seed)
    hazard = dict(hazard or {})
    first_w, last_w = contract.week_index_of_date(start), contract.week_index_of_date(end)
    spells, weekly, contacts, personer = [], [], [], []
    sid, cid = 0, 0
    for p in range(n_persons):
        pid = f"p{p:05d}"
        kom = kommuner[rng.integers(len(kommuner))]
        h = hazard.get(kom, 0.06)
        in_reg = rng.random() > 0.03
        if in_reg:
            personer.append(pid)
        t = first_w + int(rng.integers(0, 120))
        for _ in range(int(rng.integers(1, 4))):
            if t > last_w - 2:
                break
            if rng.random() < 0.1:  # the person moves
                kom = kommuner[rng.integers(len(kommuner))]
                h = hazard.get(kom, 0.06)
            gruppe = grupper[rng.integers(len(grupper))]
            dur = int(rng.geometric(h))  # benefit weeks t .. t+dur-1, job week t+dur
            sid += 1
            sdate = contract.week_monday(t) + dt.timedelta(days=int(rng.integers(0, 7)))
            kind = rng.random()
            end_w = t + dur - 1
            afgang = "job"
            if kind < 0.06:
                afgang = "uddannelse"
            elif kind < 0.09:
                afgang = "doed_udvandret"
            elif kind < 0.12:
                afgang = "pension"
            slut = max(contract.week_monday(end_w) + dt.timedelta(days=4), sdate)
            if slut > end:
                slut, afg = None, None
            else:
                afg = afgang
            spells.append(spell(sid, pid, kom, gruppe, sdate, slut, afg,
                                koen="K" if rng.random() < 0.5 else "M",
                                foedselsaar=int(rng.integers(1955, 2000)),
                                herkomst=[None, "dansk", "vestlig", "ikke_vestlig"][rng.integers(4)],
                                uddannelse=[None, "grundskole", "gymnasial"][rng.integers(3)]))
            if in_reg:
                weekly += weeks(pid, t, min(end_w, last_w), gruppe)
                if afgang in ("uddannelse", "doed_udvandret", "pension") and end_w + 1 <= last_w:
                    cat = {"uddannelse": "su"}.get(afgang, afgang)
                    weekly += weeks(pid, end_w + 1, min(end_w + int(rng.integers(1, 30)), last_w), cat)
            for _c in range(int(rng.poisson(4))):
                cid += 1
                day = sdate + dt.timedelta(days=int(rng.integers(-20, 7 * dur + 40)))
                typ = ["samtale", "samtale", "laegeattest", "rehabiliteringsteam", "tilbud"][rng.integers(5)]
                contacts.append(dict(
                    contact_id=cid, person_id=pid,
                    kommune_kode=kom if rng.random() < 0.9 else kommuner[0], dato=min(day, end), type=typ,
                    kanal=(["fysisk", "telefon", "video", "digital", None][rng.integers(5)]
                           if typ == "samtale" else None),
                    attest=(["LÆ 285", "LAE265", "lae125", "X1"][rng.integers(4)] if typ == "laegeattest" else None),
                    minutter=(float(rng.integers(10, 90)) if rng.random() < 0.8 else None),
                    udgift_kr=(float(rng.integers(0, 2000)) if typ == "laegeattest" else None)))
            if afgang in ("doed_udvandret", "pension"):
                break
            t = t + dur + int(rng.integers(2, 60))
    # drop weekly duplicates (a new spell may start while still on benefit in the old)
    wk = pd.DataFrame(weekly, columns=UGE_SCHEMA.names).drop_duplicates(["person_id", "uge"])
    write_canonical(folder, spells, contacts, wk, personer=personer, week_range=(first_w, last_w))
    return {"first_week": first_w, "last_week": last_w, "n_spells": len(spells),
            "n_contacts": len(contacts)}
