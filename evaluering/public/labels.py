"""Checked mapping of municipality labels (Danish or English, as public tables print them) to codes.

Never join on a name without this mapping: names differ between sources (København /
Copenhagen, Vesthimmerland / Vesthimmerlands, Nordfyn / Nordfyns). The mapping is built from the
package's ``kommuner.csv`` (Danish names) and the AUK01 English labels
(``statbank/auk01_omraade_to_kommunekode.csv``), plus the known spelling variants below. A test
checks that every one of the 98 codes is reachable from both languages and that no label maps to
two codes.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources

import pandas as pd

from evaluering.reference import kommuner

# Labels that are aggregates, not municipalities (mapped to None deliberately).
AGGREGATE_LABELS = {
    "all denmark", "hele landet", "danmark", "denmark",
    "region hovedstaden", "region midtjylland", "region nordjylland", "region sjælland",
    "region syddanmark", "capital region of denmark", "central denmark region",
    "north denmark region", "region zealand", "region of southern denmark",
}

# Spelling variants seen in public tables (label → code), each checked against kommuner.csv.
VARIANTS = {
    "københavn": "101", "kobenhavn": "101", "copenhagen": "101",
    "vesthimmerland": "820", "vesthimmerlands": "820",
    "nordfyn": "480", "nordfyns": "480",
    "brønderslev-dronninglund": "810",
    "aarhus": "751", "århus": "751",
    "høje taastrup": "169", "høje-taastrup": "169",
    "lyngby-taarbæk": "173", "lyngby taarbæk": "173",
    "faaborg-midtfyn": "430",
    "ringkøbing-skjern": "760",
    "ikast-brande": "756",
    "bornholm": "400", "bornholms regionskommune": "400",
}


def _norm(label: str) -> str:
    s = unicodedata.normalize("NFC", str(label)).strip().lower()
    for suffix in (" kommune", " municipality"):
        if s.endswith(suffix):
            s = s[: -len(suffix)]
    return " ".join(s.split())


@lru_cache(maxsize=1)
def label_table() -> dict[str, str]:
    k = kommuner()
    table: dict[str, str] = {}

    def add(label: str, code: str) -> None:
        key = _norm(label)
        if key in table and table[key] != code:
            raise RuntimeError(f"label {label!r} maps to two codes: {table[key]} and {code}")
        table[key] = code

    for code, navn in zip(k["kode"], k["navn"]):
        add(navn, code)
    with resources.files("evaluering.reference").joinpath(
            "statbank/auk01_omraade_to_kommunekode.csv").open("r", encoding="utf-8") as fh:
        en = pd.read_csv(fh, dtype=str)
    for label, code in zip(en["omraade_en"], en["kode"]):
        add(label, code)
    valid = set(k["kode"])
    for label, code in VARIANTS.items():
        assert code in valid, (label, code)
        add(label, code)
    return table


def kommune_kode_for_label(label: str) -> str | None:
    """The 3-digit code for a municipality label, None for a known aggregate (country, region).

    Raises KeyError for a label that is neither: never guess.
    """
    key = _norm(label)
    if key in AGGREGATE_LABELS:
        return None
    if key.isdigit() and len(key) <= 4:
        code = f"{int(key):03d}"
        if code in set(kommuner()["kode"]):
            return code
    try:
        return label_table()[key]
    except KeyError:
        raise KeyError(f"unknown municipality label {label!r}: add it to the checked mapping") from None
