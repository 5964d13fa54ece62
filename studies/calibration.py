"""Monte Carlo calibration of the toolkit's inference methods (size, coverage, power).

Panel study (``panel``): municipality × quarter panels for the 98 municipalities with their
AUK01-based sizes from :func:`evaluering.simulate.simulate_panel` (noise variance inversely
proportional to size, unit and time effects), under no effect and under a planted effect, in
two designs:

* ``nj11``: the 11 North Jutland network municipalities, staggered over the three application
  rounds (2017Q3, 2018Q1, 2018Q3) in a 2014Q1–2019Q4 panel (24 quarters; the clean
  post-period ends 2019-12-31). Which municipality belongs to which round is a stylised
  assumption (4/4/3, see ``NJ11_ROUNDS``): in the catalogue every municipality entered the
  meeting trial in round 1.
* ``k4``: the four free municipalities on the employment area (Hillerød, Greve, Silkeborg,
  Aabenraa), one cohort from 2023Q3, in a 2020Q1–2025Q4 panel (24 quarters).

The estimand is the coefficient of the size-weighted two-way fixed-effects regression
``y ~ D | kommune + periode`` (weights ``vaegt``; with noise variance ∝ 1/size this is the GLS
weighting). Under the planted effect the effect is static and constant over cohorts with unit
heterogeneity (``tau_i = effect · (1 + 0.2 z_i)``); because the estimator is linear in ``y`` its
target is the same regression applied to the true effects (``sand_effekt``), computed with
:func:`evaluering.estimators.twfe` on the noiseless effect column.

Methods compared on every simulated data set:

* ``CR1``: :func:`evaluering.estimators.twfe`, cluster-robust by municipality, ``t(G-1)``;
* ``WCR-rademacher``, ``WCR-webb``: :func:`evaluering.inference.wild_twfe` (null imposed,
  B = 999, CI by test inversion);
* ``RI``: :func:`evaluering.inference.randomization_inference` permuting the cohort labels
  (the multiset of start quarters, never-treated included) over the 98 municipalities, with
  the TWFE coefficient as the statistic, 499 permutations, CI by inverting the
  constant-effect model;
* ``RI-t``: the same permutations with the CR1 t statistic (p-value only);
* ``SDID-placebo`` (optional, fewer replications): :func:`evaluering.estimators.synth.synthdid`
  with placebo standard errors (unweighted estimand: the mean effect over treated
  unit-periods).

The randomization distribution needs 3 × 499 TWFE fits per data set, so RI uses a closed form
of the same weighted TWFE coefficient (balanced panel, unit-constant weights, see
:class:`FastTwfe`); ``tests/test_calibration_smoke.py`` checks it against
:func:`~evaluering.estimators.twfe` (estimate and CR1 standard error).

SDID inference (``sdid-ri``, :func:`sdid_ri_replication`): on the panel study's data sets
(same seeds), randomization inference for SDID with the estimate and with the estimate over
its jackknife SE as statistics (one set of permutations), and the jackknife with a normal
reference; the placebo arm is ``sdid``.

Callaway–Sant'Anna pre-trend test (``cs-pretest``, :func:`cs_pretest_replication`): the
report's ``callaway_santanna`` call on municipality × half-year cells (11 treated in three
rounds, person-count weights varying by period), parallel trends true or violated by a
differential linear trend; the χ² Wald pre-test against permutation pre-tests of several
statistics, all from the ATT's one set of permutations (``extra_stats``).

Survival study (``survival``): person-level spells from
:func:`evaluering.survival.simulate_spells` (Weibull proportional hazards, weekly durations,
municipality and start-quarter effects, competing exit to education, censoring) for 98
municipalities of which 11 are treated, staggered over three start quarters, with hazard ratio
1 (no effect) or 1.10. Methods: :func:`evaluering.survival.cox_did` (municipality strata,
start-quarter effects, Lin–Wei SEs clustered by municipality) and
:func:`evaluering.survival.discrete_hazard_did` (cloglog on municipality × start quarter ×
week cells, municipality and start-quarter effects, clustered). Target: log HR.

Usage (results are appended per replication, so a run can be resumed or split). The study
in docs/calibration.md was run as::

    R=studies/results; P="nice -n 10 .venv/bin/python studies/calibration.py"
    $P panel --reps-null 500 --reps-effect 400 --designs nj11,k4
    $P panel --designs nj11 --reps-null 1000 --reps-effect 0 --rep-start 500 --workers 1 \
        --out $R/panel_reps_nj11b.csv
    $P panel --designs k4 --reps-null 1000 --reps-effect 0 --rep-start 500 \
        --out $R/panel_reps_k4b.csv
    $P panel --designs nj11m --reps-null 1000 --reps-effect 200 --out $R/panel_reps_nj11m.csv
    $P sdid --reps 100 --reps-effect 60 --workers 1
    $P survival --reps 300 --workers 1
    $P survival --reps 300 --reps-effect 0 --methods cox-boot,discrete-boot --workers 1 \
        --out $R/survival_boot_reps.csv
    P5="nice -n 5 .venv/bin/python studies/calibration.py"     # SDID RI and CS pre-test arms
    $P5 sdid-ri --designs nj11 --reps 200 --reps-effect 0 --n-perm 49
    $P5 sdid-ri --designs nj11 --reps 0 --reps-effect 40 --n-perm 49 \
        --out $R/sdid_ri_effect_reps.csv
    $P5 cs-pretest --reps 200 --reps-pretrend 100 --n-perm 49
    $P5 cs-pretest --reps 400 --reps-pretrend 100 --n-perm 49   # resumed: null reps 200-399
    .venv/bin/python studies/calibration.py report      # tables into docs/calibration.md

Everything here is simulated; nothing describes real persons or municipalities' outcomes.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "studies" / "results"
DOC = ROOT / "docs" / "calibration.md"
ALPHA = 0.05

# --------------------------------------------------------------------------- designs
# Stylised allocation of the 11 North Jutland network municipalities to the three rounds.
NJ11_ROUNDS = {
    15: ("851", "860", "813", "849"),   # round 1, 2017Q3: Aalborg, Hjørring, Frederikshavn, Jammerbugt
    17: ("810", "846", "773", "840"),   # round 2, 2018Q1: Brønderslev, Mariagerfjord, Morsø, Rebild
    19: ("787", "820", "825"),          # round 3, 2018Q3: Thisted, Vesthimmerland, Læsø
}
K4_COHORT = {15: ("219", "253", "740", "580")}  # 2023Q3: Hillerød, Greve, Silkeborg, Aabenraa


@dataclass(frozen=True)
class Design:
    name: str
    label: str
    cohorts: dict
    n_periods: int
    first_quarter: tuple[int, int]  # (year, quarter) of period 1; (year, month) if monthly
    monthly: bool = False

    def quarter(self, period: int) -> str:
        """Calendar label of a period index (1 = first period): ``2017Q3`` or ``2017-07``."""
        y, q = self.first_quarter
        k = (q - 1) + period - 1
        if self.monthly:
            return f"{y + k // 12}-{k % 12 + 1:02d}"
        return f"{y + k // 4}Q{k % 4 + 1}"


DESIGNS = {
    "nj11": Design("nj11", "11 of 98 treated (North Jutland, staggered by round)", NJ11_ROUNDS,
                   24, (2014, 1)),
    "k4": Design("k4", "4 of 98 treated (free municipalities, one cohort)", K4_COHORT, 24,
                 (2020, 1)),
    # the North Jutland design on a monthly panel 2014-01..2019-12: rounds start 2017-07,
    # 2018-01, 2018-07 (months 43, 49, 55)
    "nj11m": Design("nj11m", "11 of 98 treated (North Jutland, staggered), monthly panel",
                    {43 + 6 * i: units for i, units in enumerate(NJ11_ROUNDS.values())}, 72,
                    (2014, 1), monthly=True),
}
SCENARIOS = {"null": 0.0, "effect": 0.25}
PANEL_METHODS = ("CR1", "WCR-rademacher", "WCR-webb", "RI", "RI-t")
_DESIGN_SEED = {"nj11": 1_000_000, "k4": 2_000_000, "nj11m": 4_000_000}
_SCEN_SEED = {"null": 0, "effect": 500_000}


def simulate_design(design: Design, scenario: str, seed: int):
    """One simulated panel (sorted by municipality and period) for a design and scenario."""
    from evaluering.simulate import simulate_panel

    cohorts = {g: list(units) for g, units in design.cohorts.items()}
    sp = simulate_panel(98, design.n_periods, cohorts=cohorts, effect=SCENARIOS[scenario],
                        seed=seed, dynamic=0.0, cohort_spread=0.0, heterogeneity=0.2,
                        no_effect=scenario == "null")
    data = sp.data.sort_values(["kommune_kode", "periode"], kind="stable").reset_index(drop=True)
    return sp, data


# --------------------------------------------------------------------------- fast TWFE
class FastTwfe:
    """Weighted TWFE coefficient of ``D`` in ``y ~ D | unit + period`` on a balanced panel
    whose weights are constant within units, in closed form, for the randomization
    distribution.

    With unit-constant weights ``w_i`` the weighted two-way projection has the closed form
    ``x̃_it = x_it − x̄_i· − (x̄^w_·t − x̄^w_··)`` (unit mean over periods; weighted
    cross-section mean; its mean over periods), so ``β = Σ w D̃ y / Σ w D̃²``. The CR1
    standard error by unit uses ``G/(G−1)·(n−1)/(n−K)`` with ``K = 1 + T`` (the unit effects
    are nested in the clusters), as :func:`evaluering.estimators.twfe` does.

    The callable reads ``y`` and the cohort column from the frame it is given (the
    randomization routine swaps the cohort labels and, for its CI, the outcome), which must be
    in the row order of the frame used to build the object (sorted by unit, then period).
    """

    def __init__(self, data: pd.DataFrame, *, y: str = "y", cohort: str = "kohorte",
                 unit: str = "kommune_kode", time: str = "periode", weight: str = "vaegt",
                 stat: str = "estimate"):
        u = data[unit].to_numpy()
        self.N = int(pd.unique(u).size)
        self.T = int(pd.unique(data[time]).size)
        if self.N * self.T != len(data):
            raise ValueError("FastTwfe needs a balanced panel")
        per = data[time].to_numpy().reshape(self.N, self.T)
        if not (per == per[0]).all() or not (u.reshape(self.N, self.T) == u.reshape(
                self.N, self.T)[:, :1]).all():
            raise ValueError("FastTwfe needs the rows sorted by unit, then period")
        w = data[weight].to_numpy(float).reshape(self.N, self.T)
        if not np.allclose(w, w[:, :1]):
            raise ValueError("FastTwfe needs weights that are constant within units")
        self.per = per[0].astype(float)
        self.w = w[:, 0]
        self.W = float(self.w.sum())
        self.y, self.cohort, self.stat = y, cohort, stat
        n, G, K = self.N * self.T, self.N, 1 + self.T
        self.c = G / (G - 1) * (n - 1) / (n - K)

    def _demean(self, X: np.ndarray) -> np.ndarray:
        col = (self.w @ X) / self.W
        return X - X.mean(axis=1, keepdims=True) - (col - col.mean())[None, :]

    def fit(self, y: np.ndarray, g: np.ndarray) -> tuple[float, float]:
        """(estimate, CR1 se) for outcome matrix ``y`` (N × T) and unit cohorts ``g`` (N)."""
        D = ((g[:, None] > 0) & (self.per[None, :] >= g[:, None])).astype(float)
        Dt = self._demean(D)
        wd = self.w[:, None] * Dt
        sxx = float(np.sum(wd * Dt))
        if sxx <= 1e-12:
            return math.nan, math.nan
        beta = float(np.sum(wd * y)) / sxx
        e = self._demean(y) - beta * Dt
        s = np.sum(wd * e, axis=1)
        se = math.sqrt(self.c * float(s @ s)) / sxx
        return beta, se

    def __call__(self, frame: pd.DataFrame) -> float:
        y = frame[self.y].to_numpy(float).reshape(self.N, self.T)
        g = frame[self.cohort].to_numpy(float).reshape(self.N, self.T)[:, 0]
        b, se = self.fit(y, g)
        return b if self.stat == "estimate" else b / se


# --------------------------------------------------------------------------- one replication
def _row(method, est, se, p, ci, target, error: str = "") -> dict:
    lo, hi = (float(ci[0]), float(ci[1])) if ci is not None else (math.nan, math.nan)
    return {"method": method, "estimate": float(est), "se": float(se), "p": float(p),
            "ci_low": lo, "ci_high": hi, "target": float(target), "error": error}


def panel_replication(design: str, scenario: str, rep: int, *, B: int = 999,
                      n_perm: int = 499, methods: Sequence[str] = PANEL_METHODS,
                      sdid_reps: int = 100, ri_ci_under_null: bool = False) -> list[dict]:
    """All requested methods on one simulated panel; one row per method.

    ``methods`` may include ``"SDID-placebo"`` (``sdid_reps`` placebo draws). Failures are
    recorded as rows with NaN results and the error message.
    """
    from evaluering.errors import EstimationError
    from evaluering.estimators import twfe
    from evaluering.inference import randomization_inference, wild_twfe

    d = DESIGNS[design]
    seed = _DESIGN_SEED[design] + _SCEN_SEED[scenario] + int(rep)
    sp, data = simulate_design(d, scenario, seed)
    if scenario == "null":
        target = 0.0
    else:
        target = twfe(data, "sand_effekt", "kommune_kode", "periode", "behandlet",
                      weights="vaegt").estimate
    base = {"design": design, "scenario": scenario, "rep": int(rep), "seed": seed,
            "att": float(sp.att)}
    rows: list[dict] = []

    def run(method, fn):
        t0 = time.perf_counter()
        try:
            r = fn()
        except (EstimationError, ValueError, np.linalg.LinAlgError) as exc:
            r = _row(method, math.nan, math.nan, math.nan, None, target, error=str(exc)[:200])
        r.update(base, seconds=time.perf_counter() - t0)
        rows.append(r)

    kw = dict(weights="vaegt")
    if "CR1" in methods:
        def cr1():
            r = twfe(data, "y", "kommune_kode", "periode", "behandlet", **kw)
            return _row("CR1", r.estimate, r.se, r.p, r.ci, target)
        run("CR1", cr1)
    for kind in ("rademacher", "webb"):
        name = f"WCR-{kind}"
        if name in methods:
            def wcr(kind=kind, name=name):
                r = wild_twfe(data, "y", "kommune_kode", "periode", "behandlet", **kw,
                              bootstrap_weights=kind, B=B, seed=seed, ci=True)
                return _row(name, r.estimate, r.se, r.p, r.ci, target)
            run(name, wcr)
    if "RI" in methods:
        def ri():
            stat = FastTwfe(data)
            # The CI (inversion of the constant-effect model) doubles the cost; under the
            # null scenario it is skipped: 0 lies in it exactly when p(0) >= alpha, so its
            # coverage of 0 is the non-rejection rate (up to the p = alpha boundary).
            ci = scenario != "null" or ri_ci_under_null
            r = randomization_inference(stat, data, "kommune_kode", cohort_col="kohorte",
                                        time="periode", n_perm=n_perm, seed=seed, ci=ci,
                                        outcome="y", linear_in_outcome=True, alpha=ALPHA)
            return _row("RI", r.estimate, math.nan, r.p, r.ci if ci else None, target)
        run("RI", ri)
    if "RI-t" in methods:
        def ri_t():
            stat = FastTwfe(data, stat="t")
            r = randomization_inference(stat, data, "kommune_kode", cohort_col="kohorte",
                                        time="periode", n_perm=n_perm, seed=seed, alpha=ALPHA)
            return _row("RI-t", r.estimate, math.nan, r.p, None, target)
        run("RI-t", ri_t)
    if "SDID-placebo" in methods:
        def sdid():
            from evaluering.estimators.synth import synthdid

            r = synthdid(data, "y", "kommune_kode", "periode", "behandlet",
                         inference="placebo", n_reps=sdid_reps, seed=seed, alpha=ALPHA)
            # SDID is unweighted: its target is the mean effect over treated unit-periods
            return _row("SDID-placebo", r.estimate, r.se, r.p, r.ci, sp.att)
        run("SDID-placebo", sdid)
    return rows


SURV_HR = {"null": 1.0, "effect": 1.10}
SURV_COHORTS = (3, 4, 5)  # first treated start quarter of the treated municipalities (cycled)
_SURV_SEED = {"null": 3_000_000, "effect": 3_500_000}


def survival_replication(scenario: str, rep: int, *, n: int = 30_000, n_kom: int = 98,
                         n_treated: int = 11, methods: Sequence[str] = ("cox", "discrete"),
                         bootstrap: int = 999) -> list[dict]:
    """Cox DiD and discrete-time hazard DiD on one simulated spell data set.

    ``methods``: ``cox`` / ``discrete`` (cluster-robust sandwich, normal CI) and ``cox-boot`` /
    ``discrete-boot`` (the estimators' wild cluster score-bootstrap p-value of no effect,
    ``bootstrap`` Rademacher draws; no interval).
    """
    from evaluering.errors import EstimationError
    from evaluering.survival import (cox_did, discrete_hazard_did, simulate_spells,
                                     spells_to_cells)

    seed = _SURV_SEED[scenario] + int(rep)
    hr = SURV_HR[scenario]
    s = simulate_spells(n=n, n_kom=n_kom, n_treated=n_treated, hr=hr, seed=seed,
                        cohorts=list(SURV_COHORTS))
    s["eksp"] = s["treated"] * s["post"]
    target = math.log(hr)
    base = {"design": "survival", "scenario": scenario, "rep": int(rep), "seed": seed,
            "att": target}
    rows = []

    def run(method, fn):
        t0 = time.perf_counter()
        try:
            r = fn()
            if method.endswith("(score bootstrap)"):
                row = _row(method, r.estimate, r.se, r.info["p_score_bootstrap"], None, target)
            else:
                row = _row(method, r.estimate, r.se, r.p, r.ci, target)
        except (EstimationError, ValueError, np.linalg.LinAlgError) as exc:
            row = _row(method, math.nan, math.nan, math.nan, None, target, error=str(exc)[:200])
        row.update(base, seconds=time.perf_counter() - t0)
        rows.append(row)

    if "cox" in methods:
        run("Cox DiD", lambda: cox_did(s, treated="eksp", post=None, strata="kommune_kode",
                                       time_effects="start_kvartal", cluster="kommune_kode"))
    if "discrete" in methods:
        def dh():
            cells = spells_to_cells(s, by=["kommune_kode", "start_kvartal", "eksp"])
            return discrete_hazard_did(cells, treated="eksp", post=None,
                                       unit_effects="kommune_kode",
                                       time_effects="start_kvartal", cluster="kommune_kode")
        run("Discrete-time DiD (cloglog)", dh)
    if "cox-boot" in methods:
        run("Cox DiD (score bootstrap)",
            lambda: cox_did(s, treated="eksp", post=None, strata="kommune_kode",
                            time_effects="start_kvartal", cluster="kommune_kode",
                            bootstrap=bootstrap, seed=seed))
    if "discrete-boot" in methods:
        def dhb():
            cells = spells_to_cells(s, by=["kommune_kode", "start_kvartal", "eksp"])
            return discrete_hazard_did(cells, treated="eksp", post=None,
                                       unit_effects="kommune_kode",
                                       time_effects="start_kvartal", cluster="kommune_kode",
                                       bootstrap=bootstrap, seed=seed)
        run("Discrete-time DiD (score bootstrap)", dhb)
    return rows


# --------------------------------------------------------------------------- SDID inference
SDID_RI_METHODS = ("SDID-RI", "SDID-RI-t", "SDID-jackknife")


def _with_treatment(frame: pd.DataFrame) -> pd.DataFrame:
    """``behandlet`` recomputed from the (possibly permuted) ``kohorte``."""
    g = frame["kohorte"].to_numpy(float)
    t = frame["periode"].to_numpy(float)
    return frame.assign(behandlet=((g > 0) & (t >= g)).astype(float))


def sdid_ri_replication(design: str, scenario: str, rep: int, *, n_perm: int = 99) -> list[dict]:
    """SDID with randomization inference over municipalities, on the same simulated data sets
    as :func:`panel_replication` (same seeds).

    One pass of ``n_perm`` permutations of the cohort labels (start dates and never-treated)
    over the 98 municipalities, each evaluating :func:`~evaluering.estimators.synth.synthdid`
    with jackknife standard errors once; from the same draws:

    * ``SDID-RI``: the SDID estimate as the statistic (what ``--inference ri`` does);
    * ``SDID-RI-t``: the estimate divided by its jackknife SE (studentized; an ``extra_stats``
      statistic of :func:`~evaluering.inference.randomization_inference`);
    * ``SDID-jackknife``: the observed jackknife SE with a normal reference (no permutation).
    """
    from evaluering.errors import EstimationError
    from evaluering.estimators.synth import synthdid
    from evaluering.inference import randomization_inference

    d = DESIGNS[design]
    seed = _DESIGN_SEED[design] + _SCEN_SEED[scenario] + int(rep)
    sp, data = simulate_design(d, scenario, seed)
    base = {"design": design, "scenario": scenario, "rep": int(rep), "seed": seed,
            "att": float(sp.att)}
    target = sp.att  # SDID is unweighted: the mean effect over treated unit-periods

    def est(frame):
        return synthdid(_with_treatment(frame), "y", "kommune_kode", "periode", "behandlet",
                        inference="jackknife", alpha=ALPHA)

    t0 = time.perf_counter()
    try:
        obs = est(data)
        ri = randomization_inference(est, data, "kommune_kode", cohort_col="kohorte",
                                     time="periode", n_perm=n_perm, seed=seed, alpha=ALPHA,
                                     extra_stats={"t": (lambda r: r.estimate / r.se,
                                                        "two-sided")})
        rows = [_row("SDID-RI", ri.estimate, obs.se, ri.p, None, target),
                _row("SDID-RI-t", ri.extra["t"].estimate, math.nan, ri.extra["t"].p, None,
                     target),
                _row("SDID-jackknife", obs.estimate, obs.se, obs.p, obs.ci, target)]
    except (EstimationError, ValueError, np.linalg.LinAlgError) as exc:
        rows = [_row(m, math.nan, math.nan, math.nan, None, target, error=str(exc)[:200])
                for m in SDID_RI_METHODS]
    sec = (time.perf_counter() - t0) / len(rows)
    for r in rows:
        r.update(base, seconds=sec)
    return rows


# --------------------------------------------------------------------------- CS pre-trend test
# The report's design: municipality × half-year cells (repeated cross-sections of cells),
# weights = persons per cell, clustered by municipality, not-yet-treated controls. Half-years
# 2014H1-2019H2 (12 periods); the North Jutland rounds start 2017H2, 2018H1, 2018H2.
CS_PRE_COHORTS = {8: NJ11_ROUNDS[15], 9: NJ11_ROUNDS[17], 10: NJ11_ROUNDS[19]}
CS_PRE_PERIODS = 12
CS_PRE_PERSONS = 40      # expected persons per cell for a municipality of average size
CS_PRE_TREND = {"null": 0.0, "pretrend": 0.3}  # differential linear trend per half-year
_CS_PRE_SEED = {"null": 5_000_000, "pretrend": 5_500_000}
CS_PRE_METHODS = ("CS-Wald", "CS-Wald-RI", "CS-sumt2-RI", "CS-evt2-RI", "CS-evss-RI",
                  "CS-premean-RI", "CS-ATT-RI")


def simulate_cs_pretest(scenario: str, seed: int) -> pd.DataFrame:
    """One municipality × half-year cell panel for the pre-test study.

    :func:`evaluering.simulate.simulate_panel` (98 municipalities with AUK01 sizes, noise
    variance ∝ 1/size, unit and period effects; no treatment effect) gives ``y``; the cell
    weight ``n`` (persons) is Poisson with mean ``CS_PRE_PERSONS`` × size (+1), so it varies
    by period as in the real cells. Scenario ``pretrend`` adds a differential linear trend
    ``δ·(t − 1)`` to the treated municipalities in every period (parallel trends violated,
    visible before treatment), δ = ``CS_PRE_TREND``.
    """
    from evaluering.simulate import simulate_panel

    sp = simulate_panel(98, CS_PRE_PERIODS, cohorts={g: list(u) for g, u in
                                                    CS_PRE_COHORTS.items()},
                        effect=0.0, seed=seed, dynamic=0.0, cohort_spread=0.0,
                        heterogeneity=0.0, no_effect=True)
    d = sp.data.sort_values(["kommune_kode", "periode"], kind="stable").reset_index(drop=True)
    rng = np.random.default_rng([seed, 77])
    d["n"] = rng.poisson(CS_PRE_PERSONS * d["vaegt"].to_numpy()) + 1.0
    delta = CS_PRE_TREND[scenario]
    if delta:
        d["y"] = d["y"] + delta * (d["periode"] - 1) * (d["kohorte"] > 0)
    return d.rename(columns={"periode": "t"})


def _cs_report_call(frame: pd.DataFrame):
    """``callaway_santanna`` exactly as the report's ``analysis._cs`` calls it (analytic)."""
    import warnings

    from evaluering.estimators.cs import callaway_santanna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return callaway_santanna(frame, "y", None, "t", "kohorte", weights="n",
                                 cluster="kommune_kode", panel=False, control="notyet",
                                 bootstrap=False)


def pre_sum_t2(res) -> float:
    """Σ (ATT(g,t)/se)² over the pre-treatment ATT(g,t): a pre-trend statistic that needs no
    inverse of their covariance (which is singular with few treated municipalities)."""
    gt = res.components["att_gt"]
    pre = gt[~gt["post"].astype(bool)]
    z = (pre["att"] / pre["se"]).to_numpy(float)
    z = z[np.isfinite(z)]
    return float(np.sum(z ** 2)) if z.size else math.nan


def _pre_event(res) -> pd.DataFrame:
    ev = res.components["event"]
    return ev[ev["e"] < 0]


def pre_event_t2(res) -> float:
    """Σ (ATT_e/se_e)² over the pre-treatment event times e < 0 of the dynamic aggregation
    (each pools the cohorts, so its clustered SE rests on more treated municipalities)."""
    pre = _pre_event(res)
    z = (pre["att"] / pre["se"]).to_numpy(float)
    z = z[np.isfinite(z)]
    return float(np.sum(z ** 2)) if z.size else math.nan


def pre_event_ss(res) -> float:
    """Σ ATT_e² over the pre-treatment event times (not studentized)."""
    return float(np.sum(_pre_event(res)["att"].to_numpy(float) ** 2))


def pre_mean(res) -> float:
    """Mean of the pre-treatment ATT(g,t) (not studentized; two-sided: a linear trend)."""
    gt = res.components["att_gt"]
    return float(gt.loc[~gt["post"].astype(bool), "att"].mean())


def cs_pretest_replication(scenario: str, rep: int, *, n_perm: int = 99) -> list[dict]:
    """The CS pre-trend tests on one simulated cell panel (rows: methods).

    * ``CS-Wald``: ``info["pretest_p"]`` (χ² Wald, analytic clustered covariance);
    * ``CS-Wald-RI``: the same Wald statistic, one-sided permutation p-value over the cohort
      labels (``n_perm`` draws, the report's randomization scheme);
    * ``CS-sumt2-RI``: Σ t² of the pre-treatment ATT(g,t), permutation p-value;
    * ``CS-evt2-RI``: Σ t² of the pre-treatment event-study coefficients, permutation p;
    * ``CS-evss-RI``: Σ of their squares (not studentized), permutation p;
    * ``CS-premean-RI``: the mean pre-treatment ATT(g,t), two-sided permutation p;
    * ``CS-ATT-RI``: the headline (simple) ATT, two-sided permutation p-value (its size).

    All permutation p-values come from ONE set of draws
    (``randomization_inference(..., extra_stats=...)``), as in the report.
    """
    from evaluering.errors import EstimationError
    from evaluering.inference import randomization_inference

    seed = _CS_PRE_SEED[scenario] + int(rep)
    d = simulate_cs_pretest(scenario, seed)
    base = {"design": "cs_pre", "scenario": scenario, "rep": int(rep), "seed": seed,
            "att": 0.0}
    t0 = time.perf_counter()
    try:
        obs = _cs_report_call(d)
        ri = randomization_inference(
            _cs_report_call, d, "kommune_kode", cohort_col="kohorte", time="t",
            n_perm=n_perm, seed=seed, alpha=ALPHA,
            extra_stats={"wald": (lambda r: r.info["pretest_stat"], "greater"),
                         "sumt2": (pre_sum_t2, "greater"), "evt2": (pre_event_t2, "greater"),
                         "evss": (pre_event_ss, "greater"),
                         "premean": (pre_mean, "two-sided")})
        wald = obs.info["pretest_stat"]
        rows = [_row("CS-Wald", wald, obs.info["pretest_df"], obs.info["pretest_p"], None, 0.0),
                _row("CS-Wald-RI", wald, math.nan, ri.extra["wald"].p, None, 0.0),
                _row("CS-sumt2-RI", ri.extra["sumt2"].estimate, math.nan, ri.extra["sumt2"].p,
                     None, 0.0),
                _row("CS-evt2-RI", ri.extra["evt2"].estimate, math.nan, ri.extra["evt2"].p,
                     None, 0.0),
                _row("CS-evss-RI", ri.extra["evss"].estimate, math.nan, ri.extra["evss"].p,
                     None, 0.0),
                _row("CS-premean-RI", ri.extra["premean"].estimate, math.nan,
                     ri.extra["premean"].p, None, 0.0),
                _row("CS-ATT-RI", ri.estimate, obs.se, ri.p, None, 0.0)]
        rows[1]["error"] = (f"{ri.extra['wald'].n_nonfinite} non-finite draws"
                            if ri.extra["wald"].n_nonfinite else "")
    except (EstimationError, ValueError, np.linalg.LinAlgError) as exc:
        rows = [_row(m, math.nan, math.nan, math.nan, None, 0.0, error=str(exc)[:200])
                for m in CS_PRE_METHODS]
    sec = (time.perf_counter() - t0) / len(rows)
    for r in rows:
        r.update(base, seconds=sec)
    return rows


# --------------------------------------------------------------------------- summaries
def _mc(rate: float, n: int) -> float:
    return math.sqrt(max(rate * (1 - rate), 0.0) / n) if n else math.nan


def summarise(reps: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Rejection rate of ``H0: effect = 0`` at ``alpha`` and coverage of the target by the
    ``1 − alpha`` interval, with Monte Carlo standard errors, per design × scenario × method.

    Rejection: ``p ≤ alpha``. Coverage: ``ci_low ≤ target ≤ ci_high`` (only when every
    replication of the cell reports an interval). Failed replications (NaN p) are counted in
    ``n_failed`` and left out. For ``*-t`` methods the estimate is a t ratio: no bias.
    """
    out = []
    for (design, scen, method), g in reps.groupby(["design", "scenario", "method"], sort=False):
        ok = g[np.isfinite(g["p"])]
        n = len(ok)
        rej = float((ok["p"] <= alpha).mean()) if n else math.nan
        has_ci = np.isfinite(ok["ci_low"]) | np.isinf(ok["ci_low"])
        has_ci &= ok["ci_low"].notna()
        ci = ok[has_ci]
        m = len(ci)
        if m < n:  # intervals only for some replications: no coverage rate
            ci, m = ci.iloc[:0], 0
        cov = float(((ci["ci_low"] <= ci["target"]) & (ci["target"] <= ci["ci_high"])).mean()) \
            if m else math.nan
        if method.endswith("-t"):  # the statistic is a t ratio, not the effect
            ok = ok.assign(estimate=math.nan)
        width = (ci["ci_high"] - ci["ci_low"])
        out.append({
            "design": design, "scenario": scen, "method": method, "reps": n,
            "n_failed": int(len(g) - n), "reject": rej, "reject_mcse": _mc(rej, n),
            "coverage": cov, "coverage_mcse": _mc(cov, m) if m else math.nan,
            "bias": float((ok["estimate"] - ok["target"]).mean()) if n else math.nan,
            "sd_estimate": float(ok["estimate"].std()) if n > 1 else math.nan,
            "mean_se": float(ok["se"].mean()) if ok["se"].notna().any() else math.nan,
            "median_ci_width": float(width.median()) if m else math.nan,
            "share_infinite_ci": float((~np.isfinite(width)).mean()) if m else math.nan,
            "seconds_per_fit": float(g["seconds"].mean()),
        })
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- runner
def read_reps(path: Path) -> pd.DataFrame:
    """Read a replication log (the scenario label "null" must not become NaN); a replication
    written twice (a resumed run) is kept once."""
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"error": str})
    df["error"] = df["error"].fillna("")
    return df.drop_duplicates(["design", "scenario", "rep", "method"], keep="first")


def _tasks_done(path: Path) -> set[tuple]:
    if not path.exists():
        return set()
    df = read_reps(path)[["design", "scenario", "rep", "method"]]
    return set(df.itertuples(index=False, name=None))


def _worker(task):
    kind, args, kwargs = task
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if kind == "panel":
        return panel_replication(*args, **kwargs)
    if kind == "sdid-ri":
        return sdid_ri_replication(*args, **kwargs)
    if kind == "cs-pre":
        return cs_pretest_replication(*args, **kwargs)
    return survival_replication(*args, **kwargs)


def run_tasks(tasks: list, out: Path, workers: int = 2, log=print) -> None:
    """Run replications in ``workers`` processes, appending each one's rows to ``out`` (CSV)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    header = not out.exists()
    done = 0
    if workers > 1:
        import multiprocessing as mp

        pool = mp.get_context("fork").Pool(workers)
        results = pool.imap_unordered(_worker, tasks)
    else:
        pool = None
        results = map(_worker, tasks)
    try:
        for rows in results:
            df = pd.DataFrame(rows)
            with open(out, "a", encoding="utf-8") as fh:  # append-only log of replications
                df.to_csv(fh, header=header, index=False)
            header = False
            done += 1
            if done % 25 == 0 or done == len(tasks):
                log(f"{time.strftime('%H:%M:%S')} {done}/{len(tasks)} replications, "
                    f"{time.time() - t0:.0f} s")
    finally:
        if pool is not None:
            pool.close()
            pool.join()


def _panel_tasks(designs: Iterable[str], scen_reps: dict, methods, out: Path, rep_start: int = 0,
                 **kw) -> list:
    done = _tasks_done(out)
    tasks = []
    for rep in range(rep_start, max(scen_reps.values())):  # interleave so partial runs stay balanced
        for design in designs:
            for scen, R in scen_reps.items():
                if rep >= R:
                    continue
                todo = [m for m in methods if (design, scen, rep, m) not in done]
                if todo:
                    tasks.append(("panel", (design, scen, rep), dict(methods=tuple(todo), **kw)))
    return tasks


def _fmt(x, pct=True, digits=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.{digits}f}" if pct else f"{x:.3f}"


def markdown_tables(summary: pd.DataFrame) -> str:
    """Markdown tables, one per design (rows: methods; columns: scenarios)."""
    parts = []
    for design, g in summary.groupby("design", sort=False):
        label = DESIGNS[design].label if design in DESIGNS else "Survival: 11 of 98 treated"
        parts.append(f"#### {label}\n")
        parts.append("| method | reps (null) | rejection at 5 % under no effect (MC se) | "
                     "coverage of 0 (MC se) | reps (effect) | rejection = power (MC se) | "
                     "coverage of the target (MC se) | median CI width (effect) | "
                     "bias (effect) |")
        parts.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        order = [*PANEL_METHODS, "SDID-placebo", *SDID_RI_METHODS, "Cox DiD",
                 "Discrete-time DiD (cloglog)",
                 "Cox DiD (score bootstrap)", "Discrete-time DiD (score bootstrap)"]
        present = list(dict.fromkeys(g["method"]))
        for method in sorted(present, key=lambda m: order.index(m) if m in order else 99):
            a = g[(g.method == method) & (g.scenario == "null")]
            b = g[(g.method == method) & (g.scenario == "effect")]
            a = a.iloc[0] if len(a) else None
            b = b.iloc[0] if len(b) else None

            def cell(r, k):
                if r is None or (isinstance(r[k], float) and math.isnan(r[k])):
                    return "–"
                return f"{_fmt(r[k])} ({_fmt(r[k + '_mcse'])})"

            parts.append(
                f"| {method} | {int(a['reps']) if a is not None else 0} | {cell(a, 'reject')} | "
                f"{cell(a, 'coverage')} | {int(b['reps']) if b is not None else 0} | "
                f"{cell(b, 'reject')} | {cell(b, 'coverage')} | "
                f"{_fmt(b['median_ci_width'], pct=False) if b is not None else '–'} | "
                f"{_fmt(b['bias'], pct=False) if b is not None else '–'} |")
        parts.append("")
    return "\n".join(parts)


CS_PRE_LABELS = {
    "CS-Wald": "Wald χ², analytic clustered covariance (`info[\"pretest_p\"]`)",
    "CS-Wald-RI": "the same Wald statistic, permutation p (one-sided)",
    "CS-sumt2-RI": "Σ t² of the pre-treatment ATT(g,t), permutation p",
    "CS-evt2-RI": "Σ t² of the pre-treatment event-study coefficients, permutation p",
    "CS-evss-RI": "Σ of the squared pre-treatment event-study coefficients, permutation p",
    "CS-premean-RI": "mean pre-treatment ATT(g,t), two-sided permutation p",
    "CS-ATT-RI": "the simple ATT (not a pre-test), two-sided permutation p",
}


def cs_pretest_table(summary: pd.DataFrame) -> str:
    """Markdown table of the CS pre-trend test study (size and power per statistic)."""
    g = summary[summary["design"] == "cs_pre"]
    if g.empty:
        return ""
    rows = ["#### Callaway–Sant'Anna pre-trend test: 11 of 98 treated, municipality × half-year "
            "cells (the report's call)\n",
            "| test | statistic | reps (null) | rejection at 5 % under parallel trends (MC se) "
            "| reps (pre-trend) | rejection = power (MC se) | failed (null / pre-trend) |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for m in CS_PRE_METHODS:
        a = g[(g.method == m) & (g.scenario == "null")]
        b = g[(g.method == m) & (g.scenario == "pretrend")]
        a = a.iloc[0] if len(a) else None
        b = b.iloc[0] if len(b) else None

        def cell(r):
            return "–" if r is None else f"{_fmt(r['reject'])} ({_fmt(r['reject_mcse'])})"

        rows.append(f"| {m} | {CS_PRE_LABELS[m]} | {int(a['reps']) if a is not None else 0} | "
                    f"{cell(a)} | {int(b['reps']) if b is not None else 0} | {cell(b)} | "
                    f"{int(a['n_failed']) if a is not None else 0} / "
                    f"{int(b['n_failed']) if b is not None else 0} |")
    rows.append("")
    return "\n".join(rows)


START, END = "<!-- calibration-tables:start -->", "<!-- calibration-tables:end -->"


def fill_doc(doc: Path, tables: str) -> str:
    """The document with the generated tables between the markers (the prose around them is
    written by hand and kept)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else f"{START}\n{END}\n"
    if START not in text or END not in text:
        raise ValueError(f"{doc} lacks the markers {START} / {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n\n{tables}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("panel")
    p.add_argument("--designs", default="nj11,k4")
    p.add_argument("--reps-null", type=int, default=1000)
    p.add_argument("--reps-effect", type=int, default=300)
    p.add_argument("--rep-start", type=int, default=0,
                   help="first replication index (to split a study over several logs)")
    p.add_argument("--B", type=int, default=999)
    p.add_argument("--n-perm", type=int, default=499)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS / "panel_reps.csv"))
    s = sub.add_parser("sdid")
    s.add_argument("--designs", default="k4,nj11")
    s.add_argument("--reps", type=int, default=100)
    s.add_argument("--reps-effect", type=int, default=0)
    s.add_argument("--placebo-reps", type=int, default=100)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--out", default=str(RESULTS / "sdid_reps.csv"))
    v = sub.add_parser("survival")
    v.add_argument("--reps", type=int, default=100)
    v.add_argument("--reps-effect", type=int, default=None)
    v.add_argument("--n", type=int, default=30_000)
    v.add_argument("--methods", default="cox,discrete",
                   help="comma list of cox, discrete, cox-boot, discrete-boot")
    v.add_argument("--workers", type=int, default=2)
    v.add_argument("--out", default=str(RESULTS / "survival_reps.csv"))
    q = sub.add_parser("sdid-ri")
    q.add_argument("--designs", default="nj11")
    q.add_argument("--reps", type=int, default=200)
    q.add_argument("--reps-effect", type=int, default=0)
    q.add_argument("--rep-start", type=int, default=0)
    q.add_argument("--n-perm", type=int, default=99)
    q.add_argument("--workers", type=int, default=1)
    q.add_argument("--out", default=str(RESULTS / "sdid_ri_reps.csv"))
    c = sub.add_parser("cs-pretest")
    c.add_argument("--reps", type=int, default=300)
    c.add_argument("--reps-pretrend", type=int, default=150)
    c.add_argument("--n-perm", type=int, default=99)
    c.add_argument("--workers", type=int, default=1)
    c.add_argument("--out", default=str(RESULTS / "cs_pretest_reps.csv"))
    r = sub.add_parser("report")
    r.add_argument("--doc", default=str(DOC))
    a = ap.parse_args(argv)

    def log(msg):
        print(msg, flush=True)

    if a.cmd == "panel":
        out = Path(a.out)
        tasks = _panel_tasks(a.designs.split(","), {"null": a.reps_null, "effect": a.reps_effect},
                             PANEL_METHODS, out, rep_start=a.rep_start, B=a.B, n_perm=a.n_perm)
        log(f"panel: {len(tasks)} replications to run -> {out}")
        run_tasks(tasks, out, a.workers, log)
    elif a.cmd == "sdid":
        out = Path(a.out)
        tasks = _panel_tasks(a.designs.split(","), {"null": a.reps, "effect": a.reps_effect},
                             ("SDID-placebo",), out, sdid_reps=a.placebo_reps)
        log(f"sdid: {len(tasks)} replications to run -> {out}")
        run_tasks(tasks, out, a.workers, log)
    elif a.cmd == "sdid-ri":
        out = Path(a.out)
        done = _tasks_done(out)
        tasks = [("sdid-ri", (design, scen, rep), dict(n_perm=a.n_perm))
                 for rep in range(a.rep_start, max(a.reps, a.reps_effect))
                 for design in a.designs.split(",")
                 for scen, R in (("null", a.reps), ("effect", a.reps_effect))
                 if rep < R and (design, scen, rep, "SDID-RI") not in done]
        log(f"sdid-ri: {len(tasks)} replications to run -> {out}")
        run_tasks(tasks, out, a.workers, log)
    elif a.cmd == "cs-pretest":
        out = Path(a.out)
        done = _tasks_done(out)
        tasks = [("cs-pre", (scen, rep), dict(n_perm=a.n_perm))
                 for rep in range(max(a.reps, a.reps_pretrend))
                 for scen, R in (("null", a.reps), ("pretrend", a.reps_pretrend))
                 if rep < R and ("cs_pre", scen, rep, "CS-Wald") not in done]
        log(f"cs-pretest: {len(tasks)} replications to run -> {out}")
        run_tasks(tasks, out, a.workers, log)
    elif a.cmd == "survival":
        out = Path(a.out)
        done = _tasks_done(out)
        R_eff = a.reps if a.reps_effect is None else a.reps_effect
        methods = tuple(a.methods.split(","))
        first = {"cox": "Cox DiD", "discrete": "Discrete-time DiD (cloglog)",
                 "cox-boot": "Cox DiD (score bootstrap)",
                 "discrete-boot": "Discrete-time DiD (score bootstrap)"}[methods[0]]
        tasks = [("survival", (scen, rep), dict(n=a.n, methods=methods))
                 for rep in range(max(a.reps, R_eff)) for scen, R in (("null", a.reps),
                                                                      ("effect", R_eff))
                 if rep < R and ("survival", scen, rep, first) not in done]
        log(f"survival: {len(tasks)} replications to run -> {out}")
        run_tasks(tasks, out, a.workers, log)
    elif a.cmd == "report":
        files = (sorted(RESULTS.glob("panel_reps*.csv")) + [RESULTS / "sdid_reps.csv"]
                 + sorted(RESULTS.glob("sdid_ri*_reps.csv"))
                 + [RESULTS / "cs_pretest_reps.csv"]
                 + sorted(RESULTS.glob("survival*_reps.csv")))
        frames = [read_reps(f) for f in files if f.exists()]
        reps = pd.concat(frames, ignore_index=True).drop_duplicates(
            ["design", "scenario", "rep", "method"], keep="first")
        summ = summarise(reps)
        from evaluering._atomic import write_text

        write_text(RESULTS / "summary.csv", summ.to_csv(index=False))
        tables = (markdown_tables(summ[summ["design"] != "cs_pre"])
                  + "\n" + cs_pretest_table(summ))
        print(tables)
        write_text(a.doc, fill_doc(Path(a.doc), tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
