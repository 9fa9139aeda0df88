"""Pure numpy maths of the scaling laws (no PyMC): the parametrisation shared by the
simulator, the model and the predictions, plus published reference laws.

Conventions: natural logs; lr is the peak learning rate; batch sizes are in tokens;
weight decay is decoupled AdamW lambda; N is non-embedding (active) parameters and D
training tokens. Law intercepts are quoted at the reference scale (N_REF, D_REF).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

N_REF = 1e9
"""Reference model size (non-embedding parameters) at which law intercepts are quoted."""
D_REF = 1e11
"""Reference training tokens at which law intercepts are quoted."""
TPP_REF = 20.0
"""Reference tokens per parameter for the AdamW timescale law."""


def log_lr_opt(c_eta: ArrayLike, a_n: ArrayLike, a_d: ArrayLike, n_params: ArrayLike,
               n_tokens: ArrayLike) -> np.ndarray:
    """log lr_opt = c_eta + a_N log(N / N_REF) + a_D log(D / D_REF)."""
    return (np.asarray(c_eta) + np.asarray(a_n) * np.log(np.asarray(n_params) / N_REF)
            + np.asarray(a_d) * np.log(np.asarray(n_tokens) / D_REF))


def log_batch_opt(c_b: ArrayLike, b_n: ArrayLike, b_d: ArrayLike, n_params: ArrayLike,
                  n_tokens: ArrayLike) -> np.ndarray:
    """log B_opt (tokens) = c_B + b_N log(N / N_REF) + b_D log(D / D_REF)."""
    return (np.asarray(c_b) + np.asarray(b_n) * np.log(np.asarray(n_params) / N_REF)
            + np.asarray(b_d) * np.log(np.asarray(n_tokens) / D_REF))


def log_tau_opt(c_tau: ArrayLike, g_tpp: ArrayLike, n_params: ArrayLike,
                n_tokens: ArrayLike) -> np.ndarray:
    """log tau_opt = c_tau + g_tpp log((D / N) / TPP_REF); tau = B / (lr * lambda * D)."""
    tpp = np.asarray(n_tokens) / np.asarray(n_params)
    return np.asarray(c_tau) + np.asarray(g_tpp) * np.log(tpp / TPP_REF)


def log_weight_decay_from_tau(log_tau: ArrayLike, log_lr: ArrayLike, log_batch: ArrayLike,
                              n_tokens: ArrayLike) -> np.ndarray:
    """AdamW timescale (Power Lines): tau = B / (lr lambda D)  =>  log lambda."""
    return (np.asarray(log_batch) - np.asarray(log_lr) - np.asarray(log_tau)
            - np.log(np.asarray(n_tokens)))


def log_tau_from_weight_decay(weight_decay: ArrayLike, lr: ArrayLike, batch_tokens: ArrayLike,
                              n_tokens: ArrayLike) -> np.ndarray:
    """log tau = log B - log lr - log lambda - log D (the inverse of the above)."""
    return (np.log(np.asarray(batch_tokens)) - np.log(np.asarray(lr))
            - np.log(np.asarray(weight_decay)) - np.log(np.asarray(n_tokens)))


def bowl_loss(loss_opt: ArrayLike, delta: ArrayLike, chol: ArrayLike,
              skew: ArrayLike = 0.0) -> np.ndarray:
    """Loss of a run at log-space offset ``delta`` (..., k) from the optimum.

    L = L* + 1/2 ||chol^T delta'||^2 where chol (..., k, k) is lower triangular with a
    positive diagonal (so the curvature H = chol chol^T is positive definite) and delta'
    stretches the log-lr offset by exp(skew) above the optimum and exp(-skew) below it
    (skew > 0: the loss rises faster on the high-lr side).
    """
    delta = np.asarray(delta, dtype=float)
    skew = np.asarray(skew, dtype=float)
    d_lr = delta[..., 0]
    stretched = np.concatenate(
        [(d_lr * np.exp(np.where(d_lr > 0, skew, -skew)))[..., None], delta[..., 1:]], axis=-1)
    z = np.einsum("...jk,...j->...k", np.asarray(chol, dtype=float), stretched)
    return np.asarray(loss_opt) + 0.5 * np.sum(z**2, axis=-1)
