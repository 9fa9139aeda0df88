"""The prior predictive figure: what the priors alone imply for lr_opt, batch_opt and the
optimal loss at the sweep's cells and at the target, next to the sweep's best runs."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from bayes_scaling.predict.prior_check import QUANTITIES
from bayes_scaling.present.plots_common import LABELS, group_colours, log_axes, new_figure

_YLABEL = {"lr_opt": LABELS["lr_opt"], "batch_tokens_opt": LABELS["batch_opt"],
           "loss_opt": LABELS["loss_opt"]}


def plot_prior_predictive(summary: pd.DataFrame, spec_name: str = "") -> Figure:
    """One panel per quantity against N: the prior's 90% range and median at each sweep cell
    (coloured by arch) and at each target (red), and each cell's best run (black x).

    ``summary`` is :func:`bayes_scaling.predict.prior_check.prior_summary`'s table."""
    fig, axes = new_figure(1, len(QUANTITIES), 4.6, 3.8)
    colours = group_colours([(a, "") for a in summary["arch"].unique()])
    for ax, q in zip(axes[0], QUANTITIES, strict=True):
        rows = summary[summary["quantity"] == q]
        for arch, sub in rows[rows["where"] == "cell"].groupby("arch"):
            # tokens-per-parameter spread at one N: nudge the bars apart a little
            x = sub["n_params"] * (1 + 0.04 * (sub.groupby("n_params").cumcount()))
            ax.vlines(x, sub["lo90"], sub["hi90"], color=colours[(arch, "")], alpha=0.6,
                      lw=2, label=f"{arch} cells: prior 90%")
            ax.plot(x, sub["median"], "o", color=colours[(arch, "")], ms=3)
            ax.plot(x, sub["observed"], "x", color="black", ms=5, label="_nolegend_")
        tgt = rows[rows["where"] == "target"]
        if len(tgt):
            ax.vlines(tgt["n_params"], tgt["lo90"], tgt["hi90"], color="red", lw=3,
                      label="target: prior 90%")
            ax.plot(tgt["n_params"], tgt["median"], "o", color="red", ms=5)
        ax.plot([], [], "x", color="black", label="cell's best run")
        log_axes(ax, "xy")
        ax.set_xlabel(LABELS["n_params"])
        ax.set_ylabel(_YLABEL[q])
        ax.legend(fontsize=7, loc="best")
    inside = summary[summary["where"] == "cell"].groupby("quantity")["inside"].mean()
    note = ", ".join(f"{q} {100 * inside.get(q, float('nan')):.0f}%" for q in QUANTITIES)
    fig.suptitle(f"Prior predictive{f' ({spec_name} spec)' if spec_name else ''}: "
                 f"cells whose best run lies inside the prior 90% range: {note}", fontsize=9)
    return fig
