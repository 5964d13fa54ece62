"""Discrete-time hazard difference-in-differences on aggregated (cell × week) counts.

Model: for spells at risk in week ``t`` of their spell (duration week), in cell ``c``
(municipality × start period × group ...), the probability of exit to job in that week is

    g(h_ct) = alpha_t + mu_kommune + tau_calendar + beta * treated×post [+ gamma' x]

with ``g`` the complementary log-log link (then ``exp(beta)`` is the hazard ratio of the
grouped-time proportional-hazards model, Prentice & Gloeckler 1978, directly comparable to a
Cox estimate) or the logit link (odds ratio). The Bernoulli likelihood of the person-week
data only depends on the cell counts ``(events, at_risk)``, so the model is fitted as a
binomial GLM on the cells: same estimates as the person-week fit, orders of magnitude fewer
rows.

Estimation: IRLS. Each step solves the weighted least-squares problem for *all* parameters
(fixed effects as dummies, reference-coded) through its normal equations, which are built
from sufficient statistics with ``np.bincount`` (cross-tabulations for the fixed-effect blocks),
so the cost per step is a few passes over the cells and one dense solve of modest width
(~ weeks + municipalities + calendar periods + regressors). No n × p design is formed.

Inference: model-based (inverse Fisher information) or cluster-robust sandwich
``H^-1 (sum_c s_c s_c') H^-1`` with ``s_c`` the score summed over the cells of cluster ``c``.
Cells are nested in clusters, so the cell score is the sum of its person-week scores and the
clustered variance equals the one of the person-week fit exactly. Small-sample factor
``G / (G - 1)`` (as Stata's ``vce(cluster)`` for maximum-likelihood models; no (N-1)/(N-K)
factor, which would differ between the cell and the person-week fit).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import linalg, stats

from evaluering.errors import EstimationError
from evaluering.estimators._fe import factorize
from evaluering.results import EstimateResult
from evaluering.survival.km import _as_frame, _as_list, _check_columns, event_codes


# --------------------------------------------------------------------------- cells


def spells_to_cells(data, *, duration: str = "varighed_uger", status: str = "status",
                    by: Sequence[str] = ("kommune_kode",), event: Any = "job",
                    competing: Any = ("uddannelse",), max_week: int | None = None) -> pd.DataFrame:
    """Aggregate a person-level spell table to discrete-time cells (``by`` × duration week).

    Output columns: ``[*by, uge, n_risiko, n_job, n_uddannelse, n_censur]`` where ``n_job``
    counts exits to ``event`` in that week, ``n_uddannelse`` exits to ``competing``, and
    ``n_censur`` the rest; ``n_risiko`` = spells with duration >= uge. Weeks with nobody at
    risk are left out. With ``max_week`` only weeks <= max_week are kept.

    This is the in-memory equivalent of the outcomes layer's DuckDB aggregation, used for
    tests and simulations.
    """
    df = _as_frame(data)
    by = _as_list(by)
    _check_columns(df, [duration, status, *by])
    t = pd.to_numeric(df[duration]).to_numpy()
    if (t < 0).any() or not np.all(np.equal(np.mod(t, 1), 0)):
        raise EstimationError(f"column '{duration}' must hold integer weeks >= 0")
    t = t.astype(np.int64)
    code = event_codes(df[status], event, competing)
    if by:
        cell_id = df.groupby(by, sort=True, observed=True).ngroup().to_numpy().astype(np.int64)
        _, first_row = np.unique(cell_id, return_index=True)
        levels = df[by].iloc[first_row].reset_index(drop=True)
        n_cells = len(first_row)
    else:
        cell_id, n_cells = np.zeros(len(df), dtype=np.int64), 1
    T = int(t.max()) + 1 if len(t) else 1
    idx = cell_id * T + t
    size = n_cells * T
    exits = np.bincount(idx, minlength=size).reshape(n_cells, T)
    ev = np.bincount(idx, weights=(code == 1), minlength=size).reshape(n_cells, T)
    cp = np.bincount(idx, weights=(code == 2), minlength=size).reshape(n_cells, T)
    risk = exits[:, ::-1].cumsum(axis=1)[:, ::-1]
    keep = risk > 0
    if max_week is not None:
        keep[:, max_week + 1:] = False
    ci, wk = np.nonzero(keep)
    out = pd.DataFrame()
    if by:
        for c in by:
            out[c] = levels[c].to_numpy()[ci]
    out["uge"] = wk.astype(np.int64)
    out["n_risiko"] = risk[ci, wk].astype(np.int64)
    out["n_job"] = ev[ci, wk].astype(np.int64)
    out["n_uddannelse"] = cp[ci, wk].astype(np.int64)
    out["n_censur"] = (exits[ci, wk] - ev[ci, wk] - cp[ci, wk]).astype(np.int64)
    return out


def expand_cells(cells: pd.DataFrame, *, events: str = "n_job", at_risk: str = "n_risiko") -> pd.DataFrame:
    """Person-week (Bernoulli) rows from cells: ``at_risk`` rows per cell, ``events`` of them y=1.

    For tests and small examples only (the whole point of the cell fit is to avoid this).
    """
    n = cells[at_risk].to_numpy(dtype=np.int64)
    d = cells[events].to_numpy(dtype=np.int64)
    rep = np.repeat(np.arange(len(cells)), n)
    out = cells.iloc[rep].reset_index(drop=True)
    # within each cell the first d rows are events
    start = np.repeat(np.cumsum(n) - n, n)
    pos = np.arange(len(rep)) - start
    out["y"] = (pos < np.repeat(d, n)).astype(np.int64)
    return out


# --------------------------------------------------------------------------- links


class _Link:
    name: str

    def link(self, mu):
        raise NotImplementedError

    def inverse(self, eta):
        raise NotImplementedError

    def deriv_inverse(self, eta):
        raise NotImplementedError

    def dq(self, eta, mu):
        """Derivative of q = (dmu/deta) / (mu (1 - mu)) with respect to eta (0 for canonical)."""
        raise NotImplementedError


class _CLogLog(_Link):
    name = "cloglog"

    def link(self, mu):
        return np.log(-np.log1p(-mu))

    def inverse(self, eta):
        return -np.expm1(-np.exp(eta))

    def deriv_inverse(self, eta):
        return np.exp(eta - np.exp(eta))

    def dq(self, eta, mu):
        # q = e^eta / mu, so q' = e^eta (mu - dmu/deta) / mu^2
        e = np.exp(eta)
        return e * (mu - e * (1 - mu)) / mu ** 2


class _Logit(_Link):
    name = "logit"

    def link(self, mu):
        return np.log(mu) - np.log1p(-mu)

    def inverse(self, eta):
        return 1.0 / (1.0 + np.exp(-eta))

    def deriv_inverse(self, eta):
        m = 1.0 / (1.0 + np.exp(-eta))
        return m * (1 - m)

    def dq(self, eta, mu):
        return np.zeros_like(eta)


_LINKS = {"cloglog": _CLogLog(), "logit": _Logit()}


def _binom_deviance(d, n, mu):
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(d > 0, d * np.log(d / (n * mu)), 0.0)
        t2 = np.where(n - d > 0, (n - d) * np.log((n - d) / (n * (1 - mu))), 0.0)
    return 2.0 * float(np.sum(t1 + t2))


# --------------------------------------------------------------------------- design


class _Design:
    """Reference-coded fixed effects + dense regressors, with bincount-built cross products."""

    def __init__(self, fe_codes: list[np.ndarray], fe_sizes: list[int], X: np.ndarray):
        self.codes = fe_codes
        self.sizes = fe_sizes
        self.X = X
        # parameter layout: intercept, then levels 1.. of each FE, then X columns
        self.offsets = []
        pos = 1
        for s in fe_sizes:
            self.offsets.append(pos - 1)  # level l (>=1) of this FE is column offset + l
            pos += s - 1
        self.n_fe_params = pos
        self.p = pos + X.shape[1]

    def linear(self, theta: np.ndarray) -> np.ndarray:
        eta = np.full(len(self.X), theta[0])
        for g, s, off in zip(self.codes, self.sizes, self.offsets):
            coef = np.r_[0.0, theta[off + 1: off + s]]
            eta += coef[g]
        if self.X.shape[1]:
            eta += self.X @ theta[self.n_fe_params:]
        return eta

    def _fe_cols(self, g: np.ndarray, s: int, off: int, w: np.ndarray) -> np.ndarray:
        return np.bincount(g, weights=w, minlength=s)[1:]

    def crossprod(self, w: np.ndarray) -> np.ndarray:
        """Z' diag(w) Z."""
        p = self.p
        H = np.zeros((p, p))
        H[0, 0] = w.sum()
        fe = list(zip(self.codes, self.sizes, self.offsets))
        for a, (g, s, off) in enumerate(fe):
            sl = slice(off + 1, off + s)
            col = self._fe_cols(g, s, off, w)
            H[0, sl] = col
            H[sl, sl] = np.diag(col)
            for g2, s2, off2 in fe[a + 1:]:
                tab = np.bincount(g * s2 + g2, weights=w, minlength=s * s2).reshape(s, s2)[1:, 1:]
                H[sl, off2 + 1: off2 + s2] = tab
        k = self.X.shape[1]
        if k:
            xs = slice(self.n_fe_params, p)
            WX = self.X * w[:, None]
            H[0, xs] = WX.sum(axis=0)
            for g, s, off in fe:
                for j in range(k):
                    H[off + 1: off + s, self.n_fe_params + j] = np.bincount(
                        g, weights=WX[:, j], minlength=s)[1:]
            H[xs, xs] = self.X.T @ WX
        iu = np.triu_indices(p, 1)
        H[(iu[1], iu[0])] = H[iu]
        return H

    def tvec(self, v: np.ndarray) -> np.ndarray:
        """Z' v."""
        out = np.empty(self.p)
        out[0] = v.sum()
        for g, s, off in zip(self.codes, self.sizes, self.offsets):
            out[off + 1: off + s] = np.bincount(g, weights=v, minlength=s)[1:]
        if self.X.shape[1]:
            out[self.n_fe_params:] = self.X.T @ v
        return out

    def cluster_scores(self, v: np.ndarray, cl: np.ndarray, G: int) -> np.ndarray:
        """(G × p) matrix of Z' v summed by cluster."""
        S = np.zeros((G, self.p))
        S[:, 0] = np.bincount(cl, weights=v, minlength=G)
        for g, s, off in zip(self.codes, self.sizes, self.offsets):
            S[:, off + 1: off + s] = np.bincount(cl * s + g, weights=v, minlength=G * s).reshape(G, s)[:, 1:]
        for j in range(self.X.shape[1]):
            S[:, self.n_fe_params + j] = np.bincount(cl, weights=v * self.X[:, j], minlength=G)
        return S


def _pinv_sym(H: np.ndarray, rtol: float = 1e-10) -> tuple[np.ndarray, int]:
    """Moore–Penrose inverse of a symmetric PSD matrix (scaled to unit diagonal first)."""
    d = np.sqrt(np.clip(np.diag(H), 1e-300, None))
    Hs = H / d[:, None] / d[None, :]
    vals, vecs = linalg.eigh(Hs)
    keep = vals > rtol * vals.max()
    inv = (vecs[:, keep] / vals[keep]) @ vecs[:, keep].T
    return inv / d[:, None] / d[None, :], int(keep.sum())


def _solve_sym(H: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve H x = b for symmetric PSD H: Cholesky, minimum-norm solution if singular."""
    try:
        return linalg.cho_solve(linalg.cho_factor(H), b)
    except linalg.LinAlgError:
        return _pinv_sym(H)[0] @ b


def _inv_sym(H: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive (semi)definite matrix: Cholesky, else Moore–Penrose."""
    try:
        return linalg.cho_solve(linalg.cho_factor(H), np.eye(len(H)))
    except linalg.LinAlgError:
        return _pinv_sym(H)[0]


def _drop_separated(df: pd.DataFrame, fe_cols: list[str], d_col: str, n_col: str) -> tuple[pd.DataFrame, int]:
    """Drop cells of fixed-effect levels with no events (or only events) at all.

    Their maximum-likelihood fixed effect is -inf (+inf); the cells then contribute nothing
    to the likelihood of the other parameters, so dropping them changes no estimate and lets
    IRLS converge quadratically. Repeated until stable.
    """
    n0 = len(df)
    while True:
        bad = np.zeros(len(df), dtype=bool)
        for c in fe_cols:
            tot = df.groupby(c, sort=False, observed=True)[[d_col, n_col]].transform("sum")
            bad |= (tot[d_col].to_numpy() == 0) | (tot[d_col].to_numpy() == tot[n_col].to_numpy())
        if not bad.any():
            return df, n0 - len(df)
        df = df[~bad]


def _irls(design: _Design, d, n, lk: _Link, mu0, tol: float, maxiter: int):
    """IRLS for the binomial GLM on cells; returns (theta, eta, iterations, deviance)."""
    eta = lk.link(mu0)
    dev_old = np.inf
    theta = np.zeros(design.p)
    for it in range(1, maxiter + 1):
        mu = np.clip(lk.inverse(eta), 1e-15, 1 - 1e-15)
        dmu = np.maximum(lk.deriv_inverse(eta), 1e-300)
        w = n * dmu ** 2 / (mu * (1 - mu))
        z = eta + (d / n - mu) / dmu
        H = design.crossprod(w)
        rhs = design.tvec(w * z)
        theta_old = theta
        theta = _solve_sym(H, rhs)
        eta = design.linear(theta)
        mu = np.clip(lk.inverse(eta), 1e-15, 1 - 1e-15)
        dev = _binom_deviance(d, n, mu)
        step = np.max(np.abs(theta - theta_old)) if it > 1 else np.inf
        if abs(dev - dev_old) <= tol * (abs(dev) + 0.1) or step < 1e-11:
            return theta, eta, it, dev
        dev_old = dev
    raise EstimationError(f"IRLS did not converge in {maxiter} iterations")


def _score_bootstrap(design: _Design, d, n, lk: _Link, mu0, cl, G: int, tol: float, maxiter: int,
                     draws: int, seed) -> dict:
    """Wild (Rademacher) score bootstrap test of H0: coefficient of the first regressor = 0.

    Kline & Santos (2012): fit the restricted model (first regressor left out), take the
    cluster sums of the full-model scores at the restricted estimate, project the nuisance
    directions out with the restricted information (efficient score ``s_c``), and compare
    ``T = (sum s_c)^2 / sum s_c^2`` with ``T* = (sum v_c s_c)^2 / sum s_c^2`` over Rademacher
    draws ``v`` (all 2^G sign vectors when G <= 12).
    """
    Xr = design.X[:, 1:]
    restricted = _Design(design.codes, design.sizes, Xr)
    _, eta_r, _, _ = _irls(restricted, d, n, lk, mu0, tol, maxiter)
    mu = np.clip(lk.inverse(eta_r), 1e-15, 1 - 1e-15)
    dmu = np.maximum(lk.deriv_inverse(eta_r), 1e-300)
    w = n * dmu ** 2 / (mu * (1 - mu))
    score = n * (d / n - mu) * dmu / (mu * (1 - mu))
    H = design.crossprod(w)
    S = design.cluster_scores(score, cl, G)
    j = design.n_fe_params  # the tested coefficient
    nuis = [k for k in range(design.p) if k != j]
    proj = _solve_sym(H[np.ix_(nuis, nuis)], H[nuis, j])
    s = S[:, j] - S[:, nuis] @ proj
    return rademacher_score_test(s, draws, seed)


def rademacher_score_test(s: np.ndarray, draws: int, seed=None) -> dict:
    """Wild (Rademacher) bootstrap of the self-normalised score statistic.

    ``s``: efficient score contributions per cluster (nuisance directions projected out, at
    the restricted estimate). ``T = (sum s)^2 / sum s^2``; ``T* = (sum v s)^2 / sum s^2``
    with Rademacher ``v`` (every sign vector when there are <= 12 clusters). Returns the
    statistic, the bootstrap p-value P(T* >= T) and the number of draws.
    """
    s = np.asarray(s, dtype=float)
    G = len(s)
    denom = float(np.sum(s ** 2))
    if denom <= 0:
        raise EstimationError("all cluster scores are zero: nothing to test")
    T = float(np.sum(s)) ** 2 / denom
    if G <= 12:
        v = 1 - 2 * ((np.arange(2 ** G)[:, None] >> np.arange(G)[None, :]) & 1)
    else:
        rng = np.random.default_rng(seed)
        v = rng.choice(np.array([-1.0, 1.0]), size=(int(draws), G))
    Tb = (v @ s) ** 2 / denom
    return {"score_statistic": T, "p_score_bootstrap": float(np.mean(Tb >= T - 1e-12 * T)),
            "bootstrap_draws": int(len(v))}


# --------------------------------------------------------------------------- estimator


def discrete_hazard_did(cells, *, events: str = "n_job", at_risk: str = "n_risiko",
                        treated: str, post: str | None, duration: str = "uge",
                        unit_effects: str | Sequence[str] | None = "kommune_kode",
                        time_effects: str | Sequence[str] | None = None,
                        covariates: Sequence[str] | None = None, link: str = "cloglog",
                        cluster: str | None = "kommune_kode", max_week: int | None = None,
                        alpha: float = 0.05, tol: float = 1e-13, maxiter: int = 100,
                        bootstrap: int = 0, seed: int | None = None) -> EstimateResult:
    """Discrete-time hazard DiD: binomial GLM on (events, at_risk) cells with fixed effects.

    Parameters
    ----------
    cells : aggregated table, one row per cell and duration week (``uge``).
    events, at_risk : count columns (exits to job; spells at risk in that week).
    treated, post : 0/1 columns; the DiD regressor is ``treated * post``. The main effects are
        included unless the fixed effects absorb them (reported in ``info['dropped']``). With
        ``post=None``, ``treated`` is taken as the exposure indicator itself (staggered starts).
    duration : duration-week column; its levels form the baseline hazard (fixed effects).
    unit_effects, time_effects : fixed-effect columns (municipality; calendar period such as
        ``start_kvartal``). Several columns allowed.
    covariates : numeric columns entered linearly.
    link : ``"cloglog"`` (log hazard ratio; comparable to Cox) or ``"logit"`` (log odds ratio).
    cluster : cluster column for the robust sandwich (cells must be nested in clusters);
        ``None`` gives model-based standard errors.
    max_week : keep duration weeks <= max_week only.
    bootstrap : number of Rademacher draws for a wild cluster *score* bootstrap p-value of
        H0: no effect (Kline & Santos 2012; all 2^G sign vectors when G <= 12); needs
        ``cluster``. Reported as ``info['p_score_bootstrap']``; recommended with few treated
        municipalities, where the clustered sandwich is too small.

    Returns an :class:`~evaluering.results.EstimateResult` with ``estimate`` = coefficient of
    treated×post, ``info['hazard_ratio']`` (or odds ratio) and its interval, and the component
    ``coefficients`` (all non-fixed-effect coefficients) and ``baseline`` (duration-week
    hazard of the reference cell).
    """
    if link not in _LINKS:
        raise EstimationError(f"unknown link {link!r} (expected 'cloglog' or 'logit')")
    lk = _LINKS[link]
    df = _as_frame(cells)
    unit_cols = _as_list(unit_effects)
    time_cols = _as_list(time_effects)
    covs = _as_list(covariates)
    need = [events, at_risk, treated, duration, *unit_cols, *time_cols, *covs]
    if post is not None:
        need.append(post)
    if cluster is not None:
        need.append(cluster)
    _check_columns(df, dict.fromkeys(need))
    if max_week is not None:
        df = df[pd.to_numeric(df[duration]) <= max_week]
    df = df[df[at_risk] > 0]
    fe_cols = [duration, *unit_cols, *time_cols]
    df, n_separated = _drop_separated(df, fe_cols, events, at_risk)
    if len(df) == 0:
        raise EstimationError("no cells with spells at risk and events")
    n = df[at_risk].to_numpy(dtype=float)
    d = df[events].to_numpy(dtype=float)
    if (d < 0).any() or (d > n).any():
        raise EstimationError(f"'{events}' must lie between 0 and '{at_risk}'")
    tr = df[treated].to_numpy(dtype=float)
    names, cols = [], []
    if post is not None:
        po = df[post].to_numpy(dtype=float)
        names += ["treated_x_post", treated, post]
        cols += [tr * po, tr, po]
    else:
        names += [treated]
        cols += [tr]
    for c in covs:
        names.append(c)
        cols.append(pd.to_numeric(df[c]).to_numpy(dtype=float))
    X = np.column_stack(cols) if cols else np.zeros((len(df), 0))
    key = names[0]
    if np.ptp(X[:, 0]) == 0:
        raise EstimationError("the treatment indicator does not vary: nothing to estimate")

    codes, sizes, levels = [], [], []
    for c in fe_cols:
        g, s = factorize(df[c].to_numpy())
        codes.append(g)
        sizes.append(s)
        levels.append(np.sort(pd.unique(df[c])))

    # drop regressors the fixed effects (and earlier regressors) absorb
    design = _Design(codes, sizes, X)
    mu0 = (d + 0.5) / (n + 1.0)
    H0 = design.crossprod(n * mu0 * (1 - mu0))
    dropped: list[str] = []
    keep_cols: list[int] = []
    nf = design.n_fe_params
    if X.shape[1]:
        # Schur complement of the fixed-effect block = X'WX of the FE-partialled regressors
        Hff, Hfx = H0[:nf, :nf], H0[:nf, nf:]
        try:
            M = linalg.cho_solve(linalg.cho_factor(Hff), Hfx)
        except linalg.LinAlgError:
            M = _pinv_sym(Hff)[0] @ Hfx
        Sxx = H0[nf:, nf:] - Hfx.T @ M
        wsum = H0[0, 0]
        # reference: weighted variance × total weight of each column (intercept only)
        ref = np.diag(H0[nf:, nf:]) - H0[0, nf:] ** 2 / wsum
        for j in range(X.shape[1]):
            if ref[j] <= 0:
                resid = 0.0
            elif keep_cols:
                K = keep_cols
                resid = Sxx[j, j] - Sxx[j, K] @ np.linalg.solve(Sxx[np.ix_(K, K)], Sxx[K, j])
            else:
                resid = Sxx[j, j]
            if ref[j] > 0 and resid > 1e-9 * ref[j]:
                keep_cols.append(j)
            elif j == 0:
                raise EstimationError(f"'{key}' is collinear with the fixed effects")
            else:
                dropped.append(names[j])
    X = X[:, keep_cols]
    names = [names[j] for j in keep_cols]
    design = _Design(codes, sizes, X)

    theta, eta, it, dev = _irls(design, d, n, lk, mu0, tol, maxiter)

    # final weights and scores at the estimate
    mu = np.clip(lk.inverse(eta), 1e-15, 1 - 1e-15)
    dmu = np.maximum(lk.deriv_inverse(eta), 1e-300)
    w = n * dmu ** 2 / (mu * (1 - mu))
    H = design.crossprod(w)
    Hinv = _inv_sym(H)
    score = n * (d / n - mu) * dmu / (mu * (1 - mu))  # d loglik / d eta per cell
    bslice = slice(design.n_fe_params, design.p)
    if cluster is not None:
        cl, G = factorize(df[cluster].to_numpy())
        # cells must be nested in clusters: the cluster must be constant within each cell;
        # guaranteed when the cluster column is one of the cell keys.
        # Bread: the observed information (the Huber sandwich; equals the expected one for
        # the canonical logit link; this is also what statsmodels' GLM uses).
        w_obs = w - (d - n * mu) * lk.dq(eta, mu)
        Hobs_inv = _inv_sym(design.crossprod(w_obs))
        S = design.cluster_scores(score, cl, G)
        meat = S.T @ S
        V = (Hobs_inv @ meat @ Hobs_inv)[bslice, bslice] * (G / (G - 1))
        inference = "cluster"
        n_units = G
    else:
        V = Hinv[bslice, bslice]
        inference = "analytic"
        n_units = int(pd.Series(df[unit_cols[0]]).nunique()) if unit_cols else len(df)
    boot = {}
    if bootstrap:
        if cluster is None:
            raise EstimationError("the score bootstrap needs a cluster column")
        boot = _score_bootstrap(design, d, n, lk, mu0, cl, G, tol, maxiter, int(bootstrap), seed)
    beta = theta[bslice]
    se = np.sqrt(np.clip(np.diag(V), 0, None))
    zc = stats.norm.ppf(1 - alpha / 2)
    pvals = 2 * stats.norm.sf(np.abs(beta / se))
    coef = pd.DataFrame({"term": names, "estimate": beta, "se": se,
                         "ci_low": beta - zc * se, "ci_high": beta + zc * se, "p": pvals})
    coef["ratio"] = np.exp(coef["estimate"])
    coef["ratio_ci_low"] = np.exp(coef["ci_low"])
    coef["ratio_ci_high"] = np.exp(coef["ci_high"])
    # baseline hazard by duration week at the reference levels of the other effects
    base_eta = theta[0] + np.r_[0.0, theta[design.offsets[0] + 1: design.offsets[0] + sizes[0]]]
    baseline = pd.DataFrame({"uge": levels[0], "hazard": lk.inverse(base_eta)})
    est, s0 = float(beta[0]), float(se[0])
    ratio = "hazard_ratio" if link == "cloglog" else "odds_ratio"
    info = {
        "link": link, ratio: float(np.exp(est)),
        f"{ratio}_ci_low": float(np.exp(est - zc * s0)), f"{ratio}_ci_high": float(np.exp(est + zc * s0)),
        "n_cells": int(len(df)), "n_cells_dropped_no_events": int(n_separated), "n_events": int(d.sum()), "iterations": it, "deviance": dev,
        "fixed_effects": ", ".join(fe_cols), "n_fixed_effect_params": int(design.n_fe_params),
        "dropped": ", ".join(dropped), "cluster": cluster or "",
        "small_sample_factor": "G/(G-1)" if cluster is not None else "",
        **boot,
        "estimand": f"coefficient of {key} ({'log hazard ratio' if link == 'cloglog' else 'log odds ratio'})",
    }
    return EstimateResult(method=f"discrete_hazard_{link}", estimate=est, se=s0,
                          ci=(est - zc * s0, est + zc * s0), p=float(pvals[0]),
                          n_obs=int(n.sum()), n_units=int(n_units), inference=inference, alpha=alpha,
                          components={"coefficients": coef, "baseline": baseline}, info=info)
