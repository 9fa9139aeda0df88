"""The runs' log-likelihood as one compiled loop: the sampler's hot path.

Every run's expected loss is its cell's bowl (:func:`core.bowl_loss`) and its density the
Student-t / Normal of a loss inside the window or the Normal survival at the edge of a
censored one (:func:`core.run_log_likelihood`). Written as PyTensor array expressions, that
is some 60 gathers, scatters and elementwise passes over the runs for a gradient (~200 us for
the 2,619 Step Law runs, most of a gradient evaluation); here it is one loop over the runs
that also accumulates the gradient by cell (numba, cached on disk).

This is the one place the bowl is written in scalar form, with its derivatives:
``tests/test_run_kernel.py`` requires the values equal to :mod:`core` and the gradient equal
to finite differences, and the model's log-density test compares the whole PyMC model with
:func:`core.log_density`.

Inputs, per cell (C cells; k = 2 or 3 bowl dims, P = k(k-1)/2): the optimal loss L*, the
log optima of lr, batch and weight decay, the Cholesky diagonal (C, k) and off-diagonal
(C, P) in :func:`core.offdiag_pairs` order, the lr skew and the noise scale; per run (R):
the cell index, log lr, log batch, log weight decay, the batch and weight-decay masks and the
loss (the edge when censored). The Op's outputs: the runs' summed log-likelihood and its
gradient with respect to each per-cell input; :func:`run_loglik` gives each run's.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

__all__ = ["FAMILIES", "N_PARAMS", "RunLogLik", "run_loglik", "run_loglik_grad"]

FAMILIES = {"student_t": 0, "normal": 1, "censored": 2}
"""Likelihood family -> kernel code: a loss inside the window (Student-t or Normal), or the
Normal log survival at the window edge (a censored run)."""
N_PARAMS = 8
"""Per-cell inputs (L*, lr, batch, weight decay optima, diag, offdiag, skew, noise); the rest
are the runs' data."""
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_SOURCE_VERSION = int(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12], 16)
"""Part of the Op's key in PyTensor's numba cache: an edit of this module recompiles."""


@numba.njit(cache=True)
def _log_sf(t: float) -> float:
    """log P(Z > t) for a standard Normal Z, accurate in both tails."""
    if t < -1.0:  # P(Z > t) near 1: log1p of the small lower tail
        return math.log1p(-0.5 * math.erfc(-t / math.sqrt(2.0)))
    if t < 20.0:
        return math.log(0.5 * math.erfc(t / math.sqrt(2.0)))
    inv2 = 1.0 / (t * t)  # asymptotic series: relative error < 1e-8 beyond 20
    return (-0.5 * t * t - math.log(t) - _HALF_LOG_2PI
            + math.log1p(inv2 * (-1.0 + inv2 * (3.0 - 15.0 * inv2))))


@numba.njit(cache=True)
def _kernel(family, nu, loss_opt, lr_opt, batch_opt, wd_opt, diag, off, skew, noise, cell,
            log_lr, log_batch, log_wd, batch_mask, wd_mask, y, want_grad):
    """Each run's log-likelihood and, with ``want_grad``, the gradient of their sum with
    respect to the eight per-cell inputs. The bowl is written out for k = 3 (a 2-D bowl is
    the same with the weight-decay offset and its factor entries at zero)."""
    n_runs, n_cells, k = cell.shape[0], diag.shape[0], diag.shape[1]
    out = np.empty(n_runs)
    g_loss, g_lr, g_batch = np.zeros(n_cells), np.zeros(n_cells), np.zeros(n_cells)
    g_wd, g_skew, g_noise = np.zeros(n_cells), np.zeros(n_cells), np.zeros(n_cells)
    g_diag, g_off = np.zeros(diag.shape), np.zeros(off.shape)
    # C = [[c00, 0, 0], [c10, c11, 0], [c20, c21, c22]] per cell (core.offdiag_pairs order)
    c00, c11 = diag[:, 0].copy(), diag[:, 1].copy()
    c10 = off[:, 0].copy()
    c22, c20, c21 = np.zeros(n_cells), np.zeros(n_cells), np.zeros(n_cells)
    if k == 3:
        c22, c20, c21 = diag[:, 2].copy(), off[:, 1].copy(), off[:, 2].copy()
    half_nu1, inv_nu, nu1_over_nu = 0.5 * (nu + 1.0), 1.0 / nu, (nu + 1.0) / nu
    t_const = math.lgamma(half_nu1) - math.lgamma(0.5 * nu) - 0.5 * math.log(nu * math.pi)
    inv_sigma, log_sigma = 1.0 / noise, np.log(noise)  # per cell, not per run
    up, down = np.exp(skew), np.exp(-skew)
    for r in range(n_runs):
        c = cell[r]
        d0 = log_lr[r] - lr_opt[c]
        above = d0 > 0
        stretch = up[c] if above else down[c]
        e0 = d0 * stretch
        e1 = batch_mask[r] * (log_batch[r] - batch_opt[c])
        e2 = wd_mask[r] * (log_wd[r] - wd_opt[c]) if k == 3 else 0.0
        z0 = c00[c] * e0 + c10[c] * e1 + c20[c] * e2  # z = C^T e
        z1 = c11[c] * e1 + c21[c] * e2
        z2 = c22[c] * e2
        mu = loss_opt[c] + 0.5 * (z0 * z0 + z1 * z1 + z2 * z2)
        inv = inv_sigma[c]
        t = (y[r] - mu) * inv
        if family == 0:
            q = 1.0 / (1.0 + t * t * inv_nu)  # one division and one log a run
            out[r] = t_const - log_sigma[c] + half_nu1 * math.log(q)
            g_mu = nu1_over_nu * t * inv * q
        elif family == 1:
            out[r] = -0.5 * t * t - log_sigma[c] - _HALF_LOG_2PI
            g_mu = t * inv
        else:
            out[r] = _log_sf(t)
            g_mu = math.exp(-0.5 * t * t - _HALF_LOG_2PI - out[r]) * inv  # hazard / sigma
        if not want_grad:
            continue
        g_loss[c] += g_mu
        g_noise[c] += (g_mu * t - inv) if family < 2 else g_mu * t
        g0 = g_mu * c00[c] * z0  # d mu / d e_i = sum_{j <= i} C[i, j] z_j, times g_mu
        g1 = g_mu * (c10[c] * z0 + c11[c] * z1)
        g_lr[c] -= g0 * stretch
        g_skew[c] += g0 * e0 if above else -g0 * e0
        g_batch[c] -= g1 * batch_mask[r]
        g_diag[c, 0] += g_mu * z0 * e0  # d mu / d C[i, j] = z_j e_i
        g_diag[c, 1] += g_mu * z1 * e1
        g_off[c, 0] += g_mu * z0 * e1
        if k == 3:
            g2 = g_mu * (c20[c] * z0 + c21[c] * z1 + c22[c] * z2)
            g_wd[c] -= g2 * wd_mask[r]
            g_diag[c, 2] += g_mu * z2 * e2
            g_off[c, 1] += g_mu * z0 * e2
            g_off[c, 2] += g_mu * z1 * e2
    return out, (g_loss, g_lr, g_batch, g_wd, g_diag, g_off, g_skew, g_noise)


def run_loglik(family: str, nu: float, *inputs: np.ndarray) -> np.ndarray:
    """Each run's log-likelihood (numpy in, numpy out; inputs as :class:`RunLogLik`)."""
    return _kernel(FAMILIES[family], float(nu), *_as_arrays(inputs), False)[0]


def run_loglik_grad(family: str, nu: float, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Gradient of the runs' summed log-likelihood with respect to the eight per-cell
    inputs."""
    return _kernel(FAMILIES[family], float(nu), *_as_arrays(inputs), True)[1]


def _as_arrays(inputs) -> list[np.ndarray]:
    out = [np.asarray(x, dtype=float) for x in inputs]
    out[8] = np.asarray(inputs[8], dtype=np.int64)
    return out


class RunLogLik(Op):
    """PyTensor Op: the runs' summed log-likelihood under their cells' bowls, and its gradient
    with respect to the eight per-cell inputs as further outputs, computed in the same pass
    (inputs: the per-cell parameters, then cell index, log lr, log batch, log wd, batch mask,
    wd mask, loss). Its own gradient is the scalar's output gradient times those outputs."""

    __props__ = ("family", "nu")

    def __init__(self, family: str, nu: float):
        self.family, self.nu = family, float(nu)

    def make_node(self, *inputs) -> Apply:
        inputs = [pt.as_tensor_variable(x) for x in inputs]
        return Apply(self, inputs, [pt.dscalar(), *(x.type() for x in inputs[:N_PARAMS])])

    def perform(self, node, inputs, outputs) -> None:
        values, grads = _kernel(FAMILIES[self.family], self.nu, *_as_arrays(inputs), True)
        outputs[0][0] = np.asarray(values.sum())
        for store, g in zip(outputs[1:], grads, strict=True):
            store[0] = g

    def connection_pattern(self, node) -> list[list[bool]]:
        return [[i < N_PARAMS] + [False] * N_PARAMS for i in range(len(node.inputs))]

    def pullback(self, inputs, outputs, output_grads):
        scale = output_grads[0]
        return [*(scale * g for g in outputs[1:]),
                *(disconnected_type() for _ in inputs[N_PARAMS:])]


@register_funcify_default_op_cache_key(RunLogLik)
def _numba_run_loglik(op, node, **kwargs):
    code, nu = FAMILIES[op.family], op.nu

    # IEEE arithmetic whatever pytensor's numba__fastmath: PyTensor caches this function on
    # disk by the Op's key alone, so a fastmath build (any NUMBA-mode compile outside the
    # sampler's no-fastmath context) would be reused by later fits and change their draws
    @numba_basic.numba_njit(fastmath=False)
    def run_loglik_numba(loss_opt, lr_opt, batch_opt, wd_opt, diag, off, skew, noise, cell,
                         log_lr, log_batch, log_wd, batch_mask, wd_mask, y):
        # contiguous copies give the kernel the signature cached on disk (a strided view
        # would compile it anew in every process)
        c = np.ascontiguousarray
        values, grads = _kernel(code, nu, c(loss_opt), c(lr_opt), c(batch_opt), c(wd_opt),
                                c(diag), c(off), c(skew), c(noise), c(cell).astype(np.int64),
                                c(log_lr), c(log_batch), c(log_wd), c(batch_mask),
                                c(wd_mask), c(y), True)
        return (np.array(values.sum()), *grads)

    return run_loglik_numba, _SOURCE_VERSION
