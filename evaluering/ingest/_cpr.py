"""CPR-shaped identifiers: detection, keyed pseudonymisation, masking.

A value is *CPR-shaped* when it is 10 digits, optionally written ``DDMMYY-XXXX``, and its
first six digits form a valid date ``DDMMYY`` (29 February is valid when ``YY`` is divisible
by 4, because 2000 was a leap year). The same rule is written once in Python (here) and once
in SQL (:data:`SQL_IS_CPR`); the tests check that they agree.

With the environment variable ``EVALUERING_PSEUDONYM_KEY`` set, a CPR-shaped ``person_id`` is
replaced by ``HMAC-SHA256(key, normalised CPR)`` in lower-case hex, where the normalised CPR
is the 10 digits without the hyphen and the key is the variable's UTF-8 bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re

PSEUDONYM_ENV = "EVALUERING_PSEUDONYM_KEY"
MASK = "<cpr fjernet>"

_SHAPE = re.compile(r"\d{6}-?\d{4}", re.ASCII)
_ANY = re.compile(r"(?<!\d)(\d{6})-?(\d{4})(?!\d)", re.ASCII)

# DuckDB macro body; ``v`` is a trimmed text value (NULL → false).
SQL_IS_CPR = (
    "CASE WHEN length(v) IN (10, 11) THEN coalesce(regexp_full_match(v, '\\d{6}-?\\d{4}') AND "
    "try_strptime(substr(v, 1, 4) || CASE WHEN try_cast(substr(v, 5, 2) AS INTEGER) % 4 = 0 "
    "THEN '2000' ELSE '2001' END, '%d%m%Y') IS NOT NULL, false) ELSE false END"
)


def _valid_ddmmyy(six: str) -> bool:
    day, month, yy = int(six[:2]), int(six[2:4]), int(six[4:6])
    year = 2000 if yy % 4 == 0 else 2001
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def is_cpr(value: object) -> bool:
    """True when ``value`` (after trimming) is CPR-shaped."""
    if value is None:
        return False
    v = str(value).strip(" \t")
    if not _SHAPE.fullmatch(v):
        return False
    return _valid_ddmmyy(v[:6])


def normalise_cpr(value: str) -> str:
    return str(value).strip(" \t").replace("-", "")


def pseudonym_key() -> bytes | None:
    """The pseudonymisation key from the environment, or None (empty counts as unset)."""
    key = os.environ.get(PSEUDONYM_ENV)
    return key.encode("utf-8") if key else None


def pseudonymise(cpr: str, key: bytes) -> str:
    """HMAC-SHA256(key, normalised CPR) as lower-case hex."""
    return hmac.new(key, normalise_cpr(cpr).encode("ascii"), hashlib.sha256).hexdigest()


def mask_text(text: str) -> str:
    """Replace every CPR-shaped substring of free text (messages, names) by the mask."""
    def repl(m: re.Match) -> str:
        return MASK if _valid_ddmmyy(m.group(1)) else m.group(0)

    return _ANY.sub(repl, str(text))
