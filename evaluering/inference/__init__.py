"""Inference for few clusters and many tests.

* :mod:`~evaluering.inference.wild` — wild cluster bootstrap (WCR/WCU) with test-inversion CIs,
* :mod:`~evaluering.inference.randomization` — randomization (permutation) inference,
* :mod:`~evaluering.inference.multiple` — Holm and Benjamini–Hochberg adjustments,
* :mod:`~evaluering.inference.honest` — Rambachan–Roth sensitivity (when present).
"""

from evaluering.inference.multiple import adjust_pvalues, adjust_results
from evaluering.inference.randomization import RIResult, randomization_inference
from evaluering.inference.wild import (
    WildBootResult,
    wild_bootstrap_ols,
    wild_cluster_bootstrap,
    wild_twfe,
)

__all__ = ["WildBootResult", "wild_cluster_bootstrap", "wild_bootstrap_ols", "wild_twfe",
           "RIResult", "randomization_inference", "adjust_pvalues", "adjust_results"]

try:  # owned by another module author; optional until it lands
    from evaluering.inference import honest as honest  # noqa: F401
    from evaluering.inference.honest import *  # noqa: F401,F403
    from evaluering.inference.honest import __all__ as _honest_all

    __all__ += list(_honest_all)
except ImportError:  # pragma: no cover - depends on the other module
    pass
