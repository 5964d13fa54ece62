"""Benchmark: synthetic DiD on a municipality-sized panel, against a PyPI peer.

Run from the repository root with the benchmark virtualenv (the peer is installed only there):

    .venv-bench/bin/python benchmarks/bench_synth.py [--reps 200] [--out benchmarks/results/synth.md]

Panels:
  * ``prop99``: California Proposition 99 (39 states x 31 years; tests/data/prop99.csv).
  * ``dk98``: simulated, 98 units x 96 periods (98 municipalities, 8 years of months), an
    interactive fixed-effects outcome, 11 treated units adopting at period 72, planted effect
    -2.0 (the scale of a monthly benefit-receipt share in percentage points).

Peer: ``diff-diff`` (``diff_diff.SyntheticDiD``), which states that it follows R synthdid.
Timings are wall-clock on this machine (2 cores shared with other jobs: read them as rough).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from evaluering.estimators.synth import synthdid

ROOT = Path(__file__).resolve().parents[1]


def dk_panel(seed: int = 0, n_units: int = 98, n_periods: int = 96, n_treated: int = 11,
             adopt: int = 72, tau: float = -2.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    F = np.cumsum(rng.normal(0, 0.3, (n_periods, 2)), axis=0)
    season = 0.8 * np.sin(2 * np.pi * np.arange(n_periods) / 12)
    L = rng.normal(0, 1, (n_units, 2))
    L[-n_treated:] += 0.6  # treated municipalities load more on the common factors
    a = rng.normal(20, 4, n_units)
    Y = a[:, None] + season[None, :] + L @ F.T + rng.normal(0, 0.5, (n_units, n_periods))
    D = np.zeros((n_units, n_periods), dtype=int)
    D[-n_treated:, adopt:] = 1
    Y = Y + tau * D
    return pd.DataFrame({"unit": np.repeat([f"k{i:03d}" for i in range(n_units)], n_periods),
                         "time": np.tile(np.arange(n_periods), n_units),
                         "y": Y.ravel(), "d": D.ravel()})


def timed(f, repeat=1):
    best = np.inf
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return out, best


def ours(df, y, unit, time_, d, inference, reps, fw="exact"):
    return timed(lambda: synthdid(df, y, unit, time_, d, inference=inference, n_reps=reps,
                                  seed=1, fw=fw))


def peer(df, y, unit, time_, d, inference, reps):
    from diff_diff import SyntheticDiD

    post = sorted(df.loc[df[d] == 1, time_].unique())
    # diff-diff wants a unit-level treatment indicator and the post periods
    treated_units = set(df.loc[df[d] == 1, unit])
    dd = df.assign(_tr=df[unit].isin(treated_units).astype(int))
    est = SyntheticDiD(variance_method=inference, n_bootstrap=reps, seed=1)
    res, t = timed(lambda: est.fit(dd, outcome=y, treatment="_tr", unit=unit, time=time_,
                                   post_periods=post))
    return res, t


NOTES = """Reading the table:

* Point estimates. `fw="exact"` solves the paper's weight problems exactly (away-step
  Frank-Wolfe + active-set finish); `fw="synthdid"` runs the early-stopped Frank-Wolfe with
  the sparsified second pass documented for R synthdid. The latter agrees with diff-diff (which
  follows R) to all printed digits on both panels (prop99 -15.60383, the published -15.60);
  the exact minimiser differs by the optimisation error of the early stop (-15.6054 on prop99,
  0.002 on dk98). On the SC variant the difference is larger: exact -19.514 vs -19.620
  (published -19.62) - the exact weights fit the pre-period better (tested).
* Jackknife SE (Algorithm 3, fixed weights): identical to diff-diff when the same weights
  are used (fw="synthdid": 0.083362 both).
* Placebo SE (Algorithm 4) differs by design detail, not by seed: we re-run the whole
  estimator on each placebo assignment (weights re-solved from scratch, zeta recomputed from
  the placebo controls), which gives 9.1-9.7 on prop99 across seeds (400 reps each).
  diff-diff reports 10.91; R synthdid warm-starts the early-stopped Frank-Wolfe at the
  renormalised original weights and keeps the original zeta - emulating that with our
  early-stop solver gives 10.28 (seed 0), so most of the gap is that warm start + early stop.
  The paper's "about 9-10" brackets ours.
* Speed: the exact solver is 5-20x faster than our pure-Python early-stopped Frank-Wolfe; a
  point estimate takes about as long as diff-diff's (0.03-0.2 s); 200 placebo re-estimations
  on 98 x 96 take 6-9 s (diff-diff 14-17 s). Timings vary with the load of the shared machine.
"""


def _markdown(df: pd.DataFrame) -> str:
    def fmt(x):
        if isinstance(x, float):
            return "" if np.isnan(x) else f"{x:.7g}"
        return str(x)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def honest_example():
    """The event-study example used in tests/test_honest.py (4 pre, 3 post coefficients)."""
    rng = np.random.default_rng(8)
    A = rng.normal(size=(7, 7))
    S = 0.004 * (A @ A.T / 7 + np.eye(7))
    b = np.array([0.03, -0.02, 0.02, -0.01, 0.25, 0.3, 0.2])
    return b, S


def honest_comparison() -> pd.DataFrame:
    """Our Rambachan-Roth intervals next to diff-diff's HonestDiD on the same (b, Sigma)."""
    import warnings

    from diff_diff import HonestDiD
    from diff_diff.results import MultiPeriodDiDResults, PeriodEffect

    from evaluering.inference.honest import honest_did

    b, S = honest_example()
    pre, post = [-5, -4, -3, -2], [0, 1, 2]
    periods = pre + post
    pe = {p: PeriodEffect(p, b[i], np.sqrt(S[i, i]), b[i] / np.sqrt(S[i, i]), np.nan, (np.nan, np.nan))
          for i, p in enumerate(periods)}
    res = MultiPeriodDiDResults(period_effects=pe, avg_att=np.nan, avg_se=np.nan,
                                avg_t_stat=np.nan, avg_p_value=np.nan,
                                avg_conf_int=(np.nan, np.nan), n_obs=0, n_treated=0, n_control=0,
                                pre_periods=pre, post_periods=post, vcov=S,
                                interaction_indices={p: i for i, p in enumerate(periods)},
                                reference_period=-1)
    rows = []
    for lname, l in (("first post", np.array([1.0, 0, 0])), ("post average", np.ones(3) / 3)):
        Ms = [0.0, 0.02, 0.05, 0.1]
        ours_sd = honest_did(b, S, 4, 3, method="smoothness", M_grid=Ms, l_vec=l).table
        for M, lo, hi in zip(Ms, ours_sd["ci_low"], ours_sd["ci_high"]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                h = HonestDiD(method="smoothness", M=M, l_vec=l).fit(res)
            rows.append({"target": lname, "Delta": "SD", "M": M, "ours": f"[{lo:.6f}, {hi:.6f}] FLCI",
                         "diff-diff": f"[{h.ci_lb:.6f}, {h.ci_ub:.6f}] {h.ci_method}"})
        Mbs = [0.0, 0.5, 1.0]
        ours_c = honest_did(b, S, 4, 3, Mbar_grid=Mbs, l_vec=l, test="C").table
        ours_h = honest_did(b, S, 4, 3, Mbar_grid=Mbs, l_vec=l, test="C-LF").table
        for k, Mb in enumerate(Mbs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                h = HonestDiD(method="relative_magnitude", M=Mb, l_vec=l).fit(res)
            rows.append({"target": lname, "Delta": "RM", "M": Mb,
                         "ours": f"[{ours_c['ci_low'][k]:.6f}, {ours_c['ci_high'][k]:.6f}] C; "
                                 f"[{ours_h['ci_low'][k]:.6f}, {ours_h['ci_high'][k]:.6f}] C-LF",
                         "diff-diff": f"[{h.ci_lb:.6f}, {h.ci_ub:.6f}] {h.ci_method} "
                                      f"(id. set [{h.lb:.4f}, {h.ub:.4f}])"})
    return pd.DataFrame(rows)


HONEST_NOTES = """Smoothness (FLCI): our optimal FLCI and diff-diff's agree to 6 decimals on every row.
Relative magnitudes: at Mbar = 0 our conditional test gives the original CI, as does
diff-diff. For Mbar > 0 diff-diff 3.13 reports the estimated identified set widened by the
normal quantile (labelled FLCI), which ignores the sampling error of the largest pre-period
change; we invert ARP's conditional (C) and conditional-LF hybrid (C-LF) moment-inequality
tests as Rambachan & Roth do, so our intervals are wider. They are not expected to agree.
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/synth.md"))
    args = ap.parse_args()
    import diff_diff

    rows = []
    prop = pd.read_csv(ROOT / "tests/data/prop99.csv")
    dk = dk_panel()
    cases = [("prop99", prop, ("PacksPerCapita", "State", "Year", "treated"), ["placebo"]),
             ("dk98 (98x96)", dk, ("y", "unit", "time", "d"), ["placebo", "jackknife"])]
    for name, df, cols, infs in cases:
        for inf in infs:
            # the early-stopped pure-Python Frank-Wolfe (fw="synthdid") is slow under placebo
            # re-estimation (90-300 s here), so it is timed only with the jackknife
            for fw in (("exact", "synthdid") if inf == "jackknife" else ("exact",)):
                r, t = ours(df, *cols, inf, args.reps, fw=fw)
                rows.append({"panel": name, "implementation": f"evaluering (fw={fw})",
                             "inference": inf, "estimate": r.estimate, "se": r.se,
                             "seconds": t})
            try:
                p, t = peer(df, *cols, inf, args.reps)
                rows.append({"panel": name, "implementation": f"diff-diff {diff_diff.__version__}",
                             "inference": inf, "estimate": float(p.att), "se": float(p.se),
                             "seconds": t})
            except Exception as e:  # pragma: no cover - report, do not hide
                rows.append({"panel": name, "implementation": f"diff-diff {diff_diff.__version__}",
                             "inference": inf, "estimate": np.nan, "se": np.nan,
                             "seconds": np.nan, "error": repr(e)[:120]})
    # point estimate alone (no inference), best of 5
    for name, df, cols, _ in cases:
        for fw in ("exact", "synthdid"):
            r, t = timed(lambda: synthdid(df, *cols, inference="none", fw=fw), repeat=3)
            rows.append({"panel": name, "implementation": f"evaluering (fw={fw})",
                         "inference": "none (point estimate)", "estimate": r.estimate,
                         "se": np.nan, "seconds": t})
        p, t = peer(df, *cols, "jackknife", 0)
        rows.append({"panel": name, "implementation": f"diff-diff {diff_diff.__version__}",
                     "inference": "jackknife (incl. point estimate)", "estimate": float(p.att),
                     "se": float(p.se), "seconds": t})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    md = ["## Synthetic DiD (bench_synth.py)", "",
          f"Machine: {platform.machine()}, Python {platform.python_version()}, "
          f"{args.reps} placebo replications, seed 1. dk98 planted effect: -2.0.", "",
          _markdown(table), "", NOTES]
    ht = honest_comparison()
    print(ht.to_string(index=False))
    md += ["## Rambachan-Roth sensitivity vs diff-diff (same betahat, Sigma)", "",
           _markdown(ht), "", HONEST_NOTES]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(md))


if __name__ == "__main__":
    main()
