"""Add runs to a fitted posterior without a refit: Pareto-smoothed importance reweighting.

The new runs must fall in cells the posterior already has (their cell parameters exist).
Each draw's log weight is the change in the log likelihood of the cells that got runs: the
likelihood of their runs after the update (new runs added; a new best loss moves the
window edge, which can change what is censored) minus before. The weights are smoothed with
PSIS (arviz-stats' ``psislw``); where its Pareto k-hat exceeds ``khat_max`` (0.7: the
reweighted estimates are not to be trusted, Vehtari et al. 2024), or the update adds a cell
or changes a cell's design (it starts to vary the batch or the weight decay), nothing is
reweighted and :func:`update_posterior` refits. Otherwise the draws are resampled by their
weights into a posterior of the same shape, carrying the combined sweep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.base import array_stats

from bayes_scaling.data import Sweep, concat_sweeps, from_frame
from bayes_scaling.model import core
from bayes_scaling.model.compiled import structure_key
from bayes_scaling.model.fit import fit, fitted_sweep, package_posterior, posterior_spec
from bayes_scaling.model.inputs import ModelInputs, prepare_inputs
from bayes_scaling.predict.cells import existing_cell
from bayes_scaling.predict.draws import Draws

KHAT_MAX = 0.7
"""Largest Pareto k-hat at which the reweighted posterior is used (else: refit)."""

__all__ = ["KHAT_MAX", "Update", "log_ratio", "psis_weights", "reweight_posterior",
           "update_posterior"]


@dataclass(frozen=True)
class Update:
    """What an update did: ``posterior`` (None where it could not reweight), the cells that
    got runs, the PSIS k-hat and the weights' effective sample size (NaN where not
    reweighted), ``reason`` why a refit is needed ('' when reweighted) and ``refitted``."""

    posterior: xr.DataTree | None
    cells: tuple[str, ...]
    khat: float
    ess: float
    reason: str
    refitted: bool = False

    def line(self) -> str:
        """One line for a log."""
        if self.refitted:
            return f"update: refitted ({self.reason})"
        if self.posterior is None:
            return f"update: cannot reweight ({self.reason})"
        return (f"update: reweighted by {len(self.cells)} cell(s)' new runs; PSIS k-hat "
                f"{self.khat:.2f}, ESS {self.ess:.0f}")


def _cell_log_lik(d: Draws, inputs: ModelInputs, cells: list[str]) -> np.ndarray:
    """Per-draw log likelihood (S,) of the runs of ``cells`` under ``inputs``' censoring."""
    runs = inputs.runs[inputs.runs["cell"].isin(cells)]
    total = np.zeros(d.n)
    k = len(d.dims)
    for cell, r in runs.groupby("cell", sort=False):
        eff = existing_cell(d, cell)
        u = r[["log_lr", "log_batch", "log_wd"]].to_numpy(float)[:, :k]
        mask = np.stack([np.ones(len(r)), r["batch_mask"].to_numpy(float),
                         r["wd_mask"].to_numpy(float)], axis=-1)[:, :k]
        delta = (u[None] - eff.opt[:, 0, None, :]) * mask[None]
        mu = core.bowl_loss_array(eff.loss_opt[:, 0, None], delta, eff.chol_diag[:, 0, None, :],
                                  eff.chol_offdiag[:, None, :], eff.skew[:, None])
        ll = core.run_log_likelihood(r["loss"].to_numpy(float)[None],
                                     r["censored"].to_numpy(bool)[None], mu,
                                     eff.noise[:, None], d.spec.likelihood, d.spec.nu)
        total += ll.sum(axis=1)
    return total


def log_ratio(d: Draws, old: ModelInputs, new: ModelInputs, cells: list[str]) -> np.ndarray:
    """Per-draw log importance ratio (S,): the log likelihood of ``cells``' runs under the
    ``new`` inputs minus under the ``old`` ones (the rest of the model does not change)."""
    return _cell_log_lik(d, new, cells) - _cell_log_lik(d, old, cells)


def psis_weights(log_ratios: np.ndarray) -> tuple[np.ndarray, float]:
    """Normalised Pareto-smoothed importance weights proportional to exp(log_ratios), and
    the Pareto k-hat. (arviz-stats' ``psislw`` takes log likelihoods, as in PSIS-LOO, whose
    weights are 1 / likelihood: it is given the negated ratios.)"""
    log_w, khat = array_stats.psislw(-np.asarray(log_ratios, dtype=float))
    w = np.exp(log_w - log_w.max())
    return w / w.sum(), float(khat)


def _resample(post: xr.Dataset, order: np.ndarray) -> xr.Dataset:
    """The draws at flat (chain, draw) positions ``order``, in the same (chain, draw) shape."""
    out = {}
    for name, da in post.data_vars.items():
        da = da.transpose("chain", "draw", ...)
        flat = da.to_numpy().reshape(-1, *da.shape[2:])[order]
        out[name] = da.copy(data=flat.reshape(da.shape))
    return xr.Dataset(out, attrs=post.attrs)


def _combined(old: Sweep, runs: Sweep | pd.DataFrame) -> Sweep:
    new = runs if isinstance(runs, Sweep) else from_frame(runs, source="<new runs>")
    return concat_sweeps([old, new])


def _why_not(old: ModelInputs, new: ModelInputs, spec, cells: list[str]) -> str:
    """Why the combined sweep cannot be reached by reweighting ('' if it can)."""
    added = sorted(set(new.cells.index) - set(old.cells.index))
    if added:
        return f"new cell(s) {added[:3]}"
    if structure_key(old, spec) != structure_key(new, spec):
        return "the model's structure changes"
    design = ["has_wd", "has_batch"]
    changed = [c for c in cells
               if not old.cells.loc[c, design].equals(new.cells.loc[c, design])]
    return f"cell(s) {changed[:3]} start to vary batch or weight decay" if changed else ""


def reweight_posterior(posterior: xr.DataTree, runs: Sweep | pd.DataFrame, *,
                       khat_max: float = KHAT_MAX, seed: int = 0) -> Update:
    """The posterior of the fitted sweep plus ``runs`` by PSIS reweighting (module doc).

    ``runs``: a validated :class:`Sweep` or a table in the canonical columns. Returns an
    :class:`Update` whose ``posterior`` is None where reweighting cannot be trusted.
    """
    start = time.perf_counter()
    spec = posterior_spec(posterior)
    fitted = fitted_sweep(posterior)
    sweep = _combined(fitted, runs)
    old = prepare_inputs(fitted, window=spec.window)
    new = prepare_inputs(sweep, window=spec.window)
    cells = sorted(set(sweep.runs["cell"].iloc[len(fitted.runs):]))
    reason = _why_not(old, new, spec, cells)
    if reason:
        return Update(None, tuple(cells), np.nan, np.nan, reason)
    d = Draws.from_posterior(posterior, None, seed)
    w, khat = psis_weights(log_ratio(d, old, new, cells))
    ess = float(1.0 / (w**2).sum())
    if not khat <= khat_max:
        return Update(None, tuple(cells), khat, ess,
                      f"PSIS k-hat {khat:.2f} > {khat_max}: the new runs move the posterior "
                      "too far for reweighting")
    order = d.index[np.random.default_rng(seed).choice(d.n, size=d.n, p=w)]
    tree = xr.DataTree.from_dict({
        "posterior": _resample(posterior["posterior"].to_dataset(), order),
        "sample_stats": posterior["sample_stats"].to_dataset()})
    tree = package_posterior(tree, sweep, spec, new, seed=int(posterior.attrs.get("seed", 0)),
                             seconds=time.perf_counter() - start)
    # resampled draws lose their chains' autocorrelation, so their own R-hat and ESS would
    # look better than the information they hold: keep the sampled fit's diagnostics
    note = f"reweighted by new runs: PSIS k-hat {khat:.2f}, weights ESS {ess:.0f}"
    tree.attrs.update(update_khat=khat, update_ess=ess, update_cells=", ".join(cells),
                      updated_from=str(posterior.attrs.get("draws_sha256", "")),
                      diagnostics=f"{posterior.attrs.get('diagnostics', '')}; {note}",
                      diagnostics_ok=int(posterior.attrs.get("diagnostics_ok", 1)))
    return Update(tree, tuple(cells), khat, ess, "")


def update_posterior(posterior: xr.DataTree, runs: Sweep | pd.DataFrame, *,
                     khat_max: float = KHAT_MAX, seed: int = 0,
                     refit: Callable[..., xr.DataTree] = fit) -> Update:
    """:func:`reweight_posterior`, and a full refit (``refit(sweep, spec, seed=seed)``) of
    the combined sweep where reweighting cannot be trusted."""
    out = reweight_posterior(posterior, runs, khat_max=khat_max, seed=seed)
    if out.posterior is not None:
        return out
    spec = posterior_spec(posterior)
    refitted = refit(_combined(fitted_sweep(posterior), runs), spec, seed=seed)
    return Update(refitted, out.cells, out.khat, out.ess, out.reason, refitted=True)
