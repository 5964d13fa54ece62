"""The Danish report as Typst source, with disclosure control on every printed number.

Every number that reaches the Typst source goes through :class:`Gate`:

* ``Gate.num(value, n_persons, ...)`` formats a statistic built on ``n_persons`` persons. If
  the caller marked it suppressed (decided upstream by :mod:`evaluering.report.disclosure`)
  it prints ``–*``; otherwise :func:`~evaluering.report.disclosure.check_printable` runs and a
  number on 1..k−1 persons raises :class:`~evaluering.errors.DisclosureError`, failing the
  build. So a suppression step that is skipped or wrong cannot leak a small cell.
* ``Gate.fact(value, why)`` prints a number that is not built on persons (a date, a count of
  municipalities, a week horizon), with the reason recorded.

All text is inserted as Typst string literals (``#"…";``), so no character of a trial name or
template can act as markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Template
from typing import Any, Callable

import numpy as np

from evaluering.report import format as fmt
from evaluering.report.disclosure import DisclosureRules, check_printable


def esc(text: Any) -> str:
    """``text`` as a Typst string literal in markup (no markup character survives)."""
    s = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")
    return f'#"{s}";'


def paragraphs(text: str) -> str:
    """Plain text with blank-line paragraph breaks as escaped Typst paragraphs."""
    return "\n\n".join(esc(p.strip()) for p in str(text).split("\n\n") if p.strip())


@dataclass
class Gate:
    """The single path from a number to the report (see the module docstring)."""

    rules: DisclosureRules
    printed: int = 0
    suppressed: int = 0
    facts: int = 0
    log: list[str] = field(default_factory=list)

    def num(self, value, n_persons, formatter: Callable[..., str] = fmt.tal, *, suppressed: bool = False,
            what: str = "a number", **kw) -> str:
        if suppressed:
            self.suppressed += 1
            return fmt.SUPPRIMERET
        check_printable(value, n_persons, self.rules, what=what)
        self.printed += 1
        return formatter(value, **kw)

    def interval(self, lo, hi, n_persons, *, suppressed: bool = False, skala: float = 1.0,
                 decimaler: int = 1, what: str = "an interval") -> str:
        if suppressed:
            self.suppressed += 1
            return fmt.SUPPRIMERET
        check_printable(lo, n_persons, self.rules, what=what)
        check_printable(hi, n_persons, self.rules, what=what)
        self.printed += 1
        if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
            return fmt.MANGLER
        return fmt.interval(lo, hi, decimaler, skala)

    def cell(self, text: str, n_persons, *, mark: str, what: str = "a table cell") -> str:
        """A cell that arrives already formatted (e.g. from the AUK01 case-study chapter).

        ``n_persons`` is the smallest number of persons behind the cell, or ``None`` for a
        model estimate or a label (counted as a non-person number if it contains a digit).
        A cell equal to ``mark`` was suppressed upstream and is counted as suppressed; any
        other cell on 1..k−1 persons raises :class:`~evaluering.errors.DisclosureError`.
        """
        text = str(text)
        if text == mark:
            self.suppressed += 1
            return text
        if n_persons is None or (isinstance(n_persons, float) and np.isnan(n_persons)):
            if any(ch.isdigit() for ch in text):
                self.facts += 1
                self.log.append(f"{what}: model estimate or label (no person count)")
            return text
        if self.rules.is_small(n_persons):
            from evaluering.errors import DisclosureError

            raise DisclosureError(f"{what} is built on fewer than {self.rules.min_persons} "
                                  "persons; it must be suppressed")
        self.printed += 1
        return text

    def fact(self, value, why: str, formatter: Callable[..., str] = fmt.heltal, **kw) -> str:
        """A number that is not a statistic on persons (dates, counts of municipalities)."""
        self.facts += 1
        self.log.append(why)
        return formatter(value, **kw)


# --------------------------------------------------------------------------- labels
UDFALD_NAVN = {
    "job_13_uger": "I job efter 13 uger", "job_26_uger": "I job efter 26 uger",
    "job_52_uger": "I job efter 52 uger", "rmst_52_uger": "Uger til job (RMST, 52 uger)",
    "hazard_job": "Afgangsrate til job (hazard ratio)",
    "samtaler_pr_forloeb": "Samtaler pr. forløb (26 uger)",
    "andel_fysiske_samtaler": "Andel fysiske samtaler",
    "minutter_pr_forloeb": "Sagsbehandlerminutter pr. forløb",
    "laegeattester_pr_forloeb": "Lægeattester pr. forløb",
    "rehab_pr_forloeb": "Rehabiliteringsteamsager pr. forløb",
    "udgift_pr_forloeb": "Udgift pr. forløb (kr.)",
}
YDELSE_NAVN = {
    "a-dagpenge": "a-dagpenge", "kontanthjaelp": "kontanthjælp", "uddannelseshjaelp": "uddannelseshjælp",
    "sygedagpenge": "sygedagpenge", "jobafklaring": "jobafklaringsforløb",
    "ressourceforloeb": "ressourceforløb", "ledighedsydelse": "ledighedsydelse", "fleksjob": "fleksjob",
    "revalidering": "revalidering", "integrationsydelse": "integrationsydelse",
}
SHARE_OUTCOMES = {"job_13_uger", "job_26_uger", "job_52_uger", "andel_fysiske_samtaler"}


def effect_text(gate: Gate, rec: dict, what: str) -> tuple[str, str]:
    """(effect, interval) of one record, Danish formatted, through the gate."""
    o = rec["udfald"]
    n = rec["n_persons_exposed"]
    sup = bool(rec["suppressed"])
    est, lo, hi = rec["estimate"], rec["ci_low"], rec["ci_high"]
    if o in SHARE_OUTCOMES:
        e = gate.num(est, n, fmt.procentpoint, suppressed=sup, what=what)
        ci = gate.interval(lo, hi, n, suppressed=sup, skala=100, what=what)
    elif o == "hazard_job":
        e = gate.num(est, n, fmt.tal, suppressed=sup, what=what, decimaler=2)
        ci = gate.interval(lo, hi, n, suppressed=sup, decimaler=2, what=what)
    else:
        d = 0 if o in ("minutter_pr_forloeb", "udgift_pr_forloeb") else 2
        e = gate.num(est, n, fmt.tal, suppressed=sup, what=what, decimaler=d, fortegn=True)
        ci = gate.interval(lo, hi, n, suppressed=sup, decimaler=d, what=what)
    return e, ci


def table(header: list[str], rows: list[list[str]], widths: str | None = None,
          align: str | None = None) -> str:
    """A Typst table; cells are already-escaped markup."""
    ncol = len(header)
    cols = widths or f"({', '.join(['auto'] * ncol)})"
    out = [f"#table(columns: {cols}, stroke: 0.4pt + luma(180), inset: 4pt,"]
    if align:
        out.append(f"  align: {align},")
    out.append("  table.header(" + ", ".join(f"[*{esc(h)}*]" for h in header) + "),")
    for r in rows:
        out.append("  " + ", ".join(f"[{c}]" for c in r) + ",")
    out.append(")")
    return "\n".join(out)


def figure(path: str, alt: str, caption: str, width: str = "100%") -> str:
    a = alt.replace("\\", "\\\\").replace('"', '\\"')
    return (f'#figure(image("{path}", width: {width}, alt: "{a}"), caption: [{esc(caption)}])')


def fill(template: str, **values) -> str:
    return Template(template).safe_substitute(**{k: str(v) for k, v in values.items()})
