"""The catalogue of known schemes (``ordninger.toml``) and the trial catalogue loader.

Two things live here:

* :func:`load_ordninger` — the built-in catalogue of free-municipality schemes
  (Frikommuneforsøg I, the North Jutland and North Zealand networks of Frikommuneforsøg II,
  the four free municipalities on the employment area from 2023), with municipalities,
  periods, application rounds, known trials, sources and the facts marked unverified.
* :func:`load_forsoeg` — the loader of a trial catalogue in the data contract's
  ``forsoeg.toml`` format (``[[forsoeg]]`` tables), validated and returned as frozen
  :class:`Forsoeg` objects.

Defaults supplied by the scheme catalogue
-----------------------------------------
When a ``[[forsoeg]]`` table's ``ordning`` names a scheme of the catalogue (by its ``id``,
its ``navn`` or one of its ``aliaser``, case-insensitively), exactly these keys may be
omitted and are filled from the scheme:

* ``kommuner`` → the scheme's municipalities;
* ``udeluk_fra_kontrol`` → the scheme's ``udeluk_fra_kontrol`` (for the North Jutland network:
  the nine North Zealand municipalities), minus the trial's own municipalities;
* ``start`` → the start of application round ``runde`` when the table gives the (optional,
  non-contract) key ``runde = 1|2|3``, otherwise the scheme's start;
* ``slut`` → the scheme's ``evaluering_slut`` (North Jutland: 2019-12-31, the end of the clean
  post-period before the national break of 2020-01-01).

``id``, ``navn``, ``maalgruppe`` and ``udfald`` are always required, and so are ``start``,
``slut`` and ``kommuner`` when ``ordning`` is not a catalogue scheme (it is then kept as free
text). ``udeluk_fra_kontrol`` otherwise defaults to empty. The shorthand outcome
``tid_til_job`` is expanded to the five time-to-job outcome ids. An optional
``[forsoeg.beskrivelse]`` table of free texts (``baggrund``, ``formaal``, ...) is kept for the
report. Any other key in a ``[[forsoeg]]`` table is an error (a misspelt
``udeluk_fra_kontrol`` must not silently change a control group); top-level keys other than
``forsoeg`` are ignored.

Validation raises :class:`~evaluering.errors.InputError` naming the file, the trial and the
key: unknown municipality codes, unknown ydelsesgrupper in ``maalgruppe``, unknown outcome ids,
dates that do not parse, ``slut`` before ``start``, a ``start_pr_kommune`` municipality that
is not in ``kommuner``, a start after ``slut``, duplicate trial ids.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from evaluering import contract
from evaluering.errors import InputError
from evaluering.reference import kommune_koder

__all__ = [
    "Forsoeg", "Ordning", "Runde", "KendtForsoeg", "load_forsoeg", "parse_forsoeg",
    "load_ordninger", "find_ordning", "kontrol_kommuner", "forsoeg_nordjylland_path",
]

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_ALLOWED_KEYS = {"id", "navn", "ordning", "maalgruppe", "start", "slut", "kommuner", "udfald",
                 "udeluk_fra_kontrol", "start_pr_kommune", "runde", "beskrivelse"}


# --------------------------------------------------------------------------- data classes
@dataclass(frozen=True)
class Runde:
    """An application round of a scheme."""

    nr: int
    start: dt.date


@dataclass(frozen=True)
class KendtForsoeg:
    """A trial known to have run under a scheme (``verificeret = False``: facts unconfirmed)."""

    id: str
    navn: str
    runde: int | None
    maalgruppe: tuple[str, ...]
    kommuner: tuple[str, ...]          # empty = all the scheme's municipalities (unconfirmed)
    verificeret: bool
    note: str


@dataclass(frozen=True)
class Ordning:
    """A free-municipality scheme of the built-in catalogue."""

    id: str
    navn: str
    aliaser: tuple[str, ...]
    kommuner: tuple[str, ...]
    beskaeftigelse_kommuner: tuple[str, ...]   # municipalities with employment trials
    start: dt.date
    slut: dt.date
    forlaenget_til: dt.date | None
    evaluering_slut: dt.date
    udeluk_fra_kontrol: tuple[str, ...]
    runder: tuple[Runde, ...]
    kendte_forsoeg: tuple[KendtForsoeg, ...]
    kilder: tuple[str, ...]
    uverificeret: tuple[str, ...]
    note: str

    def runde_start(self, nr: int) -> dt.date | None:
        for r in self.runder:
            if r.nr == nr:
                return r.start
        return None

    def matches(self, name: str) -> bool:
        key = _norm_name(name)
        return key in {_norm_name(self.id), _norm_name(self.navn),
                       *(_norm_name(a) for a in self.aliaser)}


@dataclass(frozen=True)
class Forsoeg:
    """One trial of a trial catalogue (``forsoeg.toml``), validated, with defaults filled."""

    id: str
    navn: str
    ordning: str
    maalgruppe: tuple[str, ...]          # ydelsesgrupper
    start: dt.date                       # default start
    slut: dt.date                        # end of evaluation window
    kommuner: tuple[str, ...]            # 3-digit codes
    udfald: tuple[str, ...]              # outcome ids, shorthand tid_til_job expanded
    udeluk_fra_kontrol: tuple[str, ...]
    start_pr_kommune: Mapping[str, dt.date] = field(default_factory=lambda: MappingProxyType({}))
    beskrivelse: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __hash__(self) -> int:  # the mappings are read-only views: hash their items
        return hash((self.id, self.navn, self.ordning, self.maalgruppe, self.start, self.slut,
                     self.kommuner, self.udfald, self.udeluk_fra_kontrol,
                     tuple(sorted(self.start_pr_kommune.items())),
                     tuple(sorted(self.beskrivelse.items()))))

    def start_for(self, kode: str) -> dt.date | None:
        """The trial's start in municipality ``kode`` (``None`` if it is not in the trial)."""
        k = contract.normalise_kommune_kode(kode) or str(kode)
        if k not in self.kommuner:
            return None
        return self.start_pr_kommune.get(k, self.start)

    def kontrol_kommuner(self) -> tuple[str, ...]:
        """All 98 municipalities minus the trial's own minus ``udeluk_fra_kontrol`` (sorted)."""
        return kontrol_kommuner(self)

    def eksponeret(self, kode: str, ydelsesgruppe: str, start_dato: dt.date) -> bool:
        """A spell is exposed when its municipality is in the trial, its group is in the
        target group and it starts on or after that municipality's start date."""
        s = self.start_for(kode)
        return s is not None and ydelsesgruppe in self.maalgruppe and start_dato >= s


def kontrol_kommuner(f: Forsoeg) -> tuple[str, ...]:
    """Control municipalities of trial ``f``: the 98 minus ``kommuner`` minus excluded."""
    out = kommune_koder() - set(f.kommuner) - set(f.udeluk_fra_kontrol)
    return tuple(sorted(out))


# --------------------------------------------------------------------------- helpers
def _norm_name(s: str) -> str:
    s = str(s).strip().casefold()
    for a, b in (("ø", "oe"), ("æ", "ae"), ("å", "aa"), ("é", "e"), ("–", "-"), ("—", "-")):
        s = s.replace(a, b)
    return re.sub(r"\s+", " ", s)


def _date(value: Any, *, file: str, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        v = value.strip()
        for fmt in ("%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
            try:
                return dt.datetime.strptime(v, fmt).date()
            except ValueError:
                continue
    raise InputError(f"{where}: '{value}' is not a date", file=file,
                     expected="an ISO date such as 2017-07-01")


def _str_list(value: Any, *, file: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) for v in value):
        raise InputError(f"{where}: expected a list of texts, got {value!r}", file=file)
    return [str(v) for v in value]


def _kommuner(value: Any, *, file: str, where: str) -> tuple[str, ...]:
    known = kommune_koder()
    out: list[str] = []
    for v in _str_list(value, file=file, where=where):
        k = contract.normalise_kommune_kode(v)
        if k is None or k not in known:
            raise InputError(f"{where}: unknown municipality code '{v}'", file=file,
                             expected="one of the 98 3-digit municipality codes")
        if k not in out:
            out.append(k)
    return tuple(out)


# --------------------------------------------------------------------------- schemes
def _ordninger_path():
    return resources.files("evaluering.reference").joinpath("ordninger.toml")


def forsoeg_nordjylland_path() -> Path:
    """Path of the packaged trial catalogue for the simulated North Jutland trials."""
    return Path(str(resources.files("evaluering.reference").joinpath("forsoeg_nordjylland.toml")))


@lru_cache(maxsize=1)
def load_ordninger() -> tuple[Ordning, ...]:
    """The built-in scheme catalogue (``evaluering/reference/ordninger.toml``)."""
    src = "ordninger.toml"
    with _ordninger_path().open("rb") as fh:
        data = tomllib.load(fh)
    out = []
    for o in data["ordning"]:
        where = f"ordning '{o['id']}'"
        runder = tuple(Runde(int(r["nr"]), _date(r["start"], file=src, where=where))
                       for r in o.get("runde", []))
        kendte = tuple(
            KendtForsoeg(
                id=k["id"], navn=k["navn"], runde=k.get("runde"),
                maalgruppe=tuple(k.get("maalgruppe", ())),
                kommuner=_kommuner(k.get("kommuner", []), file=src, where=where),
                verificeret=bool(k.get("verificeret", False)), note=k.get("note", ""))
            for k in o.get("kendt_forsoeg", []))
        fl = o.get("forlaenget_til")
        out.append(Ordning(
            id=o["id"], navn=o["navn"], aliaser=tuple(o.get("aliaser", ())),
            kommuner=_kommuner(o["kommuner"], file=src, where=where),
            beskaeftigelse_kommuner=_kommuner(o.get("beskaeftigelse_kommuner", o["kommuner"]),
                                              file=src, where=where),
            start=_date(o["start"], file=src, where=where),
            slut=_date(o["slut"], file=src, where=where),
            forlaenget_til=_date(fl, file=src, where=where) if fl is not None else None,
            evaluering_slut=_date(o["evaluering_slut"], file=src, where=where),
            udeluk_fra_kontrol=_kommuner(o.get("udeluk_fra_kontrol", []), file=src, where=where),
            runder=runder, kendte_forsoeg=kendte, kilder=tuple(o.get("kilder", ())),
            uverificeret=tuple(o.get("uverificeret", ())), note=o.get("note", "")))
    return tuple(out)


def find_ordning(name: str) -> Ordning | None:
    """The catalogue scheme named ``name`` (id, navn or alias; case-insensitive) or None."""
    for o in load_ordninger():
        if o.matches(name):
            return o
    return None


# --------------------------------------------------------------------------- trials
def load_forsoeg(path: str | os.PathLike) -> tuple[Forsoeg, ...]:
    """Load and validate a trial catalogue (``forsoeg.toml``); see the module docstring."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the trial catalogue: {exc.strerror}", file=str(p)) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError("the trial catalogue is not UTF-8", file=str(p)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", file=str(p)) from exc
    return parse_forsoeg(data, source=str(p))


def parse_forsoeg(data: Mapping[str, Any], *, source: str = "forsoeg.toml") -> tuple[Forsoeg, ...]:
    """Validate an already parsed trial catalogue (the dict of a ``forsoeg.toml``)."""
    tables = data.get("forsoeg")
    if not isinstance(tables, list) or not tables:
        raise InputError("no [[forsoeg]] tables", file=source,
                         expected="at least one [[forsoeg]] table")
    seen: set[str] = set()
    out = []
    for i, t in enumerate(tables):
        f = _parse_one(t, i, source)
        if f.id in seen:
            raise InputError(f"forsoeg '{f.id}' key 'id': duplicate trial id", file=source)
        seen.add(f.id)
        out.append(f)
    return tuple(out)


def _parse_one(t: Mapping[str, Any], i: int, file: str) -> Forsoeg:
    if not isinstance(t, Mapping):
        raise InputError(f"forsoeg[{i}] is not a table", file=file)
    tid = t.get("id")
    label = f"forsoeg[{i}]" if not isinstance(tid, str) else f"forsoeg '{tid}'"

    def where(key: str) -> str:
        return f"{label} key '{key}'"

    unknown = sorted(set(t) - _ALLOWED_KEYS)
    if unknown:
        raise InputError(f"{where(unknown[0])}: unknown key", file=file,
                         expected="one of " + ", ".join(sorted(_ALLOWED_KEYS)))
    for key in ("id", "navn", "maalgruppe", "udfald"):
        if key not in t:
            raise InputError(f"{where(key)}: missing", file=file)
    if not isinstance(tid, str) or not _ID_RE.match(tid):
        raise InputError(f"{where('id')}: '{tid}' is not a valid id", file=file,
                         expected="lower-case letters, digits, '-' or '_'")
    navn = t["navn"]
    if not isinstance(navn, str) or not navn.strip():
        raise InputError(f"{where('navn')}: must be a non-empty text", file=file)

    ordning_name = t.get("ordning", "")
    if not isinstance(ordning_name, str):
        raise InputError(f"{where('ordning')}: must be a text", file=file)
    ordning = find_ordning(ordning_name) if ordning_name else None

    maalgruppe = tuple(_str_list(t["maalgruppe"], file=file, where=where("maalgruppe")))
    if not maalgruppe:
        raise InputError(f"{where('maalgruppe')}: empty", file=file)
    for g in maalgruppe:
        if g not in contract.YDELSESGRUPPER:
            raise InputError(f"{where('maalgruppe')}: unknown ydelsesgruppe '{g}'", file=file,
                             expected="one of " + ", ".join(contract.YDELSESGRUPPER))

    udfald: list[str] = []
    for u in _str_list(t["udfald"], file=file, where=where("udfald")):
        if u in contract.OUTCOME_SHORTHANDS:
            ids = contract.OUTCOME_SHORTHANDS[u]
        elif u in contract.OUTCOME_IDS:
            ids = (u,)
        else:
            raise InputError(f"{where('udfald')}: unknown outcome id '{u}'", file=file,
                             expected="one of " + ", ".join(
                                 (*contract.OUTCOME_SHORTHANDS, *contract.OUTCOME_IDS)))
        udfald.extend(x for x in ids if x not in udfald)
    if not udfald:
        raise InputError(f"{where('udfald')}: empty", file=file)

    # kommuner
    if "kommuner" in t:
        kommuner = _kommuner(t["kommuner"], file=file, where=where("kommuner"))
    elif ordning is not None:
        kommuner = ordning.kommuner
    else:
        raise InputError(f"{where('kommuner')}: missing (ordning '{ordning_name}' is not in "
                         "the scheme catalogue, so there is no default)", file=file)
    if not kommuner:
        raise InputError(f"{where('kommuner')}: empty", file=file)

    # start
    runde = t.get("runde")
    if runde is not None and (not isinstance(runde, int) or ordning is None
                              or ordning.runde_start(runde) is None):
        raise InputError(f"{where('runde')}: unknown round {runde!r} for ordning "
                         f"'{ordning_name}'", file=file)
    if "start" in t:
        start = _date(t["start"], file=file, where=where("start"))
    elif runde is not None:
        start = ordning.runde_start(runde)  # type: ignore[union-attr]
    elif ordning is not None:
        start = ordning.start
    else:
        raise InputError(f"{where('start')}: missing", file=file)

    # slut
    if "slut" in t:
        slut = _date(t["slut"], file=file, where=where("slut"))
    elif ordning is not None:
        slut = ordning.evaluering_slut
    else:
        raise InputError(f"{where('slut')}: missing", file=file)
    if slut < start:
        raise InputError(f"{where('slut')}: {slut} is before start {start}", file=file)

    # udeluk_fra_kontrol
    if "udeluk_fra_kontrol" in t:
        udeluk = _kommuner(t["udeluk_fra_kontrol"], file=file, where=where("udeluk_fra_kontrol"))
    elif ordning is not None:
        udeluk = tuple(k for k in ordning.udeluk_fra_kontrol if k not in kommuner)
    else:
        udeluk = ()

    # start_pr_kommune
    spk_raw = t.get("start_pr_kommune", {})
    if not isinstance(spk_raw, Mapping):
        raise InputError(f"{where('start_pr_kommune')}: must be a table", file=file)
    spk: dict[str, dt.date] = {}
    for k_raw, d_raw in spk_raw.items():
        k = contract.normalise_kommune_kode(k_raw)
        w = f"{label} key 'start_pr_kommune.{k_raw}'"
        if k is None or k not in kommune_koder():
            raise InputError(f"{w}: unknown municipality code '{k_raw}'", file=file,
                             expected="one of the 98 3-digit municipality codes")
        if k not in kommuner:
            raise InputError(f"{w}: municipality {k} is not in the trial's kommuner", file=file)
        d = _date(d_raw, file=file, where=w)
        if d > slut:
            raise InputError(f"{w}: start {d} is after slut {slut}", file=file)
        spk[k] = d

    besk_raw = t.get("beskrivelse", {})
    if not isinstance(besk_raw, Mapping) or not all(isinstance(v, str) for v in besk_raw.values()):
        raise InputError(f"{where('beskrivelse')}: must be a table of texts", file=file)

    return Forsoeg(
        id=tid, navn=navn.strip(), ordning=ordning_name, maalgruppe=maalgruppe, start=start,
        slut=slut, kommuner=kommuner, udfald=tuple(udfald), udeluk_fra_kontrol=udeluk,
        start_pr_kommune=MappingProxyType(dict(sorted(spk.items()))),
        beskrivelse=MappingProxyType(dict(besk_raw)))
