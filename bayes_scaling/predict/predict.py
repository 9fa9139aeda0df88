"""Posterior predictive optima at target scales: lr, batch, weight decay and loss.

``predict(posterior, targets)`` turns the posterior predictive effects of a NEW cell at each
target (:func:`bayes_scaling.predict.draws.draw_new_cells`: the law plus its cell-level scatter,
unseen mixes drawn from their population) into optima in natural units, with a tidy summary.
A target row may fix the batch size (hardware often does): the lr (and weight decay) that
minimise each draw's bowl at that batch are then returned too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.errors import TargetError
from bayes_scaling.model import core
from bayes_scaling.predict.draws import SAMPLE_DIMS, as_targets, draw_new_cells

DEFAULT_SEQ_LEN = 2048
QUANTITIES = ("lr_opt", "batch_tokens_opt", "batch_seqs_opt", "weight_decay_opt", "tau_opt",
              "loss_opt")
AT_BATCH = ("lr_opt_at_batch", "weight_decay_opt_at_batch", "loss_opt_at_batch")
INTERVALS = {"lo90": 0.05, "lo50": 0.25, "median": 0.5, "hi50": 0.75, "hi90": 0.95}
SUMMARY_COLUMNS = ("target", "arch", "data_mix", "n_params", "n_tokens", "seq_len",
                   "batch_tokens", "quantity", "median", "mean", "lo50", "hi50", "lo90", "hi90")

__all__ = ["Prediction", "TargetError", "conditional_optimum", "curvature", "optimum_at_batch",
           "predict", "prediction_targets"]


@dataclass(frozen=True)
class Prediction:
    """Posterior predictive optima at the targets.

    draws: dims (chain, draw, target): lr_opt, batch_tokens_opt, batch_seqs_opt,
        weight_decay_opt, tau_opt, loss_opt and their ``log_`` versions; with a given batch,
        lr_opt_at_batch, weight_decay_opt_at_batch, loss_opt_at_batch (NaN for targets
        without one). The target table is in coords.
    summary: one row per target x quantity: median, mean, lo50, hi50, lo90, hi90.
    cells: the new-cell draws behind them (curvature, skew, noise: what regret needs).
    """

    draws: xr.Dataset
    summary: pd.DataFrame
    cells: xr.Dataset


def prediction_targets(targets: pd.DataFrame | dict) -> pd.DataFrame:
    """Validated target rows: arch, data_mix, n_params, n_tokens, seq_len (default 2048) and
    batch_tokens (NaN: free)."""
    df = as_targets(targets)
    for col, default in (("seq_len", DEFAULT_SEQ_LEN), ("batch_tokens", np.nan)):
        given = df[col].notna() if col in df else pd.Series(False, index=df.index)
        vals = pd.to_numeric(df[col], errors="coerce") if col in df else pd.Series(
            np.nan, index=df.index, dtype=float)
        bad = np.flatnonzero(given & ~(vals > 0))
        if len(bad):
            raise TargetError(f"targets: column '{col}' must be a positive number (or empty), "
                              f"rows {bad.tolist()}")
        df[col] = vals.where(given, default).astype(float)
    return df


def curvature(cells: xr.Dataset) -> xr.DataArray:
    """Each draw's bowl curvature H = C C^T (..., dim_row, dim_col) in stretched log space."""
    c = core.chol_matrix(cells["chol_diag"].to_numpy(), cells["chol_offdiag"].to_numpy())
    h = np.einsum("...ij,...kj->...ik", c, c)
    dims = list(cells["chol_diag"].dims)[:-1]
    names = cells["dim"].to_numpy()
    return xr.DataArray(h, dims=(*dims, "dim_row", "dim_col"),
                        coords={"dim_row": names, "dim_col": names})


def conditional_optimum(h: np.ndarray, fixed: dict[int, np.ndarray]
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Minimise 1/2 x^T H x over the free coordinates with ``fixed`` ({index: value}).

    Returns (x (..., k) at the minimum, fixed values included; the minimum of 1/2 x^T H x).
    Solves H_FF x_F = -H_Fx x_x; H positive definite makes the minimum unique.
    """
    k = h.shape[-1]
    fix = sorted(fixed)
    free = [i for i in range(k) if i not in fixed]
    batch = np.broadcast_shapes(h.shape[:-2], *(np.shape(v) for v in fixed.values()))
    h = np.broadcast_to(h, (*batch, k, k))
    x_fix = np.stack([np.broadcast_to(np.asarray(fixed[i], dtype=float), batch) for i in fix],
                     axis=-1)
    x = np.zeros((*batch, k))
    x[..., fix] = x_fix
    if free:
        h_ff = h[..., free, :][..., :, free]
        h_fx = h[..., free, :][..., :, fix]
        rhs = -np.einsum("...ij,...j->...i", h_fx, x_fix)
        x[..., free] = np.linalg.solve(h_ff, rhs[..., None])[..., 0]
    quad = 0.5 * np.einsum("...i,...ij,...j->...", x, h, x)
    return x, quad


def optimum_at_batch(cells: xr.Dataset, log_batch: xr.DataArray | float) -> xr.Dataset:
    """lr (and weight decay) minimising each draw's bowl at a fixed log batch (tokens).

    ``cells`` are new-cell draws (:func:`~bayes_scaling.predict.draws.draw_new_cells`, any target
    selection); ``log_batch`` broadcasts against them (per target, or per draw). With a
    weight-decay dim, lr and wd are minimised jointly (:func:`conditional_optimum` in the
    stretched coordinates, then the skew stretch undone); without one, wd follows the AdamW
    timescale law at the conditional lr and the given batch. Returns log_lr_opt_at_batch,
    log_weight_decay_opt_at_batch and log_loss_opt_at_batch (the best loss at that batch).
    """
    h = curvature(cells)
    outer = list(cells["log_lr_opt"].dims)
    h = h.transpose(*outer, "dim_row", "dim_col")
    like = cells["log_lr_opt"]
    d_b = (log_batch - cells["log_batch_opt"]).transpose(*outer)
    x, quad = conditional_optimum(h.to_numpy(), {1: d_b.to_numpy()})
    log_lr = like + core.unstretch_lr(x[..., 0], cells["skew"].transpose(*outer).to_numpy())
    if h.sizes["dim_row"] == 3:
        log_wd = cells["log_weight_decay_opt"] + like.copy(data=x[..., 2])
    else:
        log_wd = core.log_weight_decay(cells["log_tau_opt"], log_lr, log_batch,
                                       np.log(cells["n_tokens"]))
    log_loss = np.log(np.exp(cells["log_loss_opt"]) + like.copy(data=quad))
    return xr.Dataset({"log_lr_opt_at_batch": log_lr,
                       "log_weight_decay_opt_at_batch": log_wd.transpose(*outer),
                       "log_loss_opt_at_batch": log_loss})


def _summarise(draws: xr.Dataset, targets: pd.DataFrame) -> pd.DataFrame:
    names = [q for q in (*QUANTITIES, *AT_BATCH) if q in draws]
    rows = []
    for t, row in targets.iterrows():
        for q in names:
            v = draws[q].isel(target=t).to_numpy().ravel()
            if not np.isfinite(v).all():
                continue
            qs = np.quantile(v, list(INTERVALS.values()))
            rows.append({**{c: row[c] for c in SUMMARY_COLUMNS[1:7]}, "target": t,
                         "quantity": q, "mean": float(v.mean()),
                         **dict(zip(INTERVALS, qs.tolist(), strict=True))})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def predict(posterior: xr.DataTree, targets: pd.DataFrame | dict, seed: int = 0) -> Prediction:
    """Posterior predictive optima at each target row.

    Args:
        posterior: a fitted posterior (:func:`bayes_scaling.model.fit.fit` / ``load_posterior``).
        targets: rows of arch, data_mix (default 'default'), n_params (active, non-embedding),
            n_tokens, and optionally seq_len (default 2048; converts tokens to sequences) and
            batch_tokens (a batch the run must use: adds the ``*_at_batch`` quantities).
        seed: seeds the new cells' effects (cell scatter, unseen mixes).
    """
    targets = prediction_targets(targets)
    cells = draw_new_cells(posterior, targets, seed=seed)
    seq = xr.DataArray(targets["seq_len"].to_numpy(), dims="target")
    logs = {"lr_opt": cells["log_lr_opt"], "batch_tokens_opt": cells["log_batch_opt"],
            "batch_seqs_opt": cells["log_batch_opt"] - np.log(seq),
            "weight_decay_opt": cells["log_weight_decay_opt"], "tau_opt": cells["log_tau_opt"],
            "loss_opt": cells["log_loss_opt"]}
    batch = targets["batch_tokens"].to_numpy()
    if np.isfinite(batch).any():
        at = optimum_at_batch(cells, xr.DataArray(np.log(batch), dims="target"))
        logs.update({q: at[f"log_{q}"] for q in AT_BATCH})
    draws = xr.Dataset()
    for name, log in logs.items():
        log = log.transpose(*SAMPLE_DIMS, "target")
        draws[f"log_{name}"] = log
        draws[name] = np.exp(log)
    coords = {c: ("target", targets[c].to_numpy()) for c in SUMMARY_COLUMNS[1:7]}
    draws = draws.assign_coords(**coords).assign_attrs(
        seed=seed, dims=cells.attrs["dims"],
        targets=json.dumps(targets[list(SUMMARY_COLUMNS[1:7])].to_dict(orient="records")),
        units="lr: peak AdamW lr; batch in tokens (batch_seqs: sequences of seq_len); "
              "weight decay: decoupled AdamW lambda; tau = B / (lr lambda D)")
    return Prediction(draws=draws, summary=_summarise(draws, targets), cells=cells)
