"""Package reference data: the 98 municipalities and the catalogue of known schemes."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd


def _path(name: str):
    return resources.files(__name__).joinpath(name)


@lru_cache(maxsize=1)
def _kommuner() -> pd.DataFrame:
    with _path("kommuner.csv").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype={"kode": str, "navn": str, "region": str})


def kommuner() -> pd.DataFrame:
    """The 98 municipalities: ``kode`` (3-digit text), ``navn``, ``region`` (a copy)."""
    return _kommuner().copy()


@lru_cache(maxsize=1)
def kommune_koder() -> frozenset[str]:
    return frozenset(_kommuner()["kode"])


def kommune_navn(kode: str) -> str:
    return dict(zip(_kommuner()["kode"], _kommuner()["navn"]))[kode]
