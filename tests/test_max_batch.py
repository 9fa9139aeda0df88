"""The largest safe batch: the per-draw closed form against the bowl itself, the
recommendation against an independent expected-regret evaluation, and the figure."""

import numpy as np
import pytest

from bayes_scaling.errors import TargetError
from bayes_scaling.predict.draws import Draws, draw_new_cells
from bayes_scaling.predict.max_batch import (
    _per_draw_critical_log_batch,
    _per_draw_max_log_batch,
    max_safe_batch,
)
from bayes_scaling.predict.predict import optimum_at_batch
from bayes_scaling.predict.regret import expected_regret
from bayes_scaling.present.plots_batch import plot_max_batch
from bayes_scaling.present.plots_common import close

INSIDE = {"arch": "dense", "data_mix": "web", "n_params": 1.5e8, "n_tokens": 1.5e10}
FAR = {"arch": "dense", "data_mix": "web", "n_params": 7e9, "n_tokens": 2e12}


def test_per_draw_closed_form_matches_the_bowl_minimised_over_lr(fake_post):
    """At each draw's largest batch, that draw's loss with lr and weight decay re-optimised
    (optimum_at_batch, a linear solve) is exactly tol % above its optimum."""
    cells = draw_new_cells(fake_post, INSIDE, seed=2).isel(target=0)
    tol = 0.3
    log_b = _per_draw_max_log_batch(cells, tol).reshape(cells["log_batch_opt"].shape)
    at = optimum_at_batch(cells, cells["log_batch_opt"].copy(data=log_b))
    excess = 100 * (np.exp(at["log_loss_opt_at_batch"]) / np.exp(cells["log_loss_opt"]) - 1)
    np.testing.assert_allclose(excess, tol, rtol=1e-8)
    assert (log_b > cells["log_batch_opt"]).all()


def test_critical_batch_needs_twice_the_tokens_by_the_bowl(fake_post):
    """At each draw's critical batch, a run of 2D tokens (the cell moved along the loss and
    batch laws, its residuals kept) with lr and weight decay re-optimised by the bowl's own
    linear solve reaches exactly the optimal loss at D."""
    import pandas as pd

    cells = draw_new_cells(fake_post, INSIDE, seed=2).isel(target=0)
    target = pd.Series(INSIDE)
    log_b = _per_draw_critical_log_batch(fake_post, target, cells, seed=2)
    d = Draws.from_posterior(fake_post, None, 2)
    shift = {q: (d.law_mean(q, "dense", "web", INSIDE["n_params"], 2 * INSIDE["n_tokens"])
                 - d.law_mean(q, "dense", "web", INSIDE["n_params"], INSIDE["n_tokens"])
                 ).reshape(cells["log_loss_opt"].shape) for q in ("loss", "batch")}
    at_2d = cells.assign(log_loss_opt=cells["log_loss_opt"] + shift["loss"],
                         log_batch_opt=cells["log_batch_opt"] + shift["batch"])
    at = optimum_at_batch(at_2d, cells["log_batch_opt"].copy(
        data=log_b.reshape(cells["log_batch_opt"].shape)))
    # the fake posterior (the truth jittered by 0.05) has the loss law rise with D in 41% of
    # its draws: those have no critical batch
    falls = shift["loss"] < 0
    assert int(falls.sum()) >= 300
    np.testing.assert_allclose(at["log_loss_opt_at_batch"].values[falls],
                               cells["log_loss_opt"].values[falls], rtol=1e-9)
    log_b = log_b.reshape(falls.shape)
    assert np.isnan(log_b[~falls]).all()
    assert (log_b[falls] > at_2d["log_batch_opt"].values[falls]).all()


def test_critical_batch_is_reported_with_its_source(fake_post):
    mb = max_safe_batch(fake_post, INSIDE, 0.5, seed=0)
    c = mb.critical_batch_tokens
    assert c["lo"] < c["median"] < c["hi"] and c["median"] > mb.batch_opt_tokens
    assert mb.critical_from_data  # the fake sweep varies N, D and the batch
    d = mb.to_dict()
    assert set(d["critical_batch_tokens"]) == {"median", "lo90", "hi90"}
    assert d["critical_from_data"] is True


@pytest.mark.parametrize("tol", [0.1, 0.5, 2.0])
def test_recommendation_sits_at_the_tolerance_by_an_independent_regret(fake_post, tol):
    mb = max_safe_batch(fake_post, INSIDE, tol, seed=0)
    b = mb.max_batch_tokens
    assert b["lo"] < b["median"] < b["hi"]
    assert mb.batch_opt_tokens < b["point"]
    check = expected_regret(fake_post, INSIDE, lr=mb.lr, batch_tokens=b["point"], seed=0)
    assert float(check["expected_regret_pct"][0]) == pytest.approx(tol, rel=0.05)
    # a larger batch at any lr near the pairing costs more than the tolerance
    bigger = expected_regret(fake_post, INSIDE, lr=mb.lr * np.array([0.8, 1.0, 1.25]),
                             batch_tokens=1.3 * b["point"], seed=0)
    assert (bigger["expected_regret_pct"] > tol).all()
    d = mb.to_dict()
    assert set(d["max_batch_tokens"]) == {"point", "median", "lo90", "hi90"}


def test_larger_tolerance_allows_a_larger_batch(fake_post):
    small, large = (max_safe_batch(fake_post, INSIDE, t) for t in (0.1, 1.0))
    for key in ("point", "median", "lo", "hi"):
        assert large.max_batch_tokens[key] > small.max_batch_tokens[key]


def test_no_safe_batch_is_said_plainly_and_drawn(fake_post):
    """Far beyond the sweep, the uncertainty alone costs more than 0.1%: no recommendation
    (NaN), the minimum expected regret is reported, and the figure still draws."""
    mb = max_safe_batch(fake_post, FAR, 0.1)
    assert np.isnan(mb.max_batch_tokens["point"]) and np.isnan(mb.lr)
    assert mb.expected_regret_pct > 0.1
    fig = plot_max_batch(mb)
    try:
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    finally:
        close(fig)


def test_bad_tolerance_is_a_target_error(fake_post):
    with pytest.raises(TargetError, match="tolerance"):
        max_safe_batch(fake_post, INSIDE, 0.0)


def test_predict_max_regret_cli(fake_post, run_cli, tmp_path):
    import json

    from bayes_scaling.model.fit import save_posterior

    path = save_posterior(fake_post, tmp_path / "post.nc")
    args = ("predict", path, "--params", "150M", "--tokens", "15B", "--arch", "dense",
            "--mix", "web", "--max-regret", "0.5%")
    out = run_cli(*args, "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)["max_batch"]
    api = max_safe_batch(fake_post, INSIDE, 0.5).to_dict()
    assert got["max_batch_tokens"]["point"] == pytest.approx(api["max_batch_tokens"]["point"])
    assert set(got["max_batch_tokens"]) == {"point", "median", "lo90", "hi90"}
    text = run_cli(*args)
    assert "largest safe batch (expected regret <= 0.5%, lr re-optimised)" in text.stdout
    assert "critical batch (beyond it, matching the loss" in text.stdout
    assert got["critical_batch_tokens"]["median"] == pytest.approx(
        api["critical_batch_tokens"]["median"])
    bad = run_cli(*args[:-1], "0%")
    assert bad.returncode == 2 and "positive percentage" in bad.stderr


def test_predict_max_regret_writes_its_figure_and_checks_the_path_first(fake_post, run_cli,
                                                                         tmp_path):
    from bayes_scaling.model.fit import save_posterior

    path = save_posterior(fake_post, tmp_path / "post.nc")
    args = ("predict", path, "--params", "150M", "--tokens", "15B", "--arch", "dense",
            "--mix", "web")
    out = run_cli(*args, "--max-regret", "0.5%", "--figure", tmp_path / "batch.png")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "batch.png").stat().st_size > 1000 and "figure ->" in out.stderr
    alone = run_cli(*args, "--figure", tmp_path / "b2.png")
    assert alone.returncode == 2 and "give --max-regret too" in alone.stderr
    kind = run_cli(*args, "--max-regret", "0.5%", "--figure", tmp_path / "b.txt")
    assert kind.returncode == 2 and "give a .png or .svg or .pdf file" in kind.stderr
