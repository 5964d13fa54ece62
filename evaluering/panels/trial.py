"""Per-trial panel: restrict a panel to a trial's target group and mark its design.

The result has one row per municipality × period with ``unit`` = kommune_kode, ``time`` =
a 1-based period index and ``cohort`` = the index of the first treated period (0 = never
treated), the layout :mod:`evaluering.estimators` read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluering.panels.sql import PANEL_OUTCOMES, period_label, period_nr

KEY = ("kommune_kode", "ydelsesgruppe", "periode_nr")
_LABELS = ("periode", "periode_fra", "periode_til")
# ratio columns recomputed from their additive parts after aggregation
_RATIOS: dict[str, tuple[str, str]] = {
    **{o: (f"{o}_sum", f"{o}_n") for o, _ in PANEL_OUTCOMES},
    "hazard_job": ("hazard_job_haendelser", "hazard_job_risikouger"),
    "alder_gns": ("alder_sum", "forloeb_startet"),
    "samtaler_pr_helaarsperson": ("samtaler_hele_sum", "aar_paa_ydelse_sum"),
    "minutter_pr_helaarsperson": ("minutter_hele_sum", "aar_paa_ydelse_sum"),
    "udgift_pr_helaarsperson": ("udgift_hele_sum", "aar_paa_ydelse_sum"),
}


def additive_columns(panel: pd.DataFrame) -> list[str]:
    """Numeric panel columns that add up across target groups (all but keys and ratios).

    Person counts (``personer_*``, ``*_personer``) are added too: across several target
    groups their sum is an upper bound (a person with spells in two groups counts twice).
    """
    return [c for c in panel.columns
            if c not in KEY and c not in _LABELS and c not in _RATIOS
            and pd.api.types.is_numeric_dtype(panel[c])]


def forsoeg_panel(panel: pd.DataFrame, forsoeg, periode: str = "kvartal",
                  drop_excluded: bool = False) -> pd.DataFrame:
    """The panel of one trial, aggregated over its target group, with its design marked.

    Parameters
    ----------
    panel:
        ``panel_kvartal.parquet`` or ``panel_maaned.parquet`` as a DataFrame.
    forsoeg:
        A ``Forsoeg`` (fields id, maalgruppe, kommuner, udeluk_fra_kontrol, start,
        start_pr_kommune; method start_for).
    periode:
        ``"kvartal"`` or ``"maaned"`` (must match the panel).
    drop_excluded:
        Drop municipalities excluded from the control group (default: keep, marked).

    Returns one row per kommune_kode × period with: ``rolle`` ('behandlet', 'kontrol',
    'udelukket'), ``behandlet`` (bool), ``t`` (1 = the panel's first period),
    ``kohorte`` (t of the period containing the municipality's start date; 0 = never
    treated), ``kohorte_periode`` (its StatBank label, e.g. ``2017Q3``),
    ``kohorte_foer_panel`` (the start lies before the panel's first period: cohort set to 1), ``efter`` (t >= kohorte for treated units), the
    summed additive columns and the recomputed ratio columns.
    """
    if periode not in ("kvartal", "maaned"):
        raise ValueError("periode must be 'kvartal' or 'maaned'")
    sub = panel[panel["ydelsesgruppe"].isin(list(forsoeg.maalgruppe))]
    add = additive_columns(panel)
    g = sub.groupby(["kommune_kode", "periode_nr"], sort=True)
    out = g[add].sum(min_count=1).reset_index()
    labels = g[list(_LABELS)].first().reset_index(drop=True)
    out = pd.concat([out, labels], axis=1)
    for ratio, (num, den) in _RATIOS.items():
        if num in out and den in out:
            d = out[den].astype(float)
            out[ratio] = np.where(d > 0, out[num].astype(float) / d.where(d > 0), np.nan)
    base = int(out["periode_nr"].min()) if len(out) else 0
    out["t"] = (out["periode_nr"] - base + 1).astype("int64")

    def _start(k):
        if hasattr(forsoeg, "start_for"):
            return forsoeg.start_for(k)
        return (dict(forsoeg.start_pr_kommune or {}).get(k, forsoeg.start)
                if k in forsoeg.kommuner else None)

    rows = []
    for k in out["kommune_kode"].unique():
        s = _start(k)
        if k in forsoeg.kommuner:
            rolle = "behandlet"
        elif k in forsoeg.udeluk_fra_kontrol:
            rolle = "udelukket"
        else:
            rolle = "kontrol"
        if s is not None:
            nr = period_nr(s, periode)
            c = nr - base + 1
            rows.append((k, rolle, max(c, 1), period_label(nr, periode), c < 1))
        else:
            rows.append((k, rolle, 0, None, False))
    design = pd.DataFrame(rows, columns=["kommune_kode", "rolle", "kohorte", "kohorte_periode",
                                         "kohorte_foer_panel"])
    out = out.merge(design, on="kommune_kode", how="left")
    out["kohorte"] = out["kohorte"].astype("int64")
    out["behandlet"] = out["rolle"].eq("behandlet")
    out["efter"] = out["behandlet"] & (out["t"] >= out["kohorte"])
    out.insert(0, "forsoeg_id", forsoeg.id)
    if drop_excluded:
        out = out[out["rolle"] != "udelukket"].reset_index(drop=True)
    front = ["forsoeg_id", "kommune_kode", "periode_nr", "periode", "periode_fra", "periode_til",
             "t", "rolle", "behandlet", "kohorte", "kohorte_periode", "kohorte_foer_panel", "efter"]
    return out[front + [c for c in out.columns if c not in front]]
