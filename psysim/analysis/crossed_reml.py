"""REML for a linear model with crossed random intercepts, by sparse algebra, and Satterthwaite
degrees of freedom for linear contrasts of its fixed effects.

    y = X beta + sum_k Z_k u_k + e,   u_k ~ N(0, theta_k I),   e ~ N(0, theta_0 I)

Each Z_k is an indicator matrix (one column per level of a grouping), so V = theta_0 H with
H = I + Z Lambda Z', Lambda = diag(theta_k / theta_0). Everything goes through the Woodbury
identity H^-1 = I - Z (Lambda^-1 + Z'Z)^-1 Z': one sparse factorisation of a q x q matrix
(q = number of random levels) per likelihood evaluation, never an n x n matrix, so the cost grows
about linearly with the number of groups (a 450-persona study takes seconds, not hours).

The residual variance is profiled out; the ratios are found by L-BFGS-B within [0, inf) from
several starts, keeping the best likelihood (a single start can stop at a worse local optimum).
Rows are used in the order given: callers sort them, so the fit does not depend on row order.

Satterthwaite df for a contrast w'beta: df = 2 phi^2 / (g' I^-1 g), phi = w' Cov(beta) w, g its
gradient in the variance components and I the expected REML information of the components
(I_kl = tr(P V_k P V_l) / 2), over the components not estimated at 0 (as lmerTest does: on the
SD scale a component at 0 has zero derivative). benchmarks/calibration.py checks the result,
the boundary setting included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, optimize, sparse
from scipy.sparse.linalg import splu

STARTS = (0.1, 1.0, 10.0)
"""Initial variance ratios tried (each applied to every component)."""
UPPER = 1e6
ZERO = 1e-8
"""A ratio below this is reported as a variance on the boundary (0)."""


@dataclass
class ContrastFit:
    estimate: float
    se: float
    df: float


@dataclass
class CrossedFit:
    """A REML fit: fixed effects, their covariance at the REML variance components, the components."""

    beta: np.ndarray
    cov_beta: np.ndarray
    components: dict[str, float]
    """Variance of each random grouping, and ``residual``."""
    minus2_reml: float
    boundary: list[str] = field(default_factory=list)
    """Components estimated at 0."""
    information_ok: bool = True
    """Whether the components' information matrix is positive definite."""
    _a: np.ndarray | None = None  # V^-1 X (n x p)
    _z: dict[str, sparse.csr_matrix] = field(default_factory=dict)
    _info_inverse: np.ndarray | None = None
    _active: list[int] = field(default_factory=list)

    def contrast(self, w: np.ndarray) -> ContrastFit:
        """``w @ beta`` with its SE and Satterthwaite df."""
        estimate = float(w @ self.beta)
        phi = float(w @ self.cov_beta @ w)
        if not phi > 0:
            return ContrastFit(estimate, 0.0, math.nan)
        assert self._a is not None and self._info_inverse is not None
        a = self._a @ (self.cov_beta @ w)  # dphi/dtheta_k = |Z_k' a|^2, dphi/dtheta_0 = |a|^2
        g = np.array([float(np.sum((z.T @ a) ** 2)) for z in self._z.values()] + [float(a @ a)])[self._active]
        var_phi = float(g @ self._info_inverse @ g)
        df = 2 * phi**2 / var_phi if var_phi > 0 else math.inf
        return ContrastFit(estimate, math.sqrt(phi), df)


def indicator(codes: np.ndarray) -> sparse.csr_matrix:
    """The n x (max code + 1) indicator matrix of integer group codes."""
    n = len(codes)
    return sparse.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, int(codes.max()) + 1 if n else 0))


DENSE_UP_TO = 600
"""Random levels up to which the q x q system is factorised densely (faster than sparse there)."""


class _Profile:
    """The profiled REML criterion at given variance ratios, and what the fit needs from it.

    With S = Lambda^(1/2): H^-1 = I - Z S M^-1 S Z', M = I + S Z'Z S, log|H| = log|M| (a ratio of
    0 needs no special case). X'H^-1X, X'H^-1y and y'H^-1y need only Z'Z, Z'[X y] and [X y]'[X y],
    computed once: an evaluation costs one q x q factorisation.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, blocks: dict[str, sparse.csr_matrix]) -> None:
        self.x, self.y, self.blocks = x, y, blocks
        self.n, self.p = x.shape
        self.xy = np.column_stack([x, y])
        self.z = sparse.hstack(list(blocks.values())).tocsc() if blocks else sparse.csc_matrix((self.n, 0))
        self.sizes = [b.shape[1] for b in blocks.values()]
        self.q = self.z.shape[1]
        self.ztz = (self.z.T @ self.z).tocsc()
        self.ztxy = np.asarray((self.z.T @ self.xy))
        self.xytxy = self.xy.T @ self.xy
        self.dense = self.q <= DENSE_UP_TO
        if self.dense:
            self.ztz_dense = self.ztz.toarray()

    def _factor(self, ratios: np.ndarray):  # noqa: ANN202 - (M^-1 applied to a q-block, log|M|, S)
        s = np.sqrt(np.repeat(ratios, self.sizes)) if self.q else np.zeros(0)
        if self.dense:
            m = s[:, None] * self.ztz_dense * s[None, :]
            m[np.diag_indices_from(m)] += 1.0
            chol = linalg.cho_factor(m, check_finite=False)
            return (lambda b: linalg.cho_solve(chol, b, check_finite=False)), 2 * float(np.sum(np.log(np.diag(chol[0])))), s
        sd = sparse.diags(s)
        m = (sparse.identity(self.q) + sd @ self.ztz @ sd).tocsc()
        lu = splu(m, permc_spec="MMD_AT_PLUS_A")
        return (lambda b: lu.solve(np.asarray(b))), float(np.sum(np.log(np.abs(lu.U.diagonal())))), s

    def solver(self, ratios: np.ndarray):  # noqa: ANN202 - H^-1 applied to an n-block
        solve_m, _, s = self._factor(ratios)

        def solve(b: np.ndarray) -> np.ndarray:
            return b - self.z @ (s[:, None] * solve_m(s[:, None] * np.asarray(self.z.T @ b)))

        return solve

    def criterion(self, ratios: np.ndarray) -> float:
        """-2 x restricted log-likelihood, residual variance profiled out (constants dropped)."""
        try:
            solve_m, logdet_h, s = self._factor(ratios)
            u = s[:, None] * self.ztxy
            g = self.xytxy - u.T @ solve_m(u)
            chol = linalg.cho_factor(g[:-1, :-1], check_finite=False)
        except (linalg.LinAlgError, RuntimeError, ValueError):
            return math.inf
        beta = linalg.cho_solve(chol, g[:-1, -1], check_finite=False)
        rss = float(g[-1, -1] - g[:-1, -1] @ beta)
        if not rss > 0:
            return math.inf
        dof = self.n - self.p
        return dof * math.log(rss / dof) + logdet_h + 2 * float(np.sum(np.log(np.diag(chol[0]))))


def fit_crossed(x: np.ndarray, y: np.ndarray, groups: dict[str, np.ndarray]) -> CrossedFit:
    """REML fit of ``y ~ x`` with a random intercept per level of each grouping in ``groups``
    (integer codes per row). Raises ``linalg.LinAlgError`` when X is rank deficient."""
    blocks = {name: indicator(codes) for name, codes in groups.items()}
    profile = _Profile(x, y, blocks)
    k = len(blocks)
    best: tuple[float, np.ndarray] = (profile.criterion(np.zeros(k)), np.zeros(k))
    if k and math.isfinite(best[0]):
        # log scale for the search, the boundary (ratio 0) compared separately per component
        for start in STARTS:
            found = optimize.minimize(lambda v: profile.criterion(np.exp(v)), np.full(k, math.log(start)),
                                      method="L-BFGS-B", bounds=[(math.log(ZERO) - 2, math.log(UPPER))] * k)
            candidate = np.exp(found.x)
            candidate[candidate < ZERO * 10] = 0.0
            value = profile.criterion(candidate)
            if value < best[0] - 1e-9:
                best = (value, candidate)
    if not math.isfinite(best[0]):
        raise linalg.LinAlgError("the fixed effects are not estimable (singular design)")
    return _finish(profile, best[1], best[0])


def _finish(profile: _Profile, ratios: np.ndarray, minus2: float) -> CrossedFit:
    solve = profile.solver(ratios)
    x, y, n, p = profile.x, profile.y, profile.n, profile.p
    hx, hy = solve(x), solve(y[:, None])[:, 0]
    xtx = x.T @ hx
    beta = np.linalg.solve(xtx, hx.T @ y)
    theta0 = float((y @ hy - beta @ (x.T @ hy)) / (n - p))
    if not theta0 > 1e-12 * max(1.0, float(np.mean(y ** 2))):
        raise linalg.LinAlgError("no residual variation: the residual variance is estimated at 0")
    cov_beta = theta0 * np.linalg.inv(xtx)
    names = list(profile.blocks)
    components = {name: float(r * theta0) for name, r in zip(names, ratios)}
    components["residual"] = theta0
    fit = CrossedFit(beta=beta, cov_beta=cov_beta, components=components, minus2_reml=minus2,
                     boundary=[name for name, r in zip(names, ratios) if r == 0.0], _z=profile.blocks)
    fit._a = hx / theta0
    info = _information(profile, solve, hx, xtx, theta0, ratios)
    # a component estimated at 0 sits where its SD parameterisation has zero derivative: like
    # lmerTest, it is left out of the df (the calibration benchmark checks the boundary setting)
    active = [i for i, r in enumerate(ratios) if r > 0.0] + [len(ratios)]
    info = info[np.ix_(active, active)]
    fit._active = active
    eig = np.linalg.eigvalsh(info)
    fit.information_ok = bool(eig.min() > 1e-10 * max(eig.max(), 1e-300))
    fit._info_inverse = np.linalg.pinv(info)
    return fit


def _information(profile: _Profile, solve, hx: np.ndarray, xtx: np.ndarray,  # noqa: ANN001
                 theta0: float, ratios: np.ndarray) -> np.ndarray:
    """Expected REML information of (theta_1..theta_K, theta_0): tr(P V_k P V_l) / 2, with
    P = V^-1 - V^-1 X (X'V^-1X)^-1 X'V^-1, from n x q products only (no n x n matrix)."""
    blocks = list(profile.blocks.values())
    k = len(blocks)
    info = np.zeros((k + 1, k + 1))
    xtx_inv = np.linalg.inv(xtx)
    # P Z_k = (H^-1 Z_k - H^-1 X (X'H^-1X)^-1 X'H^-1 Z_k) / theta0
    pz = []
    for z in blocks:
        hz = solve(z.toarray())
        pz.append((hz - hx @ (xtx_inv @ np.asarray(z.T @ hx).T)) / theta0)
    for i in range(k):
        for j in range(i, k):
            info[i, j] = info[j, i] = 0.5 * float(np.sum((blocks[i].T @ pz[j]) ** 2))
        info[i, k] = info[k, i] = 0.5 * float(np.sum(pz[i] ** 2))
    # tr(P^2) from sum_j theta_j tr(P V_0 P V_j) = tr(P): no n x n matrix needed
    trace_h_inv = _trace_h_inverse(profile, ratios)
    trace_p = (trace_h_inv - float(np.trace(xtx_inv @ (hx.T @ hx)))) / theta0
    thetas = ratios * theta0
    tr_p2 = (trace_p - sum(thetas[i] * 2 * info[i, k] for i in range(k))) / theta0
    info[k, k] = 0.5 * tr_p2
    return info


def _trace_h_inverse(profile: _Profile, ratios: np.ndarray) -> float:
    """tr(H^-1) = n - tr(M^-1 S Z'Z S)."""
    if not profile.q:
        return float(profile.n)
    solve_m, _, sv = profile._factor(ratios)
    return float(profile.n - np.trace(solve_m(sv[:, None] * profile.ztz.toarray() * sv[None, :])))
