"""Sun & Abraham (2021) interaction-weighted (IW) event-study estimator.

Step 1 — one saturated TWFE regression with cohort × relative-time interactions:
``y_it = α_i + λ_t + Σ_c Σ_{e ≠ -1} δ_{c,e} · 1[G_i = c, t - c = e] (+ X'γ) + ε_it``, estimated on
treated cohorts and the control cohort(s) (``control="never"``: never-treated units;
``control="last"``: the last-treated cohort, with all periods from its treatment date on
dropped; never-treated units, if any, stay as further controls). Each ``δ_{c,e}`` is the
cohort-specific CATT relative to period ``e = -1``.

Step 2 — aggregation with cell shares. The event-time effect is
``β_e = Σ_c s_{c,e} δ_{c,e}`` with ``s_{c,e} = n_{c,e} / Σ_{c'} n_{c',e}``, where ``n_{c,e}`` is the
number of observations (or the sum of the regression weights) in the cell in the estimation
sample (the sample cohort share is taken as the population share, as in ``fixest``). The
overall ATT is the cell-weighted average over all post-treatment cells (``e >= 0``),
``ATT = Σ_{c, e>=0} n_{c,e} δ_{c,e} / Σ_{c, e>=0} n_{c,e}`` (``fixest``'s ``summary(agg="att")``);
the per-cohort effect averages a cohort's post cells with the same weights. Standard errors
are delta-method ``a'V̂a`` from the full cluster-robust (CR1, ``t(G-1)``) covariance of the
``δ``'s, treating the shares as fixed (as ``fixest`` does).

Cohorts treated in or before the first observed period (always treated) are dropped.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from evaluering.errors import EstimationError
from evaluering.estimators._ols import t_inference
from evaluering.estimators.did import _cluster_arg, twfe_design
from evaluering.estimators.event_study import staggered_frame
from evaluering.results import EstimateResult

__all__ = ["sun_abraham"]


def _agg_rows(keys, a_rows, fit, k, alpha, extra):
    rows = []
    for key, a in zip(keys, a_rows):
        full = np.zeros(len(fit.beta))
        full[:k] = a
        est, se = fit.linear(full)
        _, p, lo, hi = t_inference(est, se, fit.df, alpha)
        rows.append({**key, "att": est, "se": se, "p": float(p), "ci_low": float(lo),
                     "ci_high": float(hi), **extra(key)})
    return rows


def sun_abraham(data, y: str, unit: str, time: str, cohort: str, *, control: str = "never",
                covariates: Sequence[str] | None = None, weights: str | None = None,
                weight_type: str = "analytic", cluster: str | None | bool = None,
                alpha: float = 0.05) -> EstimateResult:
    """Sun–Abraham IW estimator (see module docstring).

    Components: ``event`` (e, att, se, p, ci_low, ci_high, n_obs), ``att_gt`` (group, time,
    e, att, se, n_obs: the cohort × relative-time CATTs), ``group`` (group, att, se ...) and
    ``coefficients``. Headline: the cell-share-weighted ATT over post-treatment cells.
    """
    if control not in ("never", "last"):
        raise EstimationError("control must be 'never' or 'last'")
    covs = list(covariates or [])
    df = staggered_frame(data, y, unit, time, cohort,
                         extra=[*covs, weights, cluster if isinstance(cluster, str) else None])
    tmin = df["_t"].min()
    always = np.isfinite(df["_cohort"]) & (df["_cohort"] <= tmin)
    info_notes = []
    if always.any():
        info_notes.append(f"dropped {df.loc[always, unit].nunique()} always-treated unit(s)")
        df = df.loc[~always].reset_index(drop=True)
    g = df["_cohort"].to_numpy()
    if control == "never":
        if np.isfinite(g).all():
            raise EstimationError("no never-treated units: use control='last' (the last-treated "
                                  "cohort as control)")
        ctrl_cohort = None
    else:
        ctrl_cohort = float(np.max(g[np.isfinite(g)]))
        df = df.loc[df["_t"] < ctrl_cohort].reset_index(drop=True)
        df.loc[df["_cohort"] == ctrl_cohort, "_cohort"] = np.inf
        df["_rel"] = np.where(np.isfinite(df["_cohort"]), df["_t"] - df["_cohort"], np.nan)
        g = df["_cohort"].to_numpy()
        if not np.isfinite(g).any():
            raise EstimationError("control='last' leaves no treated cohort")
    rel = df["_rel"].to_numpy()
    treated = np.isfinite(g)
    units_per_cohort = df.loc[treated].groupby("_cohort")[unit].nunique()
    single = [int(c) if float(c).is_integer() else c for c, n in units_per_cohort.items() if n == 1]
    if single:
        info_notes.append(f"cohort(s) {single} have a single unit: their cluster-robust "
                          "variance rests on one cluster")
    cells = (pd.DataFrame({"c": g[treated], "e": rel[treated]})
             .drop_duplicates().sort_values(["c", "e"]))
    cells = cells[cells["e"] != -1]
    if not (cells["e"] >= 0).any():
        raise EstimationError("no post-treatment observations for any treated cohort")
    per_c_pre = pd.DataFrame({"c": g[treated], "e": rel[treated]}).groupby("c")["e"].min()
    if (per_c_pre >= 0).any():
        bad = per_c_pre[per_c_pre >= 0].index.tolist()
        raise EstimationError(f"too few pre-periods: cohort(s) {bad} have no pre-treatment period")
    names, cell_keys = [], []
    cols = {}
    for c, e in cells.itertuples(index=False):
        nm = f"c{c:g}:e{int(e):+d}"
        names.append(nm)
        cell_keys.append((float(c), int(e)))
        cols[nm] = ((g == c) & (rel == e)).astype(float)
    dfx = pd.concat([df, pd.DataFrame(cols, index=df.index)], axis=1)
    cl = _cluster_arg(cluster, unit)
    design = twfe_design(dfx, y, unit, time, names, covs, weights, cl, weight_type=weight_type)
    fit = design.fit()
    k = len(names)
    w = np.ones(len(df)) if design.weights is None else design.weights
    n_cell = np.array([w[(g == c) & (rel == e)].sum() for c, e in cell_keys])
    cnt_cell = np.array([int(((g == c) & (rel == e)).sum()) for c, e in cell_keys])
    ce = np.array(cell_keys, dtype=float)
    # cohort × relative-time CATTs
    se_all = fit.se()[:k]
    _, p_all, lo_all, hi_all = t_inference(fit.beta[:k], se_all, fit.df, alpha)
    att_gt = pd.DataFrame({"group": ce[:, 0], "time": ce[:, 0] + ce[:, 1], "e": ce[:, 1].astype(int),
                           "att": fit.beta[:k], "se": se_all, "p": p_all, "ci_low": lo_all,
                           "ci_high": hi_all, "n_obs": cnt_cell})
    # event-time IW aggregation
    es = sorted({e for _, e in cell_keys})
    a_rows = []
    for e in es:
        m = ce[:, 1] == e
        a = np.where(m, n_cell, 0.0)
        a_rows.append(a / a.sum())
    ev = pd.DataFrame(_agg_rows([{"e": e} for e in es], a_rows, fit, k, alpha,
                                lambda key: {"n_obs": int(cnt_cell[ce[:, 1] == key["e"]].sum())}))
    # per-cohort post average
    cs = sorted({c for c, _ in cell_keys})
    a_rows, keys = [], []
    for c in cs:
        m = (ce[:, 0] == c) & (ce[:, 1] >= 0)
        if m.any():
            a = np.where(m, n_cell, 0.0)
            a_rows.append(a / a.sum())
            keys.append({"group": c})
    grp = pd.DataFrame(_agg_rows(keys, a_rows, fit, k, alpha, lambda key: {}))
    post = ce[:, 1] >= 0
    a = np.where(post, n_cell, 0.0)
    a = a / a.sum()
    full = np.zeros(len(fit.beta))
    full[:k] = a
    est, se = fit.linear(full)
    _, p, lo, hi = t_inference(est, se, fit.df, alpha)
    return EstimateResult(
        method="sa", estimate=est, se=se, ci=(float(lo), float(hi)), p=float(p),
        n_obs=design.n_obs, n_units=design.n_units, inference="analytic", alpha=alpha,
        components={"event": ev, "att_gt": att_gt, "group": grp, "coefficients": fit.table(alpha)},
        info={"estimate_definition": "cell-share-weighted average of post-treatment cohort x "
                                     "relative-time effects (fixest agg='att')",
              "control": control, "control_cohort": ctrl_cohort, "reference_period": -1,
              "vcov": fit.vcov_type, "cluster": cl, "n_clusters": fit.n_clusters, "df": fit.df,
              "notes": "; ".join(info_notes)},
    )
