"""Cox proportional hazards with a difference-in-differences regressor.

Own implementation of the stratified Cox partial likelihood (Efron or Breslow ties), written
for register-scale data (~10^6 spells, heavily tied whole-week durations):

- rows are sorted once by (stratum, time); sums over risk sets are reverse cumulative sums of
  per-(stratum, time) group sums, so each Newton step is O(n p + n_events p^2 + n p^2 BLAS);
- Efron's approximation: for a tie group of ``d`` events at time ``t`` with risk-set sums
  ``S0, S1, S2`` and tied-event sums ``D0, D1, D2``, the ``l``-th (l = 0..d-1) denominator is
  ``S0 - (l/d) D0`` (Efron 1977). The log partial likelihood is
  ``sum_events x'b - sum_{g,l} log(S0_g - c_l D0_g)``; gradient and information follow by
  differentiation, and the information's second-moment part is written as
  ``X' diag(r_j (A_j - delta_j C_g(j))) X`` with cumulative sums ``A``, ``C`` of ``1/den`` so
  no per-risk-set p × p matrix is ever formed;
- Newton–Raphson with step halving from b = 0;
- robust (Lin & Wei 1989) sandwich ``I^-1 (sum_c U_c U_c') I^-1`` with ``U_c`` the score
  residuals summed by cluster. The Efron score residual of subject j (Therneau & Grambsch
  2000, ch. 3) is ``delta_j (x_j - mean_l xbar_gl) - sum_{g in risk, l} r_j w_jgl (x_j - xbar_gl) / den_gl``
  with ``w_jgl = 1 - c_l`` for j's own tied event and 1 otherwise. No small-sample factor
  (as R ``coxph`` and lifelines).

Why not lifelines/statsmodels: both are used as the independent references in the tests, but
on 10^6 spells with ~100 strata and calendar dummies lifelines' CoxPHFitter needs several
minutes and many GB (see ``benchmarks/results/survival.md``), statsmodels' PHReg has no
Efron-consistent clustered variance. This module fits the same model in seconds.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import linalg, stats

from evaluering.errors import EstimationError
from evaluering.results import EstimateResult
from evaluering.survival.km import _as_frame, _as_list, _check_columns, event_codes


class _CoxData:
    """Sorted arrays and tie-group bookkeeping (independent of the coefficients)."""

    def __init__(self, time: np.ndarray, event: np.ndarray, X: np.ndarray, strata: np.ndarray,
                 ties: str):
        order = np.lexsort((time, strata))
        self.order = order
        self.t = time[order]
        self.e = event[order].astype(bool)
        self.X = np.ascontiguousarray(X[order])
        self.s = strata[order]
        self.ties = ties
        n = len(self.t)
        # tie groups: runs of equal (stratum, time)
        new = np.r_[True, (self.s[1:] != self.s[:-1]) | (self.t[1:] != self.t[:-1])]
        self.gstart = np.flatnonzero(new)
        self.gid = np.cumsum(new) - 1
        self.G = len(self.gstart)
        gs = self.s[self.gstart]
        self.g_stratum_start = np.r_[True, gs[1:] != gs[:-1]]
        self.g_stratum_end = np.r_[gs[1:] != gs[:-1], True]
        self.d = np.bincount(self.gid, weights=self.e, minlength=self.G)
        # event rows expanded: one row per (group, l)
        ev_groups = self.gid[self.e]
        self.ev_group = ev_groups
        first = np.r_[0, np.cumsum(self.d)[:-1]].astype(np.int64)
        self.ev_l = np.arange(len(ev_groups)) - first[ev_groups]
        dd = self.d[ev_groups]
        self.ev_c = self.ev_l / dd if ties == "efron" else np.zeros(len(ev_groups))
        self.n = n

    # cumulative sums over groups within strata
    def rev_cumsum(self, a: np.ndarray) -> np.ndarray:
        """For each group: sum over groups of the same stratum with time >= its time."""
        c = np.cumsum(a[::-1], axis=0)[::-1]
        # subtract what lies beyond the stratum's last group
        end_idx = np.flatnonzero(self.g_stratum_end)
        nxt = end_idx + 1
        vals = np.where((nxt < self.G)[:, None] if c.ndim > 1 else (nxt < self.G),
                        c[np.minimum(nxt, self.G - 1)], 0.0)
        # stratum id per group
        sid = np.cumsum(self.g_stratum_start) - 1
        beyond = vals[sid]
        return c - beyond

    def fwd_cumsum(self, a: np.ndarray) -> np.ndarray:
        """For each group: sum over groups of the same stratum with time <= its time."""
        c = np.cumsum(a, axis=0)
        st_idx = np.flatnonzero(self.g_stratum_start)
        sid = np.cumsum(self.g_stratum_start) - 1
        prev = np.where((st_idx > 0)[:, None] if c.ndim > 1 else (st_idx > 0),
                        c[np.maximum(st_idx - 1, 0)], 0.0)
        return c - prev[sid]


def _evaluate(cd: _CoxData, beta: np.ndarray, want_resid: bool = False):
    """Log partial likelihood, gradient, information (and score residuals)."""
    X = cd.X
    xb = X @ beta if X.shape[1] else np.zeros(cd.n)
    shift = xb.max()
    r = np.exp(xb - shift)
    rX = r[:, None] * X
    # group sums
    g0 = np.bincount(cd.gid, weights=r, minlength=cd.G)
    g1 = np.add.reduceat(rX, cd.gstart, axis=0)
    er = np.where(cd.e, r, 0.0)
    D0 = np.bincount(cd.gid, weights=er, minlength=cd.G)
    D1 = np.add.reduceat(rX * cd.e[:, None], cd.gstart, axis=0)
    S0 = cd.rev_cumsum(g0)
    S1 = cd.rev_cumsum(g1)
    eg, c = cd.ev_group, cd.ev_c
    den = S0[eg] - c * D0[eg]
    num = S1[eg] - c[:, None] * D1[eg]
    xbar = num / den[:, None]
    ll = float(np.sum(xb[cd.e] - shift) - np.sum(np.log(den)))
    grad = X[cd.e].sum(axis=0) - xbar.sum(axis=0)
    inv = 1.0 / den
    a_g = np.bincount(eg, weights=inv, minlength=cd.G)
    c_g = np.bincount(eg, weights=c * inv, minlength=cd.G)
    A = cd.fwd_cumsum(a_g)[cd.gid]
    Cj = np.where(cd.e, c_g[cd.gid], 0.0)
    wdiag = r * (A - Cj)
    info = (X * wdiag[:, None]).T @ X - xbar.T @ xbar
    if not want_resid:
        return ll, grad, info
    # Efron score residuals
    p = X.shape[1]
    b_g = np.zeros((cd.G, p))
    e_g = np.zeros((cd.G, p))
    m_g = np.zeros((cd.G, p))
    for k in range(p):
        b_g[:, k] = np.bincount(eg, weights=xbar[:, k] * inv, minlength=cd.G)
        e_g[:, k] = np.bincount(eg, weights=c * xbar[:, k] * inv, minlength=cd.G)
        m_g[:, k] = np.bincount(eg, weights=xbar[:, k], minlength=cd.G)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_g = np.where(cd.d[:, None] > 0, m_g / np.maximum(cd.d, 1)[:, None], 0.0)
    B = cd.fwd_cumsum(b_g)[cd.gid]
    ev = cd.e[:, None]
    U = (ev * (X - m_g[cd.gid]) - r[:, None] * (X * A[:, None] - B)
         + ev * r[:, None] * (X * c_g[cd.gid][:, None] - e_g[cd.gid]))
    return ll, grad, info, U


def _newton(cd: _CoxData, p: int, tol: float = 1e-10, maxiter: int = 60):
    beta = np.zeros(p)
    ll, grad, info = _evaluate(cd, beta)
    for it in range(1, maxiter + 1):
        try:
            step = linalg.solve(info, grad, assume_a="pos")
        except (linalg.LinAlgError, ValueError):
            step = linalg.lstsq(info, grad)[0]
        halvings = 0
        while True:
            new = beta + step
            ll_new, grad_new, info_new = _evaluate(cd, new)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12 * abs(ll):
                break
            step = step / 2
            halvings += 1
            if halvings > 30:
                raise EstimationError("Cox Newton iterations failed to improve the partial likelihood")
        beta, ll_old, ll, grad, info = new, ll, ll_new, grad_new, info_new
        if np.max(np.abs(step)) < tol or abs(ll - ll_old) < tol * 1e-2 * (abs(ll) + 1) and \
                np.max(np.abs(step)) < 1e3 * tol:
            return beta, ll, it
    raise EstimationError(f"Cox fit did not converge in {maxiter} Newton steps")


def _codes(df: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, int]:
    if not cols:
        return np.zeros(len(df), dtype=np.int64), 1
    g = df.groupby(cols, sort=True, observed=True).ngroup().to_numpy().astype(np.int64)
    return g, int(g.max()) + 1 if len(g) else 0


def cox_ph(data, duration: str, event: str, *, covariates: Sequence[str],
           event_value: Any = None, strata=None, cluster: str | None = None, robust: bool = False,
           ties: str = "efron", alpha: float = 0.05, drop_collinear: bool = True,
           tol: float = 1e-10, bootstrap: int = 0, seed: int | None = None) -> dict[str, Any]:
    """Fit a (stratified) Cox model; returns a dict with the coefficient table and fit facts.

    ``event``: 0/1 column (``event_value=None``) or a status column whose value
    ``event_value`` is the event (all else censored). ``cluster``: cluster-robust sandwich;
    ``robust=True`` without ``cluster``: per-spell sandwich. Columns with no information
    (constant within strata, or collinear with earlier columns) are dropped when
    ``drop_collinear`` and listed under ``dropped``.

    ``bootstrap=B`` (with ``cluster`` or ``robust``): wild cluster score bootstrap
    (Kline & Santos 2012) of H0: coefficient of the first covariate = 0: restricted fit
    without it, cluster sums of the score residuals of the full model at the restricted
    estimate, nuisance directions projected out with the information there, Rademacher
    draws (see :func:`evaluering.survival.discrete.rademacher_score_test`).
    """
    if ties not in ("efron", "breslow"):
        raise EstimationError(f"unknown ties {ties!r} (expected 'efron' or 'breslow')")
    df = _as_frame(data)
    strata = _as_list(strata)
    covariates = list(covariates)
    _check_columns(df, dict.fromkeys([duration, event, *covariates, *strata, *([cluster] if cluster else [])]))
    time = pd.to_numeric(df[duration]).to_numpy(dtype=float)
    ev = event_codes(df[event], event_value, ()) == 1
    X = df[covariates].to_numpy(dtype=float) if covariates else np.zeros((len(df), 0))
    scode, n_strata = _codes(df, strata)
    X = X - X.mean(axis=0)  # centring: same coefficients, better conditioning
    cd = _CoxData(time, ev, X, scode, ties)
    if not cd.e.any():
        raise EstimationError("no events")
    names = list(covariates)
    dropped: list[str] = []
    if drop_collinear and X.shape[1]:
        _, _, info0 = _evaluate(cd, np.zeros(X.shape[1]))
        # scale of each column's information without strata/collinearity: events × variance
        ref = np.sqrt(max(int(cd.e.sum()), 1) * np.maximum(X.var(axis=0), 1e-300))
        keep: list[int] = []
        rank_prev = 0
        for j in range(X.shape[1]):
            if X[:, j].var() == 0 or info0[j, j] <= 1e-9 * ref[j] ** 2:
                dropped.append(names[j])
                continue
            idx = keep + [j]
            sub = info0[np.ix_(idx, idx)] / ref[idx][:, None] / ref[idx][None, :]
            rank = int(np.sum(linalg.eigvalsh(sub) > 1e-9))
            if rank > rank_prev:
                keep.append(j)
                rank_prev = rank
            else:
                dropped.append(names[j])
        if len(keep) < X.shape[1]:
            X = X[:, keep]
            names = [names[j] for j in keep]
            cd = _CoxData(time, ev, X, scode, ties)
    p = X.shape[1]
    if p == 0:
        raise EstimationError("no covariate with information left in the Cox model")
    beta, ll, iters = _newton(cd, p, tol=tol)
    _, grad, info, U = _evaluate(cd, beta, want_resid=True)
    Vm = linalg.inv(info)
    Vm = (Vm + Vm.T) / 2
    if cluster is not None or robust:
        if cluster is not None:
            cl, G = _codes(df, [cluster])
            cl = cl[cd.order]
            Uc = np.zeros((G, p))
            for k in range(p):
                Uc[:, k] = np.bincount(cl, weights=U[:, k], minlength=G)
        else:
            Uc, G = U, cd.n
        Dm = Uc @ Vm
        V = Dm.T @ Dm
        inference = "cluster" if cluster is not None else "robust"
    else:
        V, G, inference = Vm, None, "analytic"
    boot: dict[str, Any] = {}
    if bootstrap:
        if cluster is None and not robust:
            raise EstimationError("the score bootstrap needs cluster= (or robust=True)")
        if names[0] != covariates[0]:
            raise EstimationError(f"'{covariates[0]}' was dropped: nothing to test")
        if p > 1:
            cdr = _CoxData(time, ev, X[:, 1:], scode, ties)
            br, _, _ = _newton(cdr, p - 1, tol=tol)
        else:
            br = np.zeros(0)
        _, _, info0, U0 = _evaluate(cd, np.r_[0.0, br], want_resid=True)
        if cluster is not None:
            U0c = np.column_stack([np.bincount(cl, weights=U0[:, k], minlength=G) for k in range(p)])
        else:
            U0c = U0
        sc = U0c[:, 0]
        if p > 1:
            sc = sc - U0c[:, 1:] @ linalg.solve(info0[1:, 1:], info0[1:, 0], assume_a="pos")
        from evaluering.survival.discrete import rademacher_score_test

        boot = rademacher_score_test(sc, bootstrap, seed)
        boot["score_bootstrap_term"] = names[0]
    se = np.sqrt(np.diag(V))
    z = stats.norm.ppf(1 - alpha / 2)
    coef = pd.DataFrame({"term": names, "estimate": beta, "se": se,
                         "ci_low": beta - z * se, "ci_high": beta + z * se,
                         "p": 2 * stats.norm.sf(np.abs(beta / se)), "se_model": np.sqrt(np.diag(Vm))})
    coef["hazard_ratio"] = np.exp(coef["estimate"])
    coef["hr_ci_low"] = np.exp(coef["ci_low"])
    coef["hr_ci_high"] = np.exp(coef["ci_high"])
    return {"coefficients": coef, "loglik": ll, "iterations": iters, "n": cd.n,
            "n_events": int(cd.e.sum()), "n_strata": n_strata, "n_clusters": G,
            "inference": inference, "dropped": dropped, "vcov": V, "score_residuals_sorted": U,
            **boot}


def cox_did(data, duration: str = "varighed_uger", event: str = "status", *, treated: str,
            post: str | None, event_value: Any = "job", strata=None,
            covariates: Sequence[str] | None = None, time_effects=None, cluster: str | None = None,
            ties: str = "efron", alpha: float = 0.05, bootstrap: int = 0,
            seed: int | None = None) -> EstimateResult:
    """Cox proportional-hazards DiD: log hazard ratio of ``treated × post``.

    Parameters
    ----------
    data : person-level spells.
    duration, event : duration column and status column (``event_value`` = the exit of
        interest, e.g. ``'job'``; other exits are censored: a cause-specific hazard). For a
        0/1 event column pass ``event_value=None``.
    treated, post : 0/1 columns; main effects are entered too unless the strata absorb them
        (e.g. ``treated`` with municipality strata). ``post=None``: ``treated`` is already the
        exposure indicator (staggered starts).
    strata : stratification columns (separate baseline hazards, e.g. ``kommune_kode``).
    covariates : numeric columns.
    time_effects : categorical column(s) entered as dummies (calendar effects such as
        ``start_kvartal``; first level is the reference).
    cluster : cluster-robust (Lin–Wei) standard errors by this column.
    ties : ``'efron'`` (default) or ``'breslow'``.
    bootstrap, seed : Rademacher draws for a wild cluster score-bootstrap p-value of H0: no
        effect (``info['p_score_bootstrap']``); recommended with few treated municipalities,
        where the clustered sandwich is too small (see benchmarks/results/survival.md).

    Returns an EstimateResult with ``estimate`` = log hazard ratio, ``info['hazard_ratio']``
    and its interval, and the component ``coefficients``.
    """
    df = _as_frame(data)
    covs = _as_list(covariates)
    tcols = _as_list(time_effects)
    need = [treated, *([post] if post else []), *tcols]
    _check_columns(df, need)
    work = pd.DataFrame(index=df.index)
    names = []
    if post is not None:
        work["treated_x_post"] = df[treated].to_numpy(float) * df[post].to_numpy(float)
        work[treated] = df[treated].to_numpy(float)
        work[post] = df[post].to_numpy(float)
        names += ["treated_x_post", treated, post]
    else:
        work[treated] = df[treated].to_numpy(float)
        names.append(treated)
    key = names[0]
    for c in covs:
        work[c] = pd.to_numeric(df[c]).to_numpy(float)
        names.append(c)
    for c in tcols:
        dummies = pd.get_dummies(df[c], prefix=c, prefix_sep="=", drop_first=True, dtype=float)
        for d in dummies.columns:
            work[d] = dummies[d].to_numpy()
            names.append(d)
    keep_cols = [duration, event, *_as_list(strata), *([cluster] if cluster else [])]
    for c in dict.fromkeys(keep_cols):
        work[c] = df[c].to_numpy()
    fit = cox_ph(work, duration, event, covariates=names, event_value=event_value, strata=strata,
                 cluster=cluster, ties=ties, alpha=alpha, bootstrap=bootstrap, seed=seed)
    coef = fit["coefficients"]
    if key not in set(coef["term"]):
        raise EstimationError(f"'{key}' has no information once the strata are accounted for")
    row = coef.set_index("term").loc[key]
    est, se = float(row["estimate"]), float(row["se"])
    z = stats.norm.ppf(1 - alpha / 2)
    info = {
        "hazard_ratio": float(np.exp(est)), "hazard_ratio_ci_low": float(np.exp(est - z * se)),
        "hazard_ratio_ci_high": float(np.exp(est + z * se)), "ties": ties,
        "loglik": fit["loglik"], "iterations": fit["iterations"], "n_events": fit["n_events"],
        "n_strata": fit["n_strata"], "strata": ", ".join(_as_list(strata)),
        "time_effects": ", ".join(tcols), "cluster": cluster or "",
        "dropped": ", ".join(fit["dropped"]), "se_model": float(row["se_model"]),
        **{k: fit[k] for k in ("score_statistic", "p_score_bootstrap", "bootstrap_draws") if k in fit},
        "estimand": f"log hazard ratio of {key} (cause-specific hazard of '{event_value}')",
    }
    n_units = fit["n_clusters"] if cluster is not None else fit["n_strata"]
    return EstimateResult(method="cox_did", estimate=est, se=se, ci=(est - z * se, est + z * se),
                          p=float(row["p"]), n_obs=fit["n"], n_units=int(n_units),
                          inference=fit["inference"], alpha=alpha,
                          components={"coefficients": coef.drop(columns=[])}, info=info)
