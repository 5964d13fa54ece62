"""Smoke test of the calibration study's code path (studies/calibration.py).

A handful of tiny replications, so `make test` exercises the functions the full study runs;
the study itself (thousands of replications) is not part of the test suite. The closed-form
TWFE statistic used inside randomization inference is checked against the toolkit's
``twfe`` (an independent computation: alternating projections + the CR1 sandwich), and the
summary arithmetic against hand-counted rejection and coverage rates.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studies import calibration as cal  # noqa: E402

from evaluering.estimators import twfe  # noqa: E402


@pytest.mark.parametrize("design", ["nj11", "k4"])
def test_fast_twfe_equals_toolkit_twfe(design):
    sp, data = cal.simulate_design(cal.DESIGNS[design], "effect", 7)
    ref = twfe(data, "y", "kommune_kode", "periode", "behandlet", weights="vaegt")
    fast = cal.FastTwfe(data)
    b, se = fast.fit(data["y"].to_numpy().reshape(98, 24),
                     data["kohorte"].to_numpy().reshape(98, 24)[:, 0])
    assert b == pytest.approx(ref.estimate, rel=1e-10, abs=1e-12)
    assert se == pytest.approx(ref.se, rel=1e-10)
    assert cal.FastTwfe(data, stat="t")(data) == pytest.approx(ref.estimate / ref.se, rel=1e-10)
    # a permuted cohort assignment: still the toolkit's coefficient
    rng = np.random.default_rng(1)
    g = data.groupby("kommune_kode", sort=True)["kohorte"].first().to_numpy()
    gp = rng.permutation(g)
    perm = data.assign(kohorte=np.repeat(gp, 24))
    perm["D"] = ((perm.kohorte > 0) & (perm.periode >= perm.kohorte)).astype(int)
    ref_p = twfe(perm, "y", "kommune_kode", "periode", "D", weights="vaegt")
    assert fast(perm) == pytest.approx(ref_p.estimate, rel=1e-10, abs=1e-12)


def test_designs_plant_the_right_units():
    sp, data = cal.simulate_design(cal.DESIGNS["nj11"], "null", 0)
    treated = data.loc[data.kohorte > 0].groupby("kohorte")["kommune_kode"].unique()
    assert {g: set(v) for g, v in treated.items()} == {g: set(u) for g, u in
                                                          cal.NJ11_ROUNDS.items()}
    assert (data.sand_effekt == 0).all()
    assert cal.DESIGNS["nj11"].quarter(15) == "2017Q3"
    assert cal.DESIGNS["k4"].quarter(15) == "2023Q3"
    sp, data = cal.simulate_design(cal.DESIGNS["k4"], "effect", 0)
    assert set(data.loc[data.kohorte > 0, "kommune_kode"]) == {"219", "253", "740", "580"}
    # the planted effect is static: tau_i = 0.25 (1 + 0.2 z_i) in every treated period
    eff = data[data.behandlet == 1].groupby("kommune_kode")["sand_effekt"].agg(["min", "max"])
    assert np.allclose(eff["min"], eff["max"]) and (eff["min"] > 0).all()


def test_panel_replication_runs_every_method():
    rows = cal.panel_replication("k4", "effect", 0, B=99, n_perm=19,
                                 methods=cal.PANEL_METHODS + ("SDID-placebo",), sdid_reps=5)
    df = pd.DataFrame(rows).set_index("method")
    assert list(df.index) == [*cal.PANEL_METHODS, "SDID-placebo"]
    assert (df["error"] == "").all()
    assert df["p"].between(0, 1).all()
    # one estimate behind CR1, both wild bootstraps and RI
    est = df.loc["CR1", "estimate"]
    for m in ("WCR-rademacher", "WCR-webb", "RI"):
        assert df.loc[m, "estimate"] == pytest.approx(est, rel=1e-9)
        assert df.loc[m, "ci_low"] <= est <= df.loc[m, "ci_high"]
    # CR1 is the toolkit's twfe; the target is twfe applied to the noiseless effects
    sp, data = cal.simulate_design(cal.DESIGNS["k4"], "effect", df.loc["CR1", "seed"])
    ref = twfe(data, "y", "kommune_kode", "periode", "behandlet", weights="vaegt")
    assert df.loc["CR1", "p"] == pytest.approx(ref.p)
    tgt = twfe(data, "sand_effekt", "kommune_kode", "periode", "behandlet", weights="vaegt")
    assert df.loc["CR1", "target"] == pytest.approx(tgt.estimate)
    assert df.loc["SDID-placebo", "target"] == pytest.approx(sp.att)


def test_survival_replication_small():
    rows = cal.survival_replication("effect", 0, n=4000, n_kom=20, n_treated=4)
    df = pd.DataFrame(rows).set_index("method")
    assert (df["error"] == "").all()
    assert np.allclose(df["target"], math.log(1.10))
    # both estimate the same log hazard ratio on the same spells
    assert abs(df["estimate"].iloc[0] - df["estimate"].iloc[1]) < 0.05
    assert (df["se"] > 0).all()


def test_summarise_counts_by_hand():
    reps = pd.DataFrame({
        "design": "k4", "scenario": "null", "method": "X",
        "p": [0.01, 0.05, 0.2, 0.9, np.nan],
        "estimate": [1.0, 0.5, 0.1, 0.0, np.nan], "target": 0.0, "se": 1.0,
        "ci_low": [0.2, 0.0, -np.inf, -1.0, np.nan], "ci_high": [1.8, 1.0, 1.0, 1.0, np.nan],
        "seconds": 1.0,
    })
    s = cal.summarise(reps).iloc[0]
    assert s["reps"] == 4 and s["n_failed"] == 1
    assert s["reject"] == pytest.approx(0.5)          # p <= 0.05: 0.01 and 0.05
    assert s["reject_mcse"] == pytest.approx(math.sqrt(0.25 / 4))
    assert s["coverage"] == pytest.approx(0.75)       # [0.2, 1.8] misses 0
    assert s["share_infinite_ci"] == pytest.approx(0.25)
    assert s["bias"] == pytest.approx(0.4)
    md = cal.markdown_tables(cal.summarise(reps))
    assert "| X | 4 | 50.0 (25.0) | 75.0 (21.7) |" in md


def test_survival_score_bootstrap_rows():
    rows = cal.survival_replication("null", 0, n=3000, n_kom=20, n_treated=4,
                                    methods=("cox-boot", "discrete-boot"), bootstrap=99)
    df = pd.DataFrame(rows).set_index("method")
    assert list(df.index) == ["Cox DiD (score bootstrap)", "Discrete-time DiD (score bootstrap)"]
    assert (df["error"] == "").all()
    assert df["p"].between(0, 1).all() and df["ci_low"].isna().all()
    assert (df["target"] == 0).all()


def test_monthly_design_calendar_and_fast_twfe():
    d = cal.DESIGNS["nj11m"]
    assert [d.quarter(g) for g in sorted(d.cohorts)] == ["2017-07", "2018-01", "2018-07"]
    assert d.quarter(72) == "2019-12"
    sp, data = cal.simulate_design(d, "null", 3)
    ref = twfe(data, "y", "kommune_kode", "periode", "behandlet", weights="vaegt")
    b, se = cal.FastTwfe(data).fit(data["y"].to_numpy().reshape(98, 72),
                                   data["kohorte"].to_numpy().reshape(98, 72)[:, 0])
    assert b == pytest.approx(ref.estimate, rel=1e-10, abs=1e-12)
    assert se == pytest.approx(ref.se, rel=1e-10)
