"""Closed loop on the simulator: active next-run selection vs Step-Law-style grids vs random.

Every strategy starts from the same small seed sweep (dense, one data mix, no weight-decay
variation) and its fit. Then, on one FLOP axis (FLOPs added beyond the seed sweep):

* grid: one full 7 lr x 4 batch grid per round (lr in sqrt(2) steps, batch in 2x steps,
  centred on the current posterior's predicted optimum of the cell, the best a team could
  do) at N = 1e8, 2e8, 4e8 (20 tokens per parameter);
* active: each round ``propose`` picks up to ``--k`` groups (runs or mini-sweeps from the
  default candidates) within the round's budget, by ``--objective`` (value by default: it
  stops where nothing is worth its cost, however much budget is left);
* random: the same default candidates, groups drawn in random order and taken while they
  fit the round's budget (no cap on their number).

Round budgets are cumulative fractions of the grid's total FLOPs (``--fractions``). Chosen
runs are simulated from the TRUE bowl of their cell (new cells draw their true effects
from the truth's law with a fixed per-cell rng, so every strategy meets the same truth),
and after every round the sweep is refitted (small draws). At the target (N, D 10x beyond
the largest run) we record the 90% interval width of log lr_opt and log batch_opt
(posterior predictive, cell scatter included) and the true regret of the predicted optimum
(median lr, batch) on the true bowl, as a percentage of the true optimal loss.

A strategy "matches the grid" at the first round where both widths are <= the grid's final
widths and the regret is <= the grid's final regret + ``--regret-tol`` (percentage points);
the FLOPs spent by then / the grid's FLOPs is its ratio (``--unmatched`` where it did not
match within the rounds run; by default the last round budget is 1/3 of the grid's FLOPs).
Seeds run in parallel (joblib, ``--jobs`` processes, one per core by default, each refit's
chains one after the other on its core): first every seed's start and grid, then every
seed's active and random strategies. The draws, and so the results, are those of a
sequential run (``--jobs 1``).
Run:  .venv/bin/python benchmarks/active_vs_grid.py [--seeds 5] [--jobs 2] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings

import joblib
import numpy as np
import pandas as pd

from bayes_scaling.data import from_frame
from bayes_scaling.data.simulate import SEQ_LEN, SimulationTruth, simulate_sweep
from bayes_scaling.design.candidates import default_candidates
from bayes_scaling.design.propose import OBJECTIVES, propose
from bayes_scaling.model import core
from bayes_scaling.model.fit import fit
from bayes_scaling.model.spec import default_spec, with_sampler
from bayes_scaling.predict.draws import draw_new_cells

ARCH, MIX = "dense", "web"
SEED_CELLS = ((2e7, 20.0), (2e7, 100.0), (5e7, 20.0))
GRID_CELLS = ((1e8, 20.0), (2e8, 20.0), (4e8, 20.0))
TARGET = {"arch": ARCH, "data_mix": MIX, "n_params": 4e9, "n_tokens": 8e10}
CANON = ["run_id", "arch", "data_mix", "n_params", "n_tokens", "batch_tokens", "seq_len", "lr",
         "weight_decay", "loss"]


def _key(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


class World:
    """The ground truth of one benchmark seed: true cell bowls, run outcomes, regret."""

    def __init__(self, seed: int, truth: SimulationTruth | None = None):
        self.seed, self.truth = seed, truth or SimulationTruth()
        self._cells: dict[tuple[float, float], dict] = {}

    def cell(self, n: float, d: float) -> dict:
        """True optimum, loss and curvature of cell (N, D): drawn once from the truth's law
        (a one-run simulate_sweep with a per-cell seed), the same for every strategy."""
        key = (float(f"{n:.4g}"), float(f"{d:.4g}"))
        if key not in self._cells:
            row = pd.DataFrame({"arch": [ARCH], "data_mix": [MIX], "n_params": [key[0]],
                                "n_tokens": [key[1]]})
            _, t = simulate_sweep(_key(self.seed, key) % 2**32, cells=row, truth=self.truth,
                                  n_lr=1, n_batch=1, vary_weight_decay=False)
            c = t.isel(cell=0)
            self._cells[key] = {q: float(c[q]) for q in ("log_lr_opt", "log_batch_opt",
                                                         "loss_opt")} | {
                "chol": c["chol"].to_numpy(), "skew": float(t["skew"].sel(arch=ARCH))}
        return self._cells[key]

    def losses(self, runs: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """True bowl + noise; runs past the stability edge diverge (NaN)."""
        out = np.empty(len(runs))
        for i, r in enumerate(runs.itertuples()):
            c = self.cell(r.n_params, r.n_tokens)
            delta = np.array([np.log(r.lr) - c["log_lr_opt"],
                              np.log(r.batch_tokens) - c["log_batch_opt"], 0.0])
            loss = core.bowl_loss_matrix(c["loss_opt"], delta, c["chol"], c["skew"])
            loss += self.truth.noise * rng.standard_normal()
            out[i] = np.nan if delta[0] > self.truth.diverge_log_lr else loss
        return out

    def regret_pct(self, lr: float, batch: float) -> float:
        c = self.cell(TARGET["n_params"], TARGET["n_tokens"])
        delta = np.array([np.log(lr) - c["log_lr_opt"], np.log(batch) - c["log_batch_opt"], 0])
        return float(100 * (core.bowl_loss_matrix(c["loss_opt"], delta, c["chol"], c["skew"])
                            / c["loss_opt"] - 1))


def seed_runs(world: World) -> pd.DataFrame:
    """The shared seed sweep: the simulator's default 7 x 4 grids in the seed cells."""
    frames = []
    for n, tpp in SEED_CELLS:
        c = world.cell(n, n * tpp)
        guess = np.random.default_rng(_key(world.seed, "guess", n, tpp))
        frames.append(grid(n, n * tpp, c["log_lr_opt"] + guess.normal(0, 0.3),
                           c["log_batch_opt"] + guess.normal(0, 0.3)))
    runs = pd.concat(frames, ignore_index=True)
    runs["loss"] = world.losses(runs, np.random.default_rng(_key(world.seed, "seed")))
    return runs


def grid(n: float, d: float, log_lr: float, log_batch: float) -> pd.DataFrame:
    """A full 7 lr (sqrt 2 steps) x 4 batch (2x steps) grid around (log_lr, log_batch)."""
    lr = log_lr + np.log(np.sqrt(2)) * (np.arange(7) - 3)
    b = log_batch + np.log(2.0) * (np.arange(4) - 1.5)
    g_lr, g_b = (a.ravel() for a in np.meshgrid(lr, b, indexing="ij"))
    return pd.DataFrame({"arch": ARCH, "data_mix": MIX, "n_params": n, "n_tokens": d,
                         "lr": np.exp(g_lr), "seq_len": SEQ_LEN,
                         "batch_tokens": np.maximum(1, np.round(np.exp(g_b) / SEQ_LEN)) * SEQ_LEN,
                         "weight_decay": np.nan})


def refit(runs: pd.DataFrame, seed: int, draws: int):
    df = runs.assign(run_id=[f"r{i:05d}" for i in range(len(runs))])[CANON]  # drops group
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(from_frame(df, source="<active_vs_grid>"), with_sampler(default_spec(), cores=1),
                   seed=seed, draws=draws, tune=draws, chains=2, progressbar=False)


def metrics(posterior, world: World, seed: int) -> dict:
    """90% widths of log lr_opt / log batch_opt at the target and the true regret (%)."""
    cells = draw_new_cells(posterior, TARGET, seed=seed).isel(target=0)
    out = {}
    med = {}
    for q in ("lr", "batch"):
        x = cells[f"log_{q}_opt"].to_numpy().ravel()
        lo, hi = np.quantile(x, [0.05, 0.95])
        out[f"width_{q}"], med[q] = float(hi - lo), float(np.median(x))
    out["regret_pct"] = world.regret_pct(np.exp(med["lr"]), np.exp(med["batch"]))
    return out


def cell_prediction(posterior, n: float, d: float, seed: int) -> tuple[float, float]:
    cells = draw_new_cells(posterior, {**TARGET, "n_params": n, "n_tokens": d}, seed=seed)
    return (float(cells["log_lr_opt"].median()), float(cells["log_batch_opt"].median()))


def pick_random(posterior, budget: float, rng: np.random.Generator) -> pd.DataFrame:
    """Default-candidate groups in random order, each taken while it fits the budget."""
    cands = default_candidates(posterior, TARGET, seed=int(rng.integers(2**31)))
    cost = cands.groupby("group", sort=False)["cost_flops"].sum()
    chosen, left = [], budget
    for g in rng.permutation(cost.index.to_numpy()):
        if cost[g] <= left:
            chosen.append(g)
            left -= cost[g]
    return cands[cands["group"].isin(chosen)]


def run_strategy(name: str, world: World, base: pd.DataFrame, post0, budgets: list[float],
                 args, log) -> list[dict]:
    """Rounds of pick -> simulate -> refit; one record per round (FLOPs, metrics)."""
    runs, post, spent, curve = base.copy(), post0, 0.0, []
    rng = np.random.default_rng(_key(world.seed, name))
    for r, cum in enumerate(budgets):
        t0 = time.perf_counter()
        if name == "grid":
            n, tpp = GRID_CELLS[r]
            new = grid(n, n * tpp, *cell_prediction(post, n, n * tpp, world.seed))
        elif name == "active":
            ranked = propose(post, TARGET, budget_flops=cum - spent, k=args.k, seed=world.seed + r,
                             n_outcomes=args.outcomes, objective=args.objective)
            new = ranked[ranked["selected"]]
        else:
            new = pick_random(post, cum - spent, rng)
        new = new[[c for c in ("group", "arch", "data_mix", "n_params", "n_tokens", "lr",
                               "batch_tokens", "seq_len", "weight_decay") if c in new]]
        new = new.assign(loss=world.losses(new, rng))
        spent += float((6 * new["n_params"] * new["n_tokens"]).sum())
        runs = pd.concat([runs, new], ignore_index=True)
        post = refit(runs, world.seed, args.draws)
        m = metrics(post, world, world.seed)
        curve.append({"strategy": name, "round": r + 1, "flops": spent, "runs_added": len(new),
                      "cells": int(runs.groupby(["n_params", "n_tokens"]).ngroups), **m})
        log(f"  {name:6s} round {r + 1}: +{len(new):2d} runs, {spent:.3g} FLOPs, "
            f"width lr {m['width_lr']:.3f} batch {m['width_batch']:.3f}, "
            f"regret {m['regret_pct']:.3f}% ({time.perf_counter() - t0:.0f} s)")
        if "group" in new:
            log(f"         picks: {', '.join(new['group'].drop_duplicates())}")
        if name != "grid" and matched(curve[-1], args.grid_final, args.regret_tol):
            break
    return curve


def matched(rec: dict, final: dict, tol: float) -> bool:
    return (rec["width_lr"] <= final["width_lr"] and rec["width_batch"] <= final["width_batch"]
            and rec["regret_pct"] <= final["regret_pct"] + tol)


def ratio(curve: list[dict], final: dict, grid_flops: float, tol: float,
          unmatched: float) -> float:
    hit = next((c for c in curve if matched(c, final, tol)), None)
    return unmatched if hit is None else hit["flops"] / grid_flops


def start_seed(seed: int, args) -> dict:
    """A seed's start (seed sweep, its fit) and its grid strategy (every round)."""
    log = _logger(seed)
    world = World(seed)
    base = seed_runs(world)
    t0 = time.perf_counter()
    post0 = refit(base, seed, args.draws)
    m0 = metrics(post0, world, seed)
    log(f"seed sweep {len(base)} runs, fit {time.perf_counter() - t0:.0f} s; "
        f"width lr {m0['width_lr']:.3f} batch {m0['width_batch']:.3f}, "
        f"regret {m0['regret_pct']:.3f}%")
    grid_flops = [168.0 * n * n * tpp for n, tpp in GRID_CELLS]
    curve = run_strategy("grid", world, base, post0, list(np.cumsum(grid_flops)), args, log)
    return {"seed": seed, "start": m0, "base": base, "post0": post0,
            "grid_flops": float(np.sum(grid_flops)), "curve": curve}


def run_seed_strategy(start: dict, name: str, args) -> list[dict]:
    """One seed's active or random strategy, from its start, matched against its grid."""
    seed = start["seed"]
    args = argparse.Namespace(**vars(args), grid_final=start["curve"][-1])
    budgets = [f * start["grid_flops"] for f in args.fractions[:args.rounds]]
    return run_strategy(name, World(seed), start["base"], start["post0"], budgets, args,
                        _logger(seed))


def _logger(seed: int):
    return lambda msg: print(f"[seed {seed}] {msg}", flush=True)


def run_seeds(args) -> list[dict]:
    """Every seed: the starts and grids first, then the active and random strategies; jobs
    at a time (joblib processes), in seed order."""
    parallel = joblib.Parallel(n_jobs=args.jobs)
    starts = parallel(joblib.delayed(start_seed)(s, args) for s in range(args.seeds))
    # the longer active strategies first, so that the two kinds pack onto the processes
    tasks = [(st, name) for name in ("active", "random") for st in starts]
    curves = parallel(joblib.delayed(run_seed_strategy)(st, name, args) for st, name in tasks)
    results = []
    for st in starts:
        found = {name: c for (s, name), c in zip(tasks, curves, strict=True) if s is st}
        result = {"seed": st["seed"], "start": st["start"], "grid_flops": st["grid_flops"],
                  "curves": {"grid": st["curve"], **found}}
        final = st["curve"][-1]
        result["ratios"] = {name: ratio(found[name], final, st["grid_flops"], args.regret_tol,
                                        args.unmatched) for name in ("active", "random")}
        print(f"seed {st['seed']}: FLOPs to match the grid / grid FLOPs: active "
              f"{result['ratios']['active']:.3f}, random {result['ratios']['random']:.3f}",
              flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="benchmark seeds (0..seeds-1)")
    ap.add_argument("--rounds", type=int, default=3, help="active/random rounds (<= fractions)")
    ap.add_argument("--fractions", type=float, nargs="+", default=[1 / 9, 2 / 9, 1 / 3],
                    help="cumulative round budgets as fractions of the grid's FLOPs")
    ap.add_argument("-k", type=int, default=6, help="max groups active picks per round")
    ap.add_argument("--draws", type=int, default=300, help="draws = tune per chain (2 chains)")
    ap.add_argument("--objective", default="value", choices=OBJECTIVES,
                    help="propose's objective for the active strategy")
    ap.add_argument("--outcomes", type=int, default=32, help="simulated outcomes per candidate")
    ap.add_argument("--regret-tol", type=float, default=0.05,
                    help="regret tolerance (percentage points of the optimal loss) when "
                         "matching the grid; 0.05 is a quarter of one run's noise (0.2%%)")
    ap.add_argument("--unmatched", type=float, default=2.0,
                    help="ratio recorded for a seed where a strategy never matched")
    ap.add_argument("--jobs", type=int, default=joblib.cpu_count(),
                    help="processes at a time (default: the number of cores)")
    ap.add_argument("--json", action="store_true", help="last line: one JSON summary object")
    args = ap.parse_args(argv)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    results = run_seeds(args)
    summary = {
        "seeds": args.seeds,
        "flops_ratio_active_to_grid": float(np.mean([r["ratios"]["active"] for r in results])),
        "flops_ratio_random_to_grid": float(np.mean([r["ratios"]["random"] for r in results])),
        "matched_active": int(sum(r["ratios"]["active"] <= 1 for r in results)),
        "matched_random": int(sum(r["ratios"]["random"] <= 1 for r in results)),
        "per_seed": [{"seed": r["seed"], **r["ratios"]} for r in results],
        "grid_final": [r["curves"]["grid"][-1] for r in results],
        "curves": [c for r in results for curve in r["curves"].values() for c in curve],
        "settings": {"rounds": args.rounds, "fractions": args.fractions[:args.rounds],
                     "k": args.k, "draws": args.draws, "objective": args.objective,
                     "regret_tol": args.regret_tol,
                     "unmatched": args.unmatched, "target": TARGET, "jobs": args.jobs},
        "seconds": time.perf_counter() - t0,
        "command": " ".join(["python", *sys.argv]),
    }
    table = pd.DataFrame(summary["curves"])
    log("\n" + table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    log(f"\nmean FLOPs ratio to match the grid (over {args.seeds} seeds; {args.unmatched} = "
        f"never matched): active {summary['flops_ratio_active_to_grid']:.3f} "
        f"(matched {summary['matched_active']}/{args.seeds}), random "
        f"{summary['flops_ratio_random_to_grid']:.3f} (matched {summary['matched_random']}/"
        f"{args.seeds}); {summary['seconds']:.0f} s")
    if args.json:
        print(json.dumps(summary, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
