"""The posterior predictive final loss of given runs: the bowl of each run's cell (its own
draws for a fitted cell, the law plus new residuals for a new one) at the run's settings,
plus the observation noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.model import core
from bayes_scaling.predict.cells import existing_cell, match_cells, new_cell
from bayes_scaling.predict.draws import Draws, as_targets, positive_columns
from bayes_scaling.predict.predict import INTERVALS

RUN_COLUMNS = ("arch", "data_mix", "n_params", "n_tokens", "lr", "batch_tokens")

__all__ = ["LossPrediction", "predict_loss"]


@dataclass(frozen=True)
class LossPrediction:
    """draws: (sample, run) predictive final loss (noise included); mean_loss: the same
    without the noise; summary: one row per input run (its columns, then new_cell, mean,
    median, lo50, hi50, lo90, hi90)."""

    draws: xr.DataArray
    mean_loss: xr.DataArray
    summary: pd.DataFrame


def _runs(runs: pd.DataFrame | dict) -> pd.DataFrame:
    df = as_targets(runs)
    positive_columns(df, ("lr", "batch_tokens"), "runs")
    wd = pd.to_numeric(df["weight_decay"], errors="coerce") if "weight_decay" in df else np.nan
    df["weight_decay"] = pd.Series(wd, index=df.index, dtype=float)
    return df


def predict_loss(posterior: xr.DataTree, runs: pd.DataFrame | dict, *,
                 n_draws: int | None = 1000, seed: int = 0) -> LossPrediction:
    """Posterior predictive final loss of each run (arch, data_mix, n_params, n_tokens, lr,
    batch_tokens[, weight_decay, seq_len]).

    A run in a fitted cell (same arch, mix, N, D) uses that cell's draws; any other run a new
    cell (the law plus its residuals, one per draw, shared by the runs of that cell). Weight
    decay missing (or a fit without a weight-decay dim): at the cell's optimum. Student-t or
    Normal noise as the spec's likelihood. Runs past the divergence edge are not flagged: the
    bowl is extrapolated.
    """
    table = _runs(runs)
    d = Draws.from_posterior(posterior, n_draws, seed)
    d.check_archs(table)
    table["cell_id"] = match_cells(d, table).to_numpy()
    k = len(d.dims)
    mean, draws = np.empty((d.n, len(table))), np.empty((d.n, len(table)))
    keys = table[["cell_id", "arch", "data_mix", "n_params", "n_tokens"]].astype(str).agg(
        "/".join, axis=1)
    for _, rows in table.groupby(keys, sort=False):
        r, at = rows.iloc[0], rows.index.to_numpy()
        eff = (existing_cell(d, r["cell_id"]) if r["cell_id"] else
               new_cell(d, r["arch"], r["data_mix"], float(r["n_params"]),
                        float(r["n_tokens"]), 1, float(r.get("n_params_total", np.nan))))
        u = np.log(rows[["lr", "batch_tokens", "weight_decay"]].to_numpy(float))[:, :k]
        delta = u[None, :, :] - eff.opt[:, 0, None, :]  # (S, runs of the cell, k)
        if k == 3:  # no weight decay given: at the cell's optimum
            delta[..., 2] = np.where(np.isnan(delta[..., 2]), 0.0, delta[..., 2])
        mean[:, at] = core.bowl_loss_array(eff.loss_opt[:, 0, None], delta,
                                           eff.chol_diag[:, 0, None, :],
                                           eff.chol_offdiag[:, None, :], eff.skew[:, None])
        rng = np.random.default_rng([seed, int(at[0])])
        eps = (rng.standard_t(d.spec.nu, size=(d.n, len(at)))
               if d.spec.likelihood == "student_t" else rng.standard_normal((d.n, len(at))))
        draws[:, at] = mean[:, at] + eff.noise[:, None] * eps
    coords = {"run": np.arange(len(table))}
    qs = np.quantile(draws, list(INTERVALS.values()), axis=0)
    summary = table.assign(new_cell=table["cell_id"].eq("").to_numpy(), mean=draws.mean(axis=0),
                           **dict(zip(INTERVALS, qs, strict=True)))
    return LossPrediction(
        draws=xr.DataArray(draws, dims=("sample", "run"), coords=coords, name="loss"),
        mean_loss=xr.DataArray(mean, dims=("sample", "run"), coords=coords, name="mean_loss"),
        summary=summary.drop(columns=["cell_id"]))
