"""Fixed-effects algebra shared by the linear estimators and the wild bootstrap.

``demean`` sweeps one or more sets of fixed effects out of the columns of a matrix by the
method of alternating projections (weighted group means via ``np.bincount``), which is exact
in one pass for a single factor and converges geometrically for two or more. By the
Frisch–Waugh–Lovell theorem an OLS of demeaned y on demeaned X gives the slope coefficients
of the regression with the fixed effects as dummies, and its residuals are the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def factorize(values) -> tuple[np.ndarray, int]:
    """Integer codes 0..G-1 and G for any 1-D array-like (NaN not allowed)."""
    codes, uniques = pd.factorize(pd.Series(values), sort=True)
    if (codes < 0).any():
        raise ValueError("missing values in a fixed-effect or cluster column")
    return codes.astype(np.int64), len(uniques)


def demean(X: np.ndarray, fes: list[np.ndarray], weights: np.ndarray | None = None,
           tol: float = 1e-12, maxiter: int = 10_000) -> np.ndarray:
    """Return X with the fixed effects ``fes`` (integer code arrays) projected out.

    X: (n,) or (n, k) float array. weights: optional (n,) positive weights (the projection
    is then the weighted one, as in WLS with those weights).
    """
    X = np.asarray(X, dtype=float)
    one_d = X.ndim == 1
    M = X.reshape(len(X), -1).copy()
    if not fes:
        return M[:, 0] if one_d else M
    w = np.ones(len(M)) if weights is None else np.asarray(weights, dtype=float)
    sizes = [np.bincount(g, weights=w) for g in fes]
    for it in range(maxiter):
        max_change = 0.0
        for g, sw in zip(fes, sizes):
            for j in range(M.shape[1]):
                means = np.bincount(g, weights=w * M[:, j], minlength=len(sw))
                with np.errstate(invalid="ignore", divide="ignore"):
                    means = np.where(sw > 0, means / sw, 0.0)
                step = means[g]
                max_change = max(max_change, float(np.max(np.abs(step))) if len(step) else 0.0)
                M[:, j] -= step
        if len(fes) == 1 or max_change < tol * (1.0 + float(np.max(np.abs(M))) if M.size else 1.0):
            break
    else:  # pragma: no cover - pathological designs
        raise RuntimeError("fixed-effect demeaning did not converge")
    return M[:, 0] if one_d else M


def count_fe_dof(fes: list[np.ndarray]) -> int:
    """Degrees of freedom absorbed by the fixed effects.

    Exact for one factor (G levels) and for two factors whose bipartite graph is connected
    (G1 + G2 - 1); otherwise G1 + G2 - (number of connected components).
    """
    if not fes:
        return 0
    if len(fes) == 1:
        return int(fes[0].max()) + 1
    total = sum(int(g.max()) + 1 for g in fes)
    # redundant levels: connected components of the graph over the first two factors
    g1, g2 = fes[0], fes[1]
    n1 = int(g1.max()) + 1
    parent = np.arange(n1 + int(g2.max()) + 1)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    pairs = np.unique(np.stack([g1, g2 + n1], axis=1), axis=0)
    for a, b in pairs:
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[ra] = rb
    comps = len({find(i) for i in range(len(parent))})
    return total - comps - (len(fes) - 2)  # further factors: one redundant level each
