"""A notebook as a trial's analysis in the report build, and its audit copy beside the PDF.

End to end on the small simulation with a two-trial catalogue and few permutations:

* a build whose first trial is analysed by ``notebooks/05_forsoegsanalyse.ipynb`` prints the
  same records as the built-in analysis (the notebook starts from ``analyse_trial``), keeps the
  executed notebook beside the PDF, names it in the PDF and the manifest;
* two such builds through different temporary work folders give byte-identical PDF, results
  and audit copy;
* a notebook parameter that changes the period length changes exactly that trial's records,
  to what ``analyse_trial`` gives with those options;
* the audit copy holds no person id of the data and only released text outputs;
* failures stop the build with the previous report intact: a raising notebook, a notebook that
  saves nothing, a released output with a person id, a config naming an unknown trial.

The audit-copy rule itself is also tested on hand-made notebooks (no kernel).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from evaluering.errors import DisclosureError, InputError
from evaluering.report import AnalysisOptions, ReportConfig, build_report, load_config
from evaluering.report.analysis import (TrialAnalysis, analyse_trial, load_trial_analysis,
                                        save_trial_analysis)
from evaluering.report.notebook import NotebookAnalysisFailed, NotebookSpec, audit_copy

from catalogues import certificates_sickness, meetings_insured

NB = Path(__file__).resolve().parent.parent / "notebooks" / "05_forsoegsanalyse.ipynb"
TRIAL = "samtaler-forsikrede"
# 49 draws: the smallest Holm-adjusted p over a family of 2 is 2/50 < alpha (run_analysis checks)
OPTS = AnalysisOptions(n_perm=49, n_score_boot=199, foelsomhed=False)

CATALOGUE = (meetings_insured(["andel_fysiske_samtaler", "hazard_job"])
             + certificates_sickness(["laegeattester_pr_forloeb", "udgift_pr_forloeb"]))


@pytest.fixture(scope="module")
def data(tmp_path_factory, simulated_dataset):
    from evaluering.ingest import ingest
    from evaluering.outcomes import build_outcomes

    root = tmp_path_factory.mktemp("nbrapport")
    raw = simulated_dataset(scale="small", seed=2017)     # shared: read only
    cat = root / "forsoeg.toml"
    cat.write_text(CATALOGUE, encoding="utf-8")
    processed = root / "behandlet"
    ingest(raw, processed)
    build_outcomes(processed, forsoeg=cat)
    return root, processed, cat


def _cfg(data, out: str, **kw) -> ReportConfig:
    root, processed, cat = data
    return ReportConfig(data=processed, forsoeg=cat, out=root / "reports" / out, analyse=OPTS,
                        casestudie_auk01=False, **kw)


@pytest.fixture(scope="module")
def plain(data):
    return build_report(_cfg(data, "uden"))


@pytest.fixture(scope="module")
def with_nb(data):
    return build_report(_cfg(data, "med", notebooks=(NotebookSpec(TRIAL, NB),)))


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(p.extract_text() for p in PdfReader(path).pages)


def _person_ids(processed: Path) -> set[str]:
    return set(pd.read_parquet(processed / "tid_til_job.parquet", columns=["person_id"])["person_id"])


def test_notebook_analysis_matches_builtin_and_is_kept_beside_pdf(data, plain, with_nb):
    _, processed, _ = data
    a = json.loads(plain.resultater.read_text(encoding="utf-8"))
    b = json.loads(with_nb.resultater.read_text(encoding="utf-8"))
    assert a == b                                   # same estimators, options and seeds
    audit = with_nb.out / "analyse-samtaler-forsikrede.ipynb"
    assert audit.is_file() and audit.parent == with_nb.pdf.parent
    m = json.loads(with_nb.manifest.read_text(encoding="utf-8"))
    entry = m["notesboeger"][TRIAL]
    assert entry["notesbog"] == NB.name and entry["revisionsfil"] == audit.name
    assert "analyse-samtaler-forsikrede.ipynb" in m["files"]
    assert m["inputs"][f"notebook/{TRIAL}"] == entry["sha256_kilde"]
    text = _pdf_text(with_nb.pdf)
    assert NB.name in " ".join(text.split()) and "revisionsfilen" in text
    assert NB.name not in _pdf_text(plain.pdf)
    # the audit copy: executed, only released cells keep outputs, only text, no person id
    nb = nbformat.read(str(audit), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    released = [c for c in code if "offentlig" in c.metadata.get("tags", [])]
    assert released and all(c.outputs for c in released)
    for c in code:
        if "offentlig" not in c.metadata.get("tags", []):
            assert c.outputs == []
        for o in c.outputs:
            assert not any(k.startswith("image/") for k in o.get("data", {}))
    assert entry["output_fjernet"] > 0             # the diagnostics cell's outputs went
    raw_text = audit.read_text(encoding="utf-8")
    tokens = set(pd.Series(raw_text.replace('"', " ").split()).str.strip(",:;()[]'"))
    assert not (tokens & _person_ids(processed))
    assert "papermill" in nb.metadata and "start_time" not in json.dumps(nb.metadata)
    assert "start_time" not in raw_text and "iopub" not in raw_text


def test_notebook_build_is_byte_identical_through_other_temp_folders(data, with_nb):
    again = build_report(_cfg(data, "med-igen", notebooks=(NotebookSpec(TRIAL, NB),)))
    for name in ("rapport.pdf", "resultater.json", "analyse-samtaler-forsikrede.ipynb",
                 "tabeller/sammenfatning.csv"):
        assert (again.out / name).read_bytes() == (with_nb.out / name).read_bytes(), name
    assert "<arbejdsmappe>" in (again.out / "analyse-samtaler-forsikrede.ipynb").read_text()
    # unchanged inputs and config: nothing rebuilt
    assert not build_report(_cfg(data, "med-igen", notebooks=(NotebookSpec(TRIAL, NB),))).rebuilt


def test_notebook_options_change_only_its_trial(data, plain):
    root, processed, cat = data
    res = build_report(_cfg(data, "kvartal", notebooks=(
        NotebookSpec(TRIAL, NB, parametre={"periode": "kvartal"}),)))
    recs = {(r["forsoeg"], r["udfald"]): r for r in json.loads(res.resultater.read_text())}
    base = {(r["forsoeg"], r["udfald"]): r for r in json.loads(plain.resultater.read_text())}
    from evaluering.reference.catalogue import load_forsoeg

    f = {x.id: x for x in load_forsoeg(cat)}[TRIAL]
    direct = analyse_trial(processed, f, replace(OPTS, periode="kvartal")).records.set_index("udfald")
    for (fid, o), r in recs.items():
        if fid == TRIAL:
            assert r["estimate"] == pytest.approx(direct.loc[o, "estimate"], rel=1e-12)
            assert r["p"] == pytest.approx(direct.loc[o, "p"], rel=1e-12)
        else:
            assert r == base[(fid, o)]
    changed = [o for (fid, o) in recs if fid == TRIAL and o != "hazard_job"
               and recs[(fid, o)]["estimate"] != base[(fid, o)]["estimate"]]
    assert changed                                   # quarters are not half-years
    assert "kvartals" in _pdf_text(res.pdf)


def _tiny_notebook(path: Path, body: str, tags=("offentlig",)) -> Path:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("processed_dir = forsoeg_fil = forsoeg_id = resultat_fil = None\n"
                                  "analyse = {}\nkilde = None")
    p.metadata["tags"] = ["parameters"]
    c = nbformat.v4.new_code_cell(body)
    c.metadata["tags"] = list(tags)
    nb.cells = [p, c]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def test_notebook_failures_stop_the_build_and_keep_the_previous_report(data, with_nb, tmp_path):
    root, processed, cat = data
    saved = root / "reports" / "saved.json"
    # a trial analysis as a notebook would save it (from the built-in analysis, 1 trial)
    from evaluering.reference.catalogue import load_forsoeg

    f = {x.id: x for x in load_forsoeg(cat)}[TRIAL]
    ta = analyse_trial(processed, f, OPTS)
    save_trial_analysis(ta, saved)
    copy_body = f"import shutil\nshutil.copy({str(saved)!r}, resultat_fil)\n"
    out = with_nb.out
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    pid = sorted(_person_ids(processed))[0]
    first_id = (f"import pandas as pd\nfirst = pd.read_parquet({str(processed / 'tid_til_job.parquet')!r})"
                f".person_id.min()\nprint('person', first)\n")
    cases = [
        (_tiny_notebook(tmp_path / "raises.ipynb", "raise RuntimeError('analysen fejlede')"),
         NotebookAnalysisFailed, "analysen fejlede"),
        (_tiny_notebook(tmp_path / "nosave.ipynb", "x = 1"), NotebookAnalysisFailed,
         "save_trial_analysis"),
        (_tiny_notebook(tmp_path / "leak.ipynb", copy_body + first_id), DisclosureError,
         "output: 1 person id"),
        (_tiny_notebook(tmp_path / "code.ipynb", copy_body + f"x = {pid!r}", tags=()),
         DisclosureError, r"\(code\): 1 person id"),
        (_tiny_notebook(tmp_path / "cpr.ipynb", copy_body + "print('cpr 010190-1234')"),
         DisclosureError, "CPR"),
    ]
    for nb_path, exc, msg in cases:
        cfg = _cfg(data, "med", notebooks=(NotebookSpec(TRIAL, nb_path),))
        with pytest.raises(exc, match=msg):
            build_report(cfg, force=True)
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before, nb_path.name
    # the same person id printed by a cell that is NOT released: removed, the build succeeds
    ok = _tiny_notebook(tmp_path / "private.ipynb", copy_body + first_id, tags=())
    res = build_report(_cfg(data, "privat", notebooks=(NotebookSpec(TRIAL, ok),)))
    nb = nbformat.read(str(res.out / "analyse-samtaler-forsikrede.ipynb"), as_version=4)
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")
    assert pid not in (res.out / "analyse-samtaler-forsikrede.ipynb").read_text(encoding="utf-8")
    assert json.loads(res.resultater.read_text()) == json.loads(with_nb.resultater.read_text())


def test_config_and_spec_errors(data, tmp_path):
    root, processed, cat = data
    cfg_file = tmp_path / "evaluering.toml"
    cfg_file.write_text(f'''
[rapport]
data = "{processed}"
forsoeg = "{cat}"
casestudie_auk01 = false
[notebooks.{TRIAL}]
notebook = "{NB}"
parametre = {{ periode = "kvartal" }}
''', encoding="utf-8")
    cfg = load_config(cfg_file)
    assert cfg.notebooks == (NotebookSpec(TRIAL, NB, {"periode": "kvartal"}),)
    assert cfg.canonical()["notebooks"][TRIAL]["parametre"] == {"periode": "kvartal"}
    cfg_file.write_text(cfg_file.read_text().replace("parametre", "parametr"), encoding="utf-8")
    with pytest.raises(InputError, match="unknown key"):
        load_config(cfg_file)
    with pytest.raises(InputError, match="resultat_fil"):
        NotebookSpec(TRIAL, NB, {"resultat_fil": "x"})
    with pytest.raises(InputError, match="no such trial"):
        build_report(_cfg(data, "ukendt", notebooks=(NotebookSpec("findes-ikke", NB),)))
    with pytest.raises(InputError, match="not found"):
        build_report(_cfg(data, "ukendt", notebooks=(NotebookSpec(TRIAL, tmp_path / "nej.ipynb"),)))


def test_trial_analysis_round_trip_and_checks(data, tmp_path):
    root, processed, cat = data
    from evaluering.reference.catalogue import load_forsoeg
    from evaluering.report.analysis import run_analysis

    trials = load_forsoeg(cat)
    f = trials[1]
    ta = analyse_trial(processed, f, OPTS)
    back = load_trial_analysis(save_trial_analysis(ta, tmp_path / "ta.json"))
    assert json.dumps(back.to_dict(), sort_keys=True) == json.dumps(ta.to_dict(), sort_keys=True)
    for o, r in ta.results.items():
        pd.testing.assert_frame_equal(back.results[o].component("event"), r.component("event"),
                                      check_dtype=False)
    # summary blanks outcomes on fewer than k exposed persons
    small = replace(ta, n_persons={o: (10, 3) for o in ta.n_persons})
    s = small.summary()
    assert s["suppressed"].all() and s["estimate"].isna().all() and s["n_persons_exposed"].isna().all()
    # a trial analysis missing a declared outcome, or of another trial, is refused
    with pytest.raises(InputError, match="missing"):
        run_analysis(processed, trials, OPTS, trial_analyses={f.id: replace(
            ta, records=ta.records.iloc[:1])})
    with pytest.raises(InputError, match="is of trial"):
        run_analysis(processed, trials, OPTS, trial_analyses={trials[0].id: ta})
    # too few permutations for Holm over the family to ever reach alpha: refused
    with pytest.raises(InputError, match="n_perm"):
        run_analysis(processed, trials, replace(OPTS, n_perm=19))
    with pytest.raises(InputError, match="n_perm"):
        run_analysis(processed, trials, replace(OPTS, n_perm=49, familie="alle"))
    # replace_outcome swaps one outcome's numbers for another estimator's result
    from evaluering.results import EstimateResult

    other = EstimateResult(method="bjs", estimate=1.5, se=0.5, ci=(0.5, 2.5), p=0.01, n_obs=10,
                           n_units=5, inference="analytic")
    o = f.udfald[0]
    r2 = ta.replace_outcome(o, other, inference="wild").records.set_index("udfald").loc[o]
    assert (r2["estimate"], r2["ci_low"], r2["p"], r2["method"], r2["inference"]) == (
        1.5, 0.5, 0.01, "bjs", "wild")
    with pytest.raises(InputError, match="not an outcome"):
        ta.replace_outcome("hazard_job", other)


# --------------------------------------------------------------------------- the audit rule
def _executed(cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["papermill"] = {"start_time": "2026-01-01T00:00:00", "duration": 1.0,
                                "parameters": {"resultat_fil": "/tmp/work123/x.json"},
                                "version": "2.7.0", "input_path": "a", "output_path": "b"}
    return nb


def _cell(src, outputs, tags=()):
    c = nbformat.v4.new_code_cell(src)
    c.outputs = outputs
    c.execution_count = 1
    c.metadata["tags"] = list(tags)
    c.metadata["papermill"] = {"start_time": "x", "duration": 0.1}
    c.metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    return c


def test_audit_copy_rule():
    out_text = nbformat.v4.new_output("stream", name="stdout", text="mean 1.5 in /tmp/work123/a\n")
    out_fig = nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain":
                                                           "<Figure at 0x7f3a2b4c5d6e>"})
    nb = _executed([_cell("print(1)", [out_text, out_fig], tags=["offentlig"]),
                    _cell("print(2)", [nbformat.v4.new_output("stream", name="stdout", text="P0001\n")])])
    none = lambda toks: []  # noqa: E731
    audit, stats = audit_copy(nb, forsoeg="f", source_sha256="ab" * 32, find_person_ids=none,
                              private_paths=["/tmp/work123"])
    rel, priv = audit.cells[1], audit.cells[2]
    assert audit.cells[0].cell_type == "markdown" and "Revisionskopi" in audit.cells[0].source
    assert rel.outputs[0]["text"] == "mean 1.5 in <arbejdsmappe>/a\n"
    assert rel.outputs[1]["data"] == {"text/plain": "<Figure at 0x…>"}    # image removed
    assert priv.outputs == []
    assert stats["figurer_fjernet"] == 1 and stats["output_fjernet"] == 1
    assert stats["frigivne_celler"] == ["celle-1"]
    for c in audit.cells:
        assert "papermill" not in c.metadata and "execution" not in c.metadata
    assert audit.metadata["papermill"] == {"parameters": {"resultat_fil": "<arbejdsmappe>/x.json"},
                                           "version": "2.7.0"}
    # machine checks: a person id or a CPR in released output or in code stops it
    ids = lambda toks: [t for t in toks if t == "P0001"]  # noqa: E731
    leak_out = nbformat.v4.new_output("stream", name="stdout", text="id P0001")
    cpr_out = nbformat.v4.new_output("execute_result", data={"text/html": "<td>0101901234</td>"},
                                     execution_count=1)
    cases = [([_cell("x", [leak_out], ["offentlig"])], "person id"),
             ([_cell("df[df.person_id == 'P0001']", [])], "person id"),
             ([_cell("x", [cpr_out], ["offentlig"])], "CPR")]
    for cells, what in cases:
        with pytest.raises(DisclosureError, match=what):
            audit_copy(_executed(cells), forsoeg="f", source_sha256="0", find_person_ids=ids)
    # the unreleased person id is not checked (its output is removed anyway)
    audit_copy(_executed([_cell("x", [nbformat.v4.new_output("stream", name="stdout",
                                                              text="P0001")])]),
               forsoeg="f", source_sha256="0", find_person_ids=ids)
    assert isinstance(TrialAnalysis, type)


def test_cli_notebook_option(data, tmp_path):
    from evaluering.cli import main
    from evaluering.report.build import parse_notebook_option

    root, processed, cat = data
    assert parse_notebook_option([f"{TRIAL}={NB}"]) == (NotebookSpec(TRIAL, NB),)
    for bad in ("no-equals-sign", "=x.ipynb", f"{TRIAL}="):
        assert main(["rapport", str(processed), "--forsoeg", str(cat), "--out",
                     str(tmp_path / "r"), "--notebook", bad]) == 2
    assert main(["rapport", str(processed), "--forsoeg", str(cat), "--out", str(tmp_path / "r"),
                 "--notebook", f"findes-ikke={NB}"]) == 2       # no such trial: input error
    assert not (tmp_path / "r").exists()
