"""End to end with the register simulator: simulate → ingest accepts everything and keeps
the values; CSV and Parquet copies give byte-identical canonical tables; the simulator's
deliberately corrupted copy (written by another module, with its own row-level ground truth)
is quarantined exactly as that ground truth says."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from evaluering import contract
from evaluering.ingest import ingest

simulate_mod = pytest.importorskip("evaluering.simulate")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    base = tmp_path_factory.mktemp("sim")
    pq_dir = simulate_mod.simulate(base / "pq", scale="small", seed=7, n_persons=400)
    csv_dir = simulate_mod.simulate(base / "csv", scale="small", seed=7, n_persons=400, fmt="csv")
    return base, pq_dir, csv_dir


def test_simulated_data_accepted_in_full_and_values_kept(sim):
    base, pq_dir, _ = sim
    res = ingest(pq_dir, base / "out_pq")
    for reg, m in res.manifest["registers"].items():
        assert m["rows_quarantined"] == 0, (reg, m["reasons"])
        assert m["rows_read"] == m["rows_accepted"] > 0
    raw = pq.read_table(pq_dir / "forloeb.parquet").to_pandas()
    got = pq.read_table(res.out_dir / "forloeb.parquet").to_pandas()
    assert len(got) == len(raw)
    assert (got["person_id"].to_numpy() == raw["person_id"].astype(str).to_numpy()).all()
    assert (got["kommune_kode"] == raw["kommune_kode"].astype(str).str.zfill(3)).all()
    assert (pd.to_datetime(got["start_dato"]) == pd.to_datetime(raw["start_dato"])).all()
    # the weekly register: the number of benefit weeks equals the non-empty wide cells
    wide = pq.read_table(pq_dir / "ugestatus.parquet").to_pandas()
    ycols = [c for c in wide.columns if c.startswith("y_")]
    cells = wide[ycols].notna() & (wide[ycols].astype(str) != "")
    u = pq.read_table(res.out_dir / "ugestatus.parquet")
    assert u.num_rows == int(cells.to_numpy().sum())
    m = res.manifest["registers"]["ugestatus"]
    assert m["dialect"]["layout"] == "wide"
    assert m["first_week"] == contract.week_index(2014, 1)
    assert m["last_week"] == contract.week_index(2021, 52)


def test_csv_and_parquet_simulations_give_identical_tables(sim):
    base, pq_dir, csv_dir = sim
    a = ingest(pq_dir, base / "a").out_dir
    b = ingest(csv_dir, base / "b").out_dir
    for name in ("forloeb.parquet", "kontakter.parquet", "ugestatus.parquet",
                 "ugestatus_personer.parquet", "ugestatus_range.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_corrupted_copy_matches_the_simulators_ground_truth(sim):
    base, pq_dir, _ = sim
    corrupt_copy = simulate_mod.corrupt_copy
    dst = corrupt_copy(pq_dir, base / "korrupt", seed=3)
    truth_file = [p for p in dst.iterdir() if p.suffix == ".csv" and p.stem not in contract.REGISTERS]
    assert len(truth_file) == 1
    truth = pd.read_csv(truth_file[0])
    res = ingest(dst, base / "k")
    for reg in contract.REGISTERS:
        q = pq.read_table(res.out_dir / "karantaene" / f"{reg}.parquet").to_pandas()
        got = {(int(ln), "|".join(sorted(r))) for ln, r in zip(q["source_line"], q["reasons"])}
        t = truth[truth["register"] == reg]
        want = {(int(ln), r) for ln, r in zip(t["source_line"], t["reasons"])}
        assert got == want, reg
        m = res.manifest["registers"][reg]
        assert m["rows_read"] == m["rows_accepted"] + m["rows_quarantined"]
