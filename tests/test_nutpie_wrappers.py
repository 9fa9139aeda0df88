"""nutpie's callbacks built and cached by bayes_scaling.model.nutpie_wrappers: the same
log density, gradient and expanded draws as nutpie's own, data swapped in by name, and the
fallback where the shared variables are not flat float64 vectors."""

from __future__ import annotations

import ctypes

import numpy as np
import nutpie
import pymc as pm
import pytensor
import pytest

from bayes_scaling.model import nutpie_wrappers
from bayes_scaling.model.compiled import start_point_fn

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


def _toy(y: np.ndarray, shared_matrix: bool = False) -> pm.Model:
    """A small model with its data in one shared vector (or a matrix)."""
    with pm.Model() as model:
        data = pm.Data("data", y.reshape(2, -1) if shared_matrix else y)
        mu = pm.Normal("mu", 0.0, 2.0)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Deterministic("mu_twice", 2 * mu)
        pm.Normal("y", mu, sigma, observed=data)
    return model


def _call(compiled, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log density, gradient and expanded draw of ``compiled``'s callbacks at ``x``."""
    grad, logp = np.zeros(compiled.n_dim), np.zeros(())
    user = ctypes.c_void_p(compiled.user_data.ctypes.data)
    code = compiled.compiled_logp_func.ctypes(compiled.n_dim, x.ctypes.data_as(_DOUBLE_P),
                                              grad.ctypes.data_as(_DOUBLE_P),
                                              logp.ctypes.data_as(_DOUBLE_P), user)
    assert code == 0
    expanded = np.zeros(compiled.n_expanded)
    code = compiled.compiled_expand_func.ctypes(compiled.n_dim, compiled.n_expanded,
                                                x.ctypes.data_as(_DOUBLE_P),
                                                expanded.ctypes.data_as(_DOUBLE_P), user)
    assert code == 0
    return float(logp), grad, expanded


@pytest.fixture(scope="module")
def toys():
    rng = np.random.default_rng(0)
    y, other = rng.normal(1.0, 0.5, 20), rng.normal(-1.0, 0.3, 30)
    with pytensor.config.change_flags(numba__fastmath=False):
        toy = _toy(y)
        ours = nutpie_wrappers.compile_cached(toy, start_point_fn(toy, {}))
        theirs = nutpie.compile_pymc_model(_toy(y))
        theirs_other = nutpie.compile_pymc_model(_toy(other))
    return ours, theirs, theirs_other, other


def test_callbacks_give_nutpies_values(toys):
    ours, theirs, _, _ = toys
    assert ours is not None and ours.user_data.dtype == np.uint64
    assert (ours.n_dim, ours.n_expanded) == (theirs.n_dim, theirs.n_expanded)
    for x in (np.array([0.3, -0.2]), np.array([-1.0, 0.5])):
        for mine, nutpies in zip(_call(ours, x), _call(theirs, x), strict=True):
            np.testing.assert_array_equal(mine, nutpies)


def test_with_data_swaps_the_shared_vector_by_name(toys):
    ours, _, theirs_other, other = toys
    swapped = nutpie_wrappers.with_data(ours, data=other)
    x = np.array([0.1, 0.2])
    assert _call(swapped, x)[0] != _call(ours, x)[0]  # the original is left as it was
    for mine, nutpies in zip(_call(swapped, x), _call(theirs_other, x), strict=True):
        np.testing.assert_array_equal(mine, nutpies)
    with pytest.raises(KeyError, match="nope"):
        nutpie_wrappers.with_data(ours, nope=other)


def test_a_shared_matrix_falls_back_to_nutpies_compile():
    with pytensor.config.change_flags(numba__fastmath=False):
        toy = _toy(np.zeros(4), shared_matrix=True)
        assert nutpie_wrappers.compile_cached(toy, start_point_fn(toy, {})) is None
