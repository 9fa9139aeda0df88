"""The design problem: candidate runs grouped into mini-sweeps, every candidate cell's effects
per posterior draw, the target's optimum per draw, and the weights on the draws.

Built once per :func:`bayes_scaling.design.propose.propose` call; the screen
(:mod:`~bayes_scaling.design.propose`) and the reweighting
(:mod:`~bayes_scaling.design.outcomes`) read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from bayes_scaling.design.candidates import run_flops, target_effects
from bayes_scaling.model import core
from bayes_scaling.predict.cells import CellEffects, existing_cell, match_cells, new_cell
from bayes_scaling.predict.draws import Draws, new_cell_draws


@dataclass
class Problem:
    """Candidate groups (g_*: cell, log settings, validity, cost), their cells' effects, and
    the target per draw: optimum mean and residual covariance (t_mean, t_cov), bowl curvature
    H = C C^T averaged over the target cell's residual samples (t_h), optimal loss (t_loss),
    d log L* / d log D of the loss law (t_slope_d) and its compute (t_flops, 6 N D)."""

    d: Draws
    cells: list[CellEffects]
    t_mean: np.ndarray
    t_cov: np.ndarray
    t_h: np.ndarray
    t_loss: np.ndarray
    t_slope_d: np.ndarray
    t_flops: float
    table: pd.DataFrame
    groups: pd.Index
    g_cell: np.ndarray
    g_u: np.ndarray
    g_valid: np.ndarray
    g_cost: np.ndarray
    window: float
    diverge: float


@dataclass
class State:
    logw: np.ndarray
    inner: dict[int, np.ndarray]
    """Per touched new cell: log weights (S, M) of its residual samples (normalised per s)."""


def cell_bowl(opt, loss_opt, diag, off, skew, u):
    """Model bowl loss (:func:`core.bowl_loss`) and the log-lr offset of runs at log
    settings ``u``; arrays broadcast over leading dims, last = dim (a NaN weight decay sits
    at the optimum)."""
    k = opt.shape[-1]
    deltas = [u[..., 0] - opt[..., 0], u[..., 1] - opt[..., 1]]
    if k == 3:
        deltas.append(np.where(np.isnan(u[..., 2]), 0.0, u[..., 2] - opt[..., 2]))
    mu = core.bowl_loss(loss_opt, deltas, [diag[..., j] for j in range(k)],
                        [off[..., p] for p in range(k * (k - 1) // 2)], skew)
    return mu, deltas[0]


def target_cov(w: np.ndarray, p: Problem) -> np.ndarray:
    """Target covariance (..., k, k) under weights w (..., S), Rao-Blackwellised; the spread
    of the law means gets the reliability-weights correction 1 / (1 - sum w^2), so that a
    few effective draws do not pass for information."""
    mean = w @ p.t_mean
    second = np.einsum("...s,sk,sl->...kl", w, p.t_mean, p.t_mean)
    within = np.einsum("...s,skl->...kl", w, p.t_cov)
    spread = second - mean[..., :, None] * mean[..., None, :]
    unbias = 1.0 / np.maximum(1.0 - (w**2).sum(-1), 1e-3)
    return within + spread * unbias[..., None, None]


def normalise(logw: np.ndarray) -> np.ndarray:
    return np.exp(logw - logsumexp(logw, axis=-1, keepdims=True))


def build_problem(d: Draws, target: pd.DataFrame, table: pd.DataFrame, *, n_inner: int,
                  diverge: float) -> Problem:
    """The problem of choosing among the runs of ``table`` for ``target`` on draws ``d``."""
    t = target.iloc[0]
    t_mean, t_cov = target_effects(d, t)
    eff = new_cell_draws(d, t["arch"], t["data_mix"], float(t["n_params"]),
                         float(t["n_tokens"]), n_inner, float(t.get("n_params_total", np.nan)))
    chol = core.chol_matrix(eff["chol_diag"], eff["chol_offdiag"][:, None, :])
    t_h = np.einsum("smij,smkj->sik", chol, chol) / chol.shape[1]
    table = table.assign(cell_id=match_cells(d, table).to_numpy())
    keys = table[["cell_id", "arch", "data_mix", "n_params", "n_tokens"]].astype(str).agg(
        "/".join, axis=1)
    codes, uniq = pd.factorize(keys)
    cells = []
    for first in [int(np.flatnonzero(codes == c)[0]) for c in range(len(uniq))]:
        r = table.iloc[first]
        cells.append(existing_cell(d, r["cell_id"]) if r["cell_id"] else new_cell(
            d, r["arch"], r["data_mix"], float(r["n_params"]), float(r["n_tokens"]), n_inner,
            float(r.get("n_params_total", np.nan))))
    gcodes, groups = pd.factorize(table["group"])
    size = np.bincount(gcodes)
    g_cell = np.zeros((len(groups), size.max()), int)
    g_u = np.full((len(groups), size.max(), 3), np.nan)
    g_valid = np.zeros(g_cell.shape, bool)
    pos = pd.Series(gcodes).groupby(gcodes).cumcount().to_numpy()
    g_cell[gcodes, pos], g_valid[gcodes, pos] = codes, True
    g_u[gcodes, pos] = np.log(table[["lr", "batch_tokens", "weight_decay"]].to_numpy(float))
    g_u[~g_valid, :2] = 0.0
    cost = np.bincount(gcodes, weights=table["cost_flops"].to_numpy(float))
    return Problem(d=d, cells=cells, t_mean=t_mean, t_cov=t_cov, t_h=t_h,
                   t_loss=np.exp(eff["log_loss_opt"]).mean(axis=1),
                   t_slope_d=core.loss_slope_d(
                       d.by_arch("l_d", t["arch"], "sd_arch_loss_exponent"), d.q_loss(),
                       float(t["n_params"]), float(t["n_tokens"])),
                   t_flops=float(run_flops(t["n_params"], t["n_tokens"])),
                   table=table, groups=groups,
                   g_cell=g_cell, g_u=g_u, g_valid=g_valid, g_cost=cost,
                   window=d.spec.window, diverge=diverge)
