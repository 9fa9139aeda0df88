"""Same seed, same draws: on a cold (empty) and on a warm PyTensor/numba compile cache."""

import subprocess
import sys

import numpy as np

SCRIPT = """
import sys
import numpy as np
from bayes_scaling.data.simulate import default_cells, simulate_sweep
from bayes_scaling.model.fit import fit
cells = default_cells(archs=("dense",), mixes=("web",), n_params=(1e8, 4e8),
                      tokens_per_param=(20.0,))
sweep = simulate_sweep(3, cells=cells, n_lr=5, return_truth=False)
post = fit(sweep, seed=7, draws=60, tune=60, chains=2, progressbar=False)
np.save(sys.argv[1], post["posterior"]["a_n"].to_numpy())
"""


def test_same_seed_same_draws_on_cold_and_warm_compile_cache(tmp_path):
    env_dir = tmp_path / "compiledir"
    env_dir.mkdir()
    env = {"PYTENSOR_FLAGS": f"base_compiledir={env_dir}", "PATH": "/usr/bin:/bin"}
    draws = []
    for run in ("cold", "warm"):
        out = tmp_path / f"{run}.npy"
        proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-2000:]
        draws.append(np.load(out))
    assert any(env_dir.iterdir())  # the first run filled the cache the second one used
    np.testing.assert_array_equal(draws[0], draws[1])
