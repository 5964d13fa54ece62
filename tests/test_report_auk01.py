"""The AUK01 case-study appendix of the report (``[rapport] casestudie_auk01``).

One small simulated report is built twice from the same processed folder: with the appendix
(the default) and with ``casestudie_auk01 = false``. Checks: the heading, the source line and
numbers of the chapter's tables in the PDF text, recomputed here from
``auk01_chapter(run_auk01_case(...same light settings...))`` (called directly, not through the
report's cache), the TWFE effect against an independent statsmodels OLS with dummies on the
same AUK01 panel, Læsø printed as suppressed, the figures with alt text, the manifest's
SHA-256 of the AUK01 file, that an unmarked small cell fails the build, and that the switch
removes the chapter.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from evaluering.errors import DisclosureError, InputError
from evaluering.report import AnalysisOptions, ReportConfig, build_report, load_config
from evaluering.report import format as fmt
from evaluering.report.casestudie import HEADING, REPORT_SETTINGS

from catalogues import meetings_insured

CATALOGUE = meetings_insured(["andel_fysiske_samtaler"], hjoerring_september=False)


def _text(pdf: Path) -> str:
    from pypdf import PdfReader

    return re.sub(r"\s+", " ", "\n".join(p.extract_text() for p in PdfReader(pdf).pages))


@pytest.fixture(scope="module")
def builds(tmp_path_factory, simulated_dataset):
    root = tmp_path_factory.mktemp("rapport_auk01")
    raw = simulated_dataset(scale="small", seed=2017)     # shared: read only
    cat = root / "lille.toml"
    cat.write_text(CATALOGUE, encoding="utf-8")
    opts = AnalysisOptions(inferens="bootstrap", n_boot=199)
    with_cfg = ReportConfig(data=raw, forsoeg=cat, out=root / "reports" / "med",
                            behandlet=root / "behandlet", analyse=opts)
    assert with_cfg.casestudie_auk01 is True            # default on
    med = build_report(with_cfg)
    without_cfg = replace(with_cfg, data=root / "behandlet" / "behandlet", behandlet=None,
                          out=root / "reports" / "uden", casestudie_auk01=False)
    uden = build_report(without_cfg)
    return med, uden


@pytest.fixture(scope="module")
def chapter():
    """The chapter recomputed independently of the report's cache."""
    from evaluering.casestudy.auk01 import auk01_chapter, run_auk01_case

    res = run_auk01_case(**REPORT_SETTINGS)
    return res, auk01_chapter(res, min_persons=5)


def _table(ch, tid):
    return next(t for t in ch["tabeller"] if t["id"] == tid)


def _row(t, label):
    return next(r for r in t["raekker"] if r[0].startswith(label))


def test_chapter_heading_source_and_settings_in_pdf(builds, chapter):
    from evaluering.casestudy.auk01 import AUK01_SOURCE

    med, _ = builds
    txt = _text(med.pdf)
    assert HEADING in txt
    assert AUK01_SOURCE in txt and "Danmarks Statistik, AUK01" in txt
    _, ch = chapter
    assert ch["titel"] in txt
    for sec in ch["afsnit"]:
        assert sec["overskrift"] in txt
    # the light settings are stated
    assert "999 wild cluster bootstrap" in txt and "199 permutationer" in txt
    assert "50 placebo-gentagelser" in txt


def test_table_numbers_recomputed(builds, chapter):
    med, _ = builds
    txt = _text(med.pdf)
    _, ch = chapter
    est = _table(ch, "auk01_estimater")
    twfe = _row(est, "TWFE (klyngerobust)")
    assert twfe[1] in txt and twfe[3] in txt, twfe          # effect (log) and its 95 % CI
    kom = _table(ch, "auk01_kommuner")
    net = _row(kom, "Netværket i alt")
    assert f"Netværket i alt {net[1]} {net[2]} {net[3]}" in txt, net
    for r in _table(ch, "auk01_foelsomhed")["raekker"][:3]:
        assert r[1] in txt and r[3] in txt, r


def test_twfe_against_statsmodels(builds, chapter):
    """The TWFE effect printed in the appendix equals OLS with unit and period dummies."""
    import statsmodels.formula.api as smf

    med, _ = builds
    res, _ = chapter
    pan = res.panel
    ols = smf.ols("y ~ D + C(kode) + C(t)", data=pan).fit()
    assert abs(ols.params["D"] - res.twfe.estimate) < 1e-8
    assert fmt.tal(ols.params["D"], 3, fortegn=True) in _text(med.pdf)
    # the network total 'before' recomputed from the panel with pandas
    g0 = int(res.options["cohort_index"])
    tr = pan[(pan["behandlet"] == 1) & (pan["t"] < g0)]
    assert fmt.tal(tr.groupby("t")["antal"].sum().mean(), 0) in _text(med.pdf)


def test_small_municipality_suppressed(builds, chapter):
    med, _ = builds
    txt = _text(med.pdf)
    _, ch = chapter
    laesoe = _row(_table(ch, "auk01_kommuner"), "Læsø")
    assert laesoe[1:] == ["<5", "<5", "<5"]
    assert "Læsø (825) <5 <5 <5" in txt
    m = json.loads(med.manifest.read_text(encoding="utf-8"))
    assert m["casestudie_auk01"]["undertrykte_celler"] == 3
    assert m["disclosure"]["tal_undertrykt"] >= 3


def test_unmarked_small_cell_fails(chapter):
    from evaluering.report.casestudie import typst_chapter
    from evaluering.report.disclosure import DisclosureRules
    from evaluering.report.render import Gate

    _, ch = chapter
    t = _table(ch, "auk01_kommuner")
    i = next(i for i, r in enumerate(t["raekker"]) if r[0].startswith("Læsø"))
    bad = dict(t, raekker=[list(r) for r in t["raekker"]])
    bad["raekker"][i][1] = "4"                 # as if the chapter had forgotten to suppress
    ch2 = dict(ch, tabeller=[bad if x["id"] == t["id"] else x for x in ch["tabeller"]])
    with pytest.raises(DisclosureError):
        typst_chapter({"chapter": ch2, "figs": {}}, Gate(DisclosureRules(5)))
    # unchanged chapter renders, and counts the marked cells as suppressed
    g = Gate(DisclosureRules(5))
    typst_chapter({"chapter": ch, "figs": {}}, g)
    assert g.suppressed == 3 and g.printed > 0


def test_figures_and_manifest(builds):
    from evaluering.casestudy.auk01 import auk01_path

    med, _ = builds
    figs = med.out / "figurer"
    for stem in ("auk01-trend", "auk01-event", "auk01-sdid", "auk01-rambachan_roth"):
        assert (figs / f"{stem}.svg").is_file() and (figs / f"{stem}.png").is_file(), stem
    typ = (med.out / "rapport.typ").read_text(encoding="utf-8")
    assert typ.count('image("figurer/auk01-') == 4 and 'alt: "Linjediagram' in typ
    m = json.loads(med.manifest.read_text(encoding="utf-8"))
    sha = hashlib.sha256(Path(auk01_path()).read_bytes()).hexdigest()
    c = m["casestudie_auk01"]
    assert c["medtaget"] is True and c["sha256"] == sha
    assert c["indstillinger"] == REPORT_SETTINGS
    assert m["inputs"]["casestudie/auk01"] == sha
    assert "figurer/auk01-trend.svg" in m["files"]


def test_switch_off_removes_chapter(builds):
    med, uden = builds
    txt = _text(uden.pdf)
    assert HEADING not in txt and "AUK01" not in txt
    assert not list((uden.out / "figurer").glob("auk01-*"))
    m = json.loads(uden.manifest.read_text(encoding="utf-8"))
    assert m["casestudie_auk01"] == {"medtaget": False}
    assert "casestudie/auk01" not in m["inputs"]
    assert m["build_hash"] != json.loads(med.manifest.read_text())["build_hash"]


def test_rebuild_with_chapter_is_byte_identical(builds):
    """A second build that re-estimates the case study (cache cleared) gives the same bytes."""
    from evaluering.report.casestudie import _CACHE

    med, uden = builds
    _CACHE.clear()
    m = json.loads(uden.manifest.read_text(encoding="utf-8"))["config"]
    cfg = ReportConfig(data=Path(m["data"]), forsoeg=Path(m["forsoeg"]),
                       out=med.out.parent / "med2", analyse=AnalysisOptions(**m["analyse"]))
    r2 = build_report(cfg)
    assert r2.rebuilt
    for rel in ("figurer/auk01-event.svg", "figurer/auk01-trend.png", "rapport.typ", "rapport.pdf"):
        assert (r2.out / rel).read_bytes() == (med.out / rel).read_bytes(), rel


def test_config_switch(tmp_path):
    base = '[rapport]\ndata = "d"\nforsoeg = "f.toml"\n'
    p = tmp_path / "evaluering.toml"
    p.write_text(base, encoding="utf-8")
    assert load_config(p).casestudie_auk01 is True
    p.write_text(base + "casestudie_auk01 = false\n", encoding="utf-8")
    assert load_config(p).casestudie_auk01 is False
    p.write_text(base + 'casestudie_auk01 = "ja"\n', encoding="utf-8")
    with pytest.raises(InputError):
        load_config(p)
