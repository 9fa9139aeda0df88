"""Sparse (MoE) configurations: read from n_params_total, labelled per cell, their offsets
on the lr and batch laws, the lr law in total parameters, and predictions for known and new
configurations (on a small fake posterior: these check the plumbing, not statistics)."""

from dataclasses import replace

import numpy as np
import pytest

from bayes_scaling.data.simulate import default_cells, simulate_sweep
from bayes_scaling.errors import SweepError, TargetError
from bayes_scaling.model import core
from bayes_scaling.model.inputs import TOTAL_COLUMN, config_label, prepare_inputs
from bayes_scaling.predict.draws import Draws, as_targets
from bayes_scaling.predict.predict import predict
from bayes_scaling.testing import fake_posterior

pytestmark = pytest.mark.filterwarnings("ignore::bayes_scaling.errors.PosteriorWarning")

RATIO = 4.0
"""Total / active parameters of the sparse cells."""


@pytest.fixture(scope="module")
def sparse_sweep():
    """Dense and MoE cells at three sizes; the MoE ones with total = 4 x active."""
    cells = default_cells(mixes=("web",), n_params=(5e7, 1.5e8, 4.5e8))
    sweep = simulate_sweep(2, cells=cells, n_lr=4, n_batch=3, return_truth=False)
    runs = sweep.runs.assign(**{TOTAL_COLUMN: np.nan})
    moe = runs["arch"] == "moe"
    runs.loc[moe, TOTAL_COLUMN] = RATIO * runs.loc[moe, "n_params"]
    return replace(sweep, runs=runs)


@pytest.fixture(scope="module")
def sparse_post(sparse_sweep):
    return fake_posterior(sparse_sweep, chains=2, draws=40, seed=1)


def test_config_label_only_for_sparse_models():
    assert config_label("moe", 1e8, 4e8) == "moe|Na=1e+08|N=4e+08"
    assert config_label("dense", 1e8, np.nan) == ""
    assert config_label("dense", 1e8, 1e8) == ""  # total equal to active: dense


def test_inputs_label_configurations_and_size_the_lr_law_by_total(sparse_sweep):
    inputs = prepare_inputs(sparse_sweep)
    cells = inputs.cells
    moe = cells["arch"] == "moe"
    assert len(inputs.configs) == 3  # three MoE sizes, two token counts each
    assert (cells.loc[~moe, "config_idx"] == -1).all()
    assert sorted(cells.loc[moe, "config_idx"].unique()) == [0, 1, 2]
    # the lr law's size: total parameters for the sparse cells, active for the dense ones
    shift = cells["x_n_total"] - cells["x_n"]
    assert np.allclose(shift[moe], np.log(RATIO))
    assert np.allclose(shift[~moe], 0.0)
    assert core.size_of("lr", 1e8, 4e8) == 4e8 and core.size_of("batch", 1e8, 4e8) == 1e8


def test_cell_with_two_totals_is_an_error(sparse_sweep):
    runs = sparse_sweep.runs.copy()
    cell = runs.loc[runs["arch"] == "moe", "cell"].iloc[0]
    runs.loc[runs.index[runs["cell"] == cell][0], TOTAL_COLUMN] = 9e9
    with pytest.raises(SweepError, match=f"{TOTAL_COLUMN}.*{cell.split('|')[0]}"):
        prepare_inputs(replace(sparse_sweep, runs=runs))


def test_config_offsets_of_known_new_and_dense_models(sparse_post):
    d = Draws.from_posterior(sparse_post)
    known = d.known("config")
    assert len(known) == 3 and "config_lr" in d.post
    assert "config_batch" not in d.post and "config_loss" not in d.post
    fitted = known[0]
    n_active = float(fitted.split("Na=")[1].split("|")[0])
    n_total = float(fitted.split("|N=")[1])
    own = d.config_offset("lr", "moe", n_active, n_total)
    assert np.array_equal(own, d.get("config_lr", config=fitted))
    # a new configuration: N(0, sd_config) draws, the same for every cell that carries it
    new = d.config_offset("lr", "moe", 2e8, 1.6e9)
    assert np.array_equal(new, d.config_offset("lr", "moe", 2e8, 1.6e9))
    z = new / d.get("sd_config_lr")
    assert abs(z.mean()) < 0.5 and 0.6 < z.std() < 1.4
    assert np.array_equal(d.config_offset("lr", "dense", 2e8), np.zeros(d.n))
    # the lr law of a sparse model runs in its total parameters, plus the offset
    c, a_n, a_d = (d.intercept("c_eta", "moe", "web"), d.by_arch("a_n", "moe"),
                   d.by_arch("a_d", "moe"))
    law = d.law_mean("lr", "moe", "web", n_active, 1e10, n_total)
    assert np.allclose(law, core.law_at(c, a_n, a_d, n_total, 1e10) + own)


def test_a_sparse_arch_needs_the_total(sparse_post):
    d = Draws.from_posterior(sparse_post)
    with pytest.raises(TargetError, match="total parameters"):
        d.total_params("moe", 1e9)
    assert np.isnan(d.total_params("dense", 1e9))
    assert d.total_params("moe", 1e9, 2e9) == 2e9


def test_new_configuration_gets_wider_lr_intervals(sparse_post):
    """A target at a fitted configuration's sizes uses its offset; one of a new sparsity
    adds the configurations' spread."""
    cfg = Draws.from_posterior(sparse_post).known("config")[-1]
    n_active = float(cfg.split("Na=")[1].split("|")[0])
    targets = {"arch": "moe", "data_mix": "web", "n_params": n_active, "n_tokens": 5e10,
               TOTAL_COLUMN: [RATIO * n_active, 2.5 * n_active]}
    draws = predict(sparse_post, targets, seed=0).draws
    sd = draws["log_lr_opt"].std(("chain", "draw")).to_numpy()
    assert sd[1] > sd[0]


def test_targets_reject_a_bad_total():
    with pytest.raises(TargetError, match=TOTAL_COLUMN):
        as_targets({"arch": "moe", "n_params": 1e8, "n_tokens": 1e10, TOTAL_COLUMN: -1.0})
    assert np.isnan(as_targets({"arch": "dense", "n_params": 1e8,
                                "n_tokens": 1e10})[TOTAL_COLUMN]).all()


def test_a_sparse_target_needs_its_total_and_proposes_at_its_sparsity(sparse_post):
    from bayes_scaling.design.candidates import default_candidates

    target = {"arch": "moe", "data_mix": "web", "n_params": 2e9, "n_tokens": 4e10}
    with pytest.raises(TargetError, match=TOTAL_COLUMN):
        predict(sparse_post, target)
    table = default_candidates(sparse_post, {**target, TOTAL_COLUMN: 3 * 2e9}, n_draws=50)
    new = table[table["new_cell"]]
    assert len(new) and np.allclose(new[TOTAL_COLUMN] / new["n_params"], 3.0)
