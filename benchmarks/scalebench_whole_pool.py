"""ScaleBench internal target from the whole pool: fit every run of the pool except the
largest cell's (N = 1.07e9, D = 5.69e10, 47 runs) and score that cell, as
benchmarks/scalebench_pool.py scores it at its budgets (R^2 of the posterior mean loss over
the cell's runs and over those within 5% of its best, the loss level's bias, the regret of the
predicted optimum, whether the 90% intervals contain the cell's optimum). The ceiling of what
active selection can reach with this model, and the check of its loss law.

    .venv/bin/python benchmarks/scalebench_whole_pool.py [--spec F] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scalebench_pool as sb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=None, help="model spec TOML")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    from bayes_scaling.heldout.reference import cell_optimum
    from bayes_scaling.model.fit import fit
    from bayes_scaling.model.spec import load_spec

    if not sb.POOL_FILE.is_file():
        print(f"error: {sb.POOL_FILE} is absent", file=sys.stderr)
        return 2
    sweep = sb.read_pool_sweep()
    n, d = sb.largest_cell(sweep.runs)
    mask = sb.in_cell(sweep.runs, n, d)
    cell = sweep.runs[mask]
    start = time.perf_counter()
    posterior = fit(sweep.subset(~mask), load_spec(args.spec), seed=args.seed,
                    progressbar=False)
    target = {"arch": cell["arch"].iloc[0], "data_mix": cell["data_mix"].iloc[0],
              "n_params": n, "n_tokens": d}
    row = {"fitted_runs": int((~mask).sum()), "target_runs": int(mask.sum()),
           "n_params": n, "n_tokens": d, "seconds": round(time.perf_counter() - start, 1),
           **sb.fit_diagnostics(posterior),
           **sb.target_scores(posterior, target, cell, cell_optimum(cell), args.seed)}
    if args.json:
        print(json.dumps(row))
    else:
        for key, value in row.items():
            print(f"{key:>16}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
