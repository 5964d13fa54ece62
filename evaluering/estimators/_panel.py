"""Input checks and conventions shared by the panel estimators."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from evaluering.errors import EstimationError

NEVER = np.inf  # cohort value of never-treated units after normalisation


def as_frame(data) -> pd.DataFrame:
    """Accept a pandas DataFrame or a pyarrow Table."""
    if isinstance(data, pd.DataFrame):
        return data
    try:
        import pyarrow as pa

        if isinstance(data, pa.Table):
            return data.to_pandas()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"expected a pandas DataFrame or pyarrow Table, got {type(data).__name__}")


def require_columns(df: pd.DataFrame, columns: Iterable[str | None], *, no_missing: bool = True) -> None:
    """Raise EstimationError if a key column is absent or (optionally) has missing values."""
    for col in columns:
        if col is None:
            continue
        if col not in df.columns:
            raise EstimationError(f"column '{col}' is not in the data")
        if no_missing and df[col].isna().any():
            n = int(df[col].isna().sum())
            raise EstimationError(f"column '{col}' has {n} missing value(s); drop or impute them first")


def normalise_cohort(cohort: pd.Series, time: pd.Series) -> pd.Series:
    """Cohort (first treated period) as float with never-treated = +inf.

    A cohort value of 0, missing, or larger than every observed time means never treated.
    """
    c = pd.to_numeric(cohort, errors="coerce").astype(float)
    tmax = float(pd.to_numeric(time).max())
    never = c.isna() | (c == 0) | (c > tmax)
    return c.where(~never, NEVER)
