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
