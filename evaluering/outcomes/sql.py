"""The outcome transformations as SQL text in the DuckDB dialect (translated to Spark by sqlglot).

Every function returns ``SELECT`` text; :mod:`evaluering.outcomes.build` runs them as named
steps on an engine (:mod:`evaluering.engine`). Parameters are plain numbers/dates that the
builder computed beforehand and are written into the text as literals.

Input views (registered by the builder):
``forloeb``, ``kontakter``, ``ugestatus``, ``ugestatus_personer`` (the canonical tables),
``forsoeg_kommuner`` (forsoeg_id, kommune_kode, rolle, kohorte_dato),
``forsoeg_grupper`` (forsoeg_id, ydelsesgruppe), ``maalgrupper`` (ydelsesgruppe).

Week arithmetic: a date's week index is ``DATE_DIFF('day', DATE '1990-01-01', d) // 7``
(1990-01-01 is a Monday, so this is the ISO week containing ``d`` counted from ISO week
1990-W01, the contract's :func:`evaluering.contract.week_index_of_date`). Week indices are
contiguous across years, so ISO week 53 needs no special case.
"""

from __future__ import annotations

import datetime as dt

from evaluering import contract

EPOCH = "DATE '1990-01-01'"
BENEFIT_CATEGORIES = contract.YDELSESGRUPPER


def _lit_list(values) -> str:
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


def _date(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


def week_of(expr: str) -> str:
    return f"CAST(DATE_DIFF('day', {EPOCH}, {expr}) // 7 AS INTEGER)"


# --------------------------------------------------------------------------- spells
def spells_sql() -> str:
    """``sp``: canonical spells with week indices, start periods and the target-group flag."""
    return f"""
SELECT f.spell_id, f.person_id, f.kommune_kode, f.ydelsesgruppe, f.start_dato, f.slut_dato,
       f.afgang, f.koen, f.foedselsaar, f.herkomst, f.uddannelse,
       {week_of('f.start_dato')} AS start_uge,
       CASE WHEN f.slut_dato IS NULL THEN NULL ELSE {week_of('f.slut_dato')} END AS slut_uge,
       CAST(YEAR(f.start_dato) * 12 + MONTH(f.start_dato) - 1 AS INTEGER) AS start_maaned_nr,
       CAST(YEAR(f.start_dato) * 4 + QUARTER(f.start_dato) - 1 AS INTEGER) AS start_kvartal_nr,
       CAST(YEAR(f.start_dato) AS VARCHAR) || '-' || LPAD(CAST(MONTH(f.start_dato) AS VARCHAR), 2, '0')
           AS start_maaned,
       CAST(YEAR(f.start_dato) AS VARCHAR) || '-Q' || CAST(QUARTER(f.start_dato) AS VARCHAR)
           AS start_kvartal,
       CASE WHEN m.ydelsesgruppe IS NULL THEN FALSE ELSE TRUE END AS i_maalgruppe
FROM forloeb f
LEFT JOIN maalgrupper m ON m.ydelsesgruppe = f.ydelsesgruppe
"""


# --------------------------------------------------------------------------- exposure
def exposure_sql() -> str:
    """``eksponering``: one row per spell × trial whose target group contains the spell's group."""
    return f"""
SELECT s.spell_id, g.forsoeg_id, s.kommune_kode, s.ydelsesgruppe, s.start_dato,
       COALESCE(k.rolle, 'kontrol') AS rolle,
       k.kohorte_dato,
       CASE WHEN k.kohorte_dato IS NULL THEN NULL
            ELSE CAST(YEAR(k.kohorte_dato) * 12 + MONTH(k.kohorte_dato) - 1 AS INTEGER) END
           AS kohorte_maaned_nr,
       CASE WHEN k.kohorte_dato IS NULL THEN NULL
            ELSE CAST(YEAR(k.kohorte_dato) * 4 + QUARTER(k.kohorte_dato) - 1 AS INTEGER) END
           AS kohorte_kvartal_nr,
       CASE WHEN k.rolle = 'behandlet' AND s.start_dato >= k.kohorte_dato THEN TRUE ELSE FALSE END
           AS eksponeret,
       CASE WHEN s.start_dato <= g.slut THEN TRUE ELSE FALSE END AS i_vindue,
       s.start_maaned, s.start_kvartal, s.start_maaned_nr, s.start_kvartal_nr
FROM sp s
JOIN forsoeg_grupper g ON g.ydelsesgruppe = s.ydelsesgruppe
LEFT JOIN forsoeg_kommuner k ON k.forsoeg_id = g.forsoeg_id AND k.kommune_kode = s.kommune_kode
"""


def exposure_per_spell_sql() -> str:
    """``eks_spell``: the comma-joined, sorted ids of the trials each spell is exposed to."""
    return """
SELECT spell_id, ARRAY_TO_STRING(LIST_SORT(LIST(forsoeg_id)), ',') AS forsoeg_eksponeret
FROM eksponering WHERE eksponeret GROUP BY spell_id
"""


# --------------------------------------------------------------------------- time to job
def weekly_in_range_sql(first_week: int, last_week: int) -> str:
    """``uw``: the sparse weekly rows inside the usable range [first_week, last_week]."""
    return f"""
SELECT person_id, CAST(uge AS INTEGER) AS uge, kategori FROM ugestatus
WHERE uge >= {int(first_week)} AND uge <= {int(last_week)}
"""


def free_runs_sql(first_week: int, last_week: int, n_weeks: int) -> str:
    """``fri``: maximal runs [fra, til] of >= N weeks without any weekly row, per person.

    The sparse rows of a person are ordered; the gap between a row and the next one (LEAD,
    with the week after the range as the sentinel) is a run of weeks without benefit. A
    sentinel row at ``first_week - 1`` for every person in the register opens the first gap.
    Runs are capped at the end of the usable range, so every run returned is confirmed.
    """
    return f"""
WITH pts AS (
    SELECT person_id, uge FROM uw
    UNION ALL
    SELECT person_id, {int(first_week) - 1} AS uge FROM ugestatus_personer
), nx AS (
    SELECT person_id, uge,
           LEAD(uge, 1, {int(last_week) + 1}) OVER (PARTITION BY person_id ORDER BY uge) AS naeste
    FROM pts
)
SELECT person_id, uge + 1 AS fra, naeste - 1 AS til
FROM nx WHERE naeste - uge - 1 >= {int(n_weeks)}
"""


def time_to_job_weekly_sql(first_week: int, last_week: int, n_weeks: int,
                           limit_reason: str) -> str:
    """``ttj_raw`` from the weekly register.

    For a spell starting in week S the search starts at S' = max(S, first_week). The job week
    is the first week t >= S' that starts a run of N weeks without any benefit row (all
    inside the usable range, so t <= last_week - N + 1). The education week is the first
    week >= S' with an ``su`` row; the censoring week the first with a ``pension`` or
    ``doed_udvandret`` row. The earliest of the three is the event. Without any, the spell
    is censored at the last week in which a run could still be confirmed (last_week - N + 1),
    with reason ``limit_reason`` (data_slut or vindue_slut).
    """
    lim = int(last_week) - int(n_weeks) + 1
    return f"""
WITH s AS (
    SELECT spell_id, person_id, start_uge, GREATEST(start_uge, {int(first_week)}) AS soeg_fra
    FROM sp
), pers AS (
    SELECT DISTINCT person_id FROM ugestatus_personer
), job AS (
    SELECT s.spell_id, MIN(GREATEST(r.fra, s.soeg_fra)) AS job_uge
    FROM s JOIN fri r ON r.person_id = s.person_id
    WHERE r.til >= s.soeg_fra AND r.til - GREATEST(r.fra, s.soeg_fra) + 1 >= {int(n_weeks)}
    GROUP BY s.spell_id
), ud AS (
    SELECT s.spell_id,
           MIN(CASE WHEN u.kategori IN ({_lit_list(contract.UGE_UDDANNELSE)}) THEN u.uge END) AS udd_uge,
           MIN(CASE WHEN u.kategori = 'pension' THEN u.uge END) AS pension_uge,
           MIN(CASE WHEN u.kategori = 'doed_udvandret' THEN u.uge END) AS doed_uge
    FROM s JOIN uw u ON u.person_id = s.person_id AND u.uge >= s.soeg_fra
    WHERE u.kategori IN ({_lit_list(contract.UGE_UDDANNELSE + contract.UGE_CENSUR)})
    GROUP BY s.spell_id
), e AS (
    SELECT s.spell_id, s.start_uge, s.soeg_fra,
           CASE WHEN p.person_id IS NULL THEN FALSE ELSE TRUE END AS i_register,
           j.job_uge, d.udd_uge, LEAST(d.pension_uge, d.doed_uge) AS censur_uge,
           CASE WHEN d.doed_uge IS NOT NULL AND (d.pension_uge IS NULL OR d.doed_uge < d.pension_uge)
                THEN 'doed_udvandret' ELSE 'pension' END AS censur_kategori,
           LEAST(j.job_uge, d.udd_uge, d.pension_uge, d.doed_uge) AS haendelse_uge
    FROM s
    LEFT JOIN pers p ON p.person_id = s.person_id
    LEFT JOIN job j ON j.spell_id = s.spell_id
    LEFT JOIN ud d ON d.spell_id = s.spell_id
)
SELECT spell_id,
       CASE WHEN NOT i_register THEN NULL
            WHEN haendelse_uge IS NOT NULL THEN haendelse_uge - start_uge
            WHEN {lim} >= soeg_fra THEN {lim} - start_uge
            ELSE NULL END AS varighed_uger,
       CASE WHEN i_register AND {lim} >= start_uge THEN {lim} - start_uge ELSE NULL END
           AS opfoelgning_uger,
       CASE WHEN i_register AND haendelse_uge IS NOT NULL AND haendelse_uge = job_uge THEN 'job'
            WHEN i_register AND haendelse_uge IS NOT NULL AND haendelse_uge = udd_uge THEN 'uddannelse'
            ELSE 'censureret' END AS status,
       CASE WHEN NOT i_register THEN 'ikke_i_ugeregister'
            WHEN haendelse_uge IS NOT NULL AND haendelse_uge = job_uge THEN NULL
            WHEN haendelse_uge IS NOT NULL AND haendelse_uge = udd_uge THEN NULL
            WHEN haendelse_uge IS NOT NULL THEN censur_kategori
            WHEN {lim} >= soeg_fra THEN '{limit_reason}'
            ELSE 'ingen_opfoelgning' END AS censur_aarsag,
       'ugestatus' AS tid_til_job_kilde
FROM e
"""


def time_to_job_spells_sql(last_week: int, limit_reason: str) -> str:
    """``ttj_raw`` from the spell register alone (no weekly register given).

    The event is the spell's end: ``afgang = 'job'`` → job, ``'uddannelse'`` → education, any
    other reason censors at the end week. An open spell, or one ending after the last usable
    week, is censored at the last usable week (data end or window end).
    """
    lw = int(last_week)
    return f"""
SELECT spell_id,
       CASE WHEN slut_uge IS NOT NULL AND slut_uge <= {lw} THEN slut_uge - start_uge
            WHEN {lw} >= start_uge THEN {lw} - start_uge
            ELSE NULL END AS varighed_uger,
       CASE WHEN {lw} >= start_uge THEN {lw} - start_uge ELSE NULL END AS opfoelgning_uger,
       CASE WHEN slut_uge IS NOT NULL AND slut_uge <= {lw} AND afgang = 'job' THEN 'job'
            WHEN slut_uge IS NOT NULL AND slut_uge <= {lw} AND afgang = 'uddannelse' THEN 'uddannelse'
            ELSE 'censureret' END AS status,
       CASE WHEN slut_uge IS NOT NULL AND slut_uge <= {lw} AND afgang IN ('job', 'uddannelse') THEN NULL
            WHEN slut_uge IS NOT NULL AND slut_uge <= {lw} THEN 'afgang_' || afgang
            WHEN {lw} >= start_uge THEN '{limit_reason}'
            ELSE 'ingen_opfoelgning' END AS censur_aarsag,
       'forloeb' AS tid_til_job_kilde
FROM sp
"""


def _job_within(h: int) -> str:
    return f"""CASE WHEN t.varighed_uger IS NULL THEN NULL
            WHEN t.opfoelgning_uger IS NULL OR t.opfoelgning_uger < {h} THEN NULL
            WHEN t.status = 'job' THEN CASE WHEN t.varighed_uger <= {h} THEN 1 ELSE 0 END
            WHEN t.status = 'uddannelse' THEN 0
            WHEN t.varighed_uger >= {h} THEN 0
            ELSE NULL END"""


def time_to_job_sql() -> str:
    """``tid_til_job``: the per-spell table with derived indicators and exposure."""
    return f"""
SELECT s.spell_id, s.person_id, s.kommune_kode, s.ydelsesgruppe, s.start_dato, s.slut_dato,
       s.afgang, s.start_uge, s.start_maaned, s.start_kvartal, s.start_maaned_nr, s.start_kvartal_nr,
       CAST(t.varighed_uger AS INTEGER) AS varighed_uger, t.status, t.censur_aarsag,
       CAST(t.opfoelgning_uger AS INTEGER) AS opfoelgning_uger,
       t.tid_til_job_kilde,
       CAST({_job_within(13)} AS INTEGER) AS job_13_uger,
       CAST({_job_within(26)} AS INTEGER) AS job_26_uger,
       CAST({_job_within(52)} AS INTEGER) AS job_52_uger,
       CAST(CASE WHEN t.varighed_uger IS NULL THEN NULL
                 WHEN t.opfoelgning_uger IS NULL OR t.opfoelgning_uger < 52 THEN NULL
                 WHEN t.status = 'job' THEN LEAST(t.varighed_uger, 52)
                 WHEN t.status = 'uddannelse' THEN 52
                 WHEN t.varighed_uger >= 52 THEN 52
                 ELSE NULL END AS DOUBLE) AS rmst_52_uger,
       COALESCE(x.forsoeg_eksponeret, '') AS forsoeg_eksponeret
FROM sp s
JOIN ttj_raw t ON t.spell_id = s.spell_id
LEFT JOIN eks_spell x ON x.spell_id = s.spell_id
"""


# --------------------------------------------------------------------------- resources
ATTEST_FORMER = ("LAE285", "LAE265", "LAE125")
KANALER = contract.KANAL


def contact_assignment_sql() -> str:
    """``kt``: every contact with the spell it belongs to (NULL when none is open on ``dato``).

    Candidates: spells of the same person with start_dato <= dato <= slut_dato (open spells
    have no end). Tie-break, in order: a spell in a trial's target group first, then a spell
    in the contact's own municipality, then the latest start_dato, then the lowest spell_id.
    """
    return """
WITH kand AS (
    SELECT k.contact_id, s.spell_id, s.start_dato,
           ROW_NUMBER() OVER (PARTITION BY k.contact_id ORDER BY
               CASE WHEN s.i_maalgruppe THEN 0 ELSE 1 END,
               CASE WHEN s.kommune_kode = k.kommune_kode THEN 0 ELSE 1 END,
               s.start_dato DESC, s.spell_id) AS rn
    FROM kontakter k
    JOIN sp s ON s.person_id = k.person_id AND k.dato >= s.start_dato
             AND (s.slut_dato IS NULL OR k.dato <= s.slut_dato)
)
SELECT k.contact_id, k.person_id, k.kommune_kode, k.dato, k.type, k.kanal,
       REPLACE(REPLACE(REPLACE(UPPER(k.attest), ' ', ''), '-', ''), 'Æ', 'AE') AS attest_form,
       CAST(k.minutter AS DOUBLE) AS minutter, CAST(k.udgift_kr AS DOUBLE) AS udgift_kr,
       c.spell_id,
       CASE WHEN c.spell_id IS NULL THEN NULL ELSE DATE_DIFF('day', c.start_dato, k.dato) END AS dag_i_forloeb
FROM kontakter k
LEFT JOIN (SELECT contact_id, spell_id, start_dato FROM kand WHERE rn = 1) c
       ON c.contact_id = k.contact_id
"""


def _resource_aggs(suffix: str, cond: str) -> list[str]:
    """Aggregates over the contacts matching ``cond`` (a SQL condition on k)."""
    c = f"k.spell_id IS NOT NULL AND {cond}"
    out = [
        f"COUNT(CASE WHEN {c} THEN 1 END) AS kontakter_{suffix}",
        f"COUNT(CASE WHEN {c} AND k.type = 'samtale' THEN 1 END) AS samtaler_{suffix}",
    ]
    for kanal in KANALER:
        out.append(f"COUNT(CASE WHEN {c} AND k.type = 'samtale' AND k.kanal = '{kanal}' THEN 1 END)"
                   f" AS samtaler_{kanal}_{suffix}")
    out += [
        f"COUNT(CASE WHEN {c} AND k.type = 'samtale' AND k.kanal IS NULL THEN 1 END)"
        f" AS samtaler_ukendt_kanal_{suffix}",
        f"COUNT(CASE WHEN {c} AND k.type = 'laegeattest' THEN 1 END) AS laegeattester_{suffix}",
    ]
    for form in ATTEST_FORMER:
        out.append(f"COUNT(CASE WHEN {c} AND k.type = 'laegeattest' AND k.attest_form = '{form}' THEN 1 END)"
                   f" AS laegeattester_{form.lower()}_{suffix}")
    out += [
        f"COUNT(CASE WHEN {c} AND k.type = 'laegeattest' AND (k.attest_form IS NULL OR k.attest_form NOT IN "
        f"({_lit_list(ATTEST_FORMER)})) THEN 1 END) AS laegeattester_andre_{suffix}",
        f"COUNT(CASE WHEN {c} AND k.type = 'rehabiliteringsteam' THEN 1 END) AS rehab_{suffix}",
        f"COUNT(CASE WHEN {c} AND k.type = 'tilbud' THEN 1 END) AS tilbud_{suffix}",
        f"SUM(CASE WHEN {c} THEN k.minutter END) AS minutter_{suffix}",
        f"COUNT(CASE WHEN {c} AND k.minutter IS NOT NULL THEN 1 END) AS kontakter_med_minutter_{suffix}",
        f"SUM(CASE WHEN {c} THEN k.udgift_kr END) AS udgift_{suffix}",
        f"COUNT(CASE WHEN {c} AND k.udgift_kr IS NOT NULL THEN 1 END) AS kontakter_med_udgift_{suffix}",
    ]
    return out


def resources_raw_sql() -> str:
    """``res_raw``: contact counts per spell, first 26 weeks (days 0-181) and whole spell."""
    aggs = _resource_aggs("26", "k.dag_i_forloeb < 182") + _resource_aggs("hele", "TRUE")
    body = ",\n       ".join(aggs)
    return f"""
SELECT s.spell_id,
       {body}
FROM sp s LEFT JOIN kt k ON k.spell_id = s.spell_id
GROUP BY s.spell_id
"""


def resources_sql(obs_end: dt.date, data_end: dt.date) -> str:
    """``ressourcer``: the contract's resource outcomes per spell.

    The first-26-week outcomes are NULL unless the spell's first 26 weeks are fully observed
    (it ended on or before ``obs_end``, or days 0-181 are all on or before ``obs_end``).
    Sums of minutes / DKK add the recorded values (a missing value adds 0); the number of
    contacts with a recorded value is kept alongside.
    """
    oe, de = _date(obs_end), _date(data_end)
    full = (f"(DATE_DIFF('day', s.start_dato, {oe}) >= 181 "
            f"OR (s.slut_dato IS NOT NULL AND s.slut_dato <= {oe}))")

    def f26(expr: str) -> str:
        return f"CASE WHEN {full} THEN {expr} ELSE NULL END"

    def money(kind: str, sfx: str) -> str:
        # a missing value adds nothing (meetings carry no direct cost; unrecorded minutes
        # cannot be imputed); the coverage is in kontakter_med_<kind>_<sfx>
        return f"CAST(COALESCE(r.{kind}_{sfx}, 0) AS DOUBLE)"

    cols26 = [f"{f26('r.samtaler_26')} AS samtaler_pr_forloeb"]
    cols26 += [f"{f26(f'r.samtaler_{k}_26')} AS samtaler_{k}_26" for k in KANALER]
    cols26 += [f"{f26('r.samtaler_ukendt_kanal_26')} AS samtaler_ukendt_kanal_26"]
    known = " + ".join(f"r.samtaler_{k}_26" for k in KANALER)
    cols26 += [
        f"{f26(f'CASE WHEN ({known}) = 0 THEN NULL ELSE CAST(r.samtaler_fysisk_26 AS DOUBLE) / ({known}) END')}"
        " AS andel_fysiske_samtaler",
        f"{f26(money('minutter', '26'))} AS minutter_pr_forloeb",
        f"{f26('r.laegeattester_26')} AS laegeattester_pr_forloeb",
    ]
    cols26 += [f"{f26(f'r.laegeattester_{f.lower()}_26')} AS laegeattester_{f.lower()}_26"
               for f in ATTEST_FORMER]
    cols26 += [
        f"{f26('r.laegeattester_andre_26')} AS laegeattester_andre_26",
        f"{f26('r.rehab_26')} AS rehab_pr_forloeb",
        f"{f26('r.tilbud_26')} AS tilbud_26",
        f"{f26(money('udgift', '26'))} AS udgift_pr_forloeb",
        f"{f26('r.kontakter_26')} AS kontakter_26",
        f"{f26('r.kontakter_med_minutter_26')} AS kontakter_med_minutter_26",
        f"{f26('r.kontakter_med_udgift_26')} AS kontakter_med_udgift_26",
    ]
    hele = ["r.kontakter_hele", "r.samtaler_hele"]
    hele += [f"r.samtaler_{k}_hele" for k in KANALER]
    hele += ["r.samtaler_ukendt_kanal_hele", "r.laegeattester_hele"]
    hele += [f"r.laegeattester_{f.lower()}_hele" for f in ATTEST_FORMER]
    hele += ["r.laegeattester_andre_hele", "r.rehab_hele", "r.tilbud_hele",
             f"{money('minutter', 'hele')} AS minutter_hele", f"{money('udgift', 'hele')} AS udgift_hele"]
    cols = ",\n       ".join(cols26 + hele)
    return f"""
SELECT s.spell_id, s.person_id, s.kommune_kode, s.ydelsesgruppe, s.start_dato, s.slut_dato,
       s.start_maaned, s.start_kvartal, s.start_maaned_nr, s.start_kvartal_nr,
       {full} AS fuld_opfoelgning_26,
       CAST(DATE_DIFF('day', s.start_dato, COALESCE(s.slut_dato, {de})) + 1 AS DOUBLE) / 365.25
           AS aar_paa_ydelse,
       {cols}
FROM sp s JOIN res_raw r ON r.spell_id = s.spell_id
"""


def contacts_outside_sql() -> str:
    """``kontakter_uden_forloeb``: contacts not inside any spell, tallied (no person ids)."""
    return """
SELECT kommune_kode, type,
       CAST(YEAR(dato) AS VARCHAR) || '-Q' || CAST(QUARTER(dato) AS VARCHAR) AS kvartal,
       COUNT(*) AS n_kontakter, COUNT(DISTINCT person_id) AS n_personer
FROM kt WHERE spell_id IS NULL
GROUP BY kommune_kode, type, CAST(YEAR(dato) AS VARCHAR) || '-Q' || CAST(QUARTER(dato) AS VARCHAR)
"""
