"""Build the outcome tables and panels from the canonical (processed) tables.

``build_outcomes`` registers the canonical Parquet files on an engine (DuckDB by default,
Spark optionally), runs the SQL steps of :mod:`evaluering.outcomes.sql` and
:mod:`evaluering.panels.sql` and writes, each file atomically:

``tid_til_job.parquet``, ``ressourcer.parquet``, ``eksponering.parquet``,
``panel_kvartal.parquet``, ``panel_maaned.parquet``, ``overlevelse.parquet``,
``kontakter_uden_forloeb.parquet`` and ``outcomes_manifest.json``.

See ``docs/outcomes.md`` for every definition.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import pyarrow as pa

from evaluering import contract
from evaluering._atomic import write_json
from evaluering.engine import Engine, make_engine
from evaluering.errors import InputError
from evaluering.outcomes import sql as osql
from evaluering.panels import sql as psql

OUTPUT_FILES = ("tid_til_job", "ressourcer", "eksponering", "panel_kvartal", "panel_maaned",
                "overlevelse", "kontakter_uden_forloeb")
MANIFEST_NAME = "outcomes_manifest.json"
SQL_VERSION = 1

_FORLOEB_OPTIONAL = {"herkomst": pa.string(), "uddannelse": pa.string()}

_KONTAKTER_SCHEMA = pa.schema([
    ("contact_id", pa.int64()), ("person_id", pa.string()), ("kommune_kode", pa.string()),
    ("dato", pa.date32()), ("type", pa.string()), ("kanal", pa.string()), ("attest", pa.string()),
    ("minutter", pa.float64()), ("udgift_kr", pa.float64()),
])


@dataclass(frozen=True)
class OutcomesResult:
    """What ``build_outcomes`` wrote: the folder, the files and the manifest's content."""

    out_dir: Path
    files: dict[str, Path]
    manifest: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers
def _load_forsoeg(forsoeg) -> tuple:
    if forsoeg is None:
        return ()
    if isinstance(forsoeg, (str, os.PathLike)):
        from evaluering.reference.catalogue import load_forsoeg

        return tuple(load_forsoeg(forsoeg))
    return tuple(forsoeg)


def _start_for(f, kode: str) -> dt.date | None:
    if hasattr(f, "start_for"):
        return f.start_for(kode)
    if kode not in f.kommuner:
        return None
    return dict(getattr(f, "start_pr_kommune", {}) or {}).get(kode, f.start)


def rolle_for(f, kode: str) -> str:
    """'behandlet' (in the trial), 'udelukket' (excluded from control) or 'kontrol'."""
    if kode in f.kommuner:
        return "behandlet"
    if kode in f.udeluk_fra_kontrol:
        return "udelukket"
    return "kontrol"


def forsoeg_tables(forsoeg: Sequence) -> dict[str, pa.Table]:
    """The catalogue as three small tables for the SQL steps."""
    from evaluering.reference import kommune_koder

    koder = sorted(set(kommune_koder()) | {k for f in forsoeg for k in f.kommuner})
    fk = {"forsoeg_id": [], "kommune_kode": [], "rolle": [], "kohorte_dato": []}
    fg = {"forsoeg_id": [], "ydelsesgruppe": [], "slut": []}
    for f in forsoeg:
        for k in koder:
            fk["forsoeg_id"].append(f.id)
            fk["kommune_kode"].append(k)
            fk["rolle"].append(rolle_for(f, k))
            fk["kohorte_dato"].append(_start_for(f, k))
        for g in f.maalgruppe:
            fg["forsoeg_id"].append(f.id)
            fg["ydelsesgruppe"].append(g)
            fg["slut"].append(f.slut)
    maal = sorted({g for f in forsoeg for g in f.maalgruppe})
    return {
        "forsoeg_kommuner": pa.table(fk, schema=pa.schema([
            ("forsoeg_id", pa.string()), ("kommune_kode", pa.string()), ("rolle", pa.string()),
            ("kohorte_dato", pa.date32())])),
        "forsoeg_grupper": pa.table(fg, schema=pa.schema([
            ("forsoeg_id", pa.string()), ("ydelsesgruppe", pa.string()), ("slut", pa.date32())])),
        "maalgrupper": pa.table({"ydelsesgruppe": maal}, schema=pa.schema([("ydelsesgruppe", pa.string())])),
    }


def read_week_range(processed: Path) -> tuple[int, int] | None:
    """The weekly register's observed range from ``ugestatus_range.json`` or ``manifest.json``."""
    rng = processed / "ugestatus_range.json"
    if rng.exists():
        d = json.loads(rng.read_text(encoding="utf-8"))
        d = d.get("ugestatus", d) if isinstance(d, dict) else d
        if "first_week" in d and "last_week" in d:
            return int(d["first_week"]), int(d["last_week"])
    man = processed / "manifest.json"
    if man.exists():
        d = json.loads(man.read_text(encoding="utf-8"))
        u = d.get("registers", {}).get("ugestatus", {})
        if u.get("first_week") is not None and u.get("last_week") is not None:
            return int(u["first_week"]), int(u["last_week"])
    return None


def period_calendar(periode: str, first_nr: int, last_nr: int, data_end: dt.date) -> pa.Table:
    """Periods ``first_nr..last_nr`` (year*12+month-1 or year*4+quarter-1) with observed days."""
    rows = {"periode_nr": [], "periode": [], "fra": [], "til": [], "dage": []}
    for nr in range(first_nr, last_nr + 1):
        if periode == "maaned":
            y, m0 = divmod(nr, 12)
            fra = dt.date(y, m0 + 1, 1)
            nxt = dt.date(y + (m0 + 1) // 12, (m0 + 1) % 12 + 1, 1)
            label = f"{y}-{m0 + 1:02d}"
        else:
            y, q0 = divmod(nr, 4)
            fra = dt.date(y, 3 * q0 + 1, 1)
            nxt = dt.date(y + (q0 + 1) // 4, (3 * (q0 + 1)) % 12 + 1, 1)
            label = f"{y}-Q{q0 + 1}"
        til = min(nxt - dt.timedelta(days=1), data_end)
        if til < fra:
            continue
        rows["periode_nr"].append(nr)
        rows["periode"].append(label)
        rows["fra"].append(fra)
        rows["til"].append(til)
        rows["dage"].append((til - fra).days + 1)
    return pa.table(rows, schema=pa.schema([
        ("periode_nr", pa.int32()), ("periode", pa.string()), ("fra", pa.date32()),
        ("til", pa.date32()), ("dage", pa.int32())]))


def _period_nr(d: dt.date, periode: str) -> int:
    return d.year * 12 + d.month - 1 if periode == "maaned" else d.year * 4 + (d.month - 1) // 3


# --------------------------------------------------------------------------- build
def run_steps(eng: Engine, processed: Path, forsoeg: Sequence = (), n_weeks: int = 4,
              window_end: dt.date | None = None, data_end: dt.date | None = None) -> dict[str, Any]:
    """Register the inputs and create every view on ``eng``; return the parameters used.

    After this, the views ``tid_til_job``, ``ressourcer``, ``eksponering``, ``panel_kvartal``,
    ``panel_maaned``, ``overlevelse`` and ``kontakter_uden_forloeb`` exist on the engine.
    """
    if n_weeks < 1:
        raise InputError(f"n_weeks must be >= 1, got {n_weeks}")
    fpath = processed / "forloeb.parquet"
    if not fpath.exists():
        raise InputError("the canonical spell table is missing (run `evaluering ingest` first)",
                         file=str(fpath))
    import pyarrow.parquet as pq

    fschema = pq.read_schema(fpath)
    missing_opt = [c for c in _FORLOEB_OPTIONAL if c not in fschema.names]
    if missing_opt:
        eng.register_parquet("forloeb_fil", fpath)
        extra = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in missing_opt)
        eng.create_view("forloeb", f"SELECT *, {extra} FROM forloeb_fil")
    else:
        eng.register_parquet("forloeb", fpath)

    kpath = processed / "kontakter.parquet"
    if kpath.exists():
        eng.register_parquet("kontakter", kpath)
    else:
        eng.register_frame("kontakter", _KONTAKTER_SCHEMA.empty_table())

    for name, tbl in forsoeg_tables(forsoeg).items():
        eng.register_frame(name, tbl)

    # data end: the latest date in the spell and contact registers (the draw date's proxy)
    if data_end is None:
        d = eng.fetch("SELECT MAX(GREATEST(start_dato, COALESCE(slut_dato, start_dato))) AS d FROM forloeb")
        data_end = d["d"].iloc[0]
        if kpath.exists():
            k = eng.fetch("SELECT MAX(dato) AS d FROM kontakter")["d"].iloc[0]
            if k is not None and not _isnull(k):
                data_end = max(_to_date(data_end), _to_date(k))
        if data_end is None or _isnull(data_end):
            raise InputError("the spell table has no rows", file=str(fpath))
        data_end = _to_date(data_end)
    if window_end is None and forsoeg:
        window_end = max(f.slut for f in forsoeg)
    obs_end = min(data_end, window_end) if window_end else data_end

    eng.create_view("sp", osql.spells_sql(), materialize=True)
    eng.create_view("eksponering", osql.exposure_sql(), materialize=True)
    eng.create_view("eks_spell", osql.exposure_per_spell_sql())

    upath, ppath = processed / "ugestatus.parquet", processed / "ugestatus_personer.parquet"
    params: dict[str, Any] = {"n_weeks": n_weeks, "data_slut": data_end, "vindue_slut": window_end}
    if upath.exists():
        if not ppath.exists():
            raise InputError("the weekly register has no person table", file=str(ppath),
                             expected="ugestatus_personer.parquet written by ingest")
        eng.register_parquet("ugestatus", upath)
        eng.register_parquet("ugestatus_personer", ppath)
        rng = read_week_range(processed)
        rng_source = "manifest"
        if rng is None:
            r = eng.fetch("SELECT MIN(uge) AS a, MAX(uge) AS b FROM ugestatus")
            if _isnull(r["a"].iloc[0]):
                raise InputError("the weekly register is empty and no observed range is recorded",
                                 file=str(upath))
            rng = (int(r["a"].iloc[0]), int(r["b"].iloc[0]))
            rng_source = "data (min/max uge)"
        first, last = rng
        last_use = last
        reason = "data_slut"
        if window_end is not None and contract.week_index_of_date(window_end) < last:
            last_use = contract.week_index_of_date(window_end)
            reason = "vindue_slut"
        eng.create_view("uw", osql.weekly_in_range_sql(first, last_use), materialize=True)
        eng.create_view("fri", osql.free_runs_sql(first, last_use, n_weeks), materialize=True)
        eng.create_view("ttj_raw", osql.time_to_job_weekly_sql(first, last_use, n_weeks, reason),
                        materialize=True)
        params.update(tid_til_job_kilde="ugestatus", first_week=first, last_week=last,
                      last_week_used=last_use, week_range_source=rng_source)
    else:
        last_use = contract.week_index_of_date(obs_end)
        reason = "vindue_slut" if window_end is not None and window_end < data_end else "data_slut"
        eng.create_view("ttj_raw", osql.time_to_job_spells_sql(last_use, reason), materialize=True)
        params.update(tid_til_job_kilde="forloeb", last_week_used=last_use)

    eng.create_view("tid_til_job", osql.time_to_job_sql(), materialize=True)
    eng.create_view("kt", osql.contact_assignment_sql(), materialize=True)
    eng.create_view("res_raw", osql.resources_raw_sql())
    eng.create_view("ressourcer", osql.resources_sql(obs_end, data_end), materialize=True)
    eng.create_view("kontakter_uden_forloeb", osql.contacts_outside_sql())

    # calendars and duration grid
    rng = eng.fetch("SELECT MIN(start_dato) AS a, MAX(COALESCE(varighed_uger, 0)) AS m FROM tid_til_job")
    first_start = _to_date(rng["a"].iloc[0])
    max_dur = int(rng["m"].iloc[0]) if not _isnull(rng["m"].iloc[0]) else 0
    for periode in psql.PERIODER:
        cal = period_calendar(periode, _period_nr(first_start, periode), _period_nr(data_end, periode),
                              data_end)
        eng.register_frame(f"perioder_{periode}", cal)
        eng.create_view(f"panel_{periode}", psql.panel_sql(periode, data_end))
    eng.register_frame("varigheder", pa.table({"uge": pa.array(range(max_dur + 1), pa.int32())}))
    eng.create_view("overlevelse", psql.survival_sql())
    params.update(obs_slut=obs_end, censur_ved_graense=reason)
    return params


def build_outcomes(processed_dir: str | os.PathLike, forsoeg=None, n_weeks: int = 4,
                   engine: str = "duckdb", memory_limit: str | None = None,
                   out_dir: str | os.PathLike | None = None, *,
                   window_end: dt.date | None = None, data_end: dt.date | None = None,
                   temp_dir: str | os.PathLike | None = None,
                   threads: int | None = None) -> OutcomesResult:
    """Compute every outcome per spell, the exposure, the panels and the survival table.

    Parameters
    ----------
    processed_dir:
        Folder with the canonical tables (``forloeb.parquet`` required; ``kontakter.parquet``,
        ``ugestatus.parquet`` + ``ugestatus_personer.parquet`` optional).
    forsoeg:
        A trial catalogue: a path to ``forsoeg.toml`` or a sequence of ``Forsoeg``. Used for
        exposure and the contact tie-break; its latest ``slut`` is the default window end.
    n_weeks:
        N, the length of the run of self-supporting weeks that defines a job (default 4).
    engine:
        ``"duckdb"`` (default) or ``"spark"`` (needs pyspark).
    memory_limit:
        Engine memory limit, e.g. ``"8GB"``; DuckDB spills to ``temp_dir`` beyond it.
    out_dir:
        Where to write (default: ``processed_dir``).
    window_end:
        End of the evaluation window (time to job is censored there); default: the latest
        ``slut`` of the catalogue, or none.
    data_end:
        The date the registers were drawn; default: the latest date in ``forloeb`` and
        ``kontakter``.
    """
    processed = Path(processed_dir)
    if not processed.is_dir():
        raise InputError("not a folder", file=str(processed))
    out = Path(out_dir) if out_dir is not None else processed
    fs = _load_forsoeg(forsoeg)
    t0 = time.perf_counter()
    eng = make_engine(engine, memory_limit=memory_limit, temp_dir=temp_dir, threads=threads)
    try:
        params = run_steps(eng, processed, fs, n_weeks=n_weeks, window_end=window_end,
                           data_end=data_end)
        files: dict[str, Path] = {}
        rows: dict[str, int] = {}
        order = {
            "tid_til_job": "ORDER BY spell_id",
            "ressourcer": "ORDER BY spell_id",
            "eksponering": "ORDER BY spell_id, forsoeg_id",
            "kontakter_uden_forloeb": "ORDER BY kommune_kode, type, kvartal",
        }
        for name in OUTPUT_FILES:
            target = out / f"{name}.parquet"
            rows[name] = eng.write_parquet(f"SELECT * FROM {name} {order.get(name, '')}", target)
            files[name] = target
        tally = eng.fetch("SELECT COUNT(*) AS n, COUNT(spell_id) AS i_forloeb FROM kt").iloc[0]
        n_spells = int(eng.fetch("SELECT COUNT(*) AS n FROM sp")["n"].iloc[0])
        status = eng.fetch("SELECT status, COALESCE(censur_aarsag, '') AS aarsag, COUNT(*) AS n "
                           "FROM tid_til_job GROUP BY status, COALESCE(censur_aarsag, '') "
                           "ORDER BY status, aarsag")
    finally:
        eng.close()
    manifest = {
        "sql_version": SQL_VERSION,
        "engine": engine,
        "n_uger_selvforsoergelse": n_weeks,
        "tid_til_job_kilde": params["tid_til_job_kilde"],
        "parametre": {k: v for k, v in params.items() if k not in ("tid_til_job_kilde",)},
        "forsoeg": [f.id for f in fs],
        "raekker": rows,
        "forloeb": n_spells,
        "kontakter": {"i_alt": int(tally["n"]), "i_forloeb": int(tally["i_forloeb"]),
                      "uden_forloeb": int(tally["n"]) - int(tally["i_forloeb"])},
        "tid_til_job_status": [
            {"status": r.status, "censur_aarsag": r.aarsag or None, "n": int(r.n)}
            for r in status.itertuples()],
        "sekunder": round(time.perf_counter() - t0, 3),
    }
    write_json(out / MANIFEST_NAME, manifest)
    files["manifest"] = out / MANIFEST_NAME
    return OutcomesResult(out_dir=out, files=files, manifest=manifest)


def _isnull(v) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return v is None


def _to_date(v) -> dt.date:
    import pandas as pd

    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return pd.Timestamp(v).date()
