"""The regret-against-batch figure: how much loss a larger batch costs at the target, with the
lr re-optimised, and the largest batch within a tolerance."""

from __future__ import annotations

from matplotlib.figure import Figure

from bayes_scaling.predict.max_batch import MaxBatch
from bayes_scaling.present.plots_common import LABELS, fmt_value, log_axes, new_figure


def plot_max_batch(result: MaxBatch, title: str = "") -> Figure:
    """Regret (% of the optimal loss) against batch size: the band of each draw's regret with
    its own best lr, the expected regret of the best single lr, the tolerance, and the largest
    safe batch (recommendation and the interval of each draw's own), and the critical batch."""
    curve = result.curve
    b = curve["batch_tokens"].to_numpy()
    tag = f"{round(100 * result.prob)}%"
    fig, axes = new_figure(1, 1, 6.4, 4.2)
    ax = axes[0, 0]
    ax.fill_between(b, curve["regret_pct_lo"], curve["regret_pct_hi"], color="tab:blue",
                    alpha=0.25, label=f"{tag} band: each draw at its own best lr")
    ax.plot(b, curve["regret_pct_median"], color="tab:blue", lw=1, label="median of draws")
    ax.plot(b, curve["expected_regret_pct"], color="black", lw=2,
            label="expected regret at the best single lr")
    ax.axhline(result.tolerance_pct, color="red", ls="--", lw=1,
               label=f"tolerance {fmt_value(result.tolerance_pct)}%")
    mb = result.max_batch_tokens
    ax.axvspan(mb["lo"], mb["hi"], color="red", alpha=0.08,
               label=f"{tag} interval of the largest safe batch")
    if mb["point"] == mb["point"]:  # not NaN
        ax.axvline(mb["point"], color="red", lw=2,
                   label=f"largest safe batch {fmt_value(mb['point'])} tokens "
                         f"(lr {fmt_value(result.lr)})")
    crit = result.critical_batch_tokens
    ax.axvline(crit["median"], color="tab:green", ls=":", lw=1.5,
               label=f"critical batch {fmt_value(crit['median'])} tokens "
                     f"({tag} [{fmt_value(crit['lo'])}, {fmt_value(crit['hi'])}])"
                     + ("" if result.critical_from_data else ", from the priors"))
    ax.set_ylim(0, max(4 * result.tolerance_pct, float(curve["expected_regret_pct"].min()) * 2))
    ax.set_xlim(b.min(), b.max())
    log_axes(ax, "x")
    ax.set_xlabel(LABELS["batch"])
    ax.set_ylabel("regret: loss above the optimum (%)")
    ax.set_title(title or "Regret against batch size (lr re-optimised)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    return fig
