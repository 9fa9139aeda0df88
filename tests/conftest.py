"""Shared fixtures."""

from pathlib import Path

import pytest

STEPLAW_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "steplaw"


@pytest.fixture
def steplaw_dir() -> Path:
    """The Step Law data folder (../shared/data/steplaw); skips the test if it is absent."""
    if not STEPLAW_DIR.is_dir():
        pytest.skip("../shared/data/steplaw is absent: real-data tests need the Step Law files")
    return STEPLAW_DIR


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
def cli_posterior_path(tmp_path_factory) -> Path:
    """A fake posterior (:func:`bayes_scaling.testing.fake_posterior`: dense + MoE, one mix
    'web', no sampling) saved to a file, for CLI tests of predict, propose and report."""
    from bayes_scaling.model.fit import save_posterior
    from bayes_scaling.testing import fake_posterior

    return save_posterior(fake_posterior(), tmp_path_factory.mktemp("cli") / "posterior.nc")


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
