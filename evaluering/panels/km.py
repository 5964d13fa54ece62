"""Kaplan-Meier and restricted mean time to job from the discrete-time survival table.

Works on ``overlevelse.parquet`` (or any subset of its rows): sums the counts over the keys
not in ``by`` and applies the product-limit estimator per week, so no person rows are
needed. Convention (lifelines'): at week t the risk set is n_risiko(t), events n_job(t);
S(t) = P(T > t) = prod_{u <= t} (1 - n_job(u) / n_risiko(u)). Exits to education and
censoring are censoring here (cause-specific survival).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def kaplan_meier(overlevelse: pd.DataFrame, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Per group in ``by`` (or overall): uge, n_risiko, n_job and ``overlevelse`` = S(uge)."""
    by = list(by or [])
    g = overlevelse.groupby(by + ["uge"], sort=True)[["n_risiko", "n_job"]].sum().reset_index()
    h = np.where(g["n_risiko"] > 0, g["n_job"] / g["n_risiko"].where(g["n_risiko"] > 0), 0.0)
    g["hazard"] = h
    if by:
        g["overlevelse"] = (1 - g["hazard"]).groupby([g[c] for c in by]).cumprod()
    else:
        g["overlevelse"] = (1 - g["hazard"]).cumprod()
    return g


def rmst(overlevelse: pd.DataFrame, horizon: int = 52, by: Sequence[str] | None = None) -> pd.Series:
    """Restricted mean weeks to job, E[min(T, horizon)] = sum_{t=0}^{horizon-1} S(t).

    Beyond a group's last week S stays at its last value (as in lifelines).
    """
    by = list(by or [])
    km = kaplan_meier(overlevelse, by)

    def one(df: pd.DataFrame) -> float:
        s = pd.Series(df["overlevelse"].to_numpy(), index=df["uge"].to_numpy())
        full = s.reindex(range(horizon)).ffill().fillna(1.0)
        return float(full.sum())

    if not by:
        return pd.Series({"rmst": one(km)})
    return km.groupby(by).apply(one, include_groups=False).rename(f"rmst_{horizon}_uger")
