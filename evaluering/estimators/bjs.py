"""Borusyak, Jaravel & Spiess (2024) imputation estimator for staggered adoption.

Notation: ``Ω0`` untreated observations (never-treated units, and treated units before their
cohort), ``Ω1`` treated observations (``t >= G_i``), ``ω_it`` the regression weights (1 if none).

1. Fit ``y_it = α_i + λ_t + X_it'γ + ε_it`` by (weighted) least squares on ``Ω0`` only. The fixed
   effects enter as sparse dummies and the normal equations are solved with a sparse LU
   factorisation (exact; one time level is the reference).
2. Impute ``Ŷ_it(0) = α̂_i + λ̂_t + X_it'γ̂`` and ``τ̂_it = y_it - Ŷ_it(0)`` for ``(i,t) ∈ Ω1``.
3. Aggregate: an estimand is ``τ_w = Σ_{Ω1} w_it τ_it`` with target weights ``w``; here the overall
   ATT (``w_it ∝ ω_it`` over all of ``Ω1``), each event horizon ``h`` (``w ∝ ω`` over ``Ω1`` with
   ``t - G_i = h``) and each cohort (over the cohort's treated observations).

Every estimate is linear in the outcomes, ``τ̂_w = Σ_it v_it y_it``, with ``v_it = w_it`` on ``Ω1``
and the imputation weights ``v_0 = -W_0 Z_0 (Z_0'W_0 Z_0)^{-1} Z_1' w`` on ``Ω0`` (``Z`` the
dummy/covariate design).

Variance (BJS Theorem 3, the conservative clustered estimator):
``σ̂²_w = Σ_c ( Σ_{it ∈ c} v_it ε̃_it )²`` over clusters ``c`` (default: units), where ``ε̃_it`` is
the step-1 residual on ``Ω0`` and ``ε̃_it = τ̂_it - τ̄_it`` on ``Ω1``. ``τ̄_it`` is the
``v²``-weighted average of ``τ̂`` within the observation's cohort × horizon cell, computed
*leaving out the observation's own cluster* (the leave-out variant BJS recommend to avoid the
downward bias of own-observation averaging in small cells):
``τ̄_it = Σ_{j ∈ cell, cl(j) ≠ cl(i)} v_j² τ̂_j / Σ_{j ∈ cell, cl(j) ≠ cl(i)} v_j²``.
If a cell has no other cluster, the leave-out average is taken over the same horizon across
cohorts, then over all treated observations. Because heterogeneity of ``τ_it`` within cells
is not removed, the variance is conservative (upward biased) under heterogeneous effects.
Intervals and p-values use the normal distribution, as in the paper.

Pre-trend test (BJS Section 4.4, "Test 1"): on ``Ω0`` only, regress ``y`` on the unit and time
effects (and covariates) plus lead dummies ``1[t - G_i = -k]`` for ``k = 1..K`` (``K =
pretrend_periods``), with cluster-robust CR1 covariance; joint Wald test that the leads are
zero, reported as ``F = W/K`` with ``F(K, G-1)`` reference. It is separate from estimation,
so it does not contaminate the ATT estimates.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from scipy.sparse.linalg import splu

from evaluering.errors import EstimationError
from evaluering.estimators import _fe
from evaluering.estimators._ols import wald_test
from evaluering.estimators.did import _cluster_arg, _numeric, _weights, twfe_design
from evaluering.estimators.event_study import staggered_frame
from evaluering.results import EstimateResult

__all__ = ["bjs_imputation"]


def _design(u_codes, t_codes, n_u, n_t, X):
    """Sparse [unit dummies | time dummies without level 0 | covariates]."""
    n = len(u_codes)
    rows = np.arange(n)
    U = sp.csr_matrix((np.ones(n), (rows, u_codes)), shape=(n, n_u))
    keep = t_codes > 0
    T = sp.csr_matrix((np.ones(keep.sum()), (rows[keep], t_codes[keep] - 1)), shape=(n, n_t - 1))
    parts = [U, T]
    if X is not None and X.shape[1]:
        parts.append(sp.csr_matrix(X))
    return sp.hstack(parts, format="csr")


def _leave_out_mean(tau, v2, cell, clus):
    """v²-weighted mean of tau within cells excluding the own cluster (NaN if none left)."""
    cell = np.asarray(cell)
    _, cinv = np.unique(cell, return_inverse=True)
    _, pinv = np.unique(np.stack([cinv, clus], axis=1), axis=0, return_inverse=True)
    pinv = pinv.ravel()
    a, b = v2 * tau, v2
    tot_a, tot_b = np.bincount(cinv, a)[cinv], np.bincount(cinv, b)[cinv]
    own_a, own_b = np.bincount(pinv, a)[pinv], np.bincount(pinv, b)[pinv]
    num, den = tot_a - own_a, tot_b - own_b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-14 * np.maximum(tot_b, 1e-300), num / den, np.nan)


def bjs_imputation(data, y: str, unit: str, time: str, cohort: str, *,
                   covariates: Sequence[str] | None = None, weights: str | None = None,
                   cluster: str | None | bool = None, horizons: Sequence[int] | None = None,
                   pretrend_periods: int = 3, alpha: float = 0.05) -> EstimateResult:
    """BJS imputation estimator (see module docstring).

    ``horizons``: event horizons to report (default: every observed ``h >= 0``).
    ``pretrend_periods``: number of leads in the pre-trend test (0 = no test).
    Components: ``event`` (e, att, se, p, ci_low, ci_high, n_obs), ``group`` (per cohort),
    ``pretrend`` (lead coefficients of the test regression). Headline: the ATT averaged over
    all treated observations.
    """
    covs = list(covariates or [])
    cl_col = _cluster_arg(cluster, unit)
    if cl_col is None:
        cl_col = unit  # BJS inference is clustered; independent observations = units
    df = staggered_frame(data, y, unit, time, cohort, extra=[*covs, weights, cl_col])
    g = df["_cohort"].to_numpy()
    t = df["_t"].to_numpy()
    treated = np.isfinite(g) & (t >= g)
    if not treated.any():
        raise EstimationError("no treated observations")
    u_all = df[unit].to_numpy()
    # every treated unit needs untreated observations to impute its unit effect
    has_pre = pd.Series(~treated).groupby(u_all).any()
    no_pre = has_pre[~has_pre].index.tolist()
    if no_pre:
        raise EstimationError(f"too few pre-periods: {len(no_pre)} unit(s) (e.g. {no_pre[0]!r}) are "
                              "treated in every observed period; drop always-treated units")
    per_t = pd.Series(~treated).groupby(t).any()
    if not per_t.all():
        bad = [int(x) if float(x).is_integer() else x for x in per_t[~per_t].index]
        raise EstimationError(f"no untreated observations in period(s) {bad}: their time effects "
                              "cannot be imputed (no never-treated or not-yet-treated units)")
    yv = _numeric(df, y)
    w = _weights(df, weights)
    om = np.ones(len(df)) if w is None else w
    X = np.column_stack([_numeric(df, c) for c in covs]) if covs else None
    u_codes, n_u = _fe.factorize(u_all)
    t_codes, n_t = _fe.factorize(t)
    c_codes, n_cl = _fe.factorize(df[cl_col].to_numpy())
    Z = _design(u_codes, t_codes, n_u, n_t, X)
    Z0, Z1 = Z[~treated], Z[treated]
    om0 = om[~treated]
    A = (Z0.T @ sp.diags(om0) @ Z0).tocsc()
    try:
        lu = splu(A)
        beta = lu.solve(np.asarray(Z0.T @ (om0 * yv[~treated])).ravel())
    except RuntimeError as exc:
        raise EstimationError("the untreated observations do not identify the unit and time "
                              "effects (disconnected panel or collinear covariates)") from exc
    if not np.all(np.isfinite(beta)):
        raise EstimationError("the untreated-observation regression is singular")
    resid0 = yv[~treated] - Z0 @ beta
    tau = yv[treated] - Z1 @ beta
    # estimands: overall, horizons, cohorts
    g1, t1, om1, cl1 = g[treated], t[treated], om[treated], c_codes[treated]
    h1 = (t1 - g1).astype(int)
    hs = sorted(set(h1.tolist())) if horizons is None else [int(h) for h in horizons]
    missing_h = [h for h in hs if not (h1 == h).any()]
    if missing_h:
        raise EstimationError(f"no treated observations at horizon(s) {missing_h}")
    cohorts = sorted(set(g1.tolist()))
    targets = [("overall", None, np.ones(len(h1), bool))]
    targets += [("event", h, h1 == h) for h in hs]
    targets += [("group", c, g1 == c) for c in cohorts]
    W1 = np.zeros((len(h1), len(targets)))
    for j, (_, _, m) in enumerate(targets):
        W1[m, j] = om1[m] / om1[m].sum()
    B = lu.solve(np.asarray((Z1.T @ W1)))
    V0 = -(om0[:, None] * np.asarray(Z0 @ B))
    est = W1.T @ tau
    cell = pd.factorize(pd.MultiIndex.from_arrays([g1, h1]))[0]
    ses = []
    for j in range(len(targets)):
        v1 = W1[:, j]
        v2 = v1**2
        tbar = _leave_out_mean(tau, v2, cell, cl1)
        for fallback in (h1, np.zeros(len(h1), int)):
            if np.isnan(tbar).any():
                fb = _leave_out_mean(tau, v2, fallback, cl1)
                tbar = np.where(np.isnan(tbar), fb, tbar)
        tbar = np.where(np.isnan(tbar), tau, tbar)  # a single treated cluster: no correction
        eps1 = tau - tbar
        score = (np.bincount(c_codes[~treated], V0[:, j] * resid0, minlength=n_cl)
                 + np.bincount(cl1, v1 * eps1, minlength=n_cl))
        ses.append(float(np.sqrt(np.sum(score**2))))
    ses = np.array(ses)
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        pvals = 2 * stats.norm.sf(np.abs(est / ses))

    def table(kind, key):
        rows = [(j, k) for j, (kk, k, _) in enumerate(targets) if kk == kind]
        return pd.DataFrame({key: [k for _, k in rows],
                             "att": [est[j] for j, _ in rows], "se": [ses[j] for j, _ in rows],
                             "p": [pvals[j] for j, _ in rows],
                             "ci_low": [est[j] - z * ses[j] for j, _ in rows],
                             "ci_high": [est[j] + z * ses[j] for j, _ in rows],
                             "n_obs": [int(targets[j][2].sum()) for j, _ in rows]})

    event = table("event", "e")
    group = table("group", "group")
    comps = {"event": event, "group": group}
    info = {"estimate_definition": "average of imputed effects over all treated observations",
            "variance": "BJS Theorem 3 conservative clustered variance; treated residuals "
                        "demeaned by leave-own-cluster-out v^2-weighted cohort x horizon means",
            "cluster": cl_col, "n_clusters": n_cl, "n_treated_obs": int(treated.sum()),
            "n_untreated_obs": int((~treated).sum())}
    # pre-trend test on untreated observations
    K = int(pretrend_periods or 0)
    if K > 0:
        d0 = df.loc[~treated].reset_index(drop=True)
        rel0 = (d0["_t"] - d0["_cohort"]).to_numpy()
        avail = sorted({int(-r) for r in rel0[np.isfinite(rel0)]})
        ks = [k for k in range(1, K + 1) if k in avail]
        names = [f"lead{k}" for k in ks]
        for k, nm in zip(ks, names):
            d0[nm] = (rel0 == -k).astype(float)
        try:
            des = twfe_design(d0, y, unit, time, names, covs, weights, cl_col)
            fit = des.fit()
            kk = len(names)
            wt = wald_test(fit.beta[:kk], fit.vcov[:kk, :kk], fit.df)
            comps["pretrend"] = fit.table(alpha).iloc[:kk].assign(lead=ks)
            info.update({"pretrend_F": wt["F"], "pretrend_q": wt["q"], "pretrend_df": wt["df"],
                         "pretrend_p": wt["p"]})
        except EstimationError as exc:
            info.update({"pretrend_F": np.nan, "pretrend_p": np.nan,
                         "pretrend_note": f"pre-trend test not identified: {exc}"})
    return EstimateResult(
        method="bjs", estimate=float(est[0]), se=float(ses[0]),
        ci=(float(est[0] - z * ses[0]), float(est[0] + z * ses[0])), p=float(pvals[0]),
        n_obs=len(df), n_units=n_u, inference="analytic", alpha=alpha, components=comps, info=info)
