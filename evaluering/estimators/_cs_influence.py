"""Influence-function matrices for the Callaway–Sant'Anna estimator, stored compactly.

An influence matrix ``Psi`` (rows x m) has one row per sampling unit (a unit in panel
data, an observation in repeated cross-sections), scaled so that ``theta_hat - theta ~=
Psi.sum(0) / n``; the analytic variance is ``Psi' Psi / n**2`` (or, clustered,
``S' S / n**2`` with ``S`` the within-cluster sums of the rows).

Two representations:

* ``dense``: the matrix itself (used with covariates, where every 2x2 estimate has its own
  regressions).
* ``structured``: rows are sorted into *cells* (cohorts; in repeated cross-sections
  cohort x period) and each row's influence is linear in a short feature vector ``z_r``
  (panel: ``w*Y_1..w*Y_T, w, 1``; RCS: ``w*y, w, 1``) with coefficients that depend only on the
  cell: ``Psi[r] = z_r @ Lam[cell(r)]``. This is exact for the unconditional estimator and
  for every aggregation of it (the aggregation-weight correction is ``w_r * U[cohort(r)]``),
  so covariances come from per-cell second moments ``Z_c' Z_c`` without ever forming the
  n x m matrix; the bootstrap works from ``V @ Z_c`` per cell.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

_CHUNK_ELEMS = 8_000_000  # size of one block of bootstrap multipliers (floats)

MAMMEN_LOW = (1 - np.sqrt(5)) / 2
MAMMEN_HIGH = (1 + np.sqrt(5)) / 2
MAMMEN_P = (np.sqrt(5) + 1) / (2 * np.sqrt(5))


def multipliers(rng: np.random.Generator, shape, kind: str = "mammen") -> np.ndarray:
    """Mean-zero, unit-variance multiplier weights (Mammen two-point or Rademacher)."""
    u = rng.random(shape)
    if kind == "mammen":
        return np.where(u < MAMMEN_P, MAMMEN_LOW, MAMMEN_HIGH)
    if kind == "rademacher":
        return np.where(u < 0.5, -1.0, 1.0)
    raise ValueError(f"unknown multiplier kind {kind!r}")


class Influence:
    """A rows x m influence matrix (see module docstring)."""

    def __init__(self, n: int, *, dense: np.ndarray | None = None, Z: np.ndarray | None = None,
                 bounds: np.ndarray | None = None, lam: np.ndarray | None = None,
                 _ztz: np.ndarray | None = None):
        self.n = int(n)
        self._dense = dense
        self.Z, self.bounds, self.lam = Z, bounds, lam
        self._ztz = _ztz

    # ------------------------------------------------------------------ basic facts
    @property
    def structured(self) -> bool:
        return self._dense is None

    @property
    def m(self) -> int:
        return self.lam.shape[2] if self.structured else self._dense.shape[1]

    @property
    def rows(self) -> int:
        return len(self.Z) if self.structured else len(self._dense)

    def _cells(self):
        for c in range(len(self.bounds) - 1):
            lo, hi = self.bounds[c], self.bounds[c + 1]
            if hi > lo:
                yield c, lo, hi

    def ztz(self) -> np.ndarray:
        if self._ztz is None:
            d = self.Z.shape[1]
            out = np.zeros((len(self.bounds) - 1, d, d))
            for c, lo, hi in self._cells():
                Zc = self.Z[lo:hi]
                out[c] = Zc.T @ Zc
            self._ztz = out
        return self._ztz

    # ------------------------------------------------------------------ algebra
    def combine(self, A: np.ndarray) -> "Influence":
        """``Psi @ A`` (A: m x q)."""
        A = np.asarray(A, dtype=float)
        if self.structured:
            return Influence(self.n, Z=self.Z, bounds=self.bounds, lam=self.lam @ A, _ztz=self._ztz)
        return Influence(self.n, dense=self._dense @ A)

    def add_cohort_terms(self, U: np.ndarray, row_w: np.ndarray, row_cohort: np.ndarray,
                         cell_cohort: np.ndarray | None, inplace: bool = False) -> "Influence":
        """Add ``row_w[r] * U[cohort(r)]`` (U: n_cohorts x m), the aggregation-weight part.
        ``inplace`` reuses this object's dense matrix (only for a fresh ``combine`` result)."""
        U = np.asarray(U, dtype=float)
        if self.structured:
            lam = self.lam.copy()
            wcol = self.Z.shape[1] - 2  # the column holding w
            lam[:, wcol, :] += U[cell_cohort]
            return Influence(self.n, Z=self.Z, bounds=self.bounds, lam=lam, _ztz=self._ztz)
        out = self._dense if inplace else self._dense.copy()
        if np.all(row_cohort[1:] >= row_cohort[:-1]):  # rows sorted by cohort: block-wise
            cb = np.searchsorted(row_cohort, np.arange(len(U) + 1))
            for c in range(len(U)):
                lo, hi = cb[c], cb[c + 1]
                if hi > lo and np.any(U[c]):
                    out[lo:hi] += row_w[lo:hi, None] * U[c]
        else:
            out += row_w[:, None] * U[row_cohort]
        return Influence(self.n, dense=out)

    def dense(self) -> np.ndarray:
        """The rows x m matrix (materialised)."""
        if not self.structured:
            return self._dense
        out = np.zeros((self.rows, self.m))
        for c, lo, hi in self._cells():
            out[lo:hi] = self.Z[lo:hi] @ self.lam[c]
        return out

    def cluster_sums(self, codes: np.ndarray, n_clusters: int) -> np.ndarray:
        """n_clusters x m within-cluster sums of the rows."""
        if not self.structured:
            S = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                              shape=(n_clusters, len(codes)))
            return np.asarray(S @ self._dense)
        out = np.zeros((n_clusters, self.m))
        for c, lo, hi in self._cells():
            cl = codes[lo:hi]
            uniq, inv = np.unique(cl, return_inverse=True)
            sums = np.column_stack([np.bincount(inv, weights=self.Z[lo:hi, j], minlength=len(uniq))
                                    for j in range(self.Z.shape[1])])
            out[uniq] += sums @ self.lam[c]
        return out

    def gram(self, cluster: tuple[np.ndarray, int] | None = None) -> np.ndarray:
        """``Psi' Psi`` (m x m), or ``S' S`` with S the cluster sums."""
        if cluster is not None:
            S = self.cluster_sums(*cluster)
            return S.T @ S
        if not self.structured:
            return self._dense.T @ self._dense
        ztz = self.ztz()
        out = np.zeros((self.m, self.m))
        for c, lo, hi in self._cells():
            out += self.lam[c].T @ ztz[c] @ self.lam[c]
        return out

    def vcov(self, cluster=None) -> np.ndarray:
        return self.gram(cluster) / self.n ** 2

    # ------------------------------------------------------------------ bootstrap
    def bootstrap(self, n_boot: int, rng: np.random.Generator, kind: str = "mammen",
                  cluster: tuple[np.ndarray, int] | None = None) -> np.ndarray:
        """Multiplier-bootstrap draws of ``theta* - theta_hat`` (n_boot x m):
        ``sum_r v_r Psi[r] / n`` with one multiplier per row, or per cluster."""
        out = np.empty((n_boot, self.m))
        if cluster is not None:
            S = self.cluster_sums(*cluster)
            step = max(1, _CHUNK_ELEMS // max(1, len(S)))
            for b0 in range(0, n_boot, step):
                b1 = min(n_boot, b0 + step)
                out[b0:b1] = multipliers(rng, (b1 - b0, len(S)), kind) @ S / self.n
            return out
        step = max(1, _CHUNK_ELEMS // max(1, self.rows))
        for b0 in range(0, n_boot, step):
            b1 = min(n_boot, b0 + step)
            V = multipliers(rng, (b1 - b0, self.rows), kind)
            if self.structured:
                acc = np.zeros((b1 - b0, self.m))
                for c, lo, hi in self._cells():
                    acc += (V[:, lo:hi] @ self.Z[lo:hi]) @ self.lam[c]
                out[b0:b1] = acc / self.n
            else:
                out[b0:b1] = V @ self._dense / self.n
        return out
