"""Every cell's effects per posterior draw, fitted or not: its optimum, loss at the optimum,
curvature, skew and noise. A fitted cell uses its own draws; a new cell is the law at its
(N, D) plus residuals drawn from the hierarchy (:func:`bayes_scaling.predict.draws
.new_cell_draws`), so its law part comes from the same draw of the law parameters as any
other new cell or target of the same draws."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_scaling.predict.draws import Draws, new_cell_draws

OPT_NAMES = {"lr": "log_lr_opt", "batch": "log_batch_opt",
             "weight_decay": "log_weight_decay_opt"}
"""Dim of the bowl -> the model variable of its log optimum."""


@dataclass(frozen=True)
class CellEffects:
    """One cell's effects per draw: opt (S, M, k) log lr/batch[/wd] optima, loss_opt (S, M),
    chol_diag (S, M, k), chol_offdiag (S, k(k-1)/2), skew (S,), noise (S,); M = 1 for an
    existing cell (its posterior draws), M inner residual samples for a new cell."""

    key: tuple
    existing: bool
    opt: np.ndarray
    loss_opt: np.ndarray
    chol_diag: np.ndarray
    chol_offdiag: np.ndarray
    skew: np.ndarray
    noise: np.ndarray
    best_loss: float
    """The cell's best observed loss (inf for a new cell); its window edge is (1 + w) x this."""


def existing_cell(d: Draws, cell: str) -> CellEffects:
    """Effects of a fitted cell from its own posterior draws."""
    row = d.cells.loc[cell]
    opt = np.stack([d.get(OPT_NAMES[q], cell=cell) for q in d.dims], axis=-1)[:, None, :]
    skew = (d.get("skew_cell", cell=cell) if "skew_cell" in d.post
            else d.skew(row["arch"], float(row["n_tokens"])))
    return CellEffects(
        key=(row["arch"], row["data_mix"], float(row["n_params"]), float(row["n_tokens"])),
        existing=True, opt=opt, loss_opt=d.get("loss_opt", cell=cell)[:, None],
        chol_diag=d.get("chol_diag", cell=cell)[:, None, :],
        chol_offdiag=d.get("chol_offdiag", arch=row["arch"]), skew=skew,
        noise=d.get("noise", arch=row["arch"]), best_loss=float(row["best_loss"]))


def new_cell(d: Draws, arch: str, mix: str, n_params: float, n_tokens: float,
             n_inner: int, n_params_total: float = np.nan) -> CellEffects:
    """Effects of an unfitted cell: the law from each draw plus ``n_inner`` residual samples
    (:func:`bayes_scaling.predict.draws.new_cell_draws`)."""
    e = new_cell_draws(d, arch, mix, n_params, n_tokens, n_inner, n_params_total)
    return CellEffects(key=(arch, mix, float(n_params), float(n_tokens)), existing=False,
                       opt=np.stack([e[OPT_NAMES[q]] for q in d.dims], axis=-1),
                       loss_opt=np.exp(e["log_loss_opt"]), chol_diag=e["chol_diag"],
                       chol_offdiag=e["chol_offdiag"], skew=e["skew"], noise=e["noise"],
                       best_loss=np.inf)


def match_cells(d: Draws, table: pd.DataFrame, rtol: float = 1e-3) -> pd.Series:
    """The fitted cell id of each row (arch, data_mix, n_params, n_tokens[, seq_len]) or ''."""
    cells = d.cells
    out = pd.Series("", index=table.index, dtype=object)
    for cid, c in cells.iterrows():
        hit = ((table["arch"] == c["arch"]) & (table["data_mix"] == c["data_mix"])
               & (np.abs(np.log(table["n_params"] / c["n_params"])) < rtol)
               & (np.abs(np.log(table["n_tokens"] / c["n_tokens"])) < rtol))
        if "seq_len" in table:
            hit &= table["seq_len"] == int(c["seq_len"])
        out[hit] = cid
    return out


def cell_optimum(effects: CellEffects) -> np.ndarray:
    """Posterior (predictive) median of a cell's log optimum, (k,)."""
    return np.median(effects.opt.reshape(-1, effects.opt.shape[-1]), axis=0)
