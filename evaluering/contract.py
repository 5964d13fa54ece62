"""Data contract v1: names, categories and canonical (processed) table schemas.

This module is the single source of truth shared by the simulator (which writes raw
registers), ingest (which validates raw registers into canonical tables) and outcomes/panels
(which read canonical tables). ``docs/data-format.md`` documents the same in prose.

Raw registers (input), one file per register in a data-set folder:
``forloeb``, ``kontakter``, ``ugestatus`` as ``.parquet``, ``.csv`` or ``.csv.gz``;
``ydelseskoder.toml`` (code → category) and a trial catalogue ``forsoeg.toml``.

Canonical tables (output of ``evaluering ingest``, in ``data/processed/<name>/``):

``forloeb.parquet``
    spell_id int64 (stable: 1-based line order within the input), person_id string,
    kommune_kode string (3 digits), ydelsesgruppe string, start_dato date32,
    slut_dato date32 (null = open), afgang string (null iff open), koen string,
    foedselsaar int16, herkomst string (nullable), uddannelse string (nullable),
    plus extra covariate columns kept as they came (valid identifiers only).
``kontakter.parquet``
    contact_id int64, person_id, kommune_kode, dato date32, type, kanal (nullable),
    attest (nullable), minutter float64 (nullable), udgift_kr float64 (nullable).
``ugestatus.parquet`` (sparse: only person-weeks *with* a benefit code)
    person_id string, uge int32 (week index: ISO weeks since the ISO week containing
    1990-01-01, see :func:`week_index`), ydelseskode string, kategori string.
``ugestatus_personer.parquet``
    person_id string: every person who appears in the weekly register at all (a person in
    this table with no row for a week inside the observed range was self-supporting then).
    The observed range (first and last week index) is in the manifest under
    ``registers.ugestatus.first_week`` / ``last_week`` and in ``ugestatus_range.json``.
``karantaene/<register>.parquet``
    the raw row as text columns, plus ``source_file``, ``source_line`` (1-based line in the
    file, header = line 1; for Parquet the 1-based row number + 1), ``reasons`` (list of
    reason codes, sorted). CPR numbers are never written: a CPR-shaped ``person_id`` is
    replaced by ``"<cpr fjernet>"`` in quarantine.
"""

from __future__ import annotations

import datetime as dt

REGISTERS = ("forloeb", "kontakter", "ugestatus")
REQUIRED_REGISTERS = ("forloeb",)

YDELSESGRUPPER = (
    "a-dagpenge", "kontanthjaelp", "uddannelseshjaelp", "sygedagpenge", "jobafklaring",
    "ressourceforloeb", "ledighedsydelse", "fleksjob", "revalidering", "integrationsydelse",
)
AFGANG = ("job", "uddannelse", "anden_ydelse", "pension", "doed_udvandret", "andet")
KOEN = ("K", "M")
HERKOMST = ("dansk", "vestlig", "ikke_vestlig")
UDDANNELSE = ("grundskole", "gymnasial", "erhvervsfaglig", "videregaaende")
KONTAKT_TYPE = ("samtale", "laegeattest", "rehabiliteringsteam", "tilbud")
KANAL = ("fysisk", "telefon", "video", "digital")
FOEDSELSAAR_RANGE = (1900, 2010)

# Categories a weekly code may map to (ydelseskoder.toml [koder] values).
UGE_KATEGORIER = YDELSESGRUPPER + ("su", "pension", "doed_udvandret")
UGE_CENSUR = ("pension", "doed_udvandret")
UGE_UDDANNELSE = ("su",)

# Columns per raw register: (name, required)
RAW_COLUMNS: dict[str, tuple[tuple[str, bool], ...]] = {
    "forloeb": (("person_id", True), ("kommune_kode", True), ("ydelsesgruppe", True),
                ("start_dato", True), ("slut_dato", True), ("afgang", True), ("koen", True),
                ("foedselsaar", True), ("herkomst", False), ("uddannelse", False)),
    "kontakter": (("person_id", True), ("kommune_kode", True), ("dato", True), ("type", True),
                  ("kanal", False), ("attest", False), ("minutter", False), ("udgift_kr", False)),
    # long layout; the wide DREAM layout (person_id + y_YYWW columns) is detected separately
    "ugestatus": (("person_id", True), ("uge", True), ("ydelseskode", True)),
}

# Outcome ids of the data contract (in `udfald` and in every output)
OUTCOMES_TIME_TO_JOB = ("job_13_uger", "job_26_uger", "job_52_uger", "rmst_52_uger", "hazard_job")
OUTCOMES_RESOURCES = ("samtaler_pr_forloeb", "andel_fysiske_samtaler", "minutter_pr_forloeb",
                      "laegeattester_pr_forloeb", "rehab_pr_forloeb", "udgift_pr_forloeb")
OUTCOME_IDS = OUTCOMES_TIME_TO_JOB + OUTCOMES_RESOURCES
OUTCOME_SHORTHANDS = {"tid_til_job": OUTCOMES_TIME_TO_JOB}

# Reason codes for quarantined rows (stable ids; documented in docs/data-format.md)
REASONS = {
    "cpr_i_person_id": "person_id looks like a CPR number",
    "manglende_vaerdi": "a required value is missing",
    "ugyldig_dato": "a date that cannot be parsed",
    "ukendt_kommune": "kommune_kode is not one of the 98 municipalities",
    "ukendt_kategori": "a category value outside the contract",
    "slut_foer_start": "slut_dato < start_dato",
    "afgang_uden_slut": "afgang given but slut_dato missing, or the reverse",
    "ugyldigt_tal": "a number that cannot be parsed",
    "negativt_tal": "a number that must be >= 0 is negative",
    "foedselsaar_uden_for_interval": "foedselsaar outside 1900-2010",
    "dublet": "an exact duplicate of an earlier row",
    "overlap": "overlaps an earlier spell of the same person in the same ydelsesgruppe",
    "ukendt_ydelseskode": "a weekly benefit code the code mapping lacks",
    "ugyldig_uge": "a week that is not a valid ISO week",
    "kanal_uden_samtale": "kanal given for a contact that is not a samtale",
    "ugyldig_linje": "a CSV line that does not split into the header's fields (wrong number "
                     "of fields or broken quoting)",
    "cpr_i_kolonne": "a CPR-shaped number in a column other than person_id",
    "uge_konflikt": "a second record for the same person and week (long layout) or the same "
                    "person (wide layout) of the weekly register",
}

_EPOCH_MONDAY = dt.date.fromisocalendar(1990, 1, 1)  # 1990-01-01 is itself a Monday


def week_index(year: int, week: int) -> int:
    """ISO (year, week) → int week index (weeks since ISO week 1990-W01)."""
    return (dt.date.fromisocalendar(year, week, 1) - _EPOCH_MONDAY).days // 7


def week_index_of_date(d: dt.date) -> int:
    """The week index of the ISO week containing date ``d``."""
    monday = d - dt.timedelta(days=d.weekday())
    return (monday - _EPOCH_MONDAY).days // 7


def week_monday(index: int) -> dt.date:
    """Monday of the week with this index."""
    return _EPOCH_MONDAY + dt.timedelta(weeks=int(index))


def normalise_kommune_kode(value: str) -> str | None:
    """'0851' and '851' are the same; returns the 3-digit text or None if not numeric."""
    v = str(value).strip()
    if not v.isdigit() or len(v) > 4:
        return None
    n = int(v)
    if n < 100 or n > 999:
        return None
    return f"{n:03d}"
