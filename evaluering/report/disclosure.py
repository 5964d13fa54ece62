"""Disclosure control (diskretionering) for every number the report prints.

Rules (Statistics Denmark practice, see docs/disclosure.md):

* **Primary suppression**: a cell built on 1 to k−1 persons (k = ``min_persons``, default 5,
  configurable but never below 3) is suppressed. A count of 0 persons is not disclosive in
  itself and prints as 0; a derived number (mean, share, percentage, min/max) on 0 persons is
  undefined and prints as a dash.
* **Derived numbers** inherit the person count of the cells they are built on: a mean or share
  over a suppressed cell is suppressed too (callers pass the count behind each number).
* **Complementary suppression**: in a table with published margins (row/column totals), a
  row or column with exactly one suppressed cell would let a reader recover it by subtraction,
  so the next-smallest unsuppressed cell of that line is suppressed as well (repeated until
  no line has exactly one suppressed cell; if a line has no candidate, its total is suppressed).

``check_printable`` is the last guard: the report renderer calls it for each number it
prints and it raises :class:`DisclosureError` when a number would print unsuppressed on fewer
than k persons, which fails the build.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluering.errors import DisclosureError

ABSOLUTE_MINIMUM = 3


@dataclass(frozen=True)
class DisclosureRules:
    min_persons: int = 5

    def __post_init__(self) -> None:
        if int(self.min_persons) < ABSOLUTE_MINIMUM:
            raise ValueError(f"min_persons must be at least {ABSOLUTE_MINIMUM}, got {self.min_persons}")

    def is_small(self, n) -> np.ndarray:
        n = np.asarray(n, dtype=float)
        return (n > 0) & (n < self.min_persons)


def primary_mask(counts: pd.DataFrame | np.ndarray, rules: DisclosureRules) -> np.ndarray:
    """True where the person count behind a cell is 1..k−1 (or missing)."""
    c = np.asarray(counts, dtype=float)
    return rules.is_small(c) | np.isnan(c)


def complementary_suppression(values: np.ndarray, mask: np.ndarray, *, rows: bool = True,
                              cols: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Extend ``mask`` so no suppressed cell can be recovered from row/column totals.

    ``values``: the additive cell values (counts) of a 2-D table whose row totals (if
    ``rows``) and column totals (if ``cols``) are published. Returns (mask, row_total_mask,
    col_total_mask): the cell mask and which totals must be suppressed because a line had no
    other cell to hide.
    """
    v = np.asarray(values, dtype=float)
    m = np.array(mask, dtype=bool, copy=True)
    row_tot = np.zeros(m.shape[0], dtype=bool)
    col_tot = np.zeros(m.shape[1], dtype=bool)
    changed = True
    while changed:
        changed = False
        for axis, enabled, tot in ((1, rows, row_tot), (0, cols, col_tot)):
            if not enabled:
                continue
            n_lines = m.shape[0] if axis == 1 else m.shape[1]
            for i in range(n_lines):
                line_m = m[i, :] if axis == 1 else m[:, i]
                if line_m.sum() != 1 or tot[i]:
                    continue
                line_v = v[i, :] if axis == 1 else v[:, i]
                free = ~line_m & ~np.isnan(line_v)
                cand = np.where(free & (line_v != 0))[0]  # hiding a zero protects little
                if len(cand) == 0:
                    cand = np.where(free)[0]
                if len(cand) == 0:
                    tot[i] = True
                else:
                    j = cand[np.argmin(np.abs(line_v[cand]))]  # the smallest cell hides it
                    if axis == 1:
                        m[i, j] = True
                    else:
                        m[j, i] = True
                changed = True
    return m, row_tot, col_tot


def check_printable(value, n_persons, rules: DisclosureRules, *, what: str = "a number") -> None:
    """Raise DisclosureError if ``value`` would print although built on 1..k−1 persons."""
    if value is None:
        return
    try:
        if np.isnan(float(value)):
            return
    except (TypeError, ValueError):
        return
    if n_persons is None or np.isnan(float(n_persons)):
        raise DisclosureError(f"{what}: no person count is known behind it; refusing to print")
    if 0 < float(n_persons) < rules.min_persons:
        # the message names no count: it reaches the build log (the count is the secret)
        raise DisclosureError(
            f"{what} is built on fewer than {rules.min_persons} persons; it must be suppressed")


@dataclass(frozen=True)
class SuppressedTable:
    """A table with its suppression decided: values, person counts and the final mask."""

    values: pd.DataFrame
    counts: pd.DataFrame
    mask: pd.DataFrame
    n_primary: int
    n_complementary: int

    @property
    def n_suppressed(self) -> int:
        return int(self.mask.to_numpy().sum())


def suppress_table(values: pd.DataFrame, counts: pd.DataFrame, rules: DisclosureRules, *,
                   additive: bool = False) -> SuppressedTable:
    """Primary suppression on ``counts``, complementary along rows and columns if ``additive``.

    ``values`` and ``counts`` have the same shape and labels; ``counts`` is the number of persons
    behind each cell. For derived numbers (means, shares) pass ``additive=False``: a derived
    number cannot be back-computed from a margin, but it inherits its cells' suppression.
    """
    if values.shape != counts.shape:
        raise ValueError("values and counts must have the same shape")
    prim = primary_mask(counts.to_numpy(), rules)
    m = prim
    if additive:
        m, _, _ = complementary_suppression(values.to_numpy(dtype=float), prim)
    mask = pd.DataFrame(m, index=values.index, columns=values.columns)
    return SuppressedTable(values=values, counts=counts, mask=mask, n_primary=int(prim.sum()),
                           n_complementary=int(m.sum() - prim.sum()))
