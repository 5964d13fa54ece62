"""Staggered DiD on survival summaries, and the 2 × 2 DiD of Kaplan–Meier shares.

Survival outcomes enter the panel estimators (Callaway–Sant'Anna, BJS imputation) as
per-cell summaries: for every municipality × start period, the Kaplan–Meier curve of the
spells that started there gives the share in job after 13/26/52 weeks (``1 - S(t)``, or the
Aalen–Johansen cumulative incidence when education is treated as a competing exit) and the
restricted mean weeks to job up to 52 weeks (RMST). The resulting municipality × period
panel is fed to the panel estimators with municipality clustering. Counts per cell (spells,
spells still at risk at each week) are kept for disclosure control.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from evaluering.errors import EstimationError
from evaluering.results import EstimateResult
from evaluering.survival.km import (_as_frame, _as_list, _check_columns, aalen_johansen,
                                    kaplan_meier)


def survival_panel(data, *, unit: str = "kommune_kode", time: str = "start_kvartal",
                   duration: str = "varighed_uger", status: str = "status", event: Any = "job",
                   competing: Any = ("uddannelse",), weeks: Sequence[int] = (13, 26, 52),
                   horizon: float = 52, share: str = "km", carry: Sequence[str] = ()) -> pd.DataFrame:
    """Per (unit, time) cell: share in job at ``weeks`` and RMST to ``horizon``, with counts.

    Columns: ``unit, time, n_spells, job_<w>, job_<w>_se, n_risk_<w>`` for each week ``w``,
    ``rmst_<h>``, ``rmst_<h>_se`` and the ``carry`` columns (e.g. the cohort column; they must
    be constant within cells). ``share='km'``: share in job = 1 - KM (other exits censored);
    ``share='aj'``: Aalen–Johansen cumulative incidence of job with ``competing`` exits.
    A value is NaN where the cell's follow-up ends before the week / horizon.
    The RMST is always from the KM of the job exit (restricted mean weeks not yet in job).
    """
    df = _as_frame(data)
    carry = _as_list(carry)
    _check_columns(df, [unit, time, duration, status, *carry])
    by = [unit, time]
    km = kaplan_meier(df, duration=duration, status=status, event=event, by=by)
    out = df.groupby(by, sort=True, observed=True).size().rename("n_spells").reset_index()
    if carry:
        nun = df.groupby(by, observed=True)[carry].nunique()
        if (nun > 1).any().any():
            bad = nun.columns[(nun > 1).any()].tolist()
            raise EstimationError(f"column(s) {bad} vary within {unit} × {time} cells")
        out = out.merge(df.groupby(by, observed=True)[carry].first().reset_index(), on=by)
    if share == "km":
        at = km.at(weeks)
        at = at.assign(value=1 - at["estimate"])
    elif share == "aj":
        aj = aalen_johansen(df, duration=duration, status=status, event=event, competing=competing, by=by)
        at = aj.at(weeks).assign(value=lambda x: x["estimate"])
    else:
        raise EstimationError(f"share must be 'km' or 'aj', got {share!r}")
    for w in weeks:
        a = at[at["time"] == float(w)][by + ["value", "se", "n_risk"]].rename(
            columns={"value": f"job_{w}", "se": f"job_{w}_se", "n_risk": f"n_risk_{w}"})
        out = out.merge(a, on=by, how="left")
    h = int(horizon) if float(horizon).is_integer() else horizon
    rm = km.rmst(horizon)[by + ["rmst", "se"]].rename(columns={"rmst": f"rmst_{h}", "se": f"rmst_{h}_se"})
    return out.merge(rm, on=by, how="left")


def staggered_survival_did(panel: pd.DataFrame, outcome: str, *, unit: str = "kommune_kode",
                           time: str = "start_kvartal", cohort: str = "kohorte",
                           estimator: str = "cs", **kwargs) -> EstimateResult:
    """Feed one survival summary of :func:`survival_panel` to CS or BJS, clustered by unit.

    Periods in which no unit has the outcome (too short follow-up) are dropped, then units that
    still lack it in some period (recorded in ``info['dropped_units']``), so the panel stays
    balanced. ``kwargs`` go to the estimator. The result's ``info`` records the
    outcome and the dropped periods.
    """
    _check_columns(panel, [unit, time, cohort])
    if outcome not in panel.columns:
        raise EstimationError(f"column '{outcome}' is not in the panel")
    p = panel[[unit, time, cohort, outcome] + [c for c in kwargs.get("covariates") or []]].copy()
    # periods where no unit has the outcome (follow-up too short everywhere) go first, then
    # units still lacking it in some period (or lacking a period), to keep the panel balanced
    has = p.groupby(time)[outcome].apply(lambda s: s.notna().any())
    dropped_periods = [v for v in has.index[~has]]
    p = p[p[time].isin(has.index[has])]
    n_t = p[time].nunique()
    agg = p.groupby(unit).agg(_ok=(outcome, lambda v: bool(v.notna().all())), _nt=(time, "nunique"))
    ok_unit = agg["_ok"] & (agg["_nt"] == n_t)
    dropped_units = [v for v in ok_unit.index[~ok_unit]]
    p = p[p[unit].isin(ok_unit.index[ok_unit])]
    if p[time].nunique() < 2 or p[unit].nunique() < 2:
        raise EstimationError(f"too few periods/units with '{outcome}' observed")
    if estimator == "cs":
        from evaluering.estimators.cs import callaway_santanna

        kwargs.setdefault("cluster", None)  # panel: the influence function is per unit already
        res = callaway_santanna(p, outcome, unit, time, cohort, **kwargs)
    elif estimator == "bjs":
        from evaluering.estimators.bjs import bjs_imputation

        kwargs.setdefault("cluster", unit)
        res = bjs_imputation(p, outcome, unit, time, cohort, **kwargs)
    else:
        raise EstimationError(f"estimator must be 'cs' or 'bjs', got {estimator!r}")
    info = dict(res.info)
    info.update(outcome=outcome, dropped_periods=", ".join(str(d) for d in dropped_periods),
                dropped_units=", ".join(str(d) for d in dropped_units))
    return EstimateResult(method=res.method, estimate=res.estimate, se=res.se, ci=res.ci, p=res.p,
                          n_obs=res.n_obs, n_units=res.n_units, inference=res.inference,
                          alpha=res.alpha, components=dict(res.components), info=info)


def km_did_share(data, *, treated: str = "treated", post: str = "post",
                 duration: str = "varighed_uger", status: str = "status", event: Any = "job",
                 weeks: Sequence[int] | None = None, headline_week: int = 26,
                 alpha: float = 0.05) -> EstimateResult:
    """2 × 2 DiD of the share in job ``1 - S(t)`` by week from four Kaplan–Meier curves.

    ``att(t) = [F_11(t) - F_10(t)] - [F_01(t) - F_00(t)]`` with ``F = 1 - S`` for
    (treated, post) groups; variance = sum of the four Greenwood variances (independent
    spells). This is descriptive: it ignores clustering within municipalities (use the
    cell-level :func:`staggered_survival_did` or the hazard models for inference).
    Component ``event``: ``e`` (week), ``att``, ``se``, ``ci_low``, ``ci_high`` and the four
    groups' shares; the headline is ``att(headline_week)``.
    """
    df = _as_frame(data)
    km = kaplan_meier(df, duration=duration, status=status, event=event, by=[treated, post])
    tmax = int(df[duration].max())
    weeks = list(range(0, tmax + 1)) if weeks is None else list(weeks)
    if headline_week not in weeks:
        weeks = sorted(set(weeks) | {headline_week})
    at = km.at(weeks)
    z = stats.norm.ppf(1 - alpha / 2)
    parts = {}
    for tr in (0, 1):
        for po in (0, 1):
            a = at[(at[treated] == tr) & (at[post] == po)].set_index("time")
            if a.empty:
                raise EstimationError(f"no spells with {treated}={tr}, {post}={po}")
            parts[(tr, po)] = a
    F = {k: 1 - v["estimate"] for k, v in parts.items()}
    att = (F[(1, 1)] - F[(1, 0)]) - (F[(0, 1)] - F[(0, 0)])
    se = np.sqrt(sum(v["se"] ** 2 for v in parts.values()))
    ev = pd.DataFrame({"e": np.asarray(weeks), "att": att.to_numpy(), "se": se.to_numpy()})
    ev["ci_low"] = ev["att"] - z * ev["se"]
    ev["ci_high"] = ev["att"] + z * ev["se"]
    for (tr, po), f in F.items():
        ev[f"share_{treated}{tr}_{post}{po}"] = f.to_numpy()
        ev[f"n_risk_{treated}{tr}_{post}{po}"] = parts[(tr, po)]["n_risk"].to_numpy()
    ev = ev.dropna(subset=["att"])
    h = ev[ev["e"] == headline_week]
    if h.empty:
        raise EstimationError(f"no follow-up to week {headline_week} in some group")
    est, s = float(h["att"].iloc[0]), float(h["se"].iloc[0])
    return EstimateResult(method="km_did_share", estimate=est, se=s, ci=(est - z * s, est + z * s),
                          p=float(2 * stats.norm.sf(abs(est / s))) if s > 0 else float("nan"),
                          n_obs=len(df), n_units=len(df), inference="analytic", alpha=alpha,
                          components={"event": ev},
                          info={"headline_week": headline_week, "variance": "greenwood, independent spells"})
