"""Register simulator: a synthetic data set in the data contract's raw format.

``simulate(out_dir, scale, seed, effects)`` writes, for the 98 real municipalities and the
ISO weeks 2014-W01 … 2021-W52:

* ``forloeb`` – benefit spells (one row per spell), ``kontakter`` – meetings, medical
  certificates, rehabilitation-team cases and offers, ``ugestatus`` – a DREAM-like weekly
  register in the wide layout (``person_id`` + ``y_YYWW``), as Parquet (default) or CSV;
* ``ydelseskoder.toml`` – the simulator's ILLUSTRATIVE code mapping (not STAR's codes);
* ``forsoeg.toml`` – a copy of the packaged North Jutland trial catalogue;
* ``sandhed.json`` – the planted ("true") effects per trial and outcome.

Data-generating process (parameters in :mod:`evaluering.simulate._params`)
-------------------------------------------------------------------------
Persons belong to a home municipality; the number of persons per municipality is proportional
to the municipality's mean level of net unemployed social-assistance recipients 2014–2021
(Statistics Denmark AUK01, packaged in ``evaluering/reference/statbank``), so Læsø is tiny and
København large. A person's first spell starts at a time drawn from a national inflow intensity
(business cycle, seasonality, a COVID-19 inflow spike in spring 2020); covariates (sex, birth
year, origin, education) are drawn with a composition that shifts over calendar time and by
municipality size. The benefit group of a new spell depends on the covariates.

Each spell ends by the first of six competing risks in continuous time (job, education (SU),
another benefit, pension, death/emigration, other) with piecewise-constant weekly rates. The
job rate has a duration dependence, covariate effects, a municipality level and trend, a
seasonal cycle, a national business cycle with a COVID-19 dip, a national break on
2020-01-01, and — for spells exposed to a trial — the planted multiplicative effect
``hazard_job``. The exit "andet" (self-support for another reason) gets the same multiplier, so
the hazard of exit to self-support as seen in the weekly register also has the planted ratio.
Spells still running at 2021-12-31 are right-censored (``slut_dato`` and ``afgang`` missing).

After an exit to self-support the person has at least ``MIN_JOB_RUN`` (5) weeks without benefit
(longer than one calendar month, the Jobindsats spell rule) and may return with a weekly
hazard to a new spell, possibly in another municipality (moves); after an exit to education a
run of SU weeks follows; after an exit to another benefit the next spell (group from a
transition matrix) starts the following Monday; pension and death/emigration codes fill the
weeks after such exits up to the data end. Some longer spells have a 1–3-week interruption
without benefit inside the spell (shorter than a month, so the spell goes on). A person's
spells never share a calendar week, so the weekly register has one code per week.

Contacts are Poisson processes over each spell's days with rates by benefit group,
municipality, the regime at the spell's start (national break 2020-01-01: fewer mandatory
meetings, LÆ 285 optional) and the trial effects (``samtaler``, ``andel_fysiske``,
``laegeattester``, ``rehab``, ``minutter``). Every rehabilitation-team case comes with an
LÆ 265 certificate. Twelve control municipalities do not record caseworker minutes.

Exposure and "truth"
--------------------
A spell is exposed to a trial of ``forsoeg_nordjylland.toml`` when its municipality is in the
trial, its group is in the target group and it starts on or after the municipality's start
(as in the data contract). Effects apply to exposed spells for their whole duration (the
certificate effect only to spells starting before 2020-01-01, when LÆ 285 became optional
everywhere). ``sandhed.json`` reports, per trial, the sample average effect on the exposed
spells that start inside the evaluation window ``[start_for(kommune), slut]``: every such spell
is simulated a second time with the same random numbers and the effects switched off
(potential outcome Y(0)); counts are expected values given the spell's duration (rate × days
on benefit in the first 26 weeks), so the truth has no Poisson noise. ``hazard_job`` is the
planted hazard ratio itself. See :data:`TRUTH_DEFINITIONS`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from evaluering import contract
from evaluering._atomic import atomic_dir
from evaluering.errors import InputError
from evaluering.reference import kommuner as _kommuner_df
from evaluering.reference.catalogue import Forsoeg, forsoeg_nordjylland_path, load_forsoeg
from evaluering.simulate import _params as P

__all__ = ["simulate", "DEFAULT_EFFECTS", "NO_EFFECTS", "EFFECT_KEYS", "SCALES",
           "TRUTH_DEFINITIONS", "week_columns", "kommune_vaegte"]

# --------------------------------------------------------------------------- constants
SCALES = {"small": 4_000, "medium": 100_000, "national": 1_000_000}   # persons
FIRST_WEEK = contract.week_index(2014, 1)
LAST_WEEK = contract.week_index(2021, 52)
NW = LAST_WEEK - FIRST_WEEK + 1                      # 418 ISO weeks
DAY0 = contract.week_monday(FIRST_WEEK)              # 2013-12-30, a Monday: day 0
DATA_END = dt.date(2021, 12, 31)                     # the data were drawn at this date
END_T = (DATA_END - DAY0).days + 1                   # continuous time at the end of DATA_END
BREAK_2020 = (dt.date(2020, 1, 1) - DAY0).days
FIRST_DAY = (dt.date(2014, 1, 1) - DAY0).days           # spells start from 2014-01-01

EFFECT_KEYS = {
    "hazard_job": 1.0,      # multiplicative: weekly hazard of exit to job (and to 'andet')
    "samtaler": 1.0,        # multiplicative: rate of meetings
    "andel_fysiske": 0.0,   # additive: probability that a meeting is held in person
    "laegeattester": 1.0,   # multiplicative: rate of LÆ 285 / LÆ 125 certificates
    "rehab": 1.0,           # multiplicative: rate of rehabilitation-team cases (+ LÆ 265)
    "minutter": 1.0,        # multiplicative: caseworker minutes per contact
}
DEFAULT_EFFECTS: Mapping[str, Mapping[str, float]] = {
    "samtaler-forsikrede": {"hazard_job": 1.10, "andel_fysiske": -0.30},
    "rehabiliteringsteam": {"rehab": 0.50, "minutter": 0.95},
    "laegeattester-sygedagpenge": {"laegeattester": 0.40},
    "samtaler-oevrige": {"hazard_job": 1.05, "samtaler": 0.90, "andel_fysiske": -0.20},
}
NO_EFFECTS: Mapping[str, Mapping[str, float]] = {}

TRUTH_DEFINITIONS = {
    "population": "exposed spells (municipality in the trial, ydelsesgruppe in maalgruppe, "
                  "start on or after the municipality's start) that start no later than the "
                  "trial's slut; effect = mean over these spells of Y(1) - Y(0), where Y(0) "
                  "re-simulates the spell with the same random numbers and no effect. "
                  "'effekt_fuld_opfoelgning' restricts each outcome to the spells whose "
                  "horizon (13/26/52 weeks, 26 for resources) ends by slut",
    "hazard_job": "hazard ratio: the planted multiplier of the weekly hazard of exit to "
                  "self-support (afgang job or andet); cause-specific, proportional over "
                  "duration and calendar time, conditional on the spell's covariates, "
                  "municipality and calendar week (a marginal hazard ratio that ignores them "
                  "differs slightly: hazard ratios are non-collapsible)",
    "job_X_uger": "percentage points: share of spells whose exit to self-support (afgang job "
                  "or andet) happens within X weeks, X counted in ISO weeks as in the weekly "
                  "register (first self-supporting week - first spell week <= X); exits to "
                  "other benefits, education, pension or death count as not in job",
    "rmst_52_uger": "weeks: mean of min(weeks to self-support, 52), weeks to self-support = "
                    "infinite when the spell ends otherwise",
    "samtaler_pr_forloeb": "meetings in the spell's first 26 weeks (182 days): expected count "
                           "given the spell's duration",
    "andel_fysiske_samtaler": "percentage points: mean over spells of the probability that a "
                              "meeting is held in person",
    "minutter_pr_forloeb": "caseworker minutes on the spell's contacts in the first 26 weeks "
                           "(expected)",
    "laegeattester_pr_forloeb": "medical certificates (LÆ 285, LÆ 125, LÆ 265) in the first "
                                "26 weeks (expected)",
    "rehab_pr_forloeb": "rehabilitation-team cases in the first 26 weeks (expected)",
    "udgift_pr_forloeb": "direct costs in DKK (certificate fees, offers) in the first 26 weeks "
                         "(expected)",
}


def week_columns() -> list[str]:
    """The wide-layout column names ``y_YYWW`` for 2014-W01 … 2021-W52."""
    out = []
    for i in range(NW):
        d = contract.week_monday(FIRST_WEEK + i)
        y, w, _ = d.isocalendar()
        out.append(f"y_{y % 100:02d}{w:02d}")
    return out


def kommune_vaegte() -> pd.DataFrame:
    """Municipality weights: mean AUK01 level 2014Q1–2021Q4 (kode, navn, region, vaegt)."""
    base = resources.files("evaluering.reference").joinpath("statbank")
    with base.joinpath("auk01_kontanthjaelp_kommuner_2014Q1-2021Q4.csv").open(
            "r", encoding="utf-8-sig") as fh:
        a = pd.read_csv(fh, sep=";")
    with base.joinpath("auk01_omraade_to_kommunekode.csv").open("r", encoding="utf-8") as fh:
        m = pd.read_csv(fh, dtype=str)
    lvl = a.merge(m, left_on=a.columns[0], right_on="omraade_en").groupby("kode")[
        a.columns[-1]].mean()
    k = _kommuner_df().sort_values("kode").reset_index(drop=True)
    k["vaegt"] = k["kode"].map(lvl).astype(float)
    if k["vaegt"].isna().any():  # pragma: no cover - the packaged files cover all 98
        raise RuntimeError("AUK01 levels missing for some municipalities")
    k["vaegt"] /= k["vaegt"].sum()
    return k


# --------------------------------------------------------------------------- effects
def _normalise_effects(effects: Any, trials: tuple[Forsoeg, ...]) -> dict[str, dict[str, float]]:
    if effects is None:
        effects = DEFAULT_EFFECTS
    if isinstance(effects, (str, os.PathLike)) and str(effects).lower() not in ("none", "0"):
        effects = _read_effects_file(Path(effects))
    elif isinstance(effects, str):
        effects = NO_EFFECTS
    ids = {t.id for t in trials}
    out = {t.id: dict(EFFECT_KEYS) for t in trials}
    for tid, spec in dict(effects).items():
        if tid not in ids:
            raise InputError(f"effects: unknown trial id '{tid}'",
                             expected="one of " + ", ".join(sorted(ids)))
        for k, v in dict(spec).items():
            if k not in EFFECT_KEYS:
                raise InputError(f"effects: trial '{tid}': unknown effect '{k}'",
                                 expected="one of " + ", ".join(EFFECT_KEYS))
            v = float(v)
            if k != "andel_fysiske" and not (v > 0 and math.isfinite(v)):
                raise InputError(f"effects: trial '{tid}': '{k}' must be a positive factor")
            if k == "andel_fysiske" and not -1 < v < 1:
                raise InputError(f"effects: trial '{tid}': 'andel_fysiske' must be in (-1, 1)")
            out[tid][k] = v
    return out


def _read_effects_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the effects file: {exc.strerror}", file=str(path)) from exc
    try:
        if path.suffix.lower() == ".json":
            import json

            return json.loads(text)
        return tomllib.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is the user's input
        raise InputError(f"cannot parse the effects file: {exc}", file=str(path)) from exc


# --------------------------------------------------------------------------- the world
@dataclass
class _World:
    codes_k: np.ndarray          # 98 municipality codes (sorted)
    region: np.ndarray           # region index per municipality
    weights: np.ndarray
    calm: np.ndarray             # (98, NW) job-hazard calendar multiplier per municipality
    samtale_factor: np.ndarray   # per municipality
    fysisk_offset: np.ndarray
    records_minutes: np.ndarray  # bool per municipality
    ikke_vestlig_share: np.ndarray
    inflow_p: np.ndarray         # (NW,) distribution of first-spell weeks
    trials: tuple[Forsoeg, ...]
    trial_start: np.ndarray      # (T, 98) start day, +inf if not in trial
    trial_slut: np.ndarray       # (T,) last start day inside the evaluation window
    trial_groups: np.ndarray     # (T, NG) bool
    eff: np.ndarray              # (T, 6) effects in EFFECT_KEYS order
    codes: list[str]             # weekly code dictionary (index + 1 in the matrices)
    code_cum: dict[str, tuple[np.ndarray, np.ndarray]]


def _calendar(rng: np.random.Generator, n_k: int) -> tuple[np.ndarray, np.ndarray]:
    weeks = np.arange(NW)
    mondays = [contract.week_monday(FIRST_WEEK + i) for i in weeks]
    t_years = np.array([(d - dt.date(2018, 1, 1)).days / 365.25 for d in mondays])
    woy = np.array([d.isocalendar()[1] for d in mondays])
    # national business cycle: steady improvement 2014-2019, COVID-19 dip 2020, recovery 2021
    cyc = np.interp(t_years, [-4, 2], [-0.12, 0.15])
    covid = np.array([(dt.date(2020, 3, 9) <= d < dt.date(2020, 7, 1)) for d in mondays])
    covid2 = np.array([(dt.date(2020, 7, 1) <= d < dt.date(2021, 3, 1)) for d in mondays])
    cyc = cyc - 0.6 * covid - 0.2 * covid2
    brk = np.array([d >= dt.date(2020, 1, 1) for d in mondays]) * P.BREAK_2020_HAZARD
    season = P.SEASON_AMPLITUDE * np.sin(2 * np.pi * (woy - 10) / 52.0)
    level = rng.normal(0, P.SD_KOMMUNE_NIVEAU, n_k)
    trend = rng.normal(0, P.SD_KOMMUNE_TREND, n_k)
    calm = np.exp(level[:, None] + trend[:, None] * t_years[None, :]
                  + (cyc + brk + season)[None, :])
    # inflow of first spells: counter-cyclical, January and summer peaks, COVID spike
    # (declining over time: later spells come increasingly from returning persons)
    inflow = np.exp(-1.5 * cyc + 0.15 * np.cos(2 * np.pi * (woy - 2) / 52.0)
                    + 0.4 * covid - 0.25 * (t_years + 4))
    return calm, inflow / inflow.sum()


def _build_world(seed: int, effects: Any, trials: tuple[Forsoeg, ...]) -> _World:
    rng = np.random.default_rng([seed, 7_777])
    kw = kommune_vaegte()
    n_k = len(kw)
    codes_k = kw["kode"].to_numpy()
    regions = {r: i for i, r in enumerate(sorted(kw["region"].unique()))}
    calm, inflow_p = _calendar(rng, n_k)
    samtale_factor = np.exp(rng.normal(0, 0.10, n_k))
    fysisk_offset = rng.normal(0, P.SD_KOMMUNE_FYSISK, n_k)
    in_any = set()
    for t in trials:
        in_any |= set(t.kommuner) | set(t.udeluk_fra_kontrol)
    candidates = np.array([i for i, k in enumerate(codes_k) if k not in in_any])
    no_min = rng.choice(candidates, size=min(P.N_KOMMUNER_UDEN_MINUTTER, len(candidates)),
                        replace=False)
    records = np.ones(n_k, bool)
    records[no_min] = False
    size_rank = kw["vaegt"].rank(pct=True).to_numpy()
    ikke_vestlig = 0.05 + 0.10 * size_rank

    eff_map = _normalise_effects(effects, trials)
    T = len(trials)
    tstart = np.full((T, n_k), np.inf)
    tslut = np.zeros(T)
    tgroups = np.zeros((T, P.NG), bool)
    eff = np.zeros((T, len(EFFECT_KEYS)))
    kidx = {k: i for i, k in enumerate(codes_k)}
    for j, t in enumerate(trials):
        for k in t.kommuner:
            tstart[j, kidx[k]] = (t.start_for(k) - DAY0).days
        tslut[j] = (t.slut - DAY0).days
        for g in t.maalgruppe:
            tgroups[j, P.G[g]] = True
        eff[j] = [eff_map[t.id][k] for k in EFFECT_KEYS]

    codes: list[str] = []
    code_cum = {}
    for cat, (cs, ps) in P.CODES.items():
        idx = []
        for c in cs:
            codes.append(c)
            idx.append(len(codes))
        code_cum[cat] = (np.array(idx, np.int16), np.cumsum(ps) / np.sum(ps))
    return _World(codes_k, kw["region"].map(regions).to_numpy(), kw["vaegt"].to_numpy(),
                  calm, samtale_factor, fysisk_offset, records, ikke_vestlig, inflow_p,
                  trials, tstart, tslut, tgroups, eff, codes, code_cum)


def _draw_code(rng: np.random.Generator, world: _World, cat: str, n: int) -> np.ndarray:
    idx, cum = world.code_cum[cat]
    return idx[np.searchsorted(cum, rng.random(n), side="right").clip(0, len(idx) - 1)]


def _persons_per_kommune(world: _World, n_persons: int) -> np.ndarray:
    return np.maximum(3, np.round(world.weights * n_persons)).astype(np.int64)


# --------------------------------------------------------------------------- one chunk
_HERK = np.array(contract.HERKOMST, dtype=object)
_UDD = np.array(contract.UDDANNELSE, dtype=object)
_B_HERK = np.array([P.B_HERKOMST[h] for h in contract.HERKOMST])
_B_UDD = np.array([P.B_UDDANNELSE[u] for u in contract.UDDANNELSE])
_AFGANG_OF_RISK = np.array(["job", "uddannelse", "anden_ydelse", "pension", "doed_udvandret",
                            "andet"], dtype=object)


def _year_of_day(day: np.ndarray) -> np.ndarray:
    return 2014 + (np.asarray(day, float) - 2) / 365.25


def _choose_group(rng, age, herk, udd, day) -> np.ndarray:
    n = len(age)
    w = np.tile(P.GROUP_SHARE, (n, 1))
    young = age < 30
    w[:, P.G["uddannelseshjaelp"]] *= np.where(young, 3.0, 0.0)
    w[:, P.G["kontanthjaelp"]] *= np.where(young, 0.3, 1.0)
    iv = herk == 2
    w[:, P.G["integrationsydelse"]] *= np.where(iv & (_year_of_day(day) >= 2015.7), 6.0, 0.0)
    w[:, P.G["kontanthjaelp"]] *= np.where(iv, 1.8, 1.0)
    w[:, P.G["a-dagpenge"]] *= np.select([udd == 3, udd == 0], [1.5, 0.6], 1.0)
    w[:, P.G["kontanthjaelp"]] *= np.select([udd == 0, udd == 3], [1.8, 0.5], 1.0)
    old = age >= 50
    for g, f in (("sygedagpenge", 1.4), ("jobafklaring", 1.5), ("fleksjob", 2.0),
                 ("ledighedsydelse", 1.5)):
        w[:, P.G[g]] *= np.where(old, f, 1.0)
    cum = np.cumsum(w, axis=1)
    u = rng.random(n) * cum[:, -1]
    return (cum < u[:, None]).sum(axis=1).astype(np.int8)


_SPIKE = np.zeros((P.NG, NW + 1))
for _g, _a, _b, _v in P.SPIKES:
    _SPIKE[_g, _a:_b] = _v
_DD = (1.0 + np.arange(NW + 1) / 13.0) ** (-P.DURATION_DEPENDENCE)
# national break for a-dagpenge at the register change RAM -> FLEUR (2017-07-01)
_FLEUR = np.ones((P.NG, NW))
_FLEUR[P.G["a-dagpenge"], contract.week_index_of_date(dt.date(2017, 7, 1)) - FIRST_WEEK:] = \
    np.exp(P.BREAK_FLEUR_ADAGPENGE)


def _durations(world: _World, start: np.ndarray, muni: np.ndarray, grp: np.ndarray,
               age: np.ndarray, kvinde: np.ndarray, herk: np.ndarray, udd: np.ndarray,
               hr: np.ndarray, E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-time exit times (days) and causes for spells; inf / -1 when censored."""
    n = len(start)
    xb = (np.log(P.HAZ_JOB[grp]) + P.B_KVINDE * kvinde + P.B_ALDER * (age - 40)
          + _B_HERK[herk] + _B_UDD[udd])
    lam_job = np.exp(xb) * hr
    lam_andet = P.HAZ_ANDET * hr
    lam_udd = P.HAZ_UDD[grp] * np.select([age < 30, age > 45], [2.0, 0.3], 1.0)
    lam_pen = P.HAZ_PEN[grp] * np.clip(np.exp(0.25 * (age - 55)), 0.2, 60.0)
    lam_anden0 = P.HAZ_ANDEN[grp]
    L = np.zeros((6, n))
    exit_t = np.full(n, np.inf)
    cause = np.full(n, -1, np.int8)
    wk0 = (start // 7).astype(np.int64)
    act = np.arange(n)
    d = 0
    lam = np.empty((6, n))
    while act.size:
        cw = wk0[act] + d
        ok = cw < NW
        if not ok.all():
            act, cw = act[ok], cw[ok]
            if not act.size:
                break
        m = act.size
        cm = world.calm[muni[act], cw]
        lm = lam[:, :m]
        lm[0] = lam_job[act] * cm * _DD[d] * _FLEUR[grp[act], cw]
        lm[1] = lam_udd[act]
        lm[2] = lam_anden0[act] + _SPIKE[grp[act], d]
        lm[3] = lam_pen[act]
        lm[4] = P.HAZ_DOED
        lm[5] = lam_andet[act] * cm
        Lold = L[:, act]
        Lnew = Lold + lm
        Ea = E[:, act]
        cross = Lnew >= Ea
        hit = cross.any(axis=0)
        if hit.any():
            h = np.nonzero(hit)[0]
            frac = np.where(cross[:, h], (Ea[:, h] - Lold[:, h]) / lm[:, h], np.inf)
            k = frac.argmin(axis=0)
            f = frac[k, np.arange(h.size)]
            sp = act[h]
            exit_t[sp] = start[sp] + 7.0 * (d + f)
            cause[sp] = k
            keep = ~hit
            L[:, act[keep]] = Lnew[:, keep]
            act = act[keep]
        else:
            L[:, act] = Lnew
        d += 1
    cens = exit_t >= END_T
    exit_t[cens] = np.inf
    cause[cens] = -1
    return exit_t, cause


def _geom(rng, p, n):
    return rng.geometric(p, n) - 1


@dataclass
class _ChunkOut:
    forloeb: pa.Table
    kontakter: pa.Table
    ugestatus: pa.Table
    truth: np.ndarray            # (T, n_stats) sums over exposed spells in the window
    n_truth: np.ndarray          # (T,)
    truth_full: np.ndarray       # (T, n_stats) sums over those with full follow-up in window
    n_full: np.ndarray           # (T, n_stats)


_HORIZON = {"job_13_uger": 13, "job_26_uger": 26, "job_52_uger": 52, "rmst_52_uger": 52,
            "samtaler_pr_forloeb": 26, "andel_fysiske_samtaler": 26, "minutter_pr_forloeb": 26,
            "laegeattester_pr_forloeb": 26, "rehab_pr_forloeb": 26, "udgift_pr_forloeb": 26}
_TRUTH_STATS = ("job_13_uger", "job_26_uger", "job_52_uger", "rmst_52_uger",
                "samtaler_pr_forloeb", "andel_fysiske_samtaler", "minutter_pr_forloeb",
                "laegeattester_pr_forloeb", "rehab_pr_forloeb", "udgift_pr_forloeb")


def _contact_rates(world: _World, muni, grp, start, eff) -> dict[str, np.ndarray]:
    """Contact rates per week and the in-person probability for spells; ``eff`` (n, 6)."""
    post20 = start >= BREAK_2020
    yr = _year_of_day(start)
    r_s = P.RATE_SAMTALE[grp] * world.samtale_factor[muni] * np.where(
        post20, P.BREAK_2020_SAMTALE, 1.0) * eff[:, 1]
    p0 = np.clip(P.P_FYSISK_2014 + P.P_FYSISK_TREND * (yr - 2014) + world.fysisk_offset[muni]
                 + np.where(post20, P.P_FYSISK_BREAK_2020, 0.0), 0.05, 0.95)
    p = np.clip(p0 + eff[:, 2], 0.01, 0.99)
    lae_eff = np.where(post20, 1.0, eff[:, 3])
    r285 = P.RATE_LAE285[grp] * np.where(post20, P.BREAK_2020_LAE285, 1.0) * lae_eff
    r125 = P.RATE_LAE125[grp] * lae_eff
    r_rehab = P.RATE_REHAB[grp] * eff[:, 4]
    r_tilbud = P.RATE_TILBUD[grp]
    return {"samtale": r_s, "p_fysisk": p, "lae285": r285, "lae125": r125,
            "rehab": r_rehab, "tilbud": r_tilbud, "min_factor": eff[:, 5]}


def _expected_26(rates: dict, weeks26: np.ndarray, records: np.ndarray) -> dict[str, np.ndarray]:
    ovr = sum(s * P.MINUTTER[c] for c, s in P.KANAL_OVRIGE)
    min_samtale = rates["p_fysisk"] * P.MINUTTER["fysisk"] + (1 - rates["p_fysisk"]) * ovr
    per_week_min = (rates["samtale"] * min_samtale
                    + (rates["lae285"] + rates["lae125"]) * P.MINUTTER["laegeattest"]
                    + rates["rehab"] * (P.MINUTTER["rehabiliteringsteam"]
                                        + P.MINUTTER["laegeattest"])
                    + rates["tilbud"] * P.MINUTTER["tilbud"]) * rates["min_factor"]
    per_week_kr = (rates["lae285"] * P.GEBYR["LAE285"] + rates["lae125"] * P.GEBYR["LAE125"]
                   + rates["rehab"] * P.GEBYR["LAE265"] + rates["tilbud"] * P.TILBUD_UDGIFT_MEAN)
    return {
        "samtaler_pr_forloeb": rates["samtale"] * weeks26,
        "andel_fysiske_samtaler": 100.0 * rates["p_fysisk"],
        "minutter_pr_forloeb": np.where(records, per_week_min * weeks26, np.nan),
        "laegeattester_pr_forloeb": (rates["lae285"] + rates["lae125"] + rates["rehab"]) * weeks26,
        "rehab_pr_forloeb": rates["rehab"] * weeks26,
        "udgift_pr_forloeb": per_week_kr * weeks26,
    }


def _time_outcomes(start_day, exit_t, cause) -> dict[str, np.ndarray]:
    selfsup = (cause == P.R_JOB) | (cause == P.R_ANDET)
    slut_day = np.floor(np.where(np.isfinite(exit_t), exit_t, 0)).astype(np.int64)
    slut_day = np.maximum(slut_day, start_day.astype(np.int64))
    wtj = np.where(selfsup, slut_day // 7 + 1 - start_day.astype(np.int64) // 7, 10**6)
    out = {f"job_{x}_uger": 100.0 * (wtj <= x) for x in (13, 26, 52)}
    out["rmst_52_uger"] = np.minimum(wtj, 52).astype(float)
    return out


def _simulate_chunk(world: _World, seed: int, chunk_no: int, kom_idx: np.ndarray,
                    n_per_k: np.ndarray, pid_offset: int) -> _ChunkOut:
    rng = np.random.default_rng([seed, 1, chunk_no])
    n = int(n_per_k.sum())
    home = np.repeat(kom_idx, n_per_k)
    # ---- persons
    first_week = rng.choice(NW, size=n, p=world.inflow_p)
    first_day = np.clip(first_week * 7 + rng.integers(0, 7, n), FIRST_DAY, END_T - 1)
    yr = _year_of_day(first_day) - 2014
    kvinde = rng.random(n) < 0.48
    age_first = 18 + 48 * rng.beta(1.3, 1.8, n)
    foedselsaar = np.floor(2014 + yr - age_first).astype(np.int64)
    foedselsaar = np.clip(foedselsaar, 1948, 2003)
    p_iv = world.ikke_vestlig_share[home] + 0.008 * yr
    u = rng.random(n)
    herk = np.where(u < p_iv, 2, np.where(u < p_iv + 0.05, 1, 0)).astype(np.int8)
    p_vid = 0.16 + 0.012 * yr
    p_grund = 0.32 - 0.012 * yr
    u = rng.random(n)
    udd = np.where(u < p_grund, 0, np.where(u < p_grund + 0.13, 1,
                   np.where(u < 1 - p_vid, 2, 3))).astype(np.int8)

    # ---- spells, generation by generation
    recs: dict[str, list[np.ndarray]] = {k: [] for k in (
        "person", "muni", "grp", "start", "exit", "cause", "code", "gap0", "gap1")}
    segs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # person, w0, w1, code
    T = len(world.trials)
    truth = np.zeros((T, len(_TRUTH_STATS)))
    n_truth = np.zeros(T)
    truth_full = np.zeros((T, len(_TRUTH_STATS)))
    n_full = np.zeros((T, len(_TRUTH_STATS)))

    cur_p = np.arange(n)
    cur_m = home.copy()
    cur_start = first_day.astype(float)
    age = 2014 + _year_of_day(cur_start) - 2014 - foedselsaar
    cur_g = _choose_group(rng, age, herk[cur_p], udd[cur_p], cur_start)
    while cur_p.size:
        m = cur_p.size
        age = _year_of_day(cur_start) - foedselsaar[cur_p]
        # exposure
        exposed = ((world.trial_start[:, cur_m] <= cur_start[None, :])
                   & world.trial_groups[:, cur_g])                     # (T, m)
        eff = np.ones((m, len(EFFECT_KEYS)))
        eff[:, 2] = 0.0
        for j in range(T):
            e = exposed[j]
            if e.any():
                mult = world.eff[j].copy()
                eff[e] *= np.where(np.arange(len(mult)) == 2, 1.0, mult)
                eff[e, 2] += mult[2]
        hr = eff[:, 0]
        in_win = exposed & (cur_start[None, :] <= world.trial_slut[:, None])
        cf = np.nonzero(in_win.any(axis=0))[0]
        E = rng.exponential(size=(6, m))
        # real spells + counterfactual copies (same random numbers, no effect)
        allidx = np.concatenate([np.arange(m), cf])
        hr_all = np.concatenate([hr, np.ones(cf.size)])
        ex, ca = _durations(world, cur_start[allidx], cur_m[allidx], cur_g[allidx],
                            age[allidx], kvinde[cur_p][allidx].astype(float),
                            herk[cur_p][allidx], udd[cur_p][allidx], hr_all, E[:, allidx])
        exit_t, cause = ex[:m], ca[:m]

        # ---- truth for exposed spells inside the evaluation window
        if cf.size:
            ex0, ca0 = ex[m:], ca[m:]
            s_cf = cur_start[cf]
            t1 = _time_outcomes(s_cf, exit_t[cf], cause[cf])
            t0 = _time_outcomes(s_cf, ex0, ca0)
            d1 = np.minimum(np.where(np.isfinite(exit_t[cf]), exit_t[cf], END_T) - s_cf, 182) / 7
            d0 = np.minimum(np.where(np.isfinite(ex0), ex0, END_T) - s_cf, 182) / 7
            eff0 = np.ones((cf.size, len(EFFECT_KEYS)))
            eff0[:, 2] = 0.0
            rec = world.records_minutes[cur_m[cf]]
            c1 = _expected_26(_contact_rates(world, cur_m[cf], cur_g[cf], s_cf, eff[cf]), d1, rec)
            c0 = _expected_26(_contact_rates(world, cur_m[cf], cur_g[cf], s_cf, eff0), d0, rec)
            diff = {**{k: t1[k] - t0[k] for k in t1}, **{k: c1[k] - c0[k] for k in c1}}
            for j in range(T):
                sel = in_win[j, cf]
                if sel.any():
                    n_truth[j] += sel.sum()
                    truth[j] += [np.nansum(diff[k][sel]) for k in _TRUTH_STATS]
                    for i, k in enumerate(_TRUTH_STATS):
                        full = sel & (s_cf + 7 * _HORIZON[k] <= world.trial_slut[j] + 1)
                        n_full[j, i] += full.sum()
                        truth_full[j, i] += np.nansum(diff[k][full])

        # ---- record spells
        start_i = cur_start.astype(np.int64)
        closed = np.isfinite(exit_t)
        slut_i = np.where(closed, np.floor(np.where(closed, exit_t, 0)), -1).astype(np.int64)
        slut_i = np.where(closed, np.maximum(slut_i, start_i), -1)
        w0 = start_i // 7
        w1 = np.where(closed, slut_i // 7, NW - 1)
        code = np.empty(m, np.int16)
        for g in np.unique(cur_g):
            sel = cur_g == g
            code[sel] = _draw_code(rng, world, P.GROUPS[g], int(sel.sum()))
        gap0 = np.full(m, -1, np.int64)
        gap1 = np.full(m, -1, np.int64)
        long_ = (w1 - w0 >= 10) & (rng.random(m) < P.P_INTERRUPT)
        if long_.any():
            gl = rng.integers(1, 4, m)
            room = (w1 - w0 - 4 - gl).clip(0)
            g0 = w0 + 2 + np.floor(rng.random(m) * (room + 1)).astype(np.int64)
            gap0 = np.where(long_, g0, -1)
            gap1 = np.where(long_, g0 + gl - 1, -1)
        for k, v in (("person", cur_p), ("muni", cur_m), ("grp", cur_g), ("start", start_i),
                     ("exit", slut_i), ("cause", cause), ("code", code), ("gap0", gap0),
                     ("gap1", gap1)):
            recs[k].append(v)
        segs.append((cur_p, w0, w1, code))

        # ---- what follows each exit
        nxt_p, nxt_m, nxt_start, nxt_g = [], [], [], []
        # self-support: a run of >= MIN_JOB_RUN empty weeks, then maybe a new spell
        ss = closed & ((cause == P.R_JOB) | (cause == P.R_ANDET))
        su = closed & (cause == P.R_UDD)
        su_len = P.SU_RUN[0] + _geom(rng, 1.0 / P.SU_RUN[1], m)
        su_end = np.minimum(w1 + su_len, NW - 1)
        if su.any():
            segs.append((cur_p[su], w1[su] + 1, su_end[su],
                         _draw_code(rng, world, "su", int(su.sum()))))
        back_from = np.where(su, su_end, w1)
        gapw = P.MIN_JOB_RUN + _geom(rng, P.HAZ_RETURN, m)
        new_w = back_from + 1 + gapw
        new_day = new_w * 7 + rng.integers(0, 7, m)
        ret = (ss | su) & (new_day < END_T)
        if ret.any():
            rp = cur_p[ret]
            mv = rng.random(rp.size) < P.P_MOVE
            mm = cur_m[ret].copy()
            if mv.any():
                same_region = rng.random(rp.size) < 0.5
                cand = rng.choice(len(world.codes_k), size=rp.size, p=world.weights)
                # same-region moves: redraw among the region's municipalities
                for r in np.unique(world.region[mm[mv & same_region]]):
                    idx_r = np.nonzero(world.region == r)[0]
                    pr = world.weights[idx_r] / world.weights[idx_r].sum()
                    sel = mv & same_region & (world.region[mm] == r)
                    cand[sel] = rng.choice(idx_r, size=int(sel.sum()), p=pr)
                mm = np.where(mv, cand, mm)
            sd = new_day[ret].astype(float)
            ag = _year_of_day(sd) - foedselsaar[rp]
            nxt_p.append(rp)
            nxt_m.append(mm)
            nxt_start.append(sd)
            nxt_g.append(_choose_group(rng, ag, herk[rp], udd[rp], sd))
        # another benefit: next spell from the following Monday, same municipality
        an = closed & (cause == P.R_ANDEN) & ((w1 + 1) * 7 < END_T)
        if an.any():
            cum = np.cumsum(P.TRANS[cur_g[an]], axis=1)
            to = (cum < rng.random(int(an.sum()))[:, None]).sum(axis=1).astype(np.int8)
            nxt_p.append(cur_p[an])
            nxt_m.append(cur_m[an])
            nxt_start.append(((w1[an] + 1) * 7).astype(float))
            nxt_g.append(np.minimum(to, P.NG - 1).astype(np.int8))
        # pension, death/emigration: codes up to the data end
        for rk, cat in ((P.R_PEN, "pension"), (P.R_DOED, "doed_udvandret")):
            sel = closed & (cause == rk) & (w1 + 1 < NW)
            if sel.any():
                segs.append((cur_p[sel], w1[sel] + 1, np.full(int(sel.sum()), NW - 1),
                             _draw_code(rng, world, cat, int(sel.sum()))))
        if nxt_p:
            cur_p = np.concatenate(nxt_p)
            cur_m = np.concatenate(nxt_m)
            cur_start = np.concatenate(nxt_start)
            cur_g = np.concatenate(nxt_g)
        else:
            cur_p = np.zeros(0, np.int64)

    R = {k: np.concatenate(v) for k, v in recs.items()}
    order = np.lexsort((R["start"], R["person"]))
    R = {k: v[order] for k, v in R.items()}
    ns = R["person"].size

    # ---- weekly matrix
    mat = np.zeros((n, NW), np.int16)
    sp = np.concatenate([s[0] for s in segs])
    s0 = np.concatenate([s[1] for s in segs])
    s1 = np.concatenate([s[2] for s in segs])
    sc = np.concatenate([s[3] for s in segs])
    ln = (s1 - s0 + 1).clip(0)
    rows = np.repeat(sp, ln)
    cols = np.repeat(s0 - np.cumsum(ln) + ln, ln) + np.arange(ln.sum())
    mat[rows, cols] = np.repeat(sc, ln)
    g = R["gap0"] >= 0
    if g.any():
        gl = R["gap1"][g] - R["gap0"][g] + 1
        rows = np.repeat(R["person"][g], gl)
        cols = np.repeat(R["gap0"][g] - np.cumsum(gl) + gl, gl) + np.arange(gl.sum())
        mat[rows, cols] = 0

    # ---- contacts
    kont = _contacts(rng, world, R)

    pid = pa.array([f"P{pid_offset + i + 1:07d}" for i in range(n)], pa.string())
    kk = pa.array(list(world.codes_k), pa.string())
    start_d = R["start"].astype("int32") + _DAY0_EPOCH
    slut = R["exit"]
    cl = slut >= 0
    forl = pa.table({
        "person_id": _dict_col(R["person"], pid),
        "kommune_kode": _dict_col(R["muni"], kk),
        "ydelsesgruppe": _dict_col(R["grp"], P.GROUPS),
        "start_dato": pa.array(start_d, pa.date32()),
        "slut_dato": pa.array((slut + _DAY0_EPOCH).astype("int32"), pa.date32(), mask=~cl),
        "afgang": _dict_col(R["cause"].clip(0), _AFGANG_OF_RISK.tolist(), mask=~cl),
        "koen": _dict_col(kvinde[R["person"]].astype(np.int8), ["M", "K"]),
        "foedselsaar": pa.array(foedselsaar[R["person"]].astype("int16"), pa.int16()),
        "herkomst": _dict_col(herk[R["person"]], contract.HERKOMST),
        "uddannelse": _dict_col(udd[R["person"]], contract.UDDANNELSE),
    })
    ks = kont["spell"]
    kont_tab = pa.table({
        "person_id": _dict_col(R["person"][ks], pid),
        "kommune_kode": _dict_col(R["muni"][ks], kk),
        "dato": pa.array((kont["day"] + _DAY0_EPOCH).astype("int32"), pa.date32()),
        "type": _dict_col(kont["type"], _TYPES),
        "kanal": _dict_col((kont["kanal"] - 1).clip(0), _KANALER, mask=kont["kanal"] == 0),
        "attest": _dict_col((kont["attest"] - 1).clip(0), _ATTESTS, mask=kont["attest"] == 0),
        # NaN -> null (missing), not a NaN value
        "minutter": pa.array(kont["minutter"], pa.float64(), from_pandas=True),
        "udgift_kr": pa.array(kont["udgift_kr"], pa.float64(), from_pandas=True),
    })
    dictionary = pa.array(world.codes, pa.string())
    cols = {"person_id": pid}
    for j, name in enumerate(week_columns()):
        c = mat[:, j]
        cols[name] = _dict_col((c.astype(np.int32) - 1).clip(0), dictionary, mask=c == 0)
    uge = pa.table(cols)
    del mat
    return _ChunkOut(forl, kont_tab, uge, truth, n_truth, truth_full, n_full)


_DAY0_EPOCH = (DAY0 - dt.date(1970, 1, 1)).days


_TYPES = ("samtale", "laegeattest", "rehabiliteringsteam", "tilbud")
_ATTESTS = ("LAE285", "LAE125", "LAE265")                  # codes 1, 2, 3 (0 = none)
_KANALER = ("fysisk", "telefon", "video", "digital")       # codes 1..4 (0 = none)


def _contacts(rng: np.random.Generator, world: _World, R: dict) -> dict[str, np.ndarray]:
    """Contacts of the spells in ``R`` as integer-coded arrays (see _TYPES/_ATTESTS/_KANALER)."""
    ns = R["person"].size
    start = R["start"]
    closed = R["exit"] >= 0
    days = np.where(closed, R["exit"] - start + 1, END_T - start).astype(float)
    # effects of the spells (recomputed from exposure)
    exposed = ((world.trial_start[:, R["muni"]] <= start[None, :])
               & world.trial_groups[:, R["grp"]])
    eff = np.ones((ns, len(EFFECT_KEYS)))
    eff[:, 2] = 0.0
    for j in range(len(world.trials)):
        e = exposed[j]
        if e.any():
            mult = world.eff[j]
            eff[e] *= np.where(np.arange(len(mult)) == 2, 1.0, mult)
            eff[e, 2] += mult[2]
    rates = _contact_rates(world, R["muni"], R["grp"], start.astype(float), eff)
    parts = []
    for typ, key, attest in ((0, "samtale", 0), (1, "lae285", 1), (1, "lae125", 2),
                             (2, "rehab", 0), (3, "tilbud", 0)):
        cnt = rng.poisson(rates[key] * days / 7.0)
        spell = np.repeat(np.arange(ns), cnt)
        day = start[spell] + np.floor(rng.random(spell.size) * days[spell]).astype(np.int64)
        parts.append((typ, attest, spell, day))
        if typ == 2:  # every team case comes with an LÆ 265 certificate
            parts.append((1, 3, spell, day))
    spell = np.concatenate([p[2] for p in parts])
    day = np.concatenate([p[3] for p in parts])
    typ = np.concatenate([np.full(p[2].size, p[0], np.int8) for p in parts])
    attest = np.concatenate([np.full(p[2].size, p[1], np.int8) for p in parts])
    nc = spell.size
    kanal = np.zeros(nc, np.int8)
    is_s = typ == 0
    u = rng.random(nc)
    fys = is_s & (u < rates["p_fysisk"][spell])
    kanal[fys] = 1
    other = is_s & ~fys
    u2 = rng.random(nc)
    cum = np.cumsum([s for _, s in P.KANAL_OVRIGE])
    assert tuple(c for c, _ in P.KANAL_OVRIGE) == _KANALER[1:]
    kanal[other] = 2 + np.searchsorted(cum, u2[other] * cum[-1], side="right").clip(0, 2)
    mean_by_kanal = np.array([0.0] + [P.MINUTTER[c] for c in _KANALER])
    mean_by_type = np.array([0.0] + [P.MINUTTER[t] for t in _TYPES[1:]])
    mean_min = np.where(is_s, mean_by_kanal[kanal], mean_by_type[typ])
    minutter = np.round(rng.gamma(P.MINUTTER_SHAPE, 1.0 / P.MINUTTER_SHAPE, nc) * mean_min
                        * rates["min_factor"][spell])
    minutter[~world.records_minutes[R["muni"][spell]]] = np.nan
    fee = np.array([np.nan] + [P.GEBYR[a] for a in _ATTESTS])
    udgift = fee[attest]
    tb = typ == 3
    udgift[tb] = np.round(rng.gamma(2.0, P.TILBUD_UDGIFT_MEAN / 2.0, int(tb.sum())))
    # at most one identical contact per person and day (an exact duplicate row would be
    # rejected by ingest as 'dublet')
    person = R["person"][spell]
    mkey = np.nan_to_num(minutter, nan=-1.0)
    ukey = np.nan_to_num(udgift, nan=-1.0)
    order = np.lexsort((ukey, mkey, kanal, attest, typ, day, person))
    same = np.zeros(nc, bool)
    if nc > 1:
        a, b = order[1:], order[:-1]
        same[1:] = ((person[a] == person[b]) & (day[a] == day[b]) & (typ[a] == typ[b])
                    & (kanal[a] == kanal[b]) & (attest[a] == attest[b])
                    & (mkey[a] == mkey[b]) & (ukey[a] == ukey[b]))
    order = order[~same]
    return {"spell": spell[order], "day": day[order], "type": typ[order],
            "kanal": kanal[order], "attest": attest[order], "minutter": minutter[order],
            "udgift_kr": udgift[order]}


def _dict_col(indices: np.ndarray, dictionary: Sequence[str] | pa.Array,
              mask: np.ndarray | None = None) -> pa.DictionaryArray:
    """A dictionary-encoded text column (written to Parquet as plain text)."""
    d = dictionary if isinstance(dictionary, pa.Array) else pa.array(list(dictionary), pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32), pa.int32(),
                                                   mask=mask), d)


# --------------------------------------------------------------------------- writing
class _Writer:
    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self._pq: pq.ParquetWriter | None = None
        self._fh = None
        self._csv = None

    def write(self, table: pa.Table) -> None:
        if self.fmt == "parquet":
            if self._pq is None:
                # dictionary-encoded text columns are read back as plain text
                self._pq = pq.ParquetWriter(self.path, table.schema, compression="zstd",
                                            store_schema=False)
            self._pq.write_table(table, row_group_size=max(1, table.num_rows))
        else:
            table = pa.table({n: (c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c)
                              for n, c in zip(table.column_names, table.columns)})
            if self._fh is None:
                self._fh = open(self.path, "wb")
                self._csv = pacsv.CSVWriter(self._fh, table.schema,
                                            write_options=pacsv.WriteOptions(
                                                include_header=True, quoting_style="needed"))
            self._csv.write_table(table)

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
        if self._csv is not None:
            self._csv.close()
            self._fh.close()


def _chunks(n_per_k: np.ndarray, chunk_persons: int) -> list[np.ndarray]:
    out, cur, tot = [], [], 0
    for i, c in enumerate(n_per_k):
        cur.append(i)
        tot += c
        if tot >= chunk_persons:
            out.append(np.array(cur))
            cur, tot = [], 0
    if cur:
        out.append(np.array(cur))
    return out


def simulate(out_dir: str | os.PathLike, scale: str = "small", seed: int = 0,
             effects: Any = None, corrupt: bool = False, *, fmt: str = "parquet",
             n_persons: int | None = None, chunk_persons: int = 50_000,
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Simulate a complete raw data set into ``out_dir`` and return its path.

    Parameters
    ----------
    scale: ``"small"`` (4 000 persons, ≈ 10 k spells; a few seconds), ``"medium"``
        (100 000 persons, ≈ 10 % of national) or ``"national"`` (1 000 000 persons).
    seed: the files are byte-identical for the same seed, scale and options.
    effects: ``None`` = :data:`DEFAULT_EFFECTS`; ``{}`` or ``"none"`` = no planted effect
        (:data:`NO_EFFECTS`); a mapping trial id → {effect: value} with keys of
        :data:`EFFECT_KEYS` (missing keys = no effect); or a path to a TOML/JSON file of
        that shape.
    corrupt: also write a deliberately corrupted copy to ``<out_dir>-korrupt`` (see
        :func:`evaluering.simulate.corrupt_copy`).
    fmt: ``"parquet"`` (default) or ``"csv"`` for the three registers.
    n_persons: override the scale's number of persons.
    chunk_persons: persons per chunk (peak memory grows with it). The random streams are
        per chunk, so the files depend on it: keep the default for reproducible files.
    """
    if scale not in SCALES and n_persons is None:
        raise InputError(f"unknown scale '{scale}'", expected="small, medium or national")
    if fmt not in ("parquet", "csv"):
        raise InputError(f"unknown format '{fmt}'", expected="parquet or csv")
    n_total = int(n_persons if n_persons is not None else SCALES[scale])
    if n_total < 1:
        raise InputError("n_persons must be positive")
    trials = load_forsoeg(forsoeg_nordjylland_path())
    world = _build_world(int(seed), effects, trials)
    n_per_k = _persons_per_kommune(world, n_total)
    chunks = _chunks(n_per_k, chunk_persons)
    out_dir = Path(out_dir)
    ext = ".parquet" if fmt == "parquet" else ".csv"
    T = len(trials)
    truth = np.zeros((T, len(_TRUTH_STATS)))
    n_truth = np.zeros(T)
    truth_full = np.zeros((T, len(_TRUTH_STATS)))
    n_full = np.zeros((T, len(_TRUTH_STATS)))
    counts = {"forloeb": 0, "kontakter": 0, "ugestatus": 0}
    with atomic_dir(out_dir) as tmp:
        writers = {r: _Writer(tmp / f"{r}{ext}", fmt) for r in counts}
        try:
            offset = 0
            for ci, kidx in enumerate(chunks):
                res = _simulate_chunk(world, int(seed), ci, kidx, n_per_k[kidx], offset)
                offset += int(n_per_k[kidx].sum())
                for r, tab in (("forloeb", res.forloeb), ("kontakter", res.kontakter),
                               ("ugestatus", res.ugestatus)):
                    writers[r].write(tab)
                    counts[r] += tab.num_rows
                truth += res.truth
                n_truth += res.n_truth
                truth_full += res.truth_full
                n_full += res.n_full
                del res
                if progress is not None:
                    progress(ci + 1, len(chunks))
        finally:
            for w in writers.values():
                w.close()
        ref = resources.files("evaluering.reference")
        (tmp / "ydelseskoder.toml").write_bytes(
            ref.joinpath("ydelseskoder_simulator.toml").read_bytes())
        (tmp / "forsoeg.toml").write_bytes(forsoeg_nordjylland_path().read_bytes())
        sandhed = _sandhed(world, trials, truth, n_truth, truth_full, n_full, seed, scale,
                           n_total, counts)
        from evaluering._atomic import write_json

        write_json(tmp / "sandhed.json", sandhed)
    if corrupt:
        from evaluering.simulate.corrupt import corrupt_copy

        corrupt_copy(out_dir, out_dir.with_name(out_dir.name + "-korrupt"), seed=seed)
    return out_dir


def _sandhed(world, trials, truth, n_truth, truth_full, n_full, seed, scale, n_total,
             counts) -> dict:
    keys = list(EFFECT_KEYS)
    per = {}
    for j, t in enumerate(trials):
        nt = n_truth[j]
        ud = {"hazard_job": float(world.eff[j, 0])}
        for i, k in enumerate(_TRUTH_STATS):
            ud[k] = float(truth[j, i] / nt) if nt > 0 else None
        per[t.id] = {
            "navn": t.navn,
            "maalgruppe": list(t.maalgruppe),
            "kommuner": list(t.kommuner),
            "start_pr_kommune": {k: t.start_for(k).isoformat() for k in t.kommuner},
            "slut": t.slut.isoformat(),
            "parametre": {k: float(world.eff[j, i]) for i, k in enumerate(keys)},
            "n_forloeb_eksponeret": int(nt),
            "effekt": {k: (round(v, 10) if v is not None else None) for k, v in ud.items()},
            # the same, restricted per outcome to spells whose horizon (13/26/52 weeks; 26 for
            # the resource outcomes) ends by the trial's slut (full follow-up in the window)
            "effekt_fuld_opfoelgning": {"hazard_job": float(world.eff[j, 0]), **{
                k: (round(float(truth_full[j, i] / n_full[j, i]), 10) if n_full[j, i] > 0
                    else None) for i, k in enumerate(_TRUTH_STATS)}},
            "n_forloeb_fuld_opfoelgning": {k: int(n_full[j, i])
                                           for i, k in enumerate(_TRUTH_STATS)},
        }
    return {
        "beskrivelse": "Sande (plantede) effekter i det simulerede datasæt. Simulated data: "
                       "the true effects planted by evaluering.simulate, per trial and "
                       "outcome id, in the units of the data contract's outcome ids.",
        "definitioner": TRUTH_DEFINITIONS,
        "enheder": {"hazard_job": "hazard ratio", "job_13_uger": "percentage points",
                    "job_26_uger": "percentage points", "job_52_uger": "percentage points",
                    "rmst_52_uger": "weeks", "samtaler_pr_forloeb": "count",
                    "andel_fysiske_samtaler": "percentage points",
                    "minutter_pr_forloeb": "minutes", "laegeattester_pr_forloeb": "count",
                    "rehab_pr_forloeb": "count", "udgift_pr_forloeb": "DKK"},
        "simulering": {"seed": int(seed), "scale": scale, "personer": int(n_total),
                       "raekker": counts, "uger": [week_columns()[0], week_columns()[-1]],
                       "data_slut": DATA_END.isoformat(),
                       "nul_effekt": bool(np.all(world.eff[:, [0, 1, 3, 4, 5]] == 1)
                                          and np.all(world.eff[:, 2] == 0)),
                       "kommuner_uden_minutter": sorted(
                           world.codes_k[~world.records_minutes].tolist()),
                       "national_brud": "2020-01-01: job hazard x exp(-0.05); meetings x0.85 "
                                        "and 10 pp fewer in person for spells starting from "
                                        "2020; LÆ 285 rate x0.35 (optional nationwide); "
                                        "2017-07-01: a-dagpenge job hazard x exp(-0.05) "
                                        "(RAM -> FLEUR)"},
        "forsoeg": per,
    }
