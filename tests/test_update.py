"""Adding runs to a fitted posterior by PSIS reweighting (bayes_scaling.predict.update), on a
small fake posterior: the importance ratio against the core's log density computed
independently, the resampled posterior's contents, and the cases that need a refit."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_scaling.data import from_frame
from bayes_scaling.data.simulate import default_cells, simulate_sweep
from bayes_scaling.model import core
from bayes_scaling.model.fit import posterior_runs
from bayes_scaling.model.inputs import prepare_inputs
from bayes_scaling.predict.draws import Draws
from bayes_scaling.predict.update import (
    log_ratio,
    psis_weights,
    reweight_posterior,
    update_posterior,
)
from bayes_scaling.testing import core_arrays, fake_posterior

pytestmark = pytest.mark.filterwarnings("ignore::bayes_scaling.errors.PosteriorWarning")


@pytest.fixture(scope="module")
def split():
    """A dense sweep of four cells; the last three runs of one cell held back as 'new'."""
    cells = default_cells(archs=("dense",), mixes=("web",), n_params=(5e7, 2e8))
    sweep = simulate_sweep(5, cells=cells, n_lr=5, n_batch=3, vary_weight_decay=False,
                           return_truth=False)
    runs = sweep.runs
    cell = runs["cell"].iloc[0]
    new = runs.index[runs["cell"] == cell][-3:]
    old = replace(sweep, runs=runs.drop(index=new).reset_index(drop=True))
    return old, runs.loc[new].drop(columns="cell").reset_index(drop=True), cell


@pytest.fixture(scope="module")
def post(split):
    return fake_posterior(split[0], chains=2, draws=30, jitter=0.002, seed=2)


def _values(post: xr.DataTree, draw: int) -> dict[str, np.ndarray]:
    p = post["posterior"].to_dataset().stack(sample=("chain", "draw"))
    return {name: np.moveaxis(p[name].to_numpy(), -1, 0)[draw] for name in p.data_vars}


def test_log_ratio_equals_the_change_in_the_core_log_density(split, post):
    old_sweep, new_runs, cell = split
    spec_kw = {"family": "student_t", "nu": 5.0, "skew": True, "dims": 2}
    combined = from_frame(pd.concat([posterior_runs(post).drop(columns="cell"), new_runs]))
    old, new = prepare_inputs(old_sweep), prepare_inputs(combined)
    d = Draws.from_posterior(post)
    got = log_ratio(d, old, new, [cell])
    for s in (0, 17, 59):
        values = _values(post, s)
        expected = (core.log_density(values, *core_arrays(new), **spec_kw)
                    - core.log_density(values, *core_arrays(old), **spec_kw))
        assert got[s] == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_psis_weights_grow_with_the_ratio():
    """Weights proportional to exp(log ratio): arviz-stats' psislw takes log likelihoods
    (LOO weights are their inverse), which once reversed every update."""
    ratios = np.random.default_rng(0).normal(0.0, 0.3, 4000)
    w, khat = psis_weights(ratios)
    assert w.sum() == pytest.approx(1.0) and khat < 0.5
    exact = np.exp(ratios) / np.exp(ratios).sum()
    assert np.corrcoef(w, exact)[0, 1] > 0.99
    assert w[np.argmax(ratios)] > w[np.argmin(ratios)]


def test_reweighted_posterior_carries_the_combined_sweep(split, post):
    _, new_runs, cell = split
    out = reweight_posterior(post, new_runs, seed=1)
    assert out.posterior is not None and out.reason == "" and out.cells == (cell,)
    assert out.khat <= 0.7 and 1 < out.ess <= 60
    tree = out.posterior
    assert len(posterior_runs(tree)) == len(posterior_runs(post)) + len(new_runs)
    before, after = post["posterior"].to_dataset(), tree["posterior"].to_dataset()
    assert after["log_lr_opt"].shape == before["log_lr_opt"].shape
    # every resampled draw is one of the original draws, whole
    orig = before["a_d"].to_numpy().ravel()
    assert np.isin(after["a_d"].to_numpy().ravel(), orig).all()
    assert tree.attrs["update_cells"] == cell and float(tree.attrs["update_khat"]) == out.khat
    assert "update:" in out.line() and "k-hat" in out.line()


def test_new_cell_or_changed_design_needs_a_refit(split, post):
    _, new_runs, _ = split
    other = new_runs.assign(n_tokens=new_runs["n_tokens"] * 3, run_id=lambda r: r["run_id"] + "x")
    out = reweight_posterior(post, other)
    assert out.posterior is None and "new cell" in out.reason

    calls = []

    def refit(sweep, spec, seed):
        calls.append(len(sweep.runs))
        return post

    done = update_posterior(post, other, refit=refit)
    assert done.refitted and calls == [len(posterior_runs(post)) + len(other)]
    assert "refitted" in done.line()


def test_cli_update_reweights_and_saves(tmp_path, split, post, capsys):
    from bayes_scaling.model.fit import load_posterior, save_posterior
    from bayes_scaling.present.cli import main

    _, new_runs, cell = split
    path = save_posterior(post, tmp_path / "post.nc")
    new_runs.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "updated.nc"
    assert main(["update", str(path), str(tmp_path / "new.csv"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "reweighted by 1 cell(s)' new runs" in printed and "PSIS k-hat" in printed
    updated = load_posterior(out)
    assert updated.attrs["update_cells"] == cell
    assert len(posterior_runs(updated)) == len(posterior_runs(post)) + len(new_runs)
