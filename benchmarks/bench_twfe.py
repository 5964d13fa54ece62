"""Benchmark: TWFE ``y ~ D | unit + time`` with unit-clustered SEs on large panels.

Run with the benchmark venv (peer packages are never dependencies of evaluering):

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -e . pyfixest linearmodels
    .venv-bench/bin/python benchmarks/bench_twfe.py --rows 20e6 50e6 --peer-rows 5e6

Every (tool, size) runs in a fresh subprocess that builds the same synthetic panel (seeded:
``rows/10`` units × 10 periods, staggered binary treatment, unit and time effects) and
reports wall time of the estimation call only, peak RSS of the whole process (data
included) and the RSS right after the data were built, the coefficient and its SE. The
parent checks the coefficients agree to 1e-8 relative. Peers are run only up to
``--peer-rows`` (the machine is shared; earlier measurements at full size are quoted in
``benchmarks/results/twfe.md``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
tool, rows = sys.argv[1], int(float(sys.argv[2]))
T = 10
n_u = rows // T
rng = np.random.default_rng(12345)
unit = np.repeat(np.arange(n_u, dtype=np.int32), T)
t = np.tile(np.arange(T, dtype=np.int32), n_u)
g = rng.choice(np.array([3, 5, 7, 100], dtype=np.int32), size=n_u)
D = (t >= g[unit]).astype(np.float64)
del g
y = rng.standard_normal(n_u)[unit] + 0.1 * t + 0.5 * D + rng.standard_normal(len(t))
df = pd.DataFrame({"u": unit, "t": t, "D": D, "y": y})
del unit, t, D, y
rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
if tool == "evaluering":
    from evaluering.estimators.did import twfe
    t0 = time.perf_counter(); c0 = time.process_time()
    r = twfe(df, "y", "u", "t", "D", cluster="u")
    el = time.perf_counter() - t0; cpu = time.process_time() - c0
    coef, se = r.estimate, r.se
elif tool == "pyfixest":
    import pyfixest as pf
    pf.feols("y ~ D | u + t", data=df.iloc[:1000], vcov={"CRV1": "u"})  # JIT warm-up, untimed
    t0 = time.perf_counter(); c0 = time.process_time()
    fit = pf.feols("y ~ D | u + t", data=df, vcov={"CRV1": "u"})
    coef, se = float(fit.coef()["D"]), float(fit.se()["D"])
    el = time.perf_counter() - t0; cpu = time.process_time() - c0
elif tool == "linearmodels":
    from linearmodels.panel import PanelOLS
    t0 = time.perf_counter(); c0 = time.process_time()
    d = df.set_index(["u", "t"])
    fit = PanelOLS(d["y"], d[["D"]], entity_effects=True, time_effects=True).fit(
        cov_type="clustered", cluster_entity=True)
    coef, se = float(fit.params["D"]), float(fit.std_errors["D"])
    el = time.perf_counter() - t0; cpu = time.process_time() - c0
print(json.dumps({"tool": tool, "rows": rows, "seconds": el, "cpu_seconds": cpu, "coef": coef, "se": se,
                  "rss_after_data_gb": rss_data,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def run(tool: str, rows: float) -> dict | None:
    proc = subprocess.run([sys.executable, "-c", CHILD, tool, str(rows)], capture_output=True,
                          text=True, cwd=ROOT)
    if proc.returncode != 0:
        print(f"{tool} @ {rows:.0f}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", nargs="+", type=float, default=[20e6, 50e6])
    ap.add_argument("--peer-rows", nargs="+", type=float, default=[5e6])
    ap.add_argument("--peers", nargs="*", default=["pyfixest", "linearmodels"])
    ap.add_argument("--out", type=Path, default=None, help="append a Markdown table here")
    a = ap.parse_args()
    results = []
    for rows in sorted(set(a.peer_rows) | set(a.rows)):
        tools = ["evaluering"] + ([p for p in a.peers] if rows in a.peer_rows else [])
        ref = None
        for tool in tools:
            r = run(tool, rows)
            if r is None:
                continue
            if tool == "evaluering":
                ref = r
            r["rel_diff_coef"] = (abs(r["coef"] - ref["coef"]) / abs(ref["coef"])
                                  if ref is not None else float("nan"))
            results.append(r)
            print(json.dumps(r), flush=True)
    lines = [f"Machine: {platform.machine()}, Python {platform.python_version()}, "
             f"{len(results)} runs, each in a fresh process.", "",
             "| tool | rows | estimation wall s | estimation CPU s | peak RSS GB (process) | RSS after data GB | coef | se | rel. diff coef vs evaluering |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['tool']} | {r['rows']:,} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['peak_rss_gb']:.2f} | "
                     f"{r['rss_after_data_gb']:.2f} | {r['coef']:.10f} | {r['se']:.6g} | "
                     f"{r['rel_diff_coef']:.1e} |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "a") as fh:
            fh.write(table + "\n")


if __name__ == "__main__":
    main()
