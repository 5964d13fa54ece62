"""Randomization (permutation) inference for any scalar estimator: placebo in space.

Fisher's sharp null of no effect for any unit is tested by re-assigning the treatment across
units and recomputing the statistic. The assignment mechanism that is permuted respects the
design: the number of treated units (a unit-level 0/1 ``treatment_col``), the multiset of
start dates in a staggered design (a unit-level ``cohort_col``: the cohort labels, including
"never treated", are permuted across units), or, for a time-varying ``treatment_col`` (e.g.
``D_it = treated_i · post_t``), the units' whole treatment paths (``time`` must then be
given). Each unit receives the label of another unit; all other columns stay as observed.

* **Exact**: when the number of distinct assignments ``N! / Π n_c!`` (``n_c`` units per label)
  is at most ``exact_max``, every distinct assignment (the observed one included) is
  evaluated once; ``p = #{|T*| ≥ |T|} / #assignments``.
* **Monte Carlo**: otherwise ``n_perm`` uniformly random permutations;
  ``p = (1 + #{|T*| ≥ |T|}) / (1 + n_perm)`` (the observed assignment counted, so the test is
  exact at level alpha for any ``n_perm``).

``≥`` is evaluated with a relative tolerance of ``1e-9`` so that ties that are equal in exact
arithmetic are counted as ties. ``alternative="greater"`` / ``"less"`` use ``T* ≥ T`` /
``T* ≤ T``.

Confidence interval (optional, ``ci=True``): inversion of the constant additive effect model
``Y_it(1) = Y_it(0) + τ``. For a given τ the outcome ``Y − τ·E`` (``E`` = observed exposure,
0/1 or dose) is the untreated outcome under H0, and the test of "no effect" on it is the test
of ``τ``; the interval is ``{τ : p(τ) ≥ alpha}`` (bisection on each side, same permutations for
every τ). With ``linear_in_outcome=True`` (true for TWFE, 2×2, event-study and
Callaway–Sant'Anna type estimators, which are linear in ``y``) each permutation is evaluated
only twice (on ``Y`` and on ``E``) and ``T*(τ) = T*_Y − τ·T*_E`` exactly.

Several statistics from the same draws (``extra_stats``): a mapping name → callable on the
estimator's output (or ``(callable, alternative)``) is evaluated on the same estimator call as
the main statistic, for the observed assignment and every re-assignment, and each gets its own
randomization p-value with the same formula (``RIResult.extra[name]``). For the pre-trend test
of Callaway–Sant'Anna, :func:`pretrend_statistic` gives ready-made statistics (the mean
pre-treatment ATT(g,t), which the calibration study found to hold its size with 11 treated
municipalities, where the χ² Wald pre-test rejects nearly always; docs/calibration.md), at no
extra estimator cost. The main statistic, its p-value, CI and null distribution are unchanged
by ``extra_stats``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from evaluering.inference._invert import bisect_boundary
from evaluering.errors import EstimationError

__all__ = ["RIResult", "RIExtra", "randomization_inference", "count_assignments",
           "pretrend_statistic"]

_TIE_RTOL = 1e-9


@dataclass(frozen=True)
class RIExtra:
    """One additional statistic evaluated on the same re-assignments as the main statistic.

    estimate : the statistic on the observed assignment. p : its randomization p-value (same
    formula as the main p-value; NaN if the observed statistic is not finite). n_nonfinite :
    re-assignments on which the statistic was not finite (they count as not reaching the
    observed value, as for the main statistic).
    """

    name: str
    estimate: float
    p: float
    alternative: str
    null_distribution: np.ndarray = field(repr=False)
    n_nonfinite: int = 0

    def __post_init__(self) -> None:
        nd = np.array(self.null_distribution, dtype=float)
        nd.flags.writeable = False
        object.__setattr__(self, "null_distribution", nd)

    def to_dict(self) -> dict[str, Any]:
        def c(x):
            x = float(x)
            return None if (math.isnan(x) or math.isinf(x)) else x

        return {"estimate": c(self.estimate), "p": c(self.p), "alternative": self.alternative,
                "n_nonfinite": int(self.n_nonfinite)}


@dataclass(frozen=True)
class RIResult:
    """Result of randomization inference.

    estimate : the statistic on the observed assignment.
    p : randomization p-value (see ``method``: ``exact`` or ``monte-carlo``).
    null_distribution : the statistic under each evaluated re-assignment (read-only; for the
        exact method this includes the observed assignment).
    n_possible : number of distinct assignments (may be astronomically large; float if so).
    ci : interval from inverting the constant-effect model (NaN when not computed).
    extra : name → :class:`RIExtra` for the ``extra_stats`` evaluated on the same draws
        (empty when none were requested).
    """

    estimate: float
    p: float
    method: str
    n_assignments: int
    n_possible: float
    alternative: str
    permuted: str
    null_distribution: np.ndarray = field(repr=False)
    ci: tuple[float, float] = (math.nan, math.nan)
    alpha: float = 0.05
    n_units: int = 0
    info: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, RIExtra] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nd = np.array(self.null_distribution, dtype=float)
        nd.flags.writeable = False
        object.__setattr__(self, "null_distribution", nd)
        object.__setattr__(self, "ci", (float(self.ci[0]), float(self.ci[1])))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @property
    def exact(self) -> bool:
        return self.method == "exact"

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "estimate": self.estimate, "p": self.p, "ci_low": self.ci[0], "ci_high": self.ci[1],
            "method": self.method, "n_assignments": self.n_assignments,
            "n_possible": self.n_possible, "permuted": self.permuted,
            "alternative": self.alternative, "n_units": self.n_units,
        }])

    def to_dict(self) -> dict[str, Any]:
        def c(x):
            if isinstance(x, (np.floating, float)):
                x = float(x)
                return None if (math.isnan(x) or math.isinf(x)) else x
            if isinstance(x, np.integer):
                return int(x)
            return x

        out = {"estimate": c(self.estimate), "p": c(self.p), "ci": [c(self.ci[0]), c(self.ci[1])],
               "alpha": self.alpha, "method": self.method,
               "n_assignments": int(self.n_assignments), "n_possible": c(float(self.n_possible)),
               "alternative": self.alternative, "permuted": self.permuted,
               "n_units": int(self.n_units),
               "info": {k: c(v) if not isinstance(v, (list, dict, tuple)) else v
                        for k, v in self.info.items()}}
        if self.extra:  # only when requested: the dict of existing callers is unchanged
            out["extra"] = {k: v.to_dict() for k, v in self.extra.items()}
        return out

    def plot(self, ax=None, bins: int = 40):
        """Histogram of the randomization distribution with the observed statistic marked."""
        from evaluering.plotting import _axes

        ax = _axes(ax)
        nd = self.null_distribution[np.isfinite(self.null_distribution)]
        ax.hist(nd, bins=bins, color="C0", alpha=0.6,
                label=f"re-assignments ({self.method}, {self.n_assignments})")
        ax.axvline(self.estimate, color="C3", lw=1.5, label=f"observed = {self.estimate:.4g}")
        if self.alternative == "two-sided":
            ax.axvline(-self.estimate, color="C3", lw=1.0, ls="--")
        ax.set_xlabel("statistic")
        ax.set_ylabel("count")
        ax.set_title(f"randomization inference: p = {self.p:.4f}")
        ax.legend(fontsize=8)
        return ax


# ---------------------------------------------------------------------------------------------


def count_assignments(labels) -> int:
    """Number of distinct assignments of a multiset of labels to units: N! / Π n_c!."""
    codes = pd.factorize(pd.Series(list(labels), dtype=object), use_na_sentinel=False)[0]
    counts = np.bincount(codes)
    total = math.factorial(int(counts.sum()))
    for n_c in counts:
        total //= math.factorial(int(n_c))
    return total


def _multiset_assignments(codes: np.ndarray):
    """Yield every distinct arrangement of the label codes over the units (arrays)."""
    N = len(codes)
    labels, counts = np.unique(codes, return_counts=True)

    def rec(free: tuple[int, ...], li: int, cur: np.ndarray):
        if li == len(labels) - 1:
            cur = cur.copy()
            cur[list(free)] = labels[li]
            yield cur
            return
        for chosen in itertools.combinations(free, int(counts[li])):
            nxt = cur.copy()
            nxt[list(chosen)] = labels[li]
            chosen_set = set(chosen)
            yield from rec(tuple(i for i in free if i not in chosen_set), li + 1, nxt)

    yield from rec(tuple(range(N)), 0, np.empty(N, dtype=codes.dtype))


def _as_stat(out, stat) -> float:
    if callable(stat):
        return float(stat(out))
    if isinstance(out, (int, float, np.integer, np.floating)):
        if stat != "estimate":
            raise ValueError("stat='t' needs an estimator returning an object with estimate and se")
        return float(out)
    est = float(getattr(out, "estimate"))
    if stat == "estimate":
        return est
    if stat == "t":
        return est / float(getattr(out, "se"))
    raise ValueError("stat must be 'estimate', 't' or a callable")


def randomization_inference(estimator: Callable, data, unit: str, *,
                            treatment_col: str | None = None, cohort_col: str | None = None,
                            time: str | None = None, n_perm: int = 999, exact_max: int = 10_000,
                            seed=None, stat: str | Callable = "estimate",
                            alternative: str = "two-sided", ci: bool = False,
                            outcome: str | None = None, exposure: str | None = None,
                            linear_in_outcome: bool = False, alpha: float = 0.05,
                            strata: str | None = None,
                            extra_stats: Mapping[str, Any] | None = None) -> RIResult:
    """Randomization inference for ``estimator(data)`` (a float or an ``EstimateResult``).

    Exactly one of ``treatment_col`` (unit-level 0/1, or time-varying with ``time``) and
    ``cohort_col`` (unit-level first treated period; never-treated coded as in the data) is
    permuted across the units of ``unit``. ``stat``: ``"estimate"``, ``"t"`` (estimate/se) or a
    callable on the estimator's output. For ``ci=True`` give ``outcome`` (the y column) and,
    unless it can be derived (time-varying treatment, or cohort with ``time``: ``time ≥
    cohort``), ``exposure`` (observed per-row treatment exposure). ``strata``: a unit-level
    column (e.g. region); labels are then permuted only within each stratum (the number of
    assignments is the product of the strata's multinomial counts).

    ``extra_stats``: name → ``callable`` or ``(callable, alternative)``; each callable gets the
    estimator's output (``"estimate"``/``"t"`` also accepted) and is evaluated on the same
    estimator call as ``stat``, for the observed and every re-assigned data set; a bare
    callable uses ``alternative``. A Wald-type statistic (large = evidence against the null)
    needs ``"greater"``. Results in ``RIResult.extra``. E.g. the Callaway–Sant'Anna pre-trend
    test: ``extra_stats={"pretest": pretrend_statistic("mean")}``.
    """
    from evaluering.estimators._panel import as_frame, require_columns

    if (treatment_col is None) == (cohort_col is None):
        raise ValueError("give exactly one of treatment_col and cohort_col")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError("alternative must be 'two-sided', 'greater' or 'less'")
    extras = _extra_specs(extra_stats, alternative)
    df = as_frame(data).copy()
    col = treatment_col or cohort_col
    require_columns(df, [unit, time], no_missing=True)
    require_columns(df, [col], no_missing=False)

    ucodes, units = pd.factorize(df[unit], sort=True)
    N = len(units)
    if N < 2:
        raise EstimationError("randomization inference needs at least 2 units")
    const_within = bool((df.groupby(ucodes, sort=True)[col].nunique(dropna=False) <= 1).all())
    path_mode = not const_within
    if path_mode:
        if cohort_col is not None:
            raise EstimationError(f"cohort column '{col}' must be constant within units")
        if time is None:
            raise EstimationError(f"'{col}' varies within units: give `time` to permute the "
                                  "units' treatment paths")
        wide = df.assign(_u=ucodes).pivot_table(index="_u", columns=time, values=col,
                                               aggfunc="first", dropna=False)
        wide = wide.reindex(range(N))
        path_keys = [tuple(np.nan_to_num(row, nan=-np.inf)) for row in wide.to_numpy(float)]
        lab_codes = pd.factorize(pd.Series(path_keys, dtype=object))[0]
        tpos = wide.columns.get_indexer(df[time])
        W = wide.to_numpy(float)
    else:
        per_unit = df.groupby(ucodes, sort=True)[col].first().reindex(range(N))
        lab_codes, lab_values = pd.factorize(per_unit, use_na_sentinel=False)
    lab_codes = np.asarray(lab_codes, dtype=np.int64)
    original = df[col].copy()

    def assign(perm_codes: np.ndarray) -> pd.DataFrame:
        """Data with unit i given the label (or path) that ``perm_codes[i]`` names."""
        out = df
        if path_mode:
            # unit i takes the path of a unit that had label perm_codes[i]
            rep = np.empty(lab_codes.max() + 1, dtype=np.int64)
            rep[lab_codes] = np.arange(N)
            src_unit = rep[perm_codes]
            vals = W[src_unit[ucodes], tpos]
            if np.isnan(vals).any() and not original.isna().any():
                raise EstimationError("treatment paths cannot be swapped between units observed "
                                      "in different periods (unbalanced panel)")
            out[col] = vals
        else:
            out[col] = lab_values.take(perm_codes[ucodes]).to_numpy()
        return out

    def run(frame: pd.DataFrame) -> float:
        return _as_stat(estimator(frame), stat)

    def run_all(frame: pd.DataFrame) -> tuple[float, list[float]]:
        """The main statistic and every extra statistic from ONE estimator call."""
        out = estimator(frame)
        return _as_stat(out, stat), [_as_stat(out, f) for _, f, _ in extras]

    if strata is not None:
        require_columns(df, [strata])
        if not bool((df.groupby(ucodes, sort=True)[strata].nunique(dropna=False) <= 1).all()):
            raise EstimationError(f"strata column '{strata}' must be constant within units")
        s_codes = pd.factorize(df.groupby(ucodes, sort=True)[strata].first()
                              .reindex(range(N)))[0]
    else:
        s_codes = np.zeros(N, dtype=np.int64)
    groups = [np.nonzero(s_codes == g)[0] for g in np.unique(s_codes)]
    n_possible = 1
    for idx in groups:
        n_possible *= count_assignments(lab_codes[idx])
    exact = n_possible <= exact_max
    if exact:
        per_stratum = [list(_multiset_assignments(lab_codes[idx])) for idx in groups]
        assignments = []
        for combo in itertools.product(*per_stratum):
            a = np.empty(N, dtype=np.int64)
            for idx, part in zip(groups, combo):
                a[idx] = part
            assignments.append(a)
    else:
        rng = np.random.default_rng(seed)
        assignments = []
        for _ in range(int(n_perm)):
            a = lab_codes.copy()
            for idx in groups:
                a[idx] = rng.permutation(lab_codes[idx])
            assignments.append(a)

    # exposure for the CI
    E = None
    if ci:
        if stat != "estimate":
            raise ValueError("ci=True needs stat='estimate'")
        if outcome is None:
            raise ValueError("ci=True needs `outcome` (the y column)")
        require_columns(df, [outcome])
        if exposure is not None:
            E = df[exposure].to_numpy(float)
        elif path_mode:
            E = original.to_numpy(float)
        elif cohort_col is not None and time is not None:
            c = pd.to_numeric(original, errors="coerce").to_numpy(float)
            tt = pd.to_numeric(df[time]).to_numpy(float)
            E = np.where(np.isfinite(c) & (c > 0) & (tt >= c), 1.0, 0.0)
        else:
            raise ValueError("ci=True with a unit-level treatment needs `exposure` "
                             "(the observed per-row treatment indicator)")
        y_obs = df[outcome].to_numpy(float).copy()

    # observed statistic and the randomization distribution
    try:
        df[col] = original
        T_obs, X_obs = run_all(df)
        null = np.empty(len(assignments))
        null_X = np.empty((len(assignments), len(extras)))
        null_E = np.empty(len(assignments)) if (ci and linear_in_outcome) else None
        for b, a in enumerate(assignments):
            frame = assign(a)
            null[b], null_X[b] = run_all(frame)
            if null_E is not None:
                frame[outcome] = E
                null_E[b] = run(frame)
                frame[outcome] = y_obs
        if null_E is not None:
            df[col] = original
            df[outcome] = E
            T_obs_E = run(df)
            df[outcome] = y_obs
    finally:
        df[col] = original
        if ci:
            df[outcome] = y_obs

    p = _pvalue(T_obs, null, alternative, exact)

    ci_val = (math.nan, math.nan)
    info: dict[str, Any] = {"n_perm_requested": int(n_perm), "exact_max": int(exact_max),
                            "path_permutation": bool(path_mode), "strata": strata,
                            "n_strata": len(groups), "seed": seed
                            if isinstance(seed, (int, type(None))) else str(seed),
                            "p_formula": "#{|T*|>=|T|}/n (exact)" if exact
                            else "(1+#{|T*|>=|T|})/(1+n_perm)"}
    if ci:
        if linear_in_outcome:
            def p_tau(tau: float) -> float:
                return _pvalue(T_obs - tau * T_obs_E, null - tau * null_E, alternative, exact)
        else:
            def p_tau(tau: float) -> float:
                try:
                    df[outcome] = y_obs - tau * E
                    t0 = run(df)
                    vals = np.array([run(assign(a)) for a in assignments])
                finally:
                    df[col] = original
                    df[outcome] = y_obs
                return _pvalue(t0, vals, alternative, exact)
        scale = float(np.nanstd(null)) or max(abs(T_obs), 1.0)
        ci_val = (_ci_side(p_tau, T_obs, -1, scale, alpha), _ci_side(p_tau, T_obs, +1, scale, alpha))
        info["ci_model"] = "constant additive effect, Y - tau*exposure"

    extra = {}
    for k, (name, _, alt) in enumerate(extras):
        xs = null_X[:, k]
        x0 = float(X_obs[k])
        extra[name] = RIExtra(name=name, estimate=x0,
                              p=_pvalue(x0, xs, alt, exact) if math.isfinite(x0) else math.nan,
                              alternative=alt, null_distribution=xs,
                              n_nonfinite=int((~np.isfinite(xs)).sum()))
    return RIResult(estimate=T_obs, p=p, method="exact" if exact else "monte-carlo",
                    n_assignments=len(assignments),
                    n_possible=float(n_possible) if n_possible > 2**62 else n_possible,
                    alternative=alternative,
                    permuted=f"{col} ({'paths' if path_mode else 'unit labels'})",
                    null_distribution=null, ci=ci_val, alpha=alpha, n_units=N, info=info,
                    extra=extra)


def _extra_specs(extra_stats, alternative: str) -> list[tuple[str, Any, str]]:
    """Normalise ``extra_stats`` to ``[(name, stat, alternative)]``."""
    if not extra_stats:
        return []
    if not isinstance(extra_stats, Mapping):
        raise ValueError("extra_stats must be a mapping name -> callable or (callable, alternative)")
    out = []
    for name, spec in extra_stats.items():
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise ValueError(f"extra_stats[{name!r}]: give (callable, alternative)")
            f, alt = spec
        else:
            f, alt = spec, alternative
        if alt not in ("two-sided", "greater", "less"):
            raise ValueError(f"extra_stats[{name!r}]: alternative must be 'two-sided', "
                             "'greater' or 'less'")
        if not (callable(f) or f in ("estimate", "t")):
            raise ValueError(f"extra_stats[{name!r}] must be callable, 'estimate' or 't'")
        out.append((str(name), f, alt))
    return out



def pretrend_statistic(kind: str = "mean") -> tuple[Callable[[Any], float], str]:
    """A pre-trend statistic of a Callaway–Sant'Anna result for ``extra_stats``, with its
    alternative: ``randomization_inference(..., extra_stats={"pretest":
    pretrend_statistic("mean")})``.

    Read from the result's ``att_gt`` table (rows with ``post == False``: the pre-treatment
    ATT(g,t)), its ``event`` table (``e < 0``) or ``info``:

    * ``"mean"``: the mean pre-treatment ATT(g,t), two-sided (a differential trend moves
      every pre-period ATT(g,t) the same way);
    * ``"wald"``: ``info["pretest_stat"]``, the Wald statistic with the analytic clustered
      covariance, one-sided ``greater`` (with few treated clusters that covariance is
      singular or nearly so; see docs/calibration.md);
    * ``"sumt2"``: Σ (ATT(g,t)/se)² over the pre-treatment ATT(g,t), ``greater``;
    * ``"event_ss"``: Σ ATT_e² over the pre-treatment event times, ``greater``.
    """
    def att_gt_pre(res) -> pd.DataFrame:
        gt = res.components["att_gt"]
        return gt[~gt["post"].astype(bool)]

    def mean(res) -> float:
        a = att_gt_pre(res)["att"].to_numpy(float)
        a = a[np.isfinite(a)]
        return float(a.mean()) if a.size else math.nan

    def wald(res) -> float:
        return float(res.info["pretest_stat"])

    def sumt2(res) -> float:
        pre = att_gt_pre(res)
        z = (pre["att"] / pre["se"]).to_numpy(float)
        z = z[np.isfinite(z)]
        return float(np.sum(z ** 2)) if z.size else math.nan

    def event_ss(res) -> float:
        ev = res.components["event"]
        a = ev.loc[ev["e"] < 0, "att"].to_numpy(float)
        a = a[np.isfinite(a)]
        return float(np.sum(a ** 2)) if a.size else math.nan

    table = {"mean": (mean, "two-sided"), "wald": (wald, "greater"),
             "sumt2": (sumt2, "greater"), "event_ss": (event_ss, "greater")}
    if kind not in table:
        raise ValueError(f"kind must be one of {', '.join(table)}")
    return table[kind]


def _pvalue(T: float, null: np.ndarray, alternative: str, exact: bool) -> float:
    tol = _TIE_RTOL * max(1.0, abs(T))
    fin = np.isfinite(null)
    if alternative == "two-sided":
        hits = fin & (np.abs(null) >= abs(T) - tol)
    elif alternative == "greater":
        hits = fin & (null >= T - tol)
    else:
        hits = fin & (null <= T + tol)
    k = int(hits.sum())
    if exact:
        return k / len(null)
    return (1 + k) / (1 + len(null))


def _ci_side(p_tau: Callable[[float], float], est: float, sign: int, scale: float,
             alpha: float) -> float:
    step = scale
    inner, outer = est, None
    for _ in range(40):
        cand = est + sign * step
        if p_tau(cand) < alpha:
            outer = cand
            break
        inner = cand
        step *= 2.0
    if outer is None:
        return sign * math.inf
    return bisect_boundary(p_tau, inner, outer, alpha, 1e-6 * scale, 100)
