"""A notebook as the analysis of a trial, and its audit copy beside the PDF.

A report config may name, per trial, an analyst's notebook that estimates the trial instead of
the built-in analysis (``[notebooks.<forsoeg-id>]`` in ``evaluering.toml``; see
docs/report.md). The build runs it headless with papermill
(:func:`run_notebook_audit`: the executed copy written atomically, a failing run leaving a
``.failed.ipynb`` copy beside it), injecting

* ``processed_dir`` — the processed folder with the outcome tables,
* ``forsoeg_fil`` and ``forsoeg_id`` — the trial catalogue and the trial,
* ``analyse`` — the report's analysis options as a dict (the notebook may change the estimation
  options: periods, comparison group, inference, draws, seed),
* ``resultat_fil`` — where the notebook must write its :class:`~evaluering.report.analysis.
  TrialAnalysis` with :func:`~evaluering.report.analysis.save_trial_analysis`,

plus the config's own parameters for that notebook. The report reads the trial analysis back and
uses it for the trial's records and figures; person counts, suppression, the multiplicity
adjustment and the verdicts stay the report's (:func:`~evaluering.report.analysis.run_analysis`).

The executed notebook is published beside the PDF as an **audit copy** under a default-deny
disclosure rule (docs/disclosure.md):

* code and markdown cells are kept; a code cell whose source holds a CPR-shaped string or a
  person id of the data stops the build (:class:`~evaluering.errors.DisclosureError`);
* outputs are removed, except in cells the analyst tagged ``offentlig`` (the analyst's
  statement that the output is aggregate and built on at least k persons — use
  ``TrialAnalysis.summary()``, which blanks results on fewer than k persons);
* of a tagged cell's outputs only text is kept (``text/plain``, ``text/markdown``,
  ``text/html``, streams); figures are removed because no machine check can tell what they are
  built on (the report's own figures are disclosure controlled); a tagged output holding a
  CPR-shaped string or a person id stops the build;
* papermill's timings and the kernel's timestamps are removed, temporary paths and memory
  addresses replaced, so the same inputs give a byte-identical audit copy.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from evaluering.errors import DisclosureError, EvalueringError, InputError

__all__ = ["NotebookSpec", "TAG_PUBLIC", "RESERVED_PARAMETERS", "run_trial_notebook",
           "audit_copy", "person_id_finder", "run_notebook_audit", "NotebookFailed",
           "NotebookAnalysisFailed"]

TAG_PUBLIC = "offentlig"
RESERVED_PARAMETERS = ("processed_dir", "forsoeg_fil", "forsoeg_id", "analyse", "resultat_fil")
WORK_PLACEHOLDER = "<arbejdsmappe>"
TEXT_MIMES = ("text/plain", "text/markdown", "text/html")
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{4,64}")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,16}\b")
_NOTE = ("**Revisionskopi.** Denne notesbog er kørt af rapportbygningen som analysen af "
         "forsøget `{forsoeg}`. Kode og parametre er som kørt. Output er fjernet undtagen i celler "
         "mærket `offentlig`, og af dem er kun tekst bevaret (figurer kan ikke kontrolleres for "
         "små celler; rapportens egne figurer er kontrolleret). Tidsstempler og midlertidige "
         "stier er fjernet. Kildens SHA-256: `{sha}`.")


class NotebookFailed(RuntimeError):
    """A cell of the notebook raised; ``failed_copy`` holds the partially executed notebook."""

    def __init__(self, message: str, failed_copy: Path | None):
        super().__init__(message)
        self.failed_copy = failed_copy


def run_notebook_audit(notebook: str | os.PathLike, out_path: str | os.PathLike,
                       parameters: Mapping[str, Any] | None = None, *,
                       kernel_name: str = "python3", cwd: str | os.PathLike | None = None,
                       timeout: int | None = 1800) -> Path:
    """Execute ``notebook`` with ``parameters`` and write the executed copy to ``out_path``.

    Parameters
    ----------
    notebook : the source ``.ipynb`` (its ``parameters``-tagged cell holds the defaults).
    out_path : where the executed notebook (the audit file) is written, atomically.
    parameters : values injected after the ``parameters`` cell (papermill); paths are
        converted to strings.
    kernel_name : Jupyter kernel (default ``python3``).
    cwd : working directory of the kernel (default: the notebook's folder).
    timeout : per-cell timeout in seconds (None = no limit).

    Returns the path of the audit file. Raises :class:`InputError` when the notebook does
    not exist or has no ``parameters`` cell while parameters are given, and
    :class:`NotebookFailed` when a cell raises.
    """
    import nbformat
    import papermill as pm

    from evaluering._atomic import atomic_path

    nb_path = Path(notebook)
    if not nb_path.is_file():
        raise InputError("notebook not found", file=str(nb_path), expected="an .ipynb file")
    params = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in (parameters or {}).items()}
    if params:
        nb = nbformat.read(str(nb_path), as_version=4)
        if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
            raise InputError("the notebook has no cell tagged 'parameters'", file=str(nb_path),
                             expected="a code cell with the tag 'parameters' (papermill)")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    failed = out.with_name(out.stem + ".failed.ipynb")
    workdir = str(cwd) if cwd is not None else str(nb_path.resolve().parent)
    with atomic_path(out) as tmp:
        tmp_nb = tmp.with_suffix(".ipynb")
        try:
            pm.execute_notebook(str(nb_path), str(tmp_nb), parameters=params,
                                kernel_name=kernel_name, cwd=workdir, progress_bar=False,
                                execution_timeout=timeout)
        except pm.PapermillExecutionError as exc:
            if tmp_nb.exists():
                os.replace(tmp_nb, failed)
            raise NotebookFailed(f"{nb_path.name}: cell {exc.exec_count} raised "
                                 f"{exc.ename}: {exc.evalue}", failed if failed.exists()
                                 else None) from exc
        finally:
            if tmp_nb.exists() and tmp_nb != tmp:
                os.replace(tmp_nb, tmp)
    if failed.exists():
        failed.unlink()
    return out


class NotebookAnalysisFailed(EvalueringError):
    """The trial's notebook raised or did not write its trial analysis."""


@dataclass(frozen=True)
class NotebookSpec:
    """One trial's notebook: ``notebook`` (path to the .ipynb) and extra ``parametre``."""

    forsoeg: str
    notebook: Path
    parametre: Mapping[str, Any] = field(default_factory=dict)
    timeout: int | None = 1800           # seconds per cell

    def __post_init__(self) -> None:
        clash = sorted(set(self.parametre) & set(RESERVED_PARAMETERS))
        if clash:
            raise InputError(f"notebook parameters for '{self.forsoeg}' may not set "
                             f"{', '.join(clash)} (the build injects them)")

    def canonical(self) -> dict[str, Any]:
        return {"notebook": str(self.notebook), "parametre": dict(self.parametre),
                "timeout": self.timeout}


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def person_id_finder(processed: Path):
    """A function ``tokens -> sorted person ids among them`` over the processed folder's
    person ids (DuckDB; the ids are never loaded into Python as a whole)."""
    import duckdb

    src = Path(processed) / "tid_til_job.parquet"

    def find(tokens: Iterable[str]) -> list[str]:
        toks = sorted(set(tokens))
        if not toks or not src.is_file():
            return []
        con = duckdb.connect()
        try:
            con.execute("CREATE TEMP TABLE tok AS SELECT unnest(?::VARCHAR[]) AS t", [toks])
            rows = con.execute(f"SELECT DISTINCT person_id FROM read_parquet('{src}') "
                               "WHERE person_id IN (SELECT t FROM tok) ORDER BY 1").fetchall()
        finally:
            con.close()
        return [r[0] for r in rows]

    return find


def _has_cpr(text: str) -> bool:
    from evaluering.ingest._cpr import mask_text

    return mask_text(text) != text


def _as_text(v: Any) -> str:
    return "".join(v) if isinstance(v, list) else str(v)


def _clean_text(text: str, paths: list[str]) -> str:
    for p in paths:
        text = text.replace(p, WORK_PLACEHOLDER)
    return _ADDRESS.sub("0x…", text)


def audit_copy(nb, *, forsoeg: str, source_sha256: str, find_person_ids,
               private_paths: Iterable[str] = (), tag: str = TAG_PUBLIC):
    """The publishable audit copy of an executed notebook (see the module docstring).

    Returns ``(notebook, stats)``; ``stats`` counts kept and removed outputs and lists the
    indices of the released cells. Raises :class:`DisclosureError` naming the cell when code
    or a released output holds a CPR-shaped string or a person id.
    """
    import nbformat

    nb = copy.deepcopy(nb)
    paths = sorted({str(p) for p in private_paths if str(p)}, key=len, reverse=True)
    stats = {"celler": len(nb.cells), "frigivne_celler": [], "output_bevaret": 0,
             "output_fjernet": 0, "figurer_fjernet": 0}

    def check(text: str, where: str) -> None:
        if _has_cpr(text):
            raise DisclosureError(f"notebook for '{forsoeg}', {where}: a CPR-shaped number; "
                                  "it may not be published (remove it from the notebook)")
        ids = find_person_ids(_TOKEN.findall(text))
        if ids:
            raise DisclosureError(f"notebook for '{forsoeg}', {where}: {len(ids)} person id(s) "
                                  "of the data; they may not be published")

    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cell.source = _clean_text(_as_text(cell.source), paths)
        check(cell.source, f"cell {i} ({cell.cell_type})")
        if cell.cell_type != "code":
            continue
        released = tag in cell.metadata.get("tags", [])
        kept = []
        for out in cell.get("outputs", []):
            if not released:
                stats["output_fjernet"] += 1
                continue
            kind = out.get("output_type")
            if kind == "stream":
                out["text"] = _clean_text(_as_text(out.get("text", "")), paths)
                check(out["text"], f"cell {i} output")
                kept.append(out)
            elif kind in ("display_data", "execute_result"):
                data = {}
                for mime, v in out.get("data", {}).items():
                    if mime in TEXT_MIMES:
                        data[mime] = _clean_text(_as_text(v), paths)
                        check(data[mime], f"cell {i} output ({mime})")
                    else:
                        stats["figurer_fjernet" if mime.startswith("image/") else
                              "output_fjernet"] += 1
                if data:
                    out["data"] = data
                    out["metadata"] = {}
                    kept.append(out)
            else:  # errors cannot be here (a failing notebook stops the build); drop others
                stats["output_fjernet"] += 1
        cell.outputs = kept
        stats["output_bevaret"] += len(kept)
        if released:
            stats["frigivne_celler"].append(f"celle-{i + 1}")   # ids after the note cell
    pm = nb.metadata.get("papermill", {})
    nb.metadata["papermill"] = {k: pm[k] for k in ("parameters", "default_parameters", "version")
                                if k in pm}
    for k in ("parameters", "default_parameters"):
        if k in nb.metadata["papermill"]:
            nb.metadata["papermill"][k] = _scrub_params(nb.metadata["papermill"][k], paths)
    note = nbformat.v4.new_markdown_cell(_NOTE.format(forsoeg=forsoeg, sha=source_sha256))
    note.metadata["tags"] = ["revisionsnote"]
    note.pop("id", None)
    nb.cells.insert(0, note)
    for j, cell in enumerate(nb.cells):      # stable cell ids (nbformat >= 4.5)
        if nb.nbformat_minor >= 5:
            cell["id"] = f"celle-{j}"
    return nb, stats


def _scrub_params(v: Any, paths: list[str]) -> Any:
    if isinstance(v, str):
        return _clean_text(v, paths)
    if isinstance(v, dict):
        return {k: _scrub_params(x, paths) for k, x in v.items()}
    if isinstance(v, list):
        return [_scrub_params(x, paths) for x in v]
    return v


def run_trial_notebook(spec: NotebookSpec, *, processed: Path, forsoeg_fil: Path, options,
                       work: Path, private_paths: Iterable[str] = ()):
    """Run ``spec``'s notebook for its trial and return ``(trial_analysis, audit_nb, info)``.

    ``work`` is a private folder for the executed notebook and the trial analysis;
    ``private_paths`` are replaced by a placeholder in the audit copy (temporary folders).
    Raises :class:`NotebookAnalysisFailed` when the notebook raises or writes no analysis.
    """
    import nbformat

    from evaluering.report.analysis import load_trial_analysis

    nb_path = Path(spec.notebook)
    if not nb_path.is_file():
        raise InputError("notebook for a trial not found", file=str(nb_path),
                         expected=f"the notebook that analyses '{spec.forsoeg}'")
    folder = Path(work) / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    result_file = folder / f"{spec.forsoeg}.json"
    if result_file.exists():
        result_file.unlink()
    # absolute paths: the kernel runs in the notebook's folder
    params = {**dict(spec.parametre), "processed_dir": str(Path(processed).resolve()),
              "forsoeg_fil": str(Path(forsoeg_fil).resolve()), "forsoeg_id": spec.forsoeg,
              "analyse": asdict(options), "resultat_fil": str(result_file.resolve())}
    executed = folder / f"{spec.forsoeg}.executed.ipynb"
    try:
        run_notebook_audit(nb_path, executed, params, timeout=spec.timeout)
    except NotebookFailed as exc:
        where = (f" (partially executed copy, private: {exc.failed_copy}; it is kept only when "
                 "the config sets 'behandlet')" if exc.failed_copy else "")
        raise NotebookAnalysisFailed(f"the notebook {nb_path.name} for trial '{spec.forsoeg}' "
                                     f"failed: {exc}{where}") from exc
    if not result_file.is_file():
        raise NotebookAnalysisFailed(
            f"the notebook {nb_path.name} for trial '{spec.forsoeg}' ran but wrote no trial "
            "analysis: it must call save_trial_analysis(analysis, resultat_fil)")
    ta = load_trial_analysis(result_file)
    from dataclasses import replace as _replace

    ta = _replace(ta, source=nb_path.name)
    sha = _sha256(nb_path)
    nb = nbformat.read(str(executed), as_version=4)
    priv = [str(Path(work).resolve()), str(work), *[str(p) for p in private_paths]]
    audit, stats = audit_copy(nb, forsoeg=spec.forsoeg, source_sha256=sha,
                              find_person_ids=person_id_finder(processed), private_paths=priv)
    info = {"notesbog": nb_path.name, "sha256_kilde": sha,
            "parametre": _scrub_params(dict(spec.parametre), priv), **stats}
    return ta, audit, info


def write_audit(nb, path: Path) -> str:
    """Write the audit copy (sorted JSON, atomically); returns its SHA-256."""
    import nbformat

    from evaluering._atomic import write_text

    text = nbformat.writes(nb)
    if not text.endswith("\n"):
        text += "\n"
    write_text(path, text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def notebook_specs(raw: Mapping[str, Any], base: Path, cfg_file: str) -> tuple[NotebookSpec, ...]:
    """``[notebooks.<forsoeg-id>]`` tables of the config → specs (paths relative to ``base``)."""
    out = []
    for fid, t in sorted(raw.items()):
        if not isinstance(t, Mapping):
            raise InputError(f"[notebooks.{fid}] must be a table with 'notebook'", file=cfg_file)
        unknown = sorted(set(t) - {"notebook", "parametre", "timeout"})
        if unknown:
            raise InputError(f"unknown key(s) in [notebooks.{fid}]: {', '.join(unknown)}",
                             file=cfg_file)
        if "notebook" not in t:
            raise InputError(f"[notebooks.{fid}] needs 'notebook' (path to an .ipynb)", file=cfg_file)
        p = Path(t["notebook"])
        p = p if p.is_absolute() else base / p
        params = t.get("parametre", {})
        if not isinstance(params, Mapping):
            raise InputError(f"[notebooks.{fid}].parametre must be a table", file=cfg_file)
        timeout = t.get("timeout", 1800)
        out.append(NotebookSpec(forsoeg=str(fid), notebook=p, parametre=dict(params),
                                timeout=None if timeout in (None, 0) else int(timeout)))
    return tuple(out)
