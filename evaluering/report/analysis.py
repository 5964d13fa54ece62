"""Analysis orchestration for the report: one estimate per trial × outcome.

This module only *calls* the toolkit's estimators and inference functions and reshapes their
results; it computes no statistic itself (aggregating additive sums and counts of the panel to
coarser periods is data preparation, not estimation).

Per trial (``Forsoeg``) and outcome id:

* panel outcomes (``job_13_uger`` … ``udgift_pr_forloeb``): Callaway & Sant'Anna (2021)
  group-time ATTs (:func:`evaluering.estimators.cs.callaway_santanna`) on the municipality ×
  period cells of the trial's target group, each cell a cell mean weighted by its number of
  spells (``panel=False``: repeated cross-sections of cells, clustered by municipality), so
  the estimand is the spell-weighted ATT and municipalities with empty periods are kept.
  Comparison group: never and not-yet treated municipalities (``kontrol="notyet"``), minus
  the municipalities excluded from control in the catalogue. Periods: half-years by default
  (every North Jutland round starts on 1 January or 1 July), only up to the trial's ``slut``.
  Pre-trend test (``pretrend_p``): with ``"ri"`` the permutation p-value of the mean
  pre-period ATT(g,t) from the same draws; with ``"bootstrap"`` CS's chi2 Wald pre-test, which
  is unreliable with few treated municipalities (docs/calibration.md section 3).
  Inference (``inferens``): ``"ri"`` (default) — randomization inference
  over municipalities (:func:`evaluering.inference.randomization.randomization_inference`,
  the trial's start dates permuted across the treated and control municipalities), p-value and
  interval (inversion of the constant-effect model) from the permutation distribution;
  ``"bootstrap"`` — CS multiplier bootstrap with one Mammen weight per municipality (the
  paper's Algorithm 1, clustered), fast but it over-rejects with few treated municipalities.
* ``hazard_job``: discrete-time hazard DiD (:func:`evaluering.survival.discrete_hazard_did`,
  cloglog link, so ``exp(beta)`` is a hazard ratio) on the aggregated survival table
  (``overlevelse.parquet``: municipality × ydelsesgruppe × start quarter × exposure × week),
  duration-week, municipality (× ydelsesgruppe) and start-quarter fixed effects, exposure of
  the spell as the treatment, standard errors clustered by municipality; the p-value (and so
  the verdict) from the wild cluster score bootstrap with the null imposed.

Multiplicity: p-values are adjusted over the declared family with Holm's method by default
(:func:`evaluering.inference.adjust_pvalues`): by default one family per trial (the outcomes
declared for it in the catalogue; ``familie = "alle"`` pools every trial × outcome).

Verdict rule (documented in docs/report.md and the methods appendix): an effect is
"bedre"/"dårligere" when its multiplicity-adjusted p-value is below ``alpha`` and its sign
agrees/disagrees with the outcome's desired direction (:data:`RETNING`); otherwise "ingen
påviselig forskel". A record whose exposed spells involve fewer than ``min_persons`` persons
is suppressed (numbers set to None, verdict "undertrykt").
"""

from __future__ import annotations

import datetime as dt
import math
import time
import warnings
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from evaluering.errors import EstimationError, InputError

__all__ = ["AnalysisOptions", "Analysis", "TrialAnalysis", "RETNING", "ENHED", "run_analysis",
           "analyse_trial", "save_trial_analysis", "load_trial_analysis", "verdict", "trial_panel"]

# desired direction of each outcome: +1 higher is better, -1 lower is better
RETNING: Mapping[str, int] = MappingProxyType({
    "job_13_uger": +1, "job_26_uger": +1, "job_52_uger": +1, "hazard_job": +1,
    "rmst_52_uger": -1,
    "samtaler_pr_forloeb": -1, "andel_fysiske_samtaler": -1, "minutter_pr_forloeb": -1,
    "laegeattester_pr_forloeb": -1, "rehab_pr_forloeb": -1, "udgift_pr_forloeb": -1,
})
# unit in which the effect is reported (resultater.json keeps the estimator's scale:
# shares as fractions, hazard as a hazard ratio)
ENHED: Mapping[str, str] = MappingProxyType({
    "job_13_uger": "andel", "job_26_uger": "andel", "job_52_uger": "andel",
    "andel_fysiske_samtaler": "andel", "hazard_job": "hazard ratio", "rmst_52_uger": "uger",
    "samtaler_pr_forloeb": "antal", "laegeattester_pr_forloeb": "antal",
    "rehab_pr_forloeb": "antal", "minutter_pr_forloeb": "minutter",
    "udgift_pr_forloeb": "kr.",
})
VERDICTS = ("bedre", "ingen påviselig forskel", "dårligere")


@dataclass(frozen=True)
class AnalysisOptions:
    """Options of the analysis (the ``[analyse]`` table of the report config)."""

    periode: str = "halvaar"          # "halvaar" or "kvartal"
    kontrol: str = "notyet"           # "notyet" or "never"
    inferens: str = "ri"              # "ri" (default: holds with few treated) or "bootstrap"
    n_boot: int = 999
    n_perm: int = 199                 # RI draws (Monte Carlo unless exact is cheaper)
    familie: str = "forsoeg"          # multiplicity family: "forsoeg" (per trial) or "alle"
    n_score_boot: int = 9999          # wild score-bootstrap draws for hazard_job
    seed: int = 2017
    alpha: float = 0.05
    justering: str = "holm"           # "holm" or "bh"
    min_persons: int = 5
    max_uge: int = 52
    foelsomhed: bool = True           # also estimate the alternative specifications

    def __post_init__(self) -> None:
        if self.periode not in ("halvaar", "kvartal"):
            raise InputError(f"analyse.periode must be 'halvaar' or 'kvartal', got {self.periode!r}")
        if self.kontrol not in ("notyet", "never"):
            raise InputError(f"analyse.kontrol must be 'notyet' or 'never', got {self.kontrol!r}")
        if self.inferens not in ("bootstrap", "ri"):
            raise InputError(f"analyse.inferens must be 'bootstrap' or 'ri', got {self.inferens!r}")
        if self.familie not in ("forsoeg", "alle"):
            raise InputError(f"analyse.familie must be 'forsoeg' or 'alle', got {self.familie!r}")
        if self.justering not in ("holm", "bh"):
            raise InputError(f"analyse.justering must be 'holm' or 'bh', got {self.justering!r}")
        if not 0 < self.alpha < 1:
            raise InputError("analyse.alpha must lie in (0, 1)")


@dataclass(frozen=True)
class Analysis:
    """What the report prints: records, result objects and the trial panels behind them."""

    records: pd.DataFrame                      # one row per trial × outcome (resultater.json)
    results: Mapping[tuple[str, str], Any]     # (forsoeg, udfald) -> EstimateResult
    panels: Mapping[str, pd.DataFrame]         # forsoeg id -> aggregated trial panel
    survival: Mapping[str, pd.DataFrame]       # forsoeg id -> survival cells of the trial
    persons: pd.DataFrame                      # distinct persons per trial × kommune × rolle
    period_persons: pd.DataFrame               # distinct persons behind figure points
    sensitivity: pd.DataFrame                  # alternative specifications per trial × outcome
    options: AnalysisOptions
    seconds: Mapping[str, float] = field(default_factory=dict)
    km_horizon: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # trial -> group -> week
    rambachan_roth: pd.DataFrame = field(default_factory=pd.DataFrame)  # RR bounds, all trials
    trials: Mapping[str, "TrialAnalysis"] = field(default_factory=dict)  # per trial, as estimated
    notebooks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # trial id -> audit info


def verdict(p_adj: float | None, estimate: float | None, udfald: str, alpha: float = 0.05,
            null: float = 0.0) -> str:
    """The plain-language verdict of one effect (see the module docstring)."""
    if p_adj is None or estimate is None or not np.isfinite(p_adj) or not np.isfinite(estimate):
        return "ingen påviselig forskel"
    if p_adj >= alpha or estimate == null:
        return "ingen påviselig forskel"
    good = (estimate - null) * RETNING.get(udfald, +1) > 0
    return "bedre" if good else "dårligere"


# --------------------------------------------------------------------------- panels
def _period_of(d: dt.date, periode: str) -> int:
    if periode == "kvartal":
        return d.year * 4 + (d.month - 1) // 3
    return d.year * 2 + (d.month - 1) // 6


def _period_label(nr: int, periode: str) -> str:
    from evaluering.panels import period_label

    return period_label(int(nr), periode)


def trial_panel(panel_kvartal: pd.DataFrame, forsoeg, periode: str = "halvaar") -> pd.DataFrame:
    """The trial's municipality × period panel (target group summed, excluded dropped).

    Built from :func:`evaluering.panels.forsoeg_panel` (quarterly); for ``halvaar`` the
    additive sums and counts are summed over the two quarters of each half-year and the
    outcome means recomputed as sum / count. Columns: ``kommune_kode, rolle, periode_nr,
    periode, t, kohorte`` (t of the start period; 0 = never treated), ``<o>_sum``, ``<o>_n``,
    ``<o>_personer`` and ``<o>`` for every panel outcome, ``forloeb_startet``,
    ``personer_startet``, ``forloeb_eksponeret``. Only periods up to the trial's ``slut``.
    """
    from evaluering.panels import forsoeg_panel
    from evaluering.panels.sql import PANEL_OUTCOMES

    fp = forsoeg_panel(panel_kvartal, forsoeg, "kvartal", drop_excluded=True)
    end_q = _period_of(forsoeg.slut, "kvartal")
    fp = fp[fp["periode_nr"] <= end_q].copy()
    outs = [o for o, _ in PANEL_OUTCOMES]
    add = ["forloeb_startet", "personer_startet", "forloeb_eksponeret"]
    for o in outs:
        add += [f"{o}_sum", f"{o}_n", f"{o}_personer"]
    add = [c for c in add if c in fp.columns]
    if periode == "kvartal":
        fp["p_nr"] = fp["periode_nr"]
    else:
        y, q = np.divmod(fp["periode_nr"].to_numpy(), 4)
        fp["p_nr"] = y * 2 + q // 2
    g = fp.groupby(["kommune_kode", "rolle", "p_nr"], sort=True)
    out = g[add].sum().reset_index()
    # persons: a person may start spells in both quarters of a half-year, so the sum is an
    # upper bound; the larger quarter is a lower bound. Disclosure uses the lower bound.
    for c in [c for c in add if c.endswith("personer") or c == "personer_startet"]:
        out[f"{c}_min"] = g[c].max().to_numpy()
    for o in outs:
        if f"{o}_sum" in out and f"{o}_n" in out:
            n = out[f"{o}_n"].astype(float)
            out[o] = np.where(n > 0, out[f"{o}_sum"].astype(float) / n.where(n > 0), np.nan)
    out = out.rename(columns={"p_nr": "periode_nr"})
    out["periode"] = [_period_label(int(v), periode) for v in out["periode_nr"]]
    base = int(out["periode_nr"].min())
    out["t"] = (out["periode_nr"] - base + 1).astype("int64")
    koh = {}
    for k in out["kommune_kode"].unique():
        s = forsoeg.start_for(k)
        koh[k] = 0 if s is None else max(_period_of(s, periode) - base + 1, 1)
    out["kohorte"] = out["kommune_kode"].map(koh).astype("int64")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- estimators
def _cs(data: pd.DataFrame, o: str, opts: AnalysisOptions, bootstrap: bool,
        base_period: str = "varying"):
    from evaluering.estimators.cs import callaway_santanna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return callaway_santanna(data, o, None, "t", "kohorte", weights=f"{o}_n",
                                 cluster="kommune_kode", panel=False, control=opts.kontrol,
                                 bootstrap=bootstrap, n_boot=opts.n_boot, seed=opts.seed,
                                 alpha=opts.alpha, base_period=base_period)


RR_MBAR = (0.0, 0.5, 1.0)     # Rambachan-Roth relative-magnitudes bounds printed in the report
RR_E_POST = 3                 # their target: the average effect in the first (up to) four periods


def _rambachan_roth(tp: pd.DataFrame, f, o: str, opts: AnalysisOptions) -> list[dict[str, Any]]:
    """Rambachan-Roth sensitivity of one panel outcome (relative magnitudes; descriptive: the
    covariance is the analytic clustered one, see docs/sensitivity.md).

    RR need the universal base period (pre-period coefficients as levels relative to e = -1),
    so this is a second CS fit of the same cells; its post-period ATT(g,t) and overall ATT
    equal the main (varying-base) fit's (tests/test_honest_cs.py). The main fit keeps the
    varying base because under permuted start dates (randomization inference) the universal
    base can leave no estimable ATT(g,t)."""
    from evaluering.inference.honest import honest_did_cs

    try:
        res = _cs(tp[tp[f"{o}_n"] > 0], o, opts, bootstrap=False, base_period="universal")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ev = res.components["event"]
            e_max = int(ev.loc[ev["att"].notna(), "e"].max())   # short follow-up: fewer periods
            rm = honest_did_cs(res, Mbar_grid=list(RR_MBAR), e_post=min(RR_E_POST, e_max))
    except (ValueError, EstimationError, np.linalg.LinAlgError) as exc:
        return [{"forsoeg": f.id, "udfald": o, "Mbar": None, "lb": None, "ub": None,
                 "breakdown": None, "note": f"ikke beregnet: {exc}"}]
    return [{"forsoeg": f.id, "udfald": o, "Mbar": _num(r.Mbar), "lb": _num(r.lb),
             "ub": _num(r.ub), "breakdown": _num(rm.breakdown), "note": None}
            for r in rm.summary().itertuples()]


def _panel_effect(tp: pd.DataFrame, o: str, opts: AnalysisOptions) -> dict[str, Any]:
    d = tp[tp[f"{o}_n"] > 0]
    if d.empty or not (d["kohorte"] > 0).any() or not (d["kohorte"] == 0).any():
        raise EstimationError(f"no treated or no control cells with '{o}'")
    if opts.inferens == "bootstrap":
        res = _cs(d, o, opts, bootstrap=True)
        s = res.summary().iloc[0]
        return {"result": res, "estimate": s["estimate"], "se": s["se"],
                "ci": (s["ci_low"], s["ci_high"]), "p": s["p"], "method": s["method"],
                "inference": "cluster-bootstrap (Mammen, kommune)",
                "pretrend_p": res.to_dict()["info"].get("pretest_p")}
    from evaluering.inference.randomization import pretrend_statistic, randomization_inference

    res = _cs(d, o, opts, bootstrap=False)
    s = res.summary().iloc[0]
    # the pre-trend test from the same permutation draws: the mean pre-period ATT(g,t),
    # two-sided (the chi2 Wald pre-test has a near-singular covariance with ~11 treated
    # municipalities and rejects every true null: docs/calibration.md section 3)
    ri = randomization_inference(lambda frame: _cs(frame, o, opts, bootstrap=False), d,
                                 "kommune_kode", cohort_col="kohorte", time="t",
                                 n_perm=opts.n_perm, seed=opts.seed, ci=True, outcome=o,
                                 linear_in_outcome=True, alpha=opts.alpha,
                                 extra_stats={"pretest": pretrend_statistic("mean")})
    return {"result": res, "estimate": s["estimate"], "se": s["se"], "ci": ri.ci, "p": ri.p,
            "method": s["method"], "inference": f"randomization inference ({ri.method}, kommune)",
            "pretrend_p": ri.extra["pretest"].p, "ri": ri}


def _with_rr(eff: dict[str, Any], tp: pd.DataFrame, f, o: str, opts: AnalysisOptions) -> dict[str, Any]:
    eff["rr"] = _rambachan_roth(tp, f, o, opts) if opts.foelsomhed else []
    return eff


def _sensitivity(tp: pd.DataFrame, tp_alt: pd.DataFrame, f, opts: AnalysisOptions) -> list[dict[str, Any]]:
    """The panel outcomes under alternative specifications (analytic clustered CIs): the
    other period length, and never-treated municipalities only as comparison group."""
    alt_periode = "kvartal" if opts.periode == "halvaar" else "halvaar"
    specs = [(f"periode={alt_periode}", tp_alt, opts),
             ("kontrol=never" if opts.kontrol == "notyet" else "kontrol=notyet", tp,
              _replace(opts, kontrol="never" if opts.kontrol == "notyet" else "notyet"))]
    out = []
    for o in f.udfald:
        if o == "hazard_job":
            continue
        for name, panel, o_opts in specs:
            rec = {"forsoeg": f.id, "udfald": o, "specifikation": name, "estimate": None,
                   "ci_low": None, "ci_high": None}
            d = panel[panel[f"{o}_n"] > 0]
            try:
                res = _cs(d, o, o_opts, bootstrap=False)
                s = res.summary().iloc[0]
                rec.update(estimate=_num(s["estimate"]), ci_low=_num(s["ci_low"]),
                           ci_high=_num(s["ci_high"]))
            except (EstimationError, ValueError) as exc:
                rec["note"] = str(exc)
            out.append(rec)
    return out


def trial_survival_cells(overlevelse: pd.DataFrame, forsoeg, max_uge: int = 52) -> pd.DataFrame:
    """Survival cells of the trial's target group, treated and control municipalities,
    spells started up to ``slut``; ``eksponeret`` = the spell is exposed to this trial."""
    s = overlevelse[overlevelse["ydelsesgruppe"].isin(list(forsoeg.maalgruppe))]
    koder = set(forsoeg.kommuner) | set(forsoeg.kontrol_kommuner())
    s = s[s["kommune_kode"].isin(koder)]
    end_q = _period_of(forsoeg.slut, "kvartal")
    s = s[s["start_kvartal_nr"] <= end_q]
    s = s[s["uge"] <= max_uge]
    s = s.assign(eksponeret=(s["forsoeg_eksponeret"] == forsoeg.id).astype("int64"),
                 behandlet=s["kommune_kode"].isin(set(forsoeg.kommuner)).astype("int64"))
    return s.reset_index(drop=True)


def _hazard_effect(cells: pd.DataFrame, forsoeg, opts: AnalysisOptions) -> dict[str, Any]:
    from evaluering.survival import discrete_hazard_did

    units = ["kommune_kode"] + (["ydelsesgruppe"] if len(forsoeg.maalgruppe) > 1 else [])
    res = discrete_hazard_did(cells, events="n_job", at_risk="n_risiko", treated="eksponeret",
                              post=None, duration="uge", unit_effects=units,
                              time_effects="start_kvartal", cluster="kommune_kode",
                              max_week=opts.max_uge, alpha=opts.alpha,
                              bootstrap=opts.n_score_boot, seed=opts.seed)
    d = res.to_dict()
    info = d["info"]
    # few treated municipalities: the clustered Wald p over-rejects, so the verdict uses the
    # wild cluster score-bootstrap p (Kline & Santos 2012; null imposed); the interval stays
    # the clustered one and the methods appendix says so
    p = info.get("p_score_bootstrap", d["p"])
    return {"result": res, "estimate": info["hazard_ratio"], "se": d["se"],
            "ci": (info["hazard_ratio_ci_low"], info["hazard_ratio_ci_high"]),
            "p": p, "method": "discrete-hazard-did (cloglog)",
            "inference": "wild cluster score bootstrap (kommune); CI cluster-robust",
            "pretrend_p": None}


# --------------------------------------------------------------------------- persons
def count_persons(processed: Path, forsoeg: Sequence, periode: str) -> pd.DataFrame:
    """Distinct persons per trial × municipality × outcome with a spell in the target group
    started up to ``slut`` (all, and exposed), computed in DuckDB over the outcome tables."""
    import duckdb

    from evaluering.panels.sql import PANEL_OUTCOMES

    con = duckdb.connect()
    try:
        t = str(Path(processed) / "tid_til_job.parquet")
        r = str(Path(processed) / "ressourcer.parquet")
        e = str(Path(processed) / "eksponering.parquet")
        frames = []
        for f in forsoeg:
            grp = ", ".join(f"'{g}'" for g in f.maalgruppe)
            cols = []
            for o, a in PANEL_OUTCOMES:
                cols.append(f"COUNT(DISTINCT CASE WHEN {a}.{o} IS NOT NULL THEN t.person_id END) AS n_{o}")
                cols.append(f"COUNT(DISTINCT CASE WHEN {a}.{o} IS NOT NULL AND x.eksponeret "
                            f"THEN t.person_id END) AS eks_{o}")
            cols.append("COUNT(DISTINCT CASE WHEN t.varighed_uger IS NOT NULL THEN t.person_id END) AS n_hazard_job")
            cols.append("COUNT(DISTINCT CASE WHEN t.varighed_uger IS NOT NULL AND x.eksponeret "
                        "THEN t.person_id END) AS eks_hazard_job")
            cols.append("COUNT(DISTINCT t.person_id) AS n_personer")
            cols.append("COUNT(*) AS n_forloeb")
            sql = f"""
                SELECT x.kommune_kode, x.rolle, {', '.join(cols)}
                FROM read_parquet('{e}') x
                JOIN read_parquet('{t}') t ON t.spell_id = x.spell_id
                JOIN read_parquet('{r}') r ON r.spell_id = x.spell_id
                WHERE x.forsoeg_id = ? AND x.ydelsesgruppe IN ({grp})
                  AND x.start_dato <= ? AND x.rolle <> 'udelukket'
                GROUP BY x.kommune_kode, x.rolle ORDER BY x.kommune_kode
            """
            df = con.execute(sql, [f.id, f.slut]).df()
            df.insert(0, "forsoeg", f.id)
            frames.append(df)
    finally:
        con.close()
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def total_persons(processed: Path, forsoeg: Sequence) -> dict[tuple[str, str], tuple[int, int]]:
    """(all, exposed) distinct persons per trial × outcome over all the trial's municipalities
    (treated and control; not a sum over municipalities), in DuckDB over the outcome tables."""
    import duckdb

    from evaluering.panels.sql import PANEL_OUTCOMES

    p = Path(processed)
    out: dict[tuple[str, str], tuple[int, int]] = {}
    con = duckdb.connect()
    try:
        for f in forsoeg:
            grp = ", ".join(f"'{g}'" for g in f.maalgruppe)
            conds = {o: f"{a}.{o} IS NOT NULL" for o, a in PANEL_OUTCOMES}
            conds["hazard_job"] = "t.varighed_uger IS NOT NULL"
            cols = []
            for o, c in conds.items():
                cols.append(f"COUNT(DISTINCT CASE WHEN {c} THEN t.person_id END)")
                cols.append(f"COUNT(DISTINCT CASE WHEN {c} AND x.eksponeret THEN t.person_id END)")
            row = con.execute(f"""
                SELECT {', '.join(cols)} FROM read_parquet('{p / "eksponering.parquet"}') x
                JOIN read_parquet('{p / "tid_til_job.parquet"}') t ON t.spell_id = x.spell_id
                JOIN read_parquet('{p / "ressourcer.parquet"}') r ON r.spell_id = x.spell_id
                WHERE x.forsoeg_id = ? AND x.ydelsesgruppe IN ({grp}) AND x.start_dato <= ?
                  AND x.rolle <> 'udelukket'""", [f.id, f.slut]).fetchone()
            for i, o in enumerate(conds):
                out[(f.id, o)] = (int(row[2 * i]), int(row[2 * i + 1]))
    finally:
        con.close()
    return out


def period_persons(processed: Path, forsoeg: Sequence, periode: str) -> pd.DataFrame:
    """Distinct persons behind the figure points, in DuckDB over the outcome tables.

    Rows ``(forsoeg, gruppe, noegle)`` with one count column ``n_<udfald>`` per panel outcome:
    ``gruppe = 'behandlet'/'kontrol'`` with ``noegle`` = period number (trend lines),
    ``gruppe = 'e'`` with ``noegle`` = event time (period minus the municipality's start
    period, treated municipalities; event-study points), and ``gruppe = 'kommune'`` with
    ``kommune_kode`` and ``noegle`` = period number (one treated municipality's points; target
    groups counted together, so a person in two groups counts once). Periods are quarters or half-years
    (``year*4+q`` / ``year*2+h``) as in :func:`trial_panel`.
    """
    import duckdb

    from evaluering.panels.sql import PANEL_OUTCOMES

    def per(col: str) -> str:
        if periode == "kvartal":
            return f"({col})"
        return f"((({col}) // 4) * 2 + (({col}) % 4) // 2)"

    p = Path(processed)
    frames = []
    con = duckdb.connect()
    try:
        for f in forsoeg:
            grp = ", ".join(f"'{g}'" for g in f.maalgruppe)
            cnt = ", ".join(f"COUNT(DISTINCT CASE WHEN {a}.{o} IS NOT NULL THEN t.person_id END) AS n_{o}"
                            for o, a in PANEL_OUTCOMES)
            base = f"""FROM read_parquet('{p / "eksponering.parquet"}') x
                JOIN read_parquet('{p / "tid_til_job.parquet"}') t ON t.spell_id = x.spell_id
                JOIN read_parquet('{p / "ressourcer.parquet"}') r ON r.spell_id = x.spell_id
                WHERE x.forsoeg_id = ? AND x.ydelsesgruppe IN ({grp}) AND x.start_dato <= ?
                  AND x.rolle <> 'udelukket'"""
            a = con.execute(f"SELECT x.rolle AS gruppe, {per('x.start_kvartal_nr')} AS noegle, {cnt} "
                            f"{base} GROUP BY 1, 2", [f.id, f.slut]).df()
            b = con.execute(f"SELECT 'e' AS gruppe, {per('x.start_kvartal_nr')} - "
                            f"{per('x.kohorte_kvartal_nr')} AS noegle, {cnt} {base} "
                            "AND x.rolle = 'behandlet' GROUP BY 1, 2", [f.id, f.slut]).df()
            c = con.execute(f"SELECT 'kommune' AS gruppe, x.kommune_kode, "
                            f"{per('x.start_kvartal_nr')} AS noegle, {cnt} {base} "
                            "AND x.rolle = 'behandlet' GROUP BY 1, 2, 3", [f.id, f.slut]).df()
            d = pd.concat([a, b, c], ignore_index=True)
            d.insert(0, "forsoeg", f.id)
            frames.append(d)
    finally:
        con.close()
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(out):
        out["noegle"] = out["noegle"].astype("int64")
    return out


# --------------------------------------------------------------------------- one trial
TRIAL_RECORD_KEYS = ("forsoeg", "udfald", "estimate", "se", "ci_low", "ci_high", "p", "method",
                     "inference", "n_municipalities_treated", "n_municipalities_control",
                     "pretrend_p", "enhed", "note")
_TRIAL_FORMAT = 1


@dataclass(frozen=True)
class TrialAnalysis:
    """Everything estimated for one trial: one record and one result object per declared outcome.

    Produced by :func:`analyse_trial` (the built-in analysis) or by an analyst's notebook that
    starts from it and replaces outcomes (:meth:`replace_outcome`); the report consumes it through
    :func:`run_analysis` (``trial_analyses=``), which adds what is the report's to decide: person
    counts from the outcome tables, disclosure suppression, the multiplicity adjustment and the
    verdicts. ``records`` hold unadjusted p-values.

    ``summary()`` is the disclosure-safe view (estimates of outcomes whose exposed spells involve
    fewer than ``min_persons`` persons are blanked); ``to_dict()`` is complete (for the report's
    private work folder, never for publication).
    """

    forsoeg: str
    options: AnalysisOptions
    records: pd.DataFrame                      # one row per outcome (TRIAL_RECORD_KEYS)
    results: Mapping[str, Any]                 # udfald -> EstimateResult
    sensitivity: pd.DataFrame                  # alternative specifications (may be empty)
    n_persons: Mapping[str, tuple[int, int]]   # udfald -> (persons, exposed persons)
    seconds: float = 0.0
    source: str = "analyse_trial"              # who estimated it (a notebook's name)
    rambachan_roth: pd.DataFrame = field(default_factory=pd.DataFrame)  # RR bounds per outcome

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", MappingProxyType(dict(self.results)))
        object.__setattr__(self, "n_persons", MappingProxyType(
            {k: (int(v[0]), int(v[1])) for k, v in self.n_persons.items()}))

    def summary(self, min_persons: int | None = None) -> pd.DataFrame:
        """One row per outcome: estimate, interval, unadjusted p, method, inference, persons;
        blanked (``suppressed``) where the exposed persons are 1..k-1 (k = ``min_persons``,
        default the options' threshold)."""
        k = self.options.min_persons if min_persons is None else int(min_persons)
        df = self.records[["forsoeg", "udfald", "estimate", "ci_low", "ci_high", "p", "method",
                           "inference", "pretrend_p", "enhed"]].copy()
        n = [self.n_persons.get(o, (0, 0)) for o in df["udfald"]]
        df["n_persons"] = [a for a, _ in n]
        df["n_persons_exposed"] = [b for _, b in n]
        small = lambda v: 0 < v < k  # noqa: E731
        df["suppressed"] = [small(b) for b in df["n_persons_exposed"]]
        for c in ("estimate", "ci_low", "ci_high", "p", "pretrend_p"):
            df[c] = df[c].astype(float).where(~df["suppressed"])
        for c in ("n_persons", "n_persons_exposed"):
            df[c] = pd.array([None if small(v) else v for v in df[c]], dtype="Int64")
        return df

    def plot(self, udfald: str | None = None, ax=None):
        """The event-time plot of one outcome's result (default: the first outcome that has one).
        Not disclosure controlled: for the analyst's screen, not for publication."""
        names = [udfald] if udfald is not None else list(self.records["udfald"])
        for o in names:
            res = self.results.get(o)
            if res is not None and (udfald is not None or "event" in res.components):
                return res.plot(ax=ax)
        raise KeyError(f"no result to plot for {udfald or 'any outcome'}")

    def to_dict(self) -> dict[str, Any]:
        """Complete and JSON-safe (includes numbers on small groups: keep it private)."""
        from dataclasses import asdict

        from evaluering.results import frame_records

        return {"format": _TRIAL_FORMAT, "forsoeg": self.forsoeg, "source": self.source,
                "options": asdict(self.options), "seconds": float(self.seconds),
                "records": frame_records(self.records[list(TRIAL_RECORD_KEYS)]),
                "results": {k: v.to_dict() for k, v in self.results.items()},
                "component_columns": {k: {c: list(f.columns) for c, f in v.components.items()}
                                      for k, v in self.results.items()},
                "sensitivity": frame_records(self.sensitivity),
                "rambachan_roth": frame_records(self.rambachan_roth),
                "n_persons": {k: list(v) for k, v in self.n_persons.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrialAnalysis":
        from evaluering.results import EstimateResult

        if d.get("format") != _TRIAL_FORMAT:
            raise InputError(f"trial analysis of format {d.get('format')!r}; this version reads "
                             f"format {_TRIAL_FORMAT}")
        recs = pd.DataFrame.from_records(d["records"], columns=list(TRIAL_RECORD_KEYS))
        for c in ("estimate", "se", "ci_low", "ci_high", "p", "pretrend_p"):
            recs[c] = recs[c].astype(float)
        results = {}
        for k, v in d["results"].items():
            r = EstimateResult.from_dict(v)
            cols = (d.get("component_columns") or {}).get(k, {})
            comps = {c: f[[x for x in cols.get(c, f.columns) if x in f.columns]]
                     for c, f in r.components.items()}
            results[k] = _replace(r, components=comps)   # JSON keys are sorted: restore order
        return cls(forsoeg=str(d["forsoeg"]), options=AnalysisOptions(**d["options"]),
                   records=recs, results=results,
                   sensitivity=pd.DataFrame.from_records(d.get("sensitivity") or []),
                   rambachan_roth=pd.DataFrame.from_records(
                       d.get("rambachan_roth") or [],
                       columns=["forsoeg", "udfald", "Mbar", "lb", "ub", "breakdown", "note"]),
                   n_persons={k: tuple(v) for k, v in d["n_persons"].items()},
                   seconds=float(d.get("seconds", 0.0)), source=str(d.get("source", "")))

    def replace_outcome(self, udfald: str, result, *, p: float | None = None,
                        ci: tuple[float, float] | None = None, inference: str | None = None,
                        pretrend_p: float | None = None, note: str | None = None,
                        source: str | None = None) -> "TrialAnalysis":
        """A copy with ``udfald`` estimated by ``result`` (an ``EstimateResult``): estimate,
        se, ci, p, method and inference are taken from it unless given. The outcome must be one
        of the trial's declared outcomes (the family is declared in the catalogue)."""
        recs = self.records.copy()
        hit = recs["udfald"] == udfald
        if not hit.any():
            raise InputError(f"'{udfald}' is not an outcome of trial '{self.forsoeg}'",
                             expected="one of " + ", ".join(recs["udfald"]))
        lo, hi = ci if ci is not None else result.ci
        i = recs.index[hit][0]
        upd = {"estimate": _num(result.estimate), "se": _num(result.se), "ci_low": _num(lo),
               "ci_high": _num(hi), "p": _num(result.p if p is None else p),
               "method": result.method, "inference": inference or result.inference,
               "pretrend_p": _num(pretrend_p if pretrend_p is not None
                                  else result.info.get("pretest_p")), "note": note}
        for c, v in upd.items():
            recs.at[i, c] = np.nan if v is None and c not in ("method", "inference", "note") else v
        res = dict(self.results)
        res[udfald] = result
        return _replace(self, records=recs, results=res, source=source or self.source)


def save_trial_analysis(analysis: TrialAnalysis, path: str | Path) -> Path:
    """Write a :class:`TrialAnalysis` as JSON, atomically (complete: keep it private)."""
    from evaluering._atomic import write_json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, analysis.to_dict())
    return path


def load_trial_analysis(path: str | Path) -> TrialAnalysis:
    """Read a :class:`TrialAnalysis` written by :func:`save_trial_analysis`."""
    import json

    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("trial analysis not written (did the notebook call "
                         "save_trial_analysis(..., resultat_fil)?)", file=str(path)) from exc
    except ValueError as exc:
        raise InputError(f"not a trial analysis: {exc}", file=str(path)) from exc
    return TrialAnalysis.from_dict(d)


def _require_tables(p: Path) -> None:
    for name in ("panel_kvartal", "overlevelse", "tid_til_job", "ressourcer", "eksponering"):
        if not (p / f"{name}.parquet").is_file():
            raise InputError("outcome table missing (run `evaluering build` first)",
                             file=str(p / f"{name}.parquet"))


def _estimate_trial(panel: pd.DataFrame, overlevelse: pd.DataFrame,
                    totals: Mapping[tuple[str, str], tuple[int, int]], f, opts: AnalysisOptions,
                    say) -> tuple[TrialAnalysis, pd.DataFrame, pd.DataFrame]:
    t1 = time.perf_counter()
    tp = trial_panel(panel, f, opts.periode)
    cells = trial_survival_cells(overlevelse, f, opts.max_uge)
    n_tr = int(tp.loc[tp["rolle"] == "behandlet", "kommune_kode"].nunique())
    n_co = int(tp.loc[tp["rolle"] == "kontrol", "kommune_kode"].nunique())
    rows: list[dict[str, Any]] = []
    results: dict[str, Any] = {}
    rr: list[dict[str, Any]] = []
    for o in f.udfald:
        say(f"  {f.id} × {o}")
        rec: dict[str, Any] = {"forsoeg": f.id, "udfald": o, "estimate": None, "se": None,
                               "ci_low": None, "ci_high": None, "p": None, "method": None,
                               "inference": None, "n_municipalities_treated": n_tr,
                               "n_municipalities_control": n_co, "pretrend_p": None,
                               "enhed": ENHED.get(o, ""), "note": None}
        try:
            eff = (_hazard_effect(cells, f, opts) if o == "hazard_job"
                   else _with_rr(_panel_effect(tp, o, opts), tp, f, o, opts))
        except EstimationError as exc:
            rec["note"] = f"ikke estimeret: {exc}"
            rows.append(rec)
            continue
        results[o] = eff["result"]
        rr.extend(eff.get("rr", []))
        rec.update(estimate=_num(eff["estimate"]), se=_num(eff["se"]),
                   ci_low=_num(eff["ci"][0]), ci_high=_num(eff["ci"][1]), p=_num(eff["p"]),
                   method=eff["method"], inference=eff["inference"],
                   pretrend_p=_num(eff["pretrend_p"]))
        rows.append(rec)
    sens: list[dict[str, Any]] = []
    if opts.foelsomhed:
        alt = "kvartal" if opts.periode == "halvaar" else "halvaar"
        sens = _sensitivity(tp, trial_panel(panel, f, alt), f, opts)
    recs = pd.DataFrame(rows, columns=list(TRIAL_RECORD_KEYS))
    for c in ("estimate", "se", "ci_low", "ci_high", "p", "pretrend_p"):
        recs[c] = recs[c].astype(float)
    ta = TrialAnalysis(forsoeg=f.id, options=opts, records=recs, results=results,
                       sensitivity=pd.DataFrame(sens), rambachan_roth=pd.DataFrame(rr),
                       n_persons={o: totals.get((f.id, o), (0, 0)) for o in f.udfald},
                       seconds=time.perf_counter() - t1)
    return ta, tp, cells


def analyse_trial(processed_dir: str | Path, forsoeg, options: AnalysisOptions | None = None,
                  progress=None) -> TrialAnalysis:
    """The built-in analysis of one trial (``forsoeg``: a ``Forsoeg``) from a processed folder.

    The same estimators, options and seeds as the report's own analysis, so a notebook that
    returns it unchanged reproduces the report's numbers for the trial exactly. A notebook may
    change the estimation options (``options``: periods, comparison group, inference, draws,
    seed) and replace outcomes (:meth:`TrialAnalysis.replace_outcome`); the report keeps its
    own multiplicity family, adjustment, ``alpha`` and disclosure threshold.
    """
    opts = options or AnalysisOptions()
    p = Path(processed_dir)
    _require_tables(p)
    panel = pd.read_parquet(p / "panel_kvartal.parquet")
    overlevelse = pd.read_parquet(p / "overlevelse.parquet")
    totals = total_persons(p, [forsoeg])
    ta, _, _ = _estimate_trial(panel, overlevelse, totals, forsoeg, opts, progress or (lambda m: None))
    return ta


def _check_trial(ta: TrialAnalysis, f) -> TrialAnalysis:
    """A trial analysis from outside (a notebook) must cover exactly the declared outcomes."""
    if ta.forsoeg != f.id:
        raise InputError(f"the analysis given for trial '{f.id}' is of trial '{ta.forsoeg}'")
    have = list(ta.records["udfald"])
    missing = [o for o in f.udfald if o not in have]
    extra = [o for o in have if o not in f.udfald]
    if missing or extra or len(set(have)) != len(have):
        raise InputError(f"the analysis of trial '{f.id}' ({ta.source}) must have one record per "
                         f"declared outcome; missing: {missing or '-'}, not declared: {extra or '-'}",
                         expected=", ".join(f.udfald))
    for c in TRIAL_RECORD_KEYS:
        if c not in ta.records.columns:
            raise InputError(f"the analysis of trial '{f.id}' lacks the record column '{c}'")
    order = {o: i for i, o in enumerate(f.udfald)}
    recs = ta.records.sort_values("udfald", key=lambda s: s.map(order)).reset_index(drop=True)
    return _replace(ta, records=recs)


KM_GROUPS = ("Forsøg, efter start", "Sammenligning, samme periode")


def km_person_horizon(processed: Path, forsoeg: Sequence, k: int) -> dict[str, dict[str, int]]:
    """The last duration week at which at least ``k`` distinct persons are at risk, per trial and
    Kaplan–Meier group of the report's figure (exposed spells; control spells started from the
    first start quarter): the ``k``-th largest of the persons' longest spell durations, since a
    person is at risk in week w when one of their spells lasts w weeks or more. 0 when the group
    has fewer than ``k`` persons. DuckDB over the outcome tables."""
    import duckdb

    p = Path(processed)
    out: dict[str, dict[str, int]] = {}
    con = duckdb.connect()
    try:
        for f in forsoeg:
            grp = ", ".join(f"'{g}'" for g in f.maalgruppe)
            first = min(f.start_for(x) for x in f.kommuner)
            q0 = first.year * 4 + (first.month - 1) // 3
            rows = con.execute(f"""
                WITH s AS (
                    SELECT t.person_id, t.varighed_uger AS d,
                           CASE WHEN x.eksponeret THEN 0
                                WHEN x.rolle = 'kontrol' AND x.start_kvartal_nr >= ? THEN 1 END AS g
                    FROM read_parquet('{p / "eksponering.parquet"}') x
                    JOIN read_parquet('{p / "tid_til_job.parquet"}') t ON t.spell_id = x.spell_id
                    WHERE x.forsoeg_id = ? AND x.ydelsesgruppe IN ({grp}) AND x.start_dato <= ?
                      AND x.rolle <> 'udelukket' AND t.varighed_uger IS NOT NULL
                ), pm AS (SELECT g, person_id, MAX(d) AS m FROM s WHERE g IS NOT NULL GROUP BY 1, 2)
                SELECT g, m FROM (SELECT g, m, ROW_NUMBER() OVER (PARTITION BY g ORDER BY m DESC)
                                  AS r FROM pm) WHERE r = ?""", [q0, f.id, f.slut, int(k)]).fetchall()
            got = {int(g): int(m) for g, m in rows}
            out[f.id] = {lab: got.get(i, 0) for i, lab in enumerate(KM_GROUPS)}
    finally:
        con.close()
    return out


# --------------------------------------------------------------------------- main
def _check_family_resolution(forsoeg: Sequence, opts: AnalysisOptions) -> None:
    """Randomization inference with ``n_perm`` draws cannot give p below 1/(n_perm+1); after
    Holm over a family of m outcomes the smallest adjusted p is m/(n_perm+1). If that is not
    below alpha no panel outcome could ever be judged: refuse instead of printing verdicts
    that cannot differ from "ingen påviselig forskel"."""
    if opts.inferens != "ri" or opts.justering != "holm":
        return
    sizes = ([sum(len(f.udfald) for f in forsoeg)] if opts.familie == "alle"
             else [len(f.udfald) for f in forsoeg])
    m = max(sizes, default=0)
    if m and m / (opts.n_perm + 1) >= opts.alpha:
        need = math.ceil(m / opts.alpha * 2) - 1
        raise InputError(f"with {m} outcomes in a multiplicity family and n_perm = {opts.n_perm}, "
                         f"the smallest Holm-adjusted randomization p-value is {m}/{opts.n_perm + 1} "
                         f">= alpha = {opts.alpha}: no effect could ever be detected; raise "
                         f"analyse.n_perm (e.g. to {need}) or use familie = \"forsoeg\"")


def run_analysis(processed_dir: str | Path, forsoeg: Sequence, options: AnalysisOptions | None = None,
                 progress=None, *, trial_analyses: Mapping[str, TrialAnalysis] | None = None
                 ) -> Analysis:
    """Estimate every declared trial × outcome from a processed folder with outcome tables.

    ``processed_dir`` must hold ``panel_kvartal.parquet``, ``overlevelse.parquet``,
    ``tid_til_job.parquet``, ``ressourcer.parquet`` and ``eksponering.parquet`` (written by
    :func:`evaluering.outcomes.build_outcomes`). ``trial_analyses`` (trial id →
    :class:`TrialAnalysis`, e.g. from a notebook) replaces the built-in estimation of those
    trials; their panels, survival cells and every person count are still computed here, from
    the outcome tables, with the trial analysis's own period length. Returns an :class:`Analysis`.
    """
    from evaluering.inference.multiple import adjust_pvalues

    opts = options or AnalysisOptions()
    _check_family_resolution(forsoeg, opts)
    given = dict(trial_analyses or {})
    unknown = sorted(set(given) - {f.id for f in forsoeg})
    if unknown:
        raise InputError(f"trial analyses given for trials not in the catalogue: {', '.join(unknown)}")
    say = progress or (lambda m: None)
    p = Path(processed_dir)
    _require_tables(p)
    t0 = time.perf_counter()
    panel = pd.read_parquet(p / "panel_kvartal.parquet")
    overlevelse = pd.read_parquet(p / "overlevelse.parquet")
    persons = count_persons(p, forsoeg, opts.periode)
    totals = total_persons(p, forsoeg)
    seconds: dict[str, float] = {"laes": time.perf_counter() - t0}

    trials: dict[str, TrialAnalysis] = {}
    panels: dict[str, pd.DataFrame] = {}
    surv: dict[str, pd.DataFrame] = {}
    for f in forsoeg:
        if f.id in given:
            ta = _check_trial(given[f.id], f)
            say(f"  {f.id}: analyse fra {ta.source}")
            panels[f.id] = trial_panel(panel, f, ta.options.periode)
            surv[f.id] = trial_survival_cells(overlevelse, f, ta.options.max_uge)
        else:
            ta, panels[f.id], surv[f.id] = _estimate_trial(panel, overlevelse, totals, f, opts, say)
        trials[f.id] = ta
        seconds[f"forsoeg:{f.id}"] = ta.seconds
    # persons behind figure points, in each trial's own period length
    pp_frames = []
    for periode in sorted({ta.options.periode for ta in trials.values()}):
        fs = [f for f in forsoeg if trials[f.id].options.periode == periode]
        pp_frames.append(period_persons(p, fs, periode))
    pp = pd.concat(pp_frames, ignore_index=True) if pp_frames else pd.DataFrame()
    horizon = km_person_horizon(p, forsoeg, opts.min_persons)

    rec_df = pd.concat([trials[f.id].records for f in forsoeg], ignore_index=True)
    rec_df.insert(rec_df.columns.get_loc("p") + 1, "p_adj", np.nan)
    # person counts are the report's (from the outcome tables), never the trial analysis's
    rec_df["n_persons"] = [totals.get((r.forsoeg, r.udfald), (0, 0))[0] for r in rec_df.itertuples()]
    rec_df["n_persons_exposed"] = [totals.get((r.forsoeg, r.udfald), (0, 0))[1]
                                   for r in rec_df.itertuples()]
    rec_df["suppressed"] = (rec_df["n_persons_exposed"] > 0) & (rec_df["n_persons_exposed"] < opts.min_persons)
    # suppressed records stay in the multiple-testing family (it is declared in the catalogue)
    # but print nothing
    if opts.familie == "alle":
        rec_df["p_adj"] = adjust_pvalues(rec_df["p"].astype(float).to_numpy(), opts.justering)
    else:  # one family per trial: the trial's declared outcomes
        for _, idx in rec_df.groupby("forsoeg", sort=False).groups.items():
            rec_df.loc[idx, "p_adj"] = adjust_pvalues(
                rec_df.loc[idx, "p"].astype(float).to_numpy(), opts.justering)
    verdicts = []
    for r in rec_df.itertuples():
        if r.suppressed:
            verdicts.append("undertrykt")
        elif r.estimate is None or (isinstance(r.estimate, float) and math.isnan(r.estimate)):
            verdicts.append("ikke estimeret")
        else:
            verdicts.append(verdict(_num(r.p_adj), _num(r.estimate), r.udfald, opts.alpha,
                                    null=1.0 if r.udfald == "hazard_job" else 0.0))
    rec_df["verdict"] = verdicts
    for c in ("estimate", "se", "ci_low", "ci_high", "p", "p_adj", "pretrend_p"):
        rec_df[c] = rec_df[c].astype(float)
        rec_df.loc[rec_df["suppressed"], c] = np.nan
    rec_df["p_adj_method"] = opts.justering
    results = {(fid, o): r for fid, ta in trials.items() for o, r in ta.results.items()}
    sens = [ta.sensitivity for ta in trials.values() if len(ta.sensitivity)]
    rrs = [ta.rambachan_roth for ta in trials.values() if len(ta.rambachan_roth)]
    return Analysis(records=rec_df, results=MappingProxyType(results),
                    panels=MappingProxyType(panels), survival=MappingProxyType(surv),
                    persons=persons, period_persons=pp,
                    sensitivity=pd.concat(sens, ignore_index=True) if sens else pd.DataFrame(),
                    options=opts, seconds=MappingProxyType(seconds),
                    km_horizon=MappingProxyType(horizon), trials=MappingProxyType(trials),
                    rambachan_roth=pd.concat(rrs, ignore_index=True) if rrs else pd.DataFrame())


def _num(x) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
