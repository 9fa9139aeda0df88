"""Model inputs: a validated sweep turned into log-space arrays, coords and the censoring rule.

Each run enters the likelihood in one of two ways: as a point on the bowl (its loss is within
the fit window, ``loss <= (1 + window) * the cell's best loss``), or censored at the window
edge (diverged runs and runs above the window: we only learn ``loss > edge``). A run is
excluded only when its cell has no finite loss at all (there is no edge to censor against);
the reason is listed in :attr:`ModelInputs.excluded`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_scaling.data import Sweep
from bayes_scaling.errors import SweepError
from bayes_scaling.model import core

DIMS_2D = ("lr", "batch")
DIMS_3D = ("lr", "batch", "weight_decay")


@dataclass(frozen=True)
class ModelInputs:
    """Everything :func:`bayes_scaling.model.graph.build_model` needs, labelled."""

    runs: pd.DataFrame
    """One row per run in the likelihood: run_id, cell, cell_idx, log_lr, log_batch, log_wd,
    wd_mask, batch_mask, loss, censored, edge. A mask is 0 where the run's cell does not vary
    that setting: the run then sits at the cell's optimum in it (the cell cannot place its
    optimum or curvature there, which left a curved ridge between L* and the batch excess)."""
    cells: pd.DataFrame
    """One row per cell (index: cell id): arch, data_mix, n_params, n_tokens, seq_len,
    arch_idx, mix_idx, x_n, x_d, x_tpp, x_n_total (centred log covariates; x_n_total: the
    size of the lr and batch laws, :func:`core.size_of`), best_loss, edge, has_wd,
    has_batch, n_params_total (NaN: not given), config ('' for a dense cell), config_idx
    (-1 for none) and thin (fewer runs inside the window than :func:`bowl_unknowns`)."""
    archs: tuple[str, ...]
    mixes: tuple[str, ...]
    configs: tuple[str, ...]
    """Sparse (MoE) configurations: cells whose total parameters exceed their active ones
    (:func:`config_label`)."""
    dims: tuple[str, ...]
    x_n_centre: float
    """Mean over cells of log(N / N_REF); x_n = log(N / N_REF) - x_n_centre."""
    x_d_centre: float
    x_tpp_centre: float
    excluded: pd.DataFrame
    """Rows left out of the likelihood: run_id, row, cell, reason."""
    window: float
    data_hash: str

    @property
    def coords(self) -> dict[str, list[str]]:
        """Model coords: arch, mix, cell, dim, offdiag, run_obs, run_cens[, config]."""
        k = len(self.dims)
        offdiag = [f"{self.dims[i]}~{self.dims[j]}" for i in range(1, k) for j in range(i)]
        obs = self.runs[~self.runs["censored"]]
        cens = self.runs[self.runs["censored"]]
        coords = {"arch": list(self.archs), "mix": list(self.mixes),
                  "cell": list(self.cells.index), "dim": list(self.dims), "offdiag": offdiag,
                  "run_obs": list(obs["run_id"]), "run_cens": list(cens["run_id"])}
        return coords | ({"config": list(self.configs)} if self.configs else {})


TOTAL_COLUMN = "n_params_total"
"""Optional column of a sweep (and of targets): total parameters of a sparse (MoE) model whose
``n_params`` are its active ones."""


def config_label(arch: str, n_params: float, n_params_total: float) -> str:
    """The configuration of a sparse model, e.g. ``'moe|Na=1.24e+09|N=2.16e+09'``; '' for a
    dense one (total not given, or not above the active parameters)."""
    if not (np.isfinite(n_params_total) and n_params_total > n_params * (1 + 1e-6)):
        return ""
    return f"{arch}|Na={float(n_params):.4g}|N={float(n_params_total):.4g}"


def largest_sparsity(cells: pd.DataFrame, arch: str) -> float:
    """Total / active parameters of the arch's sparse configuration with the most active
    parameters, in a cell table (with n_params, n_params_total and config); NaN where the
    arch has none."""
    if TOTAL_COLUMN not in cells or "config" not in cells:
        return np.nan
    mine = cells[(cells["arch"] == arch) & (cells["config"] != "")]
    if not len(mine):
        return np.nan
    top = mine.loc[mine["n_params"].idxmax()]
    return float(top[TOTAL_COLUMN] / top["n_params"])


def _totals(runs: pd.DataFrame) -> pd.Series:
    """Each cell's total parameters (NaN where not given); a cell whose runs give different
    totals is a :class:`SweepError` naming it."""
    if TOTAL_COLUMN not in runs:
        return pd.Series(np.nan, index=runs["cell"].unique(), dtype=float)
    total = pd.to_numeric(runs[TOTAL_COLUMN], errors="coerce")
    by_cell = total.groupby(runs["cell"])
    distinct = by_cell.nunique(dropna=False)
    mixed = distinct.index[distinct > 1].tolist()
    if mixed:
        raise SweepError(f"column '{TOTAL_COLUMN}': runs of one cell give different total "
                         f"parameters, cells {mixed[:5]}")
    return by_cell.first()


def _cell_table(runs: pd.DataFrame, window: float) -> pd.DataFrame:
    finite = runs[np.isfinite(runs["loss"]) & (runs["status"] == "ok")]
    best = finite.groupby("cell")["loss"].min()
    first = runs.groupby("cell", sort=False)[["arch", "data_mix", "n_params", "n_tokens",
                                               "seq_len"]].first()
    wd = runs.assign(log_wd=np.log(runs["weight_decay"])).dropna(subset=["log_wd"])
    has_wd = wd.groupby("cell")["log_wd"].nunique() >= 2
    has_batch = runs.groupby("cell")["batch_tokens"].nunique() >= 2
    cells = first.assign(best_loss=best.reindex(first.index),
                         has_wd=has_wd.reindex(first.index, fill_value=False).astype(bool),
                         has_batch=has_batch.reindex(first.index, fill_value=False))
    cells["edge"] = core.window_edge(cells["best_loss"], window)
    cells[TOTAL_COLUMN] = _totals(runs).reindex(cells.index).to_numpy(float)
    cells["config"] = [config_label(a, n, t) for a, n, t in
                       zip(cells["arch"], cells["n_params"], cells[TOTAL_COLUMN], strict=True)]
    return cells


def bowl_unknowns(k: int) -> int:
    """What a cell's runs would have to pin down alone in a k-dimensional bowl: L*, the
    optimum (k), the full curvature (k(k+1)/2), the lr skew and the noise."""
    return 1 + k + k * (k + 1) // 2 + 2


def prepare_inputs(sweep: Sweep, window: float = core.DEFAULT_WINDOW,
                   archs: tuple[str, ...] | None = None,
                   mixes: tuple[str, ...] | None = None) -> ModelInputs:
    """Turn ``sweep`` into model inputs with the censoring ``window``.

    ``archs``/``mixes`` fix the label order (default: sorted labels in the sweep).
    """
    runs = sweep.runs
    cells = _cell_table(runs, window)
    archs = tuple(archs or sorted(cells["arch"].unique()))
    mixes = tuple(mixes or sorted(cells["data_mix"].unique()))
    no_edge = cells.index[cells["edge"].isna()]
    drop = runs["cell"].isin(no_edge)
    excluded = pd.DataFrame({
        "run_id": runs.loc[drop, "run_id"], "row": runs.index[drop],
        "cell": runs.loc[drop, "cell"],
        "reason": "cell has no finite loss: no window edge to censor against"})
    cells = cells.drop(index=no_edge)
    log_n, log_d, log_tpp = core.log_scale(cells["n_params"].to_numpy(float),
                                           cells["n_tokens"].to_numpy(float))
    centres = (float(log_n.mean()), float(log_d.mean()), float(log_tpp.mean()))
    configs = tuple(sorted(c for c in cells["config"].unique() if c))
    cells = cells.assign(
        config_idx=[configs.index(c) if c else -1 for c in cells["config"]],
        arch_idx=[archs.index(a) for a in cells["arch"]],
        mix_idx=[mixes.index(m) for m in cells["data_mix"]],
        x_n=log_n - centres[0], x_d=log_d - centres[1], x_tpp=log_tpp - centres[2],
        x_n_total=core.log_scale(core.size_of("lr", cells["n_params"], cells[TOTAL_COLUMN]),
                                 1.0)[0] - centres[0])

    kept = runs[~drop]
    cell_of = kept["cell"].to_numpy()
    edge = cells["edge"].reindex(cell_of).to_numpy()
    loss = kept["loss"].to_numpy(float)
    ok = np.isfinite(loss) & (kept["status"].to_numpy() == "ok")
    wd = kept["weight_decay"].to_numpy(float)
    has_wd = cells["has_wd"].reindex(cell_of).to_numpy()
    wd_mask = has_wd & np.isfinite(wd) & (wd > 0)
    table = pd.DataFrame({
        "run_id": kept["run_id"].to_numpy(), "cell": cell_of,
        "cell_idx": cells.index.get_indexer(cell_of),
        "log_lr": np.log(kept["lr"].to_numpy(float)),
        "log_batch": np.log(kept["batch_tokens"].to_numpy(float)),
        "log_wd": np.where(wd_mask, np.log(np.where(wd_mask, wd, 1.0)), 0.0),
        "wd_mask": wd_mask.astype(float),
        "batch_mask": cells["has_batch"].reindex(cell_of).to_numpy(float),
        "loss": np.where(ok, loss, edge), "censored": core.is_censored(loss, ok, edge),
        "edge": edge,
    }, index=kept.index)
    dims = DIMS_3D if bool(cells["has_wd"].any()) else DIMS_2D
    in_window = table[~table["censored"]].groupby("cell_idx").size()
    in_window = in_window.reindex(range(len(cells)), fill_value=0).to_numpy()
    cells["thin"] = in_window < bowl_unknowns(len(dims))
    return ModelInputs(runs=table, cells=cells, archs=archs, mixes=mixes, configs=configs,
                       dims=dims,
                       x_n_centre=centres[0], x_d_centre=centres[1], x_tpp_centre=centres[2],
                       excluded=excluded.reset_index(drop=True), window=window,
                       data_hash=sweep.data_hash())
