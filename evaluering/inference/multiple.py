"""Multiple-testing adjustments: Holm (FWER) and Benjamini–Hochberg (FDR).

* Holm (1979) step-down: with the m p-values sorted ascending ``p_(1) ≤ … ≤ p_(m)``,
  ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))``. Controls the family-wise error rate
  under any dependence.
* Benjamini & Hochberg (1995) step-up: ``p̃_(i) = min_{j ≥ i} min(1, m p_(j) / j)``. Controls
  the false discovery rate under independence or positive regression dependence.
* ``"bonferroni"``: ``min(1, m p)``.

Missing p-values (NaN/None) are left missing and do not count in the family size ``m``.
Ties get equal adjusted values (both formulas are monotone in the sorted order).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["adjust_pvalues", "adjust_results", "METHODS"]

METHODS = ("holm", "bh", "bonferroni")
_ALIASES = {"fdr_bh": "bh", "benjamini-hochberg": "bh", "bonf": "bonferroni"}


def adjust_pvalues(p, method: str = "holm") -> np.ndarray:
    """Adjusted p-values in the original order (NaN stays NaN and is not counted)."""
    m_name = _ALIASES.get(str(method).lower(), str(method).lower())
    if m_name not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    arr = np.asarray(pd.to_numeric(pd.Series(np.ravel(np.asarray(p, dtype=object))),
                                   errors="coerce"), dtype=float)
    out = np.full(arr.shape, np.nan)
    ok = ~np.isnan(arr)
    if np.any((arr[ok] < 0) | (arr[ok] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    pv = arr[ok]
    m = len(pv)
    if m == 0:
        return out
    order = np.argsort(pv, kind="mergesort")
    ps = pv[order]
    ranks = np.arange(1, m + 1)
    if m_name == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, (m - ranks + 1) * ps))
    elif m_name == "bh":
        adj = np.minimum.accumulate((np.minimum(1.0, m * ps / ranks))[::-1])[::-1]
    else:
        adj = np.minimum(1.0, m * ps)
    back = np.empty(m)
    back[order] = adj
    out[ok] = back
    return out


def adjust_results(df: pd.DataFrame, method: str = "holm", *, p: str = "p",
                   family: Sequence[str] | str | None = None, out: str = "p_adj") -> pd.DataFrame:
    """Return a copy of a results table with adjusted p-values in column ``out`` beside ``p``.

    ``family``: columns defining separate families (e.g. ``"forsoeg"`` to adjust over the
    outcomes within each trial); ``None`` = the whole table is one family (e.g. all
    forsøg × udfald). The column ``out`` is inserted right after ``p``; ``p_adj_method``
    records the method.
    """
    if p not in df.columns:
        raise KeyError(f"column '{p}' is not in the results table")
    res = df.copy()
    if out in res.columns:
        res = res.drop(columns=[out])
    adj = pd.Series(np.nan, index=res.index, dtype=float)
    if family is None or (not isinstance(family, str) and len(family) == 0):
        adj[:] = adjust_pvalues(res[p].to_numpy(), method)
    else:
        keys = [family] if isinstance(family, str) else list(family)
        for _, idx in res.groupby(keys, dropna=False, sort=False).groups.items():
            adj.loc[idx] = adjust_pvalues(res.loc[idx, p].to_numpy(), method)
    res.insert(list(res.columns).index(p) + 1, out, adj.to_numpy())
    res[f"{out}_method"] = _ALIASES.get(str(method).lower(), str(method).lower())
    return res
