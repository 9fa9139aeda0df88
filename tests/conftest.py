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
