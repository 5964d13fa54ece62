"""Canonical 2×2 difference-in-differences and the two-way fixed-effects (TWFE) regression.

``did2x2`` is the regression form ``y ~ 1 + group + post + group:post [+ X]``.

``twfe`` is ``y ~ treatment [+ X] | unit + time``: the unit and time fixed effects are swept
out by weighted alternating projections (``_fe.demean``), never as dummies, and by the
Frisch–Waugh–Lovell theorem the slope on the demeaned data is the TWFE coefficient.

Standard errors (see ``_ols``): cluster-robust CR1 with ``G/(G-1)·(N-1)/(N-K)``, where ``K``
counts the slopes and the fixed-effect parameters *not nested* in the cluster variable (as
``fixest`` does by default, so clustering by unit does not count the unit effects), and a
``t(G-1)`` reference distribution for p-values and confidence intervals. By default ``twfe``
clusters by ``unit``; pass ``cluster=False`` for heteroskedasticity-robust HC1 (reference
``t(N-K)``), or a column name to cluster on something else.

Unbalanced panels and repeated cross-sections: nothing here assumes one row per unit and
period. For repeated cross-sections pass the *group* (e.g. the kommune) as ``unit``: the
model then has group instead of unit fixed effects, ``treatment`` is the group's treatment
status in that period, and the default clustering is by group.

Weights: ``weight_type="analytic"`` (default) treats weights as precision/importance weights
(``N`` = number of rows); ``"frequency"`` treats a row as ``w`` identical observations
(``N = Σw`` in the degrees of freedom and HC1 meat). Point estimates are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from evaluering.errors import EstimationError
from evaluering.estimators import _fe
from evaluering.estimators._ols import OlsFit, fe_dof, nested_in, ols_fit
from evaluering.estimators._panel import as_frame, require_columns
from evaluering.results import EstimateResult

__all__ = ["TwfeDesign", "twfe_design", "twfe", "did2x2"]


def _as_list(x: str | Sequence[str] | None) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)


def _weights(df: pd.DataFrame, weights: str | None) -> np.ndarray | None:
    if weights is None:
        return None
    w = pd.to_numeric(df[weights], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(w)):
        raise EstimationError(f"weight column '{weights}' has missing or non-numeric values")
    if (w <= 0).any():
        raise EstimationError(f"weight column '{weights}' must be strictly positive")
    return w


def _numeric(df: pd.DataFrame, col: str) -> np.ndarray:
    s = df[col]
    if s.dtype == bool:
        return s.to_numpy(dtype=float)
    v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(v)):
        raise EstimationError(f"column '{col}' must be numeric without missing values")
    return v


def _codes(values) -> tuple[np.ndarray, int]:
    """Integer codes 0..G-1 in sorted order of the levels, and G.

    O(n) without sorting for integer columns with a compact range (ids, periods); otherwise
    ``_fe.factorize``.
    """
    v = np.asarray(values)
    if v.dtype.kind in "iu" and len(v):
        lo, hi = int(v.min()), int(v.max())
        if hi - lo < max(4 * len(v), 1024):
            present = np.zeros(hi - lo + 1, dtype=bool)
            present[v - lo] = True
            remap = np.cumsum(present, dtype=np.int64) - 1
            return remap[v - lo], int(remap[-1]) + 1
    return _fe.factorize(v)


@dataclass(frozen=True)
class TwfeDesign:
    """The Frisch–Waugh–Lovell form of a regression with unit and time fixed effects.

    ``X`` and ``y`` have the fixed effects projected out (weighted projection when
    ``weights`` is given), so ``WLS(y ~ X, weights)`` gives the TWFE slopes and residuals.
    The wild cluster bootstrap reuses this object directly.

    Attributes: X (n, k) demeaned regressors in the order of ``names``; y (n,) demeaned
    outcome; weights (n,) or None; weight_type; cluster (n,) int codes or None; n_clusters;
    unit_codes, time_codes (n,) int codes of the fixed effects; n_units, n_times; k_fe
    (degrees of freedom absorbed by the fixed effects); k_fe_counted (those of them counted
    in the small-sample ``K``: fixed effects nested in the cluster variable are excluded);
    n_obs; row_index (position of each design row in the input data).
    """

    X: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]
    weights: np.ndarray | None
    weight_type: str
    cluster: np.ndarray | None
    n_clusters: int | None
    unit_codes: np.ndarray
    time_codes: np.ndarray
    n_units: int
    n_times: int
    k_fe: int
    k_fe_counted: int
    n_obs: int

    @property
    def k(self) -> int:
        """Slopes plus counted fixed-effect parameters (the ``K`` of the CR1 factor)."""
        return self.X.shape[1] + self.k_fe_counted

    def fit(self, vcov: str | None = None) -> OlsFit:
        """WLS on the demeaned data; ``vcov`` defaults to ``cluster`` when clusters are set, else ``hc1``."""
        if vcov is None:
            vcov = "cluster" if self.cluster is not None else "hc1"
        k_extra = self.k_fe_counted if vcov == "cluster" else self.k_fe
        return ols_fit(self.X, self.y, names=self.names, w=self.weights, weight_type=self.weight_type,
                       vcov=vcov, cluster=self.cluster, k_extra=k_extra)


def twfe_design(data, y: str, unit: str, time: str, regressors: str | Sequence[str],
                covariates: Sequence[str] | None = None, weights: str | None = None,
                cluster: str | None = None, *, weight_type: str = "analytic",
                fixed_effects: Sequence[str] | None = None) -> TwfeDesign:
    """Build the demeaned design for ``y ~ regressors + covariates | unit + time``.

    ``fixed_effects`` overrides the absorbed factors (default ``[unit, time]``; an empty list
    gives a regression on the raw columns with no intercept). ``cluster`` is a column name or
    None (no cluster codes). Raises EstimationError on missing values or absent columns.
    """
    df = as_frame(data)
    regs = _as_list(regressors)
    covs = _as_list(covariates)
    fe_cols = [unit, time] if fixed_effects is None else list(fixed_effects)
    require_columns(df, [y, unit, time, *regs, *covs, weights, cluster, *fe_cols])
    if weight_type not in ("analytic", "frequency"):
        raise EstimationError("weight_type must be 'analytic' or 'frequency'")
    if len(df) == 0:
        raise EstimationError("no observations")
    names = regs + covs
    if len(set(names)) != len(names):
        raise EstimationError("a column is given twice among the regressors/covariates")
    w = _weights(df, weights)
    M = np.empty((len(df), 1 + len(names)))
    M[:, 0] = _numeric(df, y)
    for j, c in enumerate(names):
        M[:, 1 + j] = _numeric(df, c)
    codes = {c: _codes(df[c].to_numpy()) for c in dict.fromkeys([unit, time, *fe_cols])}
    fes = [codes[c][0] for c in fe_cols]
    norms = np.sqrt(np.sum(M**2, axis=0))
    Md = _fe.demean(M, fes, weights=w) if fes else M
    # regressors with no variation left after the fixed effects
    for j, c in enumerate(names):
        if norms[1 + j] == 0 or np.sqrt(np.sum(Md[:, 1 + j] ** 2)) <= 1e-9 * norms[1 + j]:
            raise EstimationError(f"'{c}' is collinear with the fixed effects "
                                  f"({' + '.join(fe_cols)}): it does not vary within them")
    unit_codes, n_units = codes[unit]
    time_codes, n_times = codes[time]
    k_fe = fe_dof(fes)
    if cluster is not None:
        ccodes, G = codes[cluster] if cluster in codes else _codes(df[cluster].to_numpy())
        # Fixed effects nested in the clusters are not counted in K (fixest's default
        # ``fixef.K = "nested"``); the one parameter of a nested factor that plays the role
        # of the intercept stays counted: K(unit + time, cluster = unit) = slopes + n_times.
        nested_levels = sum(int(g.max()) for g in fes if nested_in(g, ccodes))
        k_fe_counted = max(k_fe - nested_levels, 0)
    else:
        ccodes, G = None, None
        k_fe_counted = k_fe
    return TwfeDesign(X=np.ascontiguousarray(Md[:, 1:]), y=np.ascontiguousarray(Md[:, 0]),
                      names=tuple(names), weights=w, weight_type=weight_type, cluster=ccodes,
                      n_clusters=G, unit_codes=unit_codes, time_codes=time_codes, n_units=n_units,
                      n_times=n_times, k_fe=int(k_fe), k_fe_counted=int(k_fe_counted),
                      n_obs=len(df))


def _cluster_arg(cluster, default: str | None) -> str | None:
    if cluster is False:
        return None
    if cluster is None:
        return default
    return cluster


def twfe(data, y: str, unit: str, time: str, treatment: str, *,
         covariates: Sequence[str] | None = None, weights: str | None = None,
         weight_type: str = "analytic", cluster: str | None | bool = None,
         alpha: float = 0.05) -> EstimateResult:
    """Two-way fixed-effects DiD: coefficient on ``treatment`` in ``y ~ treatment + X | unit + time``.

    ``cluster``: column to cluster on (default: ``unit``; ``False`` = HC1 robust). The p-value
    and interval use ``t(G-1)`` when clustered, ``t(N-K)`` otherwise.
    Components: ``coefficients`` (term, estimate, se, t, p, ci_low, ci_high).
    """
    cl = _cluster_arg(cluster, unit)
    design = twfe_design(data, y, unit, time, treatment, covariates, weights, cl,
                         weight_type=weight_type)
    fit = design.fit()
    tab = fit.table(alpha)
    row = tab.iloc[0]
    return EstimateResult(
        method="twfe", estimate=float(row["estimate"]), se=float(row["se"]),
        ci=(float(row["ci_low"]), float(row["ci_high"])), p=float(row["p"]),
        n_obs=design.n_obs, n_units=design.n_units, inference="analytic", alpha=alpha,
        components={"coefficients": tab},
        info={"vcov": fit.vcov_type, "cluster": cl, "n_clusters": fit.n_clusters,
              "df": fit.df, "k": fit.k, "weight_type": weight_type if weights else None,
              "treatment": treatment, "fixed_effects": f"{unit} + {time}"},
    )


def did2x2(data, y: str, group: str, post: str, *, covariates: Sequence[str] | None = None,
           weights: str | None = None, cluster: str | None = None, weight_type: str = "analytic",
           alpha: float = 0.05) -> EstimateResult:
    """Canonical 2×2 DiD as the regression ``y ~ 1 + group + post + group:post [+ X]``.

    ``group`` and ``post`` are 0/1 columns. The estimate is the interaction coefficient.
    Standard errors: CR1 clustered on ``cluster`` with ``t(G-1)``, else HC1 with ``t(N-K)``.
    Components: ``coefficients`` and ``cells`` (the four (weighted) cell means of ``y``).
    """
    df = as_frame(data)
    covs = _as_list(covariates)
    require_columns(df, [y, group, post, *covs, weights, cluster])
    g = _numeric(df, group)
    p = _numeric(df, post)
    for name, v in ((group, g), (post, p)):
        if not np.isin(v, (0.0, 1.0)).all():
            raise EstimationError(f"'{name}' must be a 0/1 indicator")
    cells = pd.crosstab(g, p)
    if cells.shape != (2, 2) or (cells.to_numpy() == 0).any():
        raise EstimationError("did2x2 needs observations in all four group × period cells")
    w = _weights(df, weights)
    yv = _numeric(df, y)
    names = ["(Intercept)", group, post, f"{group}:{post}", *covs]
    X = np.column_stack([np.ones(len(df)), g, p, g * p] + [_numeric(df, c) for c in covs])
    if cluster is not None:
        ccodes, _ = _fe.factorize(df[cluster].to_numpy())
        fit = ols_fit(X, yv, names=names, w=w, weight_type=weight_type, vcov="cluster",
                      cluster=ccodes)
        n_units = int(len(np.unique(ccodes)))
    else:
        fit = ols_fit(X, yv, names=names, w=w, weight_type=weight_type, vcov="hc1")
        n_units = len(df)
    tab = fit.table(alpha)
    row = tab.iloc[3]
    ww = np.ones(len(df)) if w is None else w
    cm = (pd.DataFrame({"group": g.astype(int), "post": p.astype(int), "wy": ww * yv, "w": ww})
          .groupby(["group", "post"], as_index=False).sum())
    cm["mean"] = cm["wy"] / cm["w"]
    cm["n"] = pd.crosstab(g, p).stack().to_numpy()
    return EstimateResult(
        method="did2x2", estimate=float(row["estimate"]), se=float(row["se"]),
        ci=(float(row["ci_low"]), float(row["ci_high"])), p=float(row["p"]),
        n_obs=len(df), n_units=n_units, inference="analytic", alpha=alpha,
        components={"coefficients": tab, "cells": cm[["group", "post", "n", "mean"]]},
        info={"vcov": fit.vcov_type, "cluster": cluster, "n_clusters": fit.n_clusters,
              "df": fit.df, "weight_type": weight_type if weights else None},
    )

