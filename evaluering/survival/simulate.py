"""Simulated spells with a planted hazard ratio (for tests, examples and benchmarks; numpy only).

Continuous-time proportional hazards (Weibull baseline) with municipality and start-quarter
effects and a treated×post log hazard ratio; observed durations are whole weeks
(floor of the continuous time), exits split job / education at random, independent
censoring plus administrative censoring at ``weeks``. Because the split is independent of
everything, the cause-specific hazard of job is 0.85 × the all-cause hazard and has the same
hazard ratio.
"""

import numpy as np
import pandas as pd


LAMBDA, SHAPE = 0.04, 0.8  # Weibull baseline: cumulative hazard (LAMBDA * t) ** SHAPE, t in weeks


def simulate_spells(n=20000, n_kom=30, n_treated=8, hr=1.10, seed=1, weeks=60, job_share=0.85,
                    n_quarters=8, quarter_effect=0.2, cohorts=None, kom_sd=0.3):
    """Spells with durations in whole weeks and a planted treated×post hazard ratio ``hr``.

    Municipalities ``k0..k{n_treated-1}`` are treated. ``cohorts``: first treated start quarter
    for the treated municipalities (cycled over them; default: all at ``n_quarters // 2``).
    Columns: kommune_kode, start_kvartal (0-based), kohorte (first treated quarter, 0 =
    never treated), treated, post (start quarter >= the municipality's cohort), varighed_uger,
    status (job / uddannelse / censureret), x1 (noise covariate), lin (true log relative
    hazard, for computing true effects).
    """
    rng = np.random.default_rng(seed)
    kom = rng.integers(0, n_kom, n)
    q = rng.integers(0, n_quarters, n)
    treated_kom = np.arange(n_kom) < n_treated
    coh = np.zeros(n_kom, dtype=int)
    if cohorts is None:
        coh[treated_kom] = n_quarters // 2
    else:
        coh[treated_kom] = np.resize(np.asarray(cohorts, dtype=int), n_treated)
    if (coh[treated_kom] < 1).any():
        raise ValueError("cohorts must be >= 1 (0 means never treated)")
    treated = treated_kom[kom].astype(int)
    post = (treated == 1) & (q >= coh[kom])
    post = np.where(treated == 1, post, q >= n_quarters // 2).astype(int)
    kom_eff = rng.normal(0, kom_sd, n_kom)[kom]
    q_eff = np.linspace(-quarter_effect, quarter_effect, n_quarters)[q]
    lin = kom_eff + q_eff + np.log(hr) * treated * post
    u = rng.random(n)
    t = (-np.log(u) / np.exp(lin)) ** (1 / SHAPE) / LAMBDA
    c = np.minimum(rng.exponential(80, n), weeks)
    tt = np.minimum(t, c)
    ev = t <= c
    status = np.where(ev, np.where(rng.random(n) < job_share, "job", "uddannelse"), "censureret")
    return pd.DataFrame({
        "kommune_kode": np.char.add("k", kom.astype(str)), "start_kvartal": q,
        "kohorte": coh[kom], "treated": treated, "post": post,
        "varighed_uger": np.floor(tt).astype(int), "status": status, "x1": rng.normal(size=n),
        "lin": lin,
    })


def true_job_survival(week, lin, job_share=0.85):
    """True cause-specific (job) survival at whole week ``week`` (exit to job with floor(T) <= week
    not yet happened), for a spell with log relative hazard ``lin``:
    ``exp(-job_share * (LAMBDA * (week + 1)) ** SHAPE * exp(lin))``."""
    return np.exp(-job_share * (LAMBDA * (np.asarray(week) + 1.0)) ** SHAPE * np.exp(lin))
