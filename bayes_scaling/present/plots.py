"""Figures of a fitted posterior (matplotlib, Agg backend; saved as PNG and SVG).

Every figure has labelled axes with units, a legend where it shows several series, and a
title. The functions live in small modules and are re-exported here:

- :func:`plot_cell_landscapes` (plots_cells): each cell's loss over (lr, batch), the runs
  (censored ones marked apart), the fitted bowl and the optimum's credible region.
- :func:`plot_law_curves` (plots_laws): optimal lr and batch against N and D with posterior
  bands, the data cells' optima and the published laws.
- :func:`plot_target_predictive`, :func:`plot_expected_regret` (with :func:`regret_grid`)
  and :func:`plot_proposals` (plots_target): the big run's predicted optimum, the expected
  regret of each (lr, batch) choice, and the proposed next runs on the (N, D) plane.

:func:`make_figures` draws all of them for a posterior; :func:`write_figures` saves them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from bayes_scaling.model.fit import posterior_cells
from bayes_scaling.predict.predict import Prediction
from bayes_scaling.present.plots_cells import cell_bowl, plot_cell_landscapes
from bayes_scaling.present.plots_common import LABELS, close, save_figure
from bayes_scaling.present.plots_laws import plot_law_curves
from bayes_scaling.present.plots_target import (
    plot_expected_regret,
    plot_proposals,
    plot_target_predictive,
    regret_grid,
)

__all__ = ["LABELS", "cell_bowl", "make_figures", "plot_cell_landscapes",
           "plot_expected_regret", "plot_law_curves", "plot_proposals",
           "plot_target_predictive", "regret_grid", "save_figure", "write_figures"]


def _slug(*parts: str) -> str:
    return "_".join("".join(ch if ch.isalnum() else "-" for ch in str(p)) for p in parts)


def make_figures(posterior: xr.DataTree, *, prediction: Prediction | None = None,
                 proposals: pd.DataFrame | None = None, regret: xr.Dataset | None = None,
                 targets: pd.DataFrame | None = None, truth: xr.Dataset | None = None,
                 progress: Callable[[str], None] | None = None) -> dict[str, Figure]:
    """Every figure that the inputs allow, by file stem: ``landscapes_<arch>_<mix>`` (one per
    group of cells), ``laws``, and with a prediction ``predictive``; with a regret grid
    ``regret``; with proposals ``proposals``. ``truth`` (a simulation's) marks true optima."""
    say = progress or (lambda _msg: None)
    cells = posterior_cells(posterior)
    figures: dict[str, Figure] = {}
    for (arch, mix), group in cells.groupby(["arch", "data_mix"], sort=True):
        say(f"  figure: loss landscapes of {len(group)} {arch}/{mix} cells")
        figures[_slug("landscapes", arch, mix)] = plot_cell_landscapes(
            posterior, list(group.index), truth=truth,
            title=f"Loss landscapes of the {arch} / {mix} cells: runs, fitted bowl "
                  "and optimum")
    first = None if targets is None or not len(targets) else targets.iloc[0]
    say("  figure: scaling laws of the optimum")
    figures["laws"] = plot_law_curves(posterior, first)
    if prediction is not None:
        say("  figure: posterior predictive optimum at the targets")
        figures["predictive"] = plot_target_predictive(prediction)
    if regret is not None:
        say(f"  figure: expected regret at {regret.attrs.get('target_label', 'the target')}")
        figures["regret"] = plot_expected_regret(regret, prediction)
    if proposals is not None:
        say("  figure: proposed next runs")
        figures["proposals"] = plot_proposals(posterior, proposals, targets)
    return figures


def write_figures(figures: dict[str, Figure], out_dir: str | Path,
                  formats: tuple[str, ...] = ("png", "svg"),
                  close_after: bool = False) -> dict[str, list[Path]]:
    """Save each figure as ``out_dir/<stem>.<fmt>``; returns {stem: paths}."""
    out = {stem: save_figure(fig, out_dir, stem, formats) for stem, fig in figures.items()}
    if close_after:
        for fig in figures.values():
            close(fig)
    return out

