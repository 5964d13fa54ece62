"""Case study on real public data: the North Jutland network on Statistics Denmark's AUK01.

Design
------
*Outcome*: AUK01 "net unemployed recipients of social assistance" (kontanthjælp), all ages
and both sexes, per municipality and quarter (package data, CC BY 4.0, "Kilde: Danmarks
Statistik, AUK01"). The analysis variable is ``log(count)``: the smallest count in the window
is 1 (Læsø), there are no zeros, so no ``+1`` is needed (the code falls back to
``log(count + 1)`` for *every* cell, and says so in ``info``, only if a zero appears).

*Treated*: the 11 municipalities of the North Jutland free-municipality network (catalogue
scheme ``nordjysk-netvaerk``: 851, 810, 813, 860, 849, 825, 846, 773, 840, 787, 820), one
cohort starting 2017Q3 (round 1 from 2017-07-01; later rounds added trials in the same
municipalities, so the municipality-level treatment starts in 2017Q3).

*Controls*: the other Danish municipalities except

* the North Zealand network (scheme ``nordsjaellandsk-netvaerk``: employment trials from 2017),
  the catalogue's ``udeluk_fra_kontrol`` of the North Jutland scheme;
* the Frikommuneforsøg I municipalities **with employment trials** (catalogue
  ``frikommuneforsoeg-1`` ``beskaeftigelse_kommuner``: Gentofte 157, Gladsaxe 159, Odense 461,
  Vejle 630, Viborg 791; Fredensborg 210 is already excluded, Vesthimmerland 820 is treated):
  their trials ran until 2017-07-01, i.e. they were "treated" during our whole pre-period and
  their treatment *ended* exactly when the North Jutland trials started, so they would put a
  mirror-image of the effect into the control group. ``exclude_fk1=False`` keeps them (shown as
  a sensitivity). Fredericia 607 and Odsherred 306 (Frikommuneforsøg I without employment
  trials) stay as controls.
* The 2023 free municipalities (Greve 253, Silkeborg 740, Aabenraa 580; Hillerød 219 is in the
  North Zealand network) start after the window and stay as controls.

*Window*: 2014Q1–2019Q4 (14 pre-quarters, 10 post-quarters); the window ends before the
national break of 2020-01-01 and COVID-19.

Estimators (all the toolkit's own): TWFE (CR1 clustered by municipality, ``t(G-1)``) with
the wild cluster bootstrap (WCR, Rademacher, test-inversion CI) and randomization inference
(treatment paths permuted across municipalities, constant-effect CI); the dynamic event study
with its pre-trend test; Callaway–Sant'Anna (never-treated controls, multiplier bootstrap);
synthetic DiD (placebo SE); Rambachan–Roth sensitivity of the average post-period event-study
effect (smoothness FLCI and relative magnitudes). Sensitivity specifications re-run TWFE +
wild bootstrap: without tiny municipalities, weighted by pre-period size, without
Vesthimmerland (also in Frikommuneforsøg I), with the Frikommuneforsøg I municipalities as
controls, Jutland controls only, a placebo start in 2016Q1 on pre-period data only, and
placebo regions (each other region's municipalities "treated" from 2017Q3, network left out).

What the aggregate can and cannot tell: see ``docs/casestudy-auk01.md``. In short, AUK01
counts *all* net unemployed kontanthjælp recipients, not the trials' target groups (mostly
insured unemployed, sickness benefit and rehabilitation cases), the FLEUR register change of
2017-07-01 coincides with the start, and the treated units are exactly Region Nordjylland,
so any regional shock in North Jutland after mid-2017 is indistinguishable from an effect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from evaluering.errors import InputError
from evaluering.results import EstimateResult, _clean, frame_records

__all__ = ["CaseStudyResult", "run_auk01_case", "auk01_chapter", "save_chapter_figures",
           "auk01_panel", "auk01_sample", "load_auk01", "auk01_path", "AUK01_SOURCE",
           "quarter_index"]

AUK01_FILE = "auk01_kontanthjaelp_kommuner_2014Q1-2021Q4.csv"
AUK01_SOURCE = "Kilde: Danmarks Statistik, AUK01 (CC BY 4.0)"
_YDELSE = "Net unemployed recipients of social assistance"
# values that select the total of each further dimension (English or Danish StatBank labels);
# a dimension with a single value is kept as it is
_DIM_VALUES = {
    "YDELSESTYPE": (_YDELSE, "Nettoledige kontanthjælpsmodtagere"),
    "KØN": ("Total", "I alt", "Køn i alt"),
    "ALDER": ("Age, total", "Alder i alt", "I alt"),
}
TREATED_SCHEME = "nordjysk-netvaerk"
FK1_SCHEME = "frikommuneforsoeg-1"
START = "2017Q3"
FIRST = "2014Q1"
LAST = "2019Q4"
SMALL_MIN_COUNT = 10      # sensitivity: drop municipalities with a quarter below this count
DISCLOSURE_MIN = 5        # never print a number resting on a cell under 5 persons
MARK = "<5"               # what a suppressed cell prints in the chapter


# --------------------------------------------------------------------------------- data


def auk01_path() -> Path:
    """Path of the AUK01 extract shipped as package data."""
    return Path(str(resources.files("evaluering.reference") / "statbank" / AUK01_FILE))


def quarter_index(label: str, origin: str = FIRST) -> int:
    """'2014Q1' → 1, '2017Q3' → 15 (consecutive quarters counted from ``origin`` = 1)."""
    y, q = (int(x) for x in str(label).upper().replace("K", "Q").split("Q"))
    y0, q0 = (int(x) for x in origin.split("Q"))
    return (y - y0) * 4 + (q - q0) + 1


def load_auk01(path: str | Path | None = None) -> pd.DataFrame:
    """The AUK01 file as a long table: ``kode``, ``navn``, ``region``, ``periode``, ``antal``.

    Only the rows "net unemployed recipients of social assistance", both sexes, all ages, and
    the 98 municipalities are kept (country totals are dropped); English or Danish labels (a
    dimension with one value only is taken as it is). Confidential (``..``) cells raise
    :class:`InputError` (none in the shipped file).
    """
    from evaluering.public import read_statbank
    from evaluering.reference import kommuner

    p = auk01_path() if path is None else Path(path)
    tab = read_statbank(p)
    df = tab.panel
    for col, keep in _DIM_VALUES.items():
        if col not in df.columns:
            continue
        vals = df[col].astype(str).str.strip()
        if vals.nunique() == 1:
            continue
        sel = vals.str.lower().isin({k.lower() for k in keep})
        if col == "YDELSESTYPE" and not sel.any():
            sel = vals.str.lower().str.startswith("net")  # 'Net unemployed ...' / 'Nettoledige ...'
        if not sel.any():
            raise InputError(f"none of the values {sorted(vals.unique())[:5]} selects the total",
                             file=str(p), column=col, expected=" or ".join(keep))
        df = df[sel.to_numpy()]
    if df.empty:
        raise InputError("no AUK01 rows for net unemployed kontanthjælp recipients (total)",
                         file=str(p), column="YDELSESTYPE", expected=_YDELSE)
    if df["fortrolig"].any() or df["vaerdi"].isna().any():
        raise InputError("confidential or missing AUK01 cells", file=str(p), column="INDHOLD",
                         expected="a count in every municipality × quarter")
    if df.duplicated(["kommune_kode", "periode"]).any():
        raise InputError("a municipality and quarter appear twice", file=str(p))
    k = kommuner().rename(columns={"kode": "kode"})
    out = (df[["kommune_kode", "periode", "vaerdi"]]
           .rename(columns={"kommune_kode": "kode", "vaerdi": "antal"})
           .merge(k, on="kode", how="left"))
    return out[["kode", "navn", "region", "periode", "antal"]].sort_values(
        ["kode", "periode"]).reset_index(drop=True)


def auk01_sample(*, exclude_fk1: bool = True, drop_vesthimmerland: bool = False,
                 min_count: float | None = None, counts: pd.DataFrame | None = None,
                 regions: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The role of every municipality: ``kode``, ``navn``, ``region``, ``rolle``, ``grund``.

    ``rolle`` is ``behandlet`` (treated), ``kontrol`` or ``udeladt`` (left out) with the reason
    in ``grund``. Membership comes from the scheme catalogue (``evaluering.reference.catalogue``).
    ``min_count`` (needs ``counts``: the long table of :func:`load_auk01` restricted to the
    window) leaves out municipalities whose smallest quarterly count is below it;
    ``regions`` keeps only controls in those regions.
    """
    from evaluering.reference import kommuner
    from evaluering.reference.catalogue import find_ordning

    nj = find_ordning(TREATED_SCHEME)
    fk1 = find_ordning(FK1_SCHEME)
    if nj is None or fk1 is None:  # pragma: no cover - package data
        raise InputError("scheme catalogue lacks the North Jutland or Frikommuneforsøg I scheme")
    treated = set(nj.kommuner)
    nz = set(nj.udeluk_fra_kontrol)
    fk1_emp = set(fk1.beskaeftigelse_kommuner) - treated - nz
    k = kommuner()
    rolle, grund = [], []
    small = set()
    if min_count is not None:
        if counts is None:
            raise ValueError("min_count needs counts")
        mins = counts.groupby("kode")["antal"].min()
        small = set(mins.index[mins < min_count])
    for kode, region in zip(k["kode"], k["region"]):
        if kode in small:
            rolle.append("udeladt")
            grund.append(f"under {min_count:g} personer i et kvartal")
        elif kode in treated:
            if drop_vesthimmerland and kode == "820":
                rolle.append("udeladt")
                grund.append("også i Frikommuneforsøg I (beskæftigelsesforsøg til 1.7.2017)")
            else:
                rolle.append("behandlet")
                grund.append("nordjysk frikommunenetværk, forsøg fra 2017K3")
        elif kode in nz:
            rolle.append("udeladt")
            grund.append("nordsjællandsk frikommunenetværk (beskæftigelsesforsøg fra 2017)")
        elif kode in fk1_emp and exclude_fk1:
            rolle.append("udeladt")
            grund.append("Frikommuneforsøg I med beskæftigelsesforsøg til 1.7.2017")
        elif regions is not None and region not in regions:
            rolle.append("udeladt")
            grund.append("uden for de valgte kontrolregioner")
        else:
            rolle.append("kontrol")
            grund.append("ingen beskæftigelsesforsøg i perioden")
    k["rolle"] = rolle
    k["grund"] = grund
    return k[["kode", "navn", "region", "rolle", "grund"]]


def auk01_panel(path: str | Path | None = None, *, start: str = START, first: str = FIRST,
                last: str = LAST, exclude_fk1: bool = True, drop_vesthimmerland: bool = False,
                min_count: float | None = None, regions: tuple[str, ...] | None = None,
                placebo_region: str | None = None,
                data: pd.DataFrame | None = None) -> pd.DataFrame:
    """The analysis panel: one row per sample municipality and quarter in ``[first, last]``.

    Columns: ``kode``, ``navn``, ``region``, ``periode``, ``t`` (1 = ``first``), ``antal``,
    ``y`` (log count; log(count+1) for every cell if any count is 0), ``behandlet`` (0/1,
    unit level), ``post`` (t ≥ start), ``D`` (= behandlet · post), ``kohorte`` (start index for
    treated, 0 for never treated), ``e`` (t − start for treated, NaN otherwise) and ``vaegt``
    (the municipality's mean count over the pre-period, for the weighted sensitivity).
    ``data``: an already loaded :func:`load_auk01` table (else read from ``path``).
    ``placebo_region``: a placebo design: the network is left out and the control
    municipalities of that region are marked as treated from ``start``.
    """
    raw = load_auk01(path) if data is None else data
    t = raw["periode"].map(lambda s: quarter_index(s, first))
    t_last = quarter_index(last, first)
    win = raw.loc[(t >= 1) & (t <= t_last)].copy()
    win["t"] = t.loc[win.index].astype(int)
    if win.empty:
        raise InputError(f"no AUK01 quarters in {first}–{last}")
    n_q = win.groupby("kode")["t"].nunique()
    if (n_q != t_last).any():
        raise InputError(f"unbalanced AUK01 panel: not every municipality has {t_last} quarters "
                         f"in {first}–{last}")
    roles = auk01_sample(exclude_fk1=exclude_fk1, drop_vesthimmerland=drop_vesthimmerland,
                         min_count=min_count, counts=win, regions=regions)
    if placebo_region is not None:
        if placebo_region not in set(roles["region"]):
            raise InputError(f"unknown region {placebo_region!r}")
        roles = roles.copy()
        was_treated = roles["rolle"] == "behandlet"
        roles.loc[was_treated, "rolle"] = "udeladt"
        roles.loc[(roles["rolle"] == "kontrol") & (roles["region"] == placebo_region),
                  "rolle"] = "behandlet"
    keep = roles.loc[roles["rolle"] != "udeladt", ["kode", "rolle"]]
    df = win.merge(keep, on="kode", how="inner")
    g = quarter_index(start, first)
    df["behandlet"] = (df["rolle"] == "behandlet").astype(int)
    df["post"] = (df["t"] >= g).astype(int)
    df["D"] = df["behandlet"] * df["post"]
    df["kohorte"] = np.where(df["behandlet"] == 1, g, 0)
    df["e"] = np.where(df["behandlet"] == 1, df["t"] - g, np.nan)
    zeros = bool((df["antal"] <= 0).any())
    df["y"] = np.log(df["antal"] + 1.0) if zeros else np.log(df["antal"])
    pre = df.loc[df["t"] < g].groupby("kode")["antal"].mean().rename("vaegt")
    df = df.merge(pre, on="kode", how="left")
    df.attrs["log_plus_one"] = zeros
    cols = ["kode", "navn", "region", "periode", "t", "antal", "y", "behandlet", "post", "D",
            "kohorte", "e", "vaegt"]
    out = df[cols].sort_values(["kode", "t"]).reset_index(drop=True)
    out.attrs["log_plus_one"] = zeros
    return out


# ------------------------------------------------------------------------------- result


@dataclass(frozen=True)
class CaseStudyResult:
    """Everything the AUK01 case study produced (read-only).

    ``panel``: the analysis panel (:func:`auk01_panel`); ``sample``: the role of all 98
    municipalities; ``twfe``, ``event_study``, ``cs``, ``sdid``: ``EstimateResult`` objects;
    ``wild``: the wild cluster bootstrap of the TWFE coefficient (``WildBootResult``); ``ri``:
    randomization inference of the TWFE coefficient (``RIResult``); ``honest_sd`` /
    ``honest_rm``: Rambachan–Roth results (``HonestResult``) for the average post-period
    event-study effect; ``sensitivity``: one row per specification; ``descriptives``: mean
    counts and logs by group and quarter; ``options``: the options used.
    """

    panel: pd.DataFrame
    sample: pd.DataFrame
    twfe: EstimateResult
    event_study: EstimateResult
    cs: EstimateResult
    sdid: EstimateResult
    wild: Any
    ri: Any
    honest_sd: Any
    honest_rm: Any
    sensitivity: pd.DataFrame
    descriptives: pd.DataFrame
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from evaluering.results import _freeze_frame

        for name in ("panel", "sample", "sensitivity", "descriptives"):
            object.__setattr__(self, name, _freeze_frame(getattr(self, name)))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def summary(self) -> pd.DataFrame:
        """One row per headline estimate (log points; ``pct`` = exp(estimate) − 1)."""
        rows = []

        def add(label, est, se, lo, hi, p, inference, n_units, n_obs):
            rows.append({"method": label, "estimate": est, "se": se, "ci_low": lo, "ci_high": hi,
                         "p": p, "inference": inference, "n_units": n_units, "n_obs": n_obs})

        t = self.twfe
        add("twfe", t.estimate, t.se, *t.ci, t.p, "cluster CR1, t(G-1)", t.n_units, t.n_obs)
        w = self.wild
        add("twfe_wild", w.estimate, w.se, *w.ci, w.p,
            f"wild cluster bootstrap {w.method} {w.bootstrap_weights}, B={w.B_effective}",
            w.n_clusters, w.n_obs)
        r = self.ri
        add("twfe_ri", r.estimate, math.nan, *r.ci, r.p,
            f"randomization inference ({r.method}, {r.n_assignments})", r.n_units, t.n_obs)
        es = self.event_study
        add("event_study", es.estimate, es.se, *es.ci, es.p, "cluster CR1, t(G-1)", es.n_units,
            es.n_obs)
        c = self.cs
        add("cs", c.estimate, c.se, *c.ci, c.p, c.inference, c.n_units, c.n_obs)
        s = self.sdid
        add("sdid", s.estimate, s.se, *s.ci, s.p, s.inference, s.n_units, s.n_obs)
        for h, name in ((self.honest_sd, "honest_smoothness"), (self.honest_rm, "honest_rm")):
            if h is None:
                continue
            tab = h.table
            col = h.parameter
            # the least restrictive value that still identifies (the first grid value > 0)
            row = tab[tab[col] > 0].iloc[0] if (tab[col] > 0).any() else tab.iloc[0]
            add(name, h.estimate, h.info.get("se", math.nan), row["ci_low"], row["ci_high"],
                math.nan, f"{h.method} {col}={row[col]:.3g}, breakdown={h.breakdown:.3g}",
                t.n_units, t.n_obs)
        out = pd.DataFrame(rows)
        out["pct"] = np.expm1(out["estimate"])
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary of every result (without the bootstrap / permutation draws)."""
        return {
            "options": {k: _clean(v) if not isinstance(v, (list, tuple, dict)) else list(v)
                        if isinstance(v, tuple) else v for k, v in self.options.items()},
            "summary": frame_records(self.summary()),
            "sample": frame_records(self.sample),
            "twfe": self.twfe.to_dict(),
            "event_study": self.event_study.to_dict(),
            "cs": self.cs.to_dict(),
            "sdid": self.sdid.to_dict(),
            "wild": self.wild.to_dict(),
            "ri": self.ri.to_dict(),
            "honest_smoothness": None if self.honest_sd is None else self.honest_sd.to_dict(),
            "honest_rm": None if self.honest_rm is None else self.honest_rm.to_dict(),
            "sensitivity": frame_records(self.sensitivity),
            "descriptives": frame_records(self.descriptives),
        }

    def plot(self, ax=None):
        """The event-study coefficients with pointwise and uniform bands."""
        return self.event_study.plot(ax=ax)


# ------------------------------------------------------------------------------ helpers


def _event_coefficients(panel: pd.DataFrame, y: str = "y", weights: str | None = None
                        ) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Event-study coefficients (reference e = −1) and their CR1 covariance matrix.

    The same regression as :func:`evaluering.estimators.event_study` (one cohort, relative-time
    dummies for the treated, unit and time fixed effects, clustered by municipality), built
    with the public :func:`evaluering.estimators.twfe_design` so that the *full* covariance
    matrix, which Rambachan–Roth needs, is available.
    """
    from evaluering.estimators.did import twfe_design

    es = sorted(int(v) for v in panel["e"].dropna().unique() if int(v) != -1)
    dummies = {f"ev{e:+d}": ((panel["e"] == e).to_numpy()).astype(float) for e in es}
    df = panel.assign(**dummies)
    design = twfe_design(df, y, "kode", "t", list(dummies), None, weights, "kode")
    fit = design.fit()
    k = len(es)
    return es, np.asarray(fit.beta[:k], float), np.asarray(fit.vcov[:k, :k], float)


def _descriptives(panel: pd.DataFrame) -> pd.DataFrame:
    g = (panel.assign(gruppe=np.where(panel["behandlet"] == 1, "behandlet", "kontrol"))
         .groupby(["gruppe", "periode", "t"], as_index=False)
         .agg(antal_i_alt=("antal", "sum"), antal_middel=("antal", "mean"),
              log_middel=("y", "mean"), n_kommuner=("kode", "nunique"),
              mindste_antal=("antal", "min")))
    return g.sort_values(["gruppe", "t"]).reset_index(drop=True)


def _wild(panel, *, B, seed, weights=None, alpha=0.05):
    from evaluering.inference import wild_twfe

    return wild_twfe(panel, "y", "kode", "t", "D", weights=weights, B=B, seed=seed,
                     alpha=alpha)


def _sensitivity(raw: pd.DataFrame, *, B: int, seed: int, alpha: float) -> pd.DataFrame:
    """TWFE + wild bootstrap under alternative samples, weights and a placebo start."""
    from evaluering.estimators.did import twfe

    specs: list[tuple[str, str, dict, str | None]] = [
        ("hovedspecifikation", "alle 11 netværkskommuner, uvægtet", {}, None),
        ("uden_smaa", f"uden kommuner med et kvartal under {SMALL_MIN_COUNT} personer",
         {"min_count": SMALL_MIN_COUNT}, None),
        ("vaegtet", "vægtet med antal før forsøget", {}, "vaegt"),
        ("uden_vesthimmerland", "uden Vesthimmerland (også i Frikommuneforsøg I)",
         {"drop_vesthimmerland": True}, None),
        ("med_fk1_kontroller", "Frikommuneforsøg I-kommuner med som kontroller",
         {"exclude_fk1": False}, None),
        ("kun_jylland", "kun kontroller i Region Midtjylland og Region Syddanmark",
         {"regions": ("Region Midtjylland", "Region Syddanmark")}, None),
        ("placebo_2016K1", "placebo: falsk start 2016K1, kun data før 2017K3",
         {"start": "2016Q1", "last": "2017Q2"}, None),
    ]
    # placebo regions: another region's municipalities "treated" from 2017K3, the network
    # left out; if they show effects of the same size, the network's estimate is not distinct
    for reg in ("Region Hovedstaden", "Region Sjælland", "Region Syddanmark",
                "Region Midtjylland"):
        specs.append((f"placebo_{reg.split()[-1].lower()}",
                      f"placebo: {reg} som 'behandlet' fra 2017K3 (netværket udeladt)",
                      {"placebo_region": reg}, None))
    rows = []
    for i, (sid, label, kw, w) in enumerate(specs):
        p = auk01_panel(data=raw, **kw)
        r = twfe(p, "y", "kode", "t", "D", weights=w, alpha=alpha)
        wb = _wild(p, B=B, seed=seed + i, weights=w, alpha=alpha)
        rows.append({"id": sid, "specifikation": label, "estimate": r.estimate, "se": r.se,
                     "ci_low": r.ci[0], "ci_high": r.ci[1], "p": r.p, "wild_p": wb.p,
                     "wild_ci_low": wb.ci[0], "wild_ci_high": wb.ci[1],
                     "n_behandlet": int(p.loc[p["behandlet"] == 1, "kode"].nunique()),
                     "n_kontrol": int(p.loc[p["behandlet"] == 0, "kode"].nunique()),
                     "n_obs": r.n_obs})
    out = pd.DataFrame(rows)
    out["pct"] = np.expm1(out["estimate"])
    return out


# --------------------------------------------------------------------------------- run


def run_auk01_case(path: str | Path | None = None, *, seed: int = 0, n_boot: int = 9999,
                   n_perm: int = 1999, sdid_reps: int = 200, alpha: float = 0.05,
                   exclude_fk1: bool = True, sensitivity: bool = True,
                   honest: bool = True, honest_rm: bool = True, honest_pre: int = 3,
                   honest_M: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.04),
                   honest_Mbar: tuple[float, ...] = (0.0, 0.5, 1.0),
                   sensitivity_boot: int | None = None) -> CaseStudyResult:
    """Run the AUK01 case study (see the module docstring).

    ``path``: an AUK01 CSV export (default: the package's extract). ``seed`` makes every random
    part reproducible (wild bootstrap, permutations, multiplier bootstrap, SDID placebos, the
    sup-t band). ``n_boot``: wild-bootstrap draws and CS multiplier-bootstrap draws;
    ``n_perm``: permutations for randomization inference; ``sdid_reps``: SDID placebo
    replications; ``sensitivity_boot``: wild draws per sensitivity specification (default
    ``min(n_boot, 1999)``). ``honest=False`` skips Rambachan–Roth (``honest_rm=False`` only its
    slow relative-magnitudes part), ``sensitivity=False`` the alternative specifications.
    Rambachan–Roth targets the average of the post-period event-study coefficients and uses
    the last ``honest_pre`` pre-quarters before the reference quarter (see the code comment);
    ``honest_M`` / ``honest_Mbar`` are the smoothness / relative-magnitude grids.
    """
    from evaluering.estimators.cs import callaway_santanna
    from evaluering.estimators.did import twfe
    from evaluering.estimators.event_study import event_study
    from evaluering.estimators.synth import synthdid
    from evaluering.inference import randomization_inference

    raw = load_auk01(path)
    panel = auk01_panel(data=raw, exclude_fk1=exclude_fk1)
    sample = auk01_sample(exclude_fk1=exclude_fk1)
    g = quarter_index(START)

    tw = twfe(panel, "y", "kode", "t", "D", alpha=alpha)
    wb = _wild(panel, B=n_boot, seed=seed, alpha=alpha)

    def _twfe_est(frame: pd.DataFrame) -> float:
        return twfe(frame, "y", "kode", "t", "D", alpha=alpha).estimate

    ri = randomization_inference(_twfe_est, panel, "kode", treatment_col="D", time="t",
                                 n_perm=n_perm, seed=seed, ci=True, outcome="y",
                                 linear_in_outcome=True, alpha=alpha)
    es = event_study(panel, "y", "kode", "t", "kohorte", ref=-1, alpha=alpha, seed=seed)
    cs = callaway_santanna(panel, "y", "kode", "t", "kohorte", control="never",
                           aggregation="simple", bootstrap=True, n_boot=n_boot, seed=seed,
                           alpha=alpha)
    sd = synthdid(panel, "y", "kode", "t", "D", inference="placebo", n_reps=sdid_reps,
                  seed=seed, alpha=alpha)

    h_sd = h_rm = None
    if honest:
        from evaluering.inference.honest import honest_did

        # Rambachan-Roth on the event study restricted to the last `honest_pre` quarters
        # before the reference quarter (treated observations earlier than that are dropped):
        # the optimisation grows steeply with the number of coefficients (13 pre-quarters:
        # minutes per grid value), and the recent pre-quarters are the ones that matter for
        # extrapolating the trend.
        hp = panel.loc[~(panel["e"] < -(honest_pre + 1))]
        es_list, b, V = _event_coefficients(hp)
        n_pre = sum(1 for e in es_list if e < 0)
        n_post = len(es_list) - n_pre
        l_vec = np.full(n_post, 1.0 / n_post)
        h_sd = honest_did(b, V, n_pre, n_post, method="smoothness", l_vec=l_vec, alpha=alpha,
                          M_grid=list(honest_M))
        if honest_rm:
            h_rm = honest_did(b, V, n_pre, n_post, method="relative_magnitudes", l_vec=l_vec,
                              alpha=alpha, Mbar_grid=list(honest_Mbar))

    sens = (_sensitivity(raw, B=sensitivity_boot or min(n_boot, 1999), seed=seed, alpha=alpha)
            if sensitivity else pd.DataFrame())
    return CaseStudyResult(
        panel=panel, sample=sample, twfe=tw, event_study=es, cs=cs, sdid=sd, wild=wb, ri=ri,
        honest_sd=h_sd, honest_rm=h_rm, sensitivity=sens, descriptives=_descriptives(panel),
        options={"path": str(path) if path is not None else f"package:{AUK01_FILE}",
                 "seed": seed, "n_boot": n_boot, "n_perm": n_perm, "sdid_reps": sdid_reps,
                 "alpha": alpha, "exclude_fk1": exclude_fk1, "start": START, "first": FIRST,
                 "last": LAST, "cohort_index": g, "honest_pre": honest_pre,
                 "outcome": "log(antal+1)" if panel.attrs.get("log_plus_one") else "log(antal)",
                 "n_treated": int(panel.loc[panel["behandlet"] == 1, "kode"].nunique()),
                 "n_controls": int(panel.loc[panel["behandlet"] == 0, "kode"].nunique())},
    )


# ----------------------------------------------------------------------------- chapter


def _fmt():
    from evaluering.report import format as f

    return f


def _lp(x: float, d: int = 3) -> str:
    """Log points with a Danish decimal comma."""
    return _fmt().tal(x, d, fortegn=True)


def _pct(x: float) -> str:
    return _fmt().tal(100 * math.expm1(x), 1, fortegn=True) + " pct."


def _trend_axes(result: "CaseStudyResult", ax=None):
    from evaluering.plotting import _axes

    ax = _axes(ax)
    d = result.descriptives
    g0 = quarter_index(START)
    for grp, color in (("behandlet", "C3"), ("kontrol", "C0")):
        s = d[d["gruppe"] == grp].sort_values("t")
        base = s.loc[s["t"] < g0, "log_middel"].mean()
        ax.plot(s["t"], s["log_middel"] - base, marker="o", ms=3, color=color,
                label="nordjyske netværkskommuner" if grp == "behandlet" else "kontrolkommuner")
    ax.axvline(g0 - 0.5, color="grey", ls="--", lw=0.8)
    ticks = sorted(d["t"].unique())[::4]
    labels = d.drop_duplicates("t").set_index("t").loc[ticks, "periode"]
    ax.set_xticks(ticks)
    ax.set_xticklabels([p.replace("Q", "K") for p in labels], fontsize=8)
    ax.set_ylabel("gns. log(antal), minus gns. før 2017K3")
    ax.legend(fontsize=8)
    return ax


def _event_axes(result: "CaseStudyResult", ax=None):
    ax = result.event_study.plot(ax=ax)
    ax.set_xlabel("kvartaler fra forsøgsstart (0 = 2017K3)")
    ax.set_ylabel("effekt på log(antal)")
    return ax


def _sdid_axes(result: "CaseStudyResult", ax=None):
    from evaluering.estimators.synth import plot_trajectories

    return plot_trajectories(result.sdid, ax=ax)


def _honest_axes(result: "CaseStudyResult", ax=None):
    return result.honest_sd.plot(ax=ax)


def auk01_chapter(result: CaseStudyResult, *, min_persons: int = DISCLOSURE_MIN) -> dict[str, Any]:
    """The case study as a report chapter (a plain structure the report renderer formats).

    Returns a dict with ``id``, ``titel``, ``kilde``, ``afsnit`` (list of ``{"overskrift",
    "tekst": [paragraphs]}``), ``tabeller`` (list of ``{"id", "titel", "kolonner", "raekker"
    (strings, Danish number format), "antal" (per cell: the smallest number of persons behind
    the cell, or ``None`` for model estimates and labels), "note"}``), ``figurer`` (list of
    ``{"id", "titel", "tegn"}`` where ``tegn(ax=None)`` draws the figure on a matplotlib Axes)
    and ``diskretionering`` (``min_personer``, ``markering``, ``undertrykte_celler``).

    Disclosure: AUK01 is public aggregate data, yet a cell resting on fewer than
    ``min_persons`` persons (Læsø: 1–9 persons per quarter) prints as ``"<5"``, and so does any
    number derived from such a municipality's counts (its means and changes).
    """
    f = _fmt()
    mark = MARK if min_persons == 5 else f"<{min_persons}"
    r = result
    pan = r.panel
    g0 = quarter_index(START)
    n_suppressed = 0

    # --- table 1: the treated municipalities, before and after
    rows, antal = [], []
    for kode, s in pan[pan["behandlet"] == 1].groupby("kode", sort=True):
        pre = s.loc[s["t"] < g0, "antal"]
        post = s.loc[s["t"] >= g0, "antal"]
        mn = float(s["antal"].min())
        if mn < min_persons:
            cells = [mark, mark, mark]
            n_suppressed += 3
        else:
            cells = [f.tal(pre.mean(), 0), f.tal(post.mean(), 0),
                     f.tal(100 * (post.mean() / pre.mean() - 1), 1, fortegn=True) + " pct."]
        rows.append([f"{s['navn'].iloc[0]} ({kode})", *cells])
        antal.append([None, mn, mn, mn])
    ctrl = pan[pan["behandlet"] == 0]
    cpre = ctrl[ctrl["t"] < g0].groupby("t")["antal"].sum().mean()
    cpost = ctrl[ctrl["t"] >= g0].groupby("t")["antal"].sum().mean()
    tr = pan[pan["behandlet"] == 1]
    tpre = tr[tr["t"] < g0].groupby("t")["antal"].sum().mean()
    tpost = tr[tr["t"] >= g0].groupby("t")["antal"].sum().mean()
    for label, a, b, grp in (("Netværket i alt", tpre, tpost, tr), ("Kontrolkommuner i alt", cpre,
                                                                       cpost, ctrl)):
        tot_min = float(grp.groupby("t")["antal"].sum().min())
        rows.append([label, f.tal(a, 0), f.tal(b, 0), f.tal(100 * (b / a - 1), 1, fortegn=True)
                     + " pct."])
        antal.append([None, tot_min, tot_min, tot_min])
    t1 = {"id": "auk01_kommuner", "titel": "Nettoledige kontanthjælpsmodtagere pr. kvartal, "
          "gennemsnit før (2014K1–2017K2) og efter (2017K3–2019K4)",
          "kolonner": ["Kommune", "Før", "Efter", "Ændring"], "raekker": rows, "antal": antal,
          "note": f"{AUK01_SOURCE}. {mark}: bygger på kvartaler med under {min_persons} personer "
                  "og vises ikke."}

    # --- table 2: headline estimates
    sm = r.summary()
    labels = {"twfe": "TWFE (klyngerobust)", "twfe_wild": "TWFE, wild cluster bootstrap",
              "twfe_ri": "TWFE, randomiseringsinferens", "event_study": "Event study (gns. efter)",
              "cs": "Callaway–Sant'Anna", "sdid": "Syntetisk DiD",
              "honest_smoothness": "Rambachan–Roth (glathed)",
              "honest_rm": "Rambachan–Roth (relative størrelser)"}
    rows2, antal2 = [], []
    for _, row in sm.iterrows():
        rows2.append([labels.get(row["method"], row["method"]), _lp(row["estimate"]),
                      _pct(row["estimate"]), f.interval(row["ci_low"], row["ci_high"], 3),
                      f.p_vaerdi(None if pd.isna(row["p"]) else float(row["p"])),
                      str(row["inference"])])
        antal2.append([None] * 6)
    t2 = {"id": "auk01_estimater", "titel": "Estimeret effekt på log(antal nettoledige "
          "kontanthjælpsmodtagere)",
          "kolonner": ["Metode", "Effekt (log)", "Effekt (pct.)", "95 pct. KI", "p", "Inferens"],
          "raekker": rows2, "antal": antal2,
          "note": "Positive tal = flere ledige i netværkskommunerne end forventet ud fra "
                  "kontrolkommunerne. Rambachan–Roth-rækkerne viser det robuste interval ved "
                  "den mindste positive afvigelse fra parallelle trends i gitteret."}

    # --- table 3: sensitivity
    rows3, antal3 = [], []
    for _, row in r.sensitivity.iterrows():
        rows3.append([row["specifikation"], _lp(row["estimate"]), _pct(row["estimate"]),
                      f.interval(row["wild_ci_low"], row["wild_ci_high"], 3),
                      f.p_vaerdi(float(row["wild_p"])), f"{int(row['n_behandlet'])}/"
                      f"{int(row['n_kontrol'])}"])
        antal3.append([None] * 6)
    t3 = {"id": "auk01_foelsomhed", "titel": "Følsomhed: TWFE med wild cluster bootstrap",
          "kolonner": ["Specifikation", "Effekt (log)", "Effekt (pct.)", "95 pct. KI (wild)",
                       "p (wild)", "Kommuner (beh./kontrol)"],
          "raekker": rows3, "antal": antal3,
          "note": "Placebo 2016K1 bruger kun kvartaler før forsøgsstart; en effekt dér tyder på "
                  "forskellige trends. Placebo-regionerne behandler en anden regions kommuner "
                  "som forsøgskommuner fra 2017K3: effekter af samme størrelse dér betyder, at "
                  "netværkets estimat ikke skiller sig ud fra almindelig regional variation."}

    # --- table 4: event study coefficients
    ev = r.event_study.component("event")
    rows4, antal4 = [], []
    for _, row in ev.iterrows():
        e = int(row["e"])
        q = pan.loc[pan["t"] == g0 + e, "periode"]
        per = q.iloc[0].replace("Q", "K") if len(q) else ""
        if bool(row["reference"]):
            rows4.append([f"{e:+d}", per, "0 (reference)", "", ""])
        else:
            rows4.append([f"{e:+d}", per, _lp(row["att"]), f.interval(row["ci_low"],
                                                                       row["ci_high"], 3),
                          f.p_vaerdi(float(row["p"]))])
        antal4.append([None] * 5)
    t4 = {"id": "auk01_event", "titel": "Event study: effekt pr. kvartal i forhold til 2017K2",
          "kolonner": ["Kvartal rel.", "Kvartal", "Effekt (log)", "95 pct. KI", "p"],
          "raekker": rows4, "antal": antal4,
          "note": f"Test for ens trends før start: F = {f.tal(r.event_study.info['pretrend_F'], 2)}"
                  f", p = {f.p_vaerdi(float(r.event_study.info['pretrend_p']))}."}

    # --- table 5: excluded municipalities
    exc = r.sample[r.sample["rolle"] == "udeladt"]
    t5 = {"id": "auk01_udeladt", "titel": "Kommuner uden for sammenligningen",
          "kolonner": ["Kommune", "Grund"],
          "raekker": [[f"{n} ({k})", g] for k, n, g in zip(exc["kode"], exc["navn"], exc["grund"])],
          "antal": [[None, None] for _ in range(len(exc))], "note": ""}
    tables = [t1, t2, t3, t4, t5]

    # --- rambachan-roth table
    if r.honest_sd is not None:
        hs = r.honest_sd.summary()
        rows6 = [["ingen (parallelle trends)" if pd.isna(m) else _fmt().tal(m, 3),
                  f.interval(lo, hi, 3)] for m, lo, hi in zip(hs["M"], hs["ci_low"], hs["ci_high"])]
        tables.append({"id": "auk01_rambachan_roth", "titel": "Rambachan–Roth: robust 95 pct. "
                       "KI for den gennemsnitlige effekt efter start, når trenden må bøje med "
                       "højst M log-point pr. kvartal²",
                       "kolonner": ["M", "95 pct. KI"], "raekker": rows6,
                       "antal": [[None, None] for _ in rows6],
                       "note": f"Breakdown-værdi: M = {_fmt().tal(r.honest_sd.breakdown, 4)}."})

    # --- text
    tw, wb, ri, cs, sd, es = r.twfe, r.wild, r.ri, r.cs, r.sdid, r.event_study
    o = r.options
    intro = [
        "Dette kapitel bruger offentlige data fra Danmarks Statistik (tabel AUK01: "
        "nettoledige kontanthjælpsmodtagere pr. kommune og kvartal) til at sammenligne de 11 "
        "kommuner i det nordjyske frikommunenetværk med kommuner uden beskæftigelsesforsøg, "
        "2014K1–2019K4. Forsøgene startede 1. juli 2017 (2017K3).",
        "Kapitlet er en illustration af metoderne på rigtige tal, ikke en evaluering af "
        "forsøgene: AUK01 tæller alle nettoledige kontanthjælpsmodtagere, mens forsøgene især "
        "var rettet mod forsikrede ledige, sygedagpengemodtagere og sager i "
        "rehabiliteringsteamet.",
    ]
    design = [
        f"Behandlet: {o['n_treated']} kommuner (hele Region Nordjylland). Kontrol: "
        f"{o['n_controls']} kommuner. Udeladt: det nordsjællandske frikommunenetværk "
        "(beskæftigelsesforsøg fra 2017) og kommunerne med beskæftigelsesforsøg i "
        "Frikommuneforsøg I (Gentofte, Gladsaxe, Odense, Vejle, Viborg), hvis forsøg sluttede "
        "1. juli 2017 — netop da de nordjyske startede. Frikommunerne fra 2023 er med som "
        "kontroller, da deres forsøg ligger efter perioden.",
        "Udfald: log(antal) pr. kommune og kvartal; effekten kan derfor læses som en relativ "
        "ændring (pct.). Læsø har under 10 personer pr. kvartal og i flere kvartaler under "
        f"{min_persons}; kommunens tal vises ikke, og "
        "følsomhedsanalysen udelader de mindste kommuner eller vægter med kommunens størrelse.",
        "Metoder: to-vejs faste effekter (TWFE) med klyngerobuste standardfejl, wild cluster "
        "bootstrap og randomiseringsinferens (få behandlede klynger); event study med test for "
        "ens trends før start; Callaway–Sant'Anna; syntetisk difference-in-differences; og "
        "Rambachan–Roths følsomhedsanalyse for brud på parallelle trends.",
    ]
    res_txt = [
        f"TWFE giver {_lp(tw.estimate)} log-point ({_pct(tw.estimate)}), 95 pct. KI "
        f"{f.interval(tw.ci[0], tw.ci[1], 3)}, p = {f.p_vaerdi(tw.p)}. Wild cluster bootstrap: "
        f"p = {f.p_vaerdi(wb.p)}, KI {f.interval(wb.ci[0], wb.ci[1], 3)}. "
        f"Randomiseringsinferens: p = {f.p_vaerdi(ri.p)}.",
        f"Callaway–Sant'Anna: {_lp(cs.estimate)} (KI {f.interval(cs.ci[0], cs.ci[1], 3)}); "
        f"syntetisk DiD: {_lp(sd.estimate)} (KI {f.interval(sd.ci[0], sd.ci[1], 3)}); "
        f"event study, gennemsnit efter start: {_lp(es.estimate)} "
        f"(KI {f.interval(es.ci[0], es.ci[1], 3)}). Test for ens trends før start: "
        f"p = {f.p_vaerdi(float(es.info['pretrend_p']))}.",
    ]
    if r.honest_sd is not None:
        def _bd(h, d):
            if h is None:
                return "ikke beregnet"
            if not h.breakdown > 0:
                return "intet (intervallet indeholder 0 allerede uden afvigelse)"
            if math.isinf(h.breakdown):
                return "hele det undersøgte gitter"
            return f.tal(h.breakdown, d)
        res_txt.append(
            "Rambachan–Roth: hvis forskellen i trend mellem netværks- og kontrolkommuner må "
            "bøje med højst M log-point pr. kvartal (glathed), udelukker det robuste interval "
            f"0 op til M = {_bd(r.honest_sd, 4)}; med relative størrelser (afvigelsen efter "
            "start højst M̄ gange den største kvartalsvise afvigelse før start) op til "
            f"M̄ = {_bd(r.honest_rm, 2)}.")
    sens = r.sensitivity
    if len(sens) and sens["id"].str.startswith("placebo_").any():
        preg = sens[sens["id"].str.startswith("placebo_") & (sens["id"] != "placebo_2016K1")]
        if len(preg):
            n_sig = int((preg["wild_p"] < 0.05).sum())
            res_txt.append(
                "Placebo-regioner: når kommunerne i en anden region behandles som "
                "forsøgskommuner fra 2017K3, giver TWFE effekter fra "
                f"{_pct(float(preg['estimate'].min()))} til {_pct(float(preg['estimate'].max()))}"
                f"; {n_sig} af {len(preg)} er signifikante med wild bootstrap. Netværkets "
                "estimat skiller sig altså ikke ud fra den almindelige forskel mellem regionerne, "
                "og inferens med kommuner som klynger undervurderer usikkerheden, når de "
                "behandlede kommuner udgør en hel region.")
    limits = [
        "Hvad tallene kan sige: om antallet af nettoledige kontanthjælpsmodtagere i Nordjylland "
        "udviklede sig anderledes end i sammenlignelige kommuner efter midten af 2017.",
        "Hvad de ikke kan sige: om forsøgene virkede. (1) AUK01 er ikke forsøgenes målgruppe. "
        "(2) Ledighedsstatistikken skiftede kilde (RAM → FLEUR) 1. juli 2017, samme dag som "
        "forsøgene startede; kun hvis skiftet ramte alle kommuner ens, fjerner DiD det. "
        "(3) De behandlede kommuner er præcis Region Nordjylland: et regionalt chok efter 2017 "
        "kan ikke skilles fra en forsøgseffekt. (4) Kun én start (2017K3) og 11 behandlede "
        "klynger, så inferensen hviler på få klynger; derfor wild bootstrap og "
        "randomiseringsinferens. (5) Flytninger og ændret sammensætning af kontanthjælpsgruppen "
        "(fx integrationsydelse) påvirker tællingerne.",
    ]
    chapter = {
        "id": "auk01",
        "titel": "Casestudie: kontanthjælpsledige i de nordjyske frikommuner (AUK01)",
        "kilde": AUK01_SOURCE,
        "afsnit": [{"overskrift": "Formål", "tekst": intro},
                   {"overskrift": "Design og stikprøve", "tekst": design},
                   {"overskrift": "Resultater", "tekst": res_txt},
                   {"overskrift": "Fortolkning og begrænsninger", "tekst": limits}],
        "tabeller": tables,
        "figurer": [
            {"id": "auk01_trend", "titel": "Udvikling i log(antal), netværk og kontroller",
             "tegn": lambda ax=None: _trend_axes(r, ax)},
            {"id": "auk01_event", "titel": "Event study med punktvise og uniforme bånd",
             "tegn": lambda ax=None: _event_axes(r, ax)},
            {"id": "auk01_sdid", "titel": "Syntetisk DiD: netværket og den syntetiske kontrol",
             "tegn": lambda ax=None: _sdid_axes(r, ax)},
        ],
        "diskretionering": {"min_personer": min_persons, "markering": mark,
                            "undertrykte_celler": n_suppressed},
    }
    if r.honest_sd is not None:
        chapter["figurer"].append({"id": "auk01_rambachan_roth",
                                   "titel": "Rambachan–Roth: robuste intervaller mod M",
                                   "tegn": lambda ax=None: _honest_axes(r, ax)})
    return chapter


def save_chapter_figures(chapter: Mapping[str, Any], out_dir: str | Path, *, fmt: str = "png",
                         dpi: int = 150) -> dict[str, Path]:
    """Draw every figure of :func:`auk01_chapter` into ``out_dir/<id>.<fmt>`` (atomic writes).

    Returns ``{figure id: path}``. For renderers that embed image files rather than drawing
    on an Axes.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from evaluering._atomic import atomic_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for fig_spec in chapter["figurer"]:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        try:
            fig_spec["tegn"](ax)
            target = out / f"{fig_spec['id']}.{fmt}"
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
            paths[fig_spec["id"]] = target
        finally:
            plt.close(fig)
    return paths
