"""``ingest``: validate a raw data set into canonical Parquet tables, with quarantine.

Phase 1 (nothing written outside a private temporary folder): find and inspect every file
(checksums, encoding, separator, header, required columns), read the TOML configuration,
load the registers into a DuckDB work database, compute every row's reasons and reconcile
the counts. Any file-level problem raises :class:`~evaluering.errors.InputError` here.

Phase 2: stream the accepted rows, the quarantined rows and the manifest into a temporary
sibling of the output folder and swap it in atomically (:func:`evaluering._atomic.atomic_dir`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from evaluering import __version__, contract
from evaluering._atomic import atomic_dir, write_json
from evaluering.errors import InputError
from evaluering.ingest import _config, _registers, _source
from evaluering.ingest._cpr import mask_text, pseudonym_key, pseudonymise
from evaluering.ingest._sql import lit, macros, q

log = logging.getLogger("evaluering.ingest")

ROW_GROUP = 1 << 20
MANIFEST_VERSION = 1

FORLOEB_SCHEMA = [("spell_id", pa.int64()), ("person_id", pa.string()),
                  ("kommune_kode", pa.string()), ("ydelsesgruppe", pa.string()),
                  ("start_dato", pa.date32()), ("slut_dato", pa.date32()),
                  ("afgang", pa.string()), ("koen", pa.string()), ("foedselsaar", pa.int16()),
                  ("herkomst", pa.string()), ("uddannelse", pa.string())]
KONTAKTER_SCHEMA = [("contact_id", pa.int64()), ("person_id", pa.string()),
                    ("kommune_kode", pa.string()), ("dato", pa.date32()), ("type", pa.string()),
                    ("kanal", pa.string()), ("attest", pa.string()),
                    ("minutter", pa.float64()), ("udgift_kr", pa.float64())]
UGESTATUS_SCHEMA = pa.schema([("person_id", pa.string()), ("uge", pa.int32()),
                              ("ydelseskode", pa.string()), ("kategori", pa.string())])
PERSONER_SCHEMA = pa.schema([("person_id", pa.string())])
_EXTRA_ARROW = {"BIGINT": pa.int64(), "DOUBLE": pa.float64(), "VARCHAR": pa.string()}


@dataclass(frozen=True)
class IngestResult:
    """What :func:`ingest` wrote: the output folder, its tables and the manifest."""

    out_dir: Path
    manifest: Mapping[str, Any]
    tables: Mapping[str, Path] = field(default_factory=dict)
    quarantine: Mapping[str, Path] = field(default_factory=dict)

    def summary(self):
        """The reconciliation per register as a DataFrame (read = accepted + quarantined)."""
        import pandas as pd

        rows = []
        for reg, m in self.manifest["registers"].items():
            rows.append({"register": reg, "rows_read": m["rows_read"],
                         "rows_accepted": m["rows_accepted"],
                         "rows_quarantined": m["rows_quarantined"],
                         "reasons": ", ".join(f"{k}={v}" for k, v in m["reasons"].items())})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "manifest": _plain(self.manifest),
                "tables": {k: str(v) for k, v in self.tables.items()},
                "quarantine": {k: str(v) for k, v in self.quarantine.items()}}


def _plain(obj):
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _freeze(obj):
    if isinstance(obj, dict):
        return MappingProxyType({k: _freeze(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return tuple(_freeze(v) for v in obj)
    return obj


def default_out_dir(data_dir: Path) -> Path:
    return Path("data") / "processed" / data_dir.resolve().name


def ingest(data_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
           koder: str | os.PathLike | None = None, memory_limit: str | None = None, *,
           threads: int | None = None, work_dir: str | os.PathLike | None = None,
           progress: Callable[[str], None] | None = None) -> IngestResult:
    """Validate the raw registers in ``data_dir`` into canonical tables in ``out_dir``.

    Parameters
    ----------
    data_dir : folder with ``forloeb`` (required), ``kontakter`` and ``ugestatus`` (optional)
        as ``.parquet``, ``.csv`` or ``.csv.gz``; ``ydelseskoder.toml`` (needed with
        ``ugestatus``) and ``forsoeg.toml`` (optional, copied).
    out_dir : output folder; default ``data/processed/<name of data_dir>`` (relative to the
        working directory). Replaced atomically.
    koder : code mapping to use instead of ``data_dir/ydelseskoder.toml``.
    memory_limit : DuckDB memory limit, e.g. ``"4GB"`` (default: DuckDB's own).
    threads : DuckDB threads (default: DuckDB's own).
    work_dir : where the private temporary work folder is made (default: the system's temp
        folder, ``TMPDIR``). It holds the DuckDB work database, spill files and transcoded
        copies of Windows-1252 files; it is created mode 0700 and always removed.
    progress : called with short progress messages (never person data).

    Raises
    ------
    InputError
        a file-level problem (nothing is written).
    """
    say = progress or (lambda msg: log.info(msg))
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError("not a folder", file=str(data_dir), expected="a data-set folder")
    out = Path(out_dir) if out_dir is not None else default_out_dir(data_dir)
    _check_out_dir(data_dir, out)

    # ---- configuration and file discovery (no DuckDB yet) ---------------------------------
    files = {r: _source.find_register(data_dir, r) for r in contract.REGISTERS}
    for r in contract.REQUIRED_REGISTERS:
        if files[r] is None:
            raise InputError(f"required register '{r}' is missing", file=str(data_dir / r),
                             expected="one of " + ", ".join(r + e for e in _source.EXTENSIONS))
    koder_path = Path(koder) if koder is not None else data_dir / _config.KODER_FILE
    if koder is not None and not koder_path.is_file():
        raise InputError("file not found", file=str(koder_path), expected="a ydelseskoder.toml")
    koder_map = _config.load_koder(koder_path) if koder_path.is_file() else None
    if files["ugestatus"] is not None and koder_map is None:
        raise InputError("the weekly register needs a code mapping", file=str(koder_path),
                         expected=f"{_config.KODER_FILE} with a [koder] table in the data "
                                  "folder, or --koder FILE")
    forsoeg_path = data_dir / _config.FORSOEG_FILE
    if forsoeg_path.is_file():
        _config.check_forsoeg(forsoeg_path)
    key = pseudonym_key()

    work = Path(tempfile.mkdtemp(prefix="evaluering-ingest-", dir=work_dir))
    os.chmod(work, 0o700)
    con = None
    try:
        # an in-memory work database: no checkpoints or compression of intermediate tables;
        # above the memory limit DuckDB evicts its blocks to the spill folder (out of core)
        con = duckdb.connect(":memory:")
        con.execute(f"SET temp_directory = {lit(str(work / 'spill'))}")
        if memory_limit:
            try:
                con.execute(f"SET memory_limit = {lit(memory_limit)}")
            except duckdb.Error as exc:
                raise InputError(f"not a valid memory limit: {exc}", column="--memory-limit",
                                 expected="a size such as 4GB") from None
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.execute("SET preserve_insertion_order = true")
        for m in macros():
            con.execute(m)
        if koder_map is not None:
            con.register("_koder_arrow", pa.table({"code": list(koder_map),
                                                   "kategori": list(koder_map.values())}))
            con.execute("CREATE TABLE _koder AS SELECT * FROM _koder_arrow")
            con.unregister("_koder_arrow")

        # ---- inspect every file first (all file-level errors before heavy work) ------------
        sources: dict[str, _source.SourceFile] = {}
        layouts: dict[str, _registers.Layout] = {}
        for r, path in files.items():
            if path is None:
                continue
            say(f"{r}: inspecting {path.name}")
            src = (_source.inspect_parquet(con, r, path) if path.name.endswith(".parquet")
                   else _source.inspect_csv(r, path, work))
            _source.check_header(src)
            sources[r] = src
            layouts[r] = _registers.make_layout(src)

        # ---- load and normalise ----------------------------------------------------------
        stats: dict[str, dict[str, Any]] = {}
        for r, src in sources.items():
            say(f"{r}: reading")
            _source.load_rows(con, src)
            _registers.build_cols(con, layouts[r], src)
            n = con.execute(f"SELECT count(*) FROM cols_{r}").fetchall()[0][0]
            if n == 0:
                raise InputError("no rows", file=str(src.path),
                                 expected="at least one data row below the header")
            _registers.infer_extra_types(con, layouts[r])
            stats[r] = {"rows_read": n}

        # ---- pseudonymisation (one mapping for every register) ---------------------------
        replaced = {r: 0 for r in sources}
        if key is not None:
            union = " UNION ".join(
                f"SELECT replace(person_id, '-', '') AS cpr FROM cols_{r} WHERE is_cpr(person_id)"
                for r in sources)
            cprs = [row[0] for row in con.execute(f"SELECT DISTINCT cpr FROM ({union}) ORDER BY cpr").fetchall()]
            if cprs:
                tbl = pa.table({"cpr": cprs, "pseudo": [pseudonymise(c, key) for c in cprs]})
                con.register("_cpr_arrow", tbl)
                con.execute("CREATE TEMP TABLE _cpr_map AS SELECT * FROM _cpr_arrow")
                con.unregister("_cpr_arrow")
                del cprs, tbl
                for r in sources:
                    replaced[r] = con.execute(
                        f"SELECT count(*) FROM cols_{r} WHERE is_cpr(person_id)").fetchall()[0][0]
                    con.execute(f"""
                        UPDATE cols_{r} SET person_id = m.pseudo FROM _cpr_map m
                        WHERE is_cpr(cols_{r}.person_id)
                          AND replace(cols_{r}.person_id, '-', '') = m.cpr""")

        # ---- validation ------------------------------------------------------------------
        for r in sources:
            say(f"{r}: validating")
            _registers.build_chk(con, layouts[r], koder_map)
            if r == "forloeb":
                _registers.flag_overlaps(con)
            if r == "ugestatus":
                _registers.flag_week_conflicts(con, layouts[r])

        registers_manifest: dict[str, Any] = {}
        for r, src in sources.items():
            registers_manifest[r] = _register_manifest(con, src, layouts[r], stats[r],
                                                       replaced[r], key is not None)

        # ---- phase 2: write ----------------------------------------------------------------
        say(f"writing {out}")
        tables: dict[str, Path] = {}
        quarantine: dict[str, Path] = {}
        with atomic_dir(out) as tmp:
            (tmp / "karantaene").mkdir()
            written: dict[str, int] = {}
            for r, src in sources.items():
                lay = layouts[r]
                m = registers_manifest[r]
                for name, sql, schema in _accepted_queries(r, lay):
                    n = _write_query(con, sql, tmp / name, schema)
                    written[name] = n
                    tables[name.removesuffix(".parquet")] = out / name
                qsql, qschema = _quarantine_query(r, src, lay)
                nq = _write_query(con, qsql, tmp / "karantaene" / f"{r}.parquet", qschema)
                quarantine[r] = out / "karantaene" / f"{r}.parquet"
                n_main = written[f"{r}.parquet"]
                m["tables"] = {k: v for k, v in written.items()
                               if k.startswith(r)}
                if nq != m["rows_quarantined"]:
                    raise RuntimeError(f"{r}: wrote {nq} quarantined rows, counted "
                                       f"{m['rows_quarantined']}")
                if r != "ugestatus" and n_main != m["rows_accepted"]:
                    raise RuntimeError(f"{r}: wrote {n_main} rows, counted {m['rows_accepted']}")
            if "ugestatus" in sources:
                rng = registers_manifest["ugestatus"]
                write_json(tmp / "ugestatus_range.json",
                           {k: rng[k] for k in ("first_week", "last_week",
                                                "first_week_iso", "last_week_iso")})
            config: dict[str, Any] = {}
            if koder_map is not None:
                shutil.copyfile(koder_path, tmp / _config.KODER_FILE)
                config[_config.KODER_FILE] = {"source": koder_path.name,
                                              "sha256": _source.sha256_file(koder_path),
                                              "codes": len(koder_map)}
            if forsoeg_path.is_file():
                shutil.copyfile(forsoeg_path, tmp / _config.FORSOEG_FILE)
                config[_config.FORSOEG_FILE] = {"source": forsoeg_path.name,
                                                "sha256": _source.sha256_file(forsoeg_path)}
            manifest = {
                "manifest_version": MANIFEST_VERSION,
                "toolkit": {"name": "evaluering", "version": __version__,
                            "duckdb": duckdb.__version__, "pyarrow": pa.__version__},
                "data_set": mask_text(data_dir.resolve().name),
                "registers": registers_manifest,
                "config": config,
                "pseudonymisation": {"key_set": key is not None,
                                     "method": "HMAC-SHA256(key, 10-digit CPR), hex"
                                     if key is not None else None,
                                     "person_ids_replaced": {r: replaced[r] for r in sources}},
                "time_to_job_source": "ugestatus" if "ugestatus" in sources else "forloeb",
            }
            _reconcile(manifest)
            write_json(tmp / "manifest.json", manifest)
        say("done")
        return IngestResult(out_dir=out, manifest=_freeze(manifest),
                            tables=MappingProxyType(tables),
                            quarantine=MappingProxyType(quarantine))
    finally:
        if con is not None:
            con.close()
        shutil.rmtree(work, ignore_errors=True)


def _check_out_dir(data_dir: Path, out: Path) -> None:
    """The output folder is replaced as a whole: refuse one that holds the input or that
    exists with content but is not an earlier ingest output (no manifest.json)."""
    d, o = data_dir.resolve(), out.resolve()
    if o == d or d.is_relative_to(o):
        raise InputError("the output folder would replace the input data", file=str(out),
                         expected="an output folder outside the data-set folder")
    if o.exists() and (not o.is_dir() or (any(o.iterdir()) and not (o / "manifest.json").is_file())):
        raise InputError("exists and is not an earlier ingest output (no manifest.json); "
                         "it would be replaced", file=str(out),
                         expected="a new or empty folder, or an earlier ingest output")


def _reconcile(manifest: dict) -> None:
    for r, m in manifest["registers"].items():
        if m["rows_read"] != m["rows_accepted"] + m["rows_quarantined"]:
            raise RuntimeError(f"{r}: rows read {m['rows_read']} != accepted "
                               f"{m['rows_accepted']} + quarantined {m['rows_quarantined']}")


def _register_manifest(con, src, lay, stats, replaced, key_set) -> dict[str, Any]:
    r = src.register
    acc, quar, total = con.execute(f"""SELECT count(*) FILTER (WHERE len(_reasons) = 0),
                                              count(*) FILTER (WHERE len(_reasons) > 0), count(*)
                                       FROM chk_{r}""").fetchall()[0]
    if total != stats["rows_read"] or total != acc + quar:
        raise RuntimeError(f"{r}: rows read {stats['rows_read']}, checked {total}, "
                           f"accepted {acc} + quarantined {quar}")
    reasons = dict(con.execute(f"""SELECT x, count(*) FROM (SELECT unnest(_reasons) AS x
                                  FROM chk_{r}) GROUP BY x ORDER BY x""").fetchall())
    dialect: dict[str, Any] = {"format": src.format, "encoding": src.encoding,
                               "separator": src.separator}
    if lay.layout == "wide":
        dialect["layout"] = "wide"
    elif r == "ugestatus":
        dialect["layout"] = "long"
    date_cols = {"forloeb": ["start_dato", "slut_dato"], "kontakter": ["dato"]}.get(r, [])
    if date_cols:
        # the format of each distinct value (far fewer than rows)
        union = " UNION ".join(f"SELECT date_fmt(v) AS f FROM (SELECT DISTINCT {q(c)} AS v FROM chk_{r})"
                               for c in date_cols)
        dialect["date_formats"] = [x[0] for x in con.execute(
            f"SELECT DISTINCT f FROM ({union}) WHERE f IS NOT NULL ORDER BY f").fetchall()]
    num_cols = ([c for c in ("minutter", "udgift_kr") if r == "kontakter"]
                + [c for c, t in lay.extra_types.items() if t == "DOUBLE"])
    if num_cols:
        # t_<c> = pnum(<c>) is already in chk: count the values that parsed
        union = " UNION ALL ".join(f"SELECT {q(c)} AS v, {q('t_' + c)} AS t FROM chk_{r}"
                                   for c in num_cols)
        comma, point = con.execute(f"""SELECT count(*) FILTER (WHERE contains(v, ',')),
                                              count(*) FILTER (WHERE contains(v, '.'))
                                       FROM ({union}) WHERE t IS NOT NULL""").fetchall()[0]
        dialect["decimal"] = ("mixed" if comma and point else "comma" if comma
                              else "point" if point else None)
    m: dict[str, Any] = {
        "files": {src.path.name: src.sha256},
        "dialect": dialect,
        "rows_read": int(stats["rows_read"]),
        "rows_accepted": int(acc),
        "rows_quarantined": int(quar),
        "reasons": {k: int(v) for k, v in reasons.items()},
        "columns": list(lay.columns),
        "extra_columns": dict(lay.extra_types),
        "ignored_columns": list(lay.ignored),
    }
    if key_set:
        m["person_ids_pseudonymised"] = int(replaced)
    if r == "ugestatus":
        if lay.layout == "wide":
            weeks = [w for _, _, w in lay.wide_cols]
            first, last = (min(weeks), max(weeks)) if weeks else (None, None)
        else:
            first, last = con.execute("SELECT min(t_uge), max(t_uge) FROM chk_ugestatus "
                                      "WHERE len(_reasons) = 0").fetchall()[0]
        m["first_week"] = None if first is None else int(first)
        m["last_week"] = None if last is None else int(last)
        m["first_week_iso"] = None if first is None else _iso(first)
        m["last_week_iso"] = None if last is None else _iso(last)
    return m


def _iso(index: int) -> str:
    y, w, _ = contract.week_monday(int(index)).isocalendar()
    return f"{y}-W{w:02d}"


def _accepted_queries(r: str, lay) -> list[tuple[str, str, pa.Schema]]:
    ok = "len(_reasons) = 0"
    if r in ("forloeb", "kontakter"):
        base = FORLOEB_SCHEMA if r == "forloeb" else KONTAKTER_SCHEMA
        idname = base[0][0]
        typed = {"start_dato", "slut_dato", "kommune_kode", "foedselsaar", "dato",
                 "minutter", "udgift_kr"}
        items = [f"_row AS {idname}"]
        for name, _ in base[1:]:
            items.append(f"{q('t_' + name) if name in typed else q(name)} AS {q(name)}")
        fields = list(base)
        for c, t in lay.extra_types.items():
            items.append(f"{q('t_' + c) if t != 'VARCHAR' else q(c)} AS {q(c)}")
            fields.append((c, _EXTRA_ARROW[t]))
        sql = f"SELECT {', '.join(items)} FROM chk_{r} WHERE {ok} ORDER BY _row"
        return [(f"{r}.parquet", sql, pa.schema(fields))]
    # ugestatus
    if lay.layout == "long":
        weeks = f"""SELECT c.person_id, c.t_uge AS uge, c.ydelseskode, k.kategori
                    FROM chk_ugestatus c JOIN _koder k ON c.ydelseskode = k.code
                    WHERE {ok} AND c.ydelseskode IS NOT NULL"""
    else:
        weeks = f"""SELECT c.person_id, w.uge, w.code AS ydelseskode, k.kategori
                    FROM chk_ugestatus c JOIN wcells_ugestatus w ON c._row = w._row
                    JOIN _koder k ON w.code = k.code
                    WHERE {ok}"""
    return [("ugestatus.parquet", f"{weeks} ORDER BY person_id, uge", UGESTATUS_SCHEMA),
            ("ugestatus_personer.parquet",
             f"SELECT DISTINCT person_id FROM chk_ugestatus WHERE {ok} ORDER BY person_id",
             PERSONER_SCHEMA)]


def _quarantine_query(r: str, src, lay) -> tuple[str, pa.Schema]:
    """Quarantined rows as text, every value masked if it holds a CPR-shaped number."""
    fields = []
    quarantined = f"chk_{r} WHERE len(_reasons) > 0"
    if lay.layout == "wide":
        # the raw fields of the (few) quarantined lines, split again from the kept lines
        names = ["person_id"] + [n for n, _, _ in lay.wide_cols]
        pos = "[" + ", ".join(str(i) for _, i, _ in lay.wide_cols) + "]"
        values = f"list_prepend(c.person_id, list_transform(list_select(w._f, {pos}), lambda x: nz(x)))"
        quarantined = (f"(SELECT _line, _reasons, person_id FROM chk_{r} WHERE len(_reasons) > 0) c "
                       f"JOIN (SELECT _line, _f FROM rows_{r} WHERE _line IN "
                       f"(SELECT _line FROM chk_{r} WHERE len(_reasons) > 0)) w USING (_line)")
    else:
        names = list(lay.present)
        values = "[" + ", ".join(q(c) for c in names) + "]::VARCHAR[]"
    items = [f"_m[{k}] AS {q(n)}" for k, n in enumerate(names, start=1)]
    fields = [(n, pa.string()) for n in names]
    items += [f"{lit(src.path.name)} AS source_file", "_line AS source_line",
              "_reasons AS reasons"]
    fields += [("source_file", pa.string()), ("source_line", pa.int64()),
               ("reasons", pa.list_(pa.string()))]
    sql = (f"SELECT {', '.join(items)} FROM (SELECT _line, _reasons, "
           f"list_transform({values}, lambda x: mask(x)) AS _m FROM {quarantined}) "
           f"ORDER BY _line")
    return sql, pa.schema(fields)


def _write_query(con, sql: str, path: Path, schema: pa.Schema) -> int:
    """Stream a query into Parquet with fixed row groups (deterministic bytes)."""
    reader = con.sql(sql).to_arrow_reader(65536)
    n = 0
    pending: list[pa.Table] = []
    pending_rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in reader:
            if batch.num_rows == 0:
                continue
            t = pa.Table.from_batches([batch]).rename_columns(schema.names).cast(schema)
            pending.append(t)
            pending_rows += t.num_rows
            while pending_rows >= ROW_GROUP:
                big = pa.concat_tables(pending)
                writer.write_table(big.slice(0, ROW_GROUP), row_group_size=ROW_GROUP)
                rest = big.slice(ROW_GROUP)
                pending, pending_rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
                n += ROW_GROUP
        if pending_rows:
            writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP)
            n += pending_rows
    return n
