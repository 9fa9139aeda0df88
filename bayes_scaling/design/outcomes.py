"""Simulated outcomes of candidate runs and the posterior draws reweighted by them.

Outcomes follow the fit's censoring rule (:func:`core.is_censored` at
:func:`core.window_edge`; runs past :func:`core.diverges` diverge), and are scored with the
model's likelihood (:func:`core.run_log_likelihood`); a new cell's residuals are
marginalised over its inner samples.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from bayes_scaling.design.problem import Problem, State, cell_bowl, normalise, target_cov
from bayes_scaling.model import core


def simulate_loglik(p: Problem, state: State, g: int, rng: np.random.Generator,
                    n_out: int) -> list[tuple[int, np.ndarray]]:
    """Simulate ``n_out`` outcomes of group g; per cell of the group, the log-likelihood
    (n_out, S, M) of each outcome under every draw and residual sample (model's likelihood)."""
    d, spec = p.d, p.d.spec
    w = normalise(state.logw)
    s_j = rng.choice(d.n, size=n_out, p=w)
    runs = np.flatnonzero(p.g_valid[g])
    cell_of = p.g_cell[g, runs]
    y = np.zeros((n_out, len(runs)))
    cens = np.zeros_like(y, dtype=bool)
    out, mus = [], {}
    for c in np.unique(cell_of):
        r = runs[cell_of == c]
        eff = p.cells[c]
        mu, d_lr = cell_bowl(eff.opt[:, :, None, :], eff.loss_opt[..., None],
                             eff.chol_diag[:, :, None, :], eff.chol_offdiag[:, None, None, :],
                             eff.skew[:, None, None], p.g_u[g, r])
        log_in = state.inner.get(c, np.full(eff.opt.shape[:2], -np.log(eff.opt.shape[1])))
        m_j = np.array([rng.choice(eff.opt.shape[1], p=np.exp(log_in[s])) for s in s_j])
        eps = (rng.standard_t(spec.nu, size=(n_out, len(r))) if spec.likelihood == "student_t"
               else rng.standard_normal((n_out, len(r))))
        yc = mu[s_j, m_j] + eff.noise[s_j, None] * eps
        diverged = core.diverges(d_lr[s_j, m_j], p.diverge)
        low = np.where(diverged, np.inf, yc).min(1, keepdims=True)
        edge = core.window_edge(np.minimum(eff.best_loss, low), p.window)
        mask = np.isin(runs, r)
        informative = np.isfinite(edge[:, 0])
        censored = core.is_censored(yc, ~diverged, edge)
        y[:, mask] = np.where(informative[:, None], np.where(censored, edge, yc), 0.0)
        cens[:, mask] = censored
        mus[c] = (mu, mask, informative)
    for c, (mu, mask, informative) in mus.items():
        sd = p.cells[c].noise[None, :, None, None]
        yy, cc = y[:, None, None, mask], cens[:, None, None, mask]
        ll = core.run_log_likelihood(yy, cc, mu[None], sd, spec.likelihood, spec.nu).sum(-1)
        out.append((c, np.where(informative[:, None, None], ll, 0.0)))
    return out


def reweight(p: Problem, state: State, lls: list[tuple[int, np.ndarray]],
             beta: float = 1.0) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Posterior log weights (J, S) and updated inner log weights after the outcomes."""
    logw = state.logw[None, :]
    inner = {}
    for c, ll in lls:
        m = ll.shape[-1]
        log_in = state.inner.get(c, np.full(ll.shape[1:], -np.log(m)))
        joint = log_in[None] + beta * ll
        marg = logsumexp(joint, axis=-1)
        logw = logw + marg
        if m > 1:
            inner[c] = joint - marg[..., None]
    return logw - logsumexp(logw, axis=-1, keepdims=True), inner


def rescore(p: Problem, state: State, g: int, rng: np.random.Generator,
            n_out: int) -> tuple[float, np.ndarray, float]:
    """Information gain (nats) of the expected target covariance after the outcomes (by
    importance reweighting), that covariance, and the mean ESS of the weights."""
    logw, _ = reweight(p, state, simulate_loglik(p, state, g, rng, n_out))
    w = np.exp(logw)
    after = target_cov(w, p).mean(0)
    cov0 = target_cov(normalise(state.logw), p)
    eig = 0.5 * (np.linalg.slogdet(cov0)[1] - np.linalg.slogdet(after)[1])
    return float(eig), after, float((1 / (w**2).sum(-1)).mean())


def condition(p: Problem, state: State, g: int, rng: np.random.Generator,
              ess_floor: float) -> State:
    """Condition on one fantasised outcome of group g (tempered to keep ESS >= floor)."""
    lls = simulate_loglik(p, state, g, rng, 1)
    ess = lambda b: 1 / (normalise(reweight(p, state, lls, b)[0][0]) ** 2).sum()  # noqa: E731
    beta, floor = 1.0, ess_floor * p.d.n
    if ess(1.0) < floor:
        lo, hi = 0.0, 1.0
        for _ in range(30):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if ess(mid) >= floor else (lo, mid)
        beta = lo
    logw, inner = reweight(p, state, lls, beta)
    merged = dict(state.inner)
    merged.update({c: v[0] for c, v in inner.items()})
    return State(logw=logw[0], inner=merged)
