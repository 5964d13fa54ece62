"""The evaluation report end to end on the small simulation (built once per session).

Checks: the seven sections per trial in the PDF text, the summary table against
resultater.json, Danish formats, disclosure control (a tiny municipality suppressed with a
complementary cell; bypassing suppression fails the build), verdicts against the planted truth
in sandhed.json, byte-identical rebuilds, idempotence, atomic publish under an injected
failure, and the lock.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluering.errors import DisclosureError
from evaluering.report import AnalysisOptions, BuildLocked, ReportConfig, build_report
from evaluering.report import format as fmt

from catalogues import meetings_insured

SECTIONS = ("Indledning", "Sammenfatning",
            "Forsøgets baggrund, formål, målgruppe og forventede resultater",
            "Evalueringsmetode", "Forsøgets resultater og læring", "Forsøgets anbefalinger",
            "Bilagsoversigt")
SHARES = {"job_13_uger", "job_26_uger", "job_52_uger", "andel_fysiske_samtaler"}


@pytest.fixture(scope="session")
def sim(tmp_path_factory):
    from evaluering.simulate import simulate

    root = tmp_path_factory.mktemp("rapport")
    raw = root / "raw"
    simulate(raw, scale="small", seed=2017)
    return root, raw


@pytest.fixture(scope="session")
def built(sim):
    """The full report from the raw registers (ingest + outcomes + analysis + PDF)."""
    root, raw = sim
    cfg = ReportConfig(data=raw, forsoeg=raw / "forsoeg.toml", out=root / "reports" / "fuld",
                       behandlet=root / "behandlet", analyse=AnalysisOptions())  # defaults: RI
    res = build_report(cfg)
    return cfg, res


@pytest.fixture(scope="session")
def pdf_text(built):
    from pypdf import PdfReader

    _, res = built
    return "\n".join(p.extract_text() for p in PdfReader(res.pdf).pages)


@pytest.fixture(scope="session")
def records(built):
    _, res = built
    return json.loads(res.resultater.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def truth(sim):
    _, raw = sim
    return json.loads((raw / "sandhed.json").read_text(encoding="utf-8"))["forsoeg"]


def _small_catalogue(path: Path) -> Path:
    path.write_text(meetings_insured(["andel_fysiske_samtaler", "samtaler_pr_forloeb"]),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def small_cfg(built, sim):
    """A one-trial, two-outcome build from the processed folder (fast rebuilds)."""
    root, _ = sim
    cfg, _ = built
    cat = _small_catalogue(root / "lille.toml")
    return ReportConfig(data=root / "behandlet" / "behandlet", forsoeg=cat,
                        out=root / "reports" / "lille",
                       analyse=AnalysisOptions(inferens="bootstrap", n_boot=199))  # fast path


# --------------------------------------------------------------------------- outputs
def test_outputs_and_manifest(built):
    cfg, res = built
    out = res.out
    assert res.rebuilt
    for name in ("rapport.pdf", "resultater.json", "manifest.json", "tabeller/sammenfatning.csv",
                 "tabeller/foelsomhed.csv"):
        assert (out / name).is_file(), name
    svgs = sorted((out / "figurer").glob("*.svg"))
    pngs = sorted((out / "figurer").glob("*.png"))
    assert len(svgs) >= 4 * 4 and len(svgs) == len(pngs)
    kinds = {p.stem.rsplit("-", 1)[1] for p in svgs}
    assert {"udvikling", "eventstudie", "km", "ressourcer", "kommuner"} <= kinds
    m = json.loads((out / "manifest.json").read_text())
    assert set(m) >= {"inputs", "config", "versions", "git_commit", "timings_s", "disclosure", "build_hash"}
    assert "data/forloeb.parquet" in m["inputs"] and len(m["inputs"]["forsoeg"]) == 64
    assert m["git_commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{40}", m["git_commit"])
    assert m["disclosure"]["min_persons"] == 5 and m["disclosure"]["primaer"] > 0
    assert (out.parent / "fuld.log").is_file()
    # no temporary build folders left next to the report
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".fuld.")]


def test_pdf_is_tagged_ua_with_alt_texts(built):
    from pypdf import PdfReader

    _, res = built
    r = PdfReader(res.pdf)
    root = r.trailer["/Root"]
    assert "/StructTreeRoot" in root and root["/MarkInfo"]["/Marked"]
    assert root["/Lang"] == "da"
    assert r.metadata["/Title"].startswith("Evaluering af frikommuneforsøg")
    assert r.metadata["/CreationDate"] == "D:19700101000000Z"     # fixed timestamp
    raw = res.pdf.read_bytes()
    assert b"pdfuaid" in raw
    n_figures = len(list((res.out / "figurer").glob("*.svg")))
    assert raw.count(b"/Alt") >= n_figures


def test_cli_positional_form(small_cfg, tmp_path):
    from evaluering.cli import main

    out = tmp_path / "cli-rapport"
    rc = main(["rapport", str(small_cfg.data), "--forsoeg", str(small_cfg.forsoeg), "--out", str(out)])
    assert rc == 0
    recs = json.loads((out / "resultater.json").read_text())
    assert [r["udfald"] for r in recs] == ["andel_fysiske_samtaler", "samtaler_pr_forloeb"]
    assert main(["rapport", str(small_cfg.data), "--forsoeg", str(small_cfg.forsoeg),
                 "--out", str(out)]) == 0               # unchanged: nothing rebuilt


def test_records_schema(records, built):
    keys = {"forsoeg", "udfald", "estimate", "se", "ci_low", "ci_high", "p", "p_adj", "method",
            "inference", "n_persons", "n_municipalities_treated", "n_municipalities_control",
            "pretrend_p", "verdict"}
    from evaluering.reference.catalogue import load_forsoeg

    cfg, _ = built
    fs = load_forsoeg(cfg.forsoeg)
    assert [(r["forsoeg"], r["udfald"]) for r in records] == [(f.id, o) for f in fs for o in f.udfald]
    for r in records:
        assert keys <= set(r)
        assert r["verdict"] in ("bedre", "ingen påviselig forskel", "dårligere", "undertrykt",
                                "ikke estimeret")
        if r["estimate"] is not None:
            assert r["ci_low"] <= r["estimate"] <= r["ci_high"]
            assert r["p"] <= r["p_adj"] <= 1
        assert r["method"] == ("discrete-hazard-did (cloglog)" if r["udfald"] == "hazard_job" else "cs")
        # treated municipalities with spells in the target group (tiny ones may have none)
        assert 0 < r["n_municipalities_treated"] <= len(next(f for f in fs if f.id == r["forsoeg"]).kommuner)
        assert r["n_municipalities_control"] > 50
    # Holm within each trial's declared family (the default), recomputed independently
    for f in fs:
        rs = [r for r in records if r["forsoeg"] == f.id]
        p = np.array([r["p"] for r in rs], float)
        order = np.argsort(p)
        m = len(p)
        holm = np.maximum.accumulate(np.minimum(1, (m - np.arange(m)) * p[order]))
        expect = np.empty(m)
        expect[order] = holm
        np.testing.assert_allclose([r["p_adj"] for r in rs], expect, rtol=1e-12)


def test_records_follow_the_estimators(built, records):
    """resultater.json carries the estimator's own numbers (re-estimated here independently
    of the report code path, from the same processed panel)."""
    from evaluering.estimators.cs import callaway_santanna
    from evaluering.reference.catalogue import load_forsoeg
    from evaluering.report.analysis import trial_panel

    cfg, _ = built
    f = next(x for x in load_forsoeg(cfg.forsoeg) if x.id == "samtaler-oevrige")
    panel = pd.read_parquet(cfg.behandlet / "behandlet" / "panel_kvartal.parquet")
    tp = trial_panel(panel, f, "halvaar")
    d = tp[tp["andel_fysiske_samtaler_n"] > 0]
    r = callaway_santanna(d, "andel_fysiske_samtaler", None, "t", "kohorte",
                          weights="andel_fysiske_samtaler_n", cluster="kommune_kode", panel=False,
                          control="notyet")
    rec = next(x for x in records if x["forsoeg"] == f.id and x["udfald"] == "andel_fysiske_samtaler")
    assert rec["inference"].startswith("randomization inference")
    assert rec["estimate"] == pytest.approx(r.estimate, rel=1e-12)
    assert rec["se"] == pytest.approx(r.se, rel=1e-12)


def test_rambachan_roth_table_follows_honest_did_cs(built, pdf_text):
    """The Rambachan–Roth table carries honest_did_cs on the universal-base CS fit of the
    record (recomputed here), and the appendix prints it."""
    from evaluering.estimators.cs import callaway_santanna
    from evaluering.inference.honest import honest_did_cs
    from evaluering.reference.catalogue import load_forsoeg
    from evaluering.report.analysis import trial_panel

    cfg, res = built
    rr = pd.read_csv(res.out / "tabeller" / "rambachan_roth.csv")
    f = next(x for x in load_forsoeg(cfg.forsoeg) if x.id == "samtaler-oevrige")
    o = "andel_fysiske_samtaler"
    tp = trial_panel(pd.read_parquet(cfg.behandlet / "behandlet" / "panel_kvartal.parquet"), f, "halvaar")
    r = callaway_santanna(tp[tp[f"{o}_n"] > 0], o, None, "t", "kohorte", weights=f"{o}_n",
                          cluster="kommune_kode", panel=False, control="notyet",
                          base_period="universal")
    ev = r.component("event")
    hm = honest_did_cs(r, Mbar_grid=[0.0, 0.5, 1.0], e_post=min(3, int(ev["e"].max())))
    mine = rr[(rr["forsoeg"] == f.id) & (rr["udfald"] == o)].reset_index(drop=True)
    ref = hm.summary().reset_index(drop=True)
    np.testing.assert_allclose(mine[["lb", "ub"]].to_numpy(), ref[["lb", "ub"]].to_numpy(), rtol=1e-9)
    assert mine["breakdown"].iloc[0] == pytest.approx(hm.breakdown)
    assert "Robusthed over for brud på parallelle tendenser" in pdf_text


def test_trial_panel_halfyear_sums_quarters(built):
    """The half-year panel is the quarterly panel's additive columns summed (independent
    groupby on the raw quarterly panel)."""
    from evaluering.reference.catalogue import load_forsoeg
    from evaluering.report.analysis import trial_panel

    cfg, _ = built
    f = load_forsoeg(cfg.forsoeg)[0]
    panel = pd.read_parquet(cfg.behandlet / "behandlet" / "panel_kvartal.parquet")
    tp = trial_panel(panel, f, "halvaar")
    sub = panel[panel["ydelsesgruppe"].isin(f.maalgruppe) & (panel["kommune_kode"] == "851")]
    sub = sub[sub["periode_nr"] <= 2019 * 4 + 3]
    h = sub.assign(h=(sub["periode_nr"] // 4) * 2 + (sub["periode_nr"] % 4) // 2).groupby("h")[
        ["samtaler_pr_forloeb_sum", "samtaler_pr_forloeb_n"]].sum()
    mine = tp[tp["kommune_kode"] == "851"].set_index("periode_nr")
    np.testing.assert_allclose(mine.loc[h.index, "samtaler_pr_forloeb_sum"], h["samtaler_pr_forloeb_sum"])
    np.testing.assert_allclose(mine.loc[h.index, "samtaler_pr_forloeb"],
                               h["samtaler_pr_forloeb_sum"] / h["samtaler_pr_forloeb_n"])
    # Aalborg starts 2017-07-01 = 2017H2; Hjørring 2017-09-01 also 2017H2; controls 0
    base = tp["periode_nr"].min()
    assert tp.loc[tp["kommune_kode"] == "851", "kohorte"].iloc[0] == 2017 * 2 + 1 - base + 1
    assert (tp.loc[tp["rolle"] == "kontrol", "kohorte"] == 0).all()
    assert not tp["kommune_kode"].isin(f.udeluk_fra_kontrol).any()


# --------------------------------------------------------------------------- PDF content
def test_seven_sections_per_trial(pdf_text, built):
    from evaluering.reference.catalogue import load_forsoeg

    cfg, _ = built
    fs = load_forsoeg(cfg.forsoeg)
    flat = re.sub(r"\s+", " ", pdf_text)
    body = flat[flat.index("Samlet sammenfatning og anbefalinger", flat.index("D Kommuner")):]
    starts = [body.index(f" {i + 2} {f.navn}") for i, f in enumerate(fs)]
    ends = starts[1:] + [body.index(" A Metode")]
    for f, a, b in zip(fs, starts, ends):
        chapter = body[a:b]
        pos = [chapter.find(s) for s in SECTIONS]
        assert all(p >= 0 for p in pos), (f.id, dict(zip(SECTIONS, pos)))
        assert pos == sorted(pos), f.id
    for title in ("Resumé", "Forord", "Metode", "Følsomhedsanalyser", "Datakilder og definitioner", "Diskretionering",
                  "Kommuner efter kommunekode"):
        assert title in pdf_text


def test_summary_table_matches_json(pdf_text, records):
    flat = re.sub(r"\s+", " ", pdf_text)
    for r in records:
        if r["estimate"] is None:
            continue
        o = r["udfald"]
        if o in SHARES:
            e = fmt.procentpoint(r["estimate"])
            ci = fmt.interval(r["ci_low"], r["ci_high"], 1, 100)
        elif o == "hazard_job":
            e = fmt.tal(r["estimate"], 2)
            ci = fmt.interval(r["ci_low"], r["ci_high"], 2)
        else:
            d = 0 if o in ("minutter_pr_forloeb", "udgift_pr_forloeb") else 2
            e = fmt.tal(r["estimate"], d, fortegn=True)
            ci = fmt.interval(r["ci_low"], r["ci_high"], d)
        assert flat.count(ci) >= 2, (r["forsoeg"], o, ci)   # summary table + trial chapter
        assert e in flat, (r["forsoeg"], o, e)
    for v in ("bedre", "ingen påviselig forskel"):
        assert sum(r["verdict"] == v for r in records) <= flat.count(v.split()[0])


def test_danish_formats(pdf_text):
    flat = re.sub(r"\s+", " ", pdf_text)
    assert "31. december 2019" in flat and "1. juli 2017" in flat
    assert "\u2212" in flat                       # real minus sign
    assert re.search(r"\d,\d pct\.-point", flat)   # decimal comma
    assert not re.search(r"\d\.\d+ pct", flat)     # never a decimal point in a percentage
    assert not re.search(r"(?<![\w.])-\d", flat)   # no hyphen-minus before a number
    assert not re.search(r"\d{1,3},\d{3},\d", flat)  # no English thousands separators


def test_figure_axes_danish():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evaluering.report.figures import danish_axes

    fig, ax = plt.subplots()
    ax.plot([-1500.5, 2500.25], [-0.5, 0.25])
    danish_axes(ax, 1, y=True)
    f = ax.yaxis.get_major_formatter()
    assert f(-0.25, 0) == "\u22120,3" or f(-0.25, 0) == "\u22120,2"
    assert f(1234.5, 0) == "1.234,5"
    plt.close(fig)


# --------------------------------------------------------------------------- disclosure
def test_tiny_municipality_suppressed_with_complement(built):
    """Læsø (825) has fewer than 5 a-dagpenge persons: its cell is suppressed, and so is one
    more cell of the column (the total would otherwise reveal it)."""
    _, res = built
    kt = pd.read_csv(res.out / "tabeller" / "kommuner_samtaler-forsikrede.csv", dtype={"kommune": str})
    an = res.analysis
    pe = an.persons[(an.persons["forsoeg"] == "samtaler-forsikrede") & (an.persons["rolle"] == "behandlet")]
    small = set(pe.loc[(pe["n_personer"] > 0) & (pe["n_personer"] < 5), "kommune_kode"])
    assert small, "the small simulation should contain a municipality with < 5 persons"
    rows = kt[kt["kommune"].str[:3].isin(small)]
    assert rows["undertrykt"].all() and rows["personer"].isna().all()
    munis = kt[kt["kommune"].str[:3].str.isdigit()]
    # complementary: at least two suppressed cells in the column, and no suppressed cell
    # recoverable as total minus the published cells
    assert munis["personer"].isna().sum() >= 2
    # every printed count is on >= 5 persons
    assert (munis["personer"].dropna() >= 5).all()


def test_bypassing_suppression_fails_the_build(built, tmp_path, monkeypatch):
    """With the suppression step switched off, the gate refuses to print small cells."""
    from evaluering.report import document
    from evaluering.report.disclosure import DisclosureRules

    cfg, res = built
    from evaluering.reference.catalogue import load_forsoeg

    fs = load_forsoeg(cfg.forsoeg)
    rules = DisclosureRules(5)
    monkeypatch.setattr(document, "primary_mask", lambda counts, rules: np.zeros(np.shape(counts), bool))
    with pytest.raises(DisclosureError, match="must be suppressed"):
        document.write_tables(tmp_path, res.analysis, fs, rules)
    with pytest.raises(DisclosureError):
        document.typst_source(res.analysis, fs, rules, document.load_texts(None), {}, cfg)


def test_suppressed_record_prints_nothing(built, tmp_path):
    """A trial × outcome whose exposed spells involve < k persons prints –* everywhere, and
    if its flag is removed the gate fails."""
    from evaluering.reference.catalogue import load_forsoeg
    from evaluering.report import document
    from evaluering.report.analysis import Analysis
    from evaluering.report.disclosure import DisclosureRules

    cfg, res = built
    fs = load_forsoeg(cfg.forsoeg)
    rec = res.analysis.records.copy()
    rec.loc[0, "n_persons_exposed"] = 3
    rec.loc[0, "suppressed"] = True
    for c in ("estimate", "ci_low", "ci_high", "p", "p_adj", "se", "pretrend_p"):
        rec.loc[0, c] = np.nan
    rec.loc[0, "verdict"] = "undertrykt"
    an = replace(res.analysis, records=rec)
    src, gate = document.typst_source(an, fs, DisclosureRules(5), document.load_texts(None), {}, cfg)
    assert gate.suppressed > 0 and "undertrykt (for få personer)" in src
    recs = document._records_out(an, DisclosureRules(5))
    assert recs[0]["estimate"] is None and recs[0]["n_persons_exposed"] is None
    assert recs[0]["verdict"] == "undertrykt" and recs[0]["suppressed"]
    rec2 = res.analysis.records.copy()
    rec2.loc[0, "n_persons_exposed"] = 3        # small, but not flagged as suppressed
    with pytest.raises(DisclosureError):
        document.typst_source(replace(res.analysis, records=rec2), fs, DisclosureRules(5),
                              document.load_texts(None), {}, cfg)


def test_gate_and_rules():
    from evaluering.report.disclosure import DisclosureRules
    from evaluering.report.render import Gate, esc

    g = Gate(DisclosureRules(5))
    assert g.num(12.5, 5) == "12,5"
    assert g.num(12.5, 4, suppressed=True) == fmt.SUPPRIMERET
    with pytest.raises(DisclosureError):
        g.num(12.5, 4)
    with pytest.raises(DisclosureError):
        g.num(12.5, None)
    with pytest.raises(ValueError):
        DisclosureRules(2)
    # escaping: markup characters cannot act as markup
    assert esc('a "b" #c \\ $d') == '#"a \\"b\\" #c \\\\ $d";'


def test_figures_drop_small_points():
    import datetime as dt

    from evaluering.report.figures import trend_figure

    ser = pd.DataFrame({
        "gruppe": ["Forsøgskommuner"] * 3 + ["Sammenligningskommuner"] * 3,
        "periode_fra": [dt.date(2017, 1, 1), dt.date(2017, 7, 1), dt.date(2018, 1, 1)] * 2,
        "vaerdi": [1.0, 999.0, 2.0, 1.5, 1.6, 1.7],
        "personer": [10, 4, 10, 50, 50, 50]})
    fig = trend_figure(ser, "t", "y", [dt.date(2017, 7, 1)], k=5)
    y = fig.axes[0].lines[0].get_ydata()
    assert np.isnan(y[1]) and y[0] == 1.0 and y[2] == 2.0
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_no_person_ids_in_outputs(built, sim):
    _, res = built
    _, raw = sim
    ids = set(pd.read_parquet(raw / "forloeb.parquet", columns=["person_id"])["person_id"])

    def tokens(txt: str) -> set[str]:
        return set(re.findall(r"[A-Za-z0-9_\-]{4,64}", txt))

    texts = [p for p in res.out.rglob("*") if p.is_file() and p.suffix != ".png"]
    texts.append(res.out.parent / "fuld.log")
    assert len(texts) > 10
    for p in texts:
        txt = p.read_text(encoding="utf-8", errors="replace")   # the PDF's text streams too
        # CPR-shaped: DDMMYY-XXXX or ten digits that are not part of a decimal number
        assert not re.search(r"(?<![\d.])\d{6}-\d{4}(?!\d)", txt), p
        if p.suffix != ".pdf":   # (binary streams hold arbitrary digit runs)
            assert not re.search(r"(?<![0-9a-f.])\d{10}(?![0-9a-f.])", txt), p
        assert not (tokens(txt) & ids), p


# --------------------------------------------------------------------------- truth
def test_verdicts_against_planted_truth(records, truth):
    """Null outcomes of the trials with enough exposed spells: 'ingen påviselig forskel'.
    Clear planted effects: interval covers the truth, never the opposite verdict, and the
    largest one is detected."""
    rec = {(r["forsoeg"], r["udfald"]): r for r in records}
    big = [f for f, t in truth.items() if t["n_forloeb_eksponeret"] >= 30]
    nulls = [(f, o) for f in big for o, v in truth[f]["effekt_fuld_opfoelgning"].items()
             if (f, o) in rec and o != "hazard_job" and v == 0.0]
    assert len(nulls) >= 6
    for key in nulls:
        assert rec[key]["verdict"] == "ingen påviselig forskel", (key, rec[key])
    clear = [("samtaler-forsikrede", "andel_fysiske_samtaler"),
             ("samtaler-oevrige", "andel_fysiske_samtaler"),
             ("laegeattester-sygedagpenge", "laegeattester_pr_forloeb")]
    for f, o in clear:
        r = rec[(f, o)]
        t = truth[f]["effekt_fuld_opfoelgning"][o] / (100 if o in SHARES else 1)
        assert r["ci_low"] <= t <= r["ci_high"], (f, o, r, t)
        assert r["verdict"] != "dårligere"
    # with randomization inference over 98 municipalities (11 treated) the small simulation has
    # little power; at least one of the clear planted effects must still be detected
    assert any(rec[k]["verdict"] == "bedre" for k in clear), [rec[k] for k in clear]


# --------------------------------------------------------------------------- scheduling
def test_rebuild_is_byte_identical_and_idempotent(small_cfg, tmp_path):
    r1 = build_report(small_cfg)
    assert r1.rebuilt
    snap = {p.relative_to(r1.out): p.read_bytes() for p in r1.out.rglob("*") if p.is_file()}
    r2 = build_report(small_cfg)                      # unchanged: nothing rebuilt
    assert not r2.rebuilt and r2.build_hash == r1.build_hash
    assert (r1.out / "manifest.json").read_bytes() == snap[Path("manifest.json")]
    r3 = build_report(small_cfg, force=True)          # forced: same bytes
    assert r3.rebuilt
    for rel, data in snap.items():
        if rel.name == "manifest.json":
            continue
        assert (r3.out / rel).read_bytes() == data, rel
    # a changed config or input is a different build
    from evaluering.report.build import build_hash, input_checksums

    other = replace(small_cfg, analyse=AnalysisOptions(n_boot=199, seed=1))
    assert build_hash(other, input_checksums(other)) != r1.build_hash
    sums = dict(input_checksums(small_cfg))
    assert build_hash(small_cfg, sums) == r1.build_hash
    sums["forsoeg"] = "0" * 64
    assert build_hash(small_cfg, sums) != r1.build_hash


def test_interrupted_build_leaves_previous_report(small_cfg, monkeypatch):
    from evaluering.report import document

    r1 = build_report(small_cfg)          # built by the previous test, or built now
    before = {p.relative_to(r1.out): p.read_bytes() for p in r1.out.rglob("*") if p.is_file()}

    def boom(tmp, *a, **k):
        assert (tmp / "resultater.json").is_file()   # some files were already written
        raise RuntimeError("injected failure")

    monkeypatch.setattr(document, "write_figures", boom)
    with pytest.raises(RuntimeError, match="injected"):
        build_report(small_cfg, force=True)
    after = {p.relative_to(r1.out): p.read_bytes() for p in r1.out.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in r1.out.parent.iterdir() if p.name.startswith(".lille.")]
    assert "FEJL" in (r1.out.parent / "lille.log").read_text()


def test_lock_blocks_second_build(small_cfg, capsys):
    from evaluering.cli import main
    from evaluering.report.build import build_lock

    with build_lock(small_cfg.out):
        with pytest.raises(BuildLocked, match="another build"):
            build_report(small_cfg, force=True)
        cfg_file = small_cfg.out.parent / "lille-config.toml"
        cfg_file.write_text(f'[rapport]\ndata = "{small_cfg.data}"\nforsoeg = "{small_cfg.forsoeg}"\n'
                            f'out = "{small_cfg.out}"\n[analyse]\nn_boot = 199\n', encoding="utf-8")
        rc = main(["rapport", "--config", str(cfg_file), "--force"])
        err = capsys.readouterr().err
        assert rc == 1 and "another build" in err and len(err.strip().splitlines()) == 1
    # lock released: the same config builds (or finds nothing to do)
    assert main(["rapport", "--config", str(cfg_file)]) == 0


def test_cli_bad_input_exit_2(tmp_path):
    from evaluering.cli import main

    assert main(["rapport", str(tmp_path / "mangler")]) == 2
    bad = tmp_path / "x.toml"
    bad.write_text("[rapport]\ndata = 'a'\n", encoding="utf-8")
    assert main(["rapport", "--config", str(bad)]) == 2


def test_randomization_inference_path(small_cfg, tmp_path):
    """inferens = "ri": p-value and interval are those of randomization_inference over the
    municipalities (recomputed here by calling it directly)."""
    from evaluering.inference.randomization import randomization_inference
    from evaluering.reference.catalogue import load_forsoeg
    from evaluering.report.analysis import _cs, run_analysis, trial_panel

    opts = AnalysisOptions(inferens="ri", n_perm=49, seed=5)
    an = run_analysis(small_cfg.data, load_forsoeg(small_cfg.forsoeg), opts)
    rec = an.records.set_index("udfald").loc["andel_fysiske_samtaler"]
    assert rec["inference"].startswith("randomization inference")
    f = load_forsoeg(small_cfg.forsoeg)[0]
    tp = trial_panel(pd.read_parquet(small_cfg.data / "panel_kvartal.parquet"), f, "halvaar")
    d = tp[tp["andel_fysiske_samtaler_n"] > 0]
    ri = randomization_inference(lambda fr: _cs(fr, "andel_fysiske_samtaler", opts, False), d,
                                 "kommune_kode", cohort_col="kohorte", time="t", n_perm=49, seed=5,
                                 ci=True, outcome="andel_fysiske_samtaler", linear_in_outcome=True)
    assert rec["p"] == pytest.approx(ri.p) and rec["p"] >= 1 / 50
    for mine, theirs in zip((rec["ci_low"], rec["ci_high"]), ri.ci):
        if np.isfinite(theirs):
            assert mine == pytest.approx(theirs)
        else:                       # an unbounded side (too few permutations) is null in JSON
            assert np.isnan(mine)


def test_period_persons_match_pandas(built):
    """Distinct persons behind the figure points (DuckDB) equal a pandas count on the outcome
    tables, per role × half-year and per event time."""
    from evaluering.reference.catalogue import load_forsoeg

    cfg, res = built
    proc = cfg.behandlet / "behandlet"
    f = next(x for x in load_forsoeg(cfg.forsoeg) if x.id == "samtaler-forsikrede")
    x = pd.read_parquet(proc / "eksponering.parquet")
    r = pd.read_parquet(proc / "ressourcer.parquet", columns=["spell_id", "person_id", "samtaler_pr_forloeb"])
    d = x[(x["forsoeg_id"] == f.id) & x["ydelsesgruppe"].isin(f.maalgruppe) & (x["rolle"] != "udelukket")]
    d = d[pd.to_datetime(d["start_dato"]).dt.date <= f.slut].merge(r, on="spell_id")
    d = d[d["samtaler_pr_forloeb"].notna()]
    half = lambda q: (q // 4) * 2 + (q % 4) // 2  # noqa: E731
    d = d.assign(h=half(d["start_kvartal_nr"]))
    expect = d.groupby(["rolle", "h"])["person_id"].nunique()
    pp = res.analysis.period_persons
    pp = pp[pp["forsoeg"] == f.id]
    got = pp[pp["gruppe"].isin(["behandlet", "kontrol"])].set_index(["gruppe", "noegle"])[
        "n_samtaler_pr_forloeb"]
    got = got[got > 0]
    assert dict(got.astype(int)) == {k: int(v) for k, v in expect.items()}
    tr = d[d["rolle"] == "behandlet"]
    e = (tr["h"] - half(tr["kohorte_kvartal_nr"].astype(int))).rename("e")
    exp_e = tr.groupby(e)["person_id"].nunique()
    got_e = pp[pp["gruppe"] == "e"].set_index("noegle")["n_samtaler_pr_forloeb"]
    assert dict(got_e[got_e > 0].astype(int)) == {int(k): int(v) for k, v in exp_e.items()}
    # one treated municipality's points (small multiples): distinct persons per municipality
    exp_k = tr.groupby(["kommune_kode", "h"])["person_id"].nunique()
    got_k = pp[pp["gruppe"] == "kommune"].set_index(["kommune_kode", "noegle"])["n_samtaler_pr_forloeb"]
    assert dict(got_k[got_k > 0].astype(int)) == {k: int(v) for k, v in exp_k.items()}


def test_km_person_horizon_matches_pandas(built):
    """The Kaplan–Meier figure stops at the last week with >= k distinct persons at risk:
    recomputed in pandas from the outcome tables (a person is at risk in week w when one of
    their spells lasts >= w weeks)."""
    from evaluering.reference.catalogue import load_forsoeg
    from evaluering.report.analysis import KM_GROUPS, km_person_horizon

    cfg, res = built
    proc = cfg.behandlet / "behandlet"
    trials = load_forsoeg(cfg.forsoeg)
    x = pd.read_parquet(proc / "eksponering.parquet")
    t = pd.read_parquet(proc / "tid_til_job.parquet", columns=["spell_id", "person_id", "varighed_uger"])
    for k in (5, 400):
        got = km_person_horizon(proc, trials, k)
        for f in trials:
            d = x[(x["forsoeg_id"] == f.id) & x["ydelsesgruppe"].isin(f.maalgruppe)
                  & (x["rolle"] != "udelukket")]
            d = d[pd.to_datetime(d["start_dato"]).dt.date <= f.slut].merge(t, on="spell_id")
            d = d[d["varighed_uger"].notna()]
            first = min(f.start_for(m) for m in f.kommuner)
            q0 = first.year * 4 + (first.month - 1) // 3
            groups = (d[d["eksponeret"]], d[~d["eksponeret"] & (d["rolle"] == "kontrol")
                                           & (d["start_kvartal_nr"] >= q0)])
            for lab, g in zip(KM_GROUPS, groups):
                longest = g.groupby("person_id")["varighed_uger"].max().sort_values(ascending=False)
                expect = int(longest.iloc[k - 1]) if len(longest) >= k else 0
                assert got[f.id][lab] == expect, (f.id, lab, k)
                if expect:   # >= k persons at risk at the horizon, fewer one week later
                    assert (longest >= expect).sum() >= k and (longest > expect).sum() < k
