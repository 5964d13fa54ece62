"""Plots of survival results (matplotlib, Agg backend when none is set; return Figure/Axes).

- :func:`plot_curves`: the curves of a :class:`~evaluering.survival.km.SurvivalCurves` (one
  line per group) with pointwise confidence bands.
- :func:`plot_km_2x2`: 2 × 2 small multiples, trial/control × before/after, each panel with
  its curve and band and the other arm of the same period dashed for comparison.
- :func:`plot_share_effect`: an effect on the share in job by week (the ``event`` component
  of a result such as :func:`~evaluering.survival.staggered.km_did_share` or a CS/BJS event
  study of a share outcome) with confidence intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg", force=False)
        except Exception:  # pragma: no cover - backend already fixed by the caller
            pass
    import matplotlib.pyplot as plt

    return plt


def _label(by, key) -> str:
    key = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{b}={k}" for b, k in zip(by, key)) if by else "all"


def _step(ax, tab: pd.DataFrame, start: float, ci: bool, **kw):
    t = np.r_[0.0, tab["time"].to_numpy(float)]
    y = np.r_[start, tab["estimate"].to_numpy(float)]
    line, = ax.step(t, y, where="post", **kw)
    if ci:
        lo = np.r_[start, tab["ci_low"].to_numpy(float)]
        hi = np.r_[start, tab["ci_high"].to_numpy(float)]
        ax.fill_between(t, lo, hi, step="post", alpha=0.2, color=line.get_color(), lw=0)
    return line


def plot_curves(curves, ax=None, ci: bool = True):
    """One step curve per group (survival for KM, cumulative incidence for AJ); returns Axes."""
    if ax is None:
        _, ax = _plt().subplots(figsize=(7, 4))
    start = 1.0 if curves.kind == "km" else 0.0
    tab = curves.table
    groups = tab.groupby(list(curves.by), sort=False, observed=True) if curves.by else [((), tab)]
    for key, g in groups:
        _step(ax, g, start, ci, label=_label(curves.by, key))
    ax.set_xlabel("weeks since spell start")
    ax.set_ylabel("share not yet in job" if curves.kind == "km" else "cumulative share exited")
    ax.set_ylim(-0.02, 1.02)
    if curves.by:
        ax.legend(fontsize=8)
    return ax


def plot_km_2x2(curves, treated: str = "treated", post: str = "post", *, ci: bool = True,
                labels: dict | None = None, max_week: float | None = None):
    """2 × 2 small multiples of KM curves: rows trial/control, columns before/after.

    ``curves`` must be grouped by exactly ``[treated, post]`` (0/1 values). Each panel shows
    its arm with a confidence band and, dashed, the other arm in the same period. Returns
    the Figure (shared axes).
    """
    by = list(curves.by)
    if sorted(by) != sorted([treated, post]):
        raise ValueError(f"curves must be grouped by [{treated!r}, {post!r}], got {by}")
    labels = {"trial": "trial municipalities", "control": "control municipalities",
              "before": "before", "after": "after", **(labels or {})}
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True, sharey=True)
    tab = curves.table
    if max_week is not None:
        tab = tab[tab["time"] <= max_week]
    start = 1.0 if curves.kind == "km" else 0.0
    for i, tr in enumerate((1, 0)):
        for j, po in enumerate((0, 1)):
            ax = axes[i, j]
            own = tab[(tab[treated] == tr) & (tab[post] == po)]
            other = tab[(tab[treated] == 1 - tr) & (tab[post] == po)]
            if len(other):
                _step(ax, other, start, False, color="grey", ls="--", lw=1,
                      label=labels["control" if tr else "trial"])
            if len(own):
                _step(ax, own, start, ci, color="C0" if tr else "C1",
                      label=labels["trial" if tr else "control"])
            ax.set_title(f"{labels['trial' if tr else 'control']}, {labels['after' if po else 'before']}",
                         fontsize=10)
            ax.legend(fontsize=8, loc="upper right" if curves.kind == "km" else "lower right")
            if i == 1:
                ax.set_xlabel("weeks since spell start")
            if j == 0:
                ax.set_ylabel("share not yet in job" if curves.kind == "km" else "cumulative share exited")
    axes[0, 0].set_ylim(-0.02, 1.02)
    fig.tight_layout()
    return fig


def plot_share_effect(result, ax=None, component: str = "event", ylabel: str = "effect on share in job"):
    """Effect by week (or event time) with confidence intervals, from a result object."""
    from evaluering.plotting import plot_effects

    ax = plot_effects(result, ax=ax, component=component)
    ax.set_ylabel(ylabel)
    return ax
