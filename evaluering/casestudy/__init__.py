"""Case studies on real public data and the analyst-notebook helpers.

* :mod:`~evaluering.casestudy.auk01` — the North Jutland free-municipality network against
  municipalities without employment trials, on Statistics Denmark's AUK01 (net unemployed
  kontanthjælp recipients by municipality and quarter), with the toolkit's own estimators.
* :mod:`~evaluering.casestudy.notebook_audit` — run a parameterised notebook headless
  (papermill) and keep the executed copy as an audit file.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CaseStudyResult": "auk01",
    "run_auk01_case": "auk01",
    "auk01_chapter": "auk01",
    "save_chapter_figures": "auk01",
    "auk01_panel": "auk01",
    "auk01_sample": "auk01",
    "load_auk01": "auk01",
    "auk01_path": "auk01",
    "run_notebook_audit": "notebook_audit",
    "prepare_processed": "notebook_data",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'evaluering.casestudy' has no attribute '{name}'")
    return getattr(importlib.import_module(f"evaluering.casestudy.{mod}"), name)
