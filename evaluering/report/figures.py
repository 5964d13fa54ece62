"""Deterministic report figures (matplotlib Agg, Danish number formats, disclosure aware).

Every figure is written as SVG (``svg.hashsalt`` fixed, no date in the metadata) and PNG (no
software/timestamp metadata), so the same inputs give the same bytes. Points built on fewer
than ``k`` persons are not plotted (the caller passes the person counts behind each point).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from evaluering.report import format as fmt

_RC = {
    "svg.hashsalt": "evaluering-rapport",
    "svg.fonttype": "none",          # text stays text (searchable; Typst renders it with DejaVu)
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.unicode_minus": True,
    "figure.dpi": 100,
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def danish_axes(ax, decimaler: int = 1, procent: bool = False, y: bool = True, x: bool = False) -> None:
    """Danish tick labels (1.234,5; real minus sign) on the y (and optionally x) axis."""
    from matplotlib.ticker import FuncFormatter

    def f(v, _pos):
        # enough decimals to tell neighbouring ticks apart (0,55 and 0,6 not both "0,6")
        locs = np.asarray(ax.yaxis.get_majorticklocs(), dtype=float)
        step = float(np.min(np.diff(np.sort(locs)))) if len(locs) > 1 else 0.0
        d = decimaler
        if step > 0:
            d = max(decimaler, int(np.ceil(-np.log10(step * (100 if procent else 1)) - 1e-9)))
        return fmt.tal(100 * v if procent else v, min(max(d, 0), 4))

    if y:
        ax.yaxis.set_major_formatter(FuncFormatter(f))
    if x:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: fmt.tal(v, 0)))


def save(fig, folder: Path, name: str) -> dict[str, Path]:
    """Write ``name.svg`` and ``name.png`` deterministically; returns both paths."""
    from evaluering._atomic import atomic_path

    plt = _plt()
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    with atomic_path(folder / f"{name}.svg") as tmp, plt.rc_context(_RC):
        fig.savefig(tmp, format="svg", metadata={"Date": None, "Creator": None})
    out["svg"] = folder / f"{name}.svg"
    with atomic_path(folder / f"{name}.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    out["png"] = folder / f"{name}.png"
    plt.close(fig)
    return out


def _finish(fig, ax, title: str) -> None:
    """The common end of every line figure: title, legend, grid, tight layout."""
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()


def _ctx():
    plt = _plt()
    return plt.rc_context(_RC)


def _decimaler(enhed: str) -> int:
    return 0 if enhed in ("kr.", "minutter") else 1


def trend_figure(series: pd.DataFrame, title: str, ylabel: str, starts: list[dt.date],
                 k: int, procent: bool = False, decimaler: int = 1):
    """Outcome by period, trial vs control. ``series``: periode_fra (date), gruppe, vaerdi,
    personer (lower bound of persons behind the point). Points on < k persons are dropped."""
    plt = _plt()
    with _ctx():
        fig, ax = plt.subplots(figsize=(7, 3.4))
        for gruppe, style in (("Forsøgskommuner", dict(color="#1f4e79", marker="o")),
                              ("Sammenligningskommuner", dict(color="#c55a11", marker="s"))):
            s = series[(series["gruppe"] == gruppe)].sort_values("periode_fra")
            s = s.assign(vaerdi=np.where(s["personer"] >= k, s["vaerdi"], np.nan))
            ax.plot(pd.to_datetime(s["periode_fra"]), s["vaerdi"], lw=1.4, ms=3, label=gruppe, **style)
        for i, d in enumerate(sorted(set(starts))):
            ax.axvline(pd.Timestamp(d), color="grey", ls="--", lw=0.8,
                       label="Forsøgsstart" if i == 0 else None)
        danish_axes(ax, decimaler, procent)
        import matplotlib.dates as mdates

        ax.xaxis.set_major_locator(mdates.YearLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
        ax.set_ylabel(ylabel)
        _finish(fig, ax, title)
    return fig


def event_figure(ev: pd.DataFrame, title: str, ylabel: str, k: int, procent: bool = False,
                 decimaler: int = 1):
    """Event-study effects with pointwise 95 % intervals: columns e, att, ci_low, ci_high,
    personer (treated persons behind the point; < k → not plotted)."""
    plt = _plt()
    with _ctx():
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ok = ev["personer"] >= k
        e = ev.loc[ok, "e"].to_numpy(float)
        y = ev.loc[ok, "att"].to_numpy(float)
        lo = ev.loc[ok, "ci_low"].to_numpy(float)
        hi = ev.loc[ok, "ci_high"].to_numpy(float)
        pre = e < 0
        ax.errorbar(e[pre], y[pre], yerr=[y[pre] - lo[pre], hi[pre] - y[pre]], fmt="o",
                    color="#7f7f7f", capsize=2, ms=3, label="Før start")
        ax.errorbar(e[~pre], y[~pre], yerr=[y[~pre] - lo[~pre], hi[~pre] - y[~pre]], fmt="o",
                    color="#1f4e79", capsize=2, ms=3, label="Efter start")
        ax.axhline(0, color="black", lw=0.7)
        ax.axvline(-0.5, color="grey", ls="--", lw=0.8)
        danish_axes(ax, decimaler, procent)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        danish_axes(ax, y=False, x=True)
        ax.set_xlabel("Perioder i forhold til forsøgsstart")
        ax.set_ylabel(ylabel)
        _finish(fig, ax, title)
    return fig


def km_figure(curves: pd.DataFrame, title: str, k: int):
    """Share not yet in job (KM) by week: columns gruppe, time, estimate, n_risk; the curve
    stops where fewer than k spells are at risk."""
    plt = _plt()
    with _ctx():
        fig, ax = plt.subplots(figsize=(7, 3.2))
        colors = {"Forsøg, efter start": "#1f4e79", "Sammenligning, samme periode": "#c55a11"}
        for gruppe, c in colors.items():
            s = curves[(curves["gruppe"] == gruppe) & (curves["n_risk"] >= k)].sort_values("time")
            if s.empty:
                continue
            x = np.concatenate([[0.0], s["time"].to_numpy(float)])
            y = np.concatenate([[1.0], s["estimate"].to_numpy(float)])
            ax.step(x, y, where="post", color=c, label=gruppe, lw=1.4)
        ax.set_ylim(0, 1.02)
        danish_axes(ax, 0, procent=True)
        danish_axes(ax, y=False, x=True)
        ax.set_xlabel("Uger siden forløbets start")
        ax.set_ylabel("Endnu ikke i job (pct.)")
        _finish(fig, ax, title)
    return fig


def resource_figure(df: pd.DataFrame, title: str, k: int):
    """Bars of the mean resource use per spell: columns udfald (label), gruppe, vaerdi,
    personer. Bars on < k persons are left out."""
    plt = _plt()
    with _ctx():
        labels = list(dict.fromkeys(df["udfald"]))
        grupper = list(dict.fromkeys(df["gruppe"]))
        fig, axes = plt.subplots(1, max(len(labels), 1), figsize=(7, 2.8), squeeze=False)
        cols = ["#9dc3e6", "#1f4e79", "#f4b183", "#c55a11"]
        for ax, lab in zip(axes[0], labels):
            s = df[df["udfald"] == lab].set_index("gruppe").reindex(grupper)
            v = np.where(s["personer"].fillna(0) >= k, s["vaerdi"], np.nan)
            ax.bar(range(len(grupper)), np.nan_to_num(v, nan=0.0), color=cols[:len(grupper)])
            ax.set_xticks(range(len(grupper)), [str(i + 1) for i in range(len(grupper))])
            ax.set_title(lab, fontsize=8)
            danish_axes(ax, 1)
            ax.grid(alpha=0.3, axis="y")
        fig.suptitle(title + "  (" + ", ".join(f"{i + 1}: {g}" for i, g in enumerate(grupper)) + ")",
                     fontsize=8)
        fig.tight_layout()
    return fig


def small_multiples(df: pd.DataFrame, title: str, k: int, procent: bool = False, decimaler: int = 1):
    """One small panel per treated municipality (map-free): its outcome by period against the
    control mean. Columns: kommune (label), periode_fra, vaerdi, personer, kontrol."""
    plt = _plt()
    with _ctx():
        names = list(dict.fromkeys(df["kommune"]))
        n = max(len(names), 1)
        ncol = 4
        nrow = int(np.ceil(n / ncol))
        fig, axes = plt.subplots(nrow, ncol, figsize=(7, 1.6 * nrow + 0.4), sharex=True, sharey=True,
                                 squeeze=False)
        for i, ax in enumerate(axes.ravel()):
            if i >= n:
                ax.axis("off")
                continue
            s = df[df["kommune"] == names[i]].sort_values("periode_fra")
            x = np.array([d.year + (d.month - 1) / 12 for d in s["periode_fra"]], dtype=float)
            ax.plot(x, s["kontrol"], color="#c55a11", lw=1)
            ax.plot(x, np.where(s["personer"] >= k, s["vaerdi"], np.nan), color="#1f4e79", lw=1.2,
                    marker="o", ms=2)
            ax.set_title(names[i], fontsize=7, pad=2)
            ax.tick_params(labelsize=6)
            from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

            ax.xaxis.set_major_locator(MultipleLocator(2))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: str(int(v))))
            ax.yaxis.set_major_locator(MaxNLocator(4))
            danish_axes(ax, 0 if procent else decimaler, procent)
        fig.suptitle(title, fontsize=9)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=0.88, hspace=0.45, wspace=0.15)
    return fig
