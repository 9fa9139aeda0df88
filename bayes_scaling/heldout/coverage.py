"""Coverage of the held-out intervals against their nominal level, and the plain verdict.

k of n held-out cells whose interval (the predictive plus the cell optimum's own bootstrap
noise, :mod:`bayes_scaling.heldout.score`) contains the cell's optimum is judged against
Binomial(n, level): "too narrow" when k is below the counts a calibrated predictive gives
with probability 1 - alpha (two-sided), "too wide" above them, else "consistent with
nominal". Cells share the fitted law, so their misses are not independent: the tolerance is
a guide, not a test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from bayes_scaling.heldout.score import LEVELS, OPTIMA

ALPHA = 0.05
"""Two-sided tail probability outside the consistent range of counts."""
NAMES = {"lr": "lr_opt", "batch": "batch_opt"}
"""Scored optimum -> how the verdict names it."""

__all__ = ["ALPHA", "consistent_range", "coverage_table", "judge", "verdict_lines"]


def consistent_range(n: int, level: float, alpha: float = ALPHA) -> tuple[int, int]:
    """The counts k of n with P(K <= k) >= alpha/2 and P(K >= k) >= alpha/2 under
    K ~ Binomial(n, level): (lowest, highest)."""
    k = np.arange(n + 1)
    ok = (stats.binom.cdf(k, n, level) >= alpha / 2) & (stats.binom.sf(k - 1, n, level)
                                                          >= alpha / 2)
    return int(k[ok].min()), int(k[ok].max())


def judge(hits: int, n: int, level: float, alpha: float = ALPHA) -> str:
    """'too narrow', 'too wide' or 'consistent with nominal' (:func:`consistent_range`)."""
    lo, hi = consistent_range(n, level, alpha)
    return "too narrow" if hits < lo else "too wide" if hits > hi else "consistent with nominal"


def coverage_table(cells: pd.DataFrame, levels: tuple[float, ...] = LEVELS,
                   alpha: float = ALPHA) -> pd.DataFrame:
    """One row per optimum x level over the scored cells (``status == 'scored'``): hits, n,
    rate, the consistent range (lo, hi) and the verdict."""
    scored = cells[cells["status"] == "scored"] if len(cells) else cells
    rows = []
    for name in OPTIMA:
        for level in levels:
            n = len(scored)
            hits = int(scored[f"{name}_in{round(100 * level)}"].astype(bool).sum()) if n else 0
            lo, hi = consistent_range(n, level, alpha) if n else (0, 0)
            rows.append({"quantity": NAMES[name], "level": level, "hits": hits, "n": n,
                         "rate": hits / n if n else np.nan, "lo": lo, "hi": hi,
                         "verdict": judge(hits, n, level, alpha) if n else "no cells scored"})
    return pd.DataFrame(rows)


def _coverage_line(row: pd.Series) -> str:
    return (f"{row['quantity']}: {row['level']:.0%} intervals (with the optimum's own noise) "
            f"contained the cell optimum in "
            f"{row['hits']}/{row['n']} cells ({row['rate']:.0%}): {row['verdict']} "
            f"({row['lo']}-{row['hi']} of {row['n']} would be, at the {ALPHA:.0%} level)")


def verdict_lines(cells: pd.DataFrame, coverage: pd.DataFrame) -> list[str]:
    """The plain verdict: coverage of the 90% and 50% intervals, mean regret and loss error,
    and every refit that failed, was skipped or failed its sampling diagnostics."""
    scored = cells[cells["status"] == "scored"] if len(cells) else cells
    lines = [_coverage_line(row) for level in (0.9, 0.5)
             for _, row in coverage[coverage["level"] == level].iterrows() if row["n"]]
    if len(scored) and "lr_in90_point" in scored:
        point = ", ".join(f"{NAMES[q]} {int(scored[f'{q}_in90_point'].astype(bool).sum())}/"
                          f"{len(scored)}" for q in OPTIMA)
        noise = ", ".join(f"{NAMES[q]} {scored[f'{q}_ref_sd'].median():.3f}" for q in OPTIMA)
        lines.append(f"the cell optima are estimates: their bootstrap sd (median over cells, "
                     f"log units) {noise}; the model's 90% intervals alone, without that "
                     f"noise, contained them in {point} cells")
    if len(scored):
        regret = scored["regret_pct"]
        lines.append(f"regret of the predicted median (lr, batch) on each cell's own "
                     f"quadratic: mean {regret.mean():.3f}% of the loss (median "
                     f"{regret.median():.3f}%, worst {regret.max():.3f}%)")
        err = scored["loss_err_pct"]
        lines.append(f"predicted optimal loss vs the cell's: mean error {err.mean():+.2f}% "
                     f"(mean absolute {err.abs().mean():.2f}%)")
        fallback = int(scored["ref_method"].str.startswith("best run").sum())
        if fallback:
            lines.append(f"{fallback} cell(s) have no usable quadratic: their optimum is their "
                         f"best run (ref_method in the table)")
    bad = scored[~scored["diagnostics_ok"].astype(bool)] if len(scored) else scored
    if len(bad):
        lines.append(f"{len(bad)} of {len(scored)} refits failed their sampling diagnostics "
                     f"(diagnostics_ok False in the table): {', '.join(bad['cell'])}")
    for status in ("failed", "skipped"):
        rows = cells[cells["status"] == status]
        lines += [f"{status}: {r.cell}: {r.error}" for r in rows.itertuples()]
    if not len(scored):
        lines.append("no cell was scored")
    return lines
