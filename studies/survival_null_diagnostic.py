"""Diagnostic run after the first 100 null survival replications showed a mean log HR of
+0.015 (3.5 Monte Carlo standard errors): Cox DiD under no effect on 80 fresh seeds
(9_000_000 + rep) for the study's DGP and three simplifications (no municipality effect, no
start-quarter effect, one cohort instead of three), with common random numbers across the
variants. Prints: variant, mean estimate, its Monte Carlo standard error.
Output of the run is kept in studies/results/survival_null_diagnostic.log.

    nice -n 10 .venv/bin/python studies/survival_null_diagnostic.py
"""
import numpy as np
from evaluering.survival import simulate_spells, cox_did
variants = {"base": {}, "kom_sd0": {"kom_sd": 0.0}, "qeff0": {"quarter_effect": 0.0},
            "nocohortstagger": {"cohorts": [4]}}
for name, kw in variants.items():
    est = []
    for rep in range(80):
        args = dict(n=30000, n_kom=98, n_treated=11, hr=1.0, seed=9_000_000 + rep, cohorts=[3, 4, 5])
        args.update(kw)
        s = simulate_spells(**args); s["eksp"] = s.treated * s.post
        r = cox_did(s, treated="eksp", post=None, strata="kommune_kode", time_effects="start_kvartal", cluster="kommune_kode")
        est.append(r.estimate)
    e = np.array(est); print(name, round(e.mean(), 4), round(e.std() / np.sqrt(len(e)), 4), flush=True)
