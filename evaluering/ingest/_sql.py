"""SQL building blocks (DuckDB macros) shared by the register validators."""

from __future__ import annotations

from evaluering.ingest._cpr import MASK, SQL_IS_CPR
from evaluering.reference import kommune_koder


def q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def lit_list(values) -> str:
    return "[" + ", ".join(lit(v) for v in values) + "]"


# Formats of the contract's date dialects; regex guard first, then a strict parse.
DATE_FORMATS = (("iso", r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d"),
                ("dd-mm-yyyy", r"\d{2}-\d{2}-\d{4}", "%d-%m-%Y"),
                ("dd.mm.yyyy", r"\d{2}\.\d{2}\.\d{4}", "%d.%m.%Y"))

NUM_RE = r"[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?"
INT_RE = r"[-+]?\d{1,9}([.,]0+)?"
# a CPR-shaped number inside any text (day 01-31, month 01-12; conservative)
CPR_SUBSTRING_RE = r"(^|\D)(0[1-9]|[12]\d|3[01])(0[1-9]|1[0-2])\d{2}-?\d{4}(\D|$)"


def macros() -> list[str]:
    dates = " ".join(f"WHEN regexp_full_match(v, {lit(rx)}) THEN CAST(try_strptime(v, {lit(fmt)}) AS DATE)"
                     for _, rx, fmt in DATE_FORMATS)
    fmts = " ".join(f"WHEN regexp_full_match(v, {lit(rx)}) THEN {lit(name)}"
                    for name, rx, _ in DATE_FORMATS)
    koder = lit_list(sorted(kommune_koder()))
    return [
        # missing markers: empty, NA and '.'; values are trimmed of spaces and tabs
        # (trim only values that start or end with a space or tab: trim scans the whole value)
        "CREATE OR REPLACE MACRO _nz_trim(x) AS CASE WHEN trim(x, ' \t') IN ('', 'NA', '.') THEN NULL "
        "ELSE trim(x, ' \t') END",
        "CREATE OR REPLACE MACRO nz(x) AS CASE WHEN starts_with(x, ' ') OR starts_with(x, '\t') "
        "OR ends_with(x, ' ') OR ends_with(x, '\t') THEN _nz_trim(x) "
        "WHEN x IN ('', 'NA', '.') THEN NULL ELSE x END",
        f"CREATE OR REPLACE MACRO is_cpr(v) AS {SQL_IS_CPR}",
        f"CREATE OR REPLACE MACRO has_cpr(v) AS CASE WHEN length(v) >= 10 THEN "
        f"coalesce(regexp_matches(v, {lit(CPR_SUBSTRING_RE)}), false) ELSE false END",
        f"CREATE OR REPLACE MACRO mask(v) AS CASE WHEN has_cpr(v) THEN {lit(MASK)} ELSE v END",
        f"CREATE OR REPLACE MACRO pdate(v) AS CASE {dates} END",
        f"CREATE OR REPLACE MACRO date_fmt(v) AS CASE {fmts} END",
        f"CREATE OR REPLACE MACRO pnum(v) AS CASE WHEN regexp_full_match(v, {lit(NUM_RE)}) "
        "THEN try_cast(replace(v, ',', '.') AS DOUBLE) END",
        f"CREATE OR REPLACE MACRO pint(v) AS CASE WHEN regexp_full_match(v, {lit(INT_RE)}) "
        "THEN try_cast(regexp_replace(v, '[.,]0+$', '') AS INTEGER) END",
        "CREATE OR REPLACE MACRO knorm(v) AS CASE WHEN regexp_full_match(v, '\\d{1,4}') "
        "THEN lpad(CAST(CAST(v AS INTEGER) AS VARCHAR), 3, '0') END",
        f"CREATE OR REPLACE MACRO kommune_in(k) AS coalesce(list_contains({koder}, k), false)",
        "CREATE OR REPLACE MACRO kommune_ok(v) AS kommune_in(knorm(v))",
        # ISO week 'YYYY-Www' -> week index (weeks since 1990-W01), NULL when invalid
        "CREATE OR REPLACE MACRO _wk_days(y, w) AS (make_date(y, 1, 4) - DATE '1990-01-01') "
        "- (isodow(make_date(y, 1, 4)) - 1) + (w - 1) * 7",
        "CREATE OR REPLACE MACRO _wk(y, w) AS CASE WHEN w BETWEEN 1 AND 53 AND y BETWEEN 1900 AND 2200 "
        "AND isoyear(DATE '1990-01-01' + CAST(_wk_days(y, w) AS INTEGER)) = y "
        "THEN CAST(_wk_days(y, w) // 7 AS INTEGER) END",
        "CREATE OR REPLACE MACRO iso_week(v) AS CASE WHEN regexp_full_match(v, '\\d{4}-W\\d{2}') "
        "THEN _wk(CAST(v[1:4] AS INTEGER), CAST(v[7:8] AS INTEGER)) END",
    ]
