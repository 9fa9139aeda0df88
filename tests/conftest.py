"""Shared fixtures: a simulated sweep with its truth, a fake posterior (no sampling), ONE
small real fit for the tests that need a sampler, and the Step Law data folder.

Session-scoped objects are shared by every test: treat them as read-only (``.copy()`` a
DataTree before changing it).
"""

from pathlib import Path

import pytest
import xarray as xr

STEPLAW_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "steplaw"


@pytest.fixture(scope="session")
def steplaw_dir() -> Path:
    """The Step Law data folder (../shared/data/steplaw); skips the test if it is absent."""
    if not STEPLAW_DIR.is_dir():
        pytest.skip("../shared/data/steplaw is absent: real-data tests need the Step Law files")
    return STEPLAW_DIR


@pytest.fixture(scope="session")
def sim_sweep_and_truth():
    """:func:`bayes_scaling.testing.small_sweep` (seed 3): dense + MoE, one mix 'web', 12
    cells of 6 lrs x 4 batches, weight decay varied; and its truth."""
    from bayes_scaling.testing import small_sweep

    return small_sweep(3)


@pytest.fixture(scope="session")
def sim_sweep(sim_sweep_and_truth):
    """The simulated sweep of :func:`sim_sweep_and_truth`."""
    return sim_sweep_and_truth[0]


@pytest.fixture(scope="session")
def sim_truth(sim_sweep_and_truth) -> xr.Dataset:
    """The truth of :func:`sim_sweep_and_truth`."""
    return sim_sweep_and_truth[1]


@pytest.fixture(scope="session")
def fake_post(sim_sweep, sim_truth) -> xr.DataTree:
    """A fake posterior of :func:`sim_sweep` (2 chains x 300 draws jittered around the truth,
    no sampling; :func:`bayes_scaling.testing.fake_posterior`): for everything downstream
    of fit that does not test statistics."""
    from bayes_scaling.testing import fake_posterior

    return fake_posterior(sim_sweep, truth=sim_truth, chains=2, draws=300, seed=3)


@pytest.fixture(scope="session")
def real_fit_settings() -> dict:
    """Seed and sampler settings of :func:`real_fit` (short chains: its diagnostics flag
    low ESS)."""
    return {"seed": 5, "draws": 150, "tune": 150, "chains": 2}


@pytest.fixture(scope="session")
def tiny_sweep():
    """Four cells (dense + MoE, N = 1e8 and 4e8, 20 tokens per parameter, mix 'web')."""
    from bayes_scaling.data.simulate import default_cells, simulate_sweep

    cells = default_cells(mixes=("web",), n_params=(1e8, 4e8), tokens_per_param=(20.0,))
    return simulate_sweep(3, cells=cells, return_truth=False)


@pytest.fixture(scope="session")
def real_fit(tiny_sweep, real_fit_settings) -> xr.DataTree:
    """THE one small real fit of the unit tests: :func:`tiny_sweep` sampled with nutpie
    (:func:`real_fit_settings`). Use it only where a sampler is what is tested."""
    from bayes_scaling.model.fit import fit

    return fit(tiny_sweep, progressbar=False, **real_fit_settings)


# ----------------------------------------------------------------------------- CLI helper
# (presentation stage: the one way tests run the command line, and a posterior file for it)
import subprocess  # noqa: E402
import sys  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: object, cwd: Path | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``python -m bayes_scaling.present.cli ARGS`` (what the ``bayes-scaling`` entry point
    runs) in a subprocess, as a user would; returns the finished process (text output)."""
    return subprocess.run([sys.executable, "-m", "bayes_scaling.present.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or REPO_ROOT, timeout=timeout)


@pytest.fixture(name="run_cli", scope="session")
def run_cli_fixture():
    """:func:`run_cli` as a fixture, so test modules need not import conftest."""
    return run_cli


@pytest.fixture(scope="session")
def cli_posterior_path(fake_post, tmp_path_factory) -> Path:
    """:func:`fake_post` (dense + MoE, one mix 'web', no sampling) saved to a file, for CLI
    tests of predict, propose and report."""
    from bayes_scaling.model.fit import save_posterior

    return save_posterior(fake_post, tmp_path_factory.mktemp("cli") / "posterior.nc")


@pytest.fixture(scope="session")
def figure_pieces() -> dict:
    """What the figure and report tests draw from, computed once: a fake posterior
    (no sampling) on a 16-cell simulated sweep (dense + MoE, mixes code + web), its truth,
    two targets, their prediction, proposals and a regret grid for the first target."""
    import pandas as pd

    from bayes_scaling.data.simulate import default_cells, simulate_sweep
    from bayes_scaling.design.propose import propose
    from bayes_scaling.predict.predict import predict
    from bayes_scaling.present.plots import regret_grid
    from bayes_scaling.testing import fake_posterior

    sweep, truth = simulate_sweep(seed=1, cells=default_cells(n_params=(5e7, 2e8)))
    posterior = fake_posterior(sweep, truth=truth, draws=100, seed=1)
    targets = pd.DataFrame({"arch": ["dense", "moe"], "data_mix": ["web", "web"],
                            "n_params": [7e9, 7e9], "n_tokens": [2e12, 2e12]})
    prediction = predict(posterior, targets, seed=0)
    proposals = propose(posterior, targets.iloc[0].to_dict(), k=2, seed=0, n_draws=200,
                        n_rescore=8, n_outcomes=8)
    regret = regret_grid(posterior, targets.iloc[0], prediction, n_lr=14, n_batch=12)
    return {"posterior": posterior, "truth": truth, "targets": targets,
            "prediction": prediction, "proposals": proposals, "regret": regret}
