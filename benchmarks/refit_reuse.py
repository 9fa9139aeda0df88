"""How much a refit saves by reusing the compiled model (bayes_scaling.model.compiled).

Fits simulated sweeps of one structure (dense + MoE, mixes web + code, N = 5e7 / 1.5e8 /
4.5e8 at 20 and 100 tokens per parameter: 24 cells; seeds 901, 902, ...) one after the
other in this process, and prints each fit's wall time, its compile time and whether the
compiled model was new or reused. With --check, the last sweep is fitted again in a fresh
process (a new compile) and its draws are compared with those of the reused compile.

    .venv/bin/python benchmarks/refit_reuse.py [--sweeps 3] [--draws 100] [--check] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FRESH = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from refit_reuse import fit_one
post = fit_one(int(sys.argv[2]), int(sys.argv[3]))
np.save(sys.argv[4], post["posterior"]["a_n"].to_numpy())
"""


def fit_one(seed: int, draws: int):
    """The fit of sweep ``seed`` (fit seed 1, 2 chains x ``draws`` after ``draws`` tuning)."""
    from bayes_scaling.data.simulate import default_cells, simulate_sweep
    from bayes_scaling.model.fit import fit

    cells = default_cells(n_params=(5e7, 1.5e8, 4.5e8), tokens_per_param=(20.0, 100.0))
    sweep = simulate_sweep(seed, cells=cells, n_lr=6, return_truth=False)
    return fit(sweep, seed=1, draws=draws, tune=draws, chains=2, progressbar=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=3, help="sweeps fitted in turn")
    parser.add_argument("--draws", type=int, default=100, help="draws (and tuning) per chain")
    parser.add_argument("--check", action="store_true",
                        help="refit the last sweep in a fresh process and compare the draws")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    rows = []
    for i in range(args.sweeps):
        start = time.perf_counter()
        post = fit_one(901 + i, args.draws)
        rows.append({"seed": 901 + i, "seconds": round(time.perf_counter() - start, 1),
                     "compile_seconds": round(float(post.attrs["compile_seconds"]), 1),
                     "compiled": post.attrs["compiled"]})
        print(f"sweep {901 + i}: fit {rows[-1]['seconds']} s (compile "
              f"{rows[-1]['compile_seconds']} s, {rows[-1]['compiled']})", flush=True)
    out = {"fits": rows}
    if args.check:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "a_n.npy"
            subprocess.run([sys.executable, "-c", FRESH, str(Path(__file__).parent),
                            str(901 + args.sweeps - 1), str(args.draws), str(path)], check=True,
                           capture_output=True)
            same = bool(np.array_equal(np.load(path), post["posterior"]["a_n"].to_numpy()))
        out["fresh_process_same_draws"] = same
        print(f"the last sweep refitted in a fresh process (new compile): same draws: {same}")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
