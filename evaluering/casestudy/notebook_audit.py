"""Run a parameterised analyst notebook headless and keep the executed copy as an audit file.

The report build can use a notebook as the analysis of a trial: the notebook's cell tagged
``parameters`` is overridden by papermill, every cell runs in a fresh ``python3`` kernel, and
the executed notebook (with its outputs) is written next to the PDF, so a reader can see
exactly what was run. The write is atomic: a failing notebook leaves no half-written audit
file (the partially executed copy goes to ``<out>.failed.ipynb`` for debugging, and the error
is raised).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from evaluering.errors import InputError

__all__ = ["run_notebook_audit", "NotebookFailed"]


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
