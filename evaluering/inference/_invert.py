"""Test inversion: the boundary between accepted and rejected values of a parameter."""

from __future__ import annotations

from typing import Callable


def bisect_boundary(p_at: Callable[[float], float], inner: float, outer: float, alpha: float,
                    tol: float, maxiter: int) -> float:
    """Bisect between ``inner`` (accepted: p >= alpha) and ``outer`` (rejected) until they are
    within ``tol``; returns the midpoint, the end of the confidence interval on that side."""
    for _ in range(maxiter):
        if abs(outer - inner) <= tol:
            break
        mid = 0.5 * (inner + outer)
        if p_at(mid) < alpha:
            outer = mid
        else:
            inner = mid
    return 0.5 * (inner + outer)
