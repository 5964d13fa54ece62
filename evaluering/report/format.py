"""Danish number and date formats for the report.

``tal(1234.5, 1)`` → ``"1.234,5"``; negative numbers carry a real minus sign (U+2212);
``dato(date(2017, 7, 1))`` → ``"1. juli 2017"``. Suppressed cells print as ``SUPPRIMERET``.
"""

from __future__ import annotations

import datetime as dt
import math

MINUS = "\u2212"
SUPPRIMERET = "–*"  # en dash + asterisk: marked as suppressed (explained in the disclosure appendix)
MANGLER = "–"

MAANEDER = ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august",
            "september", "oktober", "november", "december")


def tal(x: float | int | None, decimaler: int = 1, *, fortegn: bool = False) -> str:
    """Format a number the Danish way: thousands '.', decimal ',', real minus sign.

    ``fortegn=True`` prints an explicit '+' on positive numbers (for effects).
    None/NaN print as an en dash.
    """
    if x is None:
        return MANGLER
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return MANGLER
    s = f"{abs(x):,.{decimaler}f}"  # '1,234.5'
    s = s.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    if round(abs(x), decimaler) == 0:
        return s
    if x < 0:
        return MINUS + s
    return ("+" + s) if fortegn else s


def heltal(x: float | int | None) -> str:
    return tal(x, 0)


def procent(x: float | None, decimaler: int = 1, *, fortegn: bool = False) -> str:
    """A share (0.123) as '12,3 pct.'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MANGLER
    return f"{tal(100 * x, decimaler, fortegn=fortegn)} pct."


def procentpoint(x: float | None, decimaler: int = 1, *, fortegn: bool = True) -> str:
    """A difference in shares (0.021) as '+2,1 pct.-point'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MANGLER
    return f"{tal(100 * x, decimaler, fortegn=fortegn)} pct.-point"


def interval(lo: float | None, hi: float | None, decimaler: int = 1, skala: float = 1.0) -> str:
    """A confidence interval '[−1,2; 3,4]' (semicolon, as decimal commas are used)."""
    if lo is None or hi is None:
        return MANGLER
    return f"[{tal(skala * lo, decimaler)}; {tal(skala * hi, decimaler)}]"


def p_vaerdi(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return MANGLER
    if p < 0.001:
        return "< 0,001"
    return tal(p, 3)


def dato(d: dt.date | str) -> str:
    """'1. juli 2017'."""
    if isinstance(d, str):
        d = dt.date.fromisoformat(d[:10])
    return f"{d.day}. {MAANEDER[d.month - 1]} {d.year}"


def kvartal(label: str) -> str:
    """'2017Q3' → '3. kvt. 2017'."""
    year, q = label.split("Q")
    return f"{int(q)}. kvt. {year}"
