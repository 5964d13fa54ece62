"""Randomization inference: hand-computed exact example, MC vs exact, staggered cohorts, size, power."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from evaluering.inference.randomization import (
    RIResult,
    count_assignments,
    randomization_inference,
)


def diff_in_means(f: pd.DataFrame) -> float:
    return f.loc[f["D"] == 1, "y"].mean() - f.loc[f["D"] == 0, "y"].mean()


def test_hand_example_two_of_five():
    # y = 1,2,3,4,10; treated {d, e}: diff = 7 - 8/3 ... = (5*14 - 40)/6 = 5.
    # The 10 pair sums s give diffs (5s - 40)/6: ab -25/6, ac -20/6, ad -15/6, ae 15/6, bc -15/6,
    # bd -10/6, be 20/6, cd -5/6, ce 25/6, de 30/6 → only de reaches |5|: p = 1/10.
    d = pd.DataFrame({"u": list("abcde"), "y": [1, 2, 3, 4, 10], "D": [0, 0, 0, 1, 1]})
    res = randomization_inference(diff_in_means, d, "u", treatment_col="D")
    assert isinstance(res, RIResult)
    assert res.exact and res.n_assignments == 10 and res.n_possible == 10
    assert res.estimate == pytest.approx(5.0)
    assert res.p == pytest.approx(1 / 10)
    expected = sorted(np.array([-25, -20, -15, 15, -15, -10, 20, -5, 25, 30]) / 6)
    np.testing.assert_allclose(np.sort(res.null_distribution), expected)
    # treated {c, e}: diff 25/6; |diffs| ≥ 25/6: ab, ce, de (a tie with ab counts) → 3/10
    res2 = randomization_inference(diff_in_means, d.assign(D=[0, 0, 1, 0, 1]), "u",
                                   treatment_col="D")
    assert res2.p == pytest.approx(3 / 10)
    # one-sided: T* ≥ 25/6: ce, de → 2/10
    res3 = randomization_inference(diff_in_means, d.assign(D=[0, 0, 1, 0, 1]), "u",
                                   treatment_col="D", alternative="greater")
    assert res3.p == pytest.approx(2 / 10)
    assert (d["D"] == [0, 0, 0, 1, 1]).all()  # input untouched


def _panel(rng, n_units=10, n_treated=4, T=4, effect=0.0):
    treated = np.zeros(n_units, int)
    treated[rng.choice(n_units, n_treated, replace=False)] = 1
    unit = np.repeat(np.arange(n_units), T)
    time = np.tile(np.arange(T), n_units)
    post = (time >= T // 2).astype(int)
    D = treated[unit] * post
    y = rng.normal(size=n_units)[unit] + 0.3 * time + effect * D + rng.normal(size=len(unit))
    return pd.DataFrame({"unit": unit, "time": time, "treated": treated[unit], "post": post,
                         "D": D, "y": y})


def did_means(f: pd.DataFrame) -> float:
    """2×2 DiD of cell means (numpy bincount: fast enough for thousands of re-assignments)."""
    g = (f["treated"].to_numpy() * 2 + f["post"].to_numpy()).astype(int)
    m = np.bincount(g, weights=f["y"].to_numpy(), minlength=4) / np.bincount(g, minlength=4)
    return (m[3] - m[2]) - (m[1] - m[0])


def test_monte_carlo_agrees_with_exact():
    rng = np.random.default_rng(4)
    df = _panel(rng, n_units=10, n_treated=4, effect=0.8)
    ex = randomization_inference(did_means, df, "unit", treatment_col="treated")
    assert ex.exact and ex.n_assignments == math.comb(10, 4)
    mc = randomization_inference(did_means, df, "unit", treatment_col="treated", exact_max=10,
                                 n_perm=3000, seed=1)
    assert not mc.exact and mc.n_assignments == 3000
    se = math.sqrt(ex.p * (1 - ex.p) / 3000)
    assert abs(mc.p - ex.p) < 4 * se + 1 / 3001
    # the MC p-value counts the observed assignment: never 0
    assert mc.p >= 1 / 3001


def test_path_permutation_equals_unit_label_permutation():
    """Permuting the time-varying D_it paths = permuting the unit-level treated label."""
    rng = np.random.default_rng(7)
    df = _panel(rng, n_units=8, n_treated=3, effect=0.5)
    a = randomization_inference(did_means, df, "unit", treatment_col="treated")

    def did_from_D(f):
        tr = f.groupby("unit")["D"].transform("max")
        return did_means(f.assign(treated=tr))

    b = randomization_inference(did_from_D, df, "unit", treatment_col="D", time="time")
    assert b.info["path_permutation"] and b.n_assignments == math.comb(8, 3)
    assert a.p == b.p
    np.testing.assert_allclose(np.sort(a.null_distribution), np.sort(b.null_distribution))


def test_staggered_cohorts_preserve_the_multiset():
    cohorts = [3, 3, 5, 0, 0, 0]
    df = pd.DataFrame({"unit": np.repeat(np.arange(6), 2), "t": np.tile([1, 2], 6),
                       "g": np.repeat(cohorts, 2), "y": np.arange(12.0)})
    seen = []

    def encode(f: pd.DataFrame) -> float:
        g = f.groupby("unit")["g"].first().to_numpy()
        assert sorted(g) == sorted(cohorts)
        seen.append(tuple(g))
        return float(np.dot(g, np.arange(1, 7)))

    res = randomization_inference(encode, df, "unit", cohort_col="g")
    assert res.exact
    assert res.n_assignments == math.factorial(6) // (2 * 1 * 6) == 60
    assert count_assignments(cohorts) == 60
    # every distinct assignment exactly once (seen[0] is the observed one)
    assert len(set(seen[1:])) == 60 and set(seen[1:]) == set(itertools.permutations(cohorts))


def test_planted_effect_rejected_with_toolkit_twfe():
    from evaluering.estimators.did import twfe

    rng = np.random.default_rng(11)
    df = _panel(rng, n_units=16, n_treated=6, T=6, effect=2.0)
    est = lambda f: twfe(f, "y", "unit", "time", "D")  # noqa: E731 - returns EstimateResult
    res = randomization_inference(est, df, "unit", treatment_col="D", time="time",
                                  n_perm=99, exact_max=1000, seed=3)
    assert not res.exact
    assert res.p <= 0.02
    # stat="t" (studentised) also rejects
    res_t = randomization_inference(est, df, "unit", treatment_col="D", time="time",
                                    n_perm=49, exact_max=1000, seed=3, stat="t")
    assert res_t.p <= 0.04


def test_size_under_the_null():
    """Exact RI is exact: rejection rate at 10 % over repeated small samples is ≤ ~10 %."""
    rng = np.random.default_rng(123)
    n_sim, rej = 200, 0
    for _ in range(n_sim):
        df = _panel(rng, n_units=6, n_treated=3, T=2, effect=0.0)
        rej += randomization_inference(did_means, df, "unit", treatment_col="treated").p <= 0.10
    # P(p ≤ .1) = 2/20 exactly; binomial(200, .1) sd ≈ 2.1 %
    assert rej / n_sim <= 0.10 + 3 * math.sqrt(0.09 / n_sim)
    assert rej > 0


def test_constant_effect_ci_linear_and_generic_agree_and_cover():
    rng = np.random.default_rng(21)
    df = _panel(rng, n_units=9, n_treated=4, T=4, effect=3.0)
    kw = dict(treatment_col="D", time="time", ci=True, outcome="y", n_perm=99,
              exact_max=100, seed=5)
    lin = randomization_inference(did_from_D_panel, df, "unit", linear_in_outcome=True, **kw)
    gen = randomization_inference(did_from_D_panel, df, "unit", **kw)
    assert lin.ci[0] < lin.estimate < lin.ci[1]
    np.testing.assert_allclose(lin.ci, gen.ci, rtol=1e-4)
    # at the ends the test of tau = end is at the boundary of rejection
    lo, hi = lin.ci
    width = hi - lo
    for end, sign in ((lo, -1), (hi, +1)):
        p_in = randomization_inference(did_from_D_panel, df.assign(y=df.y - (end - sign * 1e-3 * width) * df.D),
                                       "unit", treatment_col="D", time="time", n_perm=99,
                                       exact_max=100, seed=5).p
        p_out = randomization_inference(did_from_D_panel, df.assign(y=df.y - (end + sign * 1e-3 * width) * df.D),
                                        "unit", treatment_col="D", time="time", n_perm=99,
                                        exact_max=100, seed=5).p
        assert p_in >= 0.05 > p_out


def did_from_D_panel(f):
    """DiD of means with the treated group read off the D_it path (numpy, fast)."""
    u = f["unit"].to_numpy()
    D = f["D"].to_numpy()
    tr = np.zeros(u.max() + 1)
    np.maximum.at(tr, u, D)
    g = tr[u] * 2 + f["post"].to_numpy()
    m = np.bincount(g.astype(int), weights=f["y"].to_numpy(), minlength=4) / np.bincount(
        g.astype(int), minlength=4)
    return (m[3] - m[2]) - (m[1] - m[0])


def test_result_object_and_errors():
    d = pd.DataFrame({"u": list("abcde"), "y": [1, 2, 3, 4, 10], "D": [0, 0, 0, 1, 1]})
    res = randomization_inference(diff_in_means, d, "u", treatment_col="D")
    s = res.summary()
    assert s.shape[0] == 1 and s["p"].iloc[0] == res.p
    import json

    json.dumps(res.to_dict())
    with pytest.raises(ValueError):
        res.null_distribution[0] = 0.0
    import matplotlib

    matplotlib.use("Agg")
    assert res.plot() is not None
    with pytest.raises(ValueError):
        randomization_inference(diff_in_means, d, "u")
    with pytest.raises(ValueError):
        randomization_inference(diff_in_means, d, "u", treatment_col="D", cohort_col="D")


def test_stratified_permutation():
    # two strata of 3 units, one treated in each: 3 × 3 = 9 assignments (not C(6,2) = 15)
    d = pd.DataFrame({"u": list("abcdef"), "region": [1, 1, 1, 2, 2, 2],
                      "y": [1.0, 2.0, 9.0, 1.5, 2.5, 8.0], "D": [0, 0, 1, 0, 0, 1]})
    seen = []

    def est(f):
        seen.append(tuple(f["D"]))
        assert f.groupby("region")["D"].sum().tolist() == [1, 1]
        return diff_in_means(f)

    res = randomization_inference(est, d, "u", treatment_col="D", strata="region")
    assert res.exact and res.n_assignments == 9 and res.info["n_strata"] == 2
    assert len(set(seen[1:])) == 9
    # by hand: treated sums over the 9 pairs; the observed (c, f) has the largest |diff|
    assert res.p == pytest.approx(1 / 9)
    mc = randomization_inference(diff_in_means, d, "u", treatment_col="D", strata="region",
                                 exact_max=1, n_perm=500, seed=0)
    assert not mc.exact and abs(mc.p - 1 / 9) < 0.06


def test_staggered_cohort_permutation_with_toolkit_callaway_santanna():
    """Placebo in space for a staggered design: permute cohort labels (never-treated = 0)."""
    from evaluering.estimators.cs import callaway_santanna

    rng = np.random.default_rng(13)
    n_units, T = 14, 6
    cohort = np.array([3] * 4 + [5] * 4 + [0] * 6)
    unit = np.repeat(np.arange(n_units), T)
    time = np.tile(np.arange(1, T + 1), n_units)
    g = cohort[unit]
    treated_now = (g > 0) & (time >= g)
    y = rng.normal(size=n_units)[unit] + 0.2 * time + 2.0 * treated_now \
        + 0.3 * rng.normal(size=len(unit))
    df = pd.DataFrame({"unit": unit, "time": time, "g": g, "y": y})
    est = lambda f: callaway_santanna(f, "y", "unit", "time", "g")  # noqa: E731
    res = randomization_inference(est, df, "unit", cohort_col="g", n_perm=39, exact_max=100,
                                  seed=1)
    # 14! / (4! 4! 6!) = 210210 assignments: Monte Carlo
    assert res.n_possible == math.factorial(14) // (24 * 24 * 720)
    assert not res.exact and res.p <= 1 / 40 + 1e-12
    assert res.estimate == pytest.approx(2.0, abs=0.4)
