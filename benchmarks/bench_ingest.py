"""Benchmark: `evaluering ingest` vs a plain pandas.read_csv "ingest" of the same files.

    .venv/bin/python benchmarks/bench_ingest.py --scale medium [--memory-limit 4GB]
        [--workdir /tmp/bench-ingest] [--markdown benchmarks/results/ingest.md]

1. Simulates a raw data set with the project's simulator (CSV, the three registers; the
   weekly register in DREAM's wide layout with 418 week columns) unless it already exists.
2. Runs `evaluering ingest` in a subprocess under `/usr/bin/time -v` (wall time, CPU time,
   peak resident memory of the whole process, DuckDB included).
3. Runs the baseline in a subprocess the same way: `pandas.read_csv(dtype=str,
   keep_default_na=False)` of each register and `DataFrame.to_parquet` -- no validation, no
   typing, no quarantine, everything in memory; it is what the toolkit replaces.
4. Prints a Markdown section (and appends it to --markdown if given).

The machine is shared, so the load average is reported next to the numbers; CPU time
(user + system) is less sensitive to other processes than wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

BASELINE = r"""
import sys, pandas as pd
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
for reg in ("forloeb", "kontakter", "ugestatus"):
    df = pd.read_csv(src / f"{reg}.csv", dtype=str, keep_default_na=False)
    df.to_parquet(dst / f"{reg}.parquet", index=False)
    print(reg, len(df))
"""


def timed(cmd: list[str]) -> dict:
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.time() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    err = p.stderr

    def grab(label: str) -> float:
        m = re.search(re.escape(label) + r":\s*([0-9.:]+)", err)
        return float(m.group(1)) if m and ":" not in m.group(1) else float("nan")

    return {"wall_s": wall, "cpu_s": grab("User time (seconds)") + grab("System time (seconds)"),
            "max_rss_mb": grab("Maximum resident set size (kbytes)") / 1024, "stdout": p.stdout}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small", choices=["small", "medium", "national"])
    ap.add_argument("--persons", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--workdir", default="/tmp/bench-ingest")
    ap.add_argument("--markdown", default=None)
    ap.add_argument("--skip-baseline", action="store_true")
    a = ap.parse_args()

    work = Path(a.workdir)
    label = a.scale if a.persons is None else f"{a.persons}p"
    raw = work / f"raw-{label}-s{a.seed}"
    if not (raw / "forloeb.csv").exists():
        print(f"simulating {label} ...", flush=True)
        from evaluering import simulate

        simulate.simulate(raw, scale=a.scale, seed=a.seed, fmt="csv", n_persons=a.persons)
    sizes = {f.name: f.stat().st_size for f in sorted(raw.glob("*.csv"))}
    lines = {}
    for f in sorted(raw.glob("*.csv")):
        with open(f, "rb") as fh:
            lines[f.stem] = sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 24), b"")) - 1
    load0 = os.getloadavg()[0]
    print("ingest ...", flush=True)
    ing = timed([PY, "-m", "evaluering", "--quiet", "ingest", str(raw), "--out", str(work / f"out-{label}"),
                 "--memory-limit", a.memory_limit])
    base = None
    if not a.skip_baseline:
        print("pandas baseline ...", flush=True)
        base = timed([PY, "-c", BASELINE, str(raw), str(work / f"pandas-{label}")])
    load1 = os.getloadavg()[0]

    md = [f"### Ingest, scale `{label}` (seed {a.seed}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
          "",
          f"Input (CSV, UTF-8, `,`; ugestatus wide with 418 week columns): "
          + ", ".join(f"{k} {lines[k]:,} rows / {sizes[k + '.csv'] / 1e6:.0f} MB" for k in lines) + ".",
          f"Machine: {os.cpu_count()} cores shared with other jobs, load average {load0:.1f} → {load1:.1f}; "
          f"Python {platform.python_version()}; DuckDB memory limit {a.memory_limit}.",
          "",
          "| run | wall (s) | CPU user+sys (s) | peak RSS (MB) |",
          "|---|---:|---:|---:|",
          f"| `evaluering ingest` (validate, type, quarantine, Parquet, manifest) | {ing['wall_s']:.1f} | "
          f"{ing['cpu_s']:.1f} | {ing['max_rss_mb']:.0f} |"]
    if base:
        md.append(f"| pandas `read_csv(dtype=str)` + `to_parquet` (no validation) | {base['wall_s']:.1f} | "
                  f"{base['cpu_s']:.1f} | {base['max_rss_mb']:.0f} |")
    md.append("")
    text = "\n".join(md)
    print(text)
    print(ing["stdout"])
    if a.markdown:
        with open(a.markdown, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
