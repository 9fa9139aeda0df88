"""Prior sensitivity: the same sweep fitted under a second spec (for example
``models/literature.toml``), side by side with the posterior's own.

For every fitted cell (predicted as a new cell, as the check does) and for the laws'
exponents: median and 90% interval under both specs, and the shift of the median in units
of the first posterior's sd (log scale for the optima). A shift above
:data:`SENSITIVE_SD` marks a quantity the priors, not the runs, still set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.data import Sweep
from bayes_scaling.heldout.cells import fitted_sweep
from bayes_scaling.model.core import LAWS
from bayes_scaling.model.fit import posterior_cells, posterior_spec
from bayes_scaling.model.inputs import TOTAL_COLUMN
from bayes_scaling.model.spec import Spec, with_sampler
from bayes_scaling.predict.draws import TARGET_COLUMNS
from bayes_scaling.predict.predict import predict

SENSITIVE_SD = 1.0
"""Shift of a median, in posterior sds, above which a quantity is called prior-sensitive."""
OPTIMA = {"lr_opt": "log_lr_opt", "batch_tokens_opt": "log_batch_tokens_opt"}
"""Compared optimum -> its log draws in a prediction."""

__all__ = ["SENSITIVE_SD", "PriorSensitivity", "prior_sensitivity"]


@dataclass(frozen=True)
class PriorSensitivity:
    """Two fits of one sweep side by side.

    optima: one row per cell x optimum: cell, arch, quantity, median_a, lo90_a, hi90_a,
        median_b, lo90_b, hi90_b, shift_sd (log median b - log median a, in sds of a's log
        draws).
    laws: one row per arch x exponent: the same columns (natural scale of the exponent).
    attrs: spec names and hashes of both fits, seed, seconds of the second fit.
    """

    optima: pd.DataFrame
    laws: pd.DataFrame
    attrs: dict[str, Any]

    def lines(self) -> list[str]:
        """The comparison in words: the largest and median shift per optimum, and every
        exponent that moves by more than :data:`SENSITIVE_SD` sds."""
        a, b = self.attrs["spec_a"], self.attrs["spec_b"]
        out = []
        for quantity, rows in self.optima.groupby("quantity", sort=False):
            shift = rows["shift_sd"].abs()
            n_big = int((shift > SENSITIVE_SD).sum())
            out.append(f"prior sensitivity ({a} vs {b} spec): {quantity} medians move by "
                       f"{shift.median():.2f} posterior sd (median over {len(rows)} cells, "
                       f"largest {shift.max():.2f}); {n_big} cell(s) above {SENSITIVE_SD:g} sd")
        moved = self.laws[self.laws["shift_sd"].abs() > SENSITIVE_SD]
        if len(moved):
            out.append("prior-sensitive exponents: " + ", ".join(
                f"{r.quantity}[{r.arch}] {r.median_a:.3g} -> {r.median_b:.3g} "
                f"({r.shift_sd:+.1f} sd)" for r in moved.itertuples()))
        else:
            out.append(f"no exponent moves by more than {SENSITIVE_SD:g} posterior sd")
        return out


def _side_by_side(key: dict[str, Any], a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Median and 90% interval of draws ``a`` and ``b`` (already on the compared scale) and
    the shift of the median in sds of ``a``."""
    qa, qb = (np.quantile(x, [0.5, 0.05, 0.95]) for x in (a, b))
    sd = float(np.std(a))
    return {**key, "median_a": qa[0], "lo90_a": qa[1], "hi90_a": qa[2], "median_b": qb[0],
            "lo90_b": qb[1], "hi90_b": qb[2],
            "shift_sd": float((qb[0] - qa[0]) / sd) if sd > 0 else np.nan}


def _optima(post_a: xr.DataTree, post_b: xr.DataTree, seed: int) -> pd.DataFrame:
    """Every fitted cell's optima under both posteriors (natural units; shifts in log sds)."""
    cells = posterior_cells(post_a)
    columns = [c for c in (*TARGET_COLUMNS, TOTAL_COLUMN) if c in cells]
    targets = cells[columns].reset_index(drop=True)
    draws = [predict(p, targets, seed=seed).draws for p in (post_a, post_b)]
    rows = []
    for t, cell in enumerate(cells.index):
        for quantity, var in OPTIMA.items():
            a, b = (d[var].isel(target=t).to_numpy().ravel() for d in draws)
            row = _side_by_side({"cell": cell, "arch": cells.loc[cell, "arch"],
                                 "quantity": quantity}, a, b)
            for col in ("median_a", "lo90_a", "hi90_a", "median_b", "lo90_b", "hi90_b"):
                row[col] = float(np.exp(row[col]))
            rows.append(row)
    return pd.DataFrame(rows)


def _laws(post_a: xr.DataTree, post_b: xr.DataTree) -> pd.DataFrame:
    """Every exponent per arch under both posteriors."""
    rows = []
    pa, pb = post_a["posterior"], post_b["posterior"]
    for _, e_n, e_d in LAWS.values():
        for name in (e_n, e_d):
            for arch in pa[name]["arch"].to_numpy():
                a, b = (p[name].sel(arch=arch).to_numpy().ravel() for p in (pa, pb))
                rows.append(_side_by_side({"quantity": name, "arch": str(arch)}, a, b))
    return pd.DataFrame(rows)


def prior_sensitivity(posterior: xr.DataTree, other: Spec, *, seed: int = 0,
                      refit: Callable[[Sweep, Spec, int], xr.DataTree] | None = None,
                      ) -> PriorSensitivity:
    """Fit the posterior's sweep under spec ``other`` (with the posterior's sampler
    settings) and compare the two fits (:class:`PriorSensitivity`).

    ``refit(sweep, spec, seed) -> posterior`` defaults to
    :func:`bayes_scaling.heldout.loco.refit_posterior`.
    """
    from bayes_scaling.heldout.loco import refit_posterior

    spec_a = posterior_spec(posterior)
    spec_b = with_sampler(other, **spec_a.sampler)
    start = time.perf_counter()
    post_b = (refit or refit_posterior)(fitted_sweep(posterior), spec_b, seed)
    attrs = {"spec_a": spec_a.name, "spec_b": spec_b.name,
             "spec_hash_a": posterior.attrs["spec_hash"],
             "spec_hash_b": post_b.attrs["spec_hash"], "seed": seed,
             "seconds": round(time.perf_counter() - start, 1)}
    optima, laws = _optima(posterior, post_b, seed), _laws(posterior, post_b)
    optima.attrs, laws.attrs = dict(attrs), dict(attrs)
    return PriorSensitivity(optima=optima, laws=laws, attrs=attrs)
