"""Sensitivity of event-study conclusions to violations of parallel trends
(Rambachan & Roth 2023, "A More Credible Approach to Parallel Trends", REStud).

Input is any event-study coefficient vector ``betahat`` (``n_pre`` pre-period coefficients in
time order, the reference period omitted, then ``n_post`` post-period coefficients) and its
covariance ``sigma``. The target is ``theta = l' tau_post`` (default: the first post period).
Write ``beta = delta + (0, tau_post)`` with ``delta`` the bias from differential trends and
``delta_0 = 0`` at the omitted reference period. A restriction ``delta in Delta`` gives a
partially identified ``theta``; the functions here return confidence sets that are uniformly
valid over ``Delta``.

Smoothness ``Delta^SD(M)`` (``method="smoothness"``)
    ``|(delta_{t+1} - delta_t) - (delta_t - delta_{t-1})| <= M`` for all ``t`` (second
    differences, including those through the reference period). We compute the optimal
    fixed-length confidence interval (FLCI) of RR Section 4.1 (Armstrong & Kolesár 2018): among
    affine estimators ``v' betahat`` with ``v_post = l`` (finite worst-case bias requires
    ``v' t = 0``, i.e. unbiasedness for linear trends), the worst-case bias over ``Delta^SD(M)``
    is ``M ||G' v||_1`` where ``delta = s t + G d`` parameterises ``delta`` by its slope ``s``
    and second differences ``d`` (``|d_k| <= M``). The interval is ``v'betahat +- sd(v) cv_alpha(
    bias / sd(v))`` with ``cv_alpha(b)`` the ``1-alpha`` quantile of ``|N(b, 1)|``; its half-length
    is minimised over ``v`` by solving, for each bias budget ``h``, the QP ``min v'Sigma v`` s.t.
    ``||G'v||_1 <= h`` (SLSQP), and a one-dimensional search over ``h``. With ``M = 0`` this is
    the minimum-variance estimator that is unbiased under a linear pre-trend (linear
    extrapolation of the pre-trend) with the usual normal interval. ``smoothness_ci="C"`` or
    ``"C-LF"`` instead inverts the ARP test below on the single polyhedron ``|D2 delta| <= M``
    (RR find the FLCI more efficient under ``Delta^SD``; it is the default, as in HonestDiD),
    by default with only the second differences that involve a post period as moments
    (HonestDiD's ``postPeriodMomentsOnly``). The FLCI half-length ``sd cv_alpha(bias/sd)`` is
    jointly convex in ``v``, so the search over ``h`` is done as one convex programme in
    epigraph form (SLSQP), which reaches the global optimum.

Relative magnitudes ``Delta^RM(Mbar)`` (``method="relative_magnitudes"``)
    ``|delta_{t+1} - delta_t| <= Mbar * max_{s<0} |delta_{s+1} - delta_s|`` for all post ``t >= 0``.
    ``Delta^RM`` is the union over the location ``s`` and sign of the largest pre-period
    change of polyhedra ``{delta: |delta_{t+1}-delta_t| <= Mbar * (+-)(delta_{s+1}-delta_s)}``;
    for each polyhedron we invert the conditional moment-inequality test of Andrews, Roth &
    Pakes (ARP, 2023), and the confidence set is the union over the polyhedra (reported as its
    hull). The ARP conditional test: with ``Y(theta) = A betahat - A_post l theta / l'l`` and
    ``X = A_post P`` (``P`` a basis of the complement of ``l``), ``eta = max_g g'Y`` over
    ``g >= 0, X'g = 0, sigma_Y'g = 1`` (the LP dual of the studentised maximum violation);
    conditional on the optimal vertex ``g*`` and on ``S = Y - c eta``, ``c = Sigma_Y g*/g*'Sigma_Y
    g*``, ``eta`` is normal truncated to ``[V_lo, V_up]``; both bounds are linear-fractional
    programmes over the dual polytope. The polytope does not depend on ``theta``: when it has
    at most 100 000 candidate bases (up to 9 post periods) we enumerate its vertices once and
    every quantity is a maximum over them; otherwise we solve the LPs (the bounds via the
    Charnes–Cooper transform). The null is rejected when the truncated-normal upper-tail
    probability at ``eta`` (mean 0) is below ``alpha``. ``test="C-LF"`` (default, as in ARP and
    HonestDiD) is the hybrid: first a least-favourable test of size ``kappa = alpha/10`` (its
    critical value simulated with 5000 fixed-seed draws of ``max_g g'xi``,
    ``xi ~ N(0, Sigma_Y)``), then the conditional test of size ``(alpha-kappa)/(1-kappa)`` with
    ``V_up`` capped at the LF critical value. Without vertex enumeration the hybrid falls back
    to the pure conditional test (the table's ``method`` column says ``C``). The confidence set
    is computed on a grid of ``theta`` (around the estimated identified set, extended until its
    ends reject) with bisection refinement of its end points.

Callaway–Sant'Anna event studies: :func:`honest_did_cs` takes a ``callaway_santanna`` result
fitted with ``base_period="universal"``, builds ``betahat`` from its ``event`` component (the
reference period ``e = -1 - anticipation`` omitted) and ``sigma`` from the clustered influence
functions (:func:`cs_event_covariance`), and returns a :class:`HonestCSResult`; see
docs/sensitivity.md for why the varying base period is refused.

Validated against R HonestDiD's published numbers on its ``BCdata_EventStudy`` example
(tests/test_honest_published.py).

The breakdown value is the largest ``M`` (or ``Mbar``) at which the robust CI still excludes 0,
found by bisection between the grid values (assuming, as in RR's plots, that the sets widen
with ``M``); it is ``0`` if even the smallest value does not exclude 0 and ``inf`` (reported
``None`` in JSON) if the largest grid value still excludes 0.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import linalg, optimize, special, stats

from evaluering.errors import EstimationError

__all__ = ["HonestResult", "honest_did", "flci_smoothness", "rm_confidence_set",
           "sd_arp_confidence_set", "arp_test", "HonestCSResult", "honest_did_cs",
           "cs_event_covariance"]


# --------------------------------------------------------------------------------------------
# result object


@dataclass(frozen=True)
class HonestResult:
    """Rambachan–Roth sensitivity results.

    table : one row per ``M`` (or ``Mbar``): columns ``M`` or ``Mbar``, ``ci_low``,
        ``ci_high``, ``method`` (``FLCI`` or ``C`` for ARP conditional).
    original_ci : the CI for ``l'beta_post`` assuming exact parallel trends.
    breakdown : the largest ``M``/``Mbar`` at which the robust CI excludes 0.
    """

    method: str
    estimate: float
    original_ci: tuple[float, float]
    table: pd.DataFrame
    breakdown: float
    alpha: float = 0.05
    l_vec: tuple[float, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = self.table.reset_index(drop=True).copy()
        for col in t.columns:
            arr = t[col].to_numpy()
            try:
                arr.flags.writeable = False
            except ValueError:
                pass
        object.__setattr__(self, "table", t)
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))
        object.__setattr__(self, "original_ci", (float(self.original_ci[0]),
                                                 float(self.original_ci[1])))

    @property
    def parameter(self) -> str:
        return "M" if self.method == "smoothness" else "Mbar"

    def summary(self) -> pd.DataFrame:
        """The sensitivity table with the original CI as the first row (``M`` = NaN)."""
        orig = pd.DataFrame([{self.parameter: np.nan, "ci_low": self.original_ci[0],
                              "ci_high": self.original_ci[1], "method": "original"}])
        return pd.concat([orig, self.table], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        from evaluering.results import _clean, frame_records

        return {"method": self.method, "estimate": _clean(self.estimate),
                "original_ci": [_clean(x) for x in self.original_ci],
                "breakdown": _clean(self.breakdown), "alpha": self.alpha,
                "l_vec": list(self.l_vec), "table": frame_records(self.table),
                "info": {k: _clean(v) for k, v in self.info.items()}}

    def plot(self, ax=None):
        """Robust CIs against ``M``/``Mbar`` next to the original CI (RR's sensitivity plot)."""
        from evaluering.plotting import _axes

        ax = _axes(ax)
        x = self.table[self.parameter].to_numpy(float)
        lo, hi = self.table["ci_low"].to_numpy(float), self.table["ci_high"].to_numpy(float)
        step = (np.diff(x).min() if len(x) > 1 else 1.0) or 1.0
        x0 = x.min() - step
        ax.errorbar([x0], [(self.original_ci[0] + self.original_ci[1]) / 2],
                    yerr=[[(self.original_ci[1] - self.original_ci[0]) / 2]], fmt="none",
                    capsize=4, color="C3", label="original")
        ax.errorbar(x, (lo + hi) / 2, yerr=(hi - lo) / 2, fmt="none", capsize=4, color="C0",
                    label=f"robust ({self.method})")
        ax.axhline(0, color="grey", lw=0.8)
        if np.isfinite(self.breakdown):
            ax.axvline(self.breakdown, color="grey", ls=":", lw=0.8)
        ax.set_xlabel(self.parameter)
        ax.set_ylabel("theta")
        ax.legend()
        return ax


# --------------------------------------------------------------------------------------------
# helpers


def _check(betahat, sigma, n_pre, n_post, l_vec):
    b = np.asarray(betahat, dtype=float).ravel()
    S = np.asarray(sigma, dtype=float)
    if n_pre < 1 or n_post < 1:
        raise ValueError("need n_pre >= 1 and n_post >= 1")
    if len(b) != n_pre + n_post:
        raise ValueError(f"betahat has length {len(b)}, expected n_pre + n_post = {n_pre + n_post}")
    if S.shape != (len(b), len(b)):
        raise ValueError(f"sigma must be {len(b)}x{len(b)}")
    if not np.allclose(S, S.T, atol=1e-10 * (1 + np.abs(S).max())):
        raise ValueError("sigma is not symmetric")
    S = (S + S.T) / 2
    if l_vec is None:
        l = np.zeros(n_post)
        l[0] = 1.0
    else:
        l = np.asarray(l_vec, dtype=float).ravel()
        if len(l) != n_post:
            raise ValueError(f"l_vec must have length n_post = {n_post}")
    return b, S, l


def _cv_abs_normal(bias: float, alpha: float) -> float:
    """1-alpha quantile of |N(bias, 1)|."""
    b = abs(bias)
    if b > 10 + stats.norm.ppf(1 - alpha):
        return b + stats.norm.ppf(1 - alpha)
    f = lambda c: stats.norm.cdf(c - b) - stats.norm.cdf(-c - b) - (1 - alpha)
    return optimize.brentq(f, 0.0, b + 10.0, xtol=1e-12)


def _sd_basis(n_pre: int, n_post: int) -> tuple[np.ndarray, np.ndarray]:
    """(G, t): delta = s t + G d with d the second differences (through the reference period).

    Coordinates are the event times -n_pre..-1, 1..n_post (0 is the reference, delta_0 = 0).
    """
    times = np.concatenate([np.arange(-n_pre, 0), np.arange(1, n_post + 1)])
    full = np.arange(-n_pre, n_post + 1)
    n = len(full)
    D2 = np.zeros((n - 2, n))
    for k in range(n - 2):
        D2[k, k:k + 3] = [1.0, -2.0, 1.0]
    keep = full != 0
    D2r = D2[:, keep]
    slope_row = (times == 1).astype(float)  # delta_1 - delta_0 = delta_1
    Amat = np.vstack([D2r, slope_row])
    B = np.linalg.inv(Amat)
    G = B[:, :-1]
    t = B[:, -1]
    return G, t


# --------------------------------------------------------------------------------------------
# smoothness: FLCI


def flci_smoothness(betahat, sigma, n_pre: int, n_post: int, M: float, *, l_vec=None,
                    alpha: float = 0.05, _v_start=None) -> dict[str, Any]:
    """Optimal FLCI for ``theta = l'tau`` under ``Delta^SD(M)``.

    Returns dict with ``ci_low``, ``ci_high``, ``estimate`` (``v'betahat``), ``v`` (weights
    on betahat), ``sd``, ``max_bias``, ``half_length``. ``_v_start`` (private): pre-period
    weights to start the convex programme from (the solution at a nearby ``M``).
    """
    b, S, l = _check(betahat, sigma, n_pre, n_post, l_vec)
    G, t = _sd_basis(n_pre, n_post)
    tpre, tpost = t[:n_pre], t[n_pre:]
    K = G.shape[1]
    Gp, Gq = G[:n_pre], G[n_pre:]
    gl = Gq.T @ l                       # bias coefficients from the fixed post part
    S_pp, S_pq, S_qq = S[:n_pre, :n_pre], S[:n_pre, n_pre:], S[n_pre:, n_pre:]
    c_req = -float(l @ tpost)           # v_pre' t_pre must equal this

    def var(vp):
        return float(vp @ S_pp @ vp + 2 * vp @ S_pq @ l + l @ S_qq @ l)

    def bias1(vp):
        return float(np.abs(Gp.T @ vp + gl).sum())

    # minimum variance subject to v't = 0 only (closed form via KKT)
    Kmat = np.zeros((n_pre + 1, n_pre + 1))
    Kmat[:n_pre, :n_pre] = 2 * S_pp
    Kmat[:n_pre, n_pre] = tpre
    Kmat[n_pre, :n_pre] = tpre
    rhs = np.concatenate([-2 * S_pq @ l, [c_req]])
    v0 = np.linalg.lstsq(Kmat, rhs, rcond=None)[0][:n_pre]
    h_max = bias1(v0)

    def chi_of(vp):
        sd = math.sqrt(max(var(vp), 1e-300))
        return sd * _cv_abs_normal(M * bias1(vp) / sd, alpha), sd

    if M == 0 or h_max <= 1e-14:
        vbest = v0
    else:
        # minimum achievable L1 bias (LP): variables vp (free), u >= |Gp'vp + gl|
        n, k = n_pre, K
        c = np.concatenate([np.zeros(n), np.ones(k)])
        A_ub = np.block([[Gp.T, -np.eye(k)], [-Gp.T, -np.eye(k)]])
        b_ub = np.concatenate([-gl, gl])
        A_eq = np.concatenate([tpre, np.zeros(k)])[None, :]
        lp = optimize.linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[c_req],
                              bounds=[(None, None)] * n + [(0, None)] * k, method="highs")
        h_min = float(lp.fun) if lp.status == 0 else 0.0
        v_hmin = lp.x[:n] if lp.status == 0 else v0

        # The half-length hl(bias, sd) = sd * cv_alpha(bias / sd) is the perspective of the
        # convex, increasing cv_alpha, hence jointly convex and increasing in (bias, sd); bias
        # (an L1 norm of an affine map) and sd (a norm) are convex in vp, so the half-length
        # is convex in vp. One smooth convex programme in the epigraph form (vp, u >= |Gp'vp +
        # gl|) therefore finds the global optimum; it is started from both ends of the
        # variance/bias frontier (minimum variance v0, minimum bias v_hmin).
        def hl_and_grad(zz):
            vp, u = zz[:n], zz[n:]
            vv = max(var(vp), 1e-300)
            sd = math.sqrt(vv)
            bias = M * float(u.sum())
            tt = bias / sd
            cv = _cv_abs_normal(tt, alpha)
            pa, pb = stats.norm.pdf(cv - tt), stats.norm.pdf(-cv - tt)
            dcdt = (pa - pb) / (pa + pb) if (pa + pb) > 0 else 1.0
            d_bias = dcdt                      # d hl / d bias
            d_sd = cv - tt * dcdt              # d hl / d sd
            g_vp = d_sd * (S_pp @ vp + S_pq @ l) / sd
            g_u = np.full(k, d_bias * M)
            return sd * cv, np.concatenate([g_vp, g_u])

        cons = [
            {"type": "ineq", "fun": lambda z: z[n:] - (Gp.T @ z[:n] + gl),
             "jac": lambda z: np.hstack([-Gp.T, np.eye(k)])},
            {"type": "ineq", "fun": lambda z: z[n:] + (Gp.T @ z[:n] + gl),
             "jac": lambda z: np.hstack([Gp.T, np.eye(k)])},
            {"type": "eq", "fun": lambda z: np.array([z[:n] @ tpre - c_req]),
             "jac": lambda z: np.concatenate([tpre, np.zeros(k)])[None, :]},
        ]
        cand = [(chi_of(v0)[0], v0), (chi_of(v_hmin)[0], v_hmin)]
        starts = [v0, v_hmin]
        if _v_start is not None and len(_v_start) == n:
            starts.insert(0, np.asarray(_v_start, dtype=float))
        for start in starts:
            x0 = np.concatenate([start, np.abs(Gp.T @ start + gl)])
            res = optimize.minimize(hl_and_grad, x0, jac=True, constraints=cons,
                                    method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
            vp = res.x[:n]
            vp = vp + (c_req - vp @ tpre) * tpre / (tpre @ tpre)
            cand.append((chi_of(vp)[0], vp))
            if res.success:  # convex: one converged run is the global optimum
                break
        vbest = min(cand, key=lambda c_: c_[0])[1]
    chi, sd = chi_of(vbest)
    v = np.concatenate([vbest, l])
    est = float(v @ b)
    return {"ci_low": est - chi, "ci_high": est + chi, "estimate": est, "v": v, "sd": sd,
            "max_bias": M * bias1(vbest), "half_length": chi}


# --------------------------------------------------------------------------------------------
# relative magnitudes: ARP conditional test


def _lp_max(obj, A_eq, b_eq):
    """max obj'u s.t. u >= 0, A_eq u = b_eq. Returns (value or +-inf, solution)."""
    res = optimize.linprog(-obj, A_eq=A_eq, b_eq=b_eq, bounds=[(0, None)] * len(obj),
                           method="highs")
    if res.status == 0:
        return -float(res.fun), res.x
    if res.status == 2:
        return -np.inf, None
    if res.status == 3:
        return np.inf, None
    raise RuntimeError(f"linear programme failed: {res.message}")


@functools.lru_cache(maxsize=32)
def _combinations(m: int, r: int) -> np.ndarray:
    from itertools import combinations

    out = np.fromiter((i for c in combinations(range(m), r) for i in c), dtype=np.int64)
    out = out.reshape(-1, r)
    out.flags.writeable = False
    return out


def _dual_vertices(X: np.ndarray, sig: np.ndarray, max_bases: int = 100_000) -> np.ndarray | None:
    """All vertices of ``{g >= 0, X'g = 0, sig'g = 1}`` (rows), or None if too many bases.

    A vertex is a basic feasible solution: ``r = rank`` positive coordinates solving the
    equality system. The polytope does not depend on ``theta``, so it is enumerated once per
    polyhedron and every test is then a matrix product.
    """
    m = len(sig)
    E_full = np.vstack([X.T, sig[None, :]]) if X.size else sig[None, :]
    # keep a maximal set of linearly independent equality rows, always including the sigma
    # row (the only one with a non-zero right-hand side): put it first in the pivoting QR
    order = np.concatenate([[E_full.shape[0] - 1], np.arange(E_full.shape[0] - 1)])
    _, r_, piv = linalg.qr(E_full[order].T, pivoting=True, mode="economic")
    rank = int(np.sum(np.abs(np.diag(r_)) > 1e-10 * np.abs(r_).max()))
    keep = np.sort(order[piv[:rank]])
    if E_full.shape[0] - 1 not in keep:
        return None
    E = E_full[keep]
    rhs = (keep == E_full.shape[0] - 1).astype(float)
    if math.comb(m, rank) > max_bases:
        return None
    combos = _combinations(m, rank)
    Bs = E[:, combos].transpose(1, 0, 2)               # (n_comb, rank, rank)
    dets = np.linalg.det(Bs)
    ok = np.abs(dets) > 1e-12 * (np.abs(E).max() ** rank)
    combos, Bs = combos[ok], Bs[ok]
    sol = np.linalg.solve(Bs, np.broadcast_to(rhs, (len(Bs), rank))[..., None])[..., 0]
    feas = np.all(sol >= -1e-12, axis=1)
    V = np.zeros((int(feas.sum()), m))
    rows = np.repeat(np.arange(len(V)), rank)
    V[rows, combos[feas].ravel()] = np.clip(sol[feas], 0, None).ravel()
    if len(V) == 0:
        return V
    V = np.unique(np.round(V, 12), axis=0)
    return V


def _log_diff_cdf(a: float, b: float) -> float:
    """log(Phi(b) - Phi(a)) for a <= b, stable in both tails."""
    if a >= b:
        return -np.inf
    if a > 0:  # use upper tails: Phi(b)-Phi(a) = sf(a) - sf(b)
        la, lb = float(special.log_ndtr(-a)), float(special.log_ndtr(-b))
    else:
        la, lb = float(special.log_ndtr(b)), float(special.log_ndtr(a))
    if not np.isfinite(lb):
        return la
    return la + np.log1p(-np.exp(lb - la))


def _tn_upper_p(eta: float, v_lo: float, v_up: float, sd: float) -> float:
    """P(Z >= eta | v_lo <= Z <= v_up) for Z ~ N(0, sd^2)."""
    num = _log_diff_cdf(eta / sd, v_up / sd)
    den = _log_diff_cdf(v_lo / sd, v_up / sd)
    if not np.isfinite(den):
        return 1.0
    return float(min(max(np.exp(num - den), 0.0), 1.0))


def arp_test(Y: np.ndarray, X: np.ndarray, Sigma_Y: np.ndarray, *,
             vertices: np.ndarray | None = None, c_lf: float = np.inf) -> dict[str, float]:
    """ARP conditional test of ``H0: exists z with E[Y] - X z <= 0`` for ``Y ~ N(mu, Sigma_Y)``.

    ``vertices``: the dual polytope's vertices (exact enumeration; else LPs are solved).
    ``c_lf``: the least-favourable critical value of the hybrid test (``eta`` is then also
    conditioned on ``eta <= c_lf``). Returns ``eta`` (studentised max violation), ``v_lo``,
    ``v_up``, ``sd`` and ``p`` (the truncated-normal upper-tail probability at mean 0).
    """
    m = len(Y)
    sig = np.sqrt(np.diag(Sigma_Y))
    if np.any(sig <= 0):
        raise ValueError("a moment has zero variance")
    if vertices is not None:
        vals = vertices @ Y
        k = int(np.argmax(vals))
        eta, g = float(vals[k]), vertices[k]
    else:
        A_eq = np.vstack([X.T, sig[None, :]]) if X.size else sig[None, :]
        b_eq = np.concatenate([np.zeros(X.shape[1] if X.size else 0), [1.0]])
        eta, g = _lp_max(Y, A_eq, b_eq)
        if g is None or not np.isfinite(eta):
            raise RuntimeError("ARP test: the dual LP has no solution")
    var_g = float(g @ Sigma_Y @ g)
    scale = float(np.max(np.abs(Sigma_Y)))
    if var_g <= 1e-12 * scale * float(g @ g):
        # the optimal combination of moments is non-random (e.g. the two sides of an equality):
        # its value is known under the null to be <= 0
        tol = 1e-8 * (1.0 + float(np.max(np.abs(Y))))
        return {"eta": float(eta), "v_lo": -np.inf, "v_up": np.inf, "sd": 0.0,
                "p": 0.0 if eta > tol else 1.0}
    sd = math.sqrt(var_g)
    c = Sigma_Y @ g / var_g
    Sres = Y - c * eta
    if vertices is not None:
        gc = vertices @ c
        gS = vertices @ Sres
        tol = 1e-10
        below = gc < 1 - tol
        above = gc > 1 + tol
        v_lo = float(np.max(gS[below] / (1 - gc[below]))) if below.any() else -np.inf
        v_up = float(np.min(gS[above] / (1 - gc[above]))) if above.any() else np.inf
    else:
        Xe = X.T if X.size else np.zeros((0, m))
        z = np.zeros(len(Xe))
        lo, _ = _lp_max(Sres, np.vstack([Xe, (sig - c)[None, :]]), np.concatenate([z, [1.0]]))
        up_neg, _ = _lp_max(Sres, np.vstack([Xe, (c - sig)[None, :]]), np.concatenate([z, [1.0]]))
        v_lo, v_up = lo, -up_neg
    v_lo = min(v_lo, eta)
    v_up = max(min(v_up, c_lf), eta) if eta <= c_lf else max(v_up, eta)
    return {"eta": float(eta), "v_lo": float(v_lo), "v_up": float(v_up), "sd": sd,
            "p": _tn_upper_p(eta, v_lo, v_up, sd)}


def _rm_pieces(n_pre: int, n_post: int, Mbar: float) -> list[np.ndarray]:
    """Constraint matrices A (A delta <= 0) of the polyhedra whose union is Delta^RM(Mbar)."""
    n = n_pre + n_post
    # first differences as rows of a matrix on delta (coordinates -n_pre..-1, 1..n_post)
    times = list(range(-n_pre, 0)) + list(range(1, n_post + 1))
    pos = {t: i for i, t in enumerate(times)}

    def fd(t):  # delta_t - delta_{t-1}, with delta_0 = 0
        r = np.zeros(n)
        if t != 0:
            r[pos[t]] += 1
        if t - 1 != 0:
            r[pos[t - 1]] -= 1
        return r

    pre = [fd(s + 1) for s in range(-n_pre, 0)]      # delta_{s+1} - delta_s, s = -n_pre..-1
    post = [fd(t) for t in range(1, n_post + 1)]     # delta_{t+1} - delta_t, t = 0..n_post-1
    pieces = []
    for ps in pre:
        for sign in (1.0, -1.0):
            rows = []
            for q in post:
                rows.append(q - Mbar * sign * ps)
                rows.append(-q - Mbar * sign * ps)
            pieces.append(np.array(rows))
    return pieces


class _Piece:
    """One polyhedron ``{A delta <= d}``: fixed moments, dual vertices, LF critical value."""

    def __init__(self, A, b, S, l, n_pre, *, alpha, hybrid, kappa, n_draws, seed,
                 use_vertices=True, d=None):
        A_post = A[:, n_pre:]
        self.A = A
        self.d = np.zeros(len(A)) if d is None else np.asarray(d, dtype=float)
        self.Sigma_Y = A @ S @ A.T
        P = linalg.null_space(l[None, :])
        self.X = A_post @ P if P.size else np.zeros((A.shape[0], 0))
        self.base = A @ b - self.d
        self.shift = A_post @ l / (l @ l)
        sig = np.sqrt(np.diag(self.Sigma_Y))
        self.V = _dual_vertices(self.X, sig) if use_vertices else None
        self.alpha = alpha
        self.c_lf = np.inf
        self.alpha_c = alpha
        # the least-favourable critical value needs max_g g'xi for thousands of draws: exact and
        # cheap with the vertices; without them (many post periods) fall back to the pure
        # conditional test rather than solve thousands of LPs
        self.test_used = "C-LF" if (hybrid and self.V is not None and len(self.V)) else "C"
        if self.test_used == "C-LF":
            rng = np.random.default_rng(seed)
            L = np.linalg.cholesky(self.Sigma_Y + 1e-12 * np.eye(len(sig)) * sig.max() ** 2)
            xi = L @ rng.standard_normal((len(sig), n_draws))
            etas = np.max(self.V @ xi, axis=0)
            self.c_lf = float(np.quantile(etas, 1 - kappa))
            self.alpha_c = (alpha - kappa) / (1 - kappa)

    def rejects(self, theta: float) -> bool:
        Y = self.base - self.shift * theta
        r = arp_test(Y, self.X, self.Sigma_Y, vertices=self.V, c_lf=self.c_lf)
        if r["eta"] > self.c_lf:
            return True
        return r["p"] < self.alpha_c


def _pieces(b, S, l, n_pre, n_post, Mbar, alpha, test, n_draws=5000, seed=0):
    hybrid = test == "C-LF"
    return [_Piece(A, b, S, l, n_pre, alpha=alpha, hybrid=hybrid, kappa=alpha / 10,
                   n_draws=n_draws, seed=seed + k)
            for k, A in enumerate(_rm_pieces(n_pre, n_post, Mbar))]


def rm_confidence_set(betahat, sigma, n_pre: int, n_post: int, Mbar: float, *, l_vec=None,
                      alpha: float = 0.05, test: str = "C-LF", grid_points: int = 41
                      ) -> dict[str, Any]:
    """ARP confidence set (its hull) for ``theta`` under ``Delta^RM(Mbar)``.

    ``test``: ``C`` (conditional) or ``C-LF`` (conditional / least-favourable hybrid with
    ``kappa = alpha/10``, ARP's and HonestDiD's default).
    """
    if test not in ("C", "C-LF"):
        raise ValueError(f"unknown test {test!r}")
    b, S, l = _check(betahat, sigma, n_pre, n_post, l_vec)
    pieces = _pieces(b, S, l, n_pre, n_post, Mbar, alpha, test)
    return _arp_confidence_set(b, S, l, n_pre, n_post, pieces, grid_points)


def sd_arp_confidence_set(betahat, sigma, n_pre: int, n_post: int, M: float, *, l_vec=None,
                          alpha: float = 0.05, test: str = "C-LF", grid_points: int = 41,
                          post_moments_only: bool = True) -> dict[str, Any]:
    """ARP confidence set for ``theta`` under ``Delta^SD(M)`` (one polyhedron
    ``|D2 delta| <= M``), the alternative to the FLCI that RR also discuss.

    ``post_moments_only`` (default True, HonestDiD's documented default): the test uses only
    the moment inequalities that involve a post-period coefficient, i.e. drops the second
    differences lying entirely in the pre-period (a valid test with fewer moments; with
    ``M = 0`` it extrapolates the line through the last pre-period and the reference period).
    With False every second difference is a moment, so pre-trends that are not (nearly)
    linear shrink the set, and it is empty when the data reject ``Delta^SD(M)`` itself."""
    if test not in ("C", "C-LF"):
        raise ValueError(f"unknown test {test!r}")
    b, S, l = _check(betahat, sigma, n_pre, n_post, l_vec)
    full = np.arange(-n_pre, n_post + 1)
    n = len(full)
    D2 = np.zeros((n - 2, n))
    for k in range(n - 2):
        D2[k, k:k + 3] = [1.0, -2.0, 1.0]
    D2 = D2[:, full != 0]
    if post_moments_only:
        D2 = D2[np.any(D2[:, n_pre:] != 0, axis=1)]
    A = np.vstack([D2, -D2])
    piece = _Piece(A, b, S, l, n_pre, alpha=alpha, hybrid=test == "C-LF", kappa=alpha / 10,
                   n_draws=5000, seed=0, d=np.full(len(A), float(M)))
    return _arp_confidence_set(b, S, l, n_pre, n_post, [piece], grid_points)


def _arp_confidence_set(b, S, l, n_pre, n_post, pieces, grid_points) -> dict[str, Any]:
    est = float(l @ b[n_pre:])
    sd = math.sqrt(float(l @ S[n_pre:, n_pre:] @ l))

    def accepted(theta):
        return any(not p.rejects(theta) for p in pieces)

    # identified-set bounds at betahat (union over pieces) to place the grid
    lo_id, hi_id = est, est
    for p in pieces:
        for sgn in (1.0, -1.0):
            # optimise l'(b_post - delta_post) over delta with delta_pre = b_pre, A delta <= d
            c = np.concatenate([np.zeros(n_pre), sgn * l])
            res = optimize.linprog(c, A_ub=p.A, b_ub=p.d,
                                   A_eq=np.hstack([np.eye(n_pre), np.zeros((n_pre, n_post))]),
                                   b_eq=b[:n_pre], bounds=[(None, None)] * (n_pre + n_post),
                                   method="highs")
            if res.status == 0:
                val = est - float(l @ res.x[n_pre:])
                lo_id, hi_id = min(lo_id, val), max(hi_id, val)
    span = hi_id - lo_id
    lo, hi = lo_id - 4 * sd - 0.5 * span, hi_id + 4 * sd + 0.5 * span
    width = hi - lo
    for _ in range(10):
        grid = np.linspace(lo, hi, grid_points)
        acc = np.array([accepted(th) for th in grid])
        if not acc.any():
            return {"ci_low": np.nan, "ci_high": np.nan, "empty": True,
                    "identified_set": (lo_id, hi_id)}
        if acc[0] or acc[-1]:
            lo = lo - width if acc[0] else lo
            hi = hi + width if acc[-1] else hi
            width *= 2
            continue
        break
    else:
        return {"ci_low": -np.inf if acc[0] else np.nan, "ci_high": np.inf if acc[-1] else np.nan,
                "empty": False, "identified_set": (lo_id, hi_id)}
    idx = np.flatnonzero(acc)

    def refine(inside, outside):
        for _ in range(60):
            if abs(outside - inside) < 1e-6 * (sd + abs(inside)):
                break
            mid = 0.5 * (inside + outside)
            if accepted(mid):
                inside = mid
            else:
                outside = mid
        return inside

    ci_low = refine(grid[idx[0]], grid[idx[0] - 1])
    ci_high = refine(grid[idx[-1]], grid[idx[-1] + 1])
    used = "C-LF" if all(p.test_used == "C-LF" for p in pieces) else "C"
    return {"ci_low": ci_low, "ci_high": ci_high, "empty": False,
            "identified_set": (lo_id, hi_id), "test": used}


def _rm_rejects_zero(b, S, l, n_pre, n_post, Mbar, alpha, test) -> bool:
    hybrid = test == "C-LF"
    for k, A in enumerate(_rm_pieces(n_pre, n_post, Mbar)):  # stop at the first acceptance
        p = _Piece(A, b, S, l, n_pre, alpha=alpha, hybrid=hybrid, kappa=alpha / 10,
                   n_draws=5000, seed=k)
        if not p.rejects(0.0):
            return False
    return True


# --------------------------------------------------------------------------------------------
# public entry point


def honest_did(betahat, sigma, n_pre: int, n_post: int, *, method: str = "relative_magnitudes",
               Mbar_grid: Sequence[float] | None = None, M_grid: Sequence[float] | None = None,
               l_vec=None, alpha: float = 0.05, test: str = "C-LF",
               smoothness_ci: str = "FLCI", breakdown_tol: float = 1e-3) -> HonestResult:
    """Rambachan–Roth sensitivity analysis; see the module docstring.

    ``M_grid`` (smoothness) defaults to ``0..5 sd`` of the target in 10 steps (HonestDiD's
    default scale, in outcome units); ``Mbar_grid`` (relative magnitudes) to ``0, 0.25, ..., 2``.
    """
    b, S, l = _check(betahat, sigma, n_pre, n_post, l_vec)
    est = float(l @ b[n_pre:])
    sd = math.sqrt(float(l @ S[n_pre:, n_pre:] @ l))
    z = stats.norm.ppf(1 - alpha / 2)
    original = (est - z * sd, est + z * sd)
    rows = []
    if method == "smoothness":
        grid = np.asarray(M_grid if M_grid is not None else np.linspace(0, 5 * sd, 11), float)
        if smoothness_ci not in ("FLCI", "C", "C-LF"):
            raise ValueError(f"unknown smoothness_ci {smoothness_ci!r}")

        warm: dict[str, np.ndarray] = {}

        def sd_ci(M):
            if smoothness_ci == "FLCI":
                r = flci_smoothness(b, S, n_pre, n_post, M, l_vec=l, alpha=alpha,
                                    _v_start=warm.get("v"))
                if M > 0:
                    warm["v"] = r["v"][:n_pre]
                return r
            return sd_arp_confidence_set(b, S, n_pre, n_post, M, l_vec=l, alpha=alpha,
                                         test=smoothness_ci)

        for M in grid:
            r = sd_ci(float(M))
            rows.append({"M": float(M), "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "method": r.get("test", "FLCI")})

        def excludes(M):
            r = sd_ci(M)
            return r["ci_low"] > 0 or r["ci_high"] < 0
        pname = "M"
    elif method == "relative_magnitudes":
        if n_pre < 1:
            raise ValueError("relative magnitudes need at least one pre-period")
        grid = np.asarray(Mbar_grid if Mbar_grid is not None else np.arange(0, 2.01, 0.25), float)
        for Mb in grid:
            r = rm_confidence_set(b, S, n_pre, n_post, float(Mb), l_vec=l, alpha=alpha,
                                  test=test)
            rows.append({"Mbar": float(Mb), "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "method": r.get("test", test)})

        def excludes(Mb):
            return _rm_rejects_zero(b, S, l, n_pre, n_post, Mb, alpha, test)
        pname = "Mbar"
    else:
        raise ValueError(f"unknown method {method!r}")
    table = pd.DataFrame(rows)
    ex = [(lo > 0 or hi < 0) for lo, hi in zip(table["ci_low"], table["ci_high"])]
    grid = table[pname].to_numpy()
    if not ex[0]:
        breakdown = 0.0 if grid[0] == 0 else float("nan")
    elif all(ex):
        breakdown = float("inf")
    else:
        k = ex.index(False)
        lo_m, hi_m = grid[k - 1], grid[k]
        while hi_m - lo_m > breakdown_tol * max(1.0, abs(hi_m)):
            mid = 0.5 * (lo_m + hi_m)
            if excludes(mid):
                lo_m = mid
            else:
                hi_m = mid
        breakdown = float(lo_m)
    return HonestResult(method=method, estimate=est, original_ci=original, table=table,
                        breakdown=breakdown, alpha=alpha, l_vec=tuple(float(x) for x in l),
                        info={"n_pre": n_pre, "n_post": n_post, "se": sd,
                              "test": smoothness_ci if method == "smoothness" else test})


# --------------------------------------------------------------------------------------------
# Callaway–Sant'Anna event studies


@dataclass(frozen=True)
class HonestCSResult:
    """Rambachan–Roth sensitivity of a Callaway–Sant'Anna event study (``honest_did_cs``).

    sensitivity : the underlying ``HonestResult`` (table with ``ci_low``/``ci_high``).
    event : the event-study rows used: ``e``, ``estimate``, ``se`` (from the influence-function
        covariance), ``role`` (``pre``/``reference``/``post``) and ``weight`` (``l_vec`` on the
        post periods, 0 elsewhere).
    betahat, sigma : the vector and covariance handed to ``honest_did`` (pre periods in time
        order, reference omitted, then post periods); read-only arrays.
    """

    method: str
    sensitivity: HonestResult
    event: pd.DataFrame
    betahat: np.ndarray
    sigma: np.ndarray
    n_pre: int
    n_post: int
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("betahat", "sigma"):
            arr = np.array(getattr(self, name), dtype=float, copy=True)
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        ev = self.event.reset_index(drop=True).copy()
        object.__setattr__(self, "event", ev)
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    # convenience views of the underlying sensitivity result
    @property
    def parameter(self) -> str:
        return self.sensitivity.parameter

    @property
    def estimate(self) -> float:
        return self.sensitivity.estimate

    @property
    def original_ci(self) -> tuple[float, float]:
        return self.sensitivity.original_ci

    @property
    def breakdown(self) -> float:
        return self.sensitivity.breakdown

    @property
    def alpha(self) -> float:
        return self.sensitivity.alpha

    @property
    def l_vec(self) -> tuple[float, ...]:
        return self.sensitivity.l_vec

    def summary(self) -> pd.DataFrame:
        """One row per ``M``/``Mbar`` (columns ``M`` or ``Mbar``, ``lb``, ``ub``, ``method``),
        preceded by the original CI (parallel trends exactly; ``M``/``Mbar`` = NaN,
        ``method`` = ``original``)."""
        s = self.sensitivity.summary().rename(columns={"ci_low": "lb", "ci_high": "ub"})
        return s[[self.parameter, "lb", "ub", "method"]]

    def to_dict(self) -> dict[str, Any]:
        from evaluering.results import _clean, frame_records

        d = self.sensitivity.to_dict()
        d.update({
            "estimator": "cs",
            "table": frame_records(self.summary().iloc[1:]),
            "event": frame_records(self.event),
            "betahat": [_clean(x) for x in self.betahat],
            "sigma": [[_clean(x) for x in row] for row in self.sigma],
            "n_pre": self.n_pre, "n_post": self.n_post,
            "info": {**d["info"], **{k: _clean(v) if not isinstance(v, (list, tuple, dict))
                                     else v for k, v in self.info.items()}},
        })
        return d

    def plot(self, ax=None, kind: str = "sensitivity"):
        """``kind="sensitivity"``: robust CIs against ``M``/``Mbar`` beside the original CI;
        ``kind="event"``: the event study used (estimate +- z se, reference period at 0)."""
        if kind == "sensitivity":
            return self.sensitivity.plot(ax=ax)
        if kind != "event":
            raise ValueError(f"kind must be 'sensitivity' or 'event', got {kind!r}")
        from evaluering.plotting import _axes

        ax = _axes(ax)
        z = stats.norm.ppf(1 - self.alpha / 2)
        ev = self.event
        e, est, se = ev["e"].to_numpy(float), ev["estimate"].to_numpy(float), ev["se"].to_numpy(float)
        err = np.where(np.isfinite(se), z * se, 0.0)
        colors = np.where(ev["role"] == "post", "C0", "C7")
        for xi, yi, ei, ci in zip(e, est, err, colors):
            ax.errorbar([xi], [yi], yerr=[[ei], [ei]], fmt="o", color=ci, capsize=3)
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(float(ev.loc[ev["role"] == "reference", "e"].iloc[0]) + 0.5, color="grey",
                   ls=":", lw=0.8)
        ax.set_xlabel("event time e")
        ax.set_ylabel("ATT(e)")
        return ax


def cs_event_covariance(result) -> tuple[np.ndarray, np.ndarray]:
    """Event times and the covariance of a Callaway–Sant'Anna event study.

    ``V = S'S / n**2`` with ``S`` the influence functions of the ``event`` component
    (``cs_influence(result, "event")``, including the estimated-weights term) summed within the
    result's clusters (or per unit/observation without clustering): the same analytic variance
    whose diagonal the estimator reports as the event-study standard errors.
    """
    from evaluering.estimators.cs import _fit_of, cs_influence

    if getattr(result, "method", None) != "cs":
        raise ValueError("honest_did_cs needs a callaway_santanna() result")
    infl = cs_influence(result, "event")
    vals = np.asarray(infl.values, dtype=float)
    cluster = _fit_of(result).cluster
    if cluster is not None:
        codes, n_cl = cluster
        S = np.zeros((int(n_cl), vals.shape[1]))
        np.add.at(S, np.asarray(codes), vals)
    else:
        S = vals
    V = S.T @ S / float(infl.n) ** 2
    return infl.columns["e"].to_numpy(dtype=int), (V + V.T) / 2


def honest_did_cs(result, *, method: str = "relative_magnitudes",
                  Mbar_grid: Sequence[float] | None = None,
                  M_grid: Sequence[float] | None = None, alpha: float | None = None,
                  e_pre: int | None = None, e_post: int | None = None, l_vec=None,
                  test: str = "C-LF", smoothness_ci: str = "FLCI",
                  breakdown_tol: float = 1e-3) -> HonestCSResult:
    """Rambachan–Roth sensitivity analysis of a Callaway–Sant'Anna event study.

    ``result`` must come from ``callaway_santanna(..., base_period="universal")`` in this
    session (the influence functions are kept with it). The event-time ATTs are
    ``beta_e`` for ``e = e_pre, ..., e_post``; the reference period ``e = -1 - anticipation``
    (identically 0 under the universal base period) is omitted, the earlier ones are the
    pre-periods and the later ones the post-periods, as RR require. The covariance is the
    analytic influence-function covariance, clustered as the fit was
    (:func:`cs_event_covariance`).

    Why the universal base period: RR restrict ``delta``, the path of the differential trend
    relative to the reference period, and read the pre-period coefficients as estimates of
    ``delta_pre`` (each relative to ``e = -1``). With ``base_period="varying"`` CS's
    pre-period ATT(g,t) compare ``t`` with ``t-1`` (short differences), so the pre-period event
    coefficients are first differences of the trend, not its levels, and cumulating them does
    not give the universal estimates (the cohorts behind each event time differ). A varying
    result is therefore refused. Post-period ATT(g,t) are the same under both choices.

    Parameters
    ----------
    method : ``"relative_magnitudes"`` (``Delta^RM(Mbar)``, ARP test inversion) or
        ``"smoothness"`` (``Delta^SD(M)``, FLCI by default).
    Mbar_grid, M_grid : grids (defaults as in :func:`honest_did`: ``Mbar = 0, 0.25, ..., 2``;
        ``M = 0..5 se`` of the target in 10 steps, in outcome units).
    alpha : default the result's alpha.
    e_pre, e_post : earliest and latest event time to use (default: all estimated). The
        window must keep at least one pre-period; event times must be consecutive.
    l_vec : weights on the post-period coefficients (``e > -1 - anticipation`` within the
        window); default the average of ``e = 0, ..., e_post`` (anticipation periods weight 0),
        i.e. CS's dynamic overall ATT when the window is complete.
    test, smoothness_ci, breakdown_tol : passed to :func:`honest_did`.
    """
    if getattr(result, "method", None) != "cs":
        raise ValueError("honest_did_cs needs a callaway_santanna() result")
    info = result.info
    if info.get("base_period") != "universal":
        raise ValueError("honest_did_cs needs callaway_santanna(..., base_period='universal'): "
                         "with the varying base period the pre-period event coefficients are "
                         "short differences, not the trend levels Rambachan-Roth restrict")
    alpha = float(result.alpha if alpha is None else alpha)
    antic = int(info.get("anticipation", 0) or 0)
    ref = -1 - antic
    e_all, V_all = cs_event_covariance(result)
    ev_tab = result.components["event"]
    att = dict(zip(ev_tab["e"].astype(int), ev_tab["att"].astype(float)))
    if ref not in att:
        raise EstimationError(f"the event study has no reference period e = {ref}")
    if abs(att[ref]) > 1e-12 * (1 + max(abs(v) for v in att.values())):
        raise EstimationError(f"the reference period e = {ref} is not normalised to 0")
    lo = int(e_all.min()) if e_pre is None else int(e_pre)
    hi = int(e_all.max()) if e_post is None else int(e_post)
    if lo >= ref or hi <= ref:
        raise ValueError(f"the window e_pre={lo}..e_post={hi} must contain at least one "
                         f"pre-period (e < {ref}) and one post-period (e > {ref})")
    want = np.arange(lo, hi + 1)
    missing = [int(e) for e in want if e not in set(e_all.tolist())]
    if missing:
        raise EstimationError(f"event times {missing} are not estimated (the window must be "
                              "consecutive event times)")
    use = [int(e) for e in want if e != ref]
    idx = [int(np.flatnonzero(e_all == e)[0]) for e in use]
    b = np.array([att[e] for e in use])
    S = V_all[np.ix_(idx, idx)]
    se = np.sqrt(np.clip(np.diag(S), 0, None))
    if not np.all(np.isfinite(b)) or not np.all(se > 0):
        bad = [e for e, s, x in zip(use, se, b) if not (s > 0 and np.isfinite(x))]
        raise EstimationError(f"event times {bad} have no sampling variance (e.g. a single "
                              "cluster); narrow the window with e_pre/e_post")
    n_pre = int(sum(e < ref for e in use))
    n_post = len(use) - n_pre
    post_e = np.array([e for e in use if e > ref])
    if l_vec is None:
        l = (post_e >= 0).astype(float)
        l /= l.sum()
    else:
        l = np.asarray(l_vec, dtype=float).ravel()
        if len(l) != n_post:
            raise ValueError(f"l_vec must have one weight per post period ({n_post}: "
                             f"e = {post_e.tolist()})")
    hr = honest_did(b, S, n_pre, n_post, method=method, Mbar_grid=Mbar_grid, M_grid=M_grid,
                    l_vec=l, alpha=alpha, test=test, smoothness_ci=smoothness_ci,
                    breakdown_tol=breakdown_tol)
    rows = []
    for e in want:
        if e == ref:
            rows.append({"e": int(e), "estimate": 0.0, "se": np.nan, "role": "reference",
                         "weight": 0.0})
        else:
            k = use.index(int(e))
            rows.append({"e": int(e), "estimate": float(b[k]), "se": float(se[k]),
                         "role": "pre" if e < ref else "post",
                         "weight": float(l[k - n_pre]) if e > ref else 0.0})
    extra = {"base_period": "universal", "anticipation": antic, "reference_e": ref,
             "e_pre": lo, "e_post": hi, "cluster": info.get("cluster"),
             "n_clusters": info.get("n_clusters"), "control": info.get("control"),
             "covariance": "analytic influence function" + (", clustered" if info.get("cluster")
                                                             else "")}
    return HonestCSResult(method=method, sensitivity=hr, event=pd.DataFrame(rows), betahat=b,
                          sigma=S, n_pre=n_pre, n_post=n_post, info=extra)
