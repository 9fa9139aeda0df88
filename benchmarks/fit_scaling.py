"""How fit time and memory grow with the sweep: simulated sweeps of 1,000 to 100,000 runs.

Each size is a simulated sweep (``simulate_sweep``, weight decay not varied) of 8 lr x 8 batch
= 64 runs per cell, about as many as a Step Law cell (2,619 runs in 33 cells), so the cells
grow with the runs: 1,000 runs are 16 cells, 10,000 are 156 and 100,000 are 1,562. The cells
cross N (5e7 .. 2e9) with tokens per parameter (10 .. 200), one (arch, mix) group below 5,000
runs, dense and MoE x web and code below 50,000, and dense and MoE x four mixes above (the
simulator's truth gains two mix offsets for them); where the crossed grid has more cells than
needed, an evenly spaced subset is kept. The run count reported is the sweep's own.

Every size runs in a fresh interpreter, so its peak RSS (the child's own ``ru_maxrss``) is its
own and its time counts interpreter start, imports, simulation, model build, compilation,
sampling (default spec, 4 chains) and the diagnostics (``diagnose``): ``seconds`` runs from
the child's launch to the end of ``diagnose``; ``fit_seconds`` is the time inside
``pm.sample`` (``posterior.attrs["fit_seconds"]``: nutpie's compilation and the sampling);
``simulate_seconds`` is the part that stands in for reading the sweep. The bar of issue 14:
R-hat <= 1.01, bulk ESS >= 400, 0 divergences.

    .venv/bin/python benchmarks/fit_scaling.py [--sizes 1000,10000,100000] [--seed 0] [--json]

``--json`` prints one JSON object per size on stdout (one line each, as each size ends);
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

SIZES = (1_000, 10_000, 100_000)
N_LR, N_BATCH = 8, 8
RUNS_PER_CELL = N_LR * N_BATCH
CHAINS = 4
N_RANGE = (5e7, 2e9)
TPP_RANGE = (10.0, 200.0)
EXTRA_MIXES = {"math": (-0.10, 0.05, 0.04), "multilingual": (0.05, 0.10, 0.03)}
"""Offsets of (log lr_opt, log batch_opt, log loss_opt) for the mixes the simulator lacks."""


def _groups(runs: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(archs, mixes) of a sweep of ``runs`` runs: more of both as the sweep grows."""
    if runs < 5_000:
        return ("dense",), ("web",)
    if runs < 50_000:
        return ("dense", "moe"), ("web", "code")
    return ("dense", "moe"), ("web", "code", *EXTRA_MIXES)


def design_cells(runs: int) -> pd.DataFrame:
    """About ``runs / RUNS_PER_CELL`` distinct (arch, data_mix, n_params, n_tokens) cells."""
    n_cells = max(1, round(runs / RUNS_PER_CELL))
    archs, mixes = _groups(runs)
    per_group = math.ceil(n_cells / (len(archs) * len(mixes)))
    n_n = math.ceil(math.sqrt(per_group))
    n_tpp = math.ceil(per_group / n_n)
    sizes = np.geomspace(*N_RANGE, n_n) if n_n > 1 else np.array([np.sqrt(np.prod(N_RANGE))])
    tpps = (np.geomspace(*TPP_RANGE, n_tpp) if n_tpp > 1
            else np.array([np.sqrt(np.prod(TPP_RANGE))]))
    rows = [(a, m, float(n), float(n * t)) for a in archs for m in mixes for n in sizes
            for t in tpps]
    keep = np.floor(np.linspace(0, len(rows) - 1, n_cells)).astype(int)
    return pd.DataFrame([rows[i] for i in keep],
                        columns=["arch", "data_mix", "n_params", "n_tokens"])


def simulate(runs: int, seed: int):
    """The simulated sweep of about ``runs`` runs."""
    from bayes_scaling.data.simulate import SimulationTruth, simulate_sweep

    base = SimulationTruth()
    truth = SimulationTruth(mix_offsets={**base.mix_offsets, **EXTRA_MIXES})
    return simulate_sweep(seed, cells=design_cells(runs), truth=truth, n_lr=N_LR,
                          n_batch=N_BATCH, vary_weight_decay=False, return_truth=False)


def _peak_rss_gib() -> float:
    """This process's peak RSS (Linux ``ru_maxrss`` is in KiB), or its waited-for children's
    if one of them peaked higher."""
    peak = max(resource.getrusage(who).ru_maxrss
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return peak / 2**20


def child(runs: int, seed: int, launched: float) -> dict:
    """One size, in this (fresh) process: simulate, fit, diagnose; the result row."""
    from bayes_scaling.model.fit import diagnose, fit

    start = time.perf_counter()
    sweep = simulate(runs, seed)
    simulate_seconds = time.perf_counter() - start
    n_runs, n_cells = len(sweep.runs), int(sweep.runs["cell"].nunique())
    print(f"  {n_runs:,} runs in {n_cells:,} cells simulated in {simulate_seconds:.1f} s; "
          "fitting", file=sys.stderr, flush=True)
    posterior = fit(sweep, seed=seed, chains=CHAINS, progressbar=False)
    d = diagnose(posterior)
    seconds = time.time() - launched
    peak = _peak_rss_gib()
    post = posterior["posterior"]
    return {
        "runs": n_runs, "cells": n_cells,
        "seconds": round(seconds, 2), "seconds_per_run": float(f"{seconds / n_runs:.4g}"),
        "fit_seconds": round(float(posterior.attrs["fit_seconds"]), 2),
        "simulate_seconds": round(simulate_seconds, 2),
        "peak_rss_gib": round(peak, 3), "peak_rss_kib_per_run": round(peak * 2**20 / n_runs, 1),
        "max_rhat": round(float(d.max_rhat), 4), "min_ess": round(float(d.min_ess_bulk)),
        "min_ess_tail": round(float(d.min_ess_tail)), "divergences": int(d.divergences),
        "clean": bool(d.max_rhat <= 1.01 and d.min_ess_bulk >= 400 and d.divergences == 0),
        "chains": int(post.sizes["chain"]), "draws": int(post.sizes["draw"]),
        "adaptation": str(posterior.attrs.get("sampler_adaptation", "")), "seed": seed,
    }


def run_size(runs: int, seed: int) -> dict:
    """Run one size in a fresh interpreter; its result row (or the failure)."""
    cmd = [sys.executable, __file__, "--child", str(runs), "--seed", str(seed),
           "--launched", repr(time.time())]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # stderr: passed through
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"runs_requested": runs, "error": f"child exited with {proc.returncode}",
                "seed": seed}
    return {"runs_requested": runs, **json.loads(lines[-1])}


def _table(rows: list[dict]) -> str:
    ok = [r for r in rows if "error" not in r]
    lines = []
    if ok:
        t = pd.DataFrame(ok)
        t["ms/run"] = (1000 * t["seconds_per_run"]).round(2)
        cols = ["runs", "cells", "seconds", "ms/run", "fit_seconds", "peak_rss_gib",
                "peak_rss_kib_per_run", "max_rhat", "min_ess", "divergences", "clean"]
        lines.append(t[cols].to_string(index=False))
    lines += [f"{r['runs_requested']:,} runs: {r['error']}" for r in rows if "error" in r]
    ok = sorted(ok, key=lambda r: r["runs"])
    for small, big in itertools.pairwise(ok):
        ratio = big["seconds_per_run"] / small["seconds_per_run"]
        lines.append(f"time per run at {big['runs']:,} / at {small['runs']:,} runs: {ratio:.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="comma-separated run counts (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="simulation and sampler seed")
    parser.add_argument("--json", action="store_true", help="one JSON object per size (a line)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--launched", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.seed, args.launched or time.time())))
        return 0
    try:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        print(f"error: --sizes takes comma-separated integers, not {args.sizes!r}",
              file=sys.stderr)
        return 2
    if not sizes or min(sizes) < 1:
        print("error: --sizes needs at least one positive run count", file=sys.stderr)
        return 2
    rows = []
    for runs in sizes:
        print(f"size {runs:,} runs: fitting in a fresh process ...", file=sys.stderr, flush=True)
        rows.append(run_size(runs, args.seed))
        row = rows[-1]
        if "error" in row:
            print(f"size {runs:,}: {row['error']}", file=sys.stderr, flush=True)
        else:
            print(f"size {runs:,}: {row['seconds']:.1f} s, peak RSS {row['peak_rss_gib']:.2f} "
                  f"GiB, max R-hat {row['max_rhat']}, min bulk ESS {row['min_ess']}, "
                  f"divergences {row['divergences']}", file=sys.stderr, flush=True)
        if args.json:
            print(json.dumps(row), flush=True)
    if not args.json:
        print(_table(rows))
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
