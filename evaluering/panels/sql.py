"""Panel and discrete-time survival transformations (DuckDB dialect; Spark via sqlglot).

Input views: ``sp`` (spells, from :func:`evaluering.outcomes.sql.spells_sql`),
``tid_til_job``, ``ressourcer``, ``perioder_<periode>`` (periode_nr, fra, til, dage:
observed days of the period) and ``varigheder`` (uge 0..max).

Period labels in the outputs are computed here from the period numbers, in StatBank's form
(``2017Q3``, ``2017M07``: :func:`period_label`, :func:`period_label_sql`), whatever label
column the input views carry.
"""

from __future__ import annotations

import datetime as dt

from evaluering import contract

# Per-spell outcomes aggregated in the panels: id -> source view alias
PANEL_OUTCOMES: tuple[tuple[str, str], ...] = (
    ("job_13_uger", "t"), ("job_26_uger", "t"), ("job_52_uger", "t"), ("rmst_52_uger", "t"),
    ("samtaler_pr_forloeb", "r"), ("andel_fysiske_samtaler", "r"), ("minutter_pr_forloeb", "r"),
    ("laegeattester_pr_forloeb", "r"), ("rehab_pr_forloeb", "r"), ("udgift_pr_forloeb", "r"),
)
# Additive whole-spell and by-channel counts summed in the panels (sum only)
PANEL_SUMS: tuple[str, ...] = (
    "samtaler_fysisk_26", "samtaler_telefon_26", "samtaler_video_26", "samtaler_digital_26",
    "samtaler_ukendt_kanal_26", "laegeattester_lae285_26", "laegeattester_lae265_26",
    "laegeattester_lae125_26", "laegeattester_andre_26", "tilbud_26",
    "kontakter_hele", "samtaler_hele", "laegeattester_hele", "rehab_hele", "tilbud_hele",
    "minutter_hele", "udgift_hele", "aar_paa_ydelse",
)
PERIODER = ("maaned", "kvartal")


def _d(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


# Periods per year and the StatBank letter of each period kind (StatBank's ``TID`` form)
_PER_YEAR = {"maaned": 12, "kvartal": 4, "halvaar": 2}
_LETTER = {"maaned": "M", "kvartal": "Q", "halvaar": "H"}


# Sums of non-integer values are taken in exact decimal arithmetic (each value rounded once to
# 12 decimals, then summed exactly, then back to DOUBLE): a DOUBLE SUM in DuckDB's parallel
# aggregation depends on the order threads combine partial sums, which changed the last bits of
# the panels (and so the report's numbers) between identical runs at medium scale.
EXACT = "DECIMAL(38, 12)"


def period_nr(d: dt.date, periode: str) -> int:
    """The period number of date ``d``: year·12 + month − 1, year·4 + quarter − 1 or
    year·2 + half − 1 (the ``*_nr`` columns of the outcome tables and panels)."""
    if periode not in _PER_YEAR:
        raise ValueError(f"periode must be one of {tuple(_PER_YEAR)}")
    return d.year * _PER_YEAR[periode] + (d.month - 1) * _PER_YEAR[periode] // 12


def period_label(nr: int, periode: str) -> str:
    """StatBank's label of period number ``nr``: ``2017M07``, ``2017Q3`` or ``2017H2``.

    The form of Statistics Denmark's ``TID`` column, read back by
    :func:`evaluering.public.statbank.parse_period`.
    """
    if periode not in _PER_YEAR:
        raise ValueError(f"periode must be one of {tuple(_PER_YEAR)}")
    y, k = divmod(int(nr), _PER_YEAR[periode])
    return f"{y}{_LETTER[periode]}{k + 1:0{2 if periode == 'maaned' else 1}d}"


def period_label_sql(nr: str, periode: str) -> str:
    """SQL (DuckDB dialect, translatable to Spark) for :func:`period_label` of the integer
    expression ``nr``."""
    if periode not in _PER_YEAR:
        raise ValueError(f"periode must be one of {tuple(_PER_YEAR)}")
    k = _PER_YEAR[periode]
    year = f"CAST(CAST(FLOOR({nr} / {k}) AS INTEGER) AS VARCHAR)"
    sub = f"CAST({nr} % {k} + 1 AS VARCHAR)"
    if periode == "maaned":
        sub = f"LPAD({sub}, 2, '0')"
    return f"{year} || '{_LETTER[periode]}' || {sub}"


def panel_sql(periode: str, data_end: dt.date) -> str:
    """Municipality × ydelsesgruppe × period panel.

    Flows by the spell's start period (outcomes, composition, spells started), spells ended
    by the end period, stocks (open at the period's last observed day, full-time equivalents)
    by calendar overlap with the period. ``periode`` is StatBank's label of the period
    (``2017Q3``, ``2017M07``; :func:`period_label`).
    """
    if periode not in PERIODER:
        raise ValueError(f"periode must be one of {PERIODER}")
    de = _d(data_end)
    nr = f"start_{periode}_nr"
    slut_nr = (f"CAST(YEAR(s.slut_dato) * 12 + MONTH(s.slut_dato) - 1 AS INTEGER)" if periode == "maaned"
               else f"CAST(YEAR(s.slut_dato) * 4 + QUARTER(s.slut_dato) - 1 AS INTEGER)")
    # Two-level aggregation: first per cell x person (so that person counts need no
    # COUNT(DISTINCT)), then per cell. Each entry: (per-person expression, name, kind) with
    # kind "count" (summed as BIGINT), "sum" (summed as DOUBLE) or "personer" (persons with
    # a positive per-person count of the named column).
    lv: list[tuple[str, str, str]] = [("COUNT(*)", "forloeb_startet", "count")]
    for o, a in PANEL_OUTCOMES:
        lv += [(f"SUM(CAST({a}.{o} AS {EXACT}))", f"{o}_sum", "sum"),
               (f"COUNT({a}.{o})", f"{o}_n", "count"),
               (f"{o}_n", f"{o}_personer", "personer")]
    lv += [(f"SUM(CAST(r.{c} AS {EXACT}))", f"{c}_sum", "sum") for c in PANEL_SUMS]
    lv += [
        ("COUNT(CASE WHEN t.status = 'job' THEN 1 END)", "hazard_job_haendelser", "count"),
        ("SUM(CASE WHEN t.varighed_uger IS NULL THEN 0 ELSE t.varighed_uger + 1 END)",
         "hazard_job_risikouger", "count"),
        ("COUNT(CASE WHEN t.varighed_uger IS NOT NULL THEN 1 END)", "hazard_job_n", "count"),
        ("hazard_job_n", "hazard_job_personer", "personer"),
        ("COUNT(CASE WHEN t.forsoeg_eksponeret <> '' THEN 1 END)", "forloeb_eksponeret", "count"),
        ("COUNT(CASE WHEN t.status = 'job' THEN 1 END)", "n_job", "count"),
        ("COUNT(CASE WHEN t.status = 'uddannelse' THEN 1 END)", "n_uddannelse", "count"),
        ("COUNT(CASE WHEN t.status = 'censureret' THEN 1 END)", "n_censureret", "count"),
        (f"SUM(CAST(YEAR(s.start_dato) - s.foedselsaar AS {EXACT}))", "alder_sum", "sum"),
        ("COUNT(CASE WHEN s.koen = 'K' THEN 1 END)", "n_kvinder", "count"),
        ("COUNT(CASE WHEN s.koen = 'M' THEN 1 END)", "n_maend", "count"),
    ]
    lv += [(f"COUNT(CASE WHEN s.herkomst = '{h}' THEN 1 END)", f"n_herkomst_{h}", "count")
           for h in contract.HERKOMST]
    lv += [("COUNT(CASE WHEN s.herkomst IS NULL THEN 1 END)", "n_herkomst_ukendt", "count")]
    lv += [(f"COUNT(CASE WHEN s.uddannelse = '{u}' THEN 1 END)", f"n_uddannelse_{u}", "count")
           for u in contract.UDDANNELSE]
    lv += [("COUNT(CASE WHEN s.uddannelse IS NULL THEN 1 END)", "n_uddannelse_ukendt", "count")]
    level1 = ",\n           ".join(f"{e} AS {n}" for e, n, k in lv if k != "personer")
    level2 = []
    for e, n, k in lv:
        if k == "count":
            level2.append(f"CAST(SUM(pp.{n}) AS BIGINT) AS {n}")
        elif k == "sum":
            level2.append(f"CAST(SUM(pp.{n}) AS DOUBLE) AS {n}")
        else:
            level2.append(f"COUNT(CASE WHEN pp.{e} > 0 THEN 1 END) AS {n}")
    flow_cols = ",\n           ".join(level2)
    flow_names = [n for _, n, _ in lv if n != "forloeb_startet"]
    outs = flow_names
    mean_cols = [f"CASE WHEN fl.{o}_n > 0 THEN fl.{o}_sum / fl.{o}_n ELSE NULL END AS {o}"
                 for o, _ in PANEL_OUTCOMES]
    mean_cols += [
        "CASE WHEN fl.hazard_job_risikouger > 0 THEN CAST(fl.hazard_job_haendelser AS DOUBLE) / "
        "fl.hazard_job_risikouger ELSE NULL END AS hazard_job",
        "CASE WHEN fl.forloeb_startet > 0 THEN fl.alder_sum / fl.forloeb_startet ELSE NULL END AS alder_gns",
        "CASE WHEN fl.aar_paa_ydelse_sum > 0 THEN fl.samtaler_hele_sum / fl.aar_paa_ydelse_sum ELSE NULL END"
        " AS samtaler_pr_helaarsperson",
        "CASE WHEN fl.aar_paa_ydelse_sum > 0 THEN fl.minutter_hele_sum / fl.aar_paa_ydelse_sum ELSE NULL END"
        " AS minutter_pr_helaarsperson",
        "CASE WHEN fl.aar_paa_ydelse_sum > 0 THEN fl.udgift_hele_sum / fl.aar_paa_ydelse_sum ELSE NULL END"
        " AS udgift_pr_helaarsperson",
    ]
    count_like = {n for n in flow_names if not n.endswith("_sum")}
    flow_select = ",\n       ".join(
        (f"COALESCE(fl.{n}, 0) AS {n}" if n in count_like else f"fl.{n}") for n in flow_names)
    mean_select = ",\n       ".join(mean_cols)
    label = period_label_sql("n.periode_nr", periode)

    return f"""
WITH pp AS (
    SELECT s.kommune_kode, s.ydelsesgruppe, s.{nr} AS periode_nr, s.person_id,
           {level1}
    FROM sp s
    JOIN tid_til_job t ON t.spell_id = s.spell_id
    JOIN ressourcer r ON r.spell_id = s.spell_id
    GROUP BY s.kommune_kode, s.ydelsesgruppe, s.{nr}, s.person_id
), fl AS (
    SELECT pp.kommune_kode, pp.ydelsesgruppe, pp.periode_nr,
           COUNT(*) AS personer_startet,
           {flow_cols}
    FROM pp
    GROUP BY pp.kommune_kode, pp.ydelsesgruppe, pp.periode_nr
), af1 AS (
    SELECT s.kommune_kode, s.ydelsesgruppe, {slut_nr} AS periode_nr, s.person_id, COUNT(*) AS n
    FROM sp s WHERE s.slut_dato IS NOT NULL AND s.slut_dato <= {de}
    GROUP BY s.kommune_kode, s.ydelsesgruppe, {slut_nr}, s.person_id
), af AS (
    SELECT kommune_kode, ydelsesgruppe, periode_nr,
           CAST(SUM(n) AS BIGINT) AS forloeb_afsluttet, COUNT(*) AS personer_afsluttet
    FROM af1 GROUP BY kommune_kode, ydelsesgruppe, periode_nr
), bs1 AS (
    SELECT s.kommune_kode, s.ydelsesgruppe, p.periode_nr, s.person_id,
           COUNT(CASE WHEN s.slut_dato IS NULL OR s.slut_dato > p.til THEN 1 END) AS aabne,
           SUM(DATE_DIFF('day', GREATEST(s.start_dato, p.fra),
                         LEAST(COALESCE(s.slut_dato, {de}), p.til)) + 1) AS dage,
           SUM(CAST(CAST(DATE_DIFF('day', GREATEST(s.start_dato, p.fra),
                              LEAST(COALESCE(s.slut_dato, {de}), p.til)) + 1 AS DOUBLE) / p.dage
                    AS {EXACT}))
               AS hel
    FROM sp s JOIN perioder_{periode} p
      ON s.start_dato <= p.til AND COALESCE(s.slut_dato, {de}) >= p.fra
    GROUP BY s.kommune_kode, s.ydelsesgruppe, p.periode_nr, s.person_id
), bs AS (
    SELECT kommune_kode, ydelsesgruppe, periode_nr,
           CAST(SUM(aabne) AS BIGINT) AS forloeb_aabne, COUNT(*) AS personer_paa_ydelse,
           CAST(SUM(dage) AS BIGINT) AS dage_paa_ydelse, CAST(SUM(hel) AS DOUBLE) AS helaarspersoner
    FROM bs1 GROUP BY kommune_kode, ydelsesgruppe, periode_nr
), noegler AS (
    SELECT kommune_kode, ydelsesgruppe, periode_nr FROM fl
    UNION SELECT kommune_kode, ydelsesgruppe, periode_nr FROM af
    UNION SELECT kommune_kode, ydelsesgruppe, periode_nr FROM bs
)
SELECT n.kommune_kode, n.ydelsesgruppe, n.periode_nr,
       {label} AS periode, p.fra AS periode_fra,
       p.til AS periode_til,
       COALESCE(fl.forloeb_startet, 0) AS forloeb_startet,
       COALESCE(fl.personer_startet, 0) AS personer_startet,
       COALESCE(af.forloeb_afsluttet, 0) AS forloeb_afsluttet,
       COALESCE(af.personer_afsluttet, 0) AS personer_afsluttet,
       COALESCE(bs.forloeb_aabne, 0) AS forloeb_aabne,
       COALESCE(bs.personer_paa_ydelse, 0) AS personer_paa_ydelse,
       COALESCE(bs.dage_paa_ydelse, 0) AS dage_paa_ydelse,
       COALESCE(bs.helaarspersoner, 0.0) AS helaarspersoner,
       {flow_select},
       {mean_select}
FROM noegler n
LEFT JOIN perioder_{periode} p ON p.periode_nr = n.periode_nr
LEFT JOIN fl ON fl.kommune_kode = n.kommune_kode AND fl.ydelsesgruppe = n.ydelsesgruppe
            AND fl.periode_nr = n.periode_nr
LEFT JOIN af ON af.kommune_kode = n.kommune_kode AND af.ydelsesgruppe = n.ydelsesgruppe
            AND af.periode_nr = n.periode_nr
LEFT JOIN bs ON bs.kommune_kode = n.kommune_kode AND bs.ydelsesgruppe = n.ydelsesgruppe
            AND bs.periode_nr = n.periode_nr
ORDER BY n.kommune_kode, n.ydelsesgruppe, n.periode_nr
"""


def survival_sql() -> str:
    """Discrete-time survival table: events and spells at risk per duration week.

    Key: kommune_kode × ydelsesgruppe × start quarter × forsoeg_eksponeret. At risk at week
    ``uge`` = spells with varighed_uger >= uge; n_job / n_uddannelse / n_censur = spells whose
    varighed_uger equals ``uge`` with that status (a censored spell is at risk at its own
    week: the lifelines convention). Spells with unknown duration are left out.
    ``start_kvartal`` is StatBank's label of the start quarter (``2017Q3``).
    """
    label = period_label_sql("start_kvartal_nr", "kvartal")
    key = "kommune_kode, ydelsesgruppe, start_kvartal_nr, forsoeg_eksponeret"
    on = " AND ".join(f"g.{k} = a.{k}" for k in
                      ("kommune_kode", "ydelsesgruppe", "start_kvartal_nr", "forsoeg_eksponeret"))
    return f"""
WITH a AS (
    SELECT {key}, varighed_uger AS uge, COUNT(*) AS n,
           COUNT(CASE WHEN status = 'job' THEN 1 END) AS n_job,
           COUNT(CASE WHEN status = 'uddannelse' THEN 1 END) AS n_uddannelse,
           COUNT(CASE WHEN status = 'censureret' THEN 1 END) AS n_censur
    FROM tid_til_job WHERE varighed_uger IS NOT NULL
    GROUP BY {key}, varighed_uger
), mx AS (
    SELECT {key}, MAX(uge) AS maks FROM a GROUP BY {key}
), g AS (
    SELECT mx.kommune_kode, mx.ydelsesgruppe, mx.start_kvartal_nr, mx.forsoeg_eksponeret, v.uge
    FROM mx JOIN varigheder v ON v.uge <= mx.maks
), f AS (
    SELECT g.kommune_kode, g.ydelsesgruppe, g.start_kvartal_nr, g.forsoeg_eksponeret, g.uge,
           COALESCE(a.n, 0) AS n, COALESCE(a.n_job, 0) AS n_job,
           COALESCE(a.n_uddannelse, 0) AS n_uddannelse, COALESCE(a.n_censur, 0) AS n_censur
    FROM g LEFT JOIN a ON {on} AND g.uge = a.uge
)
SELECT kommune_kode, ydelsesgruppe, {label} AS start_kvartal, start_kvartal_nr,
       forsoeg_eksponeret, CAST(uge AS INTEGER) AS uge,
       CAST(SUM(n) OVER (PARTITION BY kommune_kode, ydelsesgruppe, start_kvartal_nr, forsoeg_eksponeret
                         ORDER BY uge DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT)
           AS n_risiko,
       CAST(n_job AS BIGINT) AS n_job, CAST(n_uddannelse AS BIGINT) AS n_uddannelse,
       CAST(n_censur AS BIGINT) AS n_censur
FROM f
ORDER BY kommune_kode, ydelsesgruppe, start_kvartal_nr, forsoeg_eksponeret, uge
"""
