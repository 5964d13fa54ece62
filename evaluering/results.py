"""Typed, immutable result objects shared by every estimator.

Estimators are functions of data and options; they return one of these. The report and the
CLI consume them through ``summary()``, ``to_dict()`` and ``plot()`` only, so no report code
ever computes a statistic.

``EstimateResult`` is the common shape: one headline scalar (``estimate`` with ``se``, ``ci``,
``p``) plus named component tables (``att_gt``, ``event``, ``group``, ``calendar``,
``unit_weights``, ``time_weights`` ...). The JSON of ``to_dict()`` is the ``--json`` output of
``evaluering estimate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import pandas as pd


def _freeze_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reset_index(drop=True).copy()
    for col in out.columns:
        arr = out[col].to_numpy()
        if isinstance(arr, np.ndarray):
            try:
                arr.flags.writeable = False
            except ValueError:
                pass
    return out


def _clean(x: Any) -> Any:
    """JSON-safe scalar: numpy to Python, NaN/inf to None."""
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return None if (math.isnan(x) or math.isinf(x)) else x
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, pd.Timestamp):
        return x.isoformat()
    return x


def frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in rec.items()} for rec in df.to_dict(orient="records")]


@dataclass(frozen=True)
class EstimateResult:
    """Result of a DiD-type estimator.

    Attributes
    ----------
    method : short id (``cs``, ``twfe``, ``sdid`` ...).
    estimate, se, ci, p : the headline scalar, its standard error, confidence interval
        (low, high) and two-sided p-value for H0: effect = 0.
    n_obs, n_units : observations and units used.
    inference : how ``se``/``ci``/``p`` were computed (``analytic``, ``bootstrap``, ``wild``,
        ``ri``, ``placebo``, ``jackknife``).
    components : named component tables (read-only copies).
    info : further scalar facts (options used, test statistics, warnings).
    """

    method: str
    estimate: float
    se: float
    ci: tuple[float, float]
    p: float
    n_obs: int
    n_units: int
    inference: str = "analytic"
    alpha: float = 0.05
    components: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "components",
                           MappingProxyType({k: _freeze_frame(v) for k, v in self.components.items()}))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))
        object.__setattr__(self, "ci", (float(self.ci[0]), float(self.ci[1])))

    def component(self, name: str) -> pd.DataFrame:
        """A copy of one component table (``KeyError`` if absent)."""
        return self.components[name].copy()

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame of the headline estimate."""
        return pd.DataFrame([{
            "method": self.method, "estimate": self.estimate, "se": self.se,
            "ci_low": self.ci[0], "ci_high": self.ci[1], "p": self.p,
            "n_obs": self.n_obs, "n_units": self.n_units, "inference": self.inference,
        }])

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "estimate": _clean(self.estimate),
            "se": _clean(self.se),
            "ci": [_clean(self.ci[0]), _clean(self.ci[1])],
            "p": _clean(self.p),
            "n_obs": int(self.n_obs),
            "n_units": int(self.n_units),
            "inference": self.inference,
            "alpha": _clean(self.alpha),
            "components": {k: frame_records(v) for k, v in self.components.items()},
            "info": {k: _clean(v) if not isinstance(v, (list, dict, tuple)) else v
                     for k, v in self.info.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EstimateResult":
        """The result back from :meth:`to_dict` (e.g. read from JSON): components become
        DataFrames again, ``None`` numbers become NaN. ``from_dict(r.to_dict()).to_dict() ==
        r.to_dict()``."""
        def num(x: Any) -> float:
            return float("nan") if x is None else float(x)

        ci = d.get("ci") or [None, None]
        return cls(method=str(d["method"]), estimate=num(d.get("estimate")), se=num(d.get("se")),
                   ci=(num(ci[0]), num(ci[1])), p=num(d.get("p")), n_obs=int(d.get("n_obs", 0)),
                   n_units=int(d.get("n_units", 0)), inference=str(d.get("inference", "analytic")),
                   alpha=float(d.get("alpha", 0.05)),
                   components={k: pd.DataFrame.from_records(v) for k, v in
                               (d.get("components") or {}).items()},
                   info=dict(d.get("info") or {}))

    def plot(self, ax=None, component: str | None = None):
        """Plot the event-time (or other) component with confidence intervals.

        Uses the first of ``event``, ``att_gt``, ``group``, ``calendar`` present unless
        ``component`` is given. Returns the matplotlib Axes.
        """
        from evaluering.plotting import plot_effects

        return plot_effects(self, ax=ax, component=component)

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"EstimateResult(method={self.method!r}, estimate={self.estimate:.6g}, "
                f"se={self.se:.6g}, ci=({self.ci[0]:.6g}, {self.ci[1]:.6g}), p={self.p:.4g}, "
                f"n_obs={self.n_obs}, n_units={self.n_units}, inference={self.inference!r})")
