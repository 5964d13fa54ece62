"""Benchmark of the register simulator: wall time and peak memory per scale.

Each scale runs in a fresh child process (so peak RSS is that run's alone), writes to a
temporary folder which is removed afterwards, and the results are printed as a Markdown
table (``--markdown FILE`` also writes them as a section of that file).

    .venv/bin/python benchmarks/bench_simulate.py --scales medium national \
        --markdown benchmarks/results/simulate.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import pyarrow.parquet as pq
from evaluering.simulate import simulate
out, scale, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
simulate(out, scale=scale, seed=seed)
wall = time.perf_counter() - t0
rows = {r: pq.ParquetFile(out / f"{r}.parquet").metadata.num_rows
        for r in ("forloeb", "kontakter", "ugestatus")}
ncols = pq.ParquetFile(out / "ugestatus.parquet").metadata.num_columns - 1
size = {p.name: p.stat().st_size for p in out.iterdir()}
print(json.dumps({"wall_s": wall, "rows": rows, "weeks": ncols,
                  "bytes": size,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(scale: str, seed: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench_sim_{scale}_"))
    try:
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", CHILD, str(tmp / "data"), scale, str(seed)],
                             check=True, capture_output=True, text=True)
        out = json.loads(res.stdout.strip().splitlines()[-1])
        out["process_s"] = time.perf_counter() - t0
        out["scale"] = scale
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def markdown(results: list[dict]) -> str:
    lines = [
        "## Register simulator (`evaluering simulate`)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; one child process per scale, Parquet output "
        "(zstd), default chunk of 50 000 persons. Wall time of `simulate()` inside the child; "
        "peak RSS of the child. The machine was shared with other jobs, so times are upper "
        "bounds.",
        "",
        "| scale | persons (ugestatus rows) | spells | contacts | person-weeks (rows x weeks) "
        "| wall time | peak RSS | files on disk |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        pw = r["rows"]["ugestatus"] * r["weeks"]
        mb = sum(r["bytes"].values()) / 1e6
        lines.append(
            f"| {r['scale']} | {r['rows']['ugestatus']:,} | {r['rows']['forloeb']:,} | "
            f"{r['rows']['kontakter']:,} | {pw:,} | {r['wall_s']:.0f} s | "
            f"{r['peak_rss_mb']:,.0f} MB | {mb:,.0f} MB |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", nargs="+", default=["small", "medium"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", type=Path)
    a = ap.parse_args()
    results = []
    for s in a.scales:
        r = run(s, a.seed)
        print(json.dumps(r), flush=True)
        results.append(r)
    md = markdown(results)
    print(md)
    if a.markdown:
        a.markdown.parent.mkdir(parents=True, exist_ok=True)
        a.markdown.write_text(md, encoding="utf-8")


if __name__ == "__main__":
    main()
