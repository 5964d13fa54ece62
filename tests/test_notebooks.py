"""Run every analyst notebook headless with papermill on small data; any raising cell fails.

Notebooks (a)-(c) and (e) get a data folder that does not exist yet: the first one simulates a small
data set there (simulator API, fixed seed, fewer persons than scale "small" to keep the run
short) and the others reuse it; (e), the trial analysis a report build can run, with few
permutations. The AUK01 notebook runs with few bootstrap draws. The executed
copies are written with :func:`evaluering.casestudy.notebook_audit.run_notebook_audit`, so
the audit-file path is exercised too.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from evaluering.casestudy.notebook_audit import NotebookFailed, run_notebook_audit
from evaluering.errors import InputError

NB_DIR = Path(__file__).resolve().parent.parent / "notebooks"
DATA_NOTEBOOKS = ["01_dataoversigt.ipynb", "02_tid_til_job.ipynb", "03_ressourcer.ipynb",
                  "05_forsoegsanalyse.ipynb"]
# few draws for the trial-analysis notebook (e), which estimates every outcome of a trial
FAST = {"05_forsoegsanalyse.ipynb": {"analyse": {"n_perm": 19, "n_score_boot": 199,
                                                 "foelsomhed": False}}}
AUK01_NOTEBOOK = "04_auk01_casestudie.ipynb"

pytestmark = pytest.mark.notebooks


def _executed_ok(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), "not every cell ran"
    for c in code:
        for o in c.get("outputs", []):
            assert o.get("output_type") != "error", o.get("evalue")
    return nb


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("nbdata") / "raw"  # does not exist: notebook (a) simulates


def test_notebooks_in_git_are_clean_and_parameterised():
    names = sorted(p.name for p in NB_DIR.glob("*.ipynb"))
    assert set(DATA_NOTEBOOKS + [AUK01_NOTEBOOK]) <= set(names)
    for name in names:
        nb = nbformat.read(str(NB_DIR / name), as_version=4)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, name
        for c in nb.cells:
            if c.cell_type == "code":
                assert c.execution_count is None and c.outputs == [], f"{name}: outputs in git"
        src = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "/work/shared" not in src and "../shared" not in src


def test_data_notebooks_run_headless(data_dir, tmp_path):
    assert not data_dir.exists()
    params = {"data_dir": data_dir, "n_persons": 1200, "seed": 7}
    for name in DATA_NOTEBOOKS:
        out = run_notebook_audit(NB_DIR / name, tmp_path / "audit" / name,
                                 {**params, **FAST.get(name, {})})
        assert out == tmp_path / "audit" / name
        nb = _executed_ok(out)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and str(data_dir) in injected[0].source
    # notebook (a) simulated the data set where it was told to, and built the outcomes once
    assert (data_dir / "forloeb.parquet").exists()
    processed = data_dir.parent / "raw_processed"
    manifest = json.loads((processed / "manifest.json").read_text())
    assert manifest["registers"]["forloeb"]["rows_read"] > 0


def test_auk01_notebook_runs_headless(tmp_path):
    params = {"n_boot": 99, "n_perm": 49, "sdid_reps": 10, "honest_rm": False}
    out = run_notebook_audit(NB_DIR / AUK01_NOTEBOOK, tmp_path / "auk01.ipynb", params)
    _executed_ok(out)


def test_notebook_audit_failure_and_input_errors(tmp_path):
    bad = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("x = 1")
    p.metadata["tags"] = ["parameters"]
    bad.cells = [p, nbformat.v4.new_code_cell("raise ValueError('boom ' + str(x))")]
    bad.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                  "language": "python"}
    src = tmp_path / "bad.ipynb"
    nbformat.write(bad, str(src))
    target = tmp_path / "out" / "bad.ipynb"
    with pytest.raises(NotebookFailed, match="boom 2"):
        run_notebook_audit(src, target, {"x": 2})
    assert not target.exists()  # no half-written audit file
    assert (tmp_path / "out" / "bad.failed.ipynb").exists()
    with pytest.raises(InputError):
        run_notebook_audit(tmp_path / "missing.ipynb", target, {})
    nop = nbformat.v4.new_notebook()
    nop.cells = [nbformat.v4.new_code_cell("y = 1")]
    nbformat.write(nop, str(tmp_path / "noparams.ipynb"))
    with pytest.raises(InputError, match="parameters"):
        run_notebook_audit(tmp_path / "noparams.ipynb", target, {"y": 2})
