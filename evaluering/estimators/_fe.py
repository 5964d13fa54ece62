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
    """Degrees of freedom absorbed by the fixed effects: total levels minus redundant ones.

    One factor: its number of levels G. Two factors: G1 + G2 − (connected components of the
    bipartite level graph), exact, computed with ``scipy.sparse.csgraph`` in O(n). Each further
    factor is assumed to add one redundancy.
    """
    if not fes:
        return 0
    sizes = [int(g.max()) + 1 for g in fes]
    if len(fes) == 1:
        return sizes[0]
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g1, g2 = fes[0], fes[1]
    n1, n2 = sizes[0], sizes[1]
    adj = coo_matrix((np.ones(len(g1), dtype=np.int8), (g1, g2 + n1)),
                     shape=(n1 + n2, n1 + n2)).tocsr()
    n_comp, _ = connected_components(adj, directed=False)
    return sum(sizes) - int(n_comp) - (len(fes) - 2)
