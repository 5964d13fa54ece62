"""Simulators: a register simulator writing raw data sets in the data contract's format,
a corrupted-copy writer for ingest tests, and a municipality × period panel simulator with
known group-time effects for estimator tests and calibration studies."""

from evaluering.simulate.registers import (DEFAULT_EFFECTS, EFFECT_KEYS, NO_EFFECTS, SCALES,
                                           TRUTH_DEFINITIONS, simulate, week_columns)

__all__ = ["simulate", "DEFAULT_EFFECTS", "NO_EFFECTS", "EFFECT_KEYS", "SCALES",
           "TRUTH_DEFINITIONS", "week_columns", "corrupt_copy", "simulate_panel"]


def __getattr__(name):  # lazy: keep `import evaluering.simulate` light
    if name == "corrupt_copy":
        from evaluering.simulate.corrupt import corrupt_copy

        return corrupt_copy
    if name == "simulate_panel":
        from evaluering.simulate.panel import simulate_panel

        return simulate_panel
    raise AttributeError(name)
