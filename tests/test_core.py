"""The generative core: the PyMC model's log density equals the numpy core's
(:func:`bayes_scaling.model.core.log_density`) at random parameter values, and the core's
pieces agree with independent computations."""

import math
from dataclasses import replace

import numpy as np
import pytest

from bayes_scaling.data.simulate import default_cells, simulate_sweep
from bayes_scaling.model import core, laws
from bayes_scaling.model.graph import build_model
from bayes_scaling.model.inputs import prepare_inputs
from bayes_scaling.model.spec import spec_from_dict
from bayes_scaling.testing import core_arrays

N_POINTS = 100


def _sweep(variant: str):
    """Simulated sweeps that reach every branch of the model."""
    if variant == "wd3d":  # weight decay varied in every cell; two mixes
        cells = default_cells(mixes=("web", "code"), n_params=(5e7, 2e8))
        return simulate_sweep(1, cells=cells, n_lr=5, return_truth=False)
    if variant == "mixed_wd":  # half the cells at one weight decay: non-centred log tau
        cells = default_cells(mixes=("web",), n_params=(5e7, 2e8, 8e8))
        sweep = simulate_sweep(2, cells=cells, n_lr=5, return_truth=False)
        runs = sweep.runs.copy()
        fixed = runs["cell"].isin(runs["cell"].unique()[::2])
        runs.loc[fixed, "weight_decay"] = 0.1
        return replace(sweep, runs=runs)
    cells = default_cells(mixes=("web",), n_params=(5e7, 2e8))  # no weight decay: 2-D bowl
    sweep = simulate_sweep(3, cells=cells, n_lr=5, vary_weight_decay=False, return_truth=False)
    if variant == "no_wd":  # and two sparse configurations of the moe arch
        runs = sweep.runs.assign(n_params_total=np.nan)
        moe = runs["arch"] == "moe"
        runs.loc[moe, "n_params_total"] = 4 * runs.loc[moe, "n_params"]
        return replace(sweep, runs=runs)
    return sweep


SPECS = {
    "wd3d": {},
    "mixed_wd": {"bowl": {"skew": False}},
    "no_wd": {"likelihood": {"family": "normal"}, "pooling": {"exponents_by_arch": False},
              "bowl": {"skew_by_tokens": True, "skew_by_cell": True}},
}


@pytest.mark.parametrize("variant", list(SPECS))
def test_pymc_and_numpy_log_density_agree(variant):
    spec = spec_from_dict(SPECS[variant])
    inputs = prepare_inputs(_sweep(variant), window=spec.window)
    model = build_model(inputs, spec)
    level = [n for n in ("log_lr_opt", "log_batch_opt", "log_loss_opt", "log_chol_diag",
                         "log_tau_opt_informed", "z_tau_blind", "skew_cell_informed",
                         "z_skew_cell_thin")
             if n in model.named_vars]
    # FAST_COMPILE: the same values in ~1 s instead of ~8 s of compile a function
    logp = model.compile_logp(vars=[model[n] for n in level] + model.observed_RVs,
                              jacobian=False, mode="FAST_COMPILE")
    names = [v.name for v in model.free_RVs + model.deterministics]
    values_fn = model.compile_fn(model.replace_rvs_by_values([model[n] for n in names]),
                                 inputs=model.value_vars, on_unused_input="ignore",
                                 mode="FAST_COMPILE")
    cells = inputs.cells
    cell_arrays, run_arrays = core_arrays(inputs)
    censored = run_arrays["censored"]
    assert censored.any() and (~censored).any()
    if variant == "mixed_wd":
        assert cells["has_wd"].any() and not cells["has_wd"].all()
    if variant == "wd3d":  # the default spec: skews centred in some cells, non-centred in others
        assert spec.skew_by_cell and cells["thin"].any() and not cells["thin"].all()
    assert ("config_lr" in model.named_vars) == (variant == "no_wd")
    if variant == "no_wd":
        assert len(inputs.configs) == 2 and (cells["config_idx"] == -1).sum() == len(cells) / 2
    start = model.initial_point(0)
    rng = np.random.default_rng(11)
    for _ in range(N_POINTS):
        point = {k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in start.items()}
        values = dict(zip(names, values_fn(point), strict=True))
        expected = float(logp(point))
        got = core.log_density(values, cell_arrays, run_arrays, family=spec.likelihood,
                               nu=spec.nu, skew=spec.skew, dims=len(inputs.dims))
        assert np.isfinite(expected)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_chol_matrix_matches_entries_and_reproduces_bowl():
    rng = np.random.default_rng(0)
    diag, off = np.exp(rng.normal(size=(4, 3))), rng.normal(size=(4, 3))
    c = core.chol_matrix(diag, off)
    assert np.allclose(np.triu(c, 1), 0.0)
    assert np.allclose(c[:, [1, 2, 2], [0, 0, 1]], off)
    delta = rng.normal(size=(4, 3))
    quad = 0.5 * np.einsum("si,sij,sjk,sk->s", delta, c, np.swapaxes(c, -1, -2), delta)
    assert np.allclose(core.bowl_loss_array(2.0, delta, diag, off), 2.0 + quad)


def test_skew_stretches_and_inverts():
    d = np.array([-0.4, 0.0, 0.3])
    s = core.stretch_lr(d, 0.5)
    assert np.allclose(s, [-0.4 * np.exp(-0.5), 0.0, 0.3 * np.exp(0.5)])
    assert np.allclose(core.unstretch_lr(s, 0.5), d)


def test_weight_decay_identity_round_trips():
    log_lr, log_b, log_d, log_tau = np.log(3e-3), np.log(2**21), np.log(1e11), np.log(0.2)
    log_wd = core.log_weight_decay(log_tau, log_lr, log_b, log_d)
    assert np.exp(log_wd) == pytest.approx(2**21 / (3e-3 * 0.2 * 1e11))
    assert core.log_weight_decay(log_wd, log_lr, log_b, log_d) == pytest.approx(log_tau)


def test_censoring_rule():
    loss = np.array([2.0, 2.05, np.nan, 2.01])
    ok = np.array([True, True, True, False])
    edge = core.window_edge(2.0, 0.02)
    assert edge == pytest.approx(2.04)
    assert core.is_censored(loss, ok, edge).tolist() == [False, True, True, True]


# --------------------------------------------------------------------------------------
# Hand-computed checks of the laws and the bowl (moved from test_laws)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["student_t", "normal"])
def test_run_log_likelihood_matches_scipy(family):
    """The written-out densities against scipy.stats: inside the window the Student-t(nu) or
    Normal log density, censored runs the Normal log survival at the edge; broadcasting as
    the design's rescoring calls it (outcomes x draws x inner samples x runs)."""
    from scipy import stats

    rng = np.random.default_rng(3)
    y = 3.0 + 0.01 * rng.standard_normal((4, 1, 1, 5))
    censored = rng.random((4, 1, 1, 5)) < 0.4
    mu = 3.0 + 0.01 * rng.standard_normal((1, 6, 2, 5))
    sigma = 0.003 + 0.004 * rng.random((1, 6, 1, 1))
    got = core.run_log_likelihood(y, censored, mu, sigma, family, 5.0)
    inside = (stats.t.logpdf(y, df=5.0, loc=mu, scale=sigma) if family == "student_t"
              else stats.norm.logpdf(y, loc=mu, scale=sigma))
    want = np.where(censored, stats.norm.logsf(y, loc=mu, scale=sigma), inside)
    assert got.shape == (4, 6, 2, 5)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_log_lr_opt_hand_computed():
    # N = e * N_REF, D = D_REF / e^2 -> c + a_n * 1 + a_d * (-2)
    got = core.law_at(-7.0, -0.5, 0.25, math.e * core.N_REF, core.D_REF / math.e**2)
    assert got == pytest.approx(-7.0 - 0.5 - 0.5)
    assert core.law_at(-7.0, -0.5, 0.25, core.N_REF, core.D_REF) == pytest.approx(-7.0)


def test_log_batch_opt_hand_computed():
    # N = 10 N_REF, D = 100 D_REF: 14 + 0.1 ln 10 + 0.5 ln 100 = 14 + 1.1 ln 10
    got = core.law_at(14.0, 0.1, 0.5, 10 * core.N_REF, 100 * core.D_REF)
    assert got == pytest.approx(14.0 + 1.1 * math.log(10.0))


def test_log_tau_opt_hand_computed():
    # TPP = 80 = 4 * TPP_REF: -1.5 - 0.5 ln 4 = -1.5 - ln 2
    assert core.tau_at(-1.5, -0.5, 1e9, 8e10) == pytest.approx(-1.5 - math.log(2.0))
    assert core.tau_at(-1.5, -0.5, 1e9, 2e10) == pytest.approx(-1.5)


def test_loss_law_bend_hand_computed():
    # zero at the reference scale (TPP 100), q ((ln 1)^2 - (ln 5)^2) at TPP_REF = 20
    assert core.loss_law_at(0.7, -0.05, -0.05, 0.004, core.N_REF, core.D_REF) == pytest.approx(0.7)
    at_20 = core.loss_law_at(0.7, -0.05, -0.05, 0.004, core.N_REF, 20 * core.N_REF)
    assert at_20 == pytest.approx(0.7 - 0.05 * math.log(0.2) - 0.004 * math.log(5.0) ** 2)
    # the local D-slope is the derivative of the law in log D at fixed N
    n, d, h = 3e8, 4e11, 1e-5
    numeric = (core.loss_law_at(0.7, -0.05, -0.05, 0.004, n, d * math.exp(h))
               - core.loss_law_at(0.7, -0.05, -0.05, 0.004, n, d * math.exp(-h))) / (2 * h)
    assert core.loss_slope_d(-0.05, 0.004, n, d) == pytest.approx(numeric, rel=1e-6)


def test_log_helpers_vectorise():
    n = np.array([1e8, 1e9, 1e10])
    d = np.array([[1e10], [1e11]])
    out = core.law_at(-6.4, -0.7, 0.3, n, d)
    assert out.shape == (2, 3)
    assert out[1, 1] == pytest.approx(-6.4)


def test_weight_decay_from_tau_hand_computed():
    # tau = 0.1, lr = 1e-3, B = 1e6 tokens, D = 1e11: lambda = 1e6 / (1e-3 * 0.1 * 1e11) = 0.1
    got = core.log_weight_decay(np.log(0.1), np.log(1e-3), np.log(1e6), np.log(1e11))
    assert np.exp(got) == pytest.approx(0.1)


def test_tau_weight_decay_round_trip():
    rng = np.random.default_rng(0)
    lr = 10 ** rng.uniform(-4, -2, 50)
    batch = 10 ** rng.uniform(5, 7, 50)
    tokens = 10 ** rng.uniform(9, 13, 50)
    wd = 10 ** rng.uniform(-3, 0, 50)
    log_tau = core.log_weight_decay(np.log(wd), np.log(lr), np.log(batch), np.log(tokens))
    back = core.log_weight_decay(log_tau, np.log(lr), np.log(batch), np.log(tokens))
    np.testing.assert_allclose(np.exp(back), wd, rtol=1e-12)
    # and the Power Lines helper is the same map at tau_opt
    n = tokens / 20.0
    lam = laws.powerlines_weight_decay_opt(n, tokens, lr, batch)
    tau_back = np.exp(core.log_weight_decay(np.log(lam), np.log(lr), np.log(batch),
                                            np.log(tokens)))
    np.testing.assert_allclose(tau_back, laws.powerlines_tau_opt(n, tokens), rtol=1e-12)


# --------------------------------------------------------------------------------------
# the bowl, with the curvature factor as a matrix
# --------------------------------------------------------------------------------------

CHOL = np.array([[2.0, 0.0, 0.0], [0.6, 1.5, 0.0], [-0.3, 0.2, 0.8]])


def test_bowl_minimum_at_zero():
    rng = np.random.default_rng(1)
    delta = rng.normal(size=(500, 3))
    for skew in (0.0, 0.7, -0.4):
        loss = core.bowl_loss_matrix(2.5, delta, CHOL, skew)
        assert core.bowl_loss_matrix(2.5, np.zeros(3), CHOL, skew) == pytest.approx(2.5)
        assert np.all(loss > 2.5)


def test_bowl_skew_penalises_high_lr_side():
    for h in (0.1, 0.5, 1.5):
        up = core.bowl_loss_matrix(0.0, np.array([h, 0.0, 0.0]), CHOL, 0.6)
        down = core.bowl_loss_matrix(0.0, np.array([-h, 0.0, 0.0]), CHOL, 0.6)
        assert up > down
        # exact: the lr offset is stretched by exp(+-skew)
        h_ii = (CHOL @ CHOL.T)[0, 0]
        assert up == pytest.approx(0.5 * h_ii * (h * np.exp(0.6)) ** 2)
        assert down == pytest.approx(0.5 * h_ii * (h * np.exp(-0.6)) ** 2)


def test_bowl_symmetric_without_skew():
    rng = np.random.default_rng(2)
    delta = rng.normal(size=(200, 3))
    np.testing.assert_allclose(core.bowl_loss_matrix(1.0, delta, CHOL, 0.0),
                               core.bowl_loss_matrix(1.0, -delta, CHOL, 0.0), rtol=1e-13)


def test_bowl_curvature_is_chol_chol_t_and_pd():
    # numerical Hessian at the optimum (skew = 0) equals the stated H = chol chol^T
    h = 1e-3
    eye = np.eye(3)
    hess = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            fpp = core.bowl_loss_matrix(0.0, h * (eye[i] + eye[j]), CHOL)
            fpm = core.bowl_loss_matrix(0.0, h * (eye[i] - eye[j]), CHOL)
            fmp = core.bowl_loss_matrix(0.0, h * (-eye[i] + eye[j]), CHOL)
            fmm = core.bowl_loss_matrix(0.0, -h * (eye[i] + eye[j]), CHOL)
            hess[i, j] = (fpp - fpm - fmp + fmm) / (4 * h * h)
    np.testing.assert_allclose(hess, CHOL @ CHOL.T, atol=1e-6)
    assert np.all(np.linalg.eigvalsh(hess) > 0)


def test_bowl_batched_chol():
    chols = np.stack([CHOL, 2 * CHOL])
    delta = np.array([[0.1, -0.2, 0.3], [0.1, -0.2, 0.3]])
    out = core.bowl_loss_matrix(np.array([1.0, 1.0]), delta, chols, np.array([0.0, 0.0]))
    assert out.shape == (2,)
    assert out[1] - 1.0 == pytest.approx(4 * (out[0] - 1.0))
