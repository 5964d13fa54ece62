"""Data for the analyst notebooks: use a data folder, or simulate a small one if it is missing.

The notebooks in ``notebooks/`` take a raw data folder (data contract v1) as a parameter.
:func:`prepare_processed` makes them runnable anywhere: when the folder does not exist it
simulates one with the toolkit's simulator (scale ``small``, fixed seed), then runs ingest and
the outcome build once (skipped when the processed folder already has its outcomes).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["prepare_processed", "load_trial"]


def prepare_processed(data_dir: str | os.PathLike, processed_dir: str | os.PathLike | None = None,
                      *, scale: str = "small", seed: int = 2017,
                      n_persons: int | None = None) -> Path:
    """Return the processed folder for the raw folder ``data_dir``, building what is missing.

    * ``data_dir`` missing (or without a ``forloeb`` file): simulate a raw data set there
      (``evaluering.simulate.simulate(data_dir, scale, seed, n_persons=...)``).
    * ``processed_dir`` (default: ``<data_dir>_processed`` next to it) without
      ``outcomes_manifest.json``: run ``evaluering.ingest.ingest`` and
      ``evaluering.outcomes.build_outcomes`` (with the raw folder's ``forsoeg.toml``).
    """
    raw = Path(data_dir)
    processed = Path(processed_dir) if processed_dir else raw.parent / f"{raw.name}_processed"
    if not raw.exists() or not any(raw.glob("forloeb*")):
        from evaluering.simulate import simulate

        kw = {} if n_persons is None else {"n_persons": int(n_persons)}
        simulate(raw, scale=scale, seed=seed, **kw)
    if not (processed / "outcomes_manifest.json").exists():
        from evaluering.ingest import ingest
        from evaluering.outcomes import build_outcomes

        ingest(raw, processed)
        forsoeg = raw / "forsoeg.toml"
        build_outcomes(processed, forsoeg=forsoeg if forsoeg.exists() else None)
    return processed


def load_trial(data_dir: str | os.PathLike, forsoeg_id: str):
    """The trial ``forsoeg_id`` of the raw folder's ``forsoeg.toml`` (a ``Forsoeg``)."""
    from evaluering.errors import InputError
    from evaluering.reference.catalogue import load_forsoeg

    path = Path(data_dir) / "forsoeg.toml"
    trials = load_forsoeg(path)
    for f in trials:
        if f.id == forsoeg_id:
            return f
    raise InputError(f"no trial '{forsoeg_id}'", file=str(path),
                     expected="one of " + ", ".join(f.id for f in trials))
