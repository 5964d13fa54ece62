"""Corrupted copy of a simulated data set: dialect, injected bad rows, ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluering import contract
from evaluering.simulate import simulate
from evaluering.simulate.corrupt import GROUND_TRUTH_FILE


@pytest.fixture(scope="module")
def pair(corrupted_dataset):
    return corrupted_dataset(n_persons=800, seed=9)


def _read_bad_csv(path):
    raw = path.read_bytes()
    text = raw.decode("cp1252")
    return raw, pd.read_csv(path, sep=";", encoding="cp1252", dtype=str,
                            keep_default_na=False)


def test_dialect_and_encoding(pair):
    _, dst = pair
    raw, f = _read_bad_csv(dst / "forloeb.csv")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")                       # Windows-1252, not UTF-8
    assert raw.splitlines()[0].count(b";") == len(f.columns) - 1
    assert f.start_dato.str.match(r"^\d\d[-.]\d\d[-.]\d{4}$").mean() > 0.99
    assert f.kommune_kode.str.len().eq(4).any()   # '0851'-style codes
    assert {"", "NA", "."} <= set(f.slut_dato)
    _, k = _read_bad_csv(dst / "kontakter.csv")
    assert k.minutter.str.contains(",").mean() > 0.5
    assert (dst / "ydelseskoder.toml").exists() and (dst / "forsoeg.toml").exists()


def test_ground_truth_lists_exactly_the_injected_rows(pair):
    """Removing the listed lines and undoing the dialect gives back the source registers."""
    src, dst = pair
    truth = pd.read_csv(dst / GROUND_TRUTH_FILE)
    for reasons in truth.reasons:
        assert set(reasons.split("|")) <= set(contract.REASONS)
    assert set(truth.register) == {"forloeb", "kontakter", "ugestatus"}
    assert {r for rs in truth.reasons for r in rs.split("|")} >= {
        "cpr_i_person_id", "ugyldig_dato", "ukendt_kommune", "ukendt_kategori",
        "slut_foer_start", "afgang_uden_slut", "manglende_vaerdi", "ugyldigt_tal",
        "negativt_tal", "foedselsaar_uden_for_interval", "dublet", "overlap",
        "ukendt_ydelseskode", "kanal_uden_samtale"}
    for reg, date_cols in (("forloeb", ["start_dato", "slut_dato"]), ("kontakter", ["dato"])):
        _, bad = _read_bad_csv(dst / f"{reg}.csv")
        lines = set(truth.loc[truth.register == reg, "source_line"])
        keep = ~np.isin(np.arange(len(bad)) + 2, list(lines))
        good = bad[keep].reset_index(drop=True).replace({"NA": "", ".": ""})
        orig = pd.read_parquet(src / f"{reg}.parquet")
        assert len(good) == len(orig)
        for c in date_cols:
            parsed = pd.to_datetime(good[c].str.replace(".", "-", regex=False),
                                    format="%d-%m-%Y", errors="coerce")
            o = pd.to_datetime(orig[c].astype("string"))
            assert ((parsed == o) | (parsed.isna() & o.isna())).all()
        assert (good.kommune_kode.str.lstrip("0") == orig.kommune_kode.str.lstrip("0")).all()
        assert (good.person_id == orig.person_id).all()
        if reg == "kontakter":
            m = pd.to_numeric(good.minutter.str.replace(",", "."), errors="coerce")
            assert np.allclose(m.fillna(-1), orig.minutter.fillna(-1))
    _, bad = _read_bad_csv(dst / "ugestatus.csv")
    lines = set(truth.loc[truth.register == "ugestatus", "source_line"])
    assert len(bad) - len(lines) == len(pd.read_parquet(src / "ugestatus.parquet"))


@pytest.mark.slow
def test_ingest_quarantines_exactly_the_ground_truth(pair, tmp_path):
    """Cross-check with the ingest layer (when installed)."""
    ingest_mod = pytest.importorskip("evaluering.ingest")
    _, dst = pair
    ingest_mod.ingest(dst, tmp_path / "p")
    truth = pd.read_csv(dst / GROUND_TRUTH_FILE)
    for reg in ("forloeb", "kontakter", "ugestatus"):
        q = pd.read_parquet(tmp_path / "p" / "karantaene" / f"{reg}.parquet")
        got = {(int(l), "|".join(sorted(r))) for l, r in zip(q.source_line, q.reasons)}
        want = {(int(l), r) for l, r in zip(truth.loc[truth.register == reg, "source_line"],
                                             truth.loc[truth.register == reg, "reasons"])}
        assert got == want, reg


def test_simulate_corrupt_flag_writes_sibling(tmp_path):
    out = simulate(tmp_path / "s", n_persons=300, seed=1, corrupt=True)
    k = tmp_path / "s-korrupt"
    assert (out / "forloeb.parquet").exists()
    assert (k / "forloeb.csv").exists() and (k / GROUND_TRUTH_FILE).exists()
