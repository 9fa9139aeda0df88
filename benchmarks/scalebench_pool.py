"""ScaleBench lr&bsz pool: active run selection with the protocol of Li et al. 2026 ("Spend
Less, Fit Better", arXiv 2604.22753) on its pool of 2,702 real dense runs
(../shared/data/scalebench/, see its SOURCE.md; never joined with the Step Law dense file).

Internal target (default): the pool's largest cell (the largest run cost 6 N D: N = 1.07e9,
D = 5.69e10, 47 runs) is taken out of the pool and scored; the pool is the other 2,655 runs.
Each strategy starts with no runs and adds runs until 1%, 5% and 10% (``--budgets``) of the
pool's total cost (6 N D per run, ``run_flops``; the pool without the target cell) are spent;
a run is added only while it fits the budget, and a strategy stops at a checkpoint when no
remaining run fits. At each checkpoint the runs chosen so far are fitted (``fit``, sampler
flags ``--draws --tune --chains``) and scored on the target cell:

* R^2 of the posterior mean predicted loss (``predict_loss``) over all the cell's runs, and
  over its runs within 5% of its best loss;
* regret (%) of the predicted optimum (posterior median lr_opt, batch_opt of ``predict``) on
  the cell's own surface (``cell_optimum`` / ``regret_pct``: a quadratic fitted to the cell's
  runs within 1% of its best, as in benchmarks/heldout_steplaw.py);
* whether the 90% intervals of lr_opt and batch_opt contain the cell's optimum;
* FLOPs spent, runs and cells used, and the fit's diagnostics (divergences, max R-hat, min
  bulk ESS, and whether it passed the package's gate), printed for every fit.

Strategies (``--strategies``):

* ``value``: ours, ``propose(posterior, target, pool=remaining runs, objective="value")``;
* ``eig``: ours, the same with ``objective="per_flop"`` (information gain per FLOP);
* ``random``: uniformly among the remaining runs that fit the budget;
* ``cheapest``: cheapest first (ties in pool order; the same runs for every seed);
* ``cost_random``: random with probability proportional to 1 / cost (SOURCE.md does not
  define the paper's cost-weighted random; weighted sampling without replacement).

Ours choose from the current posterior. With no runs yet they choose from the PRIOR
(``sample_prior``, which is packaged like a posterior: propose uses it unchanged); the
prior needs a sweep for its labels and cells, so it is sampled for a one-run stand-in
(:data:`STAND_IN`, a cell far from the pool and any target; the prior is not conditioned on
it, and no pool row matches it). One prior is sampled per benchmark and shared by all seeds.
Between two checkpoints ours refit ``--refits-per-checkpoint`` times (the budget step split
evenly; the fit at a checkpoint is also the one the next picks come from). Each propose call
picks up to ``--picks-per-refit`` runs greedily (each after a fantasised outcome of the last),
then fills the rest of the step's budget in the order of its ranking (the score of the first
pick: value per FLOP, or EIG per FLOP); the value objective's stopping rule ("nothing is worth
its cost") does not stop the benchmark, which spends its budget: how many picks were worth
their cost is reported. The baselines need no fit to choose, so they are fitted only at the
checkpoints.

Second mode: ``--target N,D --whole-pool``: the whole file is the pool for a dense target
given by its size only (nothing is scored there); with ``--save-posteriors DIR`` every
checkpoint's posterior is written in the package's format as
``DIR/STRATEGY-BUDGET-seedK.nc`` (e.g. ``value-0.01-seed0.nc``), to score on any target.

Time (2-core machine, measured with others' fits running, load average 4-5): a fit costs
23-41 s at 200 draws / 200 tune / 2 chains, about two thirds of it compiling the model
(nutpie / numba, ~14 s; the first in a process ~33 s), so fewer draws save little; a propose
call 2-4 s. The run fits seeds x (3 x refits x [value, eig chosen] + 3 x [baselines chosen])
models: 75 with the defaults (105 with ``--refits-per-checkpoint 2``). One seed at one budget
of all five strategies took 184 s. Estimate for the defaults: ~45 min at that load, ~30 min
only if a fit takes ~20 s (an idle machine).

Output: one line per fit, then a table (mean, sd, min and max over seeds per strategy and
budget), the total wall time, ``--json`` (last line one JSON object), ``--figures DIR``
(scores against budget per strategy with the seed range; the runs chosen on the (N, D) and
(lr, batch) planes).

    .venv/bin/python benchmarks/scalebench_pool.py [--strategies value,eig,random,cheapest,\
cost_random] [--seeds 5] [--budgets 0.01,0.05,0.1] [--refits-per-checkpoint 1] \
[--draws 200 --tune 200 --chains 2] [--figures DIR] [--json]
    .venv/bin/python benchmarks/scalebench_pool.py --target 1.07e9,1e11 --whole-pool \
--save-posteriors posteriors/
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.data import Sweep
from bayes_scaling.data.schema import parse_size
from bayes_scaling.design.candidates import run_flops

try:  # the cell's reference optimum, being moved from benchmarks/heldout_steplaw.py
    from bayes_scaling.heldout.reference import cell_optimum, regret_pct
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from heldout_steplaw import cell_optimum, regret_pct

ROOT = Path(__file__).resolve().parents[1]
POOL_FILE = ROOT.parent / "shared" / "data" / "scalebench" / "lr_bsz_train.parquet"
COLUMNS = {"non_embedding_param_size": "n_params", "data_size": "n_tokens",
           "bsz": "batch_seqs", "lm_loss": "loss"}
"""The pool's columns -> the sweep schema (its ``group``, always 'all_data', stays an extra
column and is never passed to propose, where it would make one mini-sweep of the pool)."""
STRATEGIES = ("value", "eig", "random", "cheapest", "cost_random")
OBJECTIVES = {"value": "value", "eig": "per_flop"}
"""Our strategies -> propose's objective."""
NEAR_BEST = 0.05
"""R^2 is also computed over the target cell's runs within this fraction of its best loss."""
STAND_IN = {"n_params": 1e7, "n_tokens": 1e8, "lr": 1e-3, "batch_tokens": 65536.0, "loss": 4.0}
"""The one-run sweep the prior is sampled for (labels dense / default); never conditioned on."""
CANDIDATE_COLUMNS = ["run_id", "arch", "data_mix", "n_params", "n_tokens", "lr",
                     "batch_tokens", "seq_len"]
PROPOSE_OPTIONS = {"n_draws": 500, "n_rescore": 16, "n_outcomes": 16}
"""propose's sampling settings here (its defaults: 1000, 48, 32), for speed on ~2,650 rows."""
COLOURS = {"value": "tab:blue", "eig": "tab:purple", "random": "tab:gray",
           "cheapest": "tab:orange", "cost_random": "tab:green"}
"""Strategy colours (red is kept for the target, as in bayes_scaling.present)."""


# ----------------------------------------------------------------------------- data
def read_pool_sweep(path: Path = POOL_FILE) -> Sweep:
    """The ScaleBench file as a sweep (the package's reader with :data:`COLUMNS`)."""
    from bayes_scaling.data import read_sweep

    return read_sweep(path, columns=COLUMNS)


def in_cell(runs: pd.DataFrame, n_params: float, n_tokens: float,
            rtol: float = 1e-3) -> np.ndarray:
    """Rows of ``runs`` in the cell (N, D), within ``rtol``."""
    return (np.isclose(runs["n_params"].to_numpy(float), n_params, rtol=rtol)
            & np.isclose(runs["n_tokens"].to_numpy(float), n_tokens, rtol=rtol))


def largest_cell(runs: pd.DataFrame) -> tuple[float, float]:
    """(N, D) of the cell with the most expensive runs (largest 6 N D)."""
    i = int(np.argmax(run_flops(runs["n_params"], runs["n_tokens"])))
    return float(runs["n_params"].iloc[i]), float(runs["n_tokens"].iloc[i])


def run_costs(runs: pd.DataFrame) -> np.ndarray:
    """Each run's cost, 6 N D FLOPs (``run_flops``, the package's one place)."""
    return np.asarray(run_flops(runs["n_params"], runs["n_tokens"]), float)


def parse_target(text: str) -> tuple[float, float]:
    """'N,D' (sizes such as 1.07e9 or 1B) -> (N, D)."""
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) != 2:
        raise ValueError(f"--target takes N,D, e.g. 1.07e9,1e11; got {text!r}")
    return parse_size(parts[0]), parse_size(parts[1])


# ----------------------------------------------------------------------------- budget
def spend_limits(total_flops: float, budgets: Sequence[float], steps: int
                 ) -> list[tuple[float, float | None]]:
    """Cumulative spend limits, ``steps`` per checkpoint (the budget step split evenly), each
    with its checkpoint's budget fraction (None between checkpoints)."""
    out: list[tuple[float, float | None]] = []
    last = 0.0
    for b in sorted(budgets):
        for j in range(1, steps + 1):
            out.append((total_flops * (last + (b - last) * j / steps), b if j == steps else None))
        last = b
    return out


def take_within(order: Sequence[int], cost: np.ndarray, budget: float) -> list[int]:
    """Walk ``order`` and take each run whose cost still fits ``budget`` (FLOPs left)."""
    picks, left = [], budget * (1 + 1e-12)
    for i in order:
        if cost[i] <= left:
            picks.append(int(i))
            left -= cost[i]
    return picks


def preference_order(strategy: str, cost: np.ndarray, rng: np.random.Generator
                     ) -> np.ndarray:
    """A baseline's order of preference over runs: random, cheapest first, or random with
    weights 1 / cost (without replacement: keys log(u) x cost, largest first)."""
    if strategy == "random":
        return rng.permutation(len(cost))
    if strategy == "cheapest":
        return np.argsort(cost, kind="stable")
    if strategy == "cost_random":
        return np.argsort(-np.log(rng.random(len(cost))) * cost, kind="stable")
    raise ValueError(f"not a baseline strategy: {strategy!r}")


def picks_from_ranking(ranked: pd.DataFrame, cost: np.ndarray, budget: float) -> list[int]:
    """From propose's ranked table (``pool_row``, ``selected``, in rank order): its greedy
    selection, then the other rows in rank order while they fit ``budget``."""
    first = ranked.loc[ranked["selected"], "pool_row"].tolist()
    rest = ranked.loc[~ranked["selected"], "pool_row"].tolist()
    return take_within([*first, *rest], cost, budget)


def posterior_path(folder: Path, strategy: str, budget: float, seed: int) -> Path:
    """``folder/STRATEGY-BUDGET-seedK.nc``, e.g. value-0.01-seed0.nc."""
    return Path(folder) / f"{strategy}-{budget:g}-seed{seed}.nc"


# ----------------------------------------------------------------------------- scores
def r_squared(observed: np.ndarray, predicted: np.ndarray) -> float:
    """1 - SS_res / SS_tot of ``predicted`` against ``observed``."""
    y, f = np.asarray(observed, float), np.asarray(predicted, float)
    return float(1.0 - np.sum((y - f) ** 2) / np.sum((y - y.mean()) ** 2))


def target_scores(posterior: xr.DataTree, target: dict, cell_runs: pd.DataFrame | None,
                  optimum: dict | None, seed: int) -> dict:
    """The predicted optimum at the target (median and 90% interval) and, with the target
    cell's runs, R^2, regret and coverage."""
    import bayes_scaling as bs

    summ = bs.predict(posterior, [target], seed=seed).summary.set_index("quantity")
    lr, b = summ.loc["lr_opt"], summ.loc["batch_tokens_opt"]
    out = {"lr_opt": float(lr["median"]), "lr_lo90": float(lr["lo90"]),
           "lr_hi90": float(lr["hi90"]), "batch_opt": float(b["median"]),
           "batch_lo90": float(b["lo90"]), "batch_hi90": float(b["hi90"])}
    if cell_runs is None or optimum is None:
        return out
    pred = bs.predict_loss(posterior, cell_runs[["arch", "data_mix", "n_params", "n_tokens",
                                                 "lr", "batch_tokens"]], seed=seed)
    loss, mean = cell_runs["loss"].to_numpy(float), pred.summary["mean"].to_numpy(float)
    near = loss <= (1 + NEAR_BEST) * loss.min()
    lr_cell, b_cell = np.exp(optimum["log_lr"]), np.exp(optimum["log_batch"])
    return out | {"r2_all": r_squared(loss, mean), "r2_near_best": r_squared(loss[near],
                                                                            mean[near]),
                  "regret_pct": regret_pct(optimum, out["lr_opt"], out["batch_opt"]),
                  "lr_covered": bool(out["lr_lo90"] <= lr_cell <= out["lr_hi90"]),
                  "batch_covered": bool(out["batch_lo90"] <= b_cell <= out["batch_hi90"]),
                  "loss_bias_pct": float(100 * np.mean(mean / loss - 1))}


def fit_diagnostics(posterior: xr.DataTree) -> dict:
    """Divergences, max R-hat, min bulk ESS and the package's gate (never silenced)."""
    from bayes_scaling.model.fit import diagnose

    d = diagnose(posterior)
    return {"divergences": d.divergences, "n_draws": d.n_draws, "max_rhat": d.max_rhat,
            "min_ess_bulk": d.min_ess_bulk, "diagnostics_ok": d.ok}


# ----------------------------------------------------------------------------- loop
@dataclass
class Setup:
    """What every strategy and seed share."""

    pool: Sweep
    cost: np.ndarray
    total_flops: float
    target: dict
    cell_runs: pd.DataFrame | None
    optimum: dict | None
    budgets: list[float]
    args: argparse.Namespace
    prior: xr.DataTree | None = None


@dataclass
class Trace:
    """One strategy and seed: the runs chosen (pool positions), the checkpoint index at which
    each was chosen, and one record per checkpoint."""

    chosen: list[int] = field(default_factory=list)
    step: list[int] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)


def _propose_picks(s: Setup, posterior: xr.DataTree, strategy: str, chosen: list[int],
                   budget: float, seed: int) -> tuple[list[int], dict]:
    """Our picks within ``budget`` from the runs not yet chosen, and how many of them the
    value objective found worth their cost."""
    import bayes_scaling as bs

    left = np.setdiff1d(np.arange(len(s.cost)), chosen)
    if not (s.cost[left] <= budget).any():
        return [], {}
    cands = s.pool.runs.iloc[left][CANDIDATE_COLUMNS].reset_index(drop=True)
    ranked = bs.propose(posterior, s.target, pool=cands, k=s.args.picks_per_refit,
                        budget_flops=budget, seed=seed, objective=OBJECTIVES[strategy],
                        **PROPOSE_OPTIONS)
    local = picks_from_ranking(ranked, s.cost[left], budget)
    worth = ranked.set_index("pool_row")["worth_running"].reindex(local).eq(True)
    return left[local].tolist(), {"greedy": int(ranked["selected"].sum()),
                                  "worth": int(worth.sum()), "verdict": ranked.attrs["verdict"]}


def run_strategy(s: Setup, strategy: str, seed: int,
                 log: Callable[[str], None] = print) -> Trace:
    """Spend the budgets with one strategy and seed; fit and score at each checkpoint."""
    from bayes_scaling.model.fit import fit, save_posterior

    ours = strategy in OBJECTIVES
    rng = np.random.default_rng([seed, STRATEGIES.index(strategy)])
    order = None if ours else preference_order(strategy, s.cost, rng)
    trace, spent, posterior = Trace(), 0.0, s.prior
    picks_info = {"greedy": 0, "worth": 0, "picked": 0}
    limits = spend_limits(s.total_flops, s.budgets, s.args.refits_per_checkpoint if ours else 1)
    checkpoint = 0
    for i, (limit, budget) in enumerate(limits):
        start = time.perf_counter()
        if ours:
            new, info = _propose_picks(s, posterior, strategy, trace.chosen, limit - spent,
                                       seed * 1000 + i)
            picks_info["greedy"] += info.get("greedy", 0)
            picks_info["worth"] += info.get("worth", 0)
        else:
            taken = np.zeros(len(s.cost), bool)
            taken[trace.chosen] = True
            new = take_within([j for j in order if not taken[j]], s.cost, limit - spent)
        picks_info["picked"] += len(new)
        trace.chosen += new
        trace.step += [checkpoint] * len(new)
        spent += float(s.cost[new].sum())
        select_seconds = time.perf_counter() - start
        if not trace.chosen:
            raise ValueError(f"{strategy}: no run fits {limit:.3g} FLOPs")
        mask = np.zeros(len(s.cost), bool)
        mask[trace.chosen] = True
        sweep = s.pool.subset(mask)
        posterior = fit(sweep, seed=seed * 1000 + i, draws=s.args.draws, tune=s.args.tune,
                        chains=s.args.chains, progressbar=False)
        if budget is None:
            log(f"  {strategy} seed {seed}: refit at {spent / s.total_flops:.4f} of the pool "
                f"({len(trace.chosen)} runs), {posterior.attrs['fit_seconds']:.1f} s")
            continue
        rec = {"strategy": strategy, "seed": seed, "budget": budget, "flops": spent,
               "flops_fraction": spent / s.total_flops, "runs": len(trace.chosen),
               "cells": int(sweep.runs["cell"].nunique()),
               "fit_seconds": float(posterior.attrs["fit_seconds"]),
               "select_seconds": select_seconds, **fit_diagnostics(posterior),
               **target_scores(posterior, s.target, s.cell_runs, s.optimum, seed)}
        if ours:
            rec |= {"greedy_picks": picks_info["greedy"], "picks": picks_info["picked"],
                    "picks_worth_running": picks_info["worth"]}
        if s.args.save_posteriors is not None:
            rec["posterior_file"] = str(save_posterior(
                posterior, posterior_path(s.args.save_posteriors, strategy, budget, seed)))
        trace.records.append(rec)
        log(_record_line(rec))
        checkpoint += 1
    return trace


def _record_line(r: dict) -> str:
    scored = (f"R2 {r['r2_all']:.3f} (near best {r['r2_near_best']:.3f}), regret "
              f"{r['regret_pct']:.4f}%, covered lr {'yes' if r['lr_covered'] else 'no'} "
              f"batch {'yes' if r['batch_covered'] else 'no'}, " if "r2_all" in r else "")
    worth = (f", greedy {r['greedy_picks']}, worth their cost {r['picks_worth_running']}"
             f"/{r['picks']}" if "picks" in r else "")
    return (f"{r['strategy']:<12} seed {r['seed']} budget {r['budget']:g}: {scored}lr_opt "
            f"{r['lr_opt']:.3g} [{r['lr_lo90']:.3g}, {r['lr_hi90']:.3g}], batch_opt "
            f"{r['batch_opt']:.3g} [{r['batch_lo90']:.3g}, {r['batch_hi90']:.3g}]; "
            f"{r['runs']} runs in {r['cells']} cells, {r['flops']:.3g} FLOPs "
            f"({r['flops_fraction']:.4f}){worth}; fit {r['fit_seconds']:.1f} s, divergences "
            f"{r['divergences']}/{r['n_draws']}, max R-hat {r['max_rhat']:.3f}, min bulk ESS "
            f"{r['min_ess_bulk']:.0f}{'' if r['diagnostics_ok'] else ' (FAILS the gate)'}; "
            f"selection {r['select_seconds']:.1f} s")


# ----------------------------------------------------------------------------- output
SUMMARY_COLUMNS = ("r2_all", "r2_near_best", "regret_pct", "loss_bias_pct", "flops_fraction",
                   "runs", "divergences", "max_rhat", "fit_seconds")


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd, min and max over seeds per strategy and budget; coverage and gate counts."""
    cols = [c for c in SUMMARY_COLUMNS if c in records]
    g = records.groupby(["strategy", "budget"], sort=False)
    out = g[cols].agg(["mean", "std", "min", "max"])
    out.columns = [f"{c}_{s}" for c, s in out.columns]
    out["seeds"] = g.size()
    for c in ("lr_covered", "batch_covered", "diagnostics_ok"):
        if c in records:
            out[f"n_{c}"] = g[c].sum().astype(int)
    return out.reset_index()


def print_table(summary: pd.DataFrame) -> None:
    """Mean ± sd over seeds per strategy and budget."""
    pm = lambda r, c, f: (f"{r[c + '_mean']:{f}} ± {np.nan_to_num(r[c + '_std']):{f}}"  # noqa: E731
                          if c + "_mean" in r else "-")
    print(f"\n{'strategy':<12}{'budget':>7}{'R2 all':>17}{'R2 near best':>17}"
          f"{'regret %':>19}{'covered lr/B':>13}{'runs':>12}{'FLOPs frac':>12}"
          f"{'div (max)':>10}{'R-hat max':>10}{'gate ok':>8}")
    for _, r in summary.iterrows():
        cov = (f"{r['n_lr_covered']}/{r['n_batch_covered']} of {r['seeds']}"
               if "n_lr_covered" in r else "-")
        print(f"{r['strategy']:<12}{r['budget']:>7g}{pm(r, 'r2_all', '.3f'):>17}"
              f"{pm(r, 'r2_near_best', '.3f'):>17}{pm(r, 'regret_pct', '.4f'):>19}{cov:>13}"
              f"{pm(r, 'runs', '.0f'):>12}{r['flops_fraction_mean']:>12.4f}"
              f"{r['divergences_max']:>10.0f}{r['max_rhat_max']:>10.3f}"
              f"{r['n_diagnostics_ok']:>5}/{r['seeds']}")


def plot_scores(records: pd.DataFrame, folder: Path) -> list[Path]:
    """R^2 (all runs, near the best) and regret against budget per strategy: mean over seeds
    and the seed range."""
    from bayes_scaling.present.plots_common import close, log_axes, new_figure, save_figure

    panels = [("r2_all", "R² over the target cell's runs"),
              ("r2_near_best", f"R² over its runs within {NEAR_BEST:.0%} of its best"),
              ("regret_pct", "regret of the predicted optimum (%)")]
    fig, axes = new_figure(1, 3, 4.3, 3.4)
    for ax, (col, title) in zip(axes[0], panels, strict=True):
        for strategy, rows in records.groupby("strategy", sort=False):
            g = rows.groupby("budget")[col]
            x = 100 * np.asarray(g.mean().index, float)
            colour = COLOURS.get(str(strategy), "black")
            floor = 1e-6 if col == "regret_pct" else -np.inf  # regret on a log axis
            ax.plot(x, g.mean().clip(floor), marker="o", color=colour, label=str(strategy))
            ax.fill_between(x, g.min().clip(floor), g.max().clip(floor), color=colour,
                            alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{v:g}%" for v in x])
        ax.minorticks_off()
        ax.set_xlabel("budget (% of the pool's 6ND cost)")
        ax.set_title(title, fontsize=9)
        if col == "regret_pct":
            log_axes(ax, "y")
    axes[0, 0].legend(fontsize=7, title="strategy (band: seed range)", title_fontsize=7)
    paths = save_figure(fig, folder, "scalebench_scores")
    close(fig)
    return paths


def plot_selected(s: Setup, traces: dict[str, Trace], folder: Path) -> list[Path]:
    """Per strategy (seed 0): the runs chosen by each checkpoint on the (N, D) plane (circle
    area: runs in the cell) and on the (lr, batch) plane, over the pool in grey."""
    from bayes_scaling.present.plots_common import (
        LABELS,
        close,
        log_axes,
        new_figure,
        save_figure,
    )

    runs, n = s.pool.runs, len(traces)
    fig, axes = new_figure(n, 2, 4.6, 3.6)
    shades = np.linspace(1.0, 0.35, len(s.budgets))
    for row, (strategy, trace) in enumerate(traces.items()):
        ax_nd, ax_lb = axes[row]
        ax_nd.scatter(runs["n_tokens"], runs["n_params"], s=6, color="0.8")
        ax_lb.scatter(runs["lr"], runs["batch_tokens"], s=4, color="0.85")
        chosen = runs.iloc[trace.chosen].assign(step=trace.step)
        colour = COLOURS.get(strategy, "black")
        for k in reversed(range(len(s.budgets))):
            upto = chosen[chosen["step"] <= k]
            counts = upto.groupby(["n_params", "n_tokens"]).size().reset_index(name="c")
            label = f"by {s.budgets[k]:g} ({len(upto)} runs)"
            ax_nd.scatter(counts["n_tokens"], counts["n_params"], s=5 * counts["c"],
                          color=colour, alpha=shades[k], edgecolor="black", lw=0.3, label=label)
            at = chosen[chosen["step"] == k]
            ax_lb.scatter(at["lr"], at["batch_tokens"], s=12, color=colour, alpha=shades[k],
                          edgecolor="black", lw=0.3, label=f"chosen before {s.budgets[k]:g}")
        ax_nd.scatter([s.target["n_tokens"]], [s.target["n_params"]], marker="*", s=160,
                      color="red", label="target")
        if s.optimum is not None:
            ax_lb.scatter([np.exp(s.optimum["log_lr"])], [np.exp(s.optimum["log_batch"])],
                          marker="*", s=160, color="red", label="target cell's optimum")
        log_axes(ax_nd)
        log_axes(ax_lb)
        ax_nd.set_xlabel(LABELS["n_tokens"])
        ax_nd.set_ylabel(LABELS["n_params"])
        ax_lb.set_xlabel(LABELS["lr"])
        ax_lb.set_ylabel(LABELS["batch"])
        ax_nd.set_title(f"{strategy} (seed 0): runs chosen per cell (area ∝ runs)", fontsize=9)
        ax_lb.set_title(f"{strategy}: lr and batch of the chosen runs", fontsize=9)
        legend = ax_nd.legend(fontsize=6, loc="lower right")
        for handle in legend.legend_handles[:-1]:  # fixed-size keys (the target's stays)
            handle.set_sizes([30])
        ax_lb.legend(fontsize=6, loc="upper left")
    paths = save_figure(fig, folder, "scalebench_selected")
    close(fig)
    return paths


# ----------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (--target and --whole-pool go together)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strategies", default=",".join(STRATEGIES),
                   help=f"comma-separated, from {','.join(STRATEGIES)}")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0 .. K-1")
    p.add_argument("--budgets", default="0.01,0.05,0.1", help="fractions of the pool's cost")
    p.add_argument("--refits-per-checkpoint", type=int, default=1,
                   help="fits per budget step for value and eig (the last at the checkpoint); "
                        "1 keeps the default run within 30 minutes (see the docstring)")
    p.add_argument("--picks-per-refit", type=int, default=8,
                   help="greedy propose picks per fit (the rest of the step: by its ranking)")
    p.add_argument("--draws", type=int, default=200, help="draws per chain")
    p.add_argument("--tune", type=int, default=200, help="tuning steps per chain")
    p.add_argument("--chains", type=int, default=2, help="chains")
    p.add_argument("--target", default=None, help="N,D of a target (with --whole-pool)")
    p.add_argument("--whole-pool", action="store_true",
                   help="the whole file is the pool; no scoring (needs --target)")
    p.add_argument("--save-posteriors", type=Path, default=None,
                   help="write DIR/STRATEGY-BUDGET-seedK.nc at each checkpoint")
    p.add_argument("--figures", type=Path, default=None, help="write figures into DIR")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)
    args.strategies = [x.strip() for x in args.strategies.split(",") if x.strip()]
    args.budgets = sorted(float(x) for x in args.budgets.split(",") if x.strip())
    bad = [x for x in args.strategies if x not in STRATEGIES]
    if bad or not args.strategies:
        p.error(f"--strategies: unknown {bad}; choose from {','.join(STRATEGIES)}")
    if not args.budgets or not all(0 < b <= 1 for b in args.budgets):
        p.error("--budgets: fractions in (0, 1]")
    if (args.target is None) != (not args.whole_pool):
        p.error("--target N,D and --whole-pool go together")
    if min(args.seeds, args.refits_per_checkpoint, args.picks_per_refit) < 1:
        p.error("--seeds, --refits-per-checkpoint and --picks-per-refit must be >= 1")
    if args.target is not None:
        try:
            args.target = parse_target(args.target)
        except ValueError as err:
            p.error(str(err))
    return args


def build_setup(args: argparse.Namespace) -> Setup:
    """Read the file; split off the internal target cell (or take the whole pool)."""
    sweep = read_pool_sweep()
    runs = sweep.runs
    if args.whole_pool:
        n, d = args.target
        keep, cell_runs, optimum = np.ones(len(runs), bool), None, None
    else:
        n, d = largest_cell(runs)
        in_target = in_cell(runs, n, d)
        keep, cell_runs = ~in_target, runs[in_target].reset_index(drop=True)
        optimum = cell_optimum(cell_runs)
    pool = sweep.subset(keep)
    cost = run_costs(pool.runs)
    target = {"arch": "dense", "data_mix": "default", "n_params": n, "n_tokens": d}
    return Setup(pool=pool, cost=cost, total_flops=float(cost.sum()), target=target,
                 cell_runs=cell_runs, optimum=optimum, budgets=args.budgets, args=args)


def sample_stand_in_prior(seed: int = 0) -> xr.DataTree:
    """The prior, packaged like a posterior, for the one-run :data:`STAND_IN` sweep."""
    import bayes_scaling as bs

    stand_in = bs.from_frame(pd.DataFrame({k: [v] for k, v in STAND_IN.items()}), "stand-in")
    return bs.sample_prior(stand_in, draws=PROPOSE_OPTIONS["n_draws"], seed=seed)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not POOL_FILE.is_file():
        print(f"error: this benchmark needs {POOL_FILE} (see ../shared/data/scalebench)",
              file=sys.stderr)
        return 2
    from bayes_scaling.errors import PosteriorWarning

    # every fit's diagnostics are printed in its line and kept in the records
    warnings.filterwarnings("ignore", category=PosteriorWarning)
    start = time.perf_counter()
    s = build_setup(args)
    where = ("whole pool" if args.whole_pool else
             f"pool without the target cell ({len(s.cell_runs)} runs held out)")
    print(f"ScaleBench lr&bsz: {len(s.pool.runs)} runs in {s.pool.runs['cell'].nunique()} cells "
          f"({where}), cost {s.total_flops:.4g} FLOPs; target N = {s.target['n_params']:.4g}, "
          f"D = {s.target['n_tokens']:.4g}; budgets {args.budgets}; seeds {args.seeds}; "
          f"sampler {args.draws} draws, {args.tune} tune, {args.chains} chains", flush=True)
    if s.optimum is not None:
        print(f"target cell's optimum: lr {np.exp(s.optimum['log_lr']):.4g}, batch "
              f"{np.exp(s.optimum['log_batch']):.4g} tokens ({s.optimum['method']})", flush=True)
    if any(x in OBJECTIVES for x in args.strategies):
        t = time.perf_counter()
        s.prior = sample_stand_in_prior()
        print(f"prior for the first picks: {time.perf_counter() - t:.1f} s", flush=True)
    records, traces = [], {}
    for strategy in args.strategies:
        for seed in range(args.seeds):
            trace = run_strategy(s, strategy, seed, log=lambda m: print(m, flush=True))
            records += trace.records
            traces.setdefault(strategy, trace)
    table = pd.DataFrame(records)
    summary = summarise(table)
    print_table(summary)
    figures = []
    if args.figures is not None:
        if s.cell_runs is not None:
            figures += plot_scores(table, args.figures)
        figures += plot_selected(s, traces, args.figures)
        print("figures: " + ", ".join(str(f) for f in figures if f.suffix == ".png"))
    wall = time.perf_counter() - start
    print(f"wall time {wall:.1f} s ({wall / 60:.1f} min)")
    if args.json:
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        print(json.dumps({"config": config, "target": s.target, "optimum": (
            None if s.optimum is None else {"lr": float(np.exp(s.optimum["log_lr"])),
                                            "batch_tokens": float(np.exp(s.optimum["log_batch"])),
                                            "method": s.optimum["method"]}),
            "pool_flops": s.total_flops, "records": records,
            "summary": summary.astype(object).where(summary.notna(), None).to_dict(
                orient="records"),
            "wall_seconds": round(wall, 1)}, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
