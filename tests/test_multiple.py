"""Holm and Benjamini–Hochberg adjustments against statsmodels and a hand example."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from evaluering.inference.multiple import adjust_pvalues, adjust_results


def test_hand_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: .005 .01 .03 .04 (m = 4)
    # Holm: 4*.005=.02, 3*.01=.03, 2*.03=.06, 1*.04=.04 -> running max .02 .03 .06 .06
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    # BH: .005*4/1=.02, .01*4/2=.02, .03*4/3=.04, .04*4/4=.04 -> running min from the top
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 0.02])


@pytest.mark.parametrize("method,sm_method", [("holm", "holm"), ("bh", "fdr_bh"),
                                              ("bonferroni", "bonferroni")])
def test_against_statsmodels(method, sm_method):
    rng = np.random.default_rng(1)
    for m in (1, 2, 7, 50, 333):
        p = np.concatenate([rng.uniform(size=m // 2), rng.uniform(0, 0.01, size=m - m // 2)])
        p[rng.integers(0, m, size=max(1, m // 10))] = p[0]  # ties
        rng.shuffle(p)
        ref = multipletests(p, method=sm_method)[1]
        np.testing.assert_allclose(adjust_pvalues(p, method), ref, rtol=1e-12, atol=1e-15)


def test_nan_safe_and_order_kept():
    p = np.array([0.02, np.nan, 0.01, None, 0.5], dtype=object)
    out = adjust_pvalues(p, "holm")
    assert np.isnan(out[1]) and np.isnan(out[3])
    ref = multipletests([0.02, 0.01, 0.5], method="holm")[1]
    np.testing.assert_allclose(out[[0, 2, 4]], ref)
    assert np.isnan(adjust_pvalues([np.nan, np.nan], "bh")).all()
    with pytest.raises(ValueError):
        adjust_pvalues([0.5, 1.2])
    with pytest.raises(ValueError):
        adjust_pvalues([0.5], "sidak-ish")


def test_results_table_helper_by_family():
    df = pd.DataFrame({
        "forsoeg": ["A"] * 3 + ["B"] * 3,
        "udfald": ["job_13_uger", "job_26_uger", "job_52_uger"] * 2,
        "estimate": np.arange(6.0),
        "p": [0.01, 0.04, 0.03, 0.2, np.nan, 0.001],
    })
    whole = adjust_results(df, "bh")
    assert list(whole.columns[:5]) == ["forsoeg", "udfald", "estimate", "p", "p_adj"]
    ok = df["p"].notna()
    np.testing.assert_allclose(whole.loc[ok, "p_adj"], multipletests(df.loc[ok, "p"], method="fdr_bh")[1])
    per = adjust_results(df, "holm", family="forsoeg")
    for f, g in df.groupby("forsoeg"):
        gg = g[g["p"].notna()]
        np.testing.assert_allclose(per.loc[gg.index, "p_adj"], multipletests(gg["p"], method="holm")[1])
    assert np.isnan(per.loc[4, "p_adj"])
    assert (per["p_adj_method"] == "holm").all()
    assert "p_adj" not in df.columns  # input untouched
