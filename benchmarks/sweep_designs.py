"""Does the default spec sample cleanly on the sweeps teams actually run?

Fits the model (default spec unless --spec) to simulated sweeps of six shapes (3 seeds each):

    fixed_tpp    four sizes N = 5e7 .. 4e8 at 20 tokens per parameter (N and D collinear)
    one_size     N = 1e8 with a token sweep, 10 .. 160 tokens per parameter
    two_sizes    N = 1e8, 4e8 at 20 and 100 tokens per parameter
    twelve_runs  two cells of 3 lr x 2 batch: 12 runs
    lr_only      the fixed_tpp cells with lr swept at one fixed batch
    moe_only     MoE only, N = 1e8 .. 4e8 at 20 and 100 tokens per parameter

and to two real sub-sweeps of the Step Law dense file, each predicting the next size up:

    steplaw_ladder   the four cells at ~19 tokens per parameter (N = 2.15e8 .. 5.37e8);
                     predicts N = 1.07e9, D = 2e10
    steplaw_one_n    N = 2.15e8 at D = 4e9, 1.14e10, 2e10; predicts D = 1e11

For each fit: max R-hat, min bulk ESS, divergences (the bar: R-hat <= 1.01, bulk ESS >= 400,
0 divergences); for the real ones, the regret of the predicted (lr, batch) on the held-out
cell's own surface and whether both 90% intervals contain its optimum (definitions as in
benchmarks/heldout_steplaw.py).

    .venv/bin/python benchmarks/sweep_designs.py [--shapes a,b] [--seeds 3] [--spec F] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling.heldout.reference import cell_optimum, regret_pct

ROOT = Path(__file__).resolve().parents[1]
STEPLAW_DENSE = ROOT.parent / "shared" / "data" / "steplaw" / "dense_lr_bs_loss.csv"
SIZES = (5e7, 1e8, 2e8, 4e8)


def _cells(arch: str, n_params, tpps) -> pd.DataFrame:
    rows = [(arch, "web", n, n * t) for n in n_params for t in tpps]
    return pd.DataFrame(rows, columns=["arch", "data_mix", "n_params", "n_tokens"])


SIMULATED: dict[str, tuple[pd.DataFrame, dict]] = {
    "fixed_tpp": (_cells("dense", SIZES, (20.0,)), {}),
    "one_size": (_cells("dense", (1e8,), (10.0, 20.0, 40.0, 80.0, 160.0)), {}),
    "two_sizes": (_cells("dense", (1e8, 4e8), (20.0, 100.0)), {}),
    "twelve_runs": (_cells("dense", (1e8, 4e8), (20.0,)), {"n_lr": 3, "n_batch": 2}),
    "lr_only": (_cells("dense", SIZES, (20.0,)), {"n_batch": 1}),
    "moe_only": (_cells("moe", (1e8, 2e8, 4e8), (20.0, 100.0)), {}),
}
"""Simulated shapes: (cells, simulate_sweep options); weight decay is not varied."""


def _near(values: pd.Series, target: float) -> np.ndarray:
    return np.isclose(values.to_numpy(float), target, rtol=0.01)


REAL: dict[str, tuple[Callable[[pd.DataFrame], np.ndarray], Callable[[pd.DataFrame], np.ndarray]]]
REAL = {
    "steplaw_ladder": (
        lambda r: (r["n_tokens"] / r["n_params"]).between(18, 20).to_numpy()
        & (r["n_params"] < 1e9).to_numpy(),
        lambda r: _near(r["n_params"], 1.073742e9) & _near(r["n_tokens"], 2e10)),
    "steplaw_one_n": (
        lambda r: _near(r["n_params"], 2.146637e8) & (r["n_tokens"] <= 2.1e10).to_numpy(),
        lambda r: _near(r["n_params"], 2.146637e8) & _near(r["n_tokens"], 1e11)),
}
"""Real sub-sweeps of the Step Law dense file: (training rows, held-out next-size-up rows)."""


def _diagnostics(posterior) -> dict:
    from bayes_scaling.model.fit import diagnose

    d = diagnose(posterior)
    return {"max_rhat": round(d.max_rhat, 4), "min_ess_bulk": round(d.min_ess_bulk),
            "divergences": d.divergences,
            "clean": bool(d.max_rhat <= 1.01 and d.min_ess_bulk >= 400 and d.divergences == 0)}


def _held_out_score(posterior, test: pd.DataFrame, seed: int) -> dict:
    """Regret (%) of the predicted median (lr, batch) on the held-out cell's own quadratic
    and whether both 90% intervals contain the cell's optimum."""
    from bayes_scaling.predict.predict import predict

    cell = test.iloc[[0]][["arch", "data_mix", "n_params", "n_tokens", "seq_len"]]
    summ = predict(posterior, cell.reset_index(drop=True), seed=seed).summary
    summ = summ.set_index("quantity")
    lr, batch = summ.loc["lr_opt"], summ.loc["batch_tokens_opt"]
    opt = cell_optimum(test)
    lr_opt, b_opt = float(np.exp(opt["log_lr"])), float(np.exp(opt["log_batch"]))
    covered = bool(lr["lo90"] <= lr_opt <= lr["hi90"] and batch["lo90"] <= b_opt <= batch["hi90"])
    return {"target": f"N={cell['n_params'].iloc[0]:.3g}, D={cell['n_tokens'].iloc[0]:.3g}",
            "regret_pct": round(regret_pct(opt, lr["median"], batch["median"]), 4),
            "covered90": covered, "lr_pred": [float(lr["lo90"]), float(lr["median"]),
                                              float(lr["hi90"])], "lr_cell": lr_opt,
            "batch_pred": [float(batch["lo90"]), float(batch["median"]), float(batch["hi90"])],
            "batch_cell": b_opt}


def _fit(sweep, spec, seed: int) -> tuple[object, float]:
    from bayes_scaling.model.fit import fit

    start = time.perf_counter()
    posterior = fit(sweep, spec, seed=seed, progressbar=False)
    return posterior, time.perf_counter() - start


def run(shapes: list[str], seeds: int, spec_path: Path | None) -> list[dict]:
    """Fit every requested shape; one result row per fit."""
    from bayes_scaling.data import read_steplaw
    from bayes_scaling.data.simulate import simulate_sweep
    from bayes_scaling.model.spec import load_spec

    spec = load_spec(spec_path)
    rows = []
    for shape in shapes:
        if shape in SIMULATED:
            cells, options = SIMULATED[shape]
            for seed in range(seeds):
                sweep = simulate_sweep(seed, cells=cells, vary_weight_decay=False,
                                       return_truth=False, **options)
                posterior, seconds = _fit(sweep, spec, seed)
                rows.append({"shape": shape, "kind": "simulated", "seed": seed,
                             "runs": len(sweep.runs), "cells": sweep.runs["cell"].nunique(),
                             "seconds": round(seconds, 1), **_diagnostics(posterior)})
                print(json.dumps(rows[-1]), flush=True)
            continue
        if not STEPLAW_DENSE.is_file():
            print(f"skipping {shape}: {STEPLAW_DENSE} is absent", file=sys.stderr)
            continue
        sweep = read_steplaw(STEPLAW_DENSE)
        train_of, test_of = REAL[shape]
        train = sweep.subset(train_of(sweep.runs))
        test = sweep.runs[test_of(sweep.runs)]
        posterior, seconds = _fit(train, spec, 0)
        rows.append({"shape": shape, "kind": "real", "seed": 0, "runs": len(train.runs),
                     "cells": train.runs["cell"].nunique(), "seconds": round(seconds, 1),
                     **_diagnostics(posterior), **_held_out_score(posterior, test, 0)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    every = [*SIMULATED, *REAL]
    parser.add_argument("--shapes", default=",".join(every),
                        help=f"comma-separated, from {', '.join(every)}")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per simulated shape")
    parser.add_argument("--spec", type=Path, default=None, help="model spec TOML (default spec)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = sorted(set(shapes) - set(every))
    if unknown:
        print(f"error: unknown shape(s) {', '.join(unknown)}; choose from {', '.join(every)}",
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows = run(shapes, args.seeds, args.spec)
    table = pd.DataFrame(rows)
    cols = [c for c in ("shape", "seed", "runs", "cells", "seconds", "max_rhat", "min_ess_bulk",
                        "divergences", "clean", "regret_pct", "covered90") if c in table]
    print(table[cols].to_string(index=False))
    clean = int(table["clean"].sum())
    print(f"{clean}/{len(table)} fits clean (R-hat <= 1.01, bulk ESS >= 400, 0 divergences); "
          f"{time.perf_counter() - start:.0f} s")
    if args.json:
        print(json.dumps({"fits": rows, "clean": clean, "total": len(rows)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
