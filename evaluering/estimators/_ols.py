"""Weighted least squares with iid, heteroskedasticity-robust and cluster-robust covariances.

Shared by the linear DiD estimators (2×2, TWFE, event study, Sun–Abraham, BJS pre-trend test)
and usable by the wild cluster bootstrap. All functions work on plain numpy arrays (the
regressors are usually already demeaned by ``_fe.demean``); fixed effects enter only through
the degrees-of-freedom count ``k_extra``.

Conventions (the ones ``fixest`` uses by default, so published numbers are reproducible):

* ``vcov="cluster"`` (CR1): ``V = c · B M B`` with bread ``B = (X'WX)^{-1}``, meat
  ``M = Σ_g s_g s_g'`` over clusters, score ``s_g = Σ_{i∈g} w_i x_i e_i`` and the small-sample
  factor ``c = G/(G-1) · (N-1)/(N-K)``. ``K`` counts the slopes plus the fixed-effect
  parameters that are *not* nested in the cluster variable. The reference distribution for
  p-values and intervals is ``t(G-1)``.
* ``vcov="hc1"``: ``c = N/(N-K)``, meat ``Σ_i ω_i x_i x_i' e_i²`` (``ω_i = w_i²`` for analytic
  weights, ``w_i`` for frequency weights); reference ``t(N-K)``.
* ``vcov="iid"``: ``σ² (X'WX)^{-1}``, ``σ² = Σ w e² / (N-K)``; reference ``t(N-K)``.

``N`` is the number of rows for analytic weights and the sum of the weights for frequency
weights (a row then stands for ``w_i`` identical observations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from evaluering.estimators._fe import count_fe_dof
import pandas as pd
from scipy import stats

from evaluering.errors import EstimationError


@dataclass(frozen=True)
class OlsFit:
    """Coefficients of a (weighted) least-squares fit and their covariance."""

    names: tuple[str, ...]
    beta: np.ndarray
    vcov: np.ndarray
    resid: np.ndarray
    n_obs: int
    n_eff: float
    k: int  # parameters counted in the small-sample correction
    vcov_type: str
    df: float  # degrees of freedom of the t / F reference distribution (inf = normal)
    n_clusters: int | None = None
    info: dict = field(default_factory=dict)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def se(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.vcov), 0.0, None))

    def table(self, alpha: float = 0.05) -> pd.DataFrame:
        se = self.se()
        t, p, lo, hi = t_inference(self.beta, se, self.df, alpha)
        return pd.DataFrame({"term": list(self.names), "estimate": self.beta, "se": se,
                             "t": t, "p": p, "ci_low": lo, "ci_high": hi})

    def linear(self, a: np.ndarray) -> tuple[float, float]:
        """Estimate and standard error of the linear combination ``a'β``."""
        a = np.asarray(a, dtype=float)
        est = float(a @ self.beta)
        var = float(a @ self.vcov @ a)
        return est, float(np.sqrt(max(var, 0.0)))


def t_inference(est, se, df: float, alpha: float = 0.05):
    """t statistic, two-sided p-value and (1-alpha) interval with ``df`` degrees of freedom."""
    est = np.asarray(est, dtype=float)
    se = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = est / se
    if np.isinf(df):
        p = 2 * stats.norm.sf(np.abs(t))
        crit = stats.norm.ppf(1 - alpha / 2)
    else:
        p = 2 * stats.t.sf(np.abs(t), df)
        crit = stats.t.ppf(1 - alpha / 2, df)
    return t, p, est - crit * se, est + crit * se


def solve_wls(X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None,
              names: Sequence[str] | None = None, rtol: float = 1e-10):
    """β, residuals and bread ``(X'WX)^{-1}`` of a WLS fit; EstimationError if X is rank deficient."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    y = np.asarray(y, dtype=float)
    Xw = X if w is None else X * w[:, None]
    XtX = Xw.T @ X
    Xty = Xw.T @ y
    if X.shape[1] == 0:
        return np.zeros(0), y.copy(), np.zeros((0, 0))
    # columns the fixed effects absorbed have (numerically) zero sum of squares
    scale = np.sqrt(np.clip(np.diag(XtX), 0, None))
    bad = np.where(scale <= 1e-12 * max(float(np.max(scale)), 1e-300))[0]
    if len(bad):
        nm = [names[i] for i in bad] if names is not None else [str(i) for i in bad]
        raise EstimationError(f"regressor(s) {', '.join(nm)} have no variation left after the "
                              "fixed effects (collinear with unit/time effects)")
    D = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
    C = XtX * D[:, None] * D[None, :]
    ev = np.linalg.eigvalsh(C)
    if ev.min() <= rtol * max(ev.max(), 1.0):
        raise EstimationError("regressors are collinear (the design matrix is rank deficient)"
                              + (f": {', '.join(names)}" if names is not None else ""))
    Cinv = np.linalg.inv(C)
    bread = Cinv * D[:, None] * D[None, :]
    beta = bread @ Xty
    resid = y - X @ beta
    return beta, resid, bread


def nested_in(fe_codes: np.ndarray, cluster_codes: np.ndarray) -> bool:
    """True if every level of the fixed effect lies within a single cluster (O(n), no sort)."""
    fe_codes = np.asarray(fe_codes)
    cluster_codes = np.asarray(cluster_codes)
    if len(fe_codes) == 0:
        return True
    rep = np.empty(int(fe_codes.max()) + 1, dtype=cluster_codes.dtype)
    rep[fe_codes] = cluster_codes  # any row's cluster per level; nested iff all rows agree
    return bool(np.array_equal(rep[fe_codes], cluster_codes))


fe_dof = count_fe_dof  # one implementation, in _fe


def ols_fit(X: np.ndarray, y: np.ndarray, *, names: Sequence[str], w: np.ndarray | None = None,
            weight_type: str = "analytic", vcov: str = "cluster", cluster: np.ndarray | None = None,
            k_extra: int = 0) -> OlsFit:
    """Fit WLS and compute the requested covariance.

    ``k_extra``: further parameters (absorbed fixed effects not nested in the clusters) that
    enter ``K`` in the small-sample factor. ``cluster``: integer codes 0..G-1 (for
    ``vcov="cluster"``).
    """
    if weight_type not in ("analytic", "frequency"):
        raise EstimationError("weight_type must be 'analytic' or 'frequency'")
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    n = len(y)
    beta, resid, bread = solve_wls(X, y, w, names=list(names))
    n_eff = float(n if (w is None or weight_type == "analytic") else np.sum(w))
    k = X.shape[1] + int(k_extra)
    if n_eff - k <= 0:
        raise EstimationError(f"not enough observations ({n_eff:g}) for {k} parameters")
    wr = resid if w is None else resid * w  # w_i e_i
    n_clusters = None
    if vcov == "cluster":
        if cluster is None:
            raise EstimationError("cluster-robust covariance needs cluster codes")
        cluster = np.asarray(cluster)
        G = int(cluster.max()) + 1
        n_clusters = int(np.count_nonzero(np.bincount(cluster, minlength=G)))
        if n_clusters < 2:
            raise EstimationError("cluster-robust standard errors need at least 2 clusters")
        S = np.empty((G, X.shape[1]))
        for j in range(X.shape[1]):
            S[:, j] = np.bincount(cluster, weights=X[:, j] * wr, minlength=G)
        meat = S.T @ S
        c = n_clusters / (n_clusters - 1) * (n_eff - 1) / (n_eff - k)
        V = c * bread @ meat @ bread
        df = float(n_clusters - 1)
    elif vcov == "hc1":
        if w is None:
            om = resid**2
        elif weight_type == "analytic":
            om = (w * resid) ** 2
        else:
            om = w * resid**2
        meat = (X * om[:, None]).T @ X
        V = n_eff / (n_eff - k) * bread @ meat @ bread
        df = float(n_eff - k)
    elif vcov == "iid":
        ssr = float(np.sum(resid * wr))
        V = ssr / (n_eff - k) * bread
        df = float(n_eff - k)
    else:
        raise EstimationError(f"unknown vcov type '{vcov}' (cluster, hc1 or iid)")
    V = (V + V.T) / 2
    return OlsFit(names=tuple(names), beta=beta, vcov=V, resid=resid, n_obs=n, n_eff=n_eff, k=k,
                  vcov_type=vcov, df=df, n_clusters=n_clusters)


def wald_test(beta: np.ndarray, vcov: np.ndarray, df: float) -> dict:
    """Joint test of ``beta = 0``: Wald χ², F = W/q with F(q, df) reference (χ²(q) if df=inf)."""
    beta = np.asarray(beta, dtype=float)
    q = len(beta)
    if q == 0:
        return {"wald": np.nan, "F": np.nan, "q": 0, "df": df, "p": np.nan}
    try:
        W = float(beta @ np.linalg.solve(vcov, beta))
    except np.linalg.LinAlgError:
        W = float(beta @ np.linalg.pinv(vcov) @ beta)
    F = W / q
    p = float(stats.chi2.sf(W, q)) if np.isinf(df) else float(stats.f.sf(F, q, df))
    return {"wald": W, "F": F, "q": q, "df": df, "p": p}


def sup_t_critical(vcov: np.ndarray, alpha: float = 0.05, draws: int = 10_000,
                   seed: int | None = 0, df: float = np.inf) -> float:
    """Critical value of max_j |Z_j| / sd_j for Z ~ N(0, vcov) (uniform confidence band).

    With finite ``df`` the draws are multivariate t (``Z / sqrt(χ²_df / df)``), so the band is
    never narrower than the pointwise ``t(df)`` interval.
    """
    sd = np.sqrt(np.clip(np.diag(vcov), 0, None))
    keep = sd > 0
    if keep.sum() == 0:
        return np.nan
    corr = vcov[np.ix_(keep, keep)] / np.outer(sd[keep], sd[keep])
    rng = np.random.default_rng(seed)
    ev, evec = np.linalg.eigh(corr)
    L = evec * np.sqrt(np.clip(ev, 0, None))
    Z = rng.standard_normal((draws, keep.sum())) @ L.T
    if np.isfinite(df):
        Z /= np.sqrt(rng.chisquare(df, size=draws) / df)[:, None]
    return float(np.quantile(np.max(np.abs(Z), axis=1), 1 - alpha))
