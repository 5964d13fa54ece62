"""Shared plotting helpers for result objects (matplotlib, headless-safe)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def _axes(ax):
    if ax is None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4))
    return ax


_X_COLUMN = {"event": "e", "group": "group", "calendar": "time", "att_gt": "time"}


def plot_effects(result, ax=None, component: str | None = None):
    """Point estimates with pointwise (and, when present, uniform) confidence intervals."""
    ax = _axes(ax)
    names = [component] if component else [c for c in ("event", "group", "calendar", "att_gt")
                                            if c in result.components]
    if not names:
        ax.errorbar([0], [result.estimate], yerr=[[result.estimate - result.ci[0]],
                                                  [result.ci[1] - result.estimate]], fmt="o")
        ax.set_xticks([0], [result.method])
        ax.axhline(0, color="grey", lw=0.8)
        return ax
    name = names[0]
    df: pd.DataFrame = result.components[name]
    x = df[_X_COLUMN.get(name, df.columns[0])].to_numpy()
    y = df["att"].to_numpy(dtype=float)
    se = df["se"].to_numpy(dtype=float) if "se" in df else np.full_like(y, np.nan)
    z = stats.norm.ppf(1 - result.alpha / 2)
    if "ci_low" in df and "ci_high" in df:
        lo, hi = df["ci_low"].to_numpy(float), df["ci_high"].to_numpy(float)
    else:
        lo, hi = y - z * se, y + z * se
    if "ucb_low" in df and "ucb_high" in df:
        ax.fill_between(x, df["ucb_low"].to_numpy(float), df["ucb_high"].to_numpy(float),
                        color="C0", alpha=0.15, step=None, label="uniform band")
    ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", capsize=3, label="pointwise CI")
    ax.axhline(0, color="grey", lw=0.8)
    if name == "event":
        ax.axvline(-0.5, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(_X_COLUMN.get(name, name))
    ax.set_ylabel("effect")
    ax.set_title(f"{result.method}: {name}")
    return ax
