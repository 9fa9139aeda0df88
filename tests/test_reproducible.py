"""Same seed, same draws: on a cold (empty) and on a warm PyTensor/numba compile cache, and
whether or not a fit reuses a compiled model."""

import numpy as np


def test_same_seed_same_draws_on_cold_and_warm_compile_cache(compile_cache_runs):
    """conftest's CACHE_SCRIPT run twice on one empty compile folder (cold, then warm)."""
    procs, out = compile_cache_runs
    for proc in procs:
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert any((out / "compiledir").iterdir())  # the first run filled the cache the second used
    np.testing.assert_array_equal(np.load(out / "cold.npy"), np.load(out / "warm.npy"))
