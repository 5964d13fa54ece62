"""Kaplan–Meier survival and Aalen–Johansen cumulative incidence, by group.

Both estimators are functions of a *risk table*: per group and distinct time ``t`` the number
at risk ``n_risk`` (spells with duration >= t), the number of exits to the event of interest
``n_event``, exits to competing causes ``n_competing`` and censorings ``n_censor`` at ``t``.
The risk table can be built from a person-level table (one row per spell, a duration and a
status column: :func:`risk_table`) or from an already aggregated cell table
(``uge, n_risiko, n_job, n_uddannelse, n_censur``: :func:`risk_table_from_cells`); the
estimates are identical because they only depend on these counts.

Conventions (shared with the outcomes layer and with lifelines): at risk at ``t`` are the
spells with duration >= t; a spell censored at ``t`` is still at risk at ``t``.

Formulas
--------
Kaplan–Meier: ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)``; Greenwood:
``Var S(t) = S(t)^2 * V(t)``, ``V(t) = sum_{t_j <= t} d_j / (n_j (n_j - d_j))``.
Confidence intervals: ``"log-log"`` (the exponential Greenwood interval of Kalbfleisch &
Prentice, the default of lifelines' KaplanMeierFitter):
``exp(-exp(log(-log S) ± z sqrt(V) / log S))``; ``"plain"``: ``S ± z S sqrt(V)`` clipped to
[0, 1].

Aalen–Johansen cumulative incidence of cause k: ``F_k(t) = sum_{t_j <= t} S(t_{j-1}) d_kj / n_j``
with ``S`` the all-cause Kaplan–Meier. Variance by the delta method treating the cause-specific
hazards at each time as multinomial proportions (Dinse & Larson 1986; Choudhury 2002):
``Var F_k(t) = sum_j { (F_k(t) - F_k(t_j))^2 d_j / (n_j (n_j - d_j))
+ S(t_{j-1})^2 d_kj (n_j - d_kj) / n_j^3 - 2 (F_k(t) - F_k(t_j)) S(t_{j-1}) d_kj / n_j^2 }``,
with a log(-log) interval on ``F_k``: ``F^exp(± z se / (F log F))``.

Restricted mean survival time to horizon ``h``: ``RMST(h) = int_0^h S(u) du`` with variance
``sum_{t_j <= h} A_j^2 d_j / (n_j (n_j - d_j))``, ``A_j = int_{t_j}^h S(u) du``
(Klein & Moeschberger, section 4.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from evaluering.errors import EstimationError
from evaluering.estimators._panel import as_frame
from evaluering.results import _freeze_frame, frame_records

COUNT_COLUMNS = ("n_risk", "n_event", "n_competing", "n_censor")


def _as_list(by) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return list(by)


_as_frame = as_frame  # the estimators' shared input convention


def _check_columns(df: pd.DataFrame, cols: Iterable[str]) -> None:
    for c in cols:
        if c not in df.columns:
            raise EstimationError(f"column '{c}' is not in the data")
        if df[c].isna().any():
            raise EstimationError(f"column '{c}' has {int(df[c].isna().sum())} missing value(s)")


def event_codes(status: pd.Series, event=None, competing=()) -> np.ndarray:
    """0 = censored, 1 = event of interest, 2 = competing exit, from a status column.

    ``status`` may hold labels (``'job'``, ``'uddannelse'``, ``'censureret'``) or numbers.
    ``event``: the value(s) meaning the event of interest; ``None`` with a numeric/boolean
    status means "non-zero is an event". ``competing``: value(s) that are competing exits.
    Everything else is censoring.
    """
    comp = [competing] if isinstance(competing, (str, int, float)) else list(competing or ())
    if event is None:
        if not (pd.api.types.is_numeric_dtype(status) or pd.api.types.is_bool_dtype(status)):
            raise EstimationError("a text status column needs event=<value of the event of interest>")
        s = status.to_numpy()
        code = np.where(s.astype(float) != 0, 1, 0)
        if comp:
            code = np.where(np.isin(s, comp), 2, code)
        return code.astype(np.int8)
    ev = [event] if isinstance(event, (str, int, float, bool)) else list(event)
    if set(ev) & set(comp):
        raise EstimationError("a status value cannot be both the event and a competing exit")
    s = status.to_numpy()
    code = np.zeros(len(s), dtype=np.int8)
    code[np.isin(s, ev)] = 1
    if comp:
        code[np.isin(s, comp)] = 2
    return code


def risk_table(data, *, duration: str = "varighed_uger", status: str = "status",
               event: Any = "job", competing: Any = ("uddannelse",), by=None) -> pd.DataFrame:
    """Risk table from a person-level table (one row per spell).

    Returns columns ``[*by, time, n_risk, n_event, n_competing, n_censor]``, one row per group
    and distinct observed duration, sorted by group and time.
    """
    df = _as_frame(data)
    by = _as_list(by)
    _check_columns(df, [duration, status, *by])
    t = pd.to_numeric(df[duration])
    if (t < 0).any():
        raise EstimationError(f"column '{duration}' has negative durations")
    code = event_codes(df[status], event, competing)
    work = pd.DataFrame({c: df[c].to_numpy() for c in by})
    work["time"] = t.to_numpy()
    work["n_event"] = (code == 1).astype(np.int64)
    work["n_competing"] = (code == 2).astype(np.int64)
    work["n_censor"] = (code == 0).astype(np.int64)
    work["n_exit"] = 1
    g = work.groupby(by + ["time"], sort=True, observed=True)[
        ["n_event", "n_competing", "n_censor", "n_exit"]].sum().reset_index()
    # at risk at t: spells with duration >= t = reverse cumulative sum within the group
    if by:
        rev = g.iloc[::-1].groupby(by, sort=False, observed=True)["n_exit"].cumsum()
        g["n_risk"] = rev.iloc[::-1].to_numpy()
    else:
        g["n_risk"] = g["n_exit"].to_numpy()[::-1].cumsum()[::-1]
    return g[by + ["time", *COUNT_COLUMNS]]


def risk_table_from_cells(cells, *, duration: str = "uge", at_risk: str = "n_risiko",
                          events: str = "n_job", competing: str | Sequence[str] | None = "n_uddannelse",
                          censored: str | None = "n_censur", by=None) -> pd.DataFrame:
    """Risk table from an aggregated discrete-time table (one row per cell and week).

    Cells are summed over everything not in ``by``. ``censored=None`` derives censorings from
    the drop in the number at risk to the next week (then each cell must list every week at
    which it has spells at risk). Weeks with no exit are dropped (they do not change any
    estimate), so the result equals :func:`risk_table` on the person-level data.
    """
    df = _as_frame(cells)
    by = _as_list(by)
    comp = [] if competing is None else _as_list(competing)
    cols = [duration, at_risk, events, *comp, *([censored] if censored else []), *by]
    _check_columns(df, cols)
    work = pd.DataFrame({c: df[c].to_numpy() for c in by})
    work["time"] = pd.to_numeric(df[duration]).to_numpy()
    work["n_risk"] = df[at_risk].to_numpy(dtype=np.int64)
    work["n_event"] = df[events].to_numpy(dtype=np.int64)
    work["n_competing"] = (df[comp].to_numpy(dtype=np.int64).sum(axis=1) if comp
                           else np.zeros(len(df), dtype=np.int64))
    if censored:
        work["n_censor"] = df[censored].to_numpy(dtype=np.int64)
    g = work.groupby(by + ["time"], sort=True, observed=True)[
        [c for c in COUNT_COLUMNS if c in work.columns]].sum().reset_index()
    if not censored:
        nxt = (g.groupby(by, sort=False, observed=True)["n_risk"].shift(-1) if by
               else g["n_risk"].shift(-1)).fillna(0).to_numpy(dtype=np.int64)
        # the next listed week must be t+1 for the difference to be this week's exits
        g["n_censor"] = g["n_risk"].to_numpy() - nxt - g["n_event"].to_numpy() - g["n_competing"].to_numpy()
        if (g["n_censor"] < 0).any():
            raise EstimationError("the number at risk rises between weeks: cannot derive censorings")
    if ((g["n_event"] + g["n_competing"] + g["n_censor"]) > g["n_risk"]).any():
        raise EstimationError("more exits than spells at risk in some week")
    g = g[(g["n_event"] + g["n_competing"] + g["n_censor"]) > 0]
    return g[by + ["time", *COUNT_COLUMNS]].reset_index(drop=True)


def _group_ids(tab: pd.DataFrame, by: list[str]) -> np.ndarray:
    if not by:
        return np.zeros(len(tab), dtype=np.int64)
    return tab.groupby(by, sort=False, observed=True).ngroup().to_numpy()


def _gcumsum(x: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group (rows sorted by group; inf-safe)."""
    return pd.Series(x, dtype=float).groupby(gid, sort=False).cumsum().to_numpy()


def _gshift(x: np.ndarray, gid: np.ndarray, fill: float) -> np.ndarray:
    """Previous row's value within the group (``fill`` at a group's first row)."""
    out = np.empty_like(x, dtype=float)
    out[0] = fill
    out[1:] = x[:-1]
    start = np.r_[True, gid[1:] != gid[:-1]]
    out[start] = fill
    return out


def _ended(g: pd.DataFrame, kind: str) -> bool:
    """True when the curve is constant after its last time: KM has reached 0, or (AJ)
    nobody is left at risk after the last time (all remaining spells exited)."""
    if len(g) == 0:
        return False
    last = g.iloc[-1]
    if kind == "km":
        return bool(last["estimate"] == 0)
    return bool(last["n_risk"] == last["n_event"] + last["n_competing"])


def _loglog_ci(p: np.ndarray, v: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval exp(-exp(log(-log p) ∓ z sqrt(v)/log p)) for p in (0,1); v = Var(log p)... see caller."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.log(p)
        a = np.exp(-np.exp(np.log(-lp) - z * np.sqrt(v) / lp))
        b = np.exp(-np.exp(np.log(-lp) + z * np.sqrt(v) / lp))
    return a, b


@dataclass(frozen=True)
class SurvivalCurves:
    """Kaplan–Meier curves (``kind='km'``) or Aalen–Johansen cumulative incidence (``'aj'``).

    ``table``: one row per group and time with the risk-table counts, ``estimate`` (survival
    for KM, cumulative incidence for AJ), ``se``, ``ci_low``, ``ci_high``.
    """

    kind: str
    table: pd.DataFrame
    by: tuple[str, ...] = ()
    alpha: float = 0.05
    ci_method: str = "log-log"
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", _freeze_frame(self.table))
        object.__setattr__(self, "by", tuple(self.by))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    def summary(self) -> pd.DataFrame:
        """The full curve table (a copy)."""
        return self.table.copy()

    def groups(self) -> pd.DataFrame:
        """The distinct groups (one row each) in table order."""
        if not self.by:
            return pd.DataFrame(index=[0])
        return self.table[list(self.by)].drop_duplicates().reset_index(drop=True)

    def at(self, times: Sequence[float]) -> pd.DataFrame:
        """The step function (and its se/CI) at given times, per group.

        Before the first listed time the curve is at its start (1 for KM, 0 for AJ, se 0);
        beyond the group's largest observed time it is undefined (NaN).
        """
        times = np.asarray(list(times), dtype=float)
        start = 1.0 if self.kind == "km" else 0.0
        rows = []
        tab = self.table
        for key, g in (tab.groupby(list(self.by), sort=False, observed=True) if self.by
                       else [((), tab)]):
            key = key if isinstance(key, tuple) else (key,)
            tt = g["time"].to_numpy(dtype=float)
            idx = np.searchsorted(tt, times, side="right") - 1
            nxt = np.searchsorted(tt, times, side="left")  # first listed time >= t
            nr = g["n_risk"].to_numpy()
            tmax = tt.max() if len(tt) else -np.inf
            for t, i, j in zip(times, idx, nxt):
                rec = dict(zip(self.by, key))
                rec["time"] = t
                # spells still at risk at t (duration >= t), for disclosure control
                rec["n_risk"] = int(nr[j]) if j < len(nr) else 0
                if t > tmax and not _ended(g, self.kind):
                    rec.update(estimate=np.nan, se=np.nan, ci_low=np.nan, ci_high=np.nan)
                elif t > tmax:  # every spell has exited: the curve stays at its last value
                    r = g.iloc[-1]
                    rec.update(estimate=r["estimate"], se=r["se"], ci_low=r["ci_low"],
                               ci_high=r["ci_high"])
                elif i < 0:
                    rec.update(estimate=start, se=0.0, ci_low=start, ci_high=start)
                else:
                    r = g.iloc[i]
                    rec.update(estimate=r["estimate"], se=r["se"], ci_low=r["ci_low"],
                               ci_high=r["ci_high"])
                rows.append(rec)
        return pd.DataFrame(rows)

    def rmst(self, horizon: float) -> pd.DataFrame:
        """Restricted mean survival time up to ``horizon`` with its variance, per group (KM only).

        A group whose largest observed time is below ``horizon`` gets NaN.
        """
        if self.kind != "km":
            raise EstimationError("RMST is defined for Kaplan–Meier curves")
        z = stats.norm.ppf(1 - self.alpha / 2)
        rows = []
        tab = self.table
        for key, g in (tab.groupby(list(self.by), sort=False, observed=True) if self.by
                       else [((), tab)]):
            key = key if isinstance(key, tuple) else (key,)
            rec = dict(zip(self.by, key))
            tt = g["time"].to_numpy(dtype=float)
            if len(tt) == 0 or (tt.max() < horizon and not _ended(g, "km")):
                rec.update(horizon=horizon, rmst=np.nan, se=np.nan, ci_low=np.nan, ci_high=np.nan,
                           n=int(g["n_risk"].iloc[0]) if len(g) else 0)
                rows.append(rec)
                continue
            S = g["estimate"].to_numpy(dtype=float)
            keep = tt <= horizon
            tt, S = tt[keep], S[keep]
            d = g["n_event"].to_numpy(dtype=float)[keep]
            n = g["n_risk"].to_numpy(dtype=float)[keep]
            # area under the step function: S(t_j) holds on [t_j, t_{j+1})
            knots = np.r_[tt, horizon]  # (S is 0 after the last time when the curve ended)
            seg = S * np.diff(knots)
            area0 = (tt[0] - 0.0) * 1.0 if tt[0] > 0 else 0.0
            total = area0 + seg.sum()
            # A_j = area from t_j to horizon
            A = seg[::-1].cumsum()[::-1]
            with np.errstate(divide="ignore", invalid="ignore"):
                term = np.where(d > 0, A ** 2 * d / (n * (n - d)), 0.0)
            var = float(np.sum(term[np.isfinite(term)]))
            se = np.sqrt(var)
            rec.update(horizon=horizon, rmst=total, se=se, ci_low=total - z * se,
                       ci_high=total + z * se, n=int(g["n_risk"].iloc[0]))
            rows.append(rec)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "by": list(self.by), "alpha": self.alpha,
                "ci_method": self.ci_method, "table": frame_records(self.table),
                "info": dict(self.info)}

    def plot(self, ax=None, ci: bool = True):
        """Step curves per group with (optional) confidence bands; returns the Axes."""
        from evaluering.survival.plots import plot_curves

        return plot_curves(self, ax=ax, ci=ci)


def _km_columns(tab: pd.DataFrame, gid: np.ndarray, z: float, ci_method: str) -> pd.DataFrame:
    n = tab["n_risk"].to_numpy(dtype=float)
    d = tab["n_event"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logS = _gcumsum(np.log1p(-d / n), gid)
        S = np.exp(logS)
        gw = _gcumsum(np.where(d > 0, d / (n * (n - d)), 0.0), gid)
    S = np.where(np.isfinite(logS), S, 0.0)
    with np.errstate(invalid="ignore"):
        se = np.where(S == 0, 0.0, S * np.sqrt(gw))
    if ci_method == "log-log":
        lo, hi = _loglog_ci(S, gw, z)
        lo = np.where(S >= 1, 1.0, np.where(S <= 0, 0.0, lo))
        hi = np.where(S >= 1, 1.0, np.where(S <= 0, 0.0, hi))
    elif ci_method == "plain":
        lo = np.clip(S - z * se, 0.0, 1.0)
        hi = np.clip(S + z * se, 0.0, 1.0)
    else:
        raise EstimationError(f"unknown ci_method {ci_method!r} (expected 'log-log' or 'plain')")
    out = tab.copy()
    out["estimate"], out["se"], out["ci_low"], out["ci_high"] = S, se, lo, hi
    out["var_greenwood"] = gw
    return out


def kaplan_meier_table(tab: pd.DataFrame, *, by=None, alpha: float = 0.05,
                       ci_method: str = "log-log") -> SurvivalCurves:
    """Kaplan–Meier of the event of interest from a risk table (competing exits = censored)."""
    by = _as_list(by)
    tab = tab.sort_values(by + ["time"], kind="mergesort").reset_index(drop=True)
    if len(tab) == 0:
        raise EstimationError("no spells")
    z = stats.norm.ppf(1 - alpha / 2)
    out = _km_columns(tab, _group_ids(tab, by), z, ci_method)
    return SurvivalCurves("km", out, tuple(by), alpha, ci_method,
                          {"estimator": "kaplan-meier", "variance": "greenwood"})


def kaplan_meier(data, *, duration: str = "varighed_uger", status: str = "status", event: Any = "job",
                 by=None, alpha: float = 0.05, ci_method: str = "log-log") -> SurvivalCurves:
    """Kaplan–Meier survival (time to ``event``; every other exit counts as censoring).

    ``data``: person-level table (one row per spell). For an aggregated cell table use
    :func:`kaplan_meier_cells`. ``by``: group columns (e.g. ``["treated", "post"]``).
    """
    tab = risk_table(data, duration=duration, status=status, event=event, competing=(), by=by)
    return kaplan_meier_table(tab, by=by, alpha=alpha, ci_method=ci_method)


def kaplan_meier_cells(cells, *, duration: str = "uge", at_risk: str = "n_risiko",
                       events: str = "n_job", competing="n_uddannelse", censored: str | None = "n_censur",
                       by=None, alpha: float = 0.05, ci_method: str = "log-log") -> SurvivalCurves:
    """Kaplan–Meier from an aggregated discrete-time cell table (same result as person level)."""
    tab = risk_table_from_cells(cells, duration=duration, at_risk=at_risk, events=events,
                                competing=competing, censored=censored, by=by)
    # for KM, competing exits are censorings of the event of interest
    tab = tab.assign(n_censor=tab["n_censor"] + tab["n_competing"], n_competing=0)
    return kaplan_meier_table(tab, by=by, alpha=alpha, ci_method=ci_method)


def aalen_johansen_table(tab: pd.DataFrame, *, by=None, alpha: float = 0.05) -> SurvivalCurves:
    """Aalen–Johansen cumulative incidence of the event of interest from a risk table."""
    by = _as_list(by)
    tab = tab.sort_values(by + ["time"], kind="mergesort").reset_index(drop=True)
    if len(tab) == 0:
        raise EstimationError("no spells")
    gid = _group_ids(tab, by)
    z = stats.norm.ppf(1 - alpha / 2)
    n = tab["n_risk"].to_numpy(dtype=float)
    dk = tab["n_event"].to_numpy(dtype=float)
    dall = dk + tab["n_competing"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logS = _gcumsum(np.log1p(-dall / n), gid)
    S = np.where(np.isfinite(logS), np.exp(logS), 0.0)
    S_prev = _gshift(S, gid, 1.0)
    F = _gcumsum(S_prev * dk / n, gid)
    # delta-method variance, expanded so every term is a cumulative sum:
    # sum_j (F - F_j)^2 a_j = F^2 Σa - 2F Σ F_j a_j + Σ F_j^2 a_j, etc.
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(dall > 0, dall / (n * (n - dall)), 0.0)
    a = np.where(np.isfinite(a), a, 0.0)  # all remaining exit (n == d): no further variation
    b = S_prev * dk / n ** 2
    c = S_prev ** 2 * dk * (n - dk) / n ** 3
    A0, A1, A2 = _gcumsum(a, gid), _gcumsum(F * a, gid), _gcumsum(F ** 2 * a, gid)
    B0, B1 = _gcumsum(b, gid), _gcumsum(F * b, gid)
    C0 = _gcumsum(c, gid)
    var = F ** 2 * A0 - 2 * F * A1 + A2 + C0 - 2 * (F * B0 - B1)
    var = np.maximum(var, 0.0)
    se = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        lF = np.log(F)
        lo = F ** np.exp(-z * se / (F * lF))
        hi = F ** np.exp(z * se / (F * lF))
    inside = (F > 0) & (F < 1)
    lo = np.where(inside, lo, F)
    hi = np.where(inside, hi, F)
    out = tab.copy()
    out["estimate"], out["se"], out["ci_low"], out["ci_high"] = F, se, lo, hi
    out["survival_all"] = S
    return SurvivalCurves("aj", out, tuple(by), alpha, "log-log",
                          {"estimator": "aalen-johansen", "variance": "delta method (Choudhury 2002)"})


def aalen_johansen(data, *, duration: str = "varighed_uger", status: str = "status", event: Any = "job",
                   competing: Any = ("uddannelse",), by=None, alpha: float = 0.05) -> SurvivalCurves:
    """Cumulative incidence of ``event`` with ``competing`` exits (others censored), by group."""
    tab = risk_table(data, duration=duration, status=status, event=event, competing=competing, by=by)
    return aalen_johansen_table(tab, by=by, alpha=alpha)


def aalen_johansen_cells(cells, *, duration: str = "uge", at_risk: str = "n_risiko",
                         events: str = "n_job", competing="n_uddannelse", censored: str | None = "n_censur",
                         by=None, alpha: float = 0.05) -> SurvivalCurves:
    """Aalen–Johansen cumulative incidence from an aggregated cell table."""
    tab = risk_table_from_cells(cells, duration=duration, at_risk=at_risk, events=events,
                                competing=competing, censored=censored, by=by)
    return aalen_johansen_table(tab, by=by, alpha=alpha)
