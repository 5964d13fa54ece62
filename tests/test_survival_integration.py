"""Integration: the outcomes layer's person-level time-to-job table and its aggregated
discrete-time survival table give identical curves here (shared at-risk convention), and the
discrete-hazard DiD runs on the aggregated table as produced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("evaluering.outcomes")
from evaluering.outcomes import build_outcomes  # noqa: E402
from evaluering.survival import discrete_hazard_did, kaplan_meier, kaplan_meier_cells  # noqa: E402
from test_outcomes_helpers import random_registers  # noqa: E402


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("surv") / "p"
    random_registers(folder, n_persons=500, seed=11)
    r = build_outcomes(folder)
    return pd.read_parquet(r.files["tid_til_job"]), pd.read_parquet(r.files["overlevelse"])


def test_person_level_and_outcomes_cells_agree(tables):
    t, cells = tables
    t = t[t["varighed_uger"].notna()].copy()
    assert set(t["status"].dropna()) <= {"job", "uddannelse", "censureret"}
    by = ["kommune_kode"]
    a = kaplan_meier(t.assign(varighed_uger=t["varighed_uger"].astype(int)), by=by).table
    b = kaplan_meier_cells(cells, by=by).table
    cols = by + ["time", "n_risk", "n_event", "estimate", "se"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True),
                                  check_dtype=False, rtol=1e-12, atol=1e-12)


def test_discrete_hazard_runs_on_outcomes_cells(tables):
    _, cells = tables
    koms = sorted(cells["kommune_kode"].unique())
    treated = {k: int(i % 3 == 0) for i, k in enumerate(koms)}
    c = cells.assign(treated=cells["kommune_kode"].map(treated),
                     post=(cells["start_kvartal_nr"] >= cells["start_kvartal_nr"].median()).astype(int))
    r = discrete_hazard_did(c, treated="treated", post="post", time_effects="start_kvartal_nr", max_week=52)
    assert np.isfinite(r.estimate) and r.se > 0 and r.n_units == len(koms)
    # person-weeks used: all weeks <= 52 except cells of fixed-effect levels without events
    assert 0 < r.n_obs <= int(c.loc[c["uge"] <= 52, "n_risiko"].sum())
