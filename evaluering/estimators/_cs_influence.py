"""Influence-function matrices for the Callaway–Sant'Anna estimator, stored compactly.

An influence matrix ``Psi`` (rows x m) has one row per sampling unit (a unit in panel
data, an observation in repeated cross-sections), scaled so that ``theta_hat - theta ~=
Psi.sum(0) / n``; the analytic variance is ``Psi' Psi / n**2`` (or, clustered,
``S' S / n**2`` with ``S`` the within-cluster sums of the rows).

Two representations:

* ``dense``: a base matrix ``Psi0`` (rows x K, one column per ATT(g,t); used with
  covariates, where every 2x2 estimate has its own regressions) kept together with a lazy
  linear map: ``Psi = Psi0 @ A + w_r * U[cohort(r)]``. Covariances, cluster sums and bootstrap
  draws are formed from ``Psi0' Psi0``, per-cohort sums ``sum w_r Psi0[r]`` and ``sum w_r**2``,
  so aggregations never materialise another rows x m matrix.
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
    """A rows x m influence matrix (see module docstring).

    Rows must be sorted by cohort (``row_cohort`` non-decreasing) for the dense variant's
    cohort terms; the estimator sorts rows by cell, cohort-major.
    """

    def __init__(self, n: int, *, dense: np.ndarray | None = None, Z: np.ndarray | None = None,
                 bounds: np.ndarray | None = None, lam: np.ndarray | None = None,
                 _ztz: np.ndarray | None = None, A: np.ndarray | None = None,
                 U: np.ndarray | None = None, row_w: np.ndarray | None = None,
                 cb: np.ndarray | None = None, _cache: dict | None = None):
        self.n = int(n)
        self._dense = dense
        self.Z, self.bounds, self.lam = Z, bounds, lam
        self._ztz = _ztz
        self._A, self._U, self._row_w, self._cb = A, U, row_w, cb
        self._cache = {} if _cache is None else _cache

    # ------------------------------------------------------------------ basic facts
    @property
    def structured(self) -> bool:
        return self._dense is None

    @property
    def m(self) -> int:
        if self.structured:
            return self.lam.shape[2]
        return self._dense.shape[1] if self._A is None else self._A.shape[1]

    @property
    def rows(self) -> int:
        return len(self.Z) if self.structured else len(self._dense)

    def _cells(self):
        for c in range(len(self.bounds) - 1):
            lo, hi = self.bounds[c], self.bounds[c + 1]
            if hi > lo:
                yield c, lo, hi

    def _cohort_blocks(self):
        for c in range(len(self._cb) - 1):
            lo, hi = self._cb[c], self._cb[c + 1]
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

    def _Amat(self) -> np.ndarray:
        return np.eye(self._dense.shape[1]) if self._A is None else self._A

    def _dense_like(self, A, U, cb=None) -> "Influence":
        return Influence(self.n, dense=self._dense, A=A, U=U, row_w=self._row_w,
                         cb=self._cb if cb is None else cb, _cache=self._cache)

    # ------------------------------------------------------------------ algebra
    def combine(self, A: np.ndarray) -> "Influence":
        """``Psi @ A`` (A: m x q)."""
        A = np.asarray(A, dtype=float)
        if self.structured:
            return Influence(self.n, Z=self.Z, bounds=self.bounds, lam=self.lam @ A, _ztz=self._ztz)
        return self._dense_like(self._Amat() @ A, None if self._U is None else self._U @ A)

    def add_cohort_terms(self, U: np.ndarray, row_w: np.ndarray, row_cohort: np.ndarray,
                         cell_cohort: np.ndarray | None) -> "Influence":
        """Add ``row_w[r] * U[cohort(r)]`` (U: n_cohorts x m), the aggregation-weight part."""
        U = np.asarray(U, dtype=float)
        if self.structured:
            lam = self.lam.copy()
            wcol = self.Z.shape[1] - 2  # the column holding w
            lam[:, wcol, :] += U[cell_cohort]
            return Influence(self.n, Z=self.Z, bounds=self.bounds, lam=lam, _ztz=self._ztz)
        if np.any(row_cohort[1:] < row_cohort[:-1]):
            raise ValueError("rows must be sorted by cohort")
        cb = np.searchsorted(row_cohort, np.arange(len(U) + 1))
        out = self._dense_like(self._Amat(), U if self._U is None else self._U + U, cb)
        out._row_w = row_w
        return out

    def dense(self) -> np.ndarray:
        """The rows x m matrix (materialised)."""
        if not self.structured:
            out = self._dense @ self._Amat()
            if self._U is not None:
                for c, lo, hi in self._cohort_blocks():
                    out[lo:hi] += self._row_w[lo:hi, None] * self._U[c]
            return out
        out = np.zeros((self.rows, self.m))
        for c, lo, hi in self._cells():
            out[lo:hi] = self.Z[lo:hi] @ self.lam[c]
        return out

    def _w_indicator(self, codes: np.ndarray, n_groups: int) -> np.ndarray:
        """n_groups x n_cohorts sums of row weights by (group code, cohort)."""
        out = np.zeros((n_groups, len(self._cb) - 1))
        for c, lo, hi in self._cohort_blocks():
            out[:, c] = np.bincount(codes[lo:hi], weights=self._row_w[lo:hi], minlength=n_groups)
        return out

    def cluster_sums(self, codes: np.ndarray, n_clusters: int) -> np.ndarray:
        """n_clusters x m within-cluster sums of the rows."""
        if not self.structured:
            if "cl" not in self._cache or self._cache["cl"][0] is not codes:
                S = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                                  shape=(n_clusters, len(codes)))
                self._cache["cl"] = (codes, np.asarray(S @ self._dense))
            out = self._cache["cl"][1] @ self._Amat()
            if self._U is not None:
                out += self._w_indicator(codes, n_clusters) @ self._U
            return out
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
            if "G" not in self._cache:
                self._cache["G"] = self._dense.T @ self._dense
            A = self._Amat()
            out = A.T @ self._cache["G"] @ A
            if self._U is not None:
                if "P" not in self._cache:
                    K = self._dense.shape[1]
                    C = len(self._cb) - 1
                    P, Q = np.zeros((K, C)), np.zeros(C)
                    for c, lo, hi in self._cohort_blocks():
                        P[:, c] = self._row_w[lo:hi] @ self._dense[lo:hi]
                        Q[c] = self._row_w[lo:hi] @ self._row_w[lo:hi]
                    self._cache["P"], self._cache["Q"] = P, Q
                cross = A.T @ self._cache["P"] @ self._U
                out = out + cross + cross.T + self._U.T @ (self._cache["Q"][:, None] * self._U)
            return out
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
                acc = (V @ self._dense) @ self._Amat()
                if self._U is not None:
                    for c, lo, hi in self._cohort_blocks():
                        acc += np.outer(V[:, lo:hi] @ self._row_w[lo:hi], self._U[c])
                out[b0:b1] = acc / self.n
        return out
