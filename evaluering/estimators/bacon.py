"""Goodman-Bacon (2021) decomposition of the TWFE DiD coefficient.

For a balanced panel with a binary, absorbing treatment, the TWFE coefficient of
``y ~ D | unit + time`` equals a weighted average of all 2×2 DiD comparisons between timing
groups (Goodman-Bacon 2021, Theorem 1):

* treated vs never treated (``k`` vs ``U``),
* earlier vs later treated (``k`` treated, ``l`` not yet treated: window before ``l``'s date),
* later vs earlier treated (``l`` treated, ``k`` already treated as control: window from
  ``k``'s date on) — the "forbidden" comparisons that bias TWFE under dynamic effects,
* treated vs always treated (units treated from the first period act as controls).

With group shares ``n_k`` (fraction of units) and treated-time shares ``D̄_k`` (fraction of
periods with ``D = 1``) the weights are (paper eq. 10)

``s_kU = (n_k + n_U)² · n_kU(1 - n_kU) · D̄_k(1 - D̄_k) / V̂^D``,
``s^k_kl = ((n_k + n_l)(1 - D̄_l))² · n_kl(1 - n_kl) · (D̄_k - D̄_l)/(1 - D̄_l) · (1 - D̄_k)/(1 - D̄_l) / V̂^D``,
``s^l_kl = ((n_k + n_l) D̄_k)² · n_kl(1 - n_kl) · D̄_l/D̄_k · (D̄_k - D̄_l)/D̄_k / V̂^D``,

with ``n_ab = n_a/(n_a + n_b)`` and ``V̂^D`` the mean square of the two-way demeaned treatment
dummy; they sum to one. The decomposition is for the unweighted regression without
covariates. The result's ``estimate`` is the TWFE coefficient (equal to ``Σ s·β̂``) with the
TWFE cluster-robust standard error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluering.errors import EstimationError
from evaluering.estimators.did import twfe
from evaluering.estimators.event_study import staggered_frame
from evaluering.results import EstimateResult

__all__ = ["bacon_decomposition", "BaconResult"]

TYPES = ("treated_vs_never", "earlier_vs_later", "later_vs_earlier", "treated_vs_always")


@dataclass(frozen=True)
class BaconResult(EstimateResult):
    """EstimateResult whose ``summary()`` is per comparison type and ``plot()`` a scatter."""

    def summary(self) -> pd.DataFrame:
        """Per comparison type: total weight, weighted average 2×2 estimate, number of pairs."""
        comp = self.components["comparisons"]
        rows = []
        for typ in TYPES:
            c = comp[comp["type"] == typ]
            if len(c) == 0:
                continue
            wsum = float(c["weight"].sum())
            rows.append({"type": typ, "weight": wsum, "n_comparisons": len(c),
                         "estimate": float((c["weight"] * c["estimate"]).sum() / wsum)
                         if wsum > 0 else np.nan})
        out = pd.DataFrame(rows)
        total = pd.DataFrame([{"type": "twfe (total)", "weight": float(comp["weight"].sum()),
                               "n_comparisons": len(comp), "estimate": self.estimate}])
        return pd.concat([out, total], ignore_index=True)

    def plot(self, ax=None, component: str | None = None):
        """2×2 estimates against their weights, by comparison type (Goodman-Bacon's Figure)."""
        from evaluering.plotting import _axes

        ax = _axes(ax)
        comp = self.components["comparisons"]
        for i, typ in enumerate(TYPES):
            c = comp[comp["type"] == typ]
            if len(c):
                ax.scatter(c["weight"], c["estimate"], label=typ.replace("_", " "), color=f"C{i}")
        ax.axhline(self.estimate, color="grey", ls="--", lw=0.8, label="TWFE")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel("weight")
        ax.set_ylabel("2×2 DiD estimate")
        ax.set_title("Goodman-Bacon decomposition")
        ax.legend(fontsize=8)
        return ax


def bacon_decomposition(data, y: str, unit: str, time: str, cohort: str) -> BaconResult:
    """All 2×2 comparisons behind the TWFE coefficient, with their weights.

    Requires a balanced panel (every unit observed once in every period). Components:
    ``comparisons`` (type, treated, control, estimate, weight); ``info["identity_gap"]`` is
    ``Σ s·β̂ - β̂_TWFE`` (numerically zero).
    """
    df = staggered_frame(data, y, unit, time, cohort)
    times = np.sort(df["_t"].unique())
    T = len(times)
    units = df[unit].unique()
    if len(df) != len(units) * T or df.duplicated([unit, "_t"]).any():
        raise EstimationError("the Bacon decomposition needs a balanced panel: every unit "
                              "observed exactly once in every period")
    tmin = times[0]
    # cohort per unit; always treated (treated from the first period) get cohort = tmin
    ucoh = df.groupby(unit, sort=False)["_cohort"].first()
    ucoh = ucoh.where(~(np.isfinite(ucoh) & (ucoh <= tmin)), tmin)
    N = len(ucoh)
    groups = sorted(set(ucoh.tolist()), key=lambda c: (np.isinf(c), c))
    n = {c: float((ucoh == c).sum()) / N for c in groups}
    dbar = {c: (float(np.mean(times >= c)) if np.isfinite(c) else 0.0) for c in groups}
    if len([c for c in groups if 0 < dbar[c] <= 1]) == 0:
        raise EstimationError("no treated units")
    # group × period mean outcomes
    ymat = (df.assign(_g=df[unit].map(ucoh)).groupby(["_g", "_t"])[y].mean().unstack("_t")
            .reindex(columns=times))
    D = (df["_t"].to_numpy() >= df[unit].map(ucoh).to_numpy()).astype(float)
    Dm = pd.Series(D)
    Dt = (Dm - Dm.groupby(df[unit].to_numpy()).transform("mean")
          - Dm.groupby(df["_t"].to_numpy()).transform("mean") + Dm.mean())
    VD = float(np.mean(Dt.to_numpy() ** 2))
    if VD <= 0:
        raise EstimationError("the treatment does not vary across units and periods")

    def did(treat, ctrl, pre, post):
        yt, yc = ymat.loc[treat], ymat.loc[ctrl]
        return float((yt[post].mean() - yt[pre].mean()) - (yc[post].mean() - yc[pre].mean()))

    rows = []
    timing = [c for c in groups if np.isfinite(c)]
    never = [c for c in groups if np.isinf(c)]
    for k in timing:
        if dbar[k] in (0.0, 1.0):
            continue  # always treated: only a control below
        for u in never:
            nku = n[k] / (n[k] + n[u])
            s = (n[k] + n[u]) ** 2 * nku * (1 - nku) * dbar[k] * (1 - dbar[k]) / VD
            rows.append(("treated_vs_never", k, u, did(k, u, times[times < k], times[times >= k]), s))
    for i, k in enumerate(timing):
        for l in timing[i + 1:]:
            # k earlier (larger D̄), l later
            nkl = n[k] / (n[k] + n[l])
            dk, dl = dbar[k], dbar[l]
            if dk == dl:
                continue
            always = dk == 1.0
            if not always and dl < 1.0:
                win = times[times < l]
                s_k = (((n[k] + n[l]) * (1 - dl)) ** 2 * nkl * (1 - nkl)
                       * (dk - dl) / (1 - dl) * (1 - dk) / (1 - dl) / VD)
                rows.append(("earlier_vs_later", k, l,
                             did(k, l, win[win < k], win[win >= k]), s_k))
            if dl > 0:
                win = times[times >= k]
                s_l = (((n[k] + n[l]) * dk) ** 2 * nkl * (1 - nkl)
                       * (dl / dk) * (dk - dl) / dk / VD)
                rows.append(("treated_vs_always" if always else "later_vs_earlier", l, k,
                             did(l, k, win[win < l], win[win >= l]), s_l))
    comp = pd.DataFrame(rows, columns=["type", "treated", "control", "estimate", "weight"])
    beta_sum = float((comp["estimate"] * comp["weight"]).sum())
    tw = twfe(df.assign(_D=D), y, unit, time, "_D")
    return BaconResult(
        method="bacon", estimate=tw.estimate, se=tw.se, ci=tw.ci, p=tw.p, n_obs=len(df),
        n_units=N, inference="analytic", alpha=tw.alpha, components={"comparisons": comp},
        info={"weights_sum": float(comp["weight"].sum()), "weighted_sum": beta_sum,
              "identity_gap": beta_sum - tw.estimate, "V_D": VD,
              "se_note": "se/ci/p are those of the TWFE coefficient (clustered by unit)"},
    )
