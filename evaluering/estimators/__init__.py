"""Estimators: functions of (aggregated) panel data and options returning ``EstimateResult``.

Public names are imported lazily on first access, so a module that is still missing (or
being written) does not break the others; ``callaway_santanna`` lives in
``evaluering.estimators.cs``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "did2x2": "did",
    "twfe": "did",
    "twfe_design": "did",
    "TwfeDesign": "did",
    "bacon_decomposition": "bacon",
    "event_study": "event_study",
    "sun_abraham": "sunab",
    "bjs_imputation": "bjs",
    "callaway_santanna": "cs",
}

__all__ = list(_EXPORTS)

# The module ``event_study`` shares its name with the function it exports; importing the
# submodule anywhere sets the package attribute to the *module*, which would shadow the lazy
# lookup below. Bind the function eagerly so ``from evaluering.estimators import event_study``
# always gives the function.
from evaluering.estimators.event_study import event_study  # noqa: E402


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'evaluering.estimators' has no attribute '{name}'")
    try:
        module = importlib.import_module(f"evaluering.estimators.{mod}")
    except ModuleNotFoundError as exc:
        if exc.name == f"evaluering.estimators.{mod}":
            raise AttributeError(f"'{name}' is not available yet (evaluering.estimators.{mod} "
                                 "is missing)") from exc
        raise
    return getattr(module, name)


def __dir__():
    return sorted(list(globals()) + __all__)
