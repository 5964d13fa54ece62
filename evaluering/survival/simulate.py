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


def simulate_spells(n=20000, n_kom=30, n_treated=8, hr=1.10, seed=1, weeks=60, job_share=0.85):
    rng = np.random.default_rng(seed)
    kom = rng.integers(0, n_kom, n)
    q = rng.integers(0, 8, n)  # start quarter 0..7; post from quarter 4
    treated = (kom < n_treated).astype(int)
    post = (q >= 4).astype(int)
    kom_eff = rng.normal(0, 0.3, n_kom)[kom]
    q_eff = np.linspace(-0.2, 0.2, 8)[q]
    lin = kom_eff + q_eff + np.log(hr) * treated * post
    u = rng.random(n)
    lam, k = 0.04, 0.8
    t = (-np.log(u) / (lam * np.exp(lin))) ** (1 / k)
    c = np.minimum(rng.exponential(80, n), weeks)
    tt = np.minimum(t, c)
    ev = t <= c
    status = np.where(ev, np.where(rng.random(n) < job_share, "job", "uddannelse"), "censureret")
    return pd.DataFrame({
        "kommune_kode": np.char.add("k", kom.astype(str)), "start_kvartal": q,
        "treated": treated, "post": post, "varighed_uger": np.floor(tt).astype(int),
        "status": status, "x1": rng.normal(size=n),
    })
