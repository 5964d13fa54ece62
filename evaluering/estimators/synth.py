"""Synthetic control (Abadie, Diamond & Hainmueller 2010) and synthetic difference-in-differences
(Arkhangelsky, Athey, Hirshberg, Imbens & Wager 2021).

Both estimators take a long, balanced panel (one row per unit and period) with a 0/1
``treatment`` column that is absorbing (once a unit is treated it stays treated) and return an
:class:`~evaluering.results.EstimateResult`. Units that are never treated are the donors
(controls). Outcomes are pivoted to an ``N x T`` matrix once; everything else works on that
matrix, so the cost does not depend on how many persons stand behind each unit-period.

Weights are solved on the simplex by :mod:`evaluering.estimators._synth_solver` (away-step
Frank–Wolfe with an exact active-set polish), i.e. the exact minimisers of the paper's
objectives. ``fw="synthdid"`` instead runs the early-stopped plain Frank–Wolfe with the
sparsifying second pass that the R package ``synthdid`` documents as its default, which is what
produced the published numbers.

Synthetic DiD (``synthdid``)
    Unit weights (paper eq. 4): ``min_{w0, w in simplex} sum_{t<=T_pre} (w0 + sum_i w_i Y_it
    - mean_tr Y_t)^2 + zeta^2 T_pre ||w||^2`` with ``zeta = (N_tr T_post)^{1/4} sigma_hat`` and
    ``sigma_hat`` the standard deviation of the first differences of the control outcomes in
    the pre-period. Time weights (eq. 5): ``min_{l0, l in simplex} sum_{i control} (l0 + sum_t
    l_t Y_it - mean_post Y_i)^2 + zeta_l^2 N_co ||l||^2`` with the tiny ``zeta_l = 1e-6
    sigma_hat`` that makes the minimiser unique. The estimate is the weighted DiD
    ``(Ybar_tr,post - l'Y_tr,pre) - sum_i w_i (Ybar_i,post - l'Y_i,pre)``.

    Staggered adoption: one SDID per adoption cohort (the cohort's units as treated, the
    never-treated units as controls, periods before the cohort's first treated period as the
    pre-period and all later periods as post), aggregated with weights proportional to
    ``N_tr,cohort x T_post,cohort`` (the number of treated unit-periods), as in the
    ``synthdid`` literature's staggered extension (Arkhangelsky et al. 2021, sec. 8 / appendix).

    Inference: ``placebo`` (Algorithm 4: assign the treated units' adoption pattern to randomly
    chosen control units, re-estimate including the weights, SE = standard deviation of the
    placebo estimates), ``jackknife`` (Algorithm 3: leave one unit out with the weights held
    fixed and renormalised; undefined with a single treated unit), ``bootstrap`` (Algorithm 2:
    resample units, re-estimate the weights; draws without treated or control units are
    redrawn). The CI is ``estimate +- z_{1-alpha/2} SE`` and ``p`` the normal two-sided p.

    Covariates (optional): outcomes are residualised as ``Y - X beta`` with ``beta`` from a
    two-way fixed-effects regression of ``Y`` on ``X`` among untreated observations
    (Kranz 2022's projection approach), then SDID runs on the residualised outcome.

Synthetic control (``synthetic_control``)
    Predictors: without ``covariates`` the pre-period outcomes (all equally weighted, so
    ``V`` is irrelevant); with ``covariates`` the listed predictors (means over the pre-period
    or over given periods), each standardised by its standard deviation across units, with a
    diagonal ``V`` chosen by ``v_method``: ``"regression"`` (``v_h`` proportional to the sum over
    pre-periods of the squared coefficient of predictor ``h`` in a cross-section regression of
    the outcome on the standardised predictors), or ``"optimize"`` (ADH's nested choice: the
    ``V`` that minimises the treated unit's pre-period outcome MSPE, searched with Nelder–Mead
    over softmax-parameterised ``V`` from the equal and regression starts). The estimate is the
    average post-period gap. Several treated units (same adoption period required) are
    averaged into one treated series and the synthetic control is fitted to that average.
    In-space placebos: every donor in turn is treated as the treated unit with the other donors
    as its pool (the actual treated units are excluded), using the same ``V`` method; ``p`` is
    the rank of the treated post/pre MSPE ratio among all units (treated included), ``se`` the
    standard deviation of the donors' placebo estimates and ``ci`` the normal interval with it.
    With several treated units the placebos are still single donors while the treated series
    is an average, which is smoother; read ``p`` as descriptive there and prefer ``synthdid``
    (whose placebo assigns the whole treated pattern to random controls) for inference on a
    group such as the 11 trial municipalities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

from evaluering.errors import EstimationError
from evaluering.estimators._panel import as_frame, require_columns
from evaluering.estimators._synth_solver import frank_wolfe_early_stop, simplex_qp
from evaluering.results import EstimateResult

__all__ = ["synthdid", "synthetic_control", "sdid_weights", "plot_trajectories"]


# --------------------------------------------------------------------------------------------
# panel → matrix


@dataclass(frozen=True)
class _Panel:
    Y: np.ndarray          # (N, T)
    D: np.ndarray          # (N, T) 0/1
    units: np.ndarray      # (N,)
    times: np.ndarray      # (T,)
    adopt: np.ndarray      # (N,) index of first treated period, or T for never treated


def _to_panel(data, y: str, unit: str, time: str, treatment: str,
              extra: Sequence[str] = ()) -> tuple[_Panel, pd.DataFrame]:
    df = as_frame(data)
    require_columns(df, [y, unit, time, treatment])
    df = df[[unit, time, y, treatment, *[c for c in extra if c not in (y, unit, time, treatment)]]]
    if df.duplicated([unit, time]).any():
        raise EstimationError(f"more than one row per ({unit}, {time})")
    units = np.sort(df[unit].unique())
    times = np.sort(df[time].unique())
    if len(df) != len(units) * len(times):
        raise EstimationError(f"the panel is unbalanced: {len(df)} rows for {len(units)} units x "
                              f"{len(times)} periods; synthetic control/DiD need a balanced panel")
    wide = df.pivot(index=unit, columns=time, values=y).reindex(index=units, columns=times)
    Y = wide.to_numpy(dtype=float)
    if not np.isfinite(Y).all():
        raise EstimationError(f"column '{y}' has non-finite values")
    D = df.pivot(index=unit, columns=time, values=treatment).reindex(index=units, columns=times)
    D = D.to_numpy(dtype=float)
    if not np.isin(D, (0.0, 1.0)).all():
        raise EstimationError(f"column '{treatment}' must be 0/1")
    T = len(times)
    adopt = np.full(len(units), T, dtype=int)
    for i in range(len(units)):
        on = np.flatnonzero(D[i] == 1)
        if len(on):
            a = on[0]
            if not (D[i, a:] == 1).all():
                raise EstimationError(f"treatment of unit {units[i]!r} is not absorbing "
                                      "(it switches off again)")
            adopt[i] = a
    if (adopt == 0).any():
        raise EstimationError("some units are treated in the first period (no pre-period)")
    if (adopt == T).all():
        raise EstimationError("no treated units")
    if not (adopt == T).any():
        raise EstimationError("no never-treated (control) units")
    return _Panel(Y, D, units, times, adopt), df


# --------------------------------------------------------------------------------------------
# synthetic DiD core (one cohort block: controls first, pre-periods first)


def _noise_level(Y0_pre: np.ndarray) -> float:
    """sd of first differences of control outcomes in the pre-period (paper's sigma-hat)."""
    if Y0_pre.shape[1] < 2:
        return 0.0
    d = np.diff(Y0_pre, axis=1).ravel()
    return float(np.std(d, ddof=1)) if d.size > 1 else 0.0


def _sparsify(v: np.ndarray) -> np.ndarray:
    v = np.where(v <= v.max() / 4, 0.0, v)
    return v / v.sum()


def sdid_weights(Y: np.ndarray, N0: int, T0: int, *, variant: str = "sdid",
                 fw: str = "exact") -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Unit weights (length N0) and time weights (length T0) for one block.

    ``Y`` is (N, T) with the N0 control rows first and the T0 pre-period columns first.
    ``variant``: ``sdid`` (regularised unit weights with intercept, time weights with
    intercept), ``sc`` (unit weights without intercept and with only the tiny ridge, no time
    weights: lambda = 0, i.e. the post-period gap is not differenced), ``did`` (uniform).
    """
    N, T = Y.shape
    N1, T1 = N - N0, T - T0
    if N0 < 1 or N1 < 1 or T0 < 1 or T1 < 1:
        raise EstimationError("need at least one control, one treated unit, one pre- and one "
                              "post-period")
    sigma = _noise_level(Y[:N0, :T0])
    info = {"noise_level": sigma}
    if variant == "did":
        return np.full(N0, 1.0 / N0), np.full(T0, 1.0 / T0), {**info, "zeta_omega": 0.0}
    if variant == "sdid":
        zeta_omega = (N1 * T1) ** 0.25 * sigma
        omega_intercept = True
    elif variant == "sc":
        zeta_omega = 1e-6 * sigma
        omega_intercept = False
    else:
        raise ValueError(f"unknown variant {variant!r}")
    zeta_lambda = 1e-6 * sigma
    info["zeta_omega"] = zeta_omega
    info["zeta_lambda"] = zeta_lambda
    # unit weights: rows = pre-periods, columns = controls, target = treated mean
    A_u = Y[:N0, :T0].T
    b_u = Y[N0:, :T0].mean(axis=0)
    # time weights: rows = controls, columns = pre-periods, target = post mean
    A_t = Y[:N0, :T0]
    b_t = Y[:N0, T0:].mean(axis=1)
    if fw == "exact":
        omega = simplex_qp(A_u, b_u, zeta_omega ** 2 * T0, intercept=omega_intercept)
        lam = (simplex_qp(A_t, b_t, zeta_lambda ** 2 * N0, intercept=True)
               if variant == "sdid" else np.zeros(T0))
    elif fw == "synthdid":
        md = 1e-5 * sigma
        if variant == "sdid":
            lam = frank_wolfe_early_stop(A_t, b_t, zeta_lambda ** 2, intercept=True,
                                         min_decrease=md, max_iter=100)
            lam = frank_wolfe_early_stop(A_t, b_t, zeta_lambda ** 2, intercept=True,
                                         x0=_sparsify(lam), min_decrease=md, max_iter=10_000)
        else:
            lam = np.zeros(T0)
        omega = frank_wolfe_early_stop(A_u, b_u, zeta_omega ** 2, intercept=omega_intercept,
                                       min_decrease=md, max_iter=100)
        omega = frank_wolfe_early_stop(A_u, b_u, zeta_omega ** 2, intercept=omega_intercept,
                                       x0=_sparsify(omega), min_decrease=md, max_iter=10_000)
    else:
        raise ValueError(f"unknown fw {fw!r}")
    return omega, lam, info


def _block_tau(Y: np.ndarray, N0: int, T0: int, omega: np.ndarray, lam: np.ndarray) -> float:
    """Weighted DiD with unit weights (omega for controls, uniform over treated) and time
    weights (lam over the pre-period, uniform over the post-period)."""
    N1 = Y.shape[0] - N0
    T1 = Y.shape[1] - T0
    w = np.concatenate([-omega, np.full(N1, 1.0 / N1)])
    tw = np.concatenate([-lam, np.full(T1, 1.0 / T1)])
    return float(w @ Y @ tw)


@dataclass
class _Cohort:
    a: int                 # index of the first treated period
    treated: np.ndarray    # row indices of treated units
    omega: np.ndarray
    lam: np.ndarray
    tau: float
    info: dict


def _cohort_blocks(P: _Panel) -> list[tuple[int, np.ndarray]]:
    T = len(P.times)
    return [(int(a), np.flatnonzero(P.adopt == a)) for a in np.unique(P.adopt[P.adopt < T])]


def _fit_cohorts(Y: np.ndarray, adopt: np.ndarray, controls: np.ndarray, variant: str, fw: str,
                 weights: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
                 ) -> list[_Cohort]:
    T = Y.shape[1]
    out = []
    for a in np.unique(adopt[adopt < T]):
        a = int(a)
        tr = np.flatnonzero(adopt == a)
        block = np.vstack([Y[controls], Y[tr]])
        if weights is None:
            omega, lam, info = sdid_weights(block, len(controls), a, variant=variant, fw=fw)
        else:
            omega, lam = weights[a]
            info = {}
        out.append(_Cohort(a, tr, omega, lam, _block_tau(block, len(controls), a, omega, lam), info))
    return out


def _aggregate(cohorts: list[_Cohort], T: int) -> tuple[float, np.ndarray]:
    w = np.array([len(c.treated) * (T - c.a) for c in cohorts], dtype=float)
    w /= w.sum()
    return float(sum(wi * c.tau for wi, c in zip(w, cohorts))), w


def _residualise(df: pd.DataFrame, P: _Panel, y: str, unit: str, time: str, treatment: str,
                 covariates: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    from evaluering.estimators._fe import demean, factorize

    require_columns(df, covariates)
    d = df.set_index([unit, time]).reindex(pd.MultiIndex.from_product([P.units, P.times]))
    X = d[list(covariates)].to_numpy(dtype=float)
    yv = d[y].to_numpy(dtype=float)
    untreated = d[treatment].to_numpy(dtype=float) == 0
    gu, _ = factorize(np.repeat(np.arange(len(P.units)), len(P.times))[untreated])
    gt, _ = factorize(np.tile(np.arange(len(P.times)), len(P.units))[untreated])
    Z = demean(np.column_stack([yv[untreated], X[untreated]]), [gu, gt])
    beta, *_ = np.linalg.lstsq(Z[:, 1:], Z[:, 0], rcond=None)
    return (yv - X @ beta).reshape(len(P.units), len(P.times)), beta


def synthdid(data, y: str, unit: str, time: str, treatment: str, *,
             covariates: Sequence[str] | None = None,
             inference: str = "placebo", n_reps: int = 200, seed: int | None = None,
             alpha: float = 0.05, variant: str = "sdid", fw: str = "exact") -> EstimateResult:
    """Synthetic difference-in-differences (Arkhangelsky et al. 2021); see the module docstring.

    Parameters
    ----------
    data : long balanced panel (pandas DataFrame or pyarrow Table).
    y, unit, time, treatment : column names; ``treatment`` is the 0/1 absorbing indicator.
    covariates : optional time-varying covariates, partialled out first (see module doc).
    inference : ``placebo`` | ``jackknife`` | ``bootstrap`` | ``none``.
    n_reps : placebo / bootstrap replications. seed : random seed.
    variant : ``sdid`` (default), ``sc`` (synthetic control weights, no time weights, as the
        ``sc_estimate`` of the synthdid paper) or ``did`` (uniform weights = plain DiD).
    fw : ``exact`` (exact QP minimisers, default) or ``synthdid`` (early-stopped Frank–Wolfe
        with a sparsified second pass, the R package's documented default).

    Components: ``unit_weights`` (cohort, unit, weight), ``time_weights`` (cohort, time,
    weight), ``cohorts`` (cohort, n_treated, n_post, estimate, weight), ``trajectories``
    (cohort, time, treated, synthetic: the treated mean and the weighted control mean).
    """
    if inference not in ("placebo", "jackknife", "bootstrap", "none"):
        raise ValueError(f"unknown inference {inference!r}")
    P, df = _to_panel(data, y, unit, time, treatment, extra=covariates or ())
    Y = P.Y
    info: dict[str, Any] = {"variant": variant, "fw": fw}
    if covariates:
        Y, beta = _residualise(df, P, y, unit, time, treatment, covariates)
        info["covariate_coefficients"] = {c: float(b) for c, b in zip(covariates, beta)}
    T = len(P.times)
    controls = np.flatnonzero(P.adopt == T)
    cohorts = _fit_cohorts(Y, P.adopt, controls, variant, fw)
    tau, cw = _aggregate(cohorts, T)
    rng = np.random.default_rng(seed)

    se = np.nan
    reps: list[float] = []
    if inference == "placebo":
        n_tr = int((P.adopt < T).sum())
        if len(controls) <= n_tr:
            raise EstimationError("placebo inference needs more control units than treated units")
        treated_adopt = P.adopt[P.adopt < T]
        Y0 = Y[controls]
        for _ in range(n_reps):
            perm = rng.permutation(len(controls))
            fake_adopt = np.full(len(controls), T)
            fake_adopt[perm[:n_tr]] = treated_adopt
            pc = _fit_cohorts(Y0, fake_adopt, perm[n_tr:], variant, fw)
            reps.append(_aggregate(pc, T)[0])
        se = float(np.sqrt(np.mean((np.array(reps) - np.mean(reps)) ** 2)))
    elif inference == "jackknife":
        n_tr = int((P.adopt < T).sum())
        if n_tr < 2:
            raise EstimationError("the jackknife SE is not defined with a single treated unit "
                                  "(Arkhangelsky et al. 2021, Algorithm 3); use placebo")
        fixed = {c.a: (c.omega, c.lam) for c in cohorts}
        N = len(P.units)
        for i in range(N):
            keep = np.setdiff1d(np.arange(N), [i])
            ctrl_pos = np.flatnonzero(P.adopt[keep] == T)
            if i in controls:
                j = int(np.flatnonzero(controls == i)[0])
                w = {a: (np.delete(om, j), lm) for a, (om, lm) in fixed.items()}
                if any(om.sum() <= 0 for om, _ in w.values()):
                    continue  # dropping the only weighted control leaves nothing; skip
                w = {a: (om / om.sum(), lm) for a, (om, lm) in w.items()}
            else:
                w = fixed
            pc = _fit_cohorts(Y[keep], P.adopt[keep], ctrl_pos, variant, fw,
                              weights={a: w[a] for a in np.unique(P.adopt[keep][P.adopt[keep] < T])})
            reps.append(_aggregate(pc, T)[0])
        r = np.array(reps)
        se = float(np.sqrt((len(r) - 1) / len(r) * np.sum((r - r.mean()) ** 2)))
    elif inference == "bootstrap":
        N = len(P.units)
        tries = 0
        while len(reps) < n_reps:
            tries += 1
            if tries > 20 * n_reps:
                raise EstimationError("bootstrap: too many draws without treated or control units")
            idx = rng.integers(0, N, N)
            ad = P.adopt[idx]
            if (ad == T).all() or (ad < T).all():
                continue
            pc = _fit_cohorts(Y[idx], ad, np.flatnonzero(ad == T), variant, fw)
            reps.append(_aggregate(pc, T)[0])
        r = np.array(reps)
        se = float(np.sqrt(np.mean((r - r.mean()) ** 2)))
    z = stats.norm.ppf(1 - alpha / 2)
    if np.isfinite(se) and se > 0:
        ci = (tau - z * se, tau + z * se)
        p = float(2 * stats.norm.sf(abs(tau) / se))
    else:
        ci, p = (np.nan, np.nan), np.nan

    uw, tw, cr, tr_rows = [], [], [], []
    for c, wgt in zip(cohorts, cw):
        ca = P.times[c.a]
        uw.append(pd.DataFrame({"cohort": ca, "unit": P.units[controls], "weight": c.omega}))
        tw.append(pd.DataFrame({"cohort": ca, "time": P.times[: c.a], "weight": c.lam}))
        cr.append({"cohort": ca, "n_treated": len(c.treated), "n_post": T - c.a,
                   "estimate": c.tau, "weight": float(wgt)})
        tr_rows.append(pd.DataFrame({"cohort": ca, "time": P.times,
                                     "treated": Y[c.treated].mean(axis=0),
                                     "synthetic": c.omega @ Y[controls]}))
        for k, v in c.info.items():
            info[f"{k}[{ca}]" if len(cohorts) > 1 else k] = float(v)
    components = {"unit_weights": pd.concat(uw, ignore_index=True),
                  "time_weights": pd.concat(tw, ignore_index=True),
                  "cohorts": pd.DataFrame(cr),
                  "trajectories": pd.concat(tr_rows, ignore_index=True)}
    if reps:
        components["replications"] = pd.DataFrame({"estimate": reps})
    info.update({"n_reps": len(reps), "seed": seed, "n_controls": len(controls),
                 "n_treated": int((P.adopt < T).sum()), "n_periods": T})
    method = {"sdid": "sdid", "sc": "sc", "did": "did"}[variant]
    return EstimateResult(method=method, estimate=tau, se=se, ci=ci, p=p, n_obs=int(Y.size),
                          n_units=len(P.units), inference=inference, alpha=alpha,
                          components=components, info=info)


# --------------------------------------------------------------------------------------------
# synthetic control (ADH)


def _predictor_matrix(df: pd.DataFrame, P: _Panel, unit: str, time: str,
                      covariates, pre_times: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(K, N) matrix of predictors: means of a variable over periods (NaN ignored)."""
    if isinstance(covariates, Mapping):
        specs = list(covariates.items())
    else:
        specs = [(c, None) if isinstance(c, str) else tuple(c) for c in covariates]
    rows, names = [], []
    for var, periods in specs:
        require_columns(df, [var], no_missing=False)
        per = pre_times if periods is None else np.atleast_1d(np.asarray(list(periods)
                                                                         if not np.isscalar(periods)
                                                                         else [periods]))
        sub = df[df[time].isin(per)]
        m = sub.groupby(unit)[var].mean().reindex(P.units)
        if m.isna().any():
            bad = list(m.index[m.isna()][:5])
            raise EstimationError(f"predictor '{var}' has no non-missing value in periods "
                                  f"{list(per)[:3]}... for unit(s) {bad}")
        rows.append(m.to_numpy(dtype=float))
        lab = var if periods is None else f"{var}[{per[0]}" + (f"-{per[-1]}]" if len(per) > 1 else "]")
        names.append(lab)
    return np.vstack(rows), names


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.concatenate([[0.0], z])
    e = np.exp(z - z.max())
    return e / e.sum()


class _SCProblem:
    """Weights for one treated series given donors; V chosen per ``v_method``."""

    n_screen = 300
    n_refine = 2

    def __init__(self, X1, X0, Z1, Z0, ridge, v_method):
        self.X1, self.X0, self.Z1, self.Z0 = X1, X0, Z1, Z0
        self.ridge = ridge
        self.v_method = v_method

    def weights(self, v):
        s = np.sqrt(v)
        last = getattr(self, "_last", None)
        w = simplex_qp(s[:, None] * self.X0, s * self.X1, self.ridge, x0=last,
                       warm_iters=50 if last is None else 0)
        self._last = w
        return w

    def loss(self, v):
        w = self.weights(v)
        r = self.Z1 - self.Z0 @ w
        return float(r @ r) / len(r)

    def solve(self, v_reg):
        K = len(self.X1)
        if K == 0 or self.v_method == "equal":
            v = np.full(K, 1.0 / K)
            return v, self.weights(v)
        if self.v_method == "regression" or K == 1:
            return v_reg, self.weights(v_reg)
        # the MSPE as a function of V is non-convex with flat regions: screen random V's
        # (Dirichlet, fixed seed) plus the equal and regression starts, then refine the best
        # few with Nelder–Mead on a softmax parameterisation.
        rng = np.random.default_rng(20100401)
        cands = [np.full(K, 1.0 / K), v_reg, *rng.dirichlet(np.full(K, 0.3), self.n_screen)]
        scored = sorted(((self.loss(c), i) for i, c in enumerate(cands)))
        best = None
        for _, i in scored[: self.n_refine]:
            z0 = np.log(np.maximum(cands[i], 1e-8))
            z0 = z0[1:] - z0[0]
            res = optimize.minimize(lambda z: self.loss(_softmax(z)), z0, method="Nelder-Mead",
                                    options={"xatol": 1e-5, "fatol": 1e-9, "maxfev": 150 * K})
            if best is None or res.fun < best.fun:
                best = res
        v = _softmax(best.x)
        return v, self.weights(v)


def _regression_v(X: np.ndarray, Zpre: np.ndarray) -> np.ndarray:
    """V from cross-section regressions of each pre-period outcome on the predictors.

    X: (K, N) standardised predictors, Zpre: (T0, N). v_h ∝ sum_t beta_{h,t}^2.
    """
    K, N = X.shape
    if N <= K + 1:
        return np.full(K, 1.0 / K)
    R = np.column_stack([np.ones(N), X.T])
    B, *_ = np.linalg.lstsq(R, Zpre.T, rcond=None)
    v = np.sum(B[1:] ** 2, axis=1)
    if not np.isfinite(v).all() or v.sum() <= 0:
        return np.full(K, 1.0 / K)
    return v / v.sum()


def synthetic_control(data, y: str, unit: str, time: str, treatment: str, *,
                      covariates=None, pre_periods: Sequence | None = None,
                      v_method: str = "regression", placebo: bool = True,
                      alpha: float = 0.05) -> EstimateResult:
    """Synthetic control (Abadie, Diamond & Hainmueller 2010); see the module docstring.

    Parameters
    ----------
    covariates : None (predictors = every pre-period outcome, equally weighted), or a list of
        column names (mean over the pre-period) and/or ``(column, periods)`` pairs (mean over
        those periods; use the outcome column with single periods for lagged outcomes), or a
        mapping ``{column: periods or None}``. Missing values are ignored in the means.
    pre_periods : periods whose outcome fit chooses ``V`` (``v_method="optimize"``) and that
        define the pre-period MSPE; default all periods before treatment.
    v_method : ``regression`` (default) or ``optimize`` (ADH nested MSPE minimisation), or
        ``equal``. Irrelevant without covariates.
    placebo : run in-space placebos for ``p``/``se``/``ci`` (otherwise they are NaN).

    Components: ``unit_weights`` (unit, weight), ``time_weights`` (empty), ``gaps`` (time,
    treated, synthetic, gap), ``placebos`` (unit, pre_mspe, post_mspe, ratio, treated),
    ``predictors`` (predictor, v, treated, synthetic, donor_mean) when covariates are given.
    """
    if v_method not in ("regression", "optimize", "equal"):
        raise ValueError(f"unknown v_method {v_method!r}")
    extra = []
    if covariates is not None:
        if isinstance(covariates, Mapping):
            extra = list(covariates)
        else:
            extra = [c if isinstance(c, str) else c[0] for c in covariates]
    P, df = _to_panel(data, y, unit, time, treatment, extra=[c for c in extra if c != y])
    if covariates is not None:
        # covariates may be missing; the outcome may not. Re-read them from the raw frame.
        df = as_frame(data)
    T = len(P.times)
    treated = np.flatnonzero(P.adopt < T)
    donors = np.flatnonzero(P.adopt == T)
    if len(np.unique(P.adopt[treated])) > 1:
        raise EstimationError("synthetic_control needs one common adoption period; for "
                              "staggered adoption use synthdid (per-cohort estimates)")
    a = int(P.adopt[treated[0]])
    pre_mask = np.arange(T) < a
    if pre_periods is not None:
        fit_mask = np.isin(P.times, np.asarray(list(pre_periods))) & pre_mask
        if not fit_mask.any():
            raise EstimationError("pre_periods selects no pre-treatment period")
    else:
        fit_mask = pre_mask
    post_mask = ~pre_mask
    Y = P.Y
    sigma = _noise_level(Y[donors][:, pre_mask])
    if covariates is None:
        Xall = Y[:, fit_mask].T  # (K=T0, N)
        names = [f"{y}[{t}]" for t in P.times[fit_mask]]
        v_used = "equal"
    else:
        Xall, names = _predictor_matrix(df, P, unit, time, covariates, P.times[pre_mask])
        sd = Xall.std(axis=1, ddof=1)
        sd[sd == 0] = 1.0
        Xall = Xall / sd[:, None]
        v_used = v_method

    def fit(tr_rows: np.ndarray, pool: np.ndarray):
        X1 = Xall[:, tr_rows].mean(axis=1)
        X0 = Xall[:, pool]
        Z1 = Y[tr_rows][:, fit_mask].mean(axis=0)
        Z0 = Y[pool][:, fit_mask].T
        ridge = (1e-6 * sigma) ** 2 * len(X1)
        prob = _SCProblem(X1, X0, Z1, Z0, ridge, v_used)
        v_reg = _regression_v(Xall[:, np.concatenate([tr_rows, pool])],
                              Y[np.concatenate([tr_rows, pool])][:, fit_mask].T) \
            if v_used != "equal" else None
        v, w = prob.solve(v_reg)
        synth = w @ Y[pool]
        return v, w, Y[tr_rows].mean(axis=0), synth

    v, w, ytr, synth = fit(treated, donors)
    gap = ytr - synth
    estimate = float(gap[post_mask].mean())

    def mspes(g):
        return float(np.mean(g[pre_mask] ** 2)), float(np.mean(g[post_mask] ** 2))

    pre_m, post_m = mspes(gap)
    rows = [{"unit": "(treated)" if len(treated) > 1 else P.units[treated[0]],
             "pre_mspe": pre_m, "post_mspe": post_m,
             "ratio": post_m / pre_m if pre_m > 0 else np.inf, "estimate": estimate,
             "treated": True}]
    se, ci, p = np.nan, (np.nan, np.nan), np.nan
    if placebo:
        for j in donors:
            pool = donors[donors != j]
            _, _, yj, sj = fit(np.array([j]), pool)
            g = yj - sj
            a1, b1 = mspes(g)
            rows.append({"unit": P.units[j], "pre_mspe": a1, "post_mspe": b1,
                         "ratio": b1 / a1 if a1 > 0 else np.inf,
                         "estimate": float(g[post_mask].mean()), "treated": False})
        ratios = np.array([r["ratio"] for r in rows])
        p = float(np.mean(ratios >= ratios[0]))
        pe = np.array([r["estimate"] for r in rows[1:]])
        se = float(np.sqrt(np.mean((pe - pe.mean()) ** 2)))
        z = stats.norm.ppf(1 - alpha / 2)
        ci = (estimate - z * se, estimate + z * se)
    components = {
        "unit_weights": pd.DataFrame({"unit": P.units[donors], "weight": w}),
        "time_weights": pd.DataFrame({"time": pd.Series([], dtype=P.times.dtype),
                                      "weight": pd.Series([], dtype=float)}),
        "gaps": pd.DataFrame({"time": P.times, "treated": ytr, "synthetic": synth, "gap": gap}),
        "placebos": pd.DataFrame(rows),
    }
    if covariates is not None:
        components["predictors"] = pd.DataFrame({
            "predictor": names, "v": v, "treated": Xall[:, treated].mean(axis=1) * sd,
            "synthetic": (Xall[:, donors] @ w) * sd, "donor_mean": Xall[:, donors].mean(axis=1) * sd})
    info = {"v_method": v_used, "n_treated": len(treated), "n_donors": len(donors),
            "pre_rmspe": float(np.sqrt(pre_m)), "first_treated_period": _clean_scalar(P.times[a]),
            "p_rank": p, "multiple_treated": "average of treated units" if len(treated) > 1 else "no"}
    return EstimateResult(method="sc", estimate=estimate, se=se, ci=ci, p=p, n_obs=int(Y.size),
                          n_units=len(P.units), inference="placebo" if placebo else "none",
                          alpha=alpha, components=components, info=info)


def _clean_scalar(x):
    return x.item() if hasattr(x, "item") else x


def plot_trajectories(result: EstimateResult, ax=None):
    """Treated vs synthetic outcome paths (``gaps`` of SC or ``trajectories`` of SDID)."""
    from evaluering.plotting import _axes

    ax = _axes(ax)
    if "gaps" in result.components:
        g = result.components["gaps"]
        ax.plot(g["time"], g["treated"], label="treated")
        ax.plot(g["time"], g["synthetic"], ls="--", label="synthetic control")
    else:
        g = result.components["trajectories"]
        for c, sub in g.groupby("cohort"):
            ax.plot(sub["time"], sub["treated"], label=f"treated (cohort {c})")
            ax.plot(sub["time"], sub["synthetic"], ls="--", label=f"weighted controls ({c})")
            ax.axvline(c, color="grey", lw=0.8, ls=":")
    ax.legend()
    ax.set_title(result.method)
    return ax
