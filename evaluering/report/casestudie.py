"""The AUK01 case study as an appendix chapter of the report (``[rapport] casestudie_auk01``).

:func:`run_case` runs :func:`evaluering.casestudy.auk01.run_auk01_case` on the package's
AUK01 extract with the light, fixed-seed settings :data:`REPORT_SETTINGS` (the full defaults
take about 100 s; these about 8 s) and caches the result per process, keyed by the file's
SHA-256 and the settings, so repeated builds in one session do not re-estimate.
:func:`chapter_for_report` turns :func:`~evaluering.casestudy.auk01.auk01_chapter` into the
figures (SVG + PNG in ``figurer/``, with alt text) and the manifest entry;
:func:`typst_chapter` renders the appendix: the chapter's sections as text, its tables as
Typst tables with every cell through :meth:`evaluering.report.render.Gate.cell` (cells the
chapter marked as suppressed count as suppressed; an unmarked cell on fewer than k persons
fails the build), its figures, the light settings and the source line.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from evaluering.report import format as fmt
from evaluering.report.disclosure import DisclosureRules
from evaluering.report.render import Gate, esc, figure, paragraphs, table

HEADING = "Bilag: Casestudie på offentlige data (AUK01)"
# light settings for the report build (stated in the chapter text); the seed is fixed so the
# build is byte-deterministic
REPORT_SETTINGS: dict[str, Any] = {"seed": 0, "n_boot": 999, "n_perm": 199, "sdid_reps": 50,
                                   "honest_rm": False, "sensitivity": True}
_CACHE: dict[tuple, Any] = {}

ALT = {
    "auk01_trend": "Linjediagram: gennemsnitlig log(antal) nettoledige kontanthjælpsmodtagere pr. "
                   "kvartal 2014–2019 i de nordjyske netværkskommuner og kontrolkommunerne, "
                   "målt i forhold til gennemsnittet før 2017K3; en stiplet linje markerer "
                   "forsøgsstart.",
    "auk01_event": "Punktdiagram med konfidensbånd: event study-effekten på log(antal) pr. "
                   "kvartal før og efter forsøgsstart i 2017K3, med punktvise og uniforme bånd.",
    "auk01_sdid": "Linjediagram: log(antal) i netværkskommunerne og i den syntetiske "
                  "kontrolgruppe fra syntetisk difference-in-differences pr. kvartal.",
    "auk01_rambachan_roth": "Intervaldiagram: Rambachan–Roths robuste 95 pct.-intervaller for "
                            "den gennemsnitlige effekt efter start mod den tilladte afvigelse "
                            "fra parallelle trends (M).",
}


def auk01_file() -> Path:
    from evaluering.casestudy.auk01 import auk01_path

    return auk01_path()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_case(path: Path | None = None):
    """``(CaseStudyResult, sha256 of the AUK01 file)`` with :data:`REPORT_SETTINGS` (cached)."""
    from evaluering.casestudy.auk01 import run_auk01_case

    f = Path(path) if path is not None else auk01_file()
    sha = sha256_file(f)
    key = (sha, tuple(sorted(REPORT_SETTINGS.items())))
    if key not in _CACHE:
        _CACHE[key] = run_auk01_case(path, **REPORT_SETTINGS)
    return _CACHE[key], sha


def fig_name(fig_id: str) -> str:
    """File stem of a chapter figure: 'auk01_trend' → 'auk01-trend'."""
    return fig_id.replace("auk01_", "auk01-", 1)


def chapter_for_report(fdir: Path, rules: DisclosureRules) -> dict[str, Any]:
    """Run the case study, build its chapter at the report's threshold, save its figures.

    Returns ``{"chapter", "figs" ({id: {"paths", "alt", "caption"}}), "manifest"}``.
    """
    from evaluering.casestudy.auk01 import auk01_chapter
    from evaluering.report import figures as F

    result, sha = run_case()
    chapter = auk01_chapter(result, min_persons=rules.min_persons)
    plt = F._plt()
    figs: dict[str, Any] = {}
    for spec in chapter["figurer"]:
        with F._ctx():
            fig, ax = plt.subplots(figsize=(7, 3.6))
            try:
                spec["tegn"](ax)
                _danish(ax, F)
                if spec["id"] == "auk01_sdid":
                    ax.set_xlabel("kvartal (1 = 2014K1; 15 = 2017K3, forsøgsstart)")
                    ax.set_ylabel("log(antal)")
                if spec["id"] == "auk01_rambachan_roth":
                    from matplotlib.ticker import FuncFormatter

                    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: fmt.tal(v, 3)))
                    ax.set_xlabel("M (log-point pr. kvartal²)")
                    ax.set_ylabel("effekt på log(antal), gns. efter start")
                fig.tight_layout()
            except Exception:
                plt.close(fig)
                raise
            paths = F.save(fig, fdir, fig_name(spec["id"]))
        figs[spec["id"]] = {"paths": paths, "alt": ALT.get(spec["id"], spec["titel"]),
                            "caption": f"{spec['titel']}. {chapter['kilde']}."}
    manifest = {"medtaget": True, "fil": auk01_file().name, "sha256": sha,
                "indstillinger": dict(REPORT_SETTINGS),
                "undertrykte_celler": int(chapter["diskretionering"]["undertrykte_celler"])}
    return {"chapter": chapter, "figs": figs, "manifest": manifest}


_LEGEND = (("treated", "netværket"), ("weighted controls", "vægtede kontroller"),
           ("cohort", "kohorte"), ("robust (smoothness)", "robust (glathed)"),
           ("original", "antager parallelle trends"))


def _danish(ax, F) -> None:
    """The caption carries the title; Danish y-axis numbers and legend words."""
    ax.set_title("")
    F.danish_axes(ax, 1)
    leg = ax.get_legend()
    if leg is not None:
        for t in leg.get_texts():
            s = t.get_text()
            for en, da in _LEGEND:
                s = s.replace(en, da)
            t.set_text(s)


_HYPHEN_MINUS = re.compile(r"(?<![\w.])-(?=\d)")


def _minus(text: str) -> str:
    """A hyphen-minus before a number (e.g. '-14' quarters) as the real minus sign."""
    return _HYPHEN_MINUS.sub(fmt.MINUS, text)


def _settings_text(gate: Gate) -> str:
    s = REPORT_SETTINGS
    return ("Tallene i dette bilag er beregnet ved hver rapportkørsel med lette indstillinger, "
            "så rapporten kan bygges på få sekunder: "
            f"{gate.fact(s['n_boot'], 'AUK01 setting: bootstrap draws')} wild cluster bootstrap- "
            "og multiplikator-bootstrap-træk, "
            f"{gate.fact(s['n_perm'], 'AUK01 setting: permutations')} permutationer i "
            "randomiseringsinferensen, "
            f"{gate.fact(s['sdid_reps'], 'AUK01 setting: SDID placebo replications')} "
            "placebo-gentagelser for syntetisk DiD, Rambachan–Roth kun med glathed (ikke relative "
            "størrelser) og fast startværdi for tilfældighedsgeneratoren (seed "
            f"{gate.fact(s['seed'], 'AUK01 setting: seed')}). Standardkørslen af casestudiet "
            "bruger flere træk; p-værdier og intervaller fra bootstrap og permutationer kan "
            "derfor afvige lidt i sidste decimal, mens punktestimaterne er de samme.")


def typst_chapter(case: dict[str, Any], gate: Gate) -> list[str]:
    """The appendix chapter as Typst blocks (a level-1 heading and its content)."""
    ch = case["chapter"]
    mark = str(ch["diskretionering"]["markering"])
    S: list[str] = [f"= {esc(HEADING)}"]
    S.append(f"#text(weight: \"bold\")[{esc(ch['titel'])}]")
    S.append(paragraphs(_settings_text(gate)))
    tables = {t["id"]: t for t in ch["tabeller"]}
    placed: set[str] = set()
    # tables and figures after the section they belong to
    after = {"Design og stikprøve": ["auk01_kommuner", "auk01_udeladt"],
             "Resultater": ["auk01_estimater", "auk01_event", "auk01_foelsomhed",
                            "auk01_rambachan_roth"]}
    figs_after = {"Design og stikprøve": ["auk01_trend"],
                  "Resultater": ["auk01_event", "auk01_sdid", "auk01_rambachan_roth"]}

    def put_table(t: dict[str, Any]) -> None:
        rows = []
        for i, (r, a) in enumerate(zip(t["raekker"], t["antal"])):
            cells = []
            for j, (c, n) in enumerate(zip(r, a)):
                cells.append(esc(_minus(gate.cell(c, n, mark=mark,
                                                  what=f"AUK01 {t['id']} row {i} col {j}"))))
            rows.append(cells)
        S.append("#figure(kind: table, caption: [" + esc(t["titel"]) + "])[\n" +
                 table([str(k) for k in t["kolonner"]], rows, align="left") + "\n]")
        if t.get("note"):
            S.append(paragraphs(_minus(str(t["note"]))))
        placed.add(t["id"])

    def put_figure(fid: str) -> None:
        fg = case["figs"].get(fid)
        if fg:
            S.append(figure(f"figurer/{fg['paths']['svg'].name}", fg["alt"], fg["caption"]))

    for sec in ch["afsnit"]:
        S.append(f"== {esc(sec['overskrift'])}")
        S.append("\n\n".join(esc(_minus(p)) for p in sec["tekst"]))
        for tid in after.get(sec["overskrift"], []):
            if tid in tables:
                put_table(tables[tid])
        for fid in figs_after.get(sec["overskrift"], []):
            put_figure(fid)
    rest = [t for t in ch["tabeller"] if t["id"] not in placed]
    for t in rest:
        put_table(t)
    shown = {f for v in figs_after.values() for f in v}
    for fid in case["figs"]:
        if fid not in shown:
            put_figure(fid)
    S.append(paragraphs(str(ch["kilde"])))
    return S
