"""Held-out checks: the leave-one-cell-out predictive check of a posterior on its own sweep,
and the reference optimum of a cell that it (and the held-out benchmarks) score against."""

from bayes_scaling.lazy import lazy_exports

_EXPORTS = {
    "check": "loco",
    "HeldOutCheck": "result",
    "cell_optimum": "reference",
    "regret_pct": "reference",
}
"""Public name -> module of this stage that defines it (imported on first use)."""

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
