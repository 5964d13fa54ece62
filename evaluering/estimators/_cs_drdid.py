"""Two-period (2x2) DiD estimators with covariates and their influence functions.

Implemented from Sant'Anna & Zhao (2020), "Doubly robust difference-in-differences
estimators", J. Econometrics 219(1): outcome regression (Heckman, Ichimura & Todd 1997),
normalised (Hajek) inverse probability weighting (Abadie 2005) and doubly robust, each for
panel data (outcome is the change ``dy`` between the two periods) and for repeated
cross-sections (outcome ``y`` with a ``post`` indicator). The panel DR is the paper's
"traditional" DR estimator (logit propensity score by maximum likelihood, OLS outcome model
for the change among the comparison units; eq. 3.1), which is also what R ``did`` uses by
default; the repeated cross-section DR is the paper's locally efficient estimator (eq. 3.4,
with outcome models for both groups in both periods).

Every function returns ``(att, inf)`` where ``inf`` is the (empirical) influence function
of the estimator: ``att_hat - att ~= mean(inf)``; so ``Var(att_hat) ~= mean(inf**2) / n``.
It includes the estimation effect of the nuisance parameters (logit and OLS coefficients).

Propensity scores are capped at ``1 - 1e-6`` and comparison units with a score of at least
``0.995`` get weight zero (the usual trimming for overlap failures).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from evaluering.errors import EstimationError

PS_CAP = 1 - 1e-6
PS_TRIM = 0.995


def _solve(A: np.ndarray, what: str) -> np.ndarray:
    try:
        Ainv = np.linalg.inv(A)
    except np.linalg.LinAlgError:
        raise EstimationError(f"{what}: the covariate matrix is singular (collinear covariates or "
                              "a covariate constant within the group)") from None
    if not np.all(np.isfinite(Ainv)) or np.linalg.cond(A) > 1e14:
        raise EstimationError(f"{what}: the covariate matrix is (numerically) singular "
                              "(collinear covariates or a covariate constant within the group)")
    return Ainv


def logit(D: np.ndarray, X: np.ndarray, w: np.ndarray, maxiter: int = 100):
    """Weighted logistic regression by Newton-Raphson.

    Returns fitted probabilities and ``n * (X' diag(w p (1-p)) X)^{-1}`` (the inverse of the
    average Hessian), used to form the coefficients' influence function
    ``(w (D - p) X) @ Hinv``.
    """
    n, k = X.shape
    beta = np.zeros(k)
    pbar = np.sum(w * D) / np.sum(w)
    if not 0 < pbar < 1:
        raise EstimationError("propensity score: need both treated and comparison units")
    # start from the intercept-only fit when the first column is the constant
    if np.allclose(X[:, 0], 1.0):
        beta[0] = np.log(pbar / (1 - pbar))
    for _ in range(maxiter):
        p = expit(X @ beta)
        grad = X.T @ (w * (D - p))
        H = X.T @ (X * (w * p * (1 - p))[:, None])
        step = np.linalg.solve(H, grad) if np.linalg.cond(H) < 1e14 else None
        if step is None:
            raise EstimationError("propensity score: the logit Hessian is singular "
                                  "(perfect separation or collinear covariates)")
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = expit(X @ beta)
    H = X.T @ (X * (w * p * (1 - p))[:, None])
    return p, n * _solve(H, "propensity score")


def wls_inv(X: np.ndarray, w: np.ndarray, what: str = "outcome regression") -> np.ndarray:
    """``n * (X' diag(w) X)^{-1}``: the inverse average Gram matrix of a WLS fit."""
    if np.count_nonzero(w) < X.shape[1]:
        raise EstimationError(f"{what}: fewer comparison observations than covariates")
    return len(X) * _solve(X.T @ (X * w[:, None]), what)


def wls(y: np.ndarray, X: np.ndarray, w: np.ndarray, what: str = "outcome regression",
        Ainv_n: np.ndarray | None = None):
    """Weighted least squares; returns coefficients and ``n * (X' diag(w) X)^{-1}``
    (pass the latter as ``Ainv_n`` to reuse it for another outcome)."""
    if Ainv_n is None:
        Ainv_n = wls_inv(X, w, what)
    beta = Ainv_n @ (X.T @ (w * y)) / len(y)
    return beta, Ainv_n


def _rep_dot(resid_w: np.ndarray, X: np.ndarray, Ainv_n: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``((resid_w * X) @ Ainv_n) @ M`` without forming the n x k matrix twice."""
    return resid_w * (X @ (Ainv_n @ M))


def _ps_weights(D, X, w, ps_fit=None):
    ps, Hinv = logit(D, X, w) if ps_fit is None else ps_fit
    ps = np.minimum(ps, PS_CAP)
    keep = np.where(D == 1, 1.0, (ps < PS_TRIM).astype(float))
    w_t = keep * w * D
    w_c = keep * w * ps * (1 - D) / (1 - ps)
    return ps, Hinv, w_t, w_c


# --------------------------------------------------------------------------- panel data


def dr_panel(dy, D, X, w, ps_fit=None, ols_inv=None):
    """Doubly robust DiD for panel data (Sant'Anna & Zhao 2020, eq. 3.1).

    ``ps_fit`` (= ``logit(D, X, w)``) and ``ols_inv`` (= ``wls_inv(X, w * (1 - D))``) may be
    passed to reuse them across outcomes with the same sample and covariates."""
    n = len(dy)
    ps, Hps, w_t, w_c = _ps_weights(D, X, w, ps_fit)
    w_ols = w * (1 - D)
    beta, Hols = wls(dy, X, w_ols, Ainv_n=ols_inv)
    out = X @ beta
    r = dy - out
    mt, mc = w_t.mean(), w_c.mean()
    eta_t = np.mean(w_t * r) / mt
    eta_c = np.mean(w_c * r) / mc
    ols_resid = w_ols * r
    ps_resid = w * (D - ps)
    inf_t = (w_t * (r - eta_t) - _rep_dot(ols_resid, X, Hols, X.T @ w_t / n)) / mt
    M2 = X.T @ (w_c * (r - eta_c)) / n
    inf_c = (w_c * (r - eta_c) + _rep_dot(ps_resid, X, Hps, M2)
             - _rep_dot(ols_resid, X, Hols, X.T @ w_c / n)) / mc
    return eta_t - eta_c, inf_t - inf_c


def ipw_panel(dy, D, X, w, ps_fit=None, ols_inv=None):
    """Normalised (Hajek) IPW DiD for panel data (Abadie 2005; Sant'Anna & Zhao 2020)."""
    n = len(dy)
    ps, Hps, w_t, w_c = _ps_weights(D, X, w, ps_fit)
    mt, mc = w_t.mean(), w_c.mean()
    att_t = np.mean(w_t * dy) / mt
    att_c = np.mean(w_c * dy) / mc
    inf_t = w_t * (dy - att_t) / mt
    M2 = X.T @ (w_c * (dy - att_c)) / n
    inf_c = (w_c * (dy - att_c) + _rep_dot(w * (D - ps), X, Hps, M2)) / mc
    return att_t - att_c, inf_t - inf_c


def reg_panel(dy, D, X, w, ps_fit=None, ols_inv=None):
    """Outcome-regression DiD for panel data (Heckman, Ichimura & Todd 1997)."""
    n = len(dy)
    w_ols = w * (1 - D)
    beta, Hols = wls(dy, X, w_ols, Ainv_n=ols_inv)
    out = X @ beta
    w_t = w * D
    mt = w_t.mean()
    eta_t = np.mean(w_t * dy) / mt
    eta_c = np.mean(w_t * out) / mt
    inf_t = w_t * (dy - eta_t) / mt
    inf_c = (w_t * (out - eta_c) + _rep_dot(w_ols * (dy - out), X, Hols, X.T @ w_t / n)) / mt
    return eta_t - eta_c, inf_t - inf_c


# --------------------------------------------------------------- repeated cross-sections


def dr_rc(y, post, D, X, w):
    """Locally efficient doubly robust DiD for repeated cross-sections (Sant'Anna & Zhao
    2020, eq. 3.4): logit propensity score pooled over both periods, OLS outcome models for
    comparison and treated units in each period."""
    n = len(y)
    ps, Hps, _, _ = _ps_weights(D, X, w)
    keep = np.where(D == 1, 1.0, (ps < PS_TRIM).astype(float))
    pre = 1 - post
    fits = {}
    for name, ind in (("c0", (1 - D) * pre), ("c1", (1 - D) * post),
                      ("t0", D * pre), ("t1", D * post)):
        b, H = wls(y, X, w * ind, what=f"outcome regression ({name})")
        fits[name] = (X @ b, w * ind, H)
    oc0, oc1, ot0, ot1 = (fits[k][0] for k in ("c0", "c1", "t0", "t1"))
    oc = post * oc1 + pre * oc0

    w_t0 = keep * w * D * pre
    w_t1 = keep * w * D * post
    w_c0 = keep * w * ps * (1 - D) * pre / (1 - ps)
    w_c1 = keep * w * ps * (1 - D) * post / (1 - ps)
    w_d = keep * w * D
    w_dt1 = keep * w * D * post
    w_dt0 = keep * w * D * pre

    def hajek(wt, v):
        m = wt.mean()
        est = np.mean(wt * v) / m
        return est, wt * (v - est) / m, m

    r = y - oc
    a_t0, i_t0, m_t0 = hajek(w_t0, r)
    a_t1, i_t1, m_t1 = hajek(w_t1, r)
    a_c0, i_c0, m_c0 = hajek(w_c0, r)
    a_c1, i_c1, m_c1 = hajek(w_c1, r)
    a_d1, i_d1, m_d = hajek(w_d, ot1 - oc1)
    a_dt1, i_dt1, m_dt1 = hajek(w_dt1, ot1 - oc1)
    a_d0, i_d0, _ = hajek(w_d, ot0 - oc0)
    a_dt0, i_dt0, m_dt0 = hajek(w_dt0, ot0 - oc0)
    att = (a_t1 - a_t0) - (a_c1 - a_c0) + (a_d1 - a_dt1) - (a_d0 - a_dt0)

    def rep(name, M):
        fit_vals, wi, H = fits[name]
        return _rep_dot(wi * (y - fit_vals), X, H, M)

    # estimation effect of the comparison-group outcome models on the "treated" and
    # "comparison" Hajek terms (both use residuals y - oc)
    inf_treat = (i_t1 - i_t0
                 + rep("c1", -X.T @ (w_t1 * post) / n / m_t1)
                 - rep("c0", -X.T @ (w_t0 * pre) / n / m_t0))
    M2_0 = X.T @ (w_c0 * (r - a_c0)) / n / m_c0
    M2_1 = X.T @ (w_c1 * (r - a_c1)) / n / m_c1
    inf_cont = (i_c1 - i_c0 + _rep_dot(w * (D - ps), X, Hps, M2_1 - M2_0)
                + rep("c1", -X.T @ (w_c1 * post) / n / m_c1)
                - rep("c0", -X.T @ (w_c0 * pre) / n / m_c0))
    # efficiency-adjustment terms: Hajek parts plus the estimation effect of all four
    # outcome models
    inf_eff = (i_d1 - i_dt1) - (i_d0 - i_dt0)
    mom1 = X.T @ (w_d / m_d - w_dt1 / m_dt1) / n
    mom0 = X.T @ (w_d / m_d - w_dt0 / m_dt0) / n
    inf_or = (rep("t1", mom1) - rep("c1", mom1)) - (rep("t0", mom0) - rep("c0", mom0))
    return att, inf_treat - inf_cont + inf_eff + inf_or


def ipw_rc(y, post, D, X, w):
    """Normalised IPW DiD for repeated cross-sections."""
    n = len(y)
    ps, Hps, _, _ = _ps_weights(D, X, w)
    keep = np.where(D == 1, 1.0, (ps < PS_TRIM).astype(float))
    pre = 1 - post
    w_t0 = keep * w * D * pre
    w_t1 = keep * w * D * post
    w_c0 = keep * w * ps * (1 - D) * pre / (1 - ps)
    w_c1 = keep * w * ps * (1 - D) * post / (1 - ps)
    out = []
    for wt in (w_t1, w_t0, w_c1, w_c0):
        m = wt.mean()
        est = np.mean(wt * y) / m
        out.append((est, wt * (y - est) / m, m))
    (a_t1, i_t1, _), (a_t0, i_t0, _), (a_c1, i_c1, m_c1), (a_c0, i_c0, m_c0) = out
    M2_1 = X.T @ (w_c1 * (y - a_c1)) / n / m_c1
    M2_0 = X.T @ (w_c0 * (y - a_c0)) / n / m_c0
    inf_c = i_c1 - i_c0 + _rep_dot(w * (D - ps), X, Hps, M2_1 - M2_0)
    return (a_t1 - a_t0) - (a_c1 - a_c0), (i_t1 - i_t0) - inf_c


def reg_rc(y, post, D, X, w):
    """Outcome-regression DiD for repeated cross-sections."""
    n = len(y)
    pre = 1 - post
    w0 = w * (1 - D) * pre
    w1 = w * (1 - D) * post
    b0, H0 = wls(y, X, w0, "outcome regression (pre)")
    b1, H1 = wls(y, X, w1, "outcome regression (post)")
    o0, o1 = X @ b0, X @ b1
    w_t0, w_t1, w_d = w * D * pre, w * D * post, w * D
    m_t0, m_t1, m_d = w_t0.mean(), w_t1.mean(), w_d.mean()
    e_t0 = np.mean(w_t0 * y) / m_t0
    e_t1 = np.mean(w_t1 * y) / m_t1
    e_c = np.mean(w_d * (o1 - o0)) / m_d
    inf_t = w_t1 * (y - e_t1) / m_t1 - w_t0 * (y - e_t0) / m_t0
    M1 = X.T @ w_d / n
    inf_c = (w_d * (o1 - o0 - e_c) + _rep_dot(w1 * (y - o1), X, H1, M1)
             - _rep_dot(w0 * (y - o0), X, H0, M1)) / m_d
    return (e_t1 - e_t0) - e_c, inf_t - inf_c


PANEL = {"dr": dr_panel, "ipw": ipw_panel, "reg": reg_panel}
RCS = {"dr": dr_rc, "ipw": ipw_rc, "reg": reg_rc}
