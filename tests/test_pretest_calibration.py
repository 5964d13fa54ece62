"""Smoke test of the calibration study's pre-test and SDID randomization-inference arms
(studies/calibration.py): the code path the Monte Carlo runs, on tiny permutation counts.

Cross-check of ``extra_stats``: the permutation p-value of a statistic passed as an extra
statistic equals the p-value of a separate run with that statistic as the main statistic and
the same seed (same draws), and the study's χ² Wald row is the estimator's own pre-test.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studies import calibration as cal  # noqa: E402

from evaluering.inference import randomization_inference  # noqa: E402


def test_cs_pretest_replication_rows_and_shared_draws():
    rows = pd.DataFrame(cal.cs_pretest_replication("null", 3, n_perm=6)).set_index("method")
    assert list(rows.index) == list(cal.CS_PRE_METHODS)
    assert rows["p"].between(0, 1).all()
    seed = int(rows.loc["CS-Wald", "seed"])
    d = cal.simulate_cs_pretest("null", seed)
    # the report's design: 98 municipalities x 12 half-years, 11 treated in three rounds,
    # person counts varying by period
    assert d["kommune_kode"].nunique() == 98 and d["t"].nunique() == 12
    assert d.loc[d.kohorte > 0].groupby("kohorte")["kommune_kode"].nunique().to_dict() == \
        {8: 4, 9: 4, 10: 3}
    assert (d.groupby("kommune_kode")["n"].nunique() > 1).any()
    obs = cal._cs_report_call(d)
    assert rows.loc["CS-Wald", "p"] == pytest.approx(obs.info["pretest_p"], abs=1e-15)
    # the same Wald statistic as the MAIN statistic, same seed: the same permutation p-value
    ri = randomization_inference(cal._cs_report_call, d, "kommune_kode", cohort_col="kohorte",
                                 time="t", n_perm=6, seed=seed,
                                 stat=lambda r: r.info["pretest_stat"], alternative="greater")
    assert rows.loc["CS-Wald-RI", "p"] == pytest.approx(ri.p, abs=1e-15)
    ri2 = randomization_inference(cal._cs_report_call, d, "kommune_kode", cohort_col="kohorte",
                                  time="t", n_perm=6, seed=seed, stat=cal.pre_mean)
    assert rows.loc["CS-premean-RI", "p"] == pytest.approx(ri2.p, abs=1e-15)


def test_pretrend_scenario_plants_a_differential_trend():
    a = cal.simulate_cs_pretest("null", 11)
    b = cal.simulate_cs_pretest("pretrend", 11)
    diff = (b["y"] - a["y"]).to_numpy()
    treated = (a["kohorte"] > 0).to_numpy()
    assert np.allclose(diff[~treated], 0)
    assert np.allclose(diff[treated], cal.CS_PRE_TREND["pretrend"] * (a["t"][treated] - 1))


def test_sdid_ri_replication_runs():
    rows = pd.DataFrame(cal.sdid_ri_replication("k4", "null", 0, n_perm=4)).set_index("method")
    assert list(rows.index) == list(cal.SDID_RI_METHODS)
    assert (rows["error"] == "").all() and rows["p"].between(0, 1).all()
    # SDID-RI and the jackknife share the observed estimate; RI-t is estimate / jackknife se
    est, se = rows.loc["SDID-jackknife", ["estimate", "se"]]
    assert rows.loc["SDID-RI", "estimate"] == pytest.approx(est, rel=1e-12)
    assert rows.loc["SDID-RI-t", "estimate"] == pytest.approx(est / se, rel=1e-12)
