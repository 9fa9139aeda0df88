"""A selection of candidate groups: what it is expected to buy at the target, in regret and
in target compute, and the plain verdict ``propose`` prints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_scaling.design.problem import Problem, normalise
from bayes_scaling.design.value import compute_equivalent

__all__ = ["Selection", "net_value", "verdict", "worth"]


@dataclass
class Selection:
    """A greedy selection: the picked groups (indices into the problem's groups) and their
    scored rows, the first pick's scores of every eligible group, the summed information gain,
    and the target's expected regret (% of its loss) before and after."""

    chosen: list[int]
    rows: dict[int, dict]
    first: dict[int, dict]
    total_eig: float
    regret_before_pct: float
    regret_after_pct: float
    """Before, times each pick's expected after/before ratio (each given the earlier picks'
    fantasised outcomes): each pick removes its expected share of what regret is left. One
    fantasised outcome can itself raise the regret, so neither the last pick's "after" alone
    nor before less the summed drops (negative from a wide prior) is what the selection buys."""


def worth(p: Problem, selection: Selection) -> float:
    """What a selection's expected drop of the target's regret is worth in target FLOPs
    (NaN where the loss law does not fall with tokens at the target)."""
    w = normalise(np.zeros(p.d.n))
    drop = (selection.regret_before_pct - selection.regret_after_pct) / 100 * float(w @ p.t_loss)
    return float(compute_equivalent(p, w, drop))


def net_value(p: Problem, selection: Selection) -> float:
    """A selection's worth (:func:`worth`) less its cost, in FLOPs; -inf where its worth
    cannot be valued, 0 for an empty selection."""
    if not selection.chosen:
        return 0.0
    return float(np.nan_to_num(worth(p, selection), nan=-np.inf) - p.g_cost[selection.chosen].sum())


def verdict(p: Problem, selection: Selection, rows: dict[int, dict], objective: str) -> str:
    """One plain sentence: what the selection buys, or that nothing is worth running."""
    before, after = selection.regret_before_pct, selection.regret_after_pct
    if selection.chosen:
        bought = worth(p, selection)
        return (f"run the {len(selection.chosen)} selected group(s): expected regret at the target "
                f"{before:.3g}% -> {after:.3g}% of its loss (expected), worth {bought:.3g} "
                f"target FLOPs for {p.g_cost[selection.chosen].sum():.3g} FLOPs")
    if objective != "value":
        scored = [r for r in rows.values() if np.isfinite(r.get("eig_nats", np.nan))]
        if not scored:
            return f"no candidate fits the budget (expected regret at the target {before:.3g}%)"
        top = max(scored, key=lambda r: r["eig_nats"])
        return (f"nothing is worth running: no candidate is expected to tell anything about the "
                f"target's optimum (the best, {top['group']}, is expected to gain "
                f"{top['eig_nats']:.3g} nats; expected regret at the target {before:.3g}% of "
                "its loss)")
    scored = [r for r in rows.values() if np.isfinite(r.get("value_flops", np.nan))]
    slope = float(normalise(np.zeros(p.d.n)) @ p.t_slope_d)
    if not scored and slope >= 0:
        return (f"no run can be valued in target compute: under the fitted loss law the "
                f"target's loss does not fall with more tokens at its size (d log L* / d log D "
                f"= {slope:.3g}; the law's bend in tokens per parameter turns over beyond the "
                f"data); rank by information instead (--objective per_flop); expected regret "
                f"at the target {before:.3g}% of its loss")
    top = max(scored, key=lambda r: r["value_flops"] / r["group_cost_flops"], default=None)
    best = (f"; the best, {top['group']}, is worth {top['value_flops']:.3g} target FLOPs for "
            f"{top['group_cost_flops']:.3g}" if top else "")
    return (f"nothing is worth running: no candidate's value exceeds its cost (expected "
            f"regret at the target {before:.3g}% of its loss){best}")
