"""Benchmark: survival DiD at national scale.

Steps (each in its own child process so peak RSS is per step):

- ``discrete``: simulate N spells (98 municipalities, 11 treated, 32 start quarters, 104
  weeks of follow-up, planted HR), aggregate to municipality × start quarter × week cells
  (numpy), fit :func:`discrete_hazard_did` (cloglog, week + municipality + quarter effects,
  municipality-clustered SE). Times aggregation and fit separately.
- ``cox``: own :func:`cox_did` on M spells (municipality strata, quarter dummies, clustered).
- ``lifelines``: lifelines ``CoxPHFitter`` on the same M spells and the same model
  (strata, quarter dummies, ``cluster_col``), with a wall-clock limit.

Usage::

    .venv/bin/python benchmarks/bench_survival.py [--national 3000000] [--cox 1000000]
        [--lifelines-limit 1200] [--markdown benchmarks/results/survival.md]

Set ``OPENBLAS_NUM_THREADS=1`` on a shared/loaded machine (see the results file).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HR = 1.10


def _sim(n: int, seed: int):
    from evaluering.survival.simulate import simulate_spells

    return simulate_spells(n=n, n_kom=98, n_treated=11, hr=HR, seed=seed, weeks=104, n_quarters=32)


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB -> GiB


def step_discrete(n: int) -> dict:
    from evaluering.survival.discrete import discrete_hazard_did, spells_to_cells

    df = _sim(n, 1)
    rss_data = _rss_gb()
    t0 = time.perf_counter()
    cells = spells_to_cells(df, by=["kommune_kode", "start_kvartal", "treated", "post"])
    t1 = time.perf_counter()
    del df
    r = discrete_hazard_did(cells, treated="treated", post="post", time_effects="start_kvartal")
    t2 = time.perf_counter()
    return {"step": "discrete", "n_spells": n, "n_cells": len(cells), "person_weeks": r.n_obs,
            "aggregate_s": t1 - t0, "fit_s": t2 - t1, "estimate": r.estimate, "se": r.se,
            "hr": r.info["hazard_ratio"], "iterations": r.info["iterations"],
            "peak_rss_gb": _rss_gb(), "rss_after_simulation_gb": rss_data}


def step_cox(n: int) -> dict:
    from evaluering.survival.cox import cox_did

    df = _sim(n, 2)
    rss_data = _rss_gb()
    t0 = time.perf_counter()
    r = cox_did(df, treated="treated", post="post", strata="kommune_kode", time_effects="start_kvartal",
                cluster="kommune_kode")
    t1 = time.perf_counter()
    return {"step": "cox", "n_spells": n, "fit_s": t1 - t0, "estimate": r.estimate, "se": r.se,
            "hr": r.info["hazard_ratio"], "iterations": r.info["iterations"], "peak_rss_gb": _rss_gb(),
            "rss_after_simulation_gb": rss_data}


def step_lifelines(n: int) -> dict:
    import numpy as np
    import pandas as pd
    from lifelines import CoxPHFitter

    df = _sim(n, 2)
    work = pd.DataFrame({"txp": (df["treated"] * df["post"]).astype(float),
                         "T": df["varighed_uger"].astype(float),
                         "E": (df["status"] == "job").astype(int), "kommune_kode": df["kommune_kode"],
                         "cl": df["kommune_kode"]})  # lifelines drops the strata column before clustering
    # post is collinear with the quarter dummies; treated is absorbed by the strata
    dummies = pd.get_dummies(df["start_kvartal"], prefix="q", drop_first=True, dtype=float)
    work = pd.concat([work, dummies], axis=1)
    del df
    rss_data = _rss_gb()
    t0 = time.perf_counter()
    f = CoxPHFitter().fit(work, "T", "E", strata=["kommune_kode"], cluster_col="cl")
    t1 = time.perf_counter()
    return {"step": "lifelines", "n_spells": n, "fit_s": t1 - t0, "estimate": float(f.params_["txp"]),
            "se": float(f.standard_errors_["txp"]), "hr": float(np.exp(f.params_["txp"])),
            "peak_rss_gb": _rss_gb(), "rss_after_simulation_gb": rss_data}


STEPS = {"discrete": step_discrete, "cox": step_cox, "lifelines": step_lifelines}


def _child(step: str, n: int, limit: float | None) -> dict:
    cmd = [sys.executable, __file__, "_run", step, str(n)]
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=True)
    except subprocess.TimeoutExpired:
        return {"step": step, "n_spells": n, "timeout_s": limit, "wall_s": time.perf_counter() - t0}
    except subprocess.CalledProcessError as exc:
        return {"step": step, "n_spells": n, "error": exc.stderr.strip().splitlines()[-1:]}
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall_s"] = time.perf_counter() - t0
    return res


def _markdown(rows: list[dict], env: dict) -> str:
    import math

    lines = ["## Survival DiD (discrete-time hazard on cells; Cox: own vs lifelines)", "",
             f"Machine: {env['cpus']} CPU(s), load average at start {env['load']}, "
             f"OPENBLAS_NUM_THREADS={env['openblas']}. Simulated spells with planted HR {HR} "
             f"(log HR {math.log(HR):.4f}); 98 municipalities (11 treated), 32 start quarters, "
             "104 weeks of follow-up. Times are wall-clock seconds of the fit only "
             "(simulation excluded); peak RSS of the whole child process (incl. simulation).", "",
             "| step | spells | cells | aggregate s | fit s | peak RSS GiB | log HR | SE | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "timeout_s" in r:
            lines.append(f"| {r['step']} | {r['n_spells']:,} | | | > {r['timeout_s']:.0f} | | | | "
                         "did not finish within the limit |")
            continue
        if "error" in r:
            lines.append(f"| {r['step']} | {r['n_spells']:,} | | | | | | | error: {r['error']} |")
            continue
        lines.append(
            f"| {r['step']} | {r['n_spells']:,} | {r.get('n_cells', '')} | "
            f"{r['aggregate_s']:.1f} | " if "aggregate_s" in r else
            f"| {r['step']} | {r['n_spells']:,} | | | ")
        lines[-1] += (f"{r['fit_s']:.1f} | {r['peak_rss_gb']:.2f} | {r['estimate']:.4f} | {r['se']:.4f} | "
                      f"{'iterations ' + str(r['iterations']) if 'iterations' in r else ''} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--national", type=int, default=3_000_000)
    p.add_argument("--cox", type=int, default=1_000_000)
    p.add_argument("--lifelines", type=int, default=None, help="spells for lifelines (default = --cox)")
    p.add_argument("--lifelines-limit", type=float, default=1200.0)
    p.add_argument("--skip-lifelines", action="store_true")
    p.add_argument("--markdown", default=None)
    a = p.parse_args(argv)
    env = {"cpus": os.cpu_count(), "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
           "openblas": os.environ.get("OPENBLAS_NUM_THREADS", "unset")}
    rows = [_child("discrete", a.national, None), _child("cox", a.cox, None)]
    if not a.skip_lifelines:
        rows.append(_child("lifelines", a.lifelines or a.cox, a.lifelines_limit))
    for r in rows:
        print(json.dumps(r))
    md = _markdown(rows, env)
    print(md)
    if a.markdown:
        with open(a.markdown, "a", encoding="utf-8") as fh:
            fh.write(md + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "_run":
        print(json.dumps(STEPS[sys.argv[2]](int(sys.argv[3]))))
        sys.exit(0)
    sys.exit(main())
