"""Wild cluster bootstrap for linear restrictions in an OLS/WLS with absorbed fixed effects.

Model: ``y = X β + D α + u`` with cluster-correlated errors (``D`` = dummies of the optional
fixed effects, absorbed by the Frisch–Waugh–Lovell theorem through ``_fe.demean``). Tested
hypothesis: ``H0: R·β = r`` with ``R`` one row (t test, with a confidence interval) or
``q`` rows (joint Wald test).

Methods (Cameron, Gelbach & Miller 2008; MacKinnon, Nielsen & Webb 2023; Roodman, MacKinnon,
Nielsen & Webb 2019 "Fast and wild"):

* **WCR** (``impose_null=True``, the default and the recommended variant): bootstrap samples
  ``y* = X β̃ + D α̃ + ũ ∘ v_{c(i)}`` built from the *restricted* fit (null imposed),
* **WCU** (``impose_null=False``): ``y* = X β̂ + D α̂ + û ∘ v_{c(i)}`` from the unrestricted fit,

with one auxiliary draw ``v_g`` per cluster: Rademacher (±1), Webb's six-point
(±√(1/2), ±1, ±√(3/2)) or Mammen's two-point distribution. Each bootstrap sample is refitted
with the fixed effects and its CRV1 t statistic ``t*`` (the same small-sample factor as the
observed ``t``) is computed.

No refit happens per draw. Writing ``z = X̃ (X̃'X̃)^{-1} R'`` (``X̃`` the FE-demeaned design),
the numerator of ``t*`` is ``n'v`` with ``n_g = Σ_{i∈g} z_i ũ_i``, and the cluster-``h`` score
of the bootstrap CRVE is ``(K v)_h`` with the ``G×G`` matrix

    K = diag(n) − S_z' (D'D)⁻ S_u − P (X̃'X̃)^{-1} Q,

where ``P[h,:] = Σ_{i∈h} z_i X̃_i``, ``Q[:,g] = Σ_{i∈g} X̃_i ũ_i`` and ``S_z[l,h]``, ``S_u[l,g]``
are sums of ``z`` and ``ũ`` over fixed-effect level ``l`` within cluster ``h``/``g`` (this term
refits the fixed effects of each bootstrap sample exactly; it vanishes when the fixed effects
are nested in the clusters). So one draw costs a ``G×G`` matrix–vector product, and draws are
processed as ``G×b`` blocks. Because ``ũ`` (WCR) is affine in ``r``, so are ``n`` and ``K``:
per draw three sums make ``t*(r)`` available for every ``r`` in O(1), which makes the
confidence interval by test inversion cheap (a bisection on the WCR p-value as a function of
``r``; for WCU the same machinery returns the percentile-t interval). The p-value need not be
monotone in ``r``; the interval returned is the hull of the accepted points found by a
64-point scan between the estimate and the first rejected point on each side, refined by
bisection; an end is ±inf when no rejected point exists (possible with very few clusters).

Cost: O(n·k) preparation plus O(G²) per draw (and O(L³) once for the reduced FE system,
``L`` = levels of the fixed effects other than the largest), so this algebra is meant for few
to moderately many clusters (the municipality case: G ≤ 98); with thousands of clusters the
``G×G`` matrices become the bottleneck.

P-value convention (``p_type="symmetric"``): ``p = #{ |t*| > |t| } / B`` — strict inequality,
the share of bootstrap statistics *strictly* larger in absolute value than the observed one;
with full enumeration this is the exact probability under the auxiliary distribution. Ties
are decided with a relative tolerance of 1e-9: under WCR every constant draw vector
``v = a·1`` reproduces the observed sample up to scale, so ``|t*| = |t|`` exactly in exact
arithmetic, and rounding must not decide whether those draws count (this is what makes
Stata boottest's published ``18/256`` reproducible). Other
``p_type`` values: ``"equal-tail"`` ``2·min(#{t* ≤ t}, #{t* > t})/B``, ``"greater"``
``#{t* > t}/B`` (H1: Rβ > r), ``"less"`` ``#{t* < t}/B``. A draw with a zero bootstrap
variance (possible with very few clusters) gives ``t* = NaN`` and never counts as exceeding.

Joint tests (``param`` a list of names/indices or a ``q × k`` matrix ``R``, ``r`` a vector):
the bootstrap Wald statistic, reported as ``F = W/q``, with one ``K`` matrix per restriction
and a ``q × q`` CRVE per draw; ``p = #{F* > F} / B``; no confidence set is formed.

Full enumeration: when the number of distinct draw vectors (``2^G`` Rademacher or Mammen,
``6^G`` Webb) is at most ``B``, every vector is used once (Mammen's with its probability) and
``enumerated=True``; ``B_effective`` is then that number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from evaluering.inference._invert import bisect_boundary
from evaluering.errors import EstimationError
from evaluering.estimators._fe import count_fe_dof, demean, factorize

__all__ = ["WildBootResult", "wild_cluster_bootstrap", "wild_bootstrap_ols", "wild_twfe",
           "auxiliary_weights", "auxiliary_draws"]

_SQ5 = math.sqrt(5.0)
_SUPPORT = {
    "rademacher": (np.array([-1.0, 1.0]), None),
    "webb": (np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5),
                       math.sqrt(0.5), 1.0, math.sqrt(1.5)]), None),
    "mammen": (np.array([-(_SQ5 - 1) / 2, (_SQ5 + 1) / 2]),
               np.array([(_SQ5 + 1) / (2 * _SQ5), (_SQ5 - 1) / (2 * _SQ5)])),
}
P_TYPES = ("symmetric", "equal-tail", "greater", "less")
_BLOCK_ELEMS = 2_000_000  # G × block size of one draw block
_TIE_TOL = 1e-9  # |t*| and |t| closer than this (relative, for |t| > 1) count as equal


def auxiliary_weights(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Support points and probabilities of an auxiliary distribution (mean 0, variance 1)."""
    kind = _check_kind(kind)
    pts, prob = _SUPPORT[kind]
    if prob is None:
        prob = np.full(len(pts), 1.0 / len(pts))
    return pts.copy(), prob.copy()


def auxiliary_draws(kind: str, G: int, B: int, seed=None) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``G × B'`` matrix of draw vectors the bootstrap uses (and their probabilities).

    Full enumeration (``B' = S^G``) when ``S^G ≤ B``, else ``B`` random draws from
    ``numpy.random.default_rng(seed)``; identical to what :func:`wild_cluster_bootstrap`
    uses with the same arguments (memory: G·B' floats, so use for checks and small B).
    """
    kind = _check_kind(kind)
    blocks = list(_draw_blocks(kind, int(G), int(B), np.random.default_rng(seed)))
    V = np.concatenate([b for b, _ in blocks], axis=1)
    prob = None if blocks[0][1] is None else np.concatenate([p for _, p in blocks])
    return V, prob


def _check_kind(kind: str) -> str:
    k = str(kind).lower()
    if k not in _SUPPORT:
        raise ValueError(f"bootstrap_weights must be one of {sorted(_SUPPORT)}, got {kind!r}")
    return k


# ---------------------------------------------------------------------------------------------
# result object


@dataclass(frozen=True)
class WildBootResult:
    """Result of a wild cluster bootstrap test of ``R·β = r`` (one restriction).

    estimate : ``R·β̂`` (the coefficient when ``R`` selects one).
    se : its CRV1 cluster-robust standard error (analytic, for reference).
    t_stat : observed ``(R·β̂ − r) / se``.
    p : bootstrap p-value of ``H0: R·β = r`` (convention in ``convention``).
    ci : ``(1−alpha)`` confidence interval by inverting the bootstrap test (NaN if not asked);
        an end is ±inf when the p-value never falls below ``alpha`` on that side.
    t_boot : the bootstrap t statistics at the tested ``r`` (read-only; enumeration order or
        draw order); ``draw_prob`` their probabilities (equal unless Mammen is enumerated).
    statistic : ``"t"`` for one restriction; ``"F"`` for a joint test of q > 1 restrictions,
        where ``t_stat``/``t_boot`` hold the Wald statistic divided by q (``F``), ``estimate``
        and ``se`` are NaN (the q estimates are in ``info["estimates"]``) and no CI is formed.
    """

    param: str
    estimate: float
    r: float
    se: float
    t_stat: float
    p: float
    ci: tuple[float, float]
    alpha: float
    B_requested: int
    B_effective: int
    enumerated: bool
    bootstrap_weights: str
    impose_null: bool
    p_type: str
    convention: str
    n_obs: int
    n_clusters: int
    t_boot: np.ndarray = field(repr=False)
    draw_prob: np.ndarray | None = field(default=None, repr=False)
    info: Mapping[str, Any] = field(default_factory=dict)
    statistic: str = "t"

    def __post_init__(self) -> None:
        tb = np.array(self.t_boot, dtype=float)
        tb.flags.writeable = False
        object.__setattr__(self, "t_boot", tb)
        if self.draw_prob is not None:
            dp = np.array(self.draw_prob, dtype=float)
            dp.flags.writeable = False
            object.__setattr__(self, "draw_prob", dp)
        object.__setattr__(self, "ci", (float(self.ci[0]), float(self.ci[1])))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    @property
    def method(self) -> str:
        return "WCR" if self.impose_null else "WCU"

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame of the test."""
        return pd.DataFrame([{
            "param": self.param, "estimate": self.estimate, "se": self.se, "r": self.r,
            "statistic": self.statistic, "t": self.t_stat, "p": self.p,
            "ci_low": self.ci[0], "ci_high": self.ci[1],
            "method": self.method, "weights": self.bootstrap_weights, "B": self.B_effective,
            "enumerated": self.enumerated, "n_obs": self.n_obs, "n_clusters": self.n_clusters,
        }])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (without the bootstrap draws)."""
        def c(x):
            if isinstance(x, (np.floating, float)):
                x = float(x)
                return None if (math.isnan(x) or math.isinf(x)) else x
            if isinstance(x, np.integer):
                return int(x)
            if isinstance(x, np.bool_):
                return bool(x)
            return x

        return {
            "param": self.param, "estimate": c(self.estimate), "r": c(self.r), "se": c(self.se),
            "statistic": self.statistic,
            "t_stat": c(self.t_stat), "p": c(self.p), "ci": [c(self.ci[0]), c(self.ci[1])],
            "ci_unbounded": [bool(np.isneginf(self.ci[0])), bool(np.isposinf(self.ci[1]))],
            "alpha": self.alpha, "method": self.method, "impose_null": self.impose_null,
            "bootstrap_weights": self.bootstrap_weights, "B_requested": int(self.B_requested),
            "B_effective": int(self.B_effective), "enumerated": bool(self.enumerated),
            "p_type": self.p_type, "convention": self.convention, "n_obs": int(self.n_obs),
            "n_clusters": int(self.n_clusters),
            "info": {k: c(v) if not isinstance(v, (list, dict, tuple)) else v
                     for k, v in self.info.items()},
        }

    def to_estimate_result(self, method: str = "wild"):
        """The toolkit's common ``EstimateResult`` (bootstrap p and CI, analytic CRV1 se)."""
        from evaluering.results import EstimateResult

        return EstimateResult(method=method, estimate=self.estimate, se=self.se, ci=self.ci,
                              p=self.p, n_obs=self.n_obs, n_units=self.n_clusters,
                              inference="wild", alpha=self.alpha,
                              info={"r": self.r, "t": self.t_stat, "wild": self.method,
                                    "bootstrap_weights": self.bootstrap_weights,
                                    "B": self.B_effective, "enumerated": self.enumerated,
                                    "param": self.param})

    def plot(self, ax=None, bins: int = 60):
        """Histogram of the bootstrap t distribution with the observed t marked."""
        from evaluering.plotting import _axes

        ax = _axes(ax)
        tb = self.t_boot[np.isfinite(self.t_boot)]
        w = None
        if self.draw_prob is not None:
            w = self.draw_prob[np.isfinite(self.t_boot)]
        ax.hist(tb, bins=bins, weights=w, density=True, color="C0", alpha=0.6,
                label=f"bootstrap t* ({self.method}, {self.bootstrap_weights}, B={self.B_effective})")
        ax.axvline(self.t_stat, color="C3", lw=1.5, label=f"observed t = {self.t_stat:.3f}")
        if self.p_type == "symmetric" and self.statistic == "t":
            ax.axvline(-self.t_stat, color="C3", lw=1.0, ls="--")
        ax.set_xlabel(self.statistic)
        ax.set_ylabel("density")
        if self.statistic == "t":
            ax.set_title(f"{self.param} = {self.r:g}: p = {self.p:.4f}")
        else:
            ax.set_title(f"joint test ({self.param}): p = {self.p:.4f}")
        ax.legend(fontsize=8)
        return ax

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"WildBootResult({self.method}, {self.param}={self.estimate:.6g}, r={self.r:g}, "
                f"t={self.t_stat:.4f}, p={self.p:.4f}, ci=({self.ci[0]:.6g}, {self.ci[1]:.6g}), "
                f"{self.bootstrap_weights}, B={self.B_effective}, enumerated={self.enumerated})")


# ---------------------------------------------------------------------------------------------
# the algebra


@dataclass
class _Prepared:
    Xt: np.ndarray          # FE-demeaned, sqrt(w)-scaled design (n × k)
    yt: np.ndarray
    cl: np.ndarray          # cluster codes 0..G-1
    G: int
    sw: np.ndarray | None   # sqrt of the regression weights
    fes: list[np.ndarray]
    k_fe: int
    nested: bool
    n_eff: float            # N of the small-sample factor (sum of weights for frequency weights)


def _prepare(X, y, cluster, fe, weights) -> _Prepared:
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    y = np.asarray(y, dtype=float).ravel()
    n = len(y)
    if X.shape[0] != n:
        raise ValueError(f"X has {X.shape[0]} rows but y has {n}")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise EstimationError("X and y must be finite (drop rows with missing values first)")
    cl, G = factorize(np.asarray(cluster))
    if len(cl) != n:
        raise ValueError("cluster must have one entry per row")
    if G < 2:
        raise EstimationError("the wild cluster bootstrap needs at least 2 clusters")
    fes = []
    for f in (fe or []):
        codes, _ = factorize(np.asarray(f))
        if len(codes) != n:
            raise ValueError("each fixed-effect array must have one entry per row")
        fes.append(codes)
    w = None
    sw = None
    if weights is not None:
        w = np.asarray(weights, dtype=float).ravel()
        if len(w) != n or not np.isfinite(w).all() or (w <= 0).any():
            raise EstimationError("regression weights must be positive and finite, one per row")
        sw = np.sqrt(w)
    if fes:
        Xd = demean(X, fes, w)
        yd = demean(y, fes, w)
    else:
        Xd, yd = X, y
    if sw is not None:
        Xd = Xd * sw[:, None]
        yd = yd * sw
    nested_flags = [_is_nested(f, cl) for f in fes]
    # FE parameters counted in the small-sample factor K (fixest's "nested" rule, as in
    # evaluering.estimators.did): a factor nested in the clusters counts one parameter only
    k_fe = count_fe_dof(fes) - sum(int(f.max()) for f, nf in zip(fes, nested_flags) if nf)
    return _Prepared(Xt=Xd, yt=yd, cl=cl, G=G, sw=sw, fes=fes, k_fe=max(int(k_fe), 0),
                     nested=all(nested_flags), n_eff=float(n))


def _is_nested(fe_codes: np.ndarray, cl: np.ndarray) -> bool:
    pairs = np.unique(np.stack([fe_codes, cl], axis=1), axis=0)
    return len(pairs) == len(np.unique(fe_codes))


def _fe_projection_term(p: _Prepared, z: np.ndarray, U: np.ndarray) -> np.ndarray:
    """``S_z' (D'D)⁻ S_u`` for each column of U (returns (m, G, G)); zero if no FE.

    ``D`` are the (sqrt-weighted) FE dummies of all factors stacked; ``(D'D)⁻ S_z`` is any
    solution of the FE normal equations (the redundant levels do not change the projection).
    Computed on the cluster × FE-level cross sums: the largest factor (a diagonal block) is
    eliminated by its Schur complement, the remaining small system (levels of the other
    factors) is solved with a pseudo-inverse.
    """
    G = p.G
    m = U.shape[1]
    if not p.fes or p.nested:
        return np.zeros((m, G, G))
    sw = np.ones(len(z)) if p.sw is None else p.sw
    w = sw * sw
    fes = sorted(p.fes, key=lambda f: -(int(f.max()) + 1))
    levels = [int(f.max()) + 1 for f in fes]
    if sum(levels[1:]) > 4000:
        return _fe_projection_term_demean(p, z, U)

    def cross(fa, la):  # level × cluster sums of sqrt(w)·z and sqrt(w)·U
        idx = fa * G + p.cl
        sz = np.bincount(idx, weights=sw * z, minlength=la * G).reshape(la, G)
        su = np.stack([np.bincount(idx, weights=sw * U[:, j], minlength=la * G).reshape(la, G)
                       for j in range(m)])
        return sz, su

    f1, l1 = fes[0], levels[0]
    n1 = np.bincount(f1, weights=w, minlength=l1)
    inv1 = np.where(n1 > 0, 1.0 / np.where(n1 > 0, n1, 1.0), 0.0)
    Sz1, Su1 = cross(f1, l1)
    if len(fes) == 1:
        A1 = inv1[:, None] * Sz1
        return np.einsum("lh,mlg->mhg", A1, Su1)
    # the other factors stacked: D2'D2 and D1'D2 blocks
    offs = np.cumsum([0] + levels[1:])
    L2 = int(offs[-1])
    D2D2 = np.zeros((L2, L2))
    D1D2 = np.zeros((l1, L2))
    Sz2 = np.zeros((L2, G))
    Su2 = np.zeros((m, L2, G))
    for a, (fa, la) in enumerate(zip(fes[1:], levels[1:])):
        sa = slice(offs[a], offs[a + 1])
        D1D2[:, sa] = np.bincount(f1 * la + fa, weights=w, minlength=l1 * la).reshape(l1, la)
        Sz2[sa], Su2[:, sa] = cross(fa, la)
        for b in range(a, len(fes) - 1):
            fb, lb = fes[1 + b], levels[1 + b]
            sb = slice(offs[b], offs[b + 1])
            block = np.bincount(fa * lb + fb, weights=w, minlength=la * lb).reshape(la, lb)
            D2D2[sa, sb] = block
            D2D2[sb, sa] = block.T
    # Schur complement of the diagonal block D1'D1
    C = D1D2 * inv1[:, None]                       # diag(1/n1) D1'D2
    Sch = D2D2 - D1D2.T @ C
    rhs = Sz2 - C.T @ Sz1
    # Sch is singular (one null direction per connected component of the FE graph); the
    # right-hand side lies in its range. A loose cut-off keeps rounding-level eigenvalues of
    # the null space from being inverted (that would add a huge constant to α2 and −C·const
    # to α1: mathematically harmless, numerically a cancellation).
    A2 = np.linalg.pinv(Sch, rcond=1e-10, hermitian=True) @ rhs  # (L2, G)
    A1 = inv1[:, None] * Sz1 - C @ A2               # (l1, G)
    return np.einsum("lh,mlg->mhg", A1, Su1) + np.einsum("lh,mlg->mhg", A2, Su2)


def _fe_projection_term_demean(p: _Prepared, z: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Same as :func:`_fe_projection_term` via demeaning cluster-restricted columns (large L)."""
    G = p.G
    m = U.shape[1]
    sw = np.ones(len(z)) if p.sw is None else p.sw
    w = sw * sw
    out = np.zeros((m, G, G))
    for h in range(G):
        col = np.where(p.cl == h, z, 0.0)
        # P_D applied in the transformed space: sqrt(w) * (x - demean(x)) with x = col / sqrt(w)
        x = col / sw
        proj = sw * (x - demean(x, p.fes, w))
        for j in range(m):
            out[j, h] = np.bincount(p.cl, weights=proj * U[:, j], minlength=G)
    return out


@dataclass
class _Engine:
    """Per-draw sufficient statistics for t*(r) = (A0 + r A1) / sqrt(c (d00 + 2 r d01 + r² d11))."""

    A0: np.ndarray
    A1: np.ndarray
    d00: np.ndarray
    d01: np.ndarray
    d11: np.ndarray
    prob: np.ndarray | None
    c: float
    est: float
    se: float

    def t_boot(self, r: float) -> np.ndarray:
        den2 = self.c * (self.d00 + 2 * r * self.d01 + r * r * self.d11)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.A0 + r * self.A1) / np.sqrt(den2)
        t[~(den2 > 0)] = np.nan
        return t

    def t_obs(self, r: float) -> float:
        return (self.est - r) / self.se

    def pvalue(self, r: float, p_type: str) -> float:
        tb = self.t_boot(r)
        t = self.t_obs(r)
        fin = np.isfinite(tb)
        tol = _TIE_TOL * max(1.0, abs(t))  # exact ties (e.g. constant draws: |t*| = |t|)
        if p_type == "symmetric":
            hit = fin & (np.abs(tb) > abs(t) + tol)
        elif p_type == "greater":
            hit = fin & (tb > t + tol)
        elif p_type == "less":
            hit = fin & (tb < t - tol)
        else:  # equal-tail
            lo = fin & (tb <= t + tol)
            hi = fin & (tb > t + tol)
            return float(min(1.0, 2 * min(self._share(lo), self._share(hi))))
        return self._share(hit)

    def _share(self, mask: np.ndarray) -> float:
        if self.prob is None:
            return float(mask.sum()) / len(mask)
        return float(self.prob[mask].sum())


def _draw_blocks(kind: str, G: int, B: int, rng: np.random.Generator | None):
    """Yield (V block (G × b), probabilities or None); enumerate all vectors when enumerating."""
    pts, prob = _SUPPORT[kind]
    S = len(pts)
    total = S ** G if G * math.log(S) < 62 * math.log(2) else None
    enumerate_all = total is not None and total <= B
    blk = max(1, _BLOCK_ELEMS // G)
    powers = S ** np.arange(G, dtype=np.int64)
    if enumerate_all:
        for start in range(0, total, blk):
            idx = np.arange(start, min(total, start + blk), dtype=np.int64)
            digits = (idx[None, :] // powers[:, None]) % S
            pr = None
            if prob is not None:
                pr = np.prod(prob[digits], axis=0)
            yield pts[digits], pr
    else:
        for start in range(0, B, blk):
            b = min(B, start + blk) - start
            if prob is None:
                digits = rng.integers(0, S, size=(G, b))
            else:
                digits = (rng.random((G, b)) >= prob[0]).astype(np.int64)
            yield pts[digits], None


def _engine(p: _Prepared, R: np.ndarray, *, impose_null: bool, kind: str, B: int,
            seed, small_sample: bool) -> tuple[_Engine, bool, int, dict]:
    Xt, yt, cl, G = p.Xt, p.yt, p.cl, p.G
    n, k = Xt.shape
    XtX = Xt.T @ Xt
    if np.linalg.matrix_rank(XtX) < k:
        raise EstimationError("the design is rank deficient after absorbing the fixed effects")
    XtX_inv = np.linalg.inv(XtX)
    beta = XtX_inv @ (Xt.T @ yt)
    uhat = yt - Xt @ beta
    a = XtX_inv @ R
    Ra = float(R @ a)
    z = Xt @ a
    est = float(R @ beta)
    c = 1.0
    if small_sample:
        K = k + p.k_fe
        N = p.n_eff
        c = G / (G - 1) * (N - 1) / (N - K) if N > K else float("nan")
    score = np.bincount(cl, weights=z * uhat, minlength=G)
    se = math.sqrt(c * float(score @ score))
    if not se > 0:
        raise EstimationError("the cluster-robust standard error is zero; nothing to bootstrap")
    # residuals of the bootstrap DGP: u(r) = u0 + r u1
    if impose_null:
        u0 = uhat + z * (est / Ra)
        u1 = -z / Ra
        U = np.stack([u0, u1], axis=1)
    else:
        U = uhat[:, None]
    m = U.shape[1]
    # G × G matrices K_j
    nvec = np.stack([np.bincount(cl, weights=z * U[:, j], minlength=G) for j in range(m)])
    Pm = np.zeros((G, k))
    Qm = np.zeros((m, k, G))
    for col in range(k):
        Pm[:, col] = np.bincount(cl, weights=z * Xt[:, col], minlength=G)
        for j in range(m):
            Qm[j, col] = np.bincount(cl, weights=Xt[:, col] * U[:, j], minlength=G)
    K2 = _fe_projection_term(p, z, U)
    PX = Pm @ XtX_inv
    Ks = [np.diag(nvec[j]) - K2[j] - PX @ Qm[j] for j in range(m)]
    if m == 1:
        Ks.append(np.zeros((G, G)))
        nvec = np.vstack([nvec, np.zeros(G)])

    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {x: [] for x in ("A0", "A1", "d00", "d01", "d11", "prob")}
    pts, _ = _SUPPORT[kind]
    S = len(pts)
    enumerated = G * math.log(S) < 62 * math.log(2) and S ** G <= B
    for V, pr in _draw_blocks(kind, G, B, rng):
        M0 = Ks[0] @ V
        M1 = Ks[1] @ V
        parts["A0"].append(nvec[0] @ V)
        parts["A1"].append(nvec[1] @ V)
        parts["d00"].append(np.einsum("gb,gb->b", M0, M0))
        parts["d01"].append(np.einsum("gb,gb->b", M0, M1))
        parts["d11"].append(np.einsum("gb,gb->b", M1, M1))
        if pr is not None:
            parts["prob"].append(pr)
    cat = {key: np.concatenate(v) for key, v in parts.items() if v}
    eng = _Engine(A0=cat["A0"], A1=cat["A1"], d00=cat["d00"], d01=cat["d01"], d11=cat["d11"],
                  prob=cat.get("prob"), c=c, est=est, se=se)
    info = {"k": int(k), "k_fe": int(p.k_fe), "fe_nested_in_clusters": bool(p.nested),
            "small_sample_factor": c, "n_fe_factors": len(p.fes)}
    if not impose_null:
        # WCU: t* = (Rβ̂* − Rβ̂)/se*, independent of r. Store it so that t_boot(r) works for any r.
        eng.A1 = np.zeros_like(eng.A0)
    return eng, enumerated, len(eng.A0), info


def _invert(eng: _Engine, alpha: float, p_type: str, impose_null: bool) -> tuple[float, float]:
    """Confidence interval {r : p(r) ≥ alpha} by bisection on each side of the estimate."""
    est, se = eng.est, eng.se

    if not impose_null and p_type == "symmetric":
        # WCU: p(r) = P(|t*| > |est − r|/se) with t* not depending on r → percentile-t interval
        tb = np.abs(eng.t_boot(0.0))
        fin = np.isfinite(tb)
        tb, pr = tb[fin], (None if eng.prob is None else eng.prob[fin])
        order = np.argsort(tb)
        tb = tb[order]
        w = np.full(len(tb), 1.0 / len(eng.A0)) if pr is None else pr[order]
        # smallest q with P(|t*| > q) < alpha; the interval is est ± q·se (closed where p ≥ alpha)
        tail = np.cumsum(w[::-1])[::-1]  # tail[i] = P(|t*| ≥ tb[i])
        above = tail - w                 # P(|t*| > tb[i]) (ties ignored: continuous t*)
        ok = np.nonzero(above < alpha)[0]
        if len(ok) == 0:
            return (-math.inf, math.inf)
        q = tb[ok[0]]
        return (est - q * se, est + q * se)

    def p_at(r: float) -> float:
        return eng.pvalue(r, p_type)

    def side(sign: int) -> float:
        # 1) walk outwards (doubling) until the p-value falls below alpha
        step = se
        outer = None
        for _ in range(60):
            cand = est + sign * step
            if p_at(cand) < alpha:
                outer = cand
                break
            step *= 2.0
        if outer is None:
            return sign * math.inf
        # 2) p(r) need not be monotone: scan a grid between the estimate and that point and
        #    keep the outermost grid point that is still accepted (the interval is the hull)
        grid = est + (outer - est) * np.linspace(0.0, 1.0, 65)
        acc = [i for i, g in enumerate(grid[:-1]) if p_at(float(g)) >= alpha]
        i = acc[-1] if acc else 0
        inner, outer = float(grid[i]), float(grid[i + 1])
        # 3) bisection on the jump of the step function p(r)
        return bisect_boundary(p_at, inner, outer, alpha, 1e-10 * max(se, abs(est), 1e-300), 200)

    return (side(-1), side(+1))


def _restrictions(param, k: int, names: Sequence[str] | None) -> tuple[np.ndarray, str]:
    """R as a (q, k) matrix and a label; a list of names/indices or a 2-D array gives q > 1."""
    if isinstance(param, (list, tuple)) and param and all(
            isinstance(p, (str, np.str_, int, np.integer)) for p in param):
        rows, labels = zip(*(_restriction(p, k, names) for p in param))
        return np.vstack(rows), ", ".join(labels)
    arr = np.asarray(param, dtype=float) if not isinstance(param, (str, np.str_, int,
                                                                   np.integer)) else None
    if arr is not None and arr.ndim == 2 and arr.shape[0] > 1:
        if arr.shape[1] != k:
            raise ValueError(f"R must have {k} columns")
        if np.linalg.matrix_rank(arr) < arr.shape[0]:
            raise ValueError("the rows of R are linearly dependent")
        labels = [_restriction(row, k, names)[1] for row in arr]
        return arr, ", ".join(labels)
    R, label = _restriction(param, k, names)
    return R[None, :], label


def _restriction(param, k: int, names: Sequence[str] | None) -> tuple[np.ndarray, str]:
    if isinstance(param, (str, np.str_)):
        if names is None or param not in list(names):
            raise ValueError(f"param {param!r} is not among the regressor names {names}")
        j = list(names).index(param)
        R = np.zeros(k)
        R[j] = 1.0
        return R, str(param)
    if isinstance(param, (int, np.integer)):
        if not -k <= int(param) < k:
            raise ValueError(f"param index {param} out of range for {k} regressors")
        j = int(param) % k
        R = np.zeros(k)
        R[j] = 1.0
        return R, (str(names[j]) if names is not None else f"x{j}")
    R = np.asarray(param, dtype=float)
    if R.ndim == 2 and R.shape[0] == 1:
        R = R[0]
    if R.ndim != 1 or len(R) != k:
        raise ValueError("param as an array must be a restriction row R of length k "
                         "(or a q × k matrix for a joint test)")
    if not np.any(R != 0):
        raise ValueError("the restriction row R is all zero")
    label = " + ".join(f"{v:g}*{(names[i] if names is not None else f'x{i}')}"
                       for i, v in enumerate(R) if v != 0)
    return R, label


def wild_cluster_bootstrap(X, y, cluster, *, param: int | str | np.ndarray, r: float = 0.0,
                           fe: list | None = None, weights=None,
                           bootstrap_weights: str = "rademacher", B: int = 9999,
                           impose_null: bool = True, alpha: float = 0.05, seed=None,
                           ci: bool = True, p_type: str = "symmetric",
                           names: Sequence[str] | None = None,
                           small_sample: bool = True) -> WildBootResult:
    """Wild cluster bootstrap test (and CI) of ``R·β = r`` in ``y = Xβ + FE + u``.

    Parameters
    ----------
    X, y : design (n × k, include a constant column yourself if there are no fixed effects)
        and outcome.
    cluster : one cluster label per row.
    param : column index, column name (with ``names``) or a restriction row ``R`` (length k);
        for a joint test a list of indices/names or a ``q × k`` matrix.
    r : the value of ``R·β`` under the null (a length-q vector for a joint test).
    fe : list of label/code arrays of fixed effects to absorb (FWL; refitted in every
        bootstrap sample, exactly, whether or not nested in the clusters).
    weights : regression (analytic) weights: WLS.
    bootstrap_weights : ``"rademacher"``, ``"webb"`` or ``"mammen"``.
    B : number of draws; full enumeration when the number of distinct draw vectors is ≤ B.
    impose_null : WCR (True, recommended) or WCU (False).
    ci : compute the (1−alpha) interval by test inversion.
    p_type : ``"symmetric"`` (default), ``"equal-tail"``, ``"greater"``, ``"less"``.
    small_sample : CRV1 factor ``G/(G−1)·(N−1)/(N−K)`` (K counts slopes and the fixed-effect
        parameters not nested in the clusters); it cancels in the bootstrap p-value and CI and
        only scales the reported ``se`` and ``t``.
    """
    prep = _prepare(X, y, cluster, fe, weights)
    return _run(prep, param=param, r=r, names=names, bootstrap_weights=bootstrap_weights, B=B,
                impose_null=impose_null, alpha=alpha, seed=seed, ci=ci, p_type=p_type,
                small_sample=small_sample)


def _run(prep: _Prepared, *, param, r, names, bootstrap_weights, B, impose_null, alpha, seed,
         ci, p_type, small_sample) -> WildBootResult:
    kind = _check_kind(bootstrap_weights)
    if p_type not in P_TYPES:
        raise ValueError(f"p_type must be one of {P_TYPES}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    B = int(B)
    if B < 1:
        raise ValueError("B must be positive")
    k = prep.Xt.shape[1]
    Rm, label = _restrictions(param, k, names)
    if Rm.shape[0] > 1:
        return _run_wald(prep, Rm, label, r=r, kind=kind, B=B, impose_null=impose_null,
                         alpha=alpha, seed=seed, small_sample=small_sample)
    R = Rm[0]
    r = float(np.ravel(np.asarray(r, dtype=float))[0]) if np.ndim(r) else float(r)
    eng, enumerated, B_eff, info = _engine(prep, R, impose_null=impose_null, kind=kind, B=B,
                                           seed=seed, small_sample=small_sample)
    p = eng.pvalue(float(r), p_type)
    ci_val = _invert(eng, alpha, p_type, impose_null) if ci else (math.nan, math.nan)
    conv = {"symmetric": "p = share of draws with |t*| > |t| (strict)",
            "equal-tail": "p = 2·min(share t* <= t, share t* > t)",
            "greater": "p = share of draws with t* > t (strict)",
            "less": "p = share of draws with t* < t (strict)"}[p_type]
    if enumerated and eng.prob is not None:
        conv += ", draws weighted by their probability"
    info["seed"] = seed if isinstance(seed, (int, type(None))) else str(seed)
    return WildBootResult(
        param=label, estimate=eng.est, r=float(r), se=eng.se, t_stat=eng.t_obs(float(r)), p=p,
        ci=ci_val, alpha=alpha, B_requested=B, B_effective=B_eff, enumerated=enumerated,
        bootstrap_weights=kind, impose_null=bool(impose_null), p_type=p_type, convention=conv,
        n_obs=len(prep.yt), n_clusters=prep.G, t_boot=eng.t_boot(float(r)), draw_prob=eng.prob,
        info=info)


def _run_wald(prep: _Prepared, Rm: np.ndarray, label: str, *, r, kind: str, B: int,
              impose_null: bool, alpha: float, seed, small_sample: bool) -> WildBootResult:
    """Joint test of q > 1 restrictions: bootstrap Wald statistic (reported as F = W/q).

    ``W = (Rβ̂ − r)' V̂^{-1} (Rβ̂ − r)`` with the CRV1 covariance ``V̂`` of ``Rβ̂``; each draw
    gives ``W* = d*' V̂*^{-1} d*`` with ``d*_j = n_j'v`` and ``V̂* = c Σ_h s_h s_h'``,
    ``s_{h,j} = (K_j v)_h`` (one ``G×G`` matrix per restriction, as for one restriction).
    ``p = #{W* > W} / B`` (strict, same tie tolerance).
    """
    Xt, cl, G = prep.Xt, prep.cl, prep.G
    n, k = Xt.shape
    q = Rm.shape[0]
    rv = np.broadcast_to(np.asarray(r, dtype=float), (q,)).astype(float)
    XtX = Xt.T @ Xt
    if np.linalg.matrix_rank(XtX) < k:
        raise EstimationError("the design is rank deficient after absorbing the fixed effects")
    XtX_inv = np.linalg.inv(XtX)
    beta = XtX_inv @ (Xt.T @ prep.yt)
    uhat = prep.yt - Xt @ beta
    A = XtX_inv @ Rm.T                      # (k, q)
    Z = Xt @ A                              # (n, q)
    RA = Rm @ A                             # R (X'X)^{-1} R'
    est = Rm @ beta
    dvec = est - rv
    c = 1.0
    if small_sample:
        K = k + prep.k_fe
        N = prep.n_eff
        c = G / (G - 1) * (N - 1) / (N - K) if N > K else float("nan")
    S = np.stack([np.bincount(cl, weights=Z[:, j] * uhat, minlength=G) for j in range(q)])
    Vhat = c * S @ S.T
    try:
        W = float(dvec @ np.linalg.solve(Vhat, dvec))
    except np.linalg.LinAlgError as exc:
        raise EstimationError("the cluster-robust covariance of Rβ̂ is singular (fewer "
                              "clusters than restrictions?)") from exc
    u = uhat + Z @ np.linalg.solve(RA, dvec) if impose_null else uhat
    U = u[:, None]
    Qm = np.stack([np.bincount(cl, weights=Xt[:, col] * u, minlength=G) for col in range(k)])
    Nmat = np.stack([np.bincount(cl, weights=Z[:, j] * u, minlength=G) for j in range(q)])
    Ks = []
    for j in range(q):
        Pj = np.stack([np.bincount(cl, weights=Z[:, j] * Xt[:, col], minlength=G)
                       for col in range(k)], axis=1)
        K2 = _fe_projection_term(prep, Z[:, j], U)[0]
        Ks.append(np.diag(Nmat[j]) - K2 - (Pj @ XtX_inv) @ Qm)
    Ks = np.stack(Ks)                        # (q, G, G)
    pts, _ = _SUPPORT[kind]
    S_ = len(pts)
    enumerated = G * math.log(S_) < 62 * math.log(2) and S_ ** G <= B
    Wb, probs = [], []
    for Vblk, pr in _draw_blocks(kind, G, B, np.random.default_rng(seed)):
        num = (Nmat @ Vblk).T                                 # (b, q)
        sc = np.einsum("jhg,gb->bhj", Ks, Vblk)               # (b, G, q)
        Vb = c * np.einsum("bhj,bhl->bjl", sc, sc)            # (b, q, q)
        try:
            sol = np.linalg.solve(Vb, num[..., None])[..., 0]
        except np.linalg.LinAlgError:
            sol = np.einsum("bjl,bl->bj", np.linalg.pinv(Vb, hermitian=True), num)
        Wb.append(np.einsum("bj,bj->b", num, sol))
        if pr is not None:
            probs.append(pr)
    Wb = np.concatenate(Wb)
    prob = np.concatenate(probs) if probs else None
    F, Fb = W / q, Wb / q
    fin = np.isfinite(Fb)
    hit = fin & (Fb > F + _TIE_TOL * max(1.0, abs(F)))
    p = float(prob[hit].sum()) if prob is not None else float(hit.sum()) / len(Fb)
    info = {"k": int(k), "k_fe": int(prep.k_fe), "fe_nested_in_clusters": bool(prep.nested),
            "small_sample_factor": c, "n_fe_factors": len(prep.fes), "q": int(q),
            "estimates": [float(x) for x in est], "r": [float(x) for x in rv],
            "wald": W, "seed": seed if isinstance(seed, (int, type(None))) else str(seed)}
    conv = "p = share of draws with F* > F (strict), F = Wald/q"
    if enumerated and prob is not None:
        conv += ", draws weighted by their probability"
    return WildBootResult(
        param=label, estimate=math.nan, r=math.nan, se=math.nan, t_stat=F, p=p,
        ci=(math.nan, math.nan), alpha=alpha, B_requested=B, B_effective=len(Fb),
        enumerated=enumerated, bootstrap_weights=kind, impose_null=bool(impose_null),
        p_type="wald", convention=conv, n_obs=n, n_clusters=G, t_boot=Fb, draw_prob=prob,
        info=info, statistic="F")


# ---------------------------------------------------------------------------------------------
# DataFrame entry points


def wild_bootstrap_ols(data, y: str, x: list[str], cluster: str, *, param: str | np.ndarray,
                       fe: list[str] | None = None, weights: str | None = None,
                       intercept: bool | None = None, **kwargs) -> WildBootResult:
    """Wild cluster bootstrap for an OLS/WLS on a DataFrame.

    ``y ~ x (+ constant) | fe``, clustered by ``cluster``. ``param`` is a column of ``x`` (or a
    restriction row over ``["const"] + x`` when an intercept is included). The intercept is
    added when there are no fixed effects (``intercept=None``). Rows with a missing value in
    a used column are dropped (the count is in ``info["n_dropped"]``). Further keyword
    arguments go to :func:`wild_cluster_bootstrap`.
    """
    from evaluering.estimators._panel import as_frame, require_columns

    df = as_frame(data)
    x = list(x)
    cols = [y, *x, cluster, *(fe or []), *([weights] if weights else [])]
    require_columns(df, cols, no_missing=False)
    cols = list(dict.fromkeys(cols))  # the cluster may also be a fixed effect
    sub = df[cols].dropna()
    n_dropped = len(df) - len(sub)
    if intercept is None:
        intercept = not fe
    Xm = sub[x].to_numpy(dtype=float)
    names = list(x)
    if intercept:
        Xm = np.column_stack([np.ones(len(sub)), Xm])
        names = ["const", *names]
    res = wild_cluster_bootstrap(
        Xm, sub[y].to_numpy(dtype=float), sub[cluster].to_numpy(), param=param,
        fe=[sub[f].to_numpy() for f in fe] if fe else None,
        weights=sub[weights].to_numpy(dtype=float) if weights else None, names=names, **kwargs)
    info = dict(res.info)
    info.update({"n_dropped": int(n_dropped), "y": y, "cluster": cluster,
                 "fe": list(fe or []), "weights": weights})
    return _replace_info(res, info)


def _replace_info(res: WildBootResult, info: dict) -> WildBootResult:
    from dataclasses import replace

    return replace(res, info=info)


def wild_twfe(data, y: str, unit: str, time: str, treatment: str | Sequence[str],
              cluster: str | None = None, *, param: str | np.ndarray | None = None,
              covariates: Sequence[str] | None = None, weights: str | None = None,
              weight_type: str = "analytic", r: float = 0.0,
              bootstrap_weights: str = "rademacher", B: int = 9999, impose_null: bool = True,
              alpha: float = 0.05, seed=None, ci: bool = True, p_type: str = "symmetric",
              small_sample: bool = True) -> WildBootResult:
    """Wild cluster bootstrap of a TWFE / 2×2 / event-study coefficient.

    ``y_it = β'D_it + γ'x_it + α_i + λ_t + u_it`` with the regressor column(s) ``treatment``
    (a 0/1 treatment, a dose, or several event-time dummies), unit and time fixed effects
    absorbed, clustered by ``cluster`` (default: ``unit``). Tests ``param = r`` (``param``
    defaults to the first treatment column; a restriction row over ``treatment +
    covariates`` is allowed). The design is the toolkit's own
    :func:`evaluering.estimators.did.twfe_design` (so the estimate and CRV1 se are those of
    :func:`~evaluering.estimators.did.twfe`); the fixed effects are refitted in every bootstrap
    sample.
    """
    from evaluering.estimators.did import twfe_design

    cluster = cluster or unit
    regs = [treatment] if isinstance(treatment, str) else list(treatment)
    design = twfe_design(data, y, unit, time, regs, covariates, weights, cluster,
                         weight_type=weight_type)
    sw = None if design.weights is None else np.sqrt(np.asarray(design.weights, float))
    Xt, yt = design.X, design.y
    if sw is not None:
        Xt = Xt * sw[:, None]
        yt = yt * sw
    fes = [np.asarray(design.unit_codes), np.asarray(design.time_codes)]
    cl = np.asarray(design.cluster)
    n_eff = float(np.sum(design.weights)) if (design.weights is not None
                                               and design.weight_type == "frequency") \
        else float(design.n_obs)
    prep = _Prepared(Xt=Xt, yt=yt, cl=cl, G=int(design.n_clusters), sw=sw, fes=fes,
                     k_fe=int(design.k_fe_counted), nested=all(_is_nested(f, cl) for f in fes),
                     n_eff=n_eff)
    if prep.G < 2:
        raise EstimationError("the wild cluster bootstrap needs at least 2 clusters")
    res = _run(prep, param=regs[0] if param is None else param, r=r, names=list(design.names),
               bootstrap_weights=bootstrap_weights, B=B, impose_null=impose_null, alpha=alpha,
               seed=seed, ci=ci, p_type=p_type, small_sample=small_sample)
    info = dict(res.info)
    info.update({"y": y, "unit": unit, "time": time, "cluster": cluster,
                 "treatment": regs, "covariates": list(covariates or []), "weights": weights,
                 "weight_type": weight_type if weights else None,
                 "fixed_effects": f"{unit} + {time}"})
    return _replace_info(res, info)
