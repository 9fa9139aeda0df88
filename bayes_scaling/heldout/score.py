"""Scores of one held-out cell: the predictive of its optimum and of its runs' losses against
what the cell's own runs say (:func:`bayes_scaling.heldout.reference.cell_optimum`).

Pure numpy on draws: the refit and the predictions happen in
:mod:`bayes_scaling.heldout.loco`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.heldout.reference import cell_optimum, reference_noise, regret_pct
from bayes_scaling.model import core

LEVELS = (0.5, 0.8, 0.9)
"""Central interval probabilities whose coverage is scored."""
OPTIMA = {"lr": "log_lr_opt", "batch": "log_batch_tokens_opt"}
"""Scored optimum -> its log draws in a prediction (:class:`~bayes_scaling.predict.predict
.Prediction` draws)."""

__all__ = ["LEVELS", "OPTIMA", "pit", "run_table", "score_cell", "score_optimum"]


def pit(draws: np.ndarray, value: Any, axis: int = 0) -> np.ndarray:
    """Probability integral transform: the share of ``draws`` (along ``axis``) below
    ``value``, ties counted half. Uniform on [0, 1] when the predictive is calibrated."""
    draws = np.asarray(draws, dtype=float)
    value = np.expand_dims(np.asarray(value, dtype=float), axis)
    return np.mean(draws < value, axis=axis) + 0.5 * np.mean(draws == value, axis=axis)


def score_optimum(name: str, log_draws: np.ndarray, log_ref: float,
                  ref_noise: np.ndarray | None = None, seed: int = 0) -> dict[str, Any]:
    """One optimum's scores: the reference and the predictive median (natural units), the
    PIT of the reference, and per level of :data:`LEVELS` the equal-tailed interval, whether
    it contains the reference, and its width in log units. Keys are prefixed ``name_``.

    With ``ref_noise`` (bootstrap deviations of the reference,
    :func:`~bayes_scaling.heldout.reference.reference_noise`), the PIT and ``_in`` ask of the
    predictive of the reference: each model draw plus a noise draw picked at random (seeded).
    The model's own interval and whether it contains the reference are kept as ``_lo``,
    ``_hi``, ``_in{pct}_point``; ``_ref_sd`` is the noise's sd."""
    log_draws = np.asarray(log_draws, dtype=float).ravel()
    judged = log_draws
    out: dict[str, Any] = {f"{name}_ref": float(np.exp(log_ref)),
                           f"{name}_pred": float(np.exp(np.median(log_draws)))}
    if ref_noise is not None and len(ref_noise):
        rng = np.random.default_rng(seed)
        judged = log_draws + rng.choice(np.asarray(ref_noise, dtype=float), len(log_draws))
        out[f"{name}_ref_sd"] = float(np.std(ref_noise))
    out[f"{name}_pit"] = float(pit(judged, log_ref))
    for level in LEVELS:
        tails = [(1 - level) / 2, (1 + level) / 2]
        lo, hi = np.quantile(log_draws, tails)
        jlo, jhi = np.quantile(judged, tails)
        pct = round(100 * level)
        out |= {f"{name}_lo{pct}": float(np.exp(lo)), f"{name}_hi{pct}": float(np.exp(hi)),
                f"{name}_in{pct}": bool(jlo <= log_ref <= jhi),
                f"{name}_in{pct}_point": bool(lo <= log_ref <= hi),
                f"{name}_width{pct}_log": float(hi - lo)}
    return out


def run_table(runs: pd.DataFrame, loss_draws: np.ndarray, window: float) -> pd.DataFrame:
    """Per held-out run: the PIT of its loss under ``loss_draws`` (samples, runs) and the
    predictive median and 90% interval. Runs the fit would censor (diverged, or above the
    window edge (1 + window) x the cell's best loss: the bowl is not meant to hold there)
    get no PIT (``censored`` True, ``pit`` NaN)."""
    loss = runs["loss"].to_numpy(float)
    ok = (runs["status"] == "ok").to_numpy()
    best = np.min(loss[ok & np.isfinite(loss)], initial=np.inf)
    censored = core.is_censored(loss, ok, core.window_edge(best, window))
    lo, med, hi = np.quantile(loss_draws, [0.05, 0.5, 0.95], axis=0)
    cols = ["run_id", "lr", "batch_tokens", "weight_decay", "loss", "status"]
    return runs[cols].reset_index(drop=True).assign(
        censored=censored, pit=np.where(censored, np.nan, pit(loss_draws, loss)),
        pred_median=med, pred_lo90=lo, pred_hi90=hi)


def score_cell(draws: xr.Dataset, runs: pd.DataFrame, loss_draws: np.ndarray,
               window: float, seed: int = 0) -> tuple[dict[str, Any], pd.DataFrame]:
    """Scores of a held-out cell from the predictive ``draws`` of its optimum (one target:
    log_lr_opt, log_batch_tokens_opt, loss_opt) and ``loss_draws`` (samples, runs) of its
    ``runs``' losses.

    Returns the cell's row: the reference optimum (method, problems), per optimum
    :func:`score_optimum` allowing for the reference's own bootstrap noise (seeded by
    ``seed``), ``regret_pct`` (loss increase of the predicted median (lr, batch) on the
    cell's quadratic, % of its minimum), ``loss_err_pct`` (predicted median optimal
    loss vs the quadratic's minimum, %), ``loss_pit``, ``run_pit_mean``; and the
    :func:`run_table`.
    """
    ref = cell_optimum(runs)
    row: dict[str, Any] = {"ref_method": ref["method"], "ref_n_fit": ref["n_fit"],
                           "ref_bracketed": bool(ref["bracketed_by_window"]),
                           "ref_problems": "; ".join(ref["problems"])}
    noise = reference_noise(runs, seed)
    for j, (name, var) in enumerate(OPTIMA.items()):
        row |= score_optimum(name, draws[var].to_numpy(), ref[f"log_{name}"], noise[:, j],
                             seed)
    row["regret_pct"] = regret_pct(ref, row["lr_pred"], row["batch_pred"])
    loss_opt = draws["loss_opt"].to_numpy().ravel()
    row["loss_ref"] = float(ref["loss"])
    row["loss_pred"] = float(np.median(loss_opt))
    row["loss_err_pct"] = 100.0 * (row["loss_pred"] - ref["loss"]) / ref["loss"]
    row["loss_pit"] = float(pit(loss_opt, ref["loss"]))
    table = run_table(runs, loss_draws, window)
    row["n_runs_pit"] = int(table["pit"].notna().sum())
    row["run_pit_mean"] = float(table["pit"].mean())
    return row, table
