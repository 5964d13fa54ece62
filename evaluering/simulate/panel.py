"""A municipality × period panel with staggered adoption and known group-time effects.

For estimator tests and calibration studies (coverage, size, power). The outcome is

    y_it = alpha_i + lambda_t + trend_i * (t - t_0) + tau_it + eps_it,
    eps_it ~ N(0, sigma^2 * mean(w) / w_i)

with unit effects ``alpha_i``, a common time path ``lambda_t`` (random walk plus a cycle),
optional unit-specific trends (``sd_trend``; 0 = parallel trends hold exactly), municipality
sizes ``w_i`` as weights (noise shrinks with size, as for a municipality mean), and the
treatment effect

    tau_it = effect * (1 + dynamic * e) * cohort_factor_g * (1 + heterogeneity * z_i)
    for e = t - g >= 0 (zero before adoption; no anticipation),

where ``g`` is the unit's cohort (first treated period), ``cohort_factor_g`` runs linearly
from ``1 - cohort_spread`` (earliest cohort) to ``1 + cohort_spread`` (latest) and
``z_i ~ N(0, 1)``. ``effect`` may also be a callable ``f(g, e) -> float`` replacing
``effect * (1 + dynamic * e) * cohort_factor_g``. ``effect=0`` (or ``no_effect=True``) is the
null.

The truth is the sample ATT: ``att_gt`` holds, for every cohort g and period t, the mean of
``tau_it`` over the cohort's units (``att``) and its size-weighted mean (``att_vaegtet``);
``att_e`` aggregates by event time e = t - g over the cohorts observed at e (unit-weighted and
size-weighted), and ``att`` is the mean of ``tau_it`` over all treated unit-periods.
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

__all__ = ["simulate_panel", "SimulatedPanel"]


class SimulatedPanel(NamedTuple):
    data: pd.DataFrame       # kommune_kode, periode, y, kohorte (0 = never), vaegt, behandlet, sand_effekt
    att_gt: pd.DataFrame     # kohorte, periode, e, att, att_vaegtet, n_enheder
    att_e: pd.DataFrame      # e, att, att_vaegtet, n_enheder
    att: float               # mean true effect over treated unit-periods
    params: dict


def _units(n_units: int, rng) -> tuple[np.ndarray, np.ndarray]:
    if n_units == 98:
        from evaluering.simulate.registers import kommune_vaegte

        kw = kommune_vaegte()
        return kw["kode"].to_numpy(dtype=object), kw["vaegt"].to_numpy() * 98
    w = np.exp(rng.normal(0, 1.0, n_units))
    return np.array([f"U{i + 1:03d}" for i in range(n_units)], dtype=object), w / w.mean()


def simulate_panel(n_units: int = 98, periods: int | Sequence[int] = tuple(range(2014, 2022)),
                   cohorts: Mapping[int, int | Sequence[str]] | None = None,
                   effect: float | Callable[[int, int], float] = 1.0, seed: int = 0, *,
                   dynamic: float = 0.25, cohort_spread: float = 0.3,
                   heterogeneity: float = 0.2, sigma: float = 1.0, sd_unit: float = 2.0,
                   sd_time: float = 0.5, sd_trend: float = 0.0,
                   no_effect: bool = False) -> SimulatedPanel:
    """Simulate a balanced panel with staggered cohorts and known ATT(g, t).

    Parameters
    ----------
    n_units: 98 uses the real municipality codes with AUK01-based sizes; otherwise units
        ``U001``… with log-normal sizes.
    periods: number of periods (labelled 1..n) or the integer period labels (increasing).
    cohorts: first treated period → number of units (drawn at random, without replacement)
        or a sequence of unit ids. Default: three cohorts at the 4th, 5th and 6th period with
        ``n_units // 10`` units each. Other units are never treated (``kohorte = 0``).
    effect: the effect at adoption (see the module docstring) or a callable ``f(g, e)``.
    seed: random seed (the result is a deterministic function of all arguments).
    """
    rng = np.random.default_rng([int(seed), 5151])
    per = np.arange(1, int(periods) + 1) if np.isscalar(periods) else np.asarray(periods, int)
    if per.size < 2 or np.any(np.diff(per) <= 0):
        raise ValueError("periods must be at least two increasing integers")
    units, w = _units(int(n_units), rng)
    n = units.size
    if cohorts is None:
        k = max(1, n // 10)
        if per.size < 6:
            raise ValueError("give cohorts explicitly when there are fewer than 6 periods")
        cohorts = {int(per[3]): k, int(per[4]): k, int(per[5]): k}
    cohort = np.zeros(n, int)
    free = list(range(n))
    pos = {u: i for i, u in enumerate(units)}
    for g, spec in sorted(cohorts.items()):
        if g not in set(per.tolist()):
            raise ValueError(f"cohort {g} is not one of the periods")
        if isinstance(spec, (int, np.integer)):
            if spec > len(free):
                raise ValueError("more treated units than units")
            pick = rng.choice(np.array(free), size=int(spec), replace=False)
        else:
            pick = np.array([pos[str(u)] for u in spec])
            if np.any(cohort[pick] != 0):
                raise ValueError("a unit is in two cohorts")
        cohort[pick] = g
        free = [i for i in free if i not in set(pick.tolist())]
    if not free:
        raise ValueError("no never-treated units left")

    gs = sorted(set(cohort[cohort > 0].tolist()))
    if len(gs) > 1:
        cf = {g: 1 - cohort_spread + 2 * cohort_spread * i / (len(gs) - 1) for i, g in enumerate(gs)}
    else:
        cf = {g: 1.0 for g in gs}
    T = per.size
    alpha = rng.normal(0, sd_unit, n)
    lam = np.cumsum(rng.normal(0, sd_time, T)) + 0.5 * np.sin(np.arange(T) * 2 * np.pi / 6)
    trend = rng.normal(0, sd_trend, n) if sd_trend > 0 else np.zeros(n)
    z = rng.normal(0, 1, n)
    eps = rng.normal(0, 1, (n, T)) * sigma / np.sqrt(w)[:, None]

    tt = np.broadcast_to(per[None, :], (n, T))
    gg = np.broadcast_to(cohort[:, None], (n, T))
    e = np.where(gg > 0, tt - gg, -10**6)
    treated = (gg > 0) & (e >= 0)
    tau = np.zeros((n, T))
    if not no_effect and (callable(effect) or effect != 0):
        for i in np.nonzero(cohort > 0)[0]:
            g = int(cohort[i])
            for j in np.nonzero(treated[i])[0]:
                ev = int(e[i, j])
                base = (effect(g, ev) if callable(effect)
                        else float(effect) * (1 + dynamic * ev) * cf[g])
                tau[i, j] = base * (1 + heterogeneity * z[i])
    y = alpha[:, None] + lam[None, :] + trend[:, None] * (tt - per[0]) + tau + eps

    data = pd.DataFrame({
        "kommune_kode": np.repeat(units, T),
        "periode": tt.ravel().astype(int),
        "y": y.ravel(),
        "kohorte": gg.ravel().astype(int),
        "vaegt": np.repeat(w, T),
        "behandlet": treated.ravel().astype(int),
        "sand_effekt": tau.ravel(),
    })
    tr = data[data.kohorte > 0].copy()
    tr["e"] = tr.periode - tr.kohorte
    tr["wt"] = tr.sand_effekt * tr.vaegt
    att_gt = tr.groupby(["kohorte", "periode"]).agg(
        e=("e", "first"), att=("sand_effekt", "mean"), s_wt=("wt", "sum"),
        s_w=("vaegt", "sum"), n_enheder=("y", "size")).reset_index()
    att_gt["att_vaegtet"] = att_gt.s_wt / att_gt.s_w
    att_gt = att_gt[["kohorte", "periode", "e", "att", "att_vaegtet", "n_enheder"]]
    post = tr[tr.e >= 0]
    att_e = post.groupby("e").agg(att=("sand_effekt", "mean"), s_wt=("wt", "sum"),
                                  s_w=("vaegt", "sum"), n_enheder=("y", "size")).reset_index()
    att_e["att_vaegtet"] = att_e.s_wt / att_e.s_w
    att_e = att_e[["e", "att", "att_vaegtet", "n_enheder"]]
    att = float(post.sand_effekt.mean()) if len(post) else 0.0
    params = dict(n_units=int(n), periods=per.tolist(), cohorts={int(g): int((cohort == g).sum())
                                                               for g in gs},
                  effect=None if callable(effect) else float(effect), seed=int(seed),
                  dynamic=dynamic, cohort_spread=cohort_spread, heterogeneity=heterogeneity,
                  sigma=sigma, sd_unit=sd_unit, sd_time=sd_time, sd_trend=sd_trend,
                  no_effect=bool(no_effect or (not callable(effect) and effect == 0)))
    return SimulatedPanel(data, att_gt.reset_index(drop=True), att_e, att, params)
