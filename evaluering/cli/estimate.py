"""``evaluering estimate``: run a DiD estimator on a CSV/Parquet panel.

The file is read here (estimators never read files). Methods are registered in ``METHODS``
(name → what the method needs and how to call it), so further methods (``sc``, ``sdid``) and
inference back-ends (``--inference wild|ri|placebo|jackknife``, registered in
``INFERENCE``) can be added without touching the option parsing.

Treatment conventions: a cohort value of 0, missing, or larger than every time means never
treated. With ``--cohort`` and a method that needs a treatment dummy, ``treatment = time >=
cohort``; with ``--treatment`` and a method that needs a cohort, ``cohort`` = the first period
in which the unit is treated (0 if never).

Default inference: the estimators' analytic standard errors, except ``sdid`` (randomization
inference over municipalities, ``ri``) and ``sc`` (``ri`` with several treated units; with one
treated unit ADH's in-space placebo test, which is then itself a permutation test). The SDID
placebo and jackknife (and SC placebo with several treated units) stay selectable but are
labelled descriptive in the output and in ``info["inference_note"]`` of ``--json``: the
calibration study (``docs/calibration.md``) measured their size with few treated units.

Headline ``estimate`` per method: ``cs`` the chosen ``--aggregation`` (default simple), ``sa``
the cell-share-weighted ATT, ``bjs`` the average over treated observations, ``twfe``/``did2x2``
the treatment coefficient, ``event`` the simple average of the post-period (e >= 0)
coefficients.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import typer

from evaluering.cli._common import echo, info
from evaluering.errors import InputError

# --------------------------------------------------------------------------- method registry


@dataclass(frozen=True)
class MethodSpec:
    needs: str  # "cohort" | "treatment" | "did2x2"
    run: Callable[..., object]
    controls: tuple[str, ...] = ()  # first = default; empty: the method has no control choice
    help: str = ""


def _run_did2x2(df, o):
    from evaluering.estimators.did import did2x2

    return did2x2(df, o["y"], "_group", "_post", covariates=o["covariates"], weights=o["weights"],
                  cluster=o["cluster"] or o["unit"])


def _run_twfe(df, o):
    from evaluering.estimators.did import twfe

    return twfe(df, o["y"], o["unit"], o["time"], "_treat", covariates=o["covariates"],
                weights=o["weights"], cluster=o["cluster"])


def _run_event(df, o):
    from evaluering.estimators.event_study import event_study

    return event_study(df, o["y"], o["unit"], o["time"], "_cohort", covariates=o["covariates"],
                       weights=o["weights"], cluster=o["cluster"])


def _run_sa(df, o):
    from evaluering.estimators.sunab import sun_abraham

    return sun_abraham(df, o["y"], o["unit"], o["time"], "_cohort",
                       control="last" if o["control"] in ("last", "notyet") else "never",
                       covariates=o["covariates"], weights=o["weights"], cluster=o["cluster"])


def _run_bjs(df, o):
    from evaluering.estimators.bjs import bjs_imputation

    return bjs_imputation(df, o["y"], o["unit"], o["time"], "_cohort", covariates=o["covariates"],
                          weights=o["weights"], cluster=o["cluster"])


def _run_cs(df, o):
    try:
        from evaluering.estimators.cs import callaway_santanna
    except ImportError as exc:  # pragma: no cover - module written by another engineer
        raise InputError("method 'cs' is not available in this installation") from exc
    return callaway_santanna(df, o["y"], o["unit"], o["time"], "_cohort",
                             covariates=o["covariates"], control=o["control"],
                             cluster=o["cluster"], aggregation=o["aggregation"],
                             weights=o["weights"])


def _run_sdid(df, o):
    from evaluering.estimators.synth import synthdid

    inf = o.get("inference", "ri")
    if inf == "ri":
        # the studentized RI statistic needs the jackknife SE (undefined with one treated unit)
        inf = "jackknife" if _n_treated(df, o["unit"]) >= 2 else "none"
    inf = inf if inf in ("placebo", "jackknife", "bootstrap") else "none"
    return synthdid(df, o["y"], o["unit"], o["time"], "_treat", covariates=o["covariates"],
                    inference=inf, seed=o.get("seed", 0))


def _n_treated(df, unit: str) -> int:
    return int(df.loc[df["_cohort"] > 0, unit].nunique())


def _run_sc(df, o):
    from evaluering.estimators.synth import synthetic_control

    return synthetic_control(df, o["y"], o["unit"], o["time"], "_treat",
                             covariates=o["covariates"],
                             placebo=o.get("inference", "placebo") == "placebo")


METHODS: dict[str, MethodSpec] = {
    "did2x2": MethodSpec("did2x2", _run_did2x2, help="2x2 regression DiD (single treatment date)"),
    "twfe": MethodSpec("treatment", _run_twfe, help="two-way fixed effects"),
    "event": MethodSpec("cohort", _run_event, help="dynamic TWFE event study"),
    "cs": MethodSpec("cohort", _run_cs, controls=("never", "notyet"), help="Callaway-Sant'Anna"),
    "sa": MethodSpec("cohort", _run_sa, controls=("never", "last", "notyet"),
                     help="Sun-Abraham (notyet = last-treated cohort as control)"),
    "bjs": MethodSpec("cohort", _run_bjs, help="Borusyak-Jaravel-Spiess imputation"),
    "sc": MethodSpec("treatment", _run_sc, help="synthetic control (Abadie-Diamond-Hainmueller)"),
    "sdid": MethodSpec("treatment", _run_sdid, help="synthetic difference-in-differences"),
}

# How each method computes se/ci/p when --inference is not given (sc: placebo instead when
# there is a single treated unit, see _default_inference).
DEFAULT_INFERENCE = {"sc": "ri", "sdid": "ri"}
# Methods whose estimate is linear in the outcome (the RI confidence interval is then cheap).
_LINEAR_IN_Y = {"did2x2", "twfe", "event", "cs", "sa", "bjs"}

# Measured size of the few-treated-units inference that stays selectable (docs/calibration.md,
# studies/calibration.py). Printed with every result that uses it.
_CALIBRATION_NOTE = {
    ("sdid", "placebo"): "the SDID placebo test rejected a true null in 20 % of 100 simulated "
                         "data sets with 11 of 98 municipalities treated (nominal 5 %)",
    ("sdid", "jackknife"): "the SDID jackknife is a normal approximation over the treated "
                           "units; it rejected a true null in {jk} (nominal 5 %)",
    ("sc", "placebo"): "with several treated units the SC placebo compares their average with "
                       "single-donor placebos (smoother); its size is not calibrated",
}
SDID_JACKKNIFE_RATE = ("6.0 % (MC se 1.7) of 200 simulated data sets with 11 of 98 "
                       "municipalities treated and 7.0 % (MC se 2.6) of 100 with 4 treated")


def _default_inference(method: str, data, o) -> str:
    inf = DEFAULT_INFERENCE.get(method, "analytic")
    if method == "sc" and _n_treated(data, o["unit"]) == 1:
        return "placebo"  # ADH's in-space placebo test: a permutation test with one treated unit
    return inf


def _inference_note(method: str, inference: str, data, o) -> str | None:
    """The 'descriptive' label for placebo/jackknife inference (None when not applicable)."""
    key = (method, inference)
    if key not in _CALIBRATION_NOTE:
        return None
    n_tr = _n_treated(data, o["unit"])
    if method == "sc" and n_tr == 1:
        return None
    text = _CALIBRATION_NOTE[key].format(jk=SDID_JACKKNIFE_RATE)
    return (f"{inference} inference is descriptive with few treated units ({n_tr} here): "
            f"{text}; docs/calibration.md. Use --inference ri (the default) for p-values and "
            "intervals.")

def _wild(method: str, data, o, res):
    """Wild cluster bootstrap (WCR, Rademacher, 9,999 draws) p-value and CI for the TWFE
    coefficient; the point estimate and analytic SE are kept."""
    if method != "twfe":
        raise InputError(f"--inference wild is available for twfe only, not {method}")
    import dataclasses

    from evaluering.inference.wild import wild_twfe

    wb = wild_twfe(data, o["y"], o["unit"], o["time"], "_treat", o["cluster"] or o["unit"],
                   covariates=o["covariates"], weights=o["weights"], seed=0)
    info = dict(res.info)
    info.update({"wild_B": wb.B_effective, "wild_weights": wb.bootstrap_weights,
                 "wild_method": wb.method, "analytic_p": res.p,
                 "analytic_ci": [res.ci[0], res.ci[1]]})
    return dataclasses.replace(res, p=wb.p, ci=wb.ci, inference="wild", info=info)


def _ri(method: str, data, o, res):
    """Randomization inference over units: the cohort labels (start dates) are permuted across
    units, keeping their multiset; exact when there are at most 10,000 assignments, otherwise
    999 Monte Carlo draws (seed 0). The point estimate is kept; ``p`` and ``ci`` come from the
    permutation distribution (the CI inverts a constant-effect model); ``se`` is left as the
    estimator's own (reported in ``info``)."""
    import dataclasses

    from evaluering.inference.randomization import randomization_inference

    spec = METHODS[method]
    o = {**o, "inference": "ri"}

    def estimator(d):
        d = _derive_treatment(d, o["time"], spec.needs)
        return spec.run(d, o)

    # SDID with several treated units: the statistic is the estimate over its jackknife SE
    # (studentized), which keeps its size when the treated units are noisier or quieter than a
    # random set of the same number (docs/calibration.md); the estimate itself otherwise.
    studentized = method == "sdid" and _n_treated(data, o["unit"]) >= 2
    stat = (lambda r: r.estimate / r.se) if studentized else "estimate"
    ri = randomization_inference(estimator, data, o["unit"], cohort_col="_cohort", time=o["time"],
                                 n_perm=999, seed=0, ci=method in _LINEAR_IN_Y, outcome=o["y"],
                                 linear_in_outcome=method in _LINEAR_IN_Y, stat=stat)
    info = dict(res.info)
    info.update({"ri_method": ri.method, "ri_assignments": ri.n_assignments,
                 "ri_possible": float(ri.n_possible),
                 "ri_statistic": "estimate / jackknife se" if studentized else "estimate",
                 "analytic_p": res.p, "analytic_ci": [res.ci[0], res.ci[1]]})
    return dataclasses.replace(res, p=ri.p, ci=ri.ci, inference="ri", info=info)


def _own(kind: str):
    """sc/sdid compute placebo/jackknife inference themselves (see _run_sc/_run_sdid)."""
    def check(method, data, o, res):
        if method not in ("sc", "sdid") or (method == "sc" and kind != "placebo"):
            raise InputError(f"--inference {kind} is available for "
                             f"{'sc and sdid' if kind == 'placebo' else 'sdid'} only, not {method}")
        return res
    return check


# Inference back-ends beyond the estimators' own analytic standard errors: name -> function
# (method, prepared data, options, analytic result) -> result.
INFERENCE: dict[str, Callable | None] = {"analytic": None, "wild": _wild, "ri": _ri,
                                         "placebo": _own("placebo"), "jackknife": _own("jackknife")}
AGGREGATIONS = ("simple", "group", "dynamic", "calendar")


# --------------------------------------------------------------------------- input handling


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; InputError (exit 2) if it cannot be read."""
    if not path.exists():
        raise InputError("file not found", file=str(path))
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".csv", ".csv.gz", ".txt"):
            import gzip

            opener = gzip.open if suffix.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8-sig", errors="replace") as fh:
                header = fh.readline()
            # Danish exports: ';' separator with decimal comma
            if header.count(";") > header.count(","):
                return pd.read_csv(path, sep=";", decimal=",", encoding="utf-8-sig")
            return pd.read_csv(path, encoding="utf-8-sig")
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad input
        raise InputError(f"cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                         file=str(path)) from exc
    raise InputError("unsupported file type", file=str(path), expected=".csv or .parquet")


def _numeric_col(df, col, path):
    v = pd.to_numeric(df[col], errors="coerce")
    bad = v.isna() & df[col].notna()
    if bad.any():
        raise InputError("has non-numeric values", file=str(path), column=col, expected="numbers")
    return v


def prepare(df: pd.DataFrame, path: Path, method: str, *, y, unit, time, cohort, treatment,
            covariates, cluster, weights) -> pd.DataFrame:
    """Check columns and derive ``_cohort`` / ``_treat`` / ``_group`` / ``_post`` as needed."""
    for col in [y, unit, time, cohort, treatment, cluster, weights, *covariates]:
        if col is not None and col not in df.columns:
            raise InputError("not in the file", file=str(path), column=col)
    out = df.copy()
    t = _numeric_col(out, time, path)
    if t.isna().any():
        raise InputError("has missing values", file=str(path), column=time)
    out[time] = t
    spec = METHODS[method]
    if cohort is not None:
        c = _numeric_col(out, cohort, path)
        never = c.isna() | (c == 0) | (c > t.max())
        out["_cohort"] = c.where(~never, 0.0)
    else:
        d = _numeric_col(out, treatment, path)
        if d.isna().any():
            raise InputError("has missing values", file=str(path), column=treatment)
        first = t.where(d > 0).groupby(out[unit]).transform("min")
        out["_cohort"] = first.fillna(0.0)
        switch_off = ((d <= 0) & (t >= first)).any()
        if switch_off and spec.needs != "treatment":
            info(f"note: '{treatment}' switches off for some units; the cohort is the first "
                 "treated period (treatment treated as absorbing)")
    treated_cohort = out["_cohort"] > 0
    if spec.needs in ("treatment", "did2x2"):
        if treatment is not None and spec.needs == "treatment":
            out["_treat"] = _numeric_col(out, treatment, path)
        else:
            out = _derive_treatment(out, time, "treatment")
    if spec.needs == "did2x2":
        dates = sorted(out.loc[treated_cohort, "_cohort"].unique())
        if len(dates) != 1:
            raise InputError(f"did2x2 needs a single treatment date, found {len(dates)} "
                             f"({', '.join(f'{x:g}' for x in dates[:6])}); use twfe, cs, sa or bjs",
                             file=str(path))
        out["_group"] = treated_cohort.astype(float)
        out["_post"] = (t >= dates[0]).astype(float)
    return out


def _derive_treatment(d: pd.DataFrame, time: str, needs: str) -> pd.DataFrame:
    """``_treat`` (and for did2x2 ``_group``/``_post``) from ``_cohort`` (0 = never)."""
    if needs == "cohort":
        return d
    d = d.copy()
    treated = d["_cohort"] > 0
    d["_treat"] = (treated & (d[time] >= d["_cohort"])).astype(float)
    if needs == "did2x2":
        dates = d.loc[treated, "_cohort"].unique()
        d["_group"] = treated.astype(float)
        d["_post"] = (d[time] >= (dates.min() if len(dates) else np.inf)).astype(float)
    return d


# --------------------------------------------------------------------------- output


def _print_table(res) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    tab = Table(title=f"evaluering estimate — {res.method}")
    for col in ("estimate", "se", "ci low", "ci high", "p", "obs", "units"):
        tab.add_column(col, justify="right")
    tab.add_row(f"{res.estimate:.6g}", f"{res.se:.6g}", f"{res.ci[0]:.6g}", f"{res.ci[1]:.6g}",
                f"{res.p:.4g}", f"{res.n_obs:,}", f"{res.n_units:,}")
    con.print(tab)
    for name, key in (("event", "e"), ("group", "group"), ("calendar", "time")):
        if name in res.components and len(res.components[name]):
            comp = res.components[name]
            t2 = Table(title=name)
            for col in (key, "att", "se"):
                t2.add_column(col, justify="right")
            for rec in comp.itertuples(index=False):
                r = rec._asdict()
                se = r.get("se", np.nan)
                t2.add_row(f"{r[key]:g}", f"{r['att']:.6g}",
                           "" if se is None or not np.isfinite(se) else f"{se:.6g}")
            con.print(t2)
    if "pretrend_p" in res.info and res.info["pretrend_p"] is not None:
        con.print(f"pre-trend test: F = {res.info.get('pretrend_F', float('nan')):.4g}, "
                  f"p = {res.info['pretrend_p']:.4g}")


def _json_safe(x):
    """Recursively make a structure JSON-safe (NaN/inf -> null, numpy -> Python)."""
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if x is None or isinstance(x, (str, int)):
        return x
    return str(x)


def register(app: typer.Typer) -> None:
    @app.command("estimate")
    def estimate(
        file: Path = typer.Argument(..., help="Panel as CSV or Parquet (one row per unit and period)."),
        method: str = typer.Option(..., "--method", "-m",
                                   help=f"Estimator: {', '.join(METHODS)}."),
        y: str = typer.Option(..., "--y", help="Outcome column."),
        unit: str = typer.Option(..., "--unit", help="Unit column (the group for repeated cross-sections)."),
        time: str = typer.Option(..., "--time", help="Integer period column."),
        cohort: str = typer.Option(None, "--cohort", help="First treated period (0/missing = never)."),
        treatment: str = typer.Option(None, "--treatment", help="0/1 treatment column."),
        control: str = typer.Option(None, "--control",
                                    help="Control group for cs (never | notyet) and sa (never | "
                                         "notyet = last-treated cohort); default never."),
        covariates: str = typer.Option(None, "--covariates", help="Comma-separated covariate columns."),
        cluster: str = typer.Option(None, "--cluster", help="Cluster column (default: the unit)."),
        aggregation: str = typer.Option("simple", "--aggregation",
                                        help="cs headline: simple, group, dynamic or calendar."),
        weights: str = typer.Option(None, "--weights", help="Weight column."),
        inference: str = typer.Option(None, "--inference",
                                      help="How se/ci/p are computed: analytic (default), wild "
                                           "(wild cluster bootstrap; twfe), ri (randomization "
                                           "inference over units; any method; default of sdid "
                                           "and of sc with several treated units), placebo "
                                           "(sc, sdid; descriptive with few treated units), "
                                           "jackknife (sdid; descriptive)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Estimate a difference-in-differences effect and print it."""
        method = method.lower()
        if method not in METHODS:
            raise InputError(f"unknown method '{method}'", expected=" | ".join(METHODS))
        if (cohort is None) == (treatment is None):
            raise InputError("give exactly one of --cohort and --treatment")
        spec = METHODS[method]
        if control is not None and not spec.controls:
            raise InputError(f"--control does not apply to {method} (twfe/event/did2x2 use the "
                             "regression's implicit comparisons; bjs always uses every untreated "
                             "observation: never and not-yet treated)")
        if control is None:
            control = spec.controls[0] if spec.controls else "never"
        elif control not in spec.controls:
            raise InputError(f"--control {control} is not available for {method}",
                             expected=" | ".join(spec.controls))
        if aggregation not in AGGREGATIONS:
            raise InputError(f"unknown aggregation '{aggregation}'", expected=" | ".join(AGGREGATIONS))
        if inference is not None and inference not in INFERENCE:
            raise InputError(f"unknown inference '{inference}'", expected=" | ".join(INFERENCE))
        covs = [c.strip() for c in covariates.split(",") if c.strip()] if covariates else []
        df = read_table(file)
        info(f"read {len(df):,} rows from {file}")
        data = prepare(df, file, method, y=y, unit=unit, time=time, cohort=cohort,
                       treatment=treatment, covariates=covs, cluster=cluster, weights=weights)
        if inference is None:
            inference = _default_inference(method, data, {"unit": unit})
        opts = {"y": y, "unit": unit, "time": time, "covariates": covs or None, "cluster": cluster,
                "weights": weights, "control": control, "aggregation": aggregation,
                "inference": inference, "seed": 0}
        res = spec.run(data, opts)
        if INFERENCE[inference] is not None:
            res = INFERENCE[inference](method, data, opts, res)
        note = _inference_note(method, inference, data, opts)
        if note is not None:
            import dataclasses

            res = dataclasses.replace(res, info={**res.info, "inference_note": note})
        if as_json:
            echo(json.dumps(_json_safe(res.to_dict()), allow_nan=False))
        else:
            _print_table(res)
            if note is not None:
                echo(f"note: {note}")
