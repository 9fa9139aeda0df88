"""The target's 90% intervals in natural units, now and expected after each candidate group
(what ``propose`` prints next to every pick)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_scaling.design.problem import Problem, normalise, target_cov

Z90 = 1.6448536269514722
"""The standard normal's 95% quantile: a central 90% interval is +-Z90 sd."""


def target_intervals(p: Problem, per_group: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The target's 90% intervals in natural units (lr, batch in tokens[, weight decay]):
    now, {q: {"median", "lo90", "hi90"}}, returned; after each group, as the columns
    ``{q}_lo90_after`` and ``{q}_hi90_after`` added to ``per_group``.

    The expected posterior after a group is known only through its covariance, so both
    intervals are normal on the log scale (+-1.645 sd, the ``{q}_width90_*`` widths), now
    from the target's covariance under the current draws and after from each group's
    expected covariance, and both are centred on the posterior median of the target's log
    optimum now (the law mean's median over draws: where an outcome moves the centre is not
    known before the run)."""
    centre = np.median(p.t_mean, axis=0)
    w = normalise(np.zeros(p.d.n))
    half_now = Z90 * np.sqrt(np.diag(target_cov(w, p)))
    now = {}
    for i, q in enumerate(p.d.dims):
        now[q] = {"median": float(np.exp(centre[i])),
                  "lo90": float(np.exp(centre[i] - half_now[i])),
                  "hi90": float(np.exp(centre[i] + half_now[i]))}
        half = per_group[f"{q}_width90_after"] / 2
        per_group[f"{q}_lo90_after"] = np.exp(centre[i] - half)
        per_group[f"{q}_hi90_after"] = np.exp(centre[i] + half)
    return now
