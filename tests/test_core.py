"""The generative core: the PyMC model's log density equals the numpy core's
(:func:`bayes_scaling.model.core.log_density`) at random parameter values, and the core's
pieces agree with independent computations."""

from dataclasses import replace

import numpy as np
import pytest

from bayes_scaling.data.simulate import default_cells, simulate_sweep
from bayes_scaling.model import core
from bayes_scaling.model.graph import build_model
from bayes_scaling.model.inputs import prepare_inputs
from bayes_scaling.model.spec import spec_from_dict

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
    return simulate_sweep(3, cells=cells, n_lr=5, vary_weight_decay=False, return_truth=False)


SPECS = {
    "wd3d": {},
    "mixed_wd": {"bowl": {"skew": False}},
    "no_wd": {"likelihood": {"family": "normal"}, "pooling": {"exponents_by_arch": False}},
}


@pytest.mark.parametrize("variant", list(SPECS))
def test_pymc_and_numpy_log_density_agree(variant):
    spec = spec_from_dict(SPECS[variant])
    inputs = prepare_inputs(_sweep(variant), window=spec.window)
    model = build_model(inputs, spec)
    level = [n for n in ("log_lr_opt", "log_batch_opt", "log_loss_opt", "log_chol_diag",
                         "log_tau_opt_informed", "z_tau_blind") if n in model.named_vars]
    logp = model.compile_logp(vars=[model[n] for n in level] + model.observed_RVs,
                              jacobian=False)
    names = [v.name for v in model.free_RVs + model.deterministics]
    values_fn = model.compile_fn(model.replace_rvs_by_values([model[n] for n in names]),
                                 inputs=model.value_vars, on_unused_input="ignore")
    cells, runs = inputs.cells, inputs.runs
    cell_arrays = {
        "arch_idx": cells["arch_idx"].to_numpy(), "mix_idx": cells["mix_idx"].to_numpy(),
        "x_n": cells["x_n"].to_numpy() + inputs.x_n_centre,
        "x_d": cells["x_d"].to_numpy() + inputs.x_d_centre,
        "x_tpp": cells["x_tpp"].to_numpy() + inputs.x_tpp_centre,
        "log_d": np.log(cells["n_tokens"].to_numpy(float)), "has_wd": cells["has_wd"].to_numpy()}
    censored = runs["censored"].to_numpy()
    run_arrays = {k: runs[k].to_numpy() for k in ("cell_idx", "log_lr", "log_batch", "log_wd",
                                                  "wd_mask")}
    run_arrays.update(censored=censored,
                      loss=np.where(censored, runs["edge"], runs["loss"]).astype(float))
    assert censored.any() and (~censored).any()
    if variant == "mixed_wd":
        assert cells["has_wd"].any() and not cells["has_wd"].all()
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
