"""Benchmark: Callaway–Sant'Anna ATT(g,t) (unconditional, never-treated controls, varying base,
DR, analytic SEs) in evaluering vs the PyPI packages ``csdid`` and ``differences``.

Run in the separate benchmark venv (peers are never dependencies of evaluering):

    .venv-bench/bin/python benchmarks/bench_cs.py [--sizes 100000 1000000] [--peers csdid differences]

Each (package, size) runs in a fresh subprocess so that peak memory (ru_maxrss) is that
package's own; the reported peak includes the input DataFrame (same for all packages,
printed as ``input MB``). Checks that the ATT(g,t) and SEs agree with evaluering's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

T = 10
COHORTS = [0, 4, 6, 8]


COV = os.environ.get("BENCH_CS_COV") == "1"  # add a time-invariant covariate x


def make_panel(n: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    g = rng.choice(COHORTS, size=n, p=[0.4, 0.2, 0.2, 0.2])
    t = np.arange(1, T + 1)
    eff = np.where((g[:, None] > 0) & (t >= g[:, None]), 1.0 + 0.2 * (t - g[:, None]), 0.0)
    y = rng.normal(size=(n, 1)) + 0.1 * t + 0.05 * x[:, None] * t + eff + rng.normal(size=(n, T))
    return pd.DataFrame({"id": np.repeat(np.arange(n), T), "t": np.tile(t, n),
                         "g": np.repeat(g, T), "x": np.repeat(x, T), "y": y.ravel()})


def run_one(pkg: str, n: int) -> dict:
    import numpy as np

    if pkg == "evaluering":  # imports outside the timed region
        from evaluering.estimators.cs import callaway_santanna
    elif pkg == "csdid":
        from csdid.att_gt import ATTgt
    elif pkg == "differences":
        from differences import ATTgt
    df = make_panel(n)
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    w0, c0 = time.perf_counter(), time.process_time()
    if pkg == "evaluering":
        r = callaway_santanna(df, "y", "id", "t", "g", covariates=["x"] if COV else None)
        gt = r.components["att_gt"]
        att, se = gt["att"].to_numpy(), gt["se"].to_numpy()
        keys = list(zip(gt["group"].astype(int), gt["time"].astype(int)))
    elif pkg == "csdid":
        m = ATTgt(yname="y", tname="t", idname="id", gname="g", data=df,
                  control_group="nevertreated", xformla="y~x" if COV else None).fit(est_method="dr", bstrap=False)
        res = m.results
        att, se = np.asarray(res["att"], float), np.asarray(res["se"], float)
        keys = list(zip(np.asarray(res["group"]).astype(int), np.asarray(res["year"]).astype(int)))
    elif pkg == "differences":
        d = df.assign(g=df["g"].where(df["g"] > 0)).set_index(["id", "t"])
        res = ATTgt(data=d, cohort_column="g").fit(formula="y ~ x" if COV else "y", est_method="dr",
                                                   progress_bar=False)
        tab = res.to_pandas()
        att = tab.iloc[:, 0].to_numpy(float)
        se = tab.iloc[:, 1].to_numpy(float)
        idx = tab.index.to_frame(index=False)
        keys = list(zip(idx["cohort"].astype(int), idx["time"].astype(int)))
    else:
        raise ValueError(pkg)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"pkg": pkg, "n": n, "wall_s": wall, "cpu_s": cpu, "peak_mb": peak, "input_mb": base_mb,
            "keys": [[int(a), int(b)] for a, b in keys], "att": att.tolist(), "se": se.tolist()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--peers", nargs="*", default=["csdid", "differences"])
    ap.add_argument("--one", nargs=2, metavar=("PKG", "N"))
    ap.add_argument("--timeout", type=int, default=1200)
    ap.add_argument("--covariates", action="store_true",
                    help="doubly robust with a time-invariant covariate x")
    a = ap.parse_args()
    if a.covariates:
        os.environ["BENCH_CS_COV"] = "1"
    if a.one:
        print(json.dumps(run_one(a.one[0], int(a.one[1]))))
        return
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rows = []
    for n in a.sizes:
        ref = None
        for pkg in ["evaluering", *a.peers]:
            try:
                out = subprocess.run([sys.executable, __file__, "--one", pkg, str(n)], env=env,
                                     capture_output=True, text=True, timeout=a.timeout)
            except subprocess.TimeoutExpired:
                rows.append(f"| {n:,} | {pkg} | > {a.timeout} s (timeout) | | | | |")
                print(rows[-1], flush=True)
                continue
            if out.returncode != 0:
                err = (out.stderr.strip().splitlines() or ["?"])[-1][:80]
                rows.append(f"| {n:,} | {pkg} | failed: {err} | | | | |")
                print(rows[-1], flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if pkg == "evaluering":
                ref = r
                d_att = d_se = 0.0
            else:
                import numpy as np

                rmap = {tuple(k): (x, s) for k, x, s in zip(ref["keys"], ref["att"], ref["se"])}
                pairs = [(rmap[tuple(k)], (x, s)) for k, x, s in zip(r["keys"], r["att"], r["se"])
                         if tuple(k) in rmap]
                d_att = max(abs(p[0][0] - p[1][0]) for p in pairs)
                d_se = max(abs(p[0][1] - p[1][1]) for p in pairs)
            ratio = r["wall_s"] / ref["wall_s"] if ref else float("nan")
            rows.append(f"| {n:,} | {pkg} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {ratio:.1f}x | "
                        f"{r['peak_mb'] - r['input_mb']:.0f} (input {r['input_mb']:.0f}) | "
                        f"{len(r['att'])} ATT(g,t); max abs diff att {d_att:.1e}, se {d_se:.1e} |")
            print(rows[-1], flush=True)
    print("\n| units (x10 periods) | package | wall s | CPU s | wall vs evaluering | peak MB above input | agreement |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
