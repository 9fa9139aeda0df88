"""The leave-one-cell-out predictive check: refit the sweep without each chosen cell, predict
that cell as a new one, and score the prediction against the cell's own runs.

Refits run in parallel (joblib, one process per job, each refit's chains sequential on one
core, so ``jobs`` refits use ``jobs`` cores). The refit is a parameter: any picklable
``refit(sweep, spec, seed) -> posterior`` (tests pass a fake one).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import xarray as xr

from bayes_scaling import __version__
from bayes_scaling.data import Sweep
from bayes_scaling.data.formats import one_line
from bayes_scaling.errors import PosteriorError, PosteriorWarning
from bayes_scaling.heldout.cells import HeldOut, held_out, select_cells
from bayes_scaling.heldout.coverage import coverage_table
from bayes_scaling.heldout.result import HeldOutCheck
from bayes_scaling.heldout.score import score_cell
from bayes_scaling.model.fit import diagnose, fit, load_posterior, posterior_cells, posterior_spec
from bayes_scaling.model.spec import Spec, with_sampler
from bayes_scaling.predict.loss import predict_loss
from bayes_scaling.predict.predict import predict

Refit = Callable[[Sweep, Spec, int], xr.DataTree]
REFIT_ERRORS = (ValueError, RuntimeError, ArithmeticError)
"""What a refit or its scoring may raise that fails one cell, not the whole check (user
errors, sampler failures, singular matrices); the message goes into the table."""

__all__ = ["REFIT_TUNE", "Outcome", "Refit", "check", "default_jobs", "progress_line",
           "refit_posterior", "refit_spec", "run_held_out"]


def refit_posterior(sweep: Sweep, spec: Spec, seed: int) -> xr.DataTree:
    """The default refit: :func:`bayes_scaling.model.fit.fit`, no progress bar."""
    return fit(sweep, spec, seed=seed, progressbar=False)


def default_jobs() -> int:
    """Refits at a time by default: the number of cores."""
    return joblib.cpu_count()


REFIT_TUNE = 500
"""Tuning steps per chain of a held-out refit unless given (or the posterior's, if fewer).
On the 33 Step Law cells 500 gave the same coverage and regret as the fit's 1,000 (mean
0.0194% vs 0.0193%), every refit clean (max R-hat 1.008, min bulk ESS 648, 0 divergences),
and the check in 14 min 47 s instead of 20 min 34 s."""


def refit_spec(posterior: xr.DataTree, draws: int | None = None, tune: int | None = None,
               chains: int | None = None) -> Spec:
    """The posterior's spec and sampler settings (``draws``/``tune``/``chains`` replace
    them when given; tuning :data:`REFIT_TUNE` steps by default), with one core per refit:
    chains run one after the other."""
    spec = posterior_spec(posterior)
    if tune is None:
        fitted = spec.sampler["tune"]
        tune = REFIT_TUNE if fitted == "auto" else min(int(fitted), REFIT_TUNE)
    return with_sampler(spec, draws=draws, tune=tune, chains=chains, cores=1)


@dataclass(frozen=True)
class Outcome:
    """What one held-out split gave: the cell's row (status scored, failed or skipped) and
    its runs' table (empty unless scored)."""

    cell: str
    row: dict[str, Any]
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)


def _diagnostics(posterior: xr.DataTree) -> dict[str, Any]:
    d = diagnose(posterior)
    return {"diagnostics_ok": d.ok, "divergences": d.divergences, "max_rhat": d.max_rhat,
            "min_ess_bulk": d.min_ess_bulk, "diagnostics": "; ".join(d.problems)}


@contextmanager
def _quiet() -> Iterator[None]:
    """A refit's own chatter off (PyMC's sampler lines, warnings about its diagnostics): the
    check reports each refit in one line and its diagnostics in the table."""
    log = logging.getLogger("pymc")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PosteriorWarning)
            yield
    finally:
        log.setLevel(level)


def run_held_out(task: HeldOut, refit: Refit = refit_posterior) -> Outcome:
    """Refit without the cell, predict it and score it (in a worker process). The refit's
    diagnostics go into the row (a failed diagnosis is flagged there, not warned about)."""
    start = time.perf_counter()
    row: dict[str, Any] = {"cell": task.cell, **task.target, "n_runs": len(task.runs),
                           "n_train_cells": task.train.runs["cell"].nunique()}
    if task.skip:
        return Outcome(task.cell, {**row, "status": "skipped", "error": task.skip,
                                   "seconds": 0.0})
    try:
        with _quiet():
            posterior = refit(task.train, task.spec, task.seed)
            prediction = predict(posterior, pd.DataFrame([task.target]), seed=task.seed)
            losses = predict_loss(posterior, task.runs, seed=task.seed)
        scores, runs = score_cell(prediction.draws.isel(target=0), task.runs,
                                  losses.draws.to_numpy(), task.spec.window, task.seed)
        row |= {"status": "scored", "error": "", **_diagnostics(posterior), **scores}
    except REFIT_ERRORS as err:
        row |= {"status": "failed", "error": f"{type(err).__name__}: {one_line(err)}"}
        runs = pd.DataFrame()
    row["seconds"] = time.perf_counter() - start
    return Outcome(task.cell, row, runs.assign(cell=task.cell) if len(runs) else runs)


def progress_line(outcome: Outcome, done: int, total: int) -> str:
    """One line per finished refit: the cell, its seconds and its diagnostics (or why it
    failed or was skipped)."""
    row = outcome.row
    head = f"[{done}/{total}] {outcome.cell}: "
    if row["status"] != "scored":
        return f"{head}{row['status'].upper()}: {row['error']}"
    diag = ("diagnostics ok" if row["diagnostics_ok"] else
            f"diagnostics PROBLEMS (max R-hat {row['max_rhat']:.3f}, min bulk ESS "
            f"{row['min_ess_bulk']:.0f}, {row['divergences']} divergences)")
    return (f"{head}{row['seconds']:.1f} s, {diag}; regret {row['regret_pct']:.3f}%, "
            f"lr in 90% {'yes' if row['lr_in90'] else 'no'}, batch in 90% "
            f"{'yes' if row['batch_in90'] else 'no'}")


def _run(tasks: list[HeldOut], refit: Refit, jobs: int,
         progress: Callable[[str], None] | None) -> list[Outcome]:
    """Every task through :func:`run_held_out`, ``jobs`` at a time, reported as they end."""
    parallel = joblib.Parallel(n_jobs=min(jobs, len(tasks)), return_as="generator_unordered")
    outcomes = []
    for outcome in parallel(joblib.delayed(run_held_out)(t, refit) for t in tasks):
        outcomes.append(outcome)
        if progress is not None:
            progress(progress_line(outcome, len(outcomes), len(tasks)))
    order = {t.cell: i for i, t in enumerate(tasks)}
    return sorted(outcomes, key=lambda o: order[o.cell])


def check(posterior: xr.DataTree | str | Path, cells: int | Sequence[str] | None = None, *,
          seed: int = 0, jobs: int | None = None, draws: int | None = None,
          tune: int | None = None, chains: int | None = None, refit: Refit | None = None,
          progress: Callable[[str], None] | None = None,
          sensitivity: Spec | None = None) -> HeldOutCheck:
    """Leave-one-cell-out predictive check of a fitted posterior on its own sweep.

    For each chosen cell, refit the sweep without it (the posterior's spec and sampler
    settings with :data:`REFIT_TUNE` tuning steps, or ``draws``/``tune``/``chains``; seed
    ``seed``), predict the cell as a new
    one, and score the prediction against the cell's runs
    (:func:`bayes_scaling.heldout.score.score_cell`).

    Args:
        posterior: a fitted posterior, or its file.
        cells: None (every cell), a count (that many random cells, seeded by ``seed``) or
            cell ids.
        jobs: refits at a time (default: the number of cores).
        refit: ``refit(sweep, spec, seed) -> posterior`` (default :func:`refit_posterior`);
            picklable when ``jobs > 1``.
        progress: called with one line per finished refit.
        sensitivity: a second spec: the whole sweep is also fitted under it and compared
            with the posterior (:func:`~bayes_scaling.heldout.sensitivity.prior_sensitivity`).

    Returns:
        :class:`~bayes_scaling.heldout.result.HeldOutCheck`: one row per cell, the held-out
        runs' loss PITs, the coverage table, the prior sensitivity (when asked) and the
        provenance.
    """
    if not isinstance(posterior, xr.DataTree):
        posterior = load_posterior(posterior)
    if posterior.attrs.get("kind") == "prior":
        raise PosteriorError("check: this is a prior sample (`sample_prior`), not a fit; give "
                             "a posterior written by `fit`")
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise PosteriorError(f"check: jobs must be >= 1, got {jobs}")
    spec = refit_spec(posterior, draws, tune, chains)
    table = posterior_cells(posterior)
    chosen = select_cells(table, cells, seed)
    start = time.perf_counter()
    outcomes = _run(held_out(posterior, chosen, spec, seed), refit or refit_posterior, jobs,
                    progress)
    compared = None
    if sensitivity is not None:
        from bayes_scaling.heldout.sensitivity import prior_sensitivity

        if progress is not None:
            progress(f"prior sensitivity: fitting the whole sweep under the {sensitivity.name} "
                     f"spec")
        with _quiet():
            compared = prior_sensitivity(posterior, sensitivity, seed=seed, refit=refit)
    rows = pd.DataFrame([o.row for o in outcomes])
    runs = [o.runs for o in outcomes if len(o.runs)]
    run_table = pd.concat(runs, ignore_index=True) if runs else pd.DataFrame()
    if len(run_table):
        run_table = run_table[["cell", *[c for c in run_table if c != "cell"]]]
    attrs = {
        "check": "leave-one-cell-out", "bayes_scaling_version": __version__,
        "data_hash": posterior.attrs["data_hash"], "data_source": posterior.attrs["data_source"],
        "spec_hash": posterior.attrs["spec_hash"], "spec_name": posterior.attrs["spec_name"],
        "seed": seed, "jobs": jobs, "n_cells_fitted": len(table), "n_cells_checked": len(chosen),
        "cells_requested": ("all" if cells is None else f"{cells} random" if isinstance(
            cells, int) else "by id"),
        "sampler": dict(spec.sampler),
        "seconds": round(time.perf_counter() - start, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    rows.attrs, run_table.attrs = dict(attrs), dict(attrs)
    return HeldOutCheck(cells=rows, runs=run_table, coverage=coverage_table(rows), attrs=attrs,
                        sensitivity=compared)
