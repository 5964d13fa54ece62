"""The estimators package exports functions, also after submodules were imported."""

import importlib


def test_public_names_are_functions():
    import evaluering.estimators.event_study  # noqa: F401 - the submodule with the same name
    import evaluering.estimators.sunab  # noqa: F401

    est = importlib.import_module("evaluering.estimators")
    for name in ("did2x2", "twfe", "twfe_design", "bacon_decomposition", "event_study",
                 "sun_abraham", "bjs_imputation"):
        assert callable(getattr(est, name)), name
    from evaluering.estimators import event_study

    assert event_study.__name__ == "event_study" and callable(event_study)
