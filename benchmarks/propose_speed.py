"""How long does `propose` take to score 10,000 candidate runs? (goal: <= 10 s on 2 cores)

Candidates: single runs in 100 new cells (20 model sizes x 5 tokens-per-parameter) x 10 lr x
10 batch sizes around each cell's Step Law optimum, for a 7e9-parameter, 2e12-token dense
target. Timed: one `propose(posterior, target, candidates, k=1)` call (screen all, re-score
the top 48 by importance reweighting), with the posterior already loaded; the median of
``--repeats`` calls is reported.

Run:  .venv/bin/python benchmarks/propose_speed.py [--posterior /tmp/sim.nc] [--json]
When --posterior is absent or unreadable the default simulated sweep (dense + MoE, two mixes,
weight decay varied; 4 chains x 1000 draws) is fitted first (not timed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling.data.simulate import simulate_sweep
from bayes_scaling.design.propose import propose
from bayes_scaling.errors import PosteriorError
from bayes_scaling.model import laws
from bayes_scaling.model.fit import fit, load_posterior, save_posterior

TARGET = {"arch": "dense", "data_mix": "web", "n_params": 7e9, "n_tokens": 2e12}


def candidates(n_sizes: int = 20, tpps: tuple[float, ...] = (10, 20, 40, 80, 160),
               n_lr: int = 10, n_batch: int = 10) -> pd.DataFrame:
    """n_sizes x len(tpps) cells x n_lr x n_batch single runs (10,000 by default)."""
    rows = []
    for n in np.geomspace(3e7, 7e8, n_sizes):
        for tpp in tpps:
            d = n * tpp
            lr0 = np.log(laws.steplaw_lr_opt(n, d))
            b0 = np.log(laws.steplaw_batch_opt(n, d))
            for a in np.linspace(-1.2, 1.2, n_lr):
                for b in np.linspace(-1.2, 1.2, n_batch):
                    rows.append((n, d, np.exp(lr0 + a), np.exp(b0 + b)))
    df = pd.DataFrame(rows, columns=["n_params", "n_tokens", "lr", "batch_tokens"])
    return df.assign(arch="dense", data_mix="web")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posterior", type=Path, default=Path("/tmp/sim.nc"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--save", type=Path, default=None,
                    help="save the posterior fitted here (when --posterior is unusable)")
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = ap.parse_args(argv)
    posterior, source = None, "default simulated sweep (seed 0), fitted here"
    if args.posterior.is_file():
        try:
            posterior, source = load_posterior(args.posterior), str(args.posterior)
        except PosteriorError as err:
            print(f"cannot use {args.posterior} ({err}); fitting the default sweep instead")
    if posterior is None:
        sweep, _ = simulate_sweep(seed=0)
        posterior = fit(sweep, seed=0, progressbar=False)
        if args.save is not None:
            save_posterior(posterior, args.save)
    cands = candidates()
    times, ranked = [], None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ranked = propose(posterior, TARGET, candidates=cands, k=1, seed=0)
        times.append(time.perf_counter() - t0)
    best = ranked.iloc[0]
    result = {"candidates": len(cands), "seconds_median": float(np.median(times)),
              "seconds": times, "n_draws": ranked.attrs["n_draws"],
              "rescored": int((ranked["scored_by"] == "reweight").sum()),
              "posterior": source, "goal_seconds": 10.0,
              "best": {k: float(best[k]) for k in ("n_params", "n_tokens", "lr",
                                                    "batch_tokens", "score")},
              "command": " ".join(["python", *sys.argv])}
    print(f"scored {len(cands)} candidate runs ({ranked.attrs['n_draws']} posterior draws, "
          f"{result['rescored']} re-scored by reweighting) in {result['seconds_median']:.2f} s "
          f"(median of {args.repeats}: {', '.join(f'{t:.2f}' for t in times)}); goal <= 10 s")
    print(f"command: {result['command']}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
