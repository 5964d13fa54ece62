"""Quadratic programmes on the probability simplex, used by synthetic control and synthetic DiD.

Problem::

    minimise  f(x) = ||A x - b||^2 + eta * ||x||^2   subject to  x >= 0, sum(x) = 1

optionally with an unpenalised intercept (``intercept=True``: ``||A x + c - b||^2`` minimised
over the scalar ``c`` too, which is the same as centring the rows of ``A`` and ``b``).

The solver is an away-step Frank–Wolfe method (Frank & Wolfe 1956; Guélat & Marcotte 1986;
Lacoste-Julien & Jaggi 2015) with exact line search (the objective is quadratic), followed by
an active-set polish: on the current support the equality-constrained least squares problem is
solved in closed form, and the result is accepted when it is non-negative and satisfies the
Karush–Kuhn–Tucker conditions off the support. With ``eta > 0`` the problem is strongly convex
and the minimiser unique; away steps give linear convergence, and the polish makes the answer
exact up to floating point once the support is found.

``frank_wolfe_early_stop`` is the plain Frank–Wolfe iteration with the stopping rule described
in the documentation of the R package ``synthdid`` (stop when the decrease of the objective per
iteration falls below ``min_decrease**2`` or after ``max_iter`` iterations), used optionally to
mimic that package's approximate weights.
"""

from __future__ import annotations

import numpy as np


def _centre(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return A - A.mean(axis=0, keepdims=True), b - b.mean()


def objective(A: np.ndarray, b: np.ndarray, x: np.ndarray, eta: float, intercept: bool = False) -> float:
    if intercept:
        A, b = _centre(A, b)
    r = A @ x - b
    return float(r @ r + eta * (x @ x))


def _face_solution(A: np.ndarray, b: np.ndarray, eta: float, S: np.ndarray) -> np.ndarray:
    """Minimiser of the objective on the affine hull of the face ``S`` (may be negative)."""
    AS = A[:, S]
    k = len(S)
    K = np.zeros((k + 1, k + 1))
    K[:k, :k] = 2 * (AS.T @ AS + eta * np.eye(k))
    K[:k, k] = 1.0
    K[k, :k] = 1.0
    rhs = np.concatenate([2 * AS.T @ b, [1.0]])
    sol, *_ = np.linalg.lstsq(K, rhs, rcond=None)
    return sol[:k]


def _active_set(A: np.ndarray, b: np.ndarray, eta: float, x: np.ndarray,
                max_iter: int = 500) -> tuple[np.ndarray, bool]:
    """Primal active-set method on the simplex, warm-started at the feasible ``x``.

    Returns (x, converged). Each pass solves the equality-constrained problem on the current
    support, steps towards it until a weight hits zero (dropping it) or, when the face
    solution is feasible, adds the coordinate that most violates the KKT conditions.
    """
    n = A.shape[1]
    x = x.copy()
    S = np.flatnonzero(x > 0)
    for _ in range(max_iter):
        xs = _face_solution(A, b, eta, S)
        if np.any(xs < 0):
            d = xs - x[S]
            neg = d < 0
            alpha = float(np.min(-x[S][neg] / d[neg]))
            alpha = min(max(alpha, 0.0), 1.0)
            x[S] = x[S] + alpha * d
            x[x < 1e-14] = 0.0
            x /= x.sum()
            S = np.flatnonzero(x > 0)
            continue
        x = np.zeros(n)
        x[S] = xs
        x /= x.sum()
        g = 2 * (A.T @ (A @ x - b) + eta * x)
        nu = float(g[S].mean())
        scale = 1e-10 * (1.0 + float(np.max(np.abs(g))))
        out = np.setdiff1d(np.arange(n), S)
        if len(out) == 0:
            return x, True
        j = out[int(np.argmin(g[out]))]
        if g[j] >= nu - scale:
            return x, True
        S = np.sort(np.append(S, j))
    return x, False


def simplex_qp(A: np.ndarray, b: np.ndarray, eta: float = 0.0, *, intercept: bool = False,
               x0: np.ndarray | None = None, tol: float = 1e-12, max_iter: int = 100_000,
               warm_iters: int = 10) -> np.ndarray:
    """Minimise ``||A x (+ c) - b||^2 + eta ||x||^2`` over the simplex; returns ``x``.

    A: (m, n), b: (m,). ``tol`` is the relative Frank–Wolfe duality-gap tolerance.
    ``x0``: feasible warm start; ``warm_iters``: Frank–Wolfe iterations before (and between)
    attempts of the exact active-set finish.
    """
    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    if A.ndim != 2 or b.shape != (A.shape[0],):
        raise ValueError("A must be (m, n) and b (m,)")
    n = A.shape[1]
    if n == 0:
        raise ValueError("no columns to weight")
    if n == 1:
        return np.ones(1)
    if intercept:
        A, b = _centre(A, b)
    x = np.full(n, 1.0 / n) if x0 is None else np.asarray(x0, dtype=float).copy()
    Ax = A @ x
    col_sq = np.einsum("ij,ij->j", A, A)
    f_scale = float(b @ b) + float(np.max(col_sq)) + eta + 1e-300
    for it in range(max_iter):
        r = Ax - b
        g = 2.0 * (A.T @ r + eta * x)
        j = int(np.argmin(g))
        active = x > 0
        gap = float(g @ x - g[j])
        if gap <= tol * f_scale:
            break
        # after a warm start, finish with the exact active-set method
        if it >= warm_iters and (it - warm_iters) % 50 == 0:
            xp, ok = _active_set(A, b, eta, x)
            if ok and objective(A, b, xp, eta) <= objective(A, b, x, eta) + 1e-12 * f_scale:
                return xp
        ga = np.where(active, g, -np.inf)
        k = int(np.argmax(ga))
        fw_dir_gain = float(g @ x - g[j])          # -g'd for d = e_j - x
        away_gain = float(g[k] - g @ x)            # -g'd for d = x - e_k
        if fw_dir_gain >= away_gain or x[k] >= 1.0 - 1e-15:
            d = -x.copy()
            d[j] += 1.0
            Ad = A[:, j] - Ax
            gmax = 1.0
            gain = fw_dir_gain
        else:
            d = x.copy()
            d[k] -= 1.0
            Ad = Ax - A[:, k]
            gmax = x[k] / (1.0 - x[k])
            gain = away_gain
        curv = 2.0 * (float(Ad @ Ad) + eta * float(d @ d))
        step = gmax if curv <= 0 else min(gmax, gain / curv)
        if step <= 0:
            break
        x = x + step * d
        x[x < 1e-15] = 0.0
        x /= x.sum()
        Ax = A @ x
    xp, ok = _active_set(A, b, eta, x)
    if ok and objective(A, b, xp, eta) <= objective(A, b, x, eta) + 1e-12 * f_scale:
        return xp
    return x


def frank_wolfe_early_stop(A: np.ndarray, b: np.ndarray, eta: float, *, intercept: bool = True,
                           x0: np.ndarray | None = None, min_decrease: float = 1e-3,
                           max_iter: int = 10_000) -> np.ndarray:
    """Plain Frank–Wolfe on the objective ``||A x (+c) - b||^2 / m + zeta^2 ||x||^2``.

    Here ``eta`` is ``zeta^2`` (the penalty on the mean squared error scale, ``m`` = rows of A).
    Stops when the objective decreases by less than ``min_decrease**2`` in an iteration or
    after ``max_iter`` iterations (the stopping rule documented for R ``synthdid``).
    """
    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    if intercept:
        A, b = _centre(A, b)
    m, n = A.shape
    if n == 1:
        return np.ones(1)
    x = np.full(n, 1.0 / n) if x0 is None else np.asarray(x0, dtype=float).copy()
    # f(x) = ||Ax-b||^2/m + eta ||x||^2  ==  (||Ax-b||^2 + m*eta ||x||^2) / m
    pen = m * eta
    vals = []
    Ax = A @ x
    for it in range(max_iter):
        r = Ax - b
        g = A.T @ r + pen * x  # half gradient of m*f
        j = int(np.argmin(g))
        d = -x.copy()
        d[j] += 1.0
        Ad = A[:, j] - Ax
        curv = float(Ad @ Ad) + pen * float(d @ d)
        if curv > 0:
            step = min(1.0, max(0.0, -float(g @ d) / curv))
            x = x + step * d
            Ax = Ax + step * Ad
        r = Ax - b
        vals.append(eta * float(x @ x) + float(r @ r) / m)
        if len(vals) >= 2 and vals[-2] - vals[-1] <= min_decrease ** 2:
            break
    return x
