"""Shared test fixtures: data sets built once per test session and shared between modules.

Each fixture is a factory: calling it with the same arguments returns the same folder, built
on first use (per pytest-xdist worker). The folders are shared, so a test must treat them as
read only: write outputs elsewhere (e.g. ``build_outcomes(folder, out_dir=tmp_path / "o")``).

* ``simulated_dataset(**kwargs)``: a raw data set from :func:`evaluering.simulate.simulate`.
* ``corrupted_dataset(seed=..., **kwargs)``: ``(src, dst)``: a simulated data set and its
  deliberately corrupted CSV copy (:func:`evaluering.simulate.corrupt_copy`, same seed).
* ``canonical_registers(**kwargs)``: ``(folder, info)``: canonical tables from
  :func:`test_outcomes_helpers.random_registers` (the input of the outcomes layer).
"""

from __future__ import annotations

import json

import pytest


def _cached(tmp_path_factory, prefix: str, build):
    """A factory: ``make(**kwargs)`` = ``build(folder, **kwargs)``, once per distinct kwargs."""
    cache: dict[str, object] = {}

    def make(**kwargs):
        key = json.dumps(kwargs, sort_keys=True, default=str)
        if key not in cache:
            cache[key] = build(tmp_path_factory.mktemp(prefix), **kwargs)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def simulated_dataset(tmp_path_factory):
    from evaluering.simulate import simulate

    return _cached(tmp_path_factory, "sim", lambda base, **kw: simulate(base / "raw", **kw))


@pytest.fixture(scope="session")
def corrupted_dataset(tmp_path_factory, simulated_dataset):
    from evaluering.simulate import corrupt_copy

    def build(base, seed: int = 0, **kw):
        src = simulated_dataset(seed=seed, **kw)
        return src, corrupt_copy(src, base / "korrupt", seed=seed)

    return _cached(tmp_path_factory, "korrupt", build)


@pytest.fixture(scope="session")
def canonical_registers(tmp_path_factory):
    from test_outcomes_helpers import random_registers

    def build(base, **kw):
        folder = base / "p"
        return folder, random_registers(folder, **kw)

    return _cached(tmp_path_factory, "kanon", build)
