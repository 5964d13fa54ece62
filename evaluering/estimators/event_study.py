"""Dynamic TWFE event study with relative-time dummies.

Model: ``y_it = α_i + λ_t + Σ_{e ≠ ref} β_e · 1[t - G_i = e] (+ X'γ) + ε_it`` where ``G_i`` is the
unit's cohort (first treated period; never-treated units have no dummies). Time must be an
integer period index (years, ISO week index ...). ``window=(lo, hi)`` limits the estimated
relative times; with ``bin_endpoints=True`` (default) relative times below ``lo`` are pooled
into ``lo`` and above ``hi`` into ``hi``; with ``bin_endpoints=False`` treated observations
outside the window are dropped (trimmed). ``ref`` is the omitted relative period (default -1);
a sequence of several is allowed (needed when there are no never-treated units, because then
a linear trend in relative time is not identified next to unit and time effects).

Inference: cluster-robust CR1 (default clusters = units; ``cluster=False`` for HC1) with
``t(G-1)`` pointwise intervals. The pre-trend test is the joint Wald test that all estimated
lead coefficients (``e < 0``, excluding the references) are zero, reported as ``F = W/q`` with
an ``F(q, G-1)`` reference distribution (``F(q, N-K)`` without clustering). The uniform
(sup-t) band uses the ``1-alpha`` quantile of ``max_e |Z_e|/sd_e`` over all estimated
coefficients for ``Z`` multivariate t with scale ``V̂`` and the same degrees of freedom as the
pointwise intervals (``G-1``), simulated with ``draws`` draws (seeded); with one coefficient it
reduces to the pointwise t interval.

Headline ``estimate``: the simple average of the post-period coefficients (``e >= 0``) with its
delta-method standard error from the full covariance matrix.

Repeated cross-sections: pass the group as ``unit`` (group fixed effects), as in ``twfe``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from evaluering.errors import EstimationError
from evaluering.estimators._ols import sup_t_critical, t_inference, wald_test
from evaluering.estimators._panel import as_frame, normalise_cohort, require_columns
from evaluering.estimators.did import _cluster_arg, twfe_design
from evaluering.results import EstimateResult

__all__ = ["event_study", "staggered_frame"]


def staggered_frame(data, y: str, unit: str, time: str, cohort: str,
                    extra: Sequence[str | None] = ()) -> pd.DataFrame:
    """Checked copy of the data with ``_cohort`` (inf = never treated), ``_t`` and ``_rel``.

    Raises EstimationError for missing values in key columns, non-integer time, a cohort
    that varies within a unit, or no treated units.
    """
    df = as_frame(data)
    require_columns(df, [y, unit, time, *extra])
    require_columns(df, [cohort], no_missing=False)
    t = pd.to_numeric(df[time], errors="coerce")
    if t.isna().any() or not np.all(np.mod(t.to_numpy(float), 1) == 0):
        raise EstimationError(f"time column '{time}' must be an integer period index")
    out = df.copy()
    out["_t"] = t.to_numpy(dtype=float)
    out["_cohort"] = normalise_cohort(df[cohort], out["_t"]).to_numpy(dtype=float)
    per_unit = out.groupby(unit, sort=False)["_cohort"].nunique(dropna=False)
    if (per_unit > 1).any():
        bad = per_unit[per_unit > 1].index[0]
        raise EstimationError(f"cohort '{cohort}' varies within unit {bad!r}; it must be the "
                              "unit's first treated period")
    treated = np.isfinite(out["_cohort"].to_numpy())
    if not treated.any():
        raise EstimationError("no treated units (every cohort is never-treated)")
    out["_rel"] = np.where(treated, out["_t"] - out["_cohort"], np.nan)
    return out


def _dummy_name(e: int) -> str:
    return f"e{e:+d}"


def event_study(data, y: str, unit: str, time: str, cohort: str, *, ref: int | Sequence[int] = -1,
                window: tuple[int, int] | None = None, bin_endpoints: bool = True,
                covariates: Sequence[str] | None = None, weights: str | None = None,
                weight_type: str = "analytic", cluster: str | None | bool = None,
                alpha: float = 0.05, draws: int = 10_000, seed: int | None = 0) -> EstimateResult:
    """Dynamic TWFE event study (see module docstring).

    Components: ``event`` (e, att, se, t, p, ci_low, ci_high, ucb_low, ucb_high, n_obs,
    reference) and ``coefficients`` (all slopes incl. covariates). ``info`` holds the
    pre-trend test (``pretrend_F``, ``pretrend_q``, ``pretrend_df``, ``pretrend_p``) and the
    sup-t critical value.
    """
    covs = list(covariates or [])
    df = staggered_frame(data, y, unit, time, cohort, extra=[*covs, weights,
                                                              cluster if isinstance(cluster, str) else None])
    refs = sorted({int(ref)} if np.isscalar(ref) else {int(r) for r in ref})
    rel = df["_rel"].to_numpy()
    treated = np.isfinite(rel)
    rmin, rmax = int(np.nanmin(rel)), int(np.nanmax(rel))
    if rmin >= 0:
        raise EstimationError("too few pre-periods: treated units have no pre-treatment observation")
    lo, hi = (rmin, rmax) if window is None else (int(window[0]), int(window[1]))
    if lo > hi:
        raise EstimationError(f"window {window} is empty")
    if any(r < lo or r > hi for r in refs):
        raise EstimationError(f"reference period(s) {refs} must lie inside the window [{lo}, {hi}]")
    if bin_endpoints:
        relb = np.where(treated, np.clip(rel, lo, hi), np.nan)
    else:
        keep = ~treated | ((rel >= lo) & (rel <= hi))
        df = df.loc[keep].reset_index(drop=True)
        relb = df["_rel"].to_numpy()
        treated = np.isfinite(relb)
    present = sorted({int(v) for v in relb[treated]})
    est_e = [e for e in present if e not in refs]
    if not [e for e in est_e if e >= 0]:
        raise EstimationError("no post-treatment relative periods to estimate")
    if not [e for e in present if e < 0]:
        raise EstimationError("too few pre-periods: treated units have no pre-treatment observation")
    names = [_dummy_name(e) for e in est_e]
    dummies = pd.DataFrame({n: (relb == e).astype(float) for n, e in zip(names, est_e)},
                           index=df.index)
    clash = set(names) & set(df.columns)
    if clash:
        raise EstimationError(f"data already has column(s) {sorted(clash)}")
    dfx = pd.concat([df, dummies], axis=1)
    cl = _cluster_arg(cluster, unit)
    try:
        design = twfe_design(dfx, y, unit, time, names, covs, weights, cl, weight_type=weight_type)
        fit = design.fit()
    except EstimationError as exc:
        never = not np.isfinite(df["_cohort"]).all()
        hint = "" if never else (" There are no never-treated units: exclude a second relative "
                                 "period (e.g. ref=(-1, lowest lead)) or bin the end points.")
        raise EstimationError(f"event-study design not identified: {exc}.{hint}") from exc
    k = len(names)
    beta, V = fit.beta[:k], fit.vcov[:k, :k]
    se = np.sqrt(np.clip(np.diag(V), 0, None))
    tt, pp, lo_ci, hi_ci = t_inference(beta, se, fit.df, alpha)
    crit = sup_t_critical(V, alpha, draws=draws, seed=seed, df=fit.df)
    counts = pd.Series(relb[treated]).value_counts()
    ev = pd.DataFrame({"e": est_e, "att": beta, "se": se, "t": tt, "p": pp, "ci_low": lo_ci,
                       "ci_high": hi_ci, "ucb_low": beta - crit * se, "ucb_high": beta + crit * se,
                       "n_obs": [int(counts.get(e, 0)) for e in est_e], "reference": False})
    ref_rows = pd.DataFrame({"e": [r for r in refs if r in present], "att": 0.0, "se": np.nan,
                             "t": np.nan, "p": np.nan, "ci_low": 0.0, "ci_high": 0.0,
                             "ucb_low": 0.0, "ucb_high": 0.0, "reference": True})
    ref_rows["n_obs"] = [int(counts.get(r, 0)) for r in ref_rows["e"]]
    event = pd.concat([ev, ref_rows], ignore_index=True).sort_values("e").reset_index(drop=True)
    # pre-trend test on the leads
    lead_idx = [i for i, e in enumerate(est_e) if e < 0]
    pre = wald_test(beta[lead_idx], V[np.ix_(lead_idx, lead_idx)], fit.df) if lead_idx else \
        {"F": np.nan, "q": 0, "df": fit.df, "p": np.nan}
    post_idx = [i for i, e in enumerate(est_e) if e >= 0]
    a = np.zeros(len(fit.beta))
    a[post_idx] = 1.0 / len(post_idx)
    est, est_se = fit.linear(a)
    _, p_est, lo_e, hi_e = t_inference(est, est_se, fit.df, alpha)
    return EstimateResult(
        method="event", estimate=est, se=est_se, ci=(float(lo_e), float(hi_e)), p=float(p_est),
        n_obs=design.n_obs, n_units=design.n_units, inference="analytic", alpha=alpha,
        components={"event": event, "coefficients": fit.table(alpha)},
        info={"estimate_definition": "simple average of post-period coefficients (e >= 0)",
              "reference": refs, "window": [lo, hi], "bin_endpoints": bin_endpoints,
              "pretrend_F": pre["F"], "pretrend_q": pre["q"], "pretrend_df": pre["df"],
              "pretrend_p": pre["p"], "sup_t_critical": crit, "vcov": fit.vcov_type,
              "cluster": cl, "n_clusters": fit.n_clusters, "df": fit.df,
              "never_treated_units": int(df.loc[~np.isfinite(df["_cohort"]), unit].nunique())},
    )

