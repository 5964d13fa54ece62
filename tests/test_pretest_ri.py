"""Several statistics from one set of permutations (``randomization_inference(extra_stats=)``):
the Callaway–Sant'Anna pre-trend test as a permutation test.

References independent of the code under test: a brute-force enumeration of every distinct
cohort assignment written here (itertools over the label multiset, the estimator refitted per
assignment); Monte Carlo size under random assignment (where a permutation test is exact by
construction: rejection rate = 1/(n_perm+1) per replication); power against a planted
differential pre-trend.
"""

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from evaluering.estimators.cs import callaway_santanna
from evaluering.inference.randomization import (
    RIExtra,
    pretrend_statistic,
    randomization_inference,
)


def cs_cells(frame: pd.DataFrame):
    """CS as the report calls it: cells as repeated cross-sections, person-count weights,
    clustered by municipality, not-yet-treated controls, analytic covariance."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return callaway_santanna(frame, "y", None, "t", "g", weights="n", cluster="kom",
                                 panel=False, control="notyet", bootstrap=False)


def wald(res) -> float:
    return res.info["pretest_stat"]


def sum_t2(res) -> float:
    gt = res.components["att_gt"]
    pre = gt[~gt["post"].astype(bool)]
    return float(np.sum((pre["att"] / pre["se"]).to_numpy(float) ** 2))


def cell_panel(rng, n_units=24, T=6, cohorts=((4, 3), (5, 3)), pretrend=0.0,
               random_assignment=True, sigma=1.0):
    """Municipality × period cells: y = α_i + λ_t + ε_it with var(ε) ∝ 1/size_i (sizes
    log-normal, so the noise is very heterogeneous); n = Poisson persons per cell. Treated
    municipalities drawn at random (``random_assignment``) or the first ones."""
    size = np.exp(rng.normal(0, 1, n_units))
    g = np.zeros(n_units)
    order = rng.permutation(n_units) if random_assignment else np.arange(n_units)
    k = 0
    for coh, m in cohorts:
        g[order[k:k + m]] = coh
        k += m
    kom = np.repeat(np.arange(n_units), T)
    t = np.tile(np.arange(1, T + 1), n_units)
    y = (rng.normal(0, 1, n_units)[kom] + rng.normal(0, 0.5, T)[t - 1]
         + rng.normal(0, sigma, n_units * T) / np.sqrt(size[kom])
         + pretrend * (t - 1) * (g[kom] > 0))
    n = rng.poisson(30 * size[kom]) + 1.0
    return pd.DataFrame({"kom": kom, "t": t, "g": g[kom], "y": y, "n": n})


# ------------------------------------------------------------------------------- exactness
def test_exact_equals_brute_force_enumeration():
    rng = np.random.default_rng(11)
    d = cell_panel(rng, n_units=7, T=4, cohorts=((3, 2), (4, 1)), random_assignment=False)
    extra = {"wald": (wald, "greater"), "sumt2": (sum_t2, "greater"),
             "att_less": (lambda r: r.estimate, "less")}
    ri = randomization_inference(cs_cells, d, "kom", cohort_col="g", time="t",
                                 extra_stats=extra)
    assert ri.exact and ri.n_assignments == math.factorial(7) // (2 * 1 * 24) == 105

    # brute force: every distinct arrangement of the 7 municipalities' cohort labels
    labels = d.groupby("kom")["g"].first().to_numpy()
    arrangements = sorted(set(itertools.permutations(labels.tolist())))
    assert len(arrangements) == 105
    vals = []
    for arr in arrangements:
        f = d.assign(g=np.asarray(arr)[d["kom"].to_numpy()])
        r = cs_cells(f)
        vals.append((r.estimate, wald(r), sum_t2(r)))
    vals = np.array(vals)
    assert np.isfinite(vals).all()
    obs = cs_cells(d)
    o_att, o_wald, o_t2 = obs.estimate, wald(obs), sum_t2(obs)
    tol = 1e-9

    def share(x, hit):
        return float(np.mean(hit(x)))

    p_att = share(vals[:, 0], lambda x: np.abs(x) >= abs(o_att) - tol * max(1, abs(o_att)))
    p_wald = share(vals[:, 1], lambda x: x >= o_wald - tol * max(1, o_wald))
    p_t2 = share(vals[:, 2], lambda x: x >= o_t2 - tol * max(1, o_t2))
    p_less = share(vals[:, 0], lambda x: x <= o_att + tol * max(1, abs(o_att)))
    assert ri.p == pytest.approx(p_att, abs=1e-12)
    assert isinstance(ri.extra["wald"], RIExtra)
    assert ri.extra["wald"].estimate == pytest.approx(o_wald, rel=1e-12)
    assert ri.extra["wald"].p == pytest.approx(p_wald, abs=1e-12)
    assert ri.extra["sumt2"].p == pytest.approx(p_t2, abs=1e-12)
    assert ri.extra["att_less"].p == pytest.approx(p_less, abs=1e-12)
    assert ri.extra["wald"].alternative == "greater"
    # the whole randomization distributions, not only the counts
    np.testing.assert_allclose(np.sort(ri.extra["wald"].null_distribution), np.sort(vals[:, 1]),
                               rtol=1e-10)
    np.testing.assert_allclose(np.sort(ri.null_distribution), np.sort(vals[:, 0]), rtol=1e-10,
                               atol=1e-12)
    # the three p-values are not all the same number (the statistics differ)
    assert len({round(ri.p, 9), round(ri.extra["wald"].p, 9), round(ri.extra["sumt2"].p, 9)}) > 1
    d2 = ri.to_dict()
    assert d2["extra"]["wald"]["p"] == pytest.approx(p_wald)


# ------------------------------------------------------------------- unchanged for old callers
def test_extra_stats_leave_the_main_result_unchanged_and_share_draws():
    rng = np.random.default_rng(3)
    d = cell_panel(rng, n_units=20, T=5, cohorts=((3, 3), (4, 2)))
    calls = {"n": 0}

    def counted(frame):
        calls["n"] += 1
        return cs_cells(frame)

    kw = dict(cohort_col="g", time="t", n_perm=15, seed=5, ci=True, outcome="y",
              linear_in_outcome=True)
    base = randomization_inference(cs_cells, d, "kom", **kw)
    calls["n"] = 0
    with_x = randomization_inference(counted, d, "kom", **kw,
                                     extra_stats={"pretest": (wald, "greater")})
    # one estimator call per draw for both statistics: observed + 15 draws, and the CI's
    # exposure runs (15 + 1), exactly as without extra statistics
    assert calls["n"] == 1 + 15 + 15 + 1
    assert with_x.p == base.p and with_x.ci == base.ci
    np.testing.assert_array_equal(with_x.null_distribution, base.null_distribution)
    assert base.extra == {} and "extra" not in base.to_dict()
    dx = with_x.to_dict()
    dx.pop("extra")
    assert dx == base.to_dict()
    # the extra p-value is the share of the draws' Wald statistics at least the observed one
    x = with_x.extra["pretest"]
    k = int(np.sum(x.null_distribution >= x.estimate * (1 - 1e-9)))
    assert x.p == pytest.approx((1 + k) / 16)
    with pytest.raises(ValueError):
        x.null_distribution[0] = 1.0  # read-only
    with pytest.raises(ValueError):
        randomization_inference(cs_cells, d, "kom", cohort_col="g", time="t",
                                extra_stats={"a": (wald, "bigger")})
    with pytest.raises(ValueError):
        randomization_inference(cs_cells, d, "kom", cohort_col="g", time="t",
                                extra_stats=[wald])


# ------------------------------------------------------------------------ size and power
def pre_mean(res) -> float:
    gt = res.components["att_gt"]
    return float(gt.loc[~gt["post"].astype(bool), "att"].mean())


STATS = {"wald": (wald, "greater"), "sumt2": (sum_t2, "greater"), "premean": (pre_mean, "two-sided"),
         "library_mean": pretrend_statistic("mean")}


def _rejections(R, seed0, level, n_perm, **dgp):
    out = dict.fromkeys([*STATS, "att"], 0)
    for r in range(R):
        d = cell_panel(np.random.default_rng(1000 + seed0 + r), **dgp)
        ri = randomization_inference(cs_cells, d, "kom", cohort_col="g", time="t",
                                     n_perm=n_perm, seed=r, extra_stats=STATS)
        out["att"] += ri.p <= level
        for k in STATS:
            out[k] += ri.extra[k].p <= level
    return out


def test_size_under_random_assignment():
    # 60 null data sets with randomly assigned treated municipalities, 9 permutations each:
    # a correct permutation p-value (a multiple of 1/10) is <= 0.1 with probability exactly
    # 1/10 per data set; P(Binomial(60, 0.1) >= 15) = 0.001 and P(= 0) = 0.002.
    rej = _rejections(60, 0, 0.1, 9)
    for k, v in rej.items():
        assert 1 <= v <= 14, (k, rej)


def test_power_against_a_planted_pretrend():
    # a differential linear trend of 1.5 per period (noise sd 0.5 / sqrt(size))
    R = 12
    rej = _rejections(R, 50_000, 0.05, 19, pretrend=1.5, sigma=0.5)
    assert rej["premean"] >= 0.8 * R, rej
    assert rej["library_mean"] == rej["premean"]
    assert rej["sumt2"] >= 0.7 * R, rej
    assert rej["wald"] >= 0.5 * R, rej


def test_pretrend_statistics_read_the_pre_treatment_att_gt():
    rng = np.random.default_rng(8)
    res = cs_cells(cell_panel(rng, n_units=30, T=6, pretrend=0.3))
    gt = res.components["att_gt"]
    # pre-treatment rows written out by hand: t < g (no anticipation)
    pre = gt[gt["time"] < gt["group"]]
    f, alt = pretrend_statistic("mean")
    assert alt == "two-sided" and f(res) == pytest.approx(pre["att"].mean(), rel=1e-12)
    f, alt = pretrend_statistic("sumt2")
    assert alt == "greater"
    assert f(res) == pytest.approx(((pre["att"] / pre["se"]) ** 2).sum(), rel=1e-12)
    f, alt = pretrend_statistic("wald")
    assert alt == "greater" and f(res) == res.info["pretest_stat"]
    ev = res.components["event"]
    f, _ = pretrend_statistic("event_ss")
    assert f(res) == pytest.approx((ev.loc[ev["e"] < 0, "att"] ** 2).sum(), rel=1e-12)
    with pytest.raises(ValueError):
        pretrend_statistic("max")
