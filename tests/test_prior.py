"""The prior predictive: prior draws follow the spec's priors exactly (the intercepts sampled at
the data centre included), the summary covers every cell and the target, the figure draws."""

from pathlib import Path

import numpy as np
import pytest

from bayes_scaling.model.prior import sample_prior
from bayes_scaling.model.spec import default_spec
from bayes_scaling.predict.prior_check import QUANTITIES, prior_summary
from bayes_scaling.present.plots_common import close
from bayes_scaling.present.plots_prior import plot_prior_predictive

TARGET = {"arch": "dense", "data_mix": "web", "n_params": 7e9, "n_tokens": 2e12}
REPO = Path(__file__).resolve().parents[1]
DRAWS = 2000


@pytest.fixture(scope="module")
def prior(sim_sweep):
    return sample_prior(sim_sweep, draws=DRAWS, seed=4)


@pytest.mark.parametrize("name", ["mu_a_n", "mu_b_d", "c_eta_arch", "c_batch_arch", "c_tau"])
def test_prior_draws_follow_the_declared_priors(prior, name):
    """c_eta_arch, c_batch_arch and c_tau are sampled at the data centre with a shifted prior;
    their draws at the reference scale must still have exactly the declared Normal prior
    (5 standard errors on the mean, 8% on the sd)."""
    declared = default_spec().priors[name]
    draws = prior["posterior"][name].to_numpy().ravel()
    assert declared.dist == "Normal"
    assert abs(draws.mean() - declared.mu) < 5 * declared.sigma / np.sqrt(draws.size)
    assert draws.std() == pytest.approx(declared.sigma, rel=0.08)


def test_summary_covers_cells_and_target_and_draws_a_figure(prior, sim_sweep, tmp_path):
    table = prior_summary(prior, TARGET)
    n_cells = sim_sweep.runs["cell"].nunique()
    assert (table["where"] == "cell").sum() == n_cells * len(QUANTITIES)
    assert (table["where"] == "target").sum() == len(QUANTITIES)
    assert (table["lo90"] < table["median"]).all() and (table["median"] < table["hi90"]).all()
    cells = table[table["where"] == "cell"]
    assert cells["observed"].notna().all()
    # weakly informative priors: the simulated sweep's best runs lie inside the prior ranges
    assert cells["inside"].mean() > 0.9
    assert prior.attrs["kind"] == "prior"
    from bayes_scaling.model.fit import load_posterior, save_posterior

    back = load_posterior(save_posterior(prior, tmp_path / "prior.nc"))  # saved and read back
    assert back.attrs["kind"] == "prior" and back.attrs["draws_sha256"] == prior.attrs[
        "draws_sha256"]
    fig = plot_prior_predictive(table, "default")
    try:
        assert len(fig.axes) == len(QUANTITIES)
        assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
        assert "Prior predictive" in fig._suptitle.get_text()
    finally:
        close(fig)


def test_check_prior_cli_reads_a_tracker_export_and_writes_the_figure(run_cli, tmp_path):
    data = REPO / "tests" / "data"
    out = run_cli("check", data / "wandb_export.csv", "--columns-file",
                  data / "wandb_columns.toml", "--prior", "--target-params", "7B",
                  "--target-tokens", "2T", "--draws", 200, "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    assert "lr_opt: the cell's best run lies inside the prior range in 4 of 4 cells" in out.stdout
    assert "target: dense N=7e+09 D=2e+12" in out.stdout
    assert (tmp_path / "prior_predictive.png").stat().st_size > 10_000
    bad = run_cli("check", data / "wandb_export.csv", "--columns-file",
                  data / "wandb_columns.toml", "--prior", "--target-params", "7B")
    assert bad.returncode == 2 and bad.stderr.startswith("error: check: give both")
