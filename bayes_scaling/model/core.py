"""The generative core: every formula of the model, written once.

Each function is plain arithmetic over an array namespace ``xp`` (``numpy`` or
``pytensor.tensor``), so the PyMC graph (:mod:`bayes_scaling.model.graph`), the simulator,
the predictions and the next-run design all compute the same thing from the same code.
A test evaluates the model's log density with PyMC and with :func:`log_density` here at
random parameter values and requires them equal. The sampler's hot path, the runs' bowl and
likelihood, is compiled from its scalar form in :mod:`bayes_scaling.model.run_kernel`, which
``tests/test_run_kernel.py`` holds equal to :func:`bowl_loss` and
:func:`run_log_likelihood`.

The model, cell g = one (arch, data_mix, N, D, seq_len), run r in cell g:
    x_n = log(N / N_REF), x_d = log(D / D_REF), x_tpp = log(D / N / TPP_REF)
    log lr*_g  = c_eta[arch, mix]   + a_n[arch] x_n + a_d[arch] x_d + e_lr        (law_mean)
    log B*_g   = c_batch[arch, mix] + b_n[arch] x_n + b_d[arch] x_d + e_batch     (law_mean)
    log L*_g   = c_loss[arch, mix]  + l_n[arch] x_n + l_d[arch] x_d               (law_mean)
                 + q_loss (x_tpp^2 - x_tpp,ref^2) + e_loss                       (loss_bend)
    (+ config_lr[configuration] on the lr law of a sparse model           (config_shift),
     whose N in the lr law is its total parameters                         (size_of))
    log tau*_g = c_tau + g_tpp x_tpp + e_tau                                      (tau_mean)
    log wd*_g  = log B*_g - log lr*_g - log tau*_g - log D              (log_weight_decay)
    L_r = L*_g + 1/2 ||C_g^T s(u_r - u*_g)||^2 + eps_r                          (bowl_loss)
with C_g lower triangular (positive diagonal, :func:`chol_entries`), s() stretching the lr
offset by exp(+-skew_g), skew_g = skew[arch] + skew_d[arch] x_d (:func:`skew_at`,
:func:`stretch_lr`), eps Student-t(nu) or Normal, and runs above the
window edge (1 + window) x the cell's best loss, or diverged, right-censored at that edge
(:func:`window_edge`, :func:`is_censored`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np
from scipy import special, stats

N_REF = 1e9
"""Reference model size (non-embedding parameters) at which law intercepts are quoted."""
D_REF = 1e11
"""Reference training tokens at which law intercepts are quoted."""
TPP_REF = 20.0
"""Reference tokens per parameter for the AdamW timescale law."""

LAWS = {"lr": ("c_eta", "a_n", "a_d"), "batch": ("c_batch", "b_n", "b_d"),
        "loss": ("c_loss", "l_n", "l_d")}
"""Quantity -> (intercept, N exponent, D exponent) variable names of its power law."""
SIZE_BY_TOTAL = ("lr",)
"""Laws whose size is a sparse model's TOTAL parameters (the others': its active ones).
Chosen by held-out cells: the four Step Law MoE configurations share a total size, and their
optimal lr barely moves with active parameters (quadratic minima at D = 2e10: 6.6e-4,
6.6e-4, 6.4e-4, 7.0e-4 from 1.9e8 to 1.2e9 active), so a law in active parameters
extrapolated a new configuration's lr 40% too low (benchmarks/heldout_steplaw.py: mean
regret 0.058%, 4 of 6 cells covered; with the lr law in total parameters 0.018%, 6 of 6;
with the batch law too 0.066%: the batch optimum follows the active parameters)."""


def size_of(q: str, n_params: Any, n_params_total: Any) -> Any:
    """The size N in the law of quantity q: a sparse model's total parameters for the laws
    of :data:`SIZE_BY_TOTAL` (the lr law) where given and above ``n_params``; else
    n_params."""
    n = np.asarray(n_params, float)
    if q not in SIZE_BY_TOTAL:
        return n
    total = np.asarray(n_params_total, float)
    return np.where(np.isfinite(total) & (total > n), total, n)


# ----------------------------------------------------------------------------- scale
def log_scale(n_params: Any, n_tokens: Any, xp: ModuleType = np) -> tuple[Any, Any, Any]:
    """(x_n, x_d, x_tpp) = log(N / N_REF), log(D / D_REF), log(D / N / TPP_REF)."""
    log_n, log_d = xp.log(n_params), xp.log(n_tokens)
    return (log_n - np.log(N_REF), log_d - np.log(D_REF),
            log_d - log_n - np.log(TPP_REF))


def law_mean(intercept: Any, slope_n: Any, slope_d: Any, x_n: Any, x_d: Any) -> Any:
    """A log-optimum's power law: intercept + slope_n x_n + slope_d x_d (no cell residual)."""
    return intercept + slope_n * x_n + slope_d * x_d


def config_shift(effects: Any, config_idx: Any, xp: ModuleType = np) -> Any:
    """Each cell's configuration offset: ``effects[config_idx]``, 0 where config_idx is -1
    (a dense cell)."""
    return xp.concatenate([effects, xp.zeros(1)])[config_idx]


X_TPP_REF = float(np.log(D_REF / N_REF / TPP_REF))
"""x_tpp at the reference scale (N_REF, D_REF): log 5."""


def loss_bend(q_loss: Any, x_tpp: Any) -> Any:
    """The optimal-loss law's curvature in tokens per parameter: q_loss (x_tpp^2 -
    x_tpp,ref^2), added to its power law. Zero at the reference scale (c_loss stays log L*
    there) and flat at TPP_REF (l_d is the D-slope at 20 tokens per parameter).

    Chosen by held-out cells: the log-linear law missed the ScaleBench pool's largest cell by
    1.4% and the cells at its largest D by 3.5% (mean); with this term 0.2% and 0.4% (least
    squares on the cells' optima, Step Law dense alike); Chinchilla forms with or without
    priors on E stayed 1-2% off. It turns over at about 2,000 tokens per parameter: a target
    far beyond the sweep's ratios gets an extrapolation note."""
    return q_loss * (x_tpp**2 - X_TPP_REF**2)


def loss_law_at(c_loss: Any, l_n: Any, l_d: Any, q_loss: Any, n_params: Any,
                n_tokens: Any) -> Any:
    """log L* law (no cell residual) at sizes (N, D) in natural units (numpy)."""
    x_tpp = log_scale(np.asarray(n_params, float), np.asarray(n_tokens, float))[2]
    return (law_at(c_loss, l_n, l_d, n_params, n_tokens)
            + loss_bend(np.asarray(q_loss), x_tpp))


def loss_slope_d(l_d: Any, q_loss: Any, n_params: Any, n_tokens: Any) -> Any:
    """d log L* / d log D at fixed N under the loss law: l_d + 2 q_loss x_tpp."""
    x_tpp = log_scale(np.asarray(n_params, float), np.asarray(n_tokens, float))[2]
    return np.asarray(l_d) + 2.0 * np.asarray(q_loss) * x_tpp


def tau_mean(c_tau: Any, g_tpp: Any, x_tpp: Any) -> Any:
    """log tau* law (AdamW timescale, Power Lines): c_tau + g_tpp x_tpp."""
    return c_tau + g_tpp * x_tpp


def law_at(intercept: Any, slope_n: Any, slope_d: Any, n_params: Any, n_tokens: Any) -> Any:
    """:func:`law_mean` at sizes (N, D) in natural units (numpy)."""
    x_n, x_d, _ = log_scale(np.asarray(n_params, float), np.asarray(n_tokens, float))
    return law_mean(np.asarray(intercept), np.asarray(slope_n), np.asarray(slope_d), x_n, x_d)


def tau_at(c_tau: Any, g_tpp: Any, n_params: Any, n_tokens: Any) -> Any:
    """:func:`tau_mean` at sizes (N, D) in natural units (numpy)."""
    x_tpp = log_scale(np.asarray(n_params, float), np.asarray(n_tokens, float))[2]
    return tau_mean(np.asarray(c_tau), np.asarray(g_tpp), x_tpp)


def log_weight_decay(log_tau: Any, log_lr: Any, log_batch: Any, log_tokens: Any) -> Any:
    """AdamW timescale tau = B / (lr lambda D)  =>  log lambda = log B - log lr - log tau - log D.

    Read backwards (log tau from a run's lambda) it is the same identity with tau and
    lambda swapped, so :func:`log_weight_decay` (log_lambda, ...) gives log tau.
    """
    return log_batch - log_lr - log_tau - log_tokens


# ----------------------------------------------------------------------------- the bowl
def offdiag_pairs(k: int) -> list[tuple[int, int]]:
    """(row, col) of the Cholesky factor's off-diagonal entries, in storage order:
    (1, 0), (2, 0), (2, 1)."""
    return [(i, j) for i in range(1, k) for j in range(i)]


def chol_entries(diag: Sequence[Any], offdiag: Sequence[Any]) -> dict[tuple[int, int], Any]:
    """The lower-triangular curvature factor C as {(row, col): entry}: ``diag`` k entries
    (positive), ``offdiag`` k(k-1)/2 entries in :func:`offdiag_pairs` order."""
    k = len(diag)
    out = {(i, i): diag[i] for i in range(k)}
    out.update(zip(offdiag_pairs(k), offdiag, strict=True))
    return out


def chol_matrix(chol_diag: np.ndarray, chol_offdiag: np.ndarray) -> np.ndarray:
    """C as an array (..., k, k) from diag (..., k) and off-diagonals (..., k(k-1)/2)."""
    k = chol_diag.shape[-1]
    shape = np.broadcast_shapes(chol_diag.shape[:-1], chol_offdiag.shape[:-1])
    out = np.zeros((*shape, k, k))
    entries = chol_entries([chol_diag[..., j] for j in range(k)],
                           [chol_offdiag[..., p] for p in range(k * (k - 1) // 2)])
    for (i, j), value in entries.items():
        out[..., i, j] = value
    return out


def skew_at(skew: Any, skew_d: Any, x_d: Any) -> Any:
    """A cell's lr skew: skew + skew_d x_d (skew at D_REF, changing with log tokens; the
    spec's ``bowl.skew_by_tokens``, off by default: it made held-out Step Law cells worse)."""
    return skew + skew_d * x_d


def stretch_lr(d_lr: Any, skew: Any, xp: ModuleType = np) -> Any:
    """The bowl's lr asymmetry: d exp(skew) above the optimum, d exp(-skew) below it."""
    return d_lr * xp.exp(xp.where(d_lr > 0, skew, -skew))


def unstretch_lr(s: Any, skew: Any, xp: ModuleType = np) -> Any:
    """Inverse of :func:`stretch_lr`."""
    return s * xp.exp(xp.where(s > 0, -skew, skew))


def bowl_excess(deltas: Sequence[Any], diag: Sequence[Any], offdiag: Sequence[Any],
                skew: Any = 0.0, xp: ModuleType = np) -> Any:
    """Loss above the optimum of runs at log offsets ``deltas`` (k arrays: lr, batch[, wd])
    from the cell optimum: 1/2 ||C^T delta'||^2 with delta' = (stretch_lr(d_lr), d_b[, d_wd])."""
    k = len(deltas)
    stretched = [stretch_lr(deltas[0], skew, xp), *deltas[1:]]
    c = chol_entries(diag, offdiag)
    quad = 0.0
    for j in range(k):  # z_j = (C^T delta')_j = sum_{i >= j} C[i, j] delta'_i
        z = c[(j, j)] * stretched[j]
        for i in range(j + 1, k):
            z = z + c[(i, j)] * stretched[i]
        quad = quad + z**2
    return 0.5 * quad


def bowl_loss(loss_opt: Any, deltas: Sequence[Any], diag: Sequence[Any],
              offdiag: Sequence[Any], skew: Any = 0.0, xp: ModuleType = np) -> Any:
    """Expected final loss of runs: L* + :func:`bowl_excess`."""
    return loss_opt + bowl_excess(deltas, diag, offdiag, skew, xp)


def bowl_loss_array(loss_opt: Any, delta: np.ndarray, chol_diag: np.ndarray,
                    chol_offdiag: np.ndarray, skew: Any = 0.0) -> np.ndarray:
    """:func:`bowl_loss` for numpy arrays with the dim last: delta (..., k), diag (..., k),
    offdiag (..., k(k-1)/2); leading dims broadcast."""
    delta = np.asarray(delta, dtype=float)
    k = delta.shape[-1]
    return bowl_loss(np.asarray(loss_opt, dtype=float), [delta[..., j] for j in range(k)],
                     [np.asarray(chol_diag)[..., j] for j in range(k)],
                     [np.asarray(chol_offdiag)[..., p] for p in range(k * (k - 1) // 2)],
                     np.asarray(skew, dtype=float))


def bowl_loss_matrix(loss_opt: Any, delta: np.ndarray, chol: np.ndarray,
                     skew: Any = 0.0) -> np.ndarray:
    """:func:`bowl_loss` with the curvature factor given as a lower-triangular matrix
    (..., k, k) (:func:`chol_matrix`'s inverse); delta (..., k)."""
    chol = np.asarray(chol, dtype=float)
    k = chol.shape[-1]
    rows, cols = zip(*offdiag_pairs(k), strict=True) if k > 1 else ((), ())
    diag = np.diagonal(chol, axis1=-2, axis2=-1)
    return bowl_loss_array(loss_opt, delta, diag, chol[..., list(rows), list(cols)], skew)


# ----------------------------------------------------------------------------- censoring
DEFAULT_WINDOW = 0.02
"""The default spec's fit window (``[data] window`` in models/default.toml, where it is set;
tests/test_spec.py checks the two agree): the default of every function that censors."""


def window_edge(best_loss: Any, window: float) -> Any:
    """The censoring edge of a cell: (1 + window) x its best finite loss."""
    return (1.0 + window) * best_loss


def is_censored(loss: Any, ok: Any, edge: Any) -> Any:
    """A run is censored at its cell's edge when it diverged (not ok, or a non-finite loss)
    or its loss is above the edge: we learn only "loss > edge"."""
    finite = np.isfinite(loss) & ok
    return ~finite | (np.where(finite, loss, np.inf) > edge)


def diverges(d_lr: Any, diverge_log_lr: float) -> Any:
    """Simulated runs this far above the optimum in log lr diverge (simulator and design)."""
    return d_lr > diverge_log_lr


# ----------------------------------------------------------------------------- likelihood
def run_log_likelihood(y: np.ndarray, censored: np.ndarray, mu: np.ndarray, sigma: np.ndarray,
                       family: str, nu: float) -> np.ndarray:
    """Log-likelihood of each run (numpy): Student-t(nu) or Normal density of a loss in the
    window, Normal log survival at the edge for a censored one (as the PyMC model).

    Written out with ufuncs: scipy.stats' logpdf and logsf took most of the design's
    rescoring, its hot loop. tests/test_core.py holds it equal to scipy.stats."""
    z = (np.asarray(y, dtype=float) - mu) / sigma
    log_sigma = np.log(sigma)
    if family == "student_t":
        const = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
        inside = const - log_sigma - (nu + 1) / 2 * np.log1p(z * z / nu)
    else:
        inside = -0.5 * z * z - log_sigma - 0.5 * np.log(2 * np.pi)
    shape = np.broadcast_shapes(np.shape(censored), z.shape)
    out = np.array(np.broadcast_to(inside, shape))
    cens = np.broadcast_to(censored, shape)
    out[cens] = special.log_ndtr(-np.broadcast_to(z, shape)[cens])  # only where censored
    return out


def log_density(values: Mapping[str, np.ndarray], cells: Mapping[str, np.ndarray],
                runs: Mapping[str, np.ndarray], *, family: str, nu: float, skew: bool,
                dims: int) -> float:
    """The model's log density given every parameter (numpy; the priors of the top-level
    parameters excluded): the cell optima around their laws (log tau non-centred in cells
    without weight-decay variation, as in the PyMC graph), the cell curvatures around their
    arch means, with ``skew_cell`` each cell's skew around its arch's (non-centred in thin
    cells, as in the graph) and every run's likelihood. ``values`` are named as in the PyMC model
    (constrained space); derived quantities (weight decay, L*, C) are recomputed here.
    ``cells`` holds arch_idx, mix_idx, x_n, x_d, x_tpp (uncentred), log_d, has_wd, thin and (with
    sparse configurations) config_idx and x_n_total (:func:`size_of`);
    ``runs`` holds cell_idx, log_lr, log_batch, log_wd, wd_mask, batch_mask, loss (the edge
    when censored) and censored."""
    a, m = cells["arch_idx"], cells["mix_idx"]
    total = 0.0
    for q, (c, e_n, e_d) in LAWS.items():
        x_n = cells["x_n_total"] if q in SIZE_BY_TOTAL and "x_n_total" in cells else cells["x_n"]
        mean = law_mean(values[c][a, m], values[e_n][a], values[e_d][a], x_n, cells["x_d"])
        if q == "loss":
            mean = mean + loss_bend(values["q_loss"], cells["x_tpp"])
        if f"config_{q}" in values:
            mean = mean + config_shift(values[f"config_{q}"], cells["config_idx"])
        total += stats.norm.logpdf(values[f"log_{q}_opt"], mean,
                                   values[f"sigma_cell_{q}"]).sum()
    tau = values["log_tau_opt"]
    tau_law = tau_mean(values["c_tau"], values["g_tpp"], cells["x_tpp"])
    sd_tau = values["sigma_cell_tau"]
    has_wd = np.asarray(cells["has_wd"], dtype=bool)
    total += stats.norm.logpdf(tau[has_wd], tau_law[has_wd], sd_tau).sum()
    total += stats.norm.logpdf((tau[~has_wd] - tau_law[~has_wd]) / sd_tau).sum()
    total += stats.norm.logpdf(values["log_chol_diag"], values["mu_log_chol_diag"][a],
                               values["sd_log_chol_diag"]).sum()
    c = runs["cell_idx"]
    run_arch = a[c]
    log_lr, log_batch = values["log_lr_opt"][c], values["log_batch_opt"][c]
    deltas = [runs["log_lr"] - log_lr, runs["batch_mask"] * (runs["log_batch"] - log_batch)]
    if dims == 3:
        log_wd = log_weight_decay(tau[c], log_lr, log_batch, cells["log_d"][c])
        deltas.append(runs["wd_mask"] * (runs["log_wd"] - log_wd))
    diag = np.exp(values["log_chol_diag"])[c]
    off = values["chol_offdiag"][run_arch]
    run_skew = 0.0
    if skew:
        cell_skew = values["skew"][a]
        if "skew_d" in values:
            cell_skew = skew_at(cell_skew, values["skew_d"][a], cells["x_d"])
        if "skew_cell" in values:  # each cell's own skew around its arch's
            z = (values["skew_cell"] - cell_skew) / values["sd_skew_cell"]
            thin = np.asarray(cells["thin"], dtype=bool)  # non-centred there, as in the graph
            total += stats.norm.logpdf(z[thin]).sum() + stats.norm.logpdf(
                values["skew_cell"][~thin], cell_skew[~thin], values["sd_skew_cell"]).sum()
            cell_skew = values["skew_cell"]
        run_skew = cell_skew[c]
    mu = bowl_loss(np.exp(values["log_loss_opt"])[c], deltas,
                   [diag[:, j] for j in range(dims)], [off[:, p] for p in range(off.shape[-1])],
                   run_skew)
    ll = run_log_likelihood(runs["loss"], runs["censored"], mu, values["noise"][run_arch],
                            family, nu)
    return float(total + ll.sum())
