"""The calibration figure of the leave-one-cell-out check: PIT histograms of the held-out
cells' optima and runs' losses, and interval coverage against the nominal level."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from bayes_scaling.heldout.coverage import ALPHA, NAMES, consistent_range
from bayes_scaling.heldout.result import HeldOutCheck
from bayes_scaling.heldout.score import LEVELS, OPTIMA
from bayes_scaling.present.plots_common import new_figure

COLOURS = {"lr": "tab:blue", "batch": "tab:orange"}

__all__ = ["plot_check_calibration"]


def _bins(n: int) -> int:
    """PIT histogram bins: about five values a bin, 2 to 10."""
    return int(np.clip(n // 5, 2, 10))


def _uniform_band(ax: Axes, n: int, bins: int) -> None:
    """The counts a bin of a uniform PIT holds with probability 1 - ALPHA, and their mean."""
    lo, hi = stats.binom.ppf([ALPHA / 2, 1 - ALPHA / 2], n, 1 / bins)
    ax.axhspan(lo, hi, color="0.85", zorder=0, label=f"uniform: {1 - ALPHA:.0%} range")
    ax.axhline(n / bins, color="0.4", lw=1, ls="--")


def _pit_panel(ax: Axes, values: dict[str, np.ndarray], title: str) -> None:
    n = min(len(v) for v in values.values()) if values else 0
    if n == 0:
        ax.text(0.5, 0.5, "nothing scored", ha="center", va="center", transform=ax.transAxes)
    else:
        bins = _bins(n)
        _uniform_band(ax, n, bins)
        for label, v in values.items():
            ax.hist(v, bins=bins, range=(0, 1), histtype="step", lw=2, label=label,
                    color=COLOURS.get(label.split()[0], "tab:green"))
        ax.legend(fontsize=7, loc="upper center")
    ax.set_xlim(0, 1)
    ax.set_xlabel("PIT: share of predictive draws below the observed value")
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=9)


def _coverage_panel(ax: Axes, result: HeldOutCheck) -> None:
    cov = result.coverage
    n = int(cov["n"].max()) if len(cov) else 0
    if n:
        band = np.array([consistent_range(n, level) for level in LEVELS]) / n
        ax.fill_between(LEVELS, band[:, 0], band[:, 1], color="0.85",
                        label=f"consistent with nominal ({n} cells)")
    ax.plot([0, 1], [0, 1], color="0.4", lw=1, ls="--")
    for name, quantity in NAMES.items():
        rows = cov[cov["quantity"] == quantity]
        ax.plot(rows["level"], rows["rate"], "o-", color=COLOURS[name], label=quantity)
    ax.set_xlim(0.4, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("nominal interval probability")
    ax.set_ylabel("held-out cells whose optimum it contained")
    ax.set_title("Coverage of the central intervals", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")


def plot_check_calibration(result: HeldOutCheck, title: str = "") -> Figure:
    """Three panels: the PIT histogram of each held-out cell's optimum (lr, batch) under its
    predictive; the PIT histogram of the held-out runs' losses (censored runs left out);
    the coverage of the 50/80/90% intervals against nominal, with the range a calibrated
    predictive gives (binomial, :data:`~bayes_scaling.heldout.coverage.ALPHA`)."""
    cells = result.cells
    scored = cells[cells["status"] == "scored"] if len(cells) else cells
    fig, axes = new_figure(1, 3, 4.4, 3.6)
    _pit_panel(axes[0, 0], {f"{name} optimum": scored[f"{name}_pit"].to_numpy(float)
                            for name in OPTIMA} if len(scored) else {},
               "Held-out cell optima (PIT)")
    runs = result.runs["pit"].dropna().to_numpy(float) if len(result.runs) else np.array([])
    _pit_panel(axes[0, 1], {"run loss": runs} if len(runs) else {},
               "Held-out runs' losses (PIT)")
    _coverage_panel(axes[0, 2], result)
    fig.suptitle(title or f"Leave-one-cell-out check: {len(scored)} cells refitted without "
                          "themselves", fontsize=10)
    return fig
