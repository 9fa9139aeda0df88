"""The compiled runs' likelihood equals the core's formulas, and its gradient equals finite
differences."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

from bayes_scaling.model import core
from bayes_scaling.model.run_kernel import (
    FAMILIES,
    RunLogLik,
    _log_sf,
    run_loglik,
    run_loglik_grad,
)

N_CELLS, N_RUNS = 4, 60


def _inputs(k: int, seed: int = 0) -> list[np.ndarray]:
    """Per-cell parameters and per-run data in RunLogLik's order, losses near the bowl."""
    rng = np.random.default_rng(seed)
    p = k * (k - 1) // 2
    cells = [rng.uniform(2.0, 3.0, N_CELLS), rng.normal(-7.0, 0.1, N_CELLS),
             rng.normal(13.0, 0.1, N_CELLS), rng.normal(-2.0, 0.1, N_CELLS),
             rng.uniform(0.1, 0.4, (N_CELLS, k)), rng.normal(0.0, 0.1, (N_CELLS, p)),
             rng.normal(0.0, 0.3, N_CELLS), rng.uniform(0.005, 0.02, N_CELLS)]
    cell = rng.integers(0, N_CELLS, N_RUNS)
    runs = [cell, rng.normal(-7.0, 0.8, N_RUNS), rng.normal(13.0, 0.8, N_RUNS),
            rng.normal(-2.0, 0.8, N_RUNS), (rng.random(N_RUNS) < 0.8).astype(float),
            (rng.random(N_RUNS) < 0.7).astype(float)]
    mu = _core_mean(cells, runs, k)
    return [*cells, *runs, mu + rng.normal(0.0, 0.02, N_RUNS)]


def _core_mean(cells: list, runs: list, k: int) -> np.ndarray:
    """Each run's expected loss by :func:`core.bowl_loss`."""
    loss_opt, lr, batch, wd, diag, off, skew, _ = cells
    c, log_lr, log_batch, log_wd, b_mask, wd_mask = runs
    deltas = [log_lr - lr[c], b_mask * (log_batch - batch[c])]
    if k == 3:
        deltas.append(wd_mask * (log_wd - wd[c]))
    return core.bowl_loss(loss_opt[c], deltas, [diag[c, j] for j in range(k)],
                          [off[c, q] for q in range(off.shape[1])], skew[c])


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_values_equal_the_core_formulas(k, family):
    inputs = _inputs(k)
    mu = _core_mean(inputs[:8], inputs[8:14], k)
    y, sigma = inputs[14], inputs[7][inputs[8]]
    want = core.run_log_likelihood(y, np.full(N_RUNS, family == "censored"), mu, sigma,
                                   "normal" if family == "censored" else family, 5.0)
    np.testing.assert_allclose(run_loglik(family, 5.0, *inputs), want, rtol=1e-10)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_gradient_equals_finite_differences(k, family):
    inputs = _inputs(k, seed=1)
    grads = run_loglik_grad(family, 5.0, *inputs)
    total = lambda xs: run_loglik(family, 5.0, *xs).sum()  # noqa: E731
    for i, g in enumerate(grads):
        assert g.shape == inputs[i].shape
        numeric = np.zeros_like(g)
        for idx in np.ndindex(g.shape):
            h = 1e-6
            up, down = [x.copy() for x in inputs], [x.copy() for x in inputs]
            up[i][idx] += h
            down[i][idx] -= h
            numeric[idx] = (total(up) - total(down)) / (2 * h)
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-4, err_msg=f"input {i}")


def test_log_survival_is_accurate_in_both_tails():
    t = np.concatenate([np.linspace(-40.0, 60.0, 401), [19.999, 20.0, 20.001]])
    ours = np.array([_log_sf(x) for x in t])
    np.testing.assert_allclose(ours, stats.norm.logsf(t), rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "NUMBA"])
def test_op_value_and_gradient_in_pytensor(mode):
    """The Op's sum and its gradient through PyTensor (Python and numba backends) equal the
    kernel's."""
    inputs = _inputs(3, seed=2)
    params = [pt.as_tensor_variable(x).type() for x in inputs[:8]]
    total = RunLogLik("student_t", 5.0)(*params, *inputs[8:])[0]
    fn = pytensor.function(params, [total, *pytensor.grad(total, params)], mode=mode)
    out = fn(*inputs[:8])
    np.testing.assert_allclose(out[0], run_loglik("student_t", 5.0, *inputs).sum())
    for got, want in zip(out[1:], run_loglik_grad("student_t", 5.0, *inputs), strict=True):
        np.testing.assert_allclose(got, want)
