"""The planning pipeline shared by ``report`` and ``demo``: from a posterior and the target
run(s) to the prediction, the next runs, the expected regret grid and every figure, computed
once and returned as one labelled :class:`Plan`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from bayes_scaling.predict.predict import Prediction, predict
from bayes_scaling.predict.targets import default_targets, extrapolation_notes
from bayes_scaling.present.plots_common import fmt_sci
from bayes_scaling.present.plots_target import target_label
from bayes_scaling.present.text import picks_table, quantity_table

Say = Callable[[str], None]

__all__ = ["Plan", "plan"]


def _quiet(_text: str) -> None:
    pass


@dataclass
class Plan:
    """Everything a report shows about planning the target run(s).

    targets: the target rows (the first is the one proposals and the regret grid are for);
    prediction: :func:`bayes_scaling.predict` at every target; proposals: the ranked table of
    :func:`bayes_scaling.propose` (``selected`` marks the picks); regret: the expected regret
    on an (lr, batch) grid at the first target (None when not asked for); figures: by file
    stem; notes: lines a reader should see; seconds: time per step.
    """

    posterior: xr.DataTree
    targets: pd.DataFrame
    prediction: Prediction
    proposals: pd.DataFrame
    regret: xr.Dataset | None
    figures: dict[str, Figure]
    notes: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def first(self) -> pd.Series:
        """The target the proposals and the regret grid are for."""
        return self.targets.iloc[0]

    @property
    def label(self) -> str:
        """'dense / web, N=7e9, D=2e12' for the first target."""
        return target_label(self.first)


def plan(posterior: xr.DataTree, targets: pd.DataFrame | None = None, *, k: int = 3,
         seed: int = 0, budget_flops: float | None = None, regret: bool = True,
         truth: xr.Dataset | None = None, step: Say | None = None,
         progress: Say | None = None) -> Plan:
    """Predict every target, propose ``k`` next runs for the first, compute its expected
    regret grid and draw every figure.

    Args:
        posterior: a fitted posterior.
        targets: rows arch, data_mix, n_params, n_tokens; default
            :func:`bayes_scaling.predict.targets.default_targets` (noted in ``notes``).
        k, budget_flops: how many next runs (or mini-sweeps) and their total FLOP budget.
        seed: seeds the predictions, the proposals and the regret grid.
        regret: also compute the regret grid (and its figure).
        truth: a simulation's truth, starred in the cell figures.
        step: called with a heading at the start of each step (predict, propose, figures).
        progress: called with the details (the tables of results, each figure drawn).
    """
    from bayes_scaling.design.propose import propose  # local: the design stage is heavier
    from bayes_scaling.present.plots import make_figures, regret_grid

    step, say = step or _quiet, progress or _quiet
    notes: tuple[str, ...] = ()
    if targets is None:
        targets = default_targets(posterior)
        notes = ("No target given: predicting at 10x the largest fitted N and D "
                 f"({fmt_sci(targets['n_params'][0])}, {fmt_sci(targets['n_tokens'][0])}).",)
    targets = targets.reset_index(drop=True)
    first = targets.iloc[0]
    notes += tuple(n for _, t in targets.iterrows() for n in extrapolation_notes(posterior, t))
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    step(f"Predicting the optimum for {len(targets)} target run(s)")
    prediction = predict(posterior, targets, seed=seed)
    say(quantity_table(prediction.summary))
    seconds["predict"] = time.perf_counter() - t

    t = time.perf_counter()
    step(f"Choosing the next {k} run(s) for {target_label(first)}")
    proposals = propose(posterior, first[["arch", "data_mix", "n_params", "n_tokens"]].to_dict(),
                        budget_flops=budget_flops, k=k, seed=seed)
    say(picks_table(proposals))
    seconds["propose"] = time.perf_counter() - t

    t = time.perf_counter()
    step("Drawing the figures")
    grid = None
    if regret:
        say(f"  expected regret on an (lr, batch) grid at {target_label(first)}")
        grid = regret_grid(posterior, first, prediction, seed=seed)
    figures = make_figures(posterior, prediction=prediction, proposals=proposals, regret=grid,
                           targets=targets, truth=truth, progress=say)
    seconds["figures"] = time.perf_counter() - t
    return Plan(posterior, targets, prediction, proposals, grid, figures, notes, seconds)

