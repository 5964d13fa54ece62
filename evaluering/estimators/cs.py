"""Callaway & Sant'Anna (2021) difference-in-differences with staggered treatment timing.

Implemented from Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-Differences
with multiple time periods", J. Econometrics 225(2), and, for the 2x2 building blocks with
covariates, Sant'Anna & Zhao (2020) (see ``_cs_drdid``).

For every treated cohort g (first treated period) and period t the group-time average
treatment effect ATT(g,t) is a 2x2 DiD between cohort g and a comparison group (never
treated, or not yet treated by ``max(t, base) + anticipation``), between period t and a base
period (``varying``: g-1-anticipation for post periods and t-1 for pre periods;
``universal``: always g-1-anticipation). Periods are positions in the sorted list of observed
time values, so ``e = t - g`` and ``anticipation`` count periods.

Inference uses influence functions: each ATT(g,t) has one (rows x 1) and every aggregation
is a linear combination of them plus the influence of the estimated aggregation weights
(cohort shares), as in the paper's Appendix; analytic variances are ``Psi'Psi / n**2``
(clustered: sums within clusters). The multiplier bootstrap draws Mammen two-point weights
(one per unit, or per cluster), estimates standard errors by the normalised interquartile
range of the draws and the uniform-band critical value by the 1-alpha quantile of the
sup-t statistic, as in the paper's Algorithm 1.

Without covariates the estimator is computed from sufficient statistics (per-cohort sums of
the outcome; per-cohort second moments for the variance), so it runs in seconds on millions
of units; the influence functions are kept in a compact cell-wise linear form
(``_cs_influence``). With covariates each ATT(g,t) runs its own regressions on unit rows.

Data handling:

* cohort 0, missing, or after the last period = never treated (``_panel.normalise_cohort``);
  cohorts treated in (or before) the first period (+anticipation) have no pre-period: their
  units are dropped with a warning, as in R ``did``.
* panel data must identify units; units not observed in every period are dropped with a
  warning (balanced panel). To use every observation of an unbalanced panel, pass
  ``panel=False`` (repeated cross-sections) and ``cluster=<unit column>``.
* a cohort with a single unit is allowed but warned about (its sampling variance cannot be
  estimated, so standard errors involving it are too small).
* with covariates, the values in the base period of each 2x2 comparison are used (panel).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from evaluering.errors import EstimationError
from evaluering.estimators import _cs_drdid
from evaluering.estimators._cs_influence import Influence
from evaluering.estimators._panel import as_frame, normalise_cohort, require_columns
from evaluering.results import EstimateResult

__all__ = ["callaway_santanna", "cs_aggregate", "cs_influence", "CSInfluence"]

_NEVER_IDX = np.iinfo(np.int64).max // 4  # period index of the never-treated cohort
_AGGREGATIONS = {"simple": "simple", "group": "group", "dynamic": "dynamic", "event": "dynamic",
                 "calendar": "calendar"}
_CONTROLS = {"never": "never", "nevertreated": "never", "notyet": "notyet",
             "notyettreated": "notyet"}
_ZERO_SE = math.sqrt(np.finfo(float).eps) * 10


@dataclass
class _CSFit:
    """Everything the aggregations need; produced once per estimation."""

    gt: pd.DataFrame                # one row per ATT(g,t): group, time, coh, gidx, tidx, bidx, att ...
    infl: Influence                 # rows x K influence functions of the ATT(g,t)
    row_w: np.ndarray               # normalised sampling weights (mean 1) per row
    row_cohort: np.ndarray          # cohort code per row
    cell_cohort: np.ndarray | None  # cohort code per cell (structured influence only)
    row_ids: np.ndarray             # unit id (panel) or original row label (RCS) per row
    cohort_values: np.ndarray       # cohort value per code (inf = never treated)
    cohort_gidx: np.ndarray         # period index per cohort code
    p: np.ndarray                   # weighted cohort shares
    times: np.ndarray
    cluster: tuple[np.ndarray, int] | None
    n_obs: int
    n_units: int
    options: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


_FITS: dict[int, _CSFit] = {}


def _remember(result: EstimateResult, fit: _CSFit) -> None:
    key = id(result)
    _FITS[key] = fit
    weakref.finalize(result, _FITS.pop, key, None)


def _fit_of(result_or_fit) -> _CSFit:
    if isinstance(result_or_fit, _CSFit):
        return result_or_fit
    fit = _FITS.get(id(result_or_fit))
    if fit is None:
        raise ValueError("not a result of callaway_santanna() from this session")
    return fit


# ============================================================================ public API


def callaway_santanna(data, y: str, unit: str | None, time: str, cohort: str, *,
                      covariates: list[str] | None = None, control: str = "never",
                      base_period: str = "varying", est_method: str = "dr",
                      anticipation: int = 0, weights: str | None = None,
                      cluster: str | None = None, panel: bool = True,
                      aggregation: str = "simple", balance_e: int | None = None,
                      min_e: float = -math.inf, max_e: float = math.inf,
                      bootstrap: bool = False, n_boot: int = 999, seed: int | None = None,
                      alpha: float = 0.05, _sufficient_stats: bool = True) -> EstimateResult:
    """Group-time ATTs ATT(g,t) and their aggregations (Callaway & Sant'Anna 2021).

    Parameters
    ----------
    data : DataFrame (or pyarrow Table) in long form, one row per unit and period (panel)
        or per observation (repeated cross-sections).
    y, unit, time, cohort : column names. ``cohort`` is the first treated period
        (0 / missing / after the last period = never treated). ``unit`` may be None
        when ``panel=False``.
    covariates : pre-treatment covariates for the conditional parallel-trends assumption.
    control : ``"never"`` (never-treated units) or ``"notyet"`` (never and not-yet-treated).
    base_period : ``"varying"`` or ``"universal"``.
    est_method : ``"dr"`` (doubly robust), ``"ipw"`` or ``"reg"`` (outcome regression);
        without covariates they coincide.
    anticipation : number of periods before the cohort's first treated period in which
        units may already react.
    weights : sampling-weight column (constant within unit in panels).
    cluster : cluster column (constant within unit in panels); analytic SEs then sum the
        influence functions within clusters and the bootstrap draws one weight per cluster.
    panel : False for repeated cross-sections.
    aggregation : the headline ``estimate``: ``simple``, ``group``, ``dynamic`` (alias
        ``event``) or ``calendar`` overall ATT. All four tables are always returned.
    balance_e, min_e, max_e : restrictions of the event-study (dynamic) aggregation.
    bootstrap, n_boot, seed : multiplier bootstrap (Mammen weights) for standard errors and
        uniform confidence bands (columns ``ucb_low``/``ucb_high`` of ``att_gt`` and ``event``).
    alpha : 1 - confidence level.
    _sufficient_stats : private; False forces the unit-row regression code path even
        without covariates (used by the tests to cross-check the two paths).

    Info keys: ``pretest_stat``/``pretest_df``/``pretest_p`` (Wald test that all
    pre-treatment ATT(g,t) are zero, analytic (clustered) covariance, as R ``did``'s
    summary), ``n_groups``, ``control``, ``base_period``, ``est_method``, ``anticipation``,
    ``overall`` (all four overall ATTs with SEs), ``warnings``; with the bootstrap also
    ``bootstrap_weights`` ("mammen"), ``crit_val_att_gt``, ``crit_val_event``.

    Returns
    -------
    EstimateResult with ``method="cs"`` and components ``att_gt``, ``event``, ``group``,
    ``calendar``. ``cs_aggregate(result, ...)`` re-aggregates without re-estimating;
    ``cs_influence(result, ...)`` returns the influence functions.
    """
    agg = _AGGREGATIONS.get(str(aggregation).lower())
    if agg is None:
        raise ValueError(f"aggregation must be one of simple/group/dynamic/calendar, got {aggregation!r}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    fit = _estimate_att_gt(data, y, unit, time, cohort, covariates=covariates, control=control,
                           base_period=base_period, est_method=est_method,
                           anticipation=anticipation, weights=weights, cluster=cluster,
                           panel=panel, sufficient_stats=_sufficient_stats)
    return _finalize(fit, agg, balance_e=balance_e, min_e=min_e, max_e=max_e,
                     bootstrap=bootstrap, n_boot=n_boot, seed=seed, alpha=alpha)


def cs_aggregate(result: EstimateResult, type: str = "dynamic", *, balance_e: int | None = None,
                 min_e: float = -math.inf, max_e: float = math.inf,
                 bootstrap: bool | None = None, n_boot: int | None = None,
                 seed: int | None = None, alpha: float | None = None) -> EstimateResult:
    """Re-aggregate a ``callaway_santanna`` result without re-estimating the ATT(g,t).

    ``type`` picks the headline aggregation (simple/group/dynamic/calendar); the event-study
    options apply to the ``event`` table and the dynamic overall ATT. Bootstrap options
    default to those of the original call.
    """
    fit = _fit_of(result)
    agg = _AGGREGATIONS.get(str(type).lower())
    if agg is None:
        raise ValueError(f"type must be one of simple/group/dynamic/calendar, got {type!r}")
    o = result.info
    was_boot = result.inference == "bootstrap"
    return _finalize(fit, agg, balance_e=balance_e, min_e=min_e, max_e=max_e,
                     bootstrap=was_boot if bootstrap is None else bootstrap,
                     n_boot=o.get("n_boot", 999) if n_boot is None else n_boot,
                     seed=o.get("seed") if seed is None else seed,
                     alpha=result.alpha if alpha is None else alpha)


class CSInfluence(NamedTuple):
    """Influence functions: ``values[r, k]`` for sampling unit ``row_ids[r]`` and the
    estimate described by row k of ``columns``; ``estimate - truth ~= values.sum(0) / n``."""

    row_ids: np.ndarray
    columns: pd.DataFrame
    values: np.ndarray
    n: int


def cs_influence(result: EstimateResult, component: str = "att_gt") -> CSInfluence:
    """Influence functions of one component (``att_gt``, ``event``, ``group``, ``calendar``
    or ``overall``: the four overall ATTs simple/group/dynamic/calendar) of a result.
    Includes the estimated-weights part for aggregations. Materialises rows x m floats."""
    fit = _fit_of(result)
    o = result.info
    parts = _aggregations(fit, balance_e=o.get("balance_e"), min_e=o.get("min_e", -math.inf),
                          max_e=o.get("max_e", math.inf))
    if component not in parts:
        raise KeyError(f"unknown component {component!r}; one of {sorted(parts)}")
    labels, _, A, U = parts[component]
    infl = fit.infl.combine(A).add_cohort_terms(U, fit.row_w, fit.row_cohort, fit.cell_cohort)
    return CSInfluence(fit.row_ids, labels.reset_index(drop=True), infl.dense(), fit.infl.n)


# ============================================================================ estimation


def _estimate_att_gt(data, y, unit, time, cohort, *, covariates, control, base_period,
                     est_method, anticipation, weights, cluster, panel, sufficient_stats) -> _CSFit:
    ctrl_kind = _CONTROLS.get(str(control).lower())
    if ctrl_kind is None:
        raise ValueError(f"control must be 'never' or 'notyet', got {control!r}")
    if base_period not in ("varying", "universal"):
        raise ValueError(f"base_period must be 'varying' or 'universal', got {base_period!r}")
    if est_method not in ("dr", "ipw", "reg"):
        raise ValueError(f"est_method must be 'dr', 'ipw' or 'reg', got {est_method!r}")
    anticipation = int(anticipation)
    if anticipation < 0:
        raise ValueError("anticipation must be >= 0")
    covs = list(covariates or [])
    if panel and unit is None:
        raise EstimationError("panel data need a unit column (or use panel=False)")
    warnings: list[str] = []

    df = as_frame(data)
    require_columns(df, [y, unit, time, weights, cluster, *covs])
    require_columns(df, [cohort], no_missing=False)
    try:
        tv = pd.to_numeric(df[time]).to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise EstimationError(f"time column '{time}' must be numeric (a period index)") from None
    yv = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(yv).all():
        raise EstimationError(f"outcome column '{y}' has non-numeric or infinite values")
    ti, times = pd.factorize(tv, sort=True)  # hash-based: no sort of the long column
    ti = ti.astype(np.int64)
    times = np.asarray(times, dtype=float)
    if np.all(times == np.round(times)) and np.abs(times).max() < 2**53:
        times = times.astype(np.int64)
    T = len(times)
    if T < 2:
        raise EstimationError("need at least two time periods")

    # cohorts -> period index; never treated -> _NEVER_IDX; treated before the data -> -1
    # (mapped on the distinct cohort values only)
    c_codes, c_uniq = pd.factorize(df[cohort], use_na_sentinel=False)
    Gu = normalise_cohort(pd.Series(c_uniq), pd.Series([times.max()])).to_numpy(dtype=float)
    fin = np.isfinite(Gu)
    gi_u = np.full(len(Gu), _NEVER_IDX, dtype=np.int64)
    pos = np.searchsorted(times, Gu[fin])
    exact = (pos < T) & (times[np.minimum(pos, T - 1)] == Gu[fin])
    early = Gu[fin] < times[0]
    if np.any(~exact & ~early):
        bad = sorted(set(Gu[fin][~exact & ~early].tolist()))[:5]
        raise EstimationError(f"cohort value(s) {bad} in '{cohort}' are not observed periods of '{time}'")
    gi_u[fin] = np.where(early, -1, pos)
    gi = gi_u[c_codes]
    del c_codes

    if weights is not None:
        wv = pd.to_numeric(df[weights], errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(wv).all() or (wv < 0).any():
            raise EstimationError(f"weights column '{weights}' must be finite and non-negative")
    else:
        wv = None
    cl_codes = pd.factorize(df[cluster])[0] if cluster is not None else None
    Xv = (df[covs].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
          if covs else np.zeros((len(df), 0)))
    if covs and not np.isfinite(Xv).all():
        raise EstimationError(f"covariates {covs} have non-numeric or infinite values")

    if panel:
        ucode, uniques = pd.factorize(df[unit])
        nu = len(uniques)
        key = ucode.astype(np.int64) * T + ti
        if np.bincount(key, minlength=nu * T).max() > 1:
            raise EstimationError(f"duplicate ({unit}, {time}) rows: panel data need one row per unit and period")
        unit_attr = {}
        for name, vals in (("cohort", gi), ("weights", wv), ("cluster", cl_codes)):
            if vals is None:
                continue
            u = np.empty(nu, dtype=vals.dtype)
            u[ucode] = vals
            if not np.array_equal(u[ucode], vals):
                col = {"cohort": cohort, "weights": weights, "cluster": cluster}[name]
                raise EstimationError(f"column '{col}' must be constant within each unit")
            unit_attr[name] = u
        Yw = np.full(nu * T, np.nan)
        Yw[key] = yv
        Yw = Yw.reshape(nu, T)
        Xw = None
        if covs:
            Xw = np.full((nu * T, len(covs)), np.nan)
            Xw[key] = Xv
            Xw = Xw.reshape(nu, T, len(covs))
        u_gi = unit_attr["cohort"]
        u_early = u_gi - anticipation <= 0
        if u_early.any():
            warnings.append(f"dropped {int(u_early.sum())} unit(s) of cohort(s) treated in the first "
                            f"period{' (+anticipation)' if anticipation else ''}: no pre-treatment period")
        incomplete = np.isnan(Yw).any(axis=1) & ~u_early
        if incomplete.any():
            warnings.append(f"dropped {int(incomplete.sum())} unit(s) not observed in every period "
                            "(balanced panel; use panel=False with cluster=unit to keep them)")
        keep = ~u_early & ~incomplete
        row_gi = u_gi[keep]
        row_w = unit_attr["weights"][keep] if wv is not None else np.ones(int(keep.sum()))
        row_cl = unit_attr["cluster"][keep] if cluster is not None else None
        Yw = Yw[keep]
        Xw = Xw[keep] if Xw is not None else None
        row_ids = np.asarray(uniques)[keep]
        n_obs = int(keep.sum()) * T
        n_units = int(keep.sum())
    else:
        early_row = gi - anticipation <= 0  # no pre-treatment period
        if wv is None:
            wv = np.ones(len(df))
        if early_row.any():
            warnings.append(f"dropped {int(early_row.sum())} observation(s) of cohort(s) treated in the "
                            "first period: no pre-treatment period")
        keep = ~early_row
        row_gi = gi[keep]
        row_w = wv[keep]
        row_cl = cl_codes[keep] if cluster is not None else None
        row_t = ti[keep]
        row_y = yv[keep]
        row_X = Xv[keep]
        row_ids = np.asarray(df.index)[keep]
        n_obs = int(keep.sum())
        n_units = int(pd.Series(df[unit].to_numpy()[keep]).nunique()) if unit is not None else n_obs
    if len(row_gi) == 0:
        raise EstimationError("no observations left after dropping cohorts without a pre-period")

    # cohort codes: treated cohorts ascending, never treated last
    treated_g = np.unique(row_gi[row_gi != _NEVER_IDX])
    if len(treated_g) == 0:
        raise EstimationError("no treated cohort with a pre-treatment period in the data")
    has_never = bool((row_gi == _NEVER_IDX).any())
    cohort_gidx = np.concatenate([treated_g, [_NEVER_IDX]]) if has_never else treated_g
    C = len(cohort_gidx)
    row_coh = np.searchsorted(cohort_gidx, row_gi)
    cohort_values = np.where(cohort_gidx == _NEVER_IDX, np.inf,
                             times[np.minimum(cohort_gidx, T - 1)])
    if ctrl_kind == "never" and not has_never:
        raise EstimationError("no never-treated units: control='never' needs some (cohort 0/missing); "
                              "use control='notyet'")
    counts = np.bincount(row_coh, minlength=C)
    # in repeated cross-sections count per period is what matters; warn on cohort totals
    small = [cohort_values[c] for c in range(len(treated_g)) if counts[c] < 2]
    if small:
        warnings.append(f"cohort(s) {[_num(v) for v in small]} have a single "
                        f"{'unit' if panel else 'observation'}: its sampling variance cannot be "
                        "estimated, standard errors involving it are too small")

    wsum = row_w.sum()
    if wsum <= 0:
        raise EstimationError("weights sum to zero")
    n = len(row_gi)
    row_w = row_w * (n / wsum)

    # sort rows into cells
    if panel:
        order = np.argsort(row_coh, kind="stable")
        cell = row_coh[order]
        ncell = C
    else:
        cell_unsorted = row_coh * T + row_t
        order = np.argsort(cell_unsorted, kind="stable")
        cell = cell_unsorted[order]
        ncell = C * T
    row_coh = row_coh[order]
    row_w = row_w[order]
    row_ids = row_ids[order]
    row_cl = row_cl[order] if row_cl is not None else None
    bounds = np.searchsorted(cell, np.arange(ncell + 1))
    if panel:
        Yw = Yw[order]
        Xw = Xw[order] if Xw is not None else None
    else:
        row_t, row_y, row_X = row_t[order], row_y[order], row_X[order]

    # the (g, t) pairs with their base period and comparison cohorts
    pairs = []
    t_start = 1 if base_period == "varying" else 0
    for c, g in enumerate(treated_g):
        for t in range(t_start, T):
            post = t >= g - anticipation
            b = g - 1 - anticipation if (post or base_period == "universal") else t - 1
            if ctrl_kind == "never":
                ctrl = cohort_gidx == _NEVER_IDX
            else:
                ctrl = (cohort_gidx == _NEVER_IDX) | (cohort_gidx - anticipation > max(t, b))
                ctrl[c] = False
            pairs.append((c, g, t, b, post, ctrl))

    K_rows = []
    use_ss = sufficient_stats and not covs
    if use_ss:
        if panel:
            Z = np.column_stack([Yw * row_w[:, None], row_w, np.ones(n)])
            d = T + 2
            sums = np.add.reduceat(Z, bounds[:-1], axis=0)  # every cohort cell is non-empty
            Wc, SY = sums[:, T], sums[:, :T]
        else:
            Z = np.column_stack([row_y * row_w, row_w, np.ones(n)])
            d = 3
            Wc = np.bincount(cell, weights=row_w, minlength=ncell).reshape(C, T)
            cnt = np.diff(bounds).reshape(C, T)
            SY = np.bincount(cell, weights=Z[:, 0], minlength=ncell).reshape(C, T)
        lam_cols = []
        for c, g, t, b, post, ctrl in pairs:
            lam = np.zeros((ncell, d))
            if panel:
                WT, WC = Wc[c], Wc[ctrl].sum()
                if WC <= 0:
                    warnings.append(f"ATT({_num(times[g])},{_num(times[t])}) skipped: no comparison units")
                    continue
                mT = (SY[c, t] - SY[c, b]) / WT
                mC = (SY[ctrl, t] - SY[ctrl, b]).sum() / WC
                lam[c, t] += n / WT
                lam[c, b] -= n / WT
                lam[c, T] -= n * mT / WT
                lam[ctrl, t] -= n / WC
                lam[ctrl, b] += n / WC
                lam[ctrl, T] += n * mC / WC
                att = mT - mC
                n_t, n_c = counts[c], counts[ctrl].sum()
            else:
                WTt, WTb = Wc[c, t], Wc[c, b]
                WCt, WCb = Wc[ctrl, t].sum(), Wc[ctrl, b].sum()
                if min(WTt, WTb, WCt, WCb) <= 0:
                    warnings.append(f"ATT({_num(times[g])},{_num(times[t])}) skipped: no treated or "
                                    "comparison observations in one of the two periods")
                    continue
                mTt, mTb = SY[c, t] / WTt, SY[c, b] / WTb
                mCt, mCb = SY[ctrl, t].sum() / WCt, SY[ctrl, b].sum() / WCb
                lam = lam.reshape(C, T, d)
                lam[c, t, 0] += n / WTt
                lam[c, t, 1] -= n * mTt / WTt
                lam[c, b, 0] -= n / WTb
                lam[c, b, 1] += n * mTb / WTb
                lam[ctrl, t, 0] -= n / WCt
                lam[ctrl, t, 1] += n * mCt / WCt
                lam[ctrl, b, 0] += n / WCb
                lam[ctrl, b, 1] -= n * mCb / WCb
                lam = lam.reshape(ncell, d)
                att = (mTt - mTb) - (mCt - mCb)
                n_t = cnt[c, t] + (cnt[c, b] if b != t else 0)
                n_c = cnt[ctrl, t].sum() + (cnt[ctrl, b].sum() if b != t else 0)
            lam_cols.append(lam)
            K_rows.append((c, g, t, b, post, att, int(n_t), int(n_c)))
        lam_all = np.stack(lam_cols, axis=2) if lam_cols else np.zeros((ncell, d, 0))
        infl = Influence(n, Z=Z, bounds=bounds, lam=lam_all)
        cell_cohort = (np.arange(ncell) if panel else np.repeat(np.arange(C), T))
    else:
        est = (_cs_drdid.PANEL if panel else _cs_drdid.RCS)[est_method]
        psi = np.zeros((n, len(pairs)), order="F")  # filled column by column
        k = 0
        nuis: dict = {}
        covs_vary = bool(panel and Xw is not None and not (Xw == Xw[:, :1, :]).all())
        for c, g, t, b, post, ctrl in pairs:
            # rows are sorted by cell, so the 2x2 sample is a union of contiguous ranges
            cohs = np.flatnonzero(ctrl | (np.arange(C) == c))
            cells_ = cohs if panel else np.sort(np.concatenate([cohs * T + t, cohs * T + b]))
            cells_ = np.unique(cells_)
            sel = np.concatenate([np.arange(bounds[q], bounds[q + 1]) for q in cells_])
            D = (row_coh[sel] == c).astype(float)
            n_t, n_c = int(D.sum()), int(len(sel) - D.sum())
            if n_c == 0 or n_t == 0:
                warnings.append(f"ATT({_num(times[g])},{_num(times[t])}) skipped: no comparison units")
                continue
            if t == b:
                att = 0.0
            else:
                if panel:
                    dy = Yw[sel, t] - Yw[sel, b]
                    # the sample, covariates and hence the propensity score and the OLS Gram
                    # matrix are shared by every ATT(g,t) with the same cohort, comparison
                    # group and (for time-varying covariates) base period: fit them once
                    key = (c, ctrl.tobytes(), b if covs_vary else -1)
                    try:
                        if key not in nuis:
                            X = (np.column_stack([np.ones(len(sel)), Xw[sel, b, :]])
                                 if Xw is not None else np.ones((len(sel), 1)))
                            ws = row_w[sel]
                            nuis[key] = (X, None if est_method == "reg" else _cs_drdid.logit(D, X, ws),
                                         None if est_method == "ipw" else
                                         _cs_drdid.wls_inv(X, ws * (1 - D)))
                        X, ps_fit, ols_inv = nuis[key]
                        att, inf = est(dy, D, X, row_w[sel], ps_fit=ps_fit, ols_inv=ols_inv)
                    except EstimationError as exc:
                        raise EstimationError(f"ATT({_num(times[g])},{_num(times[t])}): {exc}") from None
                else:
                    X = np.column_stack([np.ones(len(sel)), row_X[sel]])
                    post_ind = (row_t[sel] == t).astype(float)
                    try:
                        att, inf = est(row_y[sel], post_ind, D, X, row_w[sel])
                    except EstimationError as exc:
                        raise EstimationError(f"ATT({_num(times[g])},{_num(times[t])}): {exc}") from None
                psi[sel, k] = inf * (n / len(sel))
            k += 1
            K_rows.append((c, g, t, b, post, float(att), n_t, n_c))
        infl = Influence(n, dense=psi if k == len(pairs) else np.asfortranarray(psi[:, :k]))
        cell_cohort = None
    if not K_rows:
        raise EstimationError("no ATT(g,t) could be estimated")

    gt = pd.DataFrame(K_rows, columns=["coh", "gidx", "tidx", "bidx", "post", "att",
                                       "n_treated", "n_control"])
    gt.insert(0, "group", times[gt["gidx"].to_numpy()])
    gt.insert(1, "time", times[gt["tidx"].to_numpy()])
    gt["base"] = times[gt["bidx"].to_numpy()]
    p = np.bincount(row_coh, weights=row_w, minlength=C) / n
    cl = None
    if row_cl is not None:
        codes, uniq = pd.factorize(row_cl)
        cl = (codes.astype(np.int64), len(uniq))
    options = dict(control=ctrl_kind, base_period=base_period,
                   est_method=est_method,
                   anticipation=anticipation, covariates=covs, panel=panel, weights=weights,
                   cluster=cluster)
    return _CSFit(gt=gt, infl=infl, row_w=row_w, row_cohort=row_coh, cell_cohort=cell_cohort,
                  row_ids=row_ids, cohort_values=cohort_values, cohort_gidx=cohort_gidx, p=p,
                  times=times, cluster=cl, n_obs=n_obs, n_units=n_units, options=options,
                  warnings=warnings)


def _num(v):
    v = float(v)
    return int(v) if v.is_integer() else v


# ============================================================================ aggregation


def _weighted(values, A_cols, U_cols, coh_items, p):
    """Cohort-share weighted average of items (with the weight-estimation influence)."""
    pk = p[coh_items]
    S = pk.sum()
    wts = pk / S
    theta = float(wts @ values)
    A = A_cols @ wts
    U = U_cols @ wts
    np.add.at(U, coh_items, (values - theta) / S)
    return theta, A, U


def _aggregations(fit: _CSFit, *, balance_e, min_e, max_e):
    """Every aggregation as (labels, att, A, U): influence = Psi @ A + w_r * U[cohort_r]."""
    gt = fit.gt
    K, C = len(gt), len(fit.cohort_gidx)
    att = gt["att"].to_numpy(float)
    coh = gt["coh"].to_numpy()
    gidx, tidx = gt["gidx"].to_numpy(), gt["tidx"].to_numpy()
    e = tidx - gidx
    post = e >= 0
    I = np.eye(K)
    Z0 = np.zeros((C, K))
    T = len(fit.times)
    out = {}
    out["att_gt"] = (gt[["group", "time"]], att, I, np.zeros((C, K)))

    def pack(items):
        labels = pd.DataFrame([it[0] for it in items])
        vals = np.array([it[1] for it in items], dtype=float)
        A = np.column_stack([it[2] for it in items]) if items else np.zeros((K, 0))
        U = np.column_stack([it[3] for it in items]) if items else np.zeros((C, 0))
        return labels, vals, A, U

    overall = {}
    # simple
    keep = np.flatnonzero(post)
    th, A, U = _weighted(att[keep], I[:, keep], Z0[:, keep], coh[keep], fit.p)
    overall["simple"] = (th, A, U)
    # group
    items = []
    for c in np.unique(coh[post]):
        k = np.flatnonzero(post & (coh == c))
        items.append(({"group": fit.times[fit.cohort_gidx[c]]}, att[k].mean(), I[:, k].mean(1), np.zeros(C)))
    out["group"] = pack(items)
    gcoh = np.unique(coh[post])
    overall["group"] = _weighted(out["group"][1], out["group"][2], out["group"][3], gcoh, fit.p)
    # dynamic
    sel = np.ones(K, dtype=bool)
    if balance_e is not None:
        sel &= (T - 1 - gidx >= balance_e) & (e <= balance_e)
    sel &= (e >= min_e) & (e <= max_e)
    items = []
    for ev in np.unique(e[sel]):
        k = np.flatnonzero(sel & (e == ev))
        th, A, U = _weighted(att[k], I[:, k], Z0[:, k], coh[k], fit.p)
        items.append(({"e": int(ev)}, th, A, U))
    out["event"] = pack(items)
    ev_labels = out["event"][0]
    if len(ev_labels) and (ev_labels["e"] >= 0).any():
        m = (ev_labels["e"] >= 0).to_numpy()
        overall["dynamic"] = (float(out["event"][1][m].mean()), out["event"][2][:, m].mean(1),
                              out["event"][3][:, m].mean(1))
    else:
        overall["dynamic"] = (np.nan, np.zeros(K), np.zeros(C))
    # calendar
    items = []
    for t in np.unique(tidx[post]):
        k = np.flatnonzero(post & (tidx == t))
        th, A, U = _weighted(att[k], I[:, k], Z0[:, k], coh[k], fit.p)
        items.append(({"time": fit.times[t]}, th, A, U))
    out["calendar"] = pack(items)
    overall["calendar"] = (float(out["calendar"][1].mean()), out["calendar"][2].mean(1),
                           out["calendar"][3].mean(1))
    names = ["simple", "group", "dynamic", "calendar"]
    out["overall"] = (pd.DataFrame({"aggregation": names}),
                      np.array([overall[k][0] for k in names]),
                      np.column_stack([overall[k][1] for k in names]),
                      np.column_stack([overall[k][2] for k in names]))
    return out


def _iqr_se(draws: np.ndarray) -> np.ndarray:
    q75, q25 = np.percentile(draws, [75, 25], axis=0)
    return (q75 - q25) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))


def _finalize(fit: _CSFit, agg: str, *, balance_e, min_e, max_e, bootstrap, n_boot, seed,
              alpha) -> EstimateResult:
    parts = _aggregations(fit, balance_e=balance_e, min_e=min_e, max_e=max_e)
    order = ["att_gt", "event", "group", "calendar", "overall"]
    A = np.hstack([parts[k][2] for k in order])
    U = np.hstack([parts[k][3] for k in order])
    vals = np.concatenate([parts[k][1] for k in order])
    sizes = [len(parts[k][1]) for k in order]
    offs = np.concatenate([[0], np.cumsum(sizes)])
    infl = fit.infl.combine(A).add_cohort_terms(U, fit.row_w, fit.row_cohort, fit.cell_cohort)
    V = infl.vcov(fit.cluster)
    se = np.sqrt(np.clip(np.diag(V), 0, None))
    se[se <= _ZERO_SE] = np.nan
    z = stats.norm.ppf(1 - alpha / 2)
    info_extra: dict[str, Any] = {}
    crit = {}
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = infl.bootstrap(int(n_boot), rng, "mammen", cluster=fit.cluster)
        se_b = _iqr_se(draws)
        se_b[~np.isfinite(se) | (se_b <= _ZERO_SE)] = np.nan
        se = se_b
        for name in ("att_gt", "event"):
            sl = slice(offs[order.index(name)], offs[order.index(name) + 1])
            s = se[sl]
            ok = np.isfinite(s)
            if ok.any():
                tstat = np.abs(draws[:, sl][:, ok]) / s[ok]
                crit[name] = float(np.quantile(tstat.max(axis=1), 1 - alpha))
            else:
                crit[name] = np.nan
        info_extra = {"bootstrap_weights": "mammen", "n_boot": int(n_boot), "seed": seed,
                      "crit_val_att_gt": crit["att_gt"], "crit_val_event": crit["event"]}

    tables = {}
    for name in order:
        sl = slice(offs[order.index(name)], offs[order.index(name) + 1])
        lab = parts[name][0]
        cols = {c: lab[c].to_numpy() for c in lab.columns}
        a, s_ = vals[sl], se[sl]
        cols.update(att=a, se=s_, ci_low=a - z * s_, ci_high=a + z * s_)
        if name in crit:
            cols.update(ucb_low=a - crit[name] * s_, ucb_high=a + crit[name] * s_)
        if name == "att_gt":
            for c in ("base", "post", "n_treated", "n_control"):
                cols[c] = fit.gt[c].to_numpy()
        tables[name] = pd.DataFrame(cols)
    gt = fit.gt

    # Wald pre-test of parallel trends over the pre-treatment ATT(g,t)
    pre = np.flatnonzero((gt["tidx"] < gt["gidx"] - fit.options["anticipation"]).to_numpy()
                         & np.isfinite(se[:len(gt)]))
    warnings = list(fit.warnings)
    pre_stat = pre_p = np.nan
    if len(pre):
        Vp = V[np.ix_(pre, pre)]
        a = vals[pre]
        if np.linalg.matrix_rank(Vp) < len(pre):
            warnings.append("pre-test not computed: singular covariance of the pre-treatment ATT(g,t)")
        else:
            pre_stat = float(a @ np.linalg.solve(Vp, a))
            pre_p = float(stats.chi2.sf(pre_stat, len(pre)))
            # the clustered covariance of df pre-period ATT(g,t) is estimated from the treated
            # clusters' influence: with no more treated clusters than df it is (near) singular
            # and the chi2 test over-rejects badly (calibration: 400 of 400 true nulls with 11
            # treated municipalities and 21 pre-period ATT(g,t))
            treated = np.isfinite(fit.cohort_values[fit.row_cohort])
            ids = fit.cluster[0] if fit.cluster is not None else fit.row_ids
            n_tr = int(len(np.unique(ids[treated])))
            cond = float(np.linalg.cond(Vp))
            if n_tr <= len(pre) or cond > 1e6:
                warnings.append(f"pre-test unreliable: {len(pre)} pre-treatment ATT(g,t) from "
                                f"{n_tr} treated clusters (covariance condition number "
                                f"{cond:.1e}); use a permutation pre-test (randomization_inference "
                                "with pretrend_statistic), docs/calibration.md section 3")

    ov = tables["overall"].set_index("aggregation")
    est, s = float(ov.loc[agg, "att"]), float(ov.loc[agg, "se"])
    pval = float(2 * stats.norm.sf(abs(est / s))) if np.isfinite(s) and s > 0 else np.nan
    info = {
        "aggregation": agg, "control": fit.options["control"],
        "base_period": fit.options["base_period"], "est_method": fit.options["est_method"],
        "anticipation": fit.options["anticipation"], "covariates": list(fit.options["covariates"]),
        "panel": fit.options["panel"], "cluster": fit.options["cluster"],
        "n_clusters": fit.cluster[1] if fit.cluster else None,
        "n_groups": int((fit.cohort_gidx != _NEVER_IDX).sum()),
        "pretest_stat": pre_stat, "pretest_df": int(len(pre)), "pretest_p": pre_p,
        "balance_e": balance_e, "min_e": min_e, "max_e": max_e,
        "overall": {k: {"att": float(ov.loc[k, "att"]), "se": _nan_none(ov.loc[k, "se"])}
                    for k in ov.index},
        "warnings": warnings,
        **info_extra,
    }
    res = EstimateResult(
        method="cs", estimate=est, se=s, ci=(est - z * s, est + z * s), p=pval,
        n_obs=fit.n_obs, n_units=fit.n_units,
        inference="bootstrap" if bootstrap else "analytic", alpha=alpha,
        components={k: tables[k] for k in ("att_gt", "event", "group", "calendar")},
        info=info)
    _remember(res, fit)
    return res


def _nan_none(x):
    x = float(x)
    return None if not np.isfinite(x) else x
