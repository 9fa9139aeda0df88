"""Per-cell figures: the loss landscape over (lr, batch) with the runs, the fitted bowl and
the optimum's credible region."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from bayes_scaling.model import core
from bayes_scaling.model.fit import posterior_cells, posterior_runs
from bayes_scaling.present.plots_common import (
    LABELS,
    ellipse,
    fmt_sci,
    group_label,
    log_axes,
    new_figure,
    thin,
)

CMAP = "viridis"


def _cell_skew(post: xr.Dataset, cell: str, arch: str, n_tokens: float) -> xr.DataArray:
    """The cell's lr skew draws (its own with ``bowl.skew_by_cell``, else
    :func:`core.skew_at`); zero without skew."""
    if "skew_cell" in post:
        return post["skew_cell"].sel(cell=cell)
    if "skew" not in post:
        return xr.DataArray(0.0)
    skew_d = post["skew_d"].sel(arch=arch) if "skew_d" in post else 0.0
    return core.skew_at(post["skew"].sel(arch=arch), skew_d,
                        core.log_scale(1.0, n_tokens)[1])


def cell_bowl(posterior: xr.DataTree, cell: str, log_lr: np.ndarray, log_batch: np.ndarray,
              n_draws: int = 200, seed: int = 0) -> xr.DataArray:
    """Posterior draws of a cell's relative loss excess (loss / loss_opt - 1) on a grid.

    ``log_lr`` (i,) and ``log_batch`` (j,) span the grid; weight decay sits at the cell's
    optimum. Returns a DataArray with dims (sample, lr, batch).
    """
    post = posterior["posterior"].to_dataset()
    cells = posterior_cells(posterior)
    arch = cells.loc[cell, "arch"]
    dims = json.loads(posterior.attrs["dims"])
    sub = thin(xr.Dataset({
        "log_lr_opt": post["log_lr_opt"].sel(cell=cell),
        "log_batch_opt": post["log_batch_opt"].sel(cell=cell),
        "chol_diag": post["chol_diag"].sel(cell=cell),
        "chol_offdiag": post["chol_offdiag"].sel(arch=arch),
        "skew": _cell_skew(post, cell, arch, float(cells.loc[cell, "n_tokens"])),
    }), n_draws, seed)
    diag = sub["chol_diag"].transpose("sample", "dim").to_numpy()[:, None, None]
    offdiag = sub["chol_offdiag"].transpose("sample", "offdiag").to_numpy()[:, None, None]
    grid_lr, grid_b = np.meshgrid(log_lr, log_batch, indexing="ij")
    d_lr = grid_lr[None] - sub["log_lr_opt"].to_numpy()[:, None, None]
    d_b = grid_b[None] - sub["log_batch_opt"].to_numpy()[:, None, None]
    delta = np.stack([d_lr, d_b, *([np.zeros_like(d_lr)] * (len(dims) - 2))], axis=-1)
    skew = np.broadcast_to(sub["skew"].to_numpy(), (sub.sizes["sample"],))
    excess = core.bowl_loss_array(0.0, delta, diag, offdiag, skew[:, None, None])
    # the bowl is additive in loss: excess relative to the optimum's loss
    loss_opt = post["loss_opt"].sel(cell=cell).stack(sample=("chain", "draw"))
    rel = excess / float(loss_opt.median())
    return xr.DataArray(rel, dims=("sample", "lr", "batch"),
                        coords={"lr": np.exp(log_lr), "batch": np.exp(log_batch)})


def _grid(runs: pd.DataFrame, opt_lr: np.ndarray, opt_b: np.ndarray,
          n: int) -> tuple[np.ndarray, np.ndarray]:
    lo_lr = min(np.log(runs["lr"]).min(), np.quantile(opt_lr, 0.01)) - 0.3
    hi_lr = max(np.log(runs["lr"]).max(), np.quantile(opt_lr, 0.99)) + 0.3
    lo_b = min(np.log(runs["batch_tokens"]).min(), np.quantile(opt_b, 0.01)) - 0.3
    hi_b = max(np.log(runs["batch_tokens"]).max(), np.quantile(opt_b, 0.99)) + 0.3
    return np.linspace(lo_lr, hi_lr, n), np.linspace(lo_b, hi_b, n)


def _draw_runs(ax, runs: pd.DataFrame, best: float, window: float, norm: Normalize,
               first: bool):
    ok = (runs["status"] == "ok") & np.isfinite(runs["loss"])
    inside = ~core.is_censored(runs["loss"].to_numpy(float), ok.to_numpy(),
                               core.window_edge(best, window))
    above = ok & ~inside
    label = (lambda text: text) if first else (lambda text: f"_{text}")
    r = runs[inside]
    sc = ax.scatter(r["lr"], r["batch_tokens"], c=100 * (r["loss"] / best - 1), cmap=CMAP,
                    norm=norm, s=36, edgecolors="black", linewidths=0.5, zorder=4,
                    label=label("run inside the fit window"))
    r = runs[above]
    ax.scatter(r["lr"], r["batch_tokens"], facecolors="none", edgecolors="0.35", s=36,
               linewidths=0.9, zorder=4, label=label("run above the window (censored)"))
    r = runs[~ok]
    ax.scatter(r["lr"], r["batch_tokens"], marker="x", color="tab:red", s=36, zorder=4,
               label=label("diverged run (censored)"))
    return sc


def plot_cell_landscapes(posterior: xr.DataTree, cells: list[str] | None = None, *,
                         truth: xr.Dataset | None = None, ncols: int = 4, n_draws: int = 200,
                         prob: float = 0.9, grid: int = 60, seed: int = 0,
                         title: str | None = None) -> Figure:
    """One panel per cell: the runs over (lr, batch) coloured by their loss above the cell's
    best run (censored and diverged runs marked apart), contours of the fitted bowl (the
    posterior median of the loss excess, weight decay at its optimum), posterior draws of
    the cell's optimum with their ``prob`` credible ellipse, and the true optimum when a
    simulation ``truth`` is given. ``cells`` defaults to every cell of the posterior."""
    table = posterior_cells(posterior)
    cells = list(table.index) if cells is None else list(cells)
    runs = posterior_runs(posterior)
    post = posterior["posterior"].to_dataset()
    window = float(posterior.attrs["window"])
    nrows = -(-len(cells) // ncols)
    ncols = min(ncols, len(cells))
    fig, axes = new_figure(nrows, ncols, 3.5, 3.0)
    norm = Normalize(0.0, 100 * window)
    levels = [lv for lv in (0.25, 0.5, 1.0, 2.0, 4.0) if lv <= 100 * window * 2]
    sc = None
    for k, (ax, cell) in enumerate(zip(axes.flat, cells, strict=False)):
        first = k == 0
        row = table.loc[cell]
        cruns = runs[runs["cell"] == cell]
        opt = thin(post[["log_lr_opt", "log_batch_opt"]].sel(cell=cell), n_draws, seed)
        olr, ob = opt["log_lr_opt"].to_numpy(), opt["log_batch_opt"].to_numpy()
        log_lr, log_b = _grid(cruns, olr, ob, grid)
        rel = cell_bowl(posterior, cell, log_lr, log_b, n_draws, seed).median("sample")
        cs = ax.contour(rel["lr"], rel["batch"], 100 * rel.T, levels=levels, colors="0.25",
                        linewidths=0.8, zorder=2)
        ax.clabel(cs, fmt=lambda v: f"{v:g}%", fontsize=7)
        sc = _draw_runs(ax, cruns, float(row["best_loss"]), window, norm, first)
        ax.scatter(np.exp(olr), np.exp(ob), s=3, color="tab:red", alpha=0.25, zorder=3,
                   label="posterior draws of the optimum" if first else "_draws")
        ex, ey = ellipse(olr, ob, prob)
        ax.plot(np.exp(ex), np.exp(ey), color="darkred", lw=1.5, zorder=3,
                label=f"{100 * prob:.0f}% credible region of the optimum" if first else "_e")
        if truth is not None and cell in truth["cell"].values:
            t = truth.sel(cell=cell)
            ax.scatter(np.exp(float(t["log_lr_opt"])), np.exp(float(t["log_batch_opt"])),
                       marker="*", s=140, color="gold", edgecolors="black", zorder=5,
                       label="true optimum (simulation)" if first else "_truth")
        log_axes(ax)
        ax.set(xlabel=LABELS["lr"], ylabel=LABELS["batch"],
               title=f"{group_label(row['arch'], row['data_mix'])}: "
                     f"N={fmt_sci(row['n_params'])}, D={fmt_sci(row['n_tokens'])}")
        ax.title.set_fontsize(9)
        if first:
            ax.plot([], [], color="0.25", lw=0.8,
                    label="fitted bowl: median loss above optimum (%)")
    for ax in axes.flat[len(cells):]:
        ax.remove()
    if sc is not None:
        fig.colorbar(sc, ax=list(axes.flat[:len(cells)]), label=LABELS["excess_pct"],
                     shrink=0.8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)
    fig.suptitle(title or "Loss landscapes per cell: runs, fitted bowl and optimum")
    return fig

