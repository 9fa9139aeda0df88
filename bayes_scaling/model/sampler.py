"""The sampler settings a fit uses: the spec's, with its ``auto`` values resolved for the
sweep (mass-matrix adaptation, target acceptance, draws), and the progress display."""

from __future__ import annotations

import os
import shutil
import sys

from bayes_scaling.data import Sweep
from bayes_scaling.data.identifiability import exponent_ridges
from bayes_scaling.model.inputs import ModelInputs, bowl_unknowns, prepare_inputs
from bayes_scaling.model.spec import Spec

__all__ = ["DRAWS_AUTO", "TARGET_ACCEPT_AUTO", "TUNE_AUTO", "auto_draws", "bowl_unknowns",
           "progress_mode", "resolved_sampler", "sampler_adaptation", "thin_cells"]


DRAWS_AUTO = 1000
"""``draws = "auto"``: per chain, doubled where some cell is thin in runs (:func:`thin_cells`)
and doubled again below ``TARGET_ACCEPT_AUTO["cells"]`` cells (:func:`auto_draws`)."""


TARGET_ACCEPT_AUTO = {"cells": 10, "few": 0.99, "many": 0.95}
"""``target_accept = "auto"``: ``few`` below ``cells`` cells (their hierarchical scales are
barely identified: single divergent transitions in 3 of 18 simulated few-cell fits at 0.95 and
in 1 of 20 at 0.98, from the funnel between the law and a cell scale that 4 cells cannot pin),
``many`` otherwise."""


TUNE_AUTO = {"cells": (10, 33), "inside": 500, "outside": 1000}
"""``tune = "auto"``: tuning steps per chain, ``inside`` for sweeps of ``cells`` cells (both
ends included), ``outside`` otherwise. 500 is used only where it was tested: on the Step Law
sweeps (33 cells) it sampled as cleanly as 1,000 (seeds 0 and 1: max R-hat 1.0045 and
1.0041, min bulk ESS 1,059 and 803, 0 divergences, against 1.0052 / 1.0064, 946 / 911 and 0
at 1,000) in 14 s of sampling instead of 18.6 s, and so did the held-out (27 cells) and
leave-one-cell-out (32 cells) refits. Larger sweeps were not tested at 500 (the simulated
156-cell sweep of benchmarks/fit_scaling.py has one stuck chain at 500 and at 1,000 alike
since the IEEE-arithmetic change of the draws), and few-cell sweeps were tested at 1,000
(benchmarks/sweep_designs.py)."""


def thin_cells(inputs: ModelInputs) -> int:
    """Cells with fewer runs inside the window than :func:`bowl_unknowns` (they lean on the
    other cells and the priors, and mix slowly)."""
    return int(inputs.cells["thin"].sum())


def auto_draws(inputs: ModelInputs) -> int:
    """``draws = "auto"`` for these inputs: :data:`DRAWS_AUTO`, x2 where a cell is thin in
    runs, x2 below ``TARGET_ACCEPT_AUTO["cells"]`` cells. Such sweeps sampled without
    divergences but mixed slowly: R-hat 1.011-1.012 at 1,000 draws on a 12-run sweep, 1.0115
    at 2,000; 1.011 on two sizes x two ratios (4 cells, no thin cell) at 1,000; their sampling
    takes seconds either way."""
    few = len(inputs.cells) < TARGET_ACCEPT_AUTO["cells"]
    return DRAWS_AUTO * (2 if thin_cells(inputs) else 1) * (2 if few else 1)


def resolved_sampler(sweep: Sweep, spec: Spec, inputs: ModelInputs | None = None) -> dict:
    """The spec's sampler settings with ``auto`` resolved for this sweep: the adaptation
    (:func:`sampler_adaptation`), the target acceptance (:data:`TARGET_ACCEPT_AUTO`), the
    tuning steps (:data:`TUNE_AUTO`) and the draws (:func:`auto_draws`)."""
    out = {**spec.sampler, "adaptation": sampler_adaptation(sweep, spec)}
    if out["draws"] == "auto":
        inputs = inputs or prepare_inputs(sweep, window=spec.window)
        out["draws"] = auto_draws(inputs)
    cells = sweep.runs["cell"].nunique()
    if out["target_accept"] == "auto":
        few = cells < TARGET_ACCEPT_AUTO["cells"]
        out["target_accept"] = TARGET_ACCEPT_AUTO["few" if few else "many"]
    if out["tune"] == "auto":
        low, high = TUNE_AUTO["cells"]
        out["tune"] = TUNE_AUTO["inside" if low <= cells <= high else "outside"]
    return out


def progress_mode(columns: int | None = None) -> bool | str:
    """PyMC's per-chain progress table with its statistics where the terminal is wide
    enough for its headings (145 columns); one combined bar otherwise (the table cut its
    headings to "Dive…", "Elap…" at 80 columns)."""
    return True if (columns or _terminal_columns()) >= 145 else "combined"


def _terminal_columns() -> int:
    """The terminal's width as the progress bar sees it (stderr's, stdout's or stdin's)."""
    for stream in (sys.stderr, sys.stdout, sys.stdin):
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            continue
    return shutil.get_terminal_size().columns


def sampler_adaptation(sweep: Sweep, spec: Spec) -> str:
    """The mass-matrix adaptation a fit uses: the spec's, with ``auto`` resolved to low_rank
    where the design leaves an exponent ridge (a diagonal mass matrix cannot follow a ridge
    between N and D exponents: such sweeps mixed slowly and diverged) and to diag elsewhere
    (cheaper per draw on large sweeps)."""
    if spec.sampler["adaptation"] != "auto":
        return spec.sampler["adaptation"]
    return "low_rank" if exponent_ridges(sweep.runs) else "diag"
