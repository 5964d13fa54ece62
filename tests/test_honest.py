"""Rambachan–Roth sensitivity: closed forms, brute force, planted violations, API.

Independent references used here:
- M = 0 under smoothness equals linear extrapolation of the pre-trend: the GLS slope through
  the reference period (statsmodels GLS) and the minimum-variance Lagrangian closed form.
- The FLCI's optimality: brute-force grid over the estimator weights, with the worst-case bias
  computed by a separate linear programme over delta (scipy linprog).
- With (almost) no sampling noise the robust CIs equal the identified sets, which have closed
  forms for small designs; the breakdown values follow from them.
- Mbar = 0 collapses Delta^RM to "parallel trends hold exactly after treatment": the CI is the
  original normal CI.
- Coverage under planted violations inside Delta (simulation).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import optimize, stats

from evaluering.inference.honest import (HonestResult, _dual_vertices, _rm_pieces, arp_test,
                                         flci_smoothness, honest_did, rm_confidence_set)


def _cov(k, seed, scale=0.01, rho=0.3):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(k, k))
    S = A @ A.T / k + np.eye(k)
    d = np.sqrt(np.diag(S))
    S = S / np.outer(d, d)
    S = (1 - rho) * np.eye(k) + rho * S
    return scale * S


# ----------------------------------------------------------------------------- smoothness


def test_m0_equals_gls_linear_extrapolation_block_diagonal():
    n_pre, n_post = 4, 3
    rng = np.random.default_rng(1)
    S = np.zeros((7, 7))
    S[:4, :4] = _cov(4, 2)
    S[4:, 4:] = _cov(3, 3)
    b = rng.normal(0, 0.1, 7) + np.r_[-0.2, -0.15, -0.1, -0.05, 0.4, 0.5, 0.6]
    t_pre = np.arange(-4, 0).astype(float)
    t_post = np.arange(1, 4).astype(float)
    for l in (np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.ones(3) / 3):
        # GLS of the pre-period coefficients on t (no intercept: delta_0 = 0)
        gls = sm.GLS(b[:4], t_pre[:, None], sigma=S[:4, :4]).fit()
        slope, var_slope = gls.params[0], gls.cov_params()[0, 0] / gls.scale
        theta = l @ (b[4:] - slope * t_post)
        var = l @ S[4:, 4:] @ l + (l @ t_post) ** 2 * var_slope
        z = stats.norm.ppf(0.975)
        r = flci_smoothness(b, S, n_pre, n_post, 0.0, l_vec=l)
        assert r["estimate"] == pytest.approx(theta, abs=1e-10)
        assert r["ci_low"] == pytest.approx(theta - z * np.sqrt(var), abs=1e-10)
        assert r["ci_high"] == pytest.approx(theta + z * np.sqrt(var), abs=1e-10)
        res = honest_did(b, S, n_pre, n_post, method="smoothness", M_grid=[0.0], l_vec=l)
        assert res.table["ci_low"].iloc[0] == pytest.approx(theta - z * np.sqrt(var), abs=1e-10)


def test_m0_equals_minimum_variance_unbiased_for_linear_trends_correlated():
    n_pre, n_post = 3, 2
    S = _cov(5, 7, rho=0.6)
    b = np.array([0.05, -0.02, 0.01, 0.3, 0.2])
    l = np.array([0.5, 0.5])
    t = np.r_[-3, -2, -1, 1, 2].astype(float)
    # minimise Var(l'b_post + w'b_pre) s.t. w't_pre = -l't_post (Lagrangian closed form)
    Spp, Spq = S[:3, :3], S[:3, 3:]
    Si = np.linalg.inv(Spp)
    c = -(l @ t[3:])
    mu = (c + t[:3] @ Si @ Spq @ l) / (t[:3] @ Si @ t[:3])
    w = Si @ (-Spq @ l + mu * t[:3])
    v = np.r_[w, l]
    assert v @ t == pytest.approx(0, abs=1e-12)
    r = flci_smoothness(b, S, n_pre, n_post, 0.0, l_vec=l)
    sd = np.sqrt(v @ S @ v)
    assert r["estimate"] == pytest.approx(v @ b, abs=1e-10)
    assert r["half_length"] == pytest.approx(stats.norm.ppf(0.975) * sd, rel=1e-9)


def _worst_bias_lp(v, n_pre, n_post, M):
    """max v'delta over {|second differences of (delta_pre, 0, delta_post)| <= M} by LP."""
    full = list(range(-n_pre, n_post + 1))
    n = len(full)
    keep = [i for i, t in enumerate(full) if t != 0]
    D2 = np.zeros((n - 2, n))
    for k in range(n - 2):
        D2[k, k:k + 3] = [1, -2, 1]
    D = D2[:, keep]
    res = optimize.linprog(-v, A_ub=np.vstack([D, -D]), b_ub=np.full(2 * len(D), M),
                           bounds=[(None, None)] * len(v), method="highs")
    assert res.status == 0
    return -res.fun


def test_flci_is_optimal_against_brute_force():
    n_pre, n_post, M = 2, 1, 0.05
    S = _cov(3, 11, scale=0.004)
    b = np.array([0.01, 0.02, 0.2])
    r = flci_smoothness(b, S, n_pre, n_post, M)
    # v = (a, 1 - 2a, 1) satisfies v't = -2a - (1 - 2a) + 1 = 0
    def half_length(a):
        v = np.array([a, 1 - 2 * a, 1.0])
        sd = np.sqrt(v @ S @ v)
        bias = _worst_bias_lp(v, n_pre, n_post, M)
        cv = optimize.brentq(lambda c: stats.norm.cdf(c - bias / sd) - stats.norm.cdf(-c - bias / sd)
                             - 0.95, 0, 50)
        return sd * cv

    coarse = np.linspace(-3, 3, 121)
    hl = [half_length(a) for a in coarse]
    k = int(np.argmin(hl))
    fine = np.linspace(coarse[max(k - 1, 0)], coarse[min(k + 1, 120)], 201)
    best = min(min(hl), min(half_length(a) for a in fine))
    assert r["half_length"] <= best + 1e-9
    assert r["half_length"] == pytest.approx(best, rel=2e-3)
    # the reported worst-case bias agrees with the LP over delta
    assert r["max_bias"] == pytest.approx(_worst_bias_lp(r["v"], n_pre, n_post, M), rel=1e-6)


def test_smoothness_identified_set_with_negligible_noise_and_breakdown():
    # delta_t = 0.05 t before treatment; beta_1 = 0.3. Under Delta^SD(M),
    # delta_1 = 0.05 + d with |d| <= M, so theta in [0.25 - M, 0.25 + M]; breakdown 0.25.
    b = np.array([-0.10, -0.05, 0.30])
    S = 1e-10 * np.eye(3)
    res = honest_did(b, S, 2, 1, method="smoothness", M_grid=[0.0, 0.1, 0.2, 0.3])
    for M, lo, hi in zip(res.table["M"], res.table["ci_low"], res.table["ci_high"]):
        assert lo == pytest.approx(0.25 - M, abs=1e-4)
        assert hi == pytest.approx(0.25 + M, abs=1e-4)
    assert res.breakdown == pytest.approx(0.25, abs=2e-3)


def test_flci_widens_with_m_and_covers_under_planted_violation():
    n_pre, n_post = 3, 2
    S = _cov(5, 4, scale=0.01)
    b = np.zeros(5)
    Ms = [0.0, 0.01, 0.03, 0.1, 0.3]
    lens = [flci_smoothness(b, S, n_pre, n_post, M)["half_length"] for M in Ms]
    assert all(np.diff(lens) > 0)
    # planted: delta with second differences exactly M (worst direction is a parabola), tau = 0.1
    M = 0.1
    r = flci_smoothness(b, S, n_pre, n_post, M)
    t = np.r_[-3, -2, -1, 1, 2].astype(float)
    delta = 0.5 * M * t ** 2 + 0.02 * t  # second difference M everywhere, delta_0 = 0
    tau = np.array([0.1, 0.1])
    rng = np.random.default_rng(5)
    L = np.linalg.cholesky(S)
    draws = (delta + np.r_[0, 0, 0, tau])[:, None] + L @ rng.standard_normal((5, 4000))
    est = r["v"] @ draws
    cover = np.mean(np.abs(est - 0.1) <= r["half_length"])
    assert cover >= 0.94
    # without the robustification (M = 0 interval) the planted curvature breaks coverage
    r0 = flci_smoothness(b, S, n_pre, n_post, 0.0)
    cover0 = np.mean(np.abs(r0["v"] @ draws - 0.1) <= r0["half_length"])
    assert cover0 < 0.9


# ------------------------------------------------------------------------ relative magnitudes


def test_mbar0_collapses_to_original_ci():
    n_pre, n_post = 3, 3
    S = _cov(6, 8)
    b = np.array([0.02, -0.03, 0.01, 0.25, 0.3, 0.1])
    for l in (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0.2, 0.3, 0.5])):
        theta = l @ b[3:]
        sd = np.sqrt(l @ S[3:, 3:] @ l)
        z = stats.norm.ppf(0.975)
        r = rm_confidence_set(b, S, n_pre, n_post, 0.0, l_vec=l, test="C")
        assert r["ci_low"] == pytest.approx(theta - z * sd, abs=1e-5)
        assert r["ci_high"] == pytest.approx(theta + z * sd, abs=1e-5)
        h = rm_confidence_set(b, S, n_pre, n_post, 0.0, l_vec=l, test="C-LF")
        # the hybrid spends alpha/10 on the LF step: slightly wider
        assert h["ci_low"] <= r["ci_low"] + 1e-9 and h["ci_high"] >= r["ci_high"] - 1e-9
        assert h["ci_high"] - h["ci_low"] < 1.1 * (r["ci_high"] - r["ci_low"])


def test_rm_identified_set_with_negligible_noise_and_breakdown():
    # one pre-period: beta_{-1} = -0.1 means delta_0 - delta_{-1} = 0.1; beta_1 = 0.3.
    # Delta^RM(Mbar): |delta_1| <= 0.1 Mbar, theta in [0.3 - 0.1 Mbar, 0.3 + 0.1 Mbar]; breakdown 3.
    b = np.array([-0.1, 0.3])
    S = 1e-10 * np.eye(2)
    res = honest_did(b, S, 1, 1, method="relative_magnitudes", Mbar_grid=[0, 1, 2, 4], test="C")
    for Mb, lo, hi in zip(res.table["Mbar"], res.table["ci_low"], res.table["ci_high"]):
        assert lo == pytest.approx(0.3 - 0.1 * Mb, abs=1e-3)
        assert hi == pytest.approx(0.3 + 0.1 * Mb, abs=1e-3)
    assert res.breakdown == pytest.approx(3.0, abs=0.01)
    # two pre-periods: the largest pre-period change (|0.1 - 0.0| = 0.1 at s = -2, vs 0.05)
    # sets the bound; with two post periods and l = e_2, |delta_2| <= 2 * Mbar * 0.1
    b2 = np.array([-0.15, -0.05, 0.2, 0.5])  # changes: 0.1 (from -2 to -1) and 0.05 (to 0)
    r = rm_confidence_set(b2, 1e-10 * np.eye(4), 2, 2, 1.5, l_vec=[0, 1], test="C")
    assert r["ci_low"] == pytest.approx(0.5 - 0.3, abs=1e-3)
    assert r["ci_high"] == pytest.approx(0.5 + 0.3, abs=1e-3)


def test_rm_sets_widen_with_mbar_and_breakdown_is_consistent():
    n_pre, n_post = 4, 2
    S = _cov(6, 9, scale=0.004)
    b = np.array([0.03, -0.02, 0.02, -0.01, 0.25, 0.3])
    res = honest_did(b, S, n_pre, n_post, method="relative_magnitudes",
                     Mbar_grid=[0, 0.5, 1.0, 1.5, 2.0, 3.0])
    lo, hi = res.table["ci_low"].to_numpy(), res.table["ci_high"].to_numpy()
    assert np.all(np.diff(lo) < 0) and np.all(np.diff(hi) > 0)
    bd = res.breakdown
    assert 0 < bd < 3
    below = rm_confidence_set(b, S, n_pre, n_post, bd * 0.97)
    above = rm_confidence_set(b, S, n_pre, n_post, bd * 1.03 + 1e-3)
    assert below["ci_low"] > 0
    assert above["ci_low"] <= 0


def test_vertex_enumeration_matches_linear_programmes():
    rng = np.random.default_rng(3)
    n_pre, n_post = 3, 3
    S = _cov(6, 5)
    l = np.array([0.3, 0.3, 0.4])
    from scipy import linalg

    for A in _rm_pieces(n_pre, n_post, 0.7)[:3]:
        Sig = A @ S @ A.T
        X = A[:, n_pre:] @ linalg.null_space(l[None, :])
        V = _dual_vertices(X, np.sqrt(np.diag(Sig)))
        assert V is not None and len(V) > 0
        for _ in range(10):
            Y = rng.normal(0, 0.2, len(A))
            r1 = arp_test(Y, X, Sig, vertices=V)
            r2 = arp_test(Y, X, Sig)
            assert r1["eta"] == pytest.approx(r2["eta"], abs=1e-9)
            assert r1["p"] == pytest.approx(r2["p"], abs=1e-7)


def test_arp_single_moment_is_one_sided_z_test():
    # one moment, no nuisance: eta = Y/sd, V_lo = -inf, V_up = inf: p = 1 - Phi(Y/sd)
    r = arp_test(np.array([1.3]), np.zeros((1, 0)), np.array([[0.25]]))
    assert r["p"] == pytest.approx(stats.norm.sf(1.3 / 0.5), rel=1e-9)


def test_rm_coverage_under_planted_violation():
    """delta inside Delta^RM(1): post-period change equal to the largest pre-period change."""
    n_pre, n_post = 3, 1
    S = _cov(4, 12, scale=0.01)
    delta = np.array([-0.9, -0.6, -0.3, 0.3])  # pre changes 0.3, post change 0.3 (Mbar = 1)
    tau = 0.2
    beta = delta + np.r_[0, 0, 0, tau]
    L = np.linalg.cholesky(S)
    rng = np.random.default_rng(0)
    from evaluering.inference.honest import _pieces

    hits = []
    for _ in range(150):
        bh = beta + L @ rng.standard_normal(4)
        pieces = _pieces(bh, S, np.ones(1), n_pre, n_post, 1.0, 0.05, "C-LF", n_draws=1000)
        hits.append(any(not p.rejects(tau) for p in pieces))
    assert np.mean(hits) >= 0.92
    # and parallel trends (Mbar = 0) would reject the truth far more often
    miss0 = []
    for _ in range(60):
        bh = beta + L @ rng.standard_normal(4)
        pieces = _pieces(bh, S, np.ones(1), n_pre, n_post, 0.0, 0.05, "C")
        miss0.append(all(p.rejects(tau) for p in pieces))
    assert np.mean(miss0) > 0.3


# ---------------------------------------------------------------------------------- API


def test_result_object_api(tmp_path):
    b = np.array([0.01, -0.02, 0.2, 0.25])
    S = _cov(4, 1)
    res = honest_did(b, S, 2, 2, method="smoothness", M_grid=[0, 0.05, 0.1])
    assert isinstance(res, HonestResult)
    summ = res.summary()
    assert list(summ.columns) == ["M", "ci_low", "ci_high", "method"]
    assert summ["method"].iloc[0] == "original"
    assert res.original_ci[0] == pytest.approx(0.2 - 1.959964 * np.sqrt(S[2, 2]), abs=1e-5)
    d = res.to_dict()
    json.dumps(d)
    assert d["method"] == "smoothness" and len(d["table"]) == 3
    ax = res.plot()
    assert ax is not None
    rm = honest_did(b, S, 2, 2, Mbar_grid=[0, 1])
    assert rm.parameter == "Mbar" and rm.table["method"].iloc[0] == "C-LF"
    with pytest.raises(ValueError):
        honest_did(b, S, 3, 2)
    with pytest.raises(ValueError):
        honest_did(b, S, 2, 2, method="nope")
    with pytest.raises(ValueError):
        honest_did(b, S, 2, 2, l_vec=[1.0])


def test_flci_matches_independent_implementation_diff_diff():
    """Reference values from diff-diff 3.13.0 (HonestDiD, method="smoothness"), an independent
    Python implementation, computed in .venv-bench by benchmarks/bench_synth.py on the same
    (betahat, Sigma); see benchmarks/results/synth.md."""
    rng = np.random.default_rng(8)
    A = rng.normal(size=(7, 7))
    S = 0.004 * (A @ A.T / 7 + np.eye(7))
    b = np.array([0.03, -0.02, 0.02, -0.01, 0.25, 0.3, 0.2])
    ref = {
        "first": [(0.0, 0.041913, 0.444867), (0.02, 0.034827, 0.452050),
                  (0.05, 0.006798, 0.481009), (0.1, -0.049284, 0.535496)],
        "avg": [(0.0, 0.117974, 0.380453), (0.02, 0.046705, 0.452823),
                (0.05, -0.079874, 0.581110), (0.1, -0.280519, 0.782954)],
    }
    for key, l in (("first", np.array([1.0, 0, 0])), ("avg", np.ones(3) / 3)):
        for M, lo, hi in ref[key]:
            r = flci_smoothness(b, S, 4, 3, M, l_vec=l)
            assert r["ci_low"] == pytest.approx(lo, abs=2e-6)
            assert r["ci_high"] == pytest.approx(hi, abs=2e-6)


def test_sd_arp_identified_set_and_coverage():
    from evaluering.inference.honest import sd_arp_confidence_set

    # noiseless: the ARP set equals the identified set [0.25 - M, 0.25 + M]
    b = np.array([-0.10, -0.05, 0.30])
    res = honest_did(b, 1e-10 * np.eye(3), 2, 1, method="smoothness", M_grid=[0.0, 0.1, 0.3],
                     smoothness_ci="C")
    for M, lo, hi in zip(res.table["M"], res.table["ci_low"], res.table["ci_high"]):
        assert lo == pytest.approx(0.25 - M, abs=1e-3)
        assert hi == pytest.approx(0.25 + M, abs=1e-3)
    assert res.breakdown == pytest.approx(0.25, abs=2e-3)
    # planted parabola (second differences exactly M) inside Delta^SD(M): coverage of the truth
    n_pre, n_post, M, tau = 3, 2, 0.05, 0.1
    S = _cov(5, 4, scale=0.01)
    t = np.r_[-3, -2, -1, 1, 2].astype(float)
    beta = 0.5 * M * t ** 2 + 0.02 * t + np.r_[0, 0, 0, tau, tau]
    L = np.linalg.cholesky(S)
    rng = np.random.default_rng(1)
    from evaluering.inference.honest import _Piece

    full = np.arange(-n_pre, n_post + 1)
    D2 = np.zeros((len(full) - 2, len(full)))
    for k in range(len(full) - 2):
        D2[k, k:k + 3] = [1, -2, 1]
    A = np.vstack([D2[:, full != 0], -D2[:, full != 0]])
    hits = []
    for _ in range(200):
        bh = beta + L @ rng.standard_normal(5)
        p = _Piece(A, bh, S, np.r_[1.0, 0.0], n_pre, alpha=0.05, hybrid=True, kappa=0.005,
                   n_draws=2000, seed=0, d=np.full(len(A), M))
        hits.append(not p.rejects(tau))
    assert np.mean(hits) >= 0.92
    # the sets grow with M
    r1 = sd_arp_confidence_set(beta, S, n_pre, n_post, 0.01)
    r2 = sd_arp_confidence_set(beta, S, n_pre, n_post, 0.1)
    assert r2["ci_low"] < r1["ci_low"] and r2["ci_high"] > r1["ci_high"]
