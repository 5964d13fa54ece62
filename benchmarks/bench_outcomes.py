"""Benchmark: outcomes + panels (DuckDB) on simulated registers, time and peak memory.

    .venv/bin/python benchmarks/bench_outcomes.py --scale medium [--pandas] [--memory-limit 10GB]

Per scale: simulate (``evaluering.simulate``) and ingest once into ``--workdir`` (kept for
re-runs), then run ``build_outcomes`` in a child process and record its wall time and peak
RSS (``ru_maxrss`` of the child: DuckDB's memory is inside the process). With ``--pandas``
the time-to-job table is also computed by the straightforward pandas/Python reference
implementation of ``tests/test_outcomes_reference.py`` (a week-by-week loop per spell) and
compared row for row. Appends a Markdown section to ``benchmarks/results/outcomes.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "outcomes.md"


def _child(processed: str, out: str, memory_limit: str | None, forsoeg: str | None) -> None:
    from evaluering.outcomes import build_outcomes

    t0 = time.perf_counter()
    r = build_outcomes(processed, forsoeg=forsoeg, memory_limit=memory_limit, out_dir=out)
    secs = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": secs, "peak_rss_gib": peak_kib / 1024 ** 2,
                      "rows": r.manifest["raekker"], "spells": r.manifest["forloeb"],
                      "contacts": r.manifest["kontakter"]["i_alt"]}))


def fast_canonical(raw: Path, processed: Path, memory_limit: str | None = None) -> None:
    """Canonical tables straight from the simulator's (clean) Parquet output with DuckDB.

    For benchmarking outcomes at national scale only: it does none of ingest's validation
    (the simulator's output is valid by construction). spell_id / contact_id are the 1-based
    row order, the wide weekly layout is unpivoted and mapped with ydelseskoder.toml.
    """
    import tomllib

    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evaluering import contract
    from evaluering._atomic import write_json

    processed.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = true")
    koder = tomllib.loads((raw / "ydelseskoder.toml").read_text(encoding="utf-8"))["koder"]
    con.register("koder", pa.table({"ydelseskode": list(koder), "kategori": list(koder.values())}))
    cols = [c for c in pq.read_schema(raw / "ugestatus.parquet").names if c.startswith("y_")]

    def widx(c: str) -> int:
        yy, ww = int(c[2:4]), int(c[4:6])
        return contract.week_index((1900 if yy >= 91 else 2000) + yy, ww)

    con.register("ugekol", pa.table({"kol": cols, "uge": pa.array([widx(c) for c in cols], pa.int32())}))
    r, p = str(raw), str(processed)
    con.execute(f"COPY (SELECT CAST(file_row_number + 1 AS BIGINT) AS spell_id, * EXCLUDE (file_row_number) "
                f"FROM read_parquet('{r}/forloeb.parquet', file_row_number = true) ORDER BY spell_id) "
                f"TO '{p}/forloeb.parquet' (FORMAT parquet, COMPRESSION zstd)")
    con.execute(f"COPY (SELECT CAST(file_row_number + 1 AS BIGINT) AS contact_id, * EXCLUDE (file_row_number) "
                f"FROM read_parquet('{r}/kontakter.parquet', file_row_number = true) ORDER BY contact_id) "
                f"TO '{p}/kontakter.parquet' (FORMAT parquet, COMPRESSION zstd)")
    con.execute(f"COPY (SELECT DISTINCT person_id FROM read_parquet('{r}/ugestatus.parquet')) "
                f"TO '{p}/ugestatus_personer.parquet' (FORMAT parquet, COMPRESSION zstd)")
    con.execute(f"""COPY (
        SELECT u.person_id, k.uge, u.ydelseskode, m.kategori
        FROM (UNPIVOT read_parquet('{r}/ugestatus.parquet') ON COLUMNS('^y_')
              INTO NAME kol VALUE ydelseskode) u
        JOIN ugekol k ON k.kol = u.kol JOIN koder m ON m.ydelseskode = u.ydelseskode
    ) TO '{p}/ugestatus.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    uges = [widx(c) for c in cols]
    write_json(processed / "ugestatus_range.json", {"first_week": min(uges), "last_week": max(uges)})
    if (raw / "forsoeg.toml").exists():
        (processed / "forsoeg.toml").write_bytes((raw / "forsoeg.toml").read_bytes())


def prepare(scale: str, workdir: Path, seed: int, fast: bool = False,
            memory_limit: str | None = None) -> Path:
    raw, processed = workdir / f"raw-{scale}", workdir / f"processed-{scale}"
    if not (processed / "forloeb.parquet").exists():
        from evaluering.ingest import ingest
        from evaluering.simulate import simulate

        t0 = time.perf_counter()
        if not (raw / "forloeb.parquet").exists():
            simulate(raw, scale=scale, seed=seed)
        print(f"simulated {scale} in {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        if fast:
            fast_canonical(raw, processed, memory_limit)
        else:
            ingest(raw, out_dir=processed)
        print(f"{'converted' if fast else 'ingested'} {scale} in {time.perf_counter() - t0:.0f} s",
              flush=True)
    return processed


def run_pandas(processed: Path, sql_out: Path) -> dict:
    import pandas as pd

    sys.path.insert(0, str(ROOT / "tests"))
    from test_outcomes_reference import reference_time_to_job

    from evaluering import contract
    from evaluering.outcomes.build import read_week_range

    man = json.loads((sql_out / "outcomes_manifest.json").read_text())
    t0 = time.perf_counter()
    f = pd.read_parquet(processed / "forloeb.parquet")
    f["start_dato"] = pd.to_datetime(f["start_dato"]).dt.date
    u = pd.read_parquet(processed / "ugestatus.parquet", columns=["person_id", "uge", "kategori"])
    p = set(pd.read_parquet(processed / "ugestatus_personer.parquet")["person_id"])
    first, _ = read_week_range(processed)
    last = man["parametre"]["last_week_used"]
    ref = reference_time_to_job(f, u, p, first, last, man["n_uger_selvforsoergelse"])
    secs = time.perf_counter() - t0
    got = pd.read_parquet(sql_out / "tid_til_job.parquet").set_index("spell_id").sort_index()
    ref = ref.set_index("spell_id").sort_index()
    if man["parametre"].get("censur_ved_graense") == "vindue_slut":
        ref["censur_aarsag"] = ref["censur_aarsag"].replace({"data_slut": "vindue_slut"})
    same = (len(got) == len(ref)
            and (got["status"] == ref["status"]).all()
            and got["varighed_uger"].astype("Float64").equals(ref["varighed_uger"].astype("Float64"))
            and got["censur_aarsag"].fillna("-").equals(ref["censur_aarsag"].fillna("-")))
    _ = contract
    return {"seconds": secs, "identical": bool(same), "spells": len(ref)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="medium", choices=["small", "medium", "national"])
    ap.add_argument("--workdir", default="/tmp/evaluering-bench")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--memory-limit", default=None)
    ap.add_argument("--pandas", action="store_true")
    ap.add_argument("--fast-canonical", action="store_true",
                    help="convert the simulator's output with DuckDB instead of running ingest")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        _child(a.child[0], a.child[1], None if a.child[2] == "-" else a.child[2],
               None if a.child[3] == "-" else a.child[3])
        return 0
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    processed = prepare(a.scale, work, a.seed, a.fast_canonical, a.memory_limit)
    out = work / f"outcomes-{a.scale}"
    cat = processed / "forsoeg.toml"
    cmd = [sys.executable, __file__, "--child", str(processed), str(out), a.memory_limit or "-",
           str(cat) if cat.exists() else "-"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(m, indent=1), flush=True)
    lines = [f"\n## outcomes, scale {a.scale} ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)\n",
             f"- machine: {platform.machine()}, Python {platform.python_version()}, "
             f"memory limit {a.memory_limit or 'DuckDB default'}; other jobs shared the 2 cores",
             f"- spells {m['spells']:,}, contacts {m['contacts']:,}",
             f"- `build_outcomes` (DuckDB): **{m['seconds']:.1f} s**, peak RSS **{m['peak_rss_gib']:.2f} GiB**",
             "- rows: " + ", ".join(f"{k} {v:,}" for k, v in m["rows"].items())]
    if a.pandas:
        pm = run_pandas(processed, out)
        lines.append(f"- pandas/Python reference (time to job only, week-by-week loop per spell): "
                     f"{pm['seconds']:.1f} s for {pm['spells']:,} spells; identical to SQL: "
                     f"{pm['identical']}; ratio reference / full DuckDB build = "
                     f"{pm['seconds'] / m['seconds']:.1f}")
        print(json.dumps(pm), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmarks: outcomes and panels\n\nWritten by "
                           "`benchmarks/bench_outcomes.py`.\n", encoding="utf-8")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
