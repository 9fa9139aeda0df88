"""Model inputs (the censoring rule) and the structure of the PyMC model."""

import numpy as np
import pandas as pd
import pytest
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.traversal import applys_between

from bayes_scaling.data import from_frame
from bayes_scaling.data.simulate import default_cells, simulate_sweep
from bayes_scaling.model.graph import SWEEP_DATA, build_model, initial_values
from bayes_scaling.model.inputs import prepare_inputs
from bayes_scaling.model.run_kernel import RunLogLik
from bayes_scaling.model.spec import default_spec, spec_from_dict


def _logp_terms(model):
    """``model``'s log density at a point, compiled in FAST_COMPILE mode (~1 s) term by
    term: the Python linker cannot sum more than 31 terms in one Elemwise."""
    fn = model.compile_fn(model.logp(sum=False), mode="FAST_COMPILE")
    return lambda point: sum(float(np.sum(term)) for term in fn(point))


@pytest.fixture(scope="module")
def sweep():
    cells = default_cells(n_params=(1e8, 4e8), tokens_per_param=(20.0,))
    return simulate_sweep(1, cells=cells, return_truth=False)


def _toy(weight_decay=np.nan):
    """Two cells, one of which has only diverged runs."""
    rows = []
    for i, lr in enumerate([1e-3, 2e-3, 4e-3, 8e-3]):
        rows.append(dict(run_id=f"a{i}", n_params=1e8, n_tokens=2e9, batch_tokens=2**18, lr=lr,
                         loss=[2.50, 2.45, 2.47, np.nan][i], weight_decay=weight_decay))
        rows.append(dict(run_id=f"b{i}", n_params=2e8, n_tokens=4e9, batch_tokens=2**18, lr=lr,
                         loss=np.nan, weight_decay=weight_decay))
    return from_frame(pd.DataFrame(rows))


def test_censoring_rule_and_exclusions_account_for_every_row():
    inputs = prepare_inputs(_toy(), window=0.01)
    runs = inputs.runs.set_index("run_id")
    # best loss 2.45, edge 2.4745: 2.50 is above it, 2.47 inside, the NaN run diverged
    assert runs.loc["a1", "censored"] == False  # noqa: E712
    assert runs.loc["a2", "censored"] == False  # noqa: E712
    assert runs.loc["a0", "censored"] and runs.loc["a3", "censored"]
    assert runs.loc["a0", "edge"] == pytest.approx(2.45 * 1.01)
    assert runs.loc["a3", "loss"] == pytest.approx(2.45 * 1.01)  # censored at the edge
    # the all-diverged cell has no edge: its runs are excluded, with the reason
    assert sorted(inputs.excluded["run_id"]) == ["b0", "b1", "b2", "b3"]
    assert inputs.excluded["reason"].str.contains("no finite loss").all()
    assert len(inputs.runs) + len(inputs.excluded) == 8


def test_inputs_agree_with_the_sweep_exclusion_report(sweep):
    inputs = prepare_inputs(sweep, window=0.02)
    report = sweep.exclusion_report(0.02)
    censored = set(report.loc[report["action"] == "censored", "run_id"])
    assert censored == set(inputs.runs.loc[inputs.runs["censored"], "run_id"])


def test_weight_decay_dimension_only_when_a_cell_varies_it(sweep):
    assert prepare_inputs(sweep).dims == ("lr", "batch", "weight_decay")
    assert prepare_inputs(_toy(weight_decay=0.1)).dims == ("lr", "batch")


def test_a_cell_that_never_varies_the_batch_does_not_place_its_batch_optimum():
    cells = default_cells(archs=("dense",), mixes=("web",), n_params=(1e8, 4e8),
                          tokens_per_param=(20.0,))
    fixed = simulate_sweep(2, cells=cells, n_lr=4, n_batch=1, return_truth=False)
    varied = simulate_sweep(2, cells=cells, n_lr=4, n_batch=2, return_truth=False)
    runs = fixed.runs.copy()
    first = runs["cell"] == runs["cell"].iloc[0]
    runs.loc[first & (runs.index % 2 == 0), "batch_tokens"] *= 2  # one cell varies it
    mixed = prepare_inputs(from_frame(runs))
    assert prepare_inputs(fixed).runs["batch_mask"].eq(0).all()
    assert prepare_inputs(varied).runs["batch_mask"].eq(1).all()
    by_cell = mixed.runs.groupby("cell")["batch_mask"].agg(["min", "max"])
    assert by_cell.loc[runs["cell"].iloc[0]].tolist() == [1, 1]
    assert (by_cell.drop(index=runs["cell"].iloc[0]) == 0).all().all()
    assert mixed.cells["has_batch"].sum() == 1


def test_model_variables_carry_dims_and_a_finite_start(sweep):
    inputs = prepare_inputs(sweep)
    model = build_model(inputs)
    named = model.named_vars_to_dims
    assert named["log_lr_opt"] == ("cell",)
    assert named["c_eta"] == ("arch", "mix")
    assert named["a_n"] == ("arch",)
    assert named["chol_diag"] == ("cell", "dim")
    assert named["loss_obs"] == ("run_obs",)
    assert named["loss_cens"] == ("run_cens",)
    assert len(model.coords["run_obs"]) + len(model.coords["run_cens"]) == len(sweep.runs)
    point = model.initial_point()
    point.update({f"{k}": v for k, v in initial_values(inputs).items()})
    logp = _logp_terms(model)(point)
    assert np.isfinite(logp)


def test_chains_start_at_the_data_informed_values_and_jitter_the_rest(sweep):
    from bayes_scaling.model.compiled import JITTER, start_point_fn

    inputs = prepare_inputs(sweep)
    model, init = build_model(inputs), initial_values(inputs)
    start = start_point_fn(model, init)
    a, b, a_again = start(0), start(1), start(0)
    for name in init:
        np.testing.assert_allclose(a[name], init[name])
        np.testing.assert_array_equal(a[name], b[name])
    centre = model.initial_point()
    for name in ("noise_log__", "skew", "a_n", "log_chol_diag"):
        assert 0 < np.max(np.abs(a[name] - centre[name])) <= JITTER
        assert not np.allclose(a[name], b[name])
        np.testing.assert_array_equal(a[name], a_again[name])


def test_the_sweep_enters_as_one_shared_vector(sweep):
    """All the sweep's numbers come in one float64 vector (what the cached nutpie callbacks
    read), and a sweep of the same structure with other run counts swaps in."""
    inputs = prepare_inputs(sweep)
    model = build_model(inputs)
    shared = [v for v in model.named_vars.values() if isinstance(v, SharedVariable)]
    assert [v.name for v in shared] == [SWEEP_DATA]
    fewer = prepare_inputs(from_frame(sweep.runs.drop(index=sweep.runs.index[::4])))
    assert len(fewer.cells) == len(inputs.cells)  # the same structure: as many thin cells
    assert fewer.cells["thin"].sum() == inputs.cells["thin"].sum() > 0
    assert 0 < fewer.runs["censored"].sum() < inputs.runs["censored"].sum()
    other = build_model(fewer)
    point = model.initial_point()
    expected = _logp_terms(other)(point)
    logp = _logp_terms(model)
    assert logp(point) != pytest.approx(expected)
    shared[0].set_value(other[SWEEP_DATA].get_value())
    np.testing.assert_allclose(logp(point), expected, rtol=1e-12)


def test_spec_options_build_models_with_finite_logp(sweep):
    """The non-default options together, in one model: a Normal likelihood, no skew, no
    pooling of exponents and no mix offsets."""
    over = {"likelihood": {"family": "normal"}, "bowl": {"skew": False},
            "pooling": {"exponents_by_arch": False, "mix_offsets": False}}
    model = build_model(prepare_inputs(sweep), spec_from_dict(over))
    assert np.isfinite(_logp_terms(model)(model.initial_point()))
    families = {node.op.family for node in applys_between(model.value_vars, [model.logp()])
                if isinstance(node.op, RunLogLik)}
    assert families == {"normal", "censored"}
    assert "skew" not in model.named_vars
    assert "sd_arch_exponent" not in model.named_vars and "mix_c_eta" not in model.named_vars


def test_single_arch_exponents_keep_the_declared_hierarchical_prior():
    """One arch samples (exponent, mean) the other way round; the joint prior must still be
    mu ~ N(m, s), exponent | mu, sd ~ N(mu, sd) with sd's declared prior."""
    import pymc as pm

    cells = default_cells(archs=("dense",), mixes=("web",), n_params=(5e7, 2e8))
    sweep = simulate_sweep(5, cells=cells, n_lr=4, n_batch=2, vary_weight_decay=False,
                           return_truth=False)
    model = build_model(prepare_inputs(sweep), spec_from_dict({}))
    assert "w_mu_a_n" in model.named_vars  # the single-arch parameterisation is in use
    with model:
        prior = pm.sample_prior_predictive(8000, random_seed=3,
                                           var_names=["mu_a_n", "a_n", "sd_arch_exponent"])
    p = prior["prior"]
    mu, a = p["mu_a_n"].values.ravel(), p["a_n"].values.ravel()
    sd = p["sd_arch_exponent"].values.ravel()
    assert mu.mean() == pytest.approx(-0.5, abs=0.02)  # mu_a_n ~ N(-0.5, 0.5) as declared
    assert mu.std() == pytest.approx(0.5, rel=0.04)
    z = (a - mu) / sd  # exponent | mu, sd ~ N(mu, sd): standard normal, independent of sd
    assert z.mean() == pytest.approx(0.0, abs=0.04)
    assert z.std() == pytest.approx(1.0, rel=0.04)
    assert abs(np.corrcoef(np.abs(z), sd)[0, 1]) < 0.05
    assert abs(np.corrcoef(z, mu)[0, 1]) < 0.05


def test_a_sweep_with_other_thin_cells_gets_its_own_compiled_model(sweep):
    """The count of thin cells (non-centred skews) fixes parameter shapes, so it is part of
    the key under which a compiled model is reused."""
    from bayes_scaling.model.compiled import structure_key

    inputs = prepare_inputs(sweep)
    other = prepare_inputs(from_frame(sweep.runs.drop(index=sweep.runs.index[::3])))
    same = prepare_inputs(from_frame(sweep.runs.drop(index=sweep.runs.index[::4])))
    assert other.cells["thin"].sum() != inputs.cells["thin"].sum()
    spec = default_spec()
    assert structure_key(other, spec) != structure_key(inputs, spec)
    assert structure_key(same, spec) == structure_key(inputs, spec)
