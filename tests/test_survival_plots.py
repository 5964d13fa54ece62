"""Survival plots: the drawn data are the estimates; headless (Agg)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from evaluering.survival import kaplan_meier
from evaluering.survival.plots import plot_curves, plot_km_2x2, plot_share_effect
from evaluering.survival.simulate import simulate_spells
from evaluering.survival.staggered import km_did_share


@pytest.fixture(scope="module")
def df():
    return simulate_spells(n=6000, n_kom=10, n_treated=3, seed=4)


def test_plot_curves_draws_each_group(df):
    km = kaplan_meier(df, by=["treated"])
    ax = km.plot()
    lines = ax.get_lines()
    assert len(lines) == 2
    tab = km.table[km.table["treated"] == 0]
    np.testing.assert_allclose(lines[0].get_ydata()[1:], tab["estimate"].to_numpy())
    assert len(ax.collections) == 2  # confidence bands
    assert len(plot_curves(km, ci=False).collections) == 0


def test_plot_km_2x2(df):
    km = kaplan_meier(df, by=["treated", "post"])
    fig = plot_km_2x2(km, max_week=52)
    axes = fig.get_axes()
    assert len(axes) == 4
    titles = [a.get_title() for a in axes]
    assert titles[0].startswith("trial") and titles[2].startswith("control") and "after" in titles[1]
    # panel (trial, after): own curve is the second line (the dashed comparison is first)
    own = axes[1].get_lines()[1].get_ydata()[1:]
    tab = km.table[(km.table["treated"] == 1) & (km.table["post"] == 1) & (km.table["time"] <= 52)]
    np.testing.assert_allclose(own, tab["estimate"].to_numpy())
    with pytest.raises(ValueError):
        plot_km_2x2(kaplan_meier(df, by=["treated"]))


def test_plot_share_effect(df):
    r = km_did_share(df, weeks=list(range(0, 53, 4)), headline_week=52)
    ax = plot_share_effect(r)
    assert ax.get_ylabel() == "effect on share in job"
    x = ax.lines[0].get_xdata() if ax.lines else None
    assert x is not None and len(x) == len(r.component("event"))
