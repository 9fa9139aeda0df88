"""The fitted laws: optimal lr and batch size against N and against D, with posterior bands,
the data cells' optima and the published laws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from bayes_scaling.model import core, laws
from bayes_scaling.model.fit import posterior_cells
from bayes_scaling.present.plots_common import (
    LABELS,
    PUBLISHED_STYLE,
    fmt_sci,
    group_colours,
    group_label,
    interval,
    log_axes,
    new_figure,
    thin,
)

LAW_TERMS = {"lr": ("c_eta", "a_n", "a_d", "log_lr_opt"),
             "batch": ("c_batch", "b_n", "b_d", "log_batch_opt")}
"""Per quantity: intercept, N exponent, D exponent, per-cell optimum variable."""

PUBLISHED = {"lr": {"steplaw": laws.steplaw_lr_opt, "deepseek": laws.deepseek_lr_opt},
             "batch": {"steplaw": laws.steplaw_batch_opt, "deepseek": laws.deepseek_batch_opt}}


def law_slice(posterior: xr.DataTree, quantity: str, arch: str, mix: str,
              n_params: np.ndarray, n_tokens: np.ndarray, n_draws: int | None = 400,
              seed: int = 0) -> xr.DataArray:
    """Posterior draws of the MEAN law (no cell scatter) of ``quantity`` ('lr' or 'batch',
    natural log) for (arch, mix) along the points (n_params, n_tokens): dims (sample, point)."""
    c, e_n, e_d, _ = LAW_TERMS[quantity]
    post = thin(posterior["posterior"].to_dataset()[[c, e_n, e_d]], n_draws, seed)
    x_n, x_d, _ = (xr.DataArray(x, dims="point") for x in core.log_scale(
        np.asarray(n_params, float), np.asarray(n_tokens, float)))
    out = core.law_mean(post[c].sel(arch=arch, mix=mix), post[e_n].sel(arch=arch),
                        post[e_d].sel(arch=arch), x_n, x_d)
    return out.transpose("sample", "point")


def adjusted_cell_optima(posterior: xr.DataTree, quantity: str, *,
                         n_params: float | None = None, n_tokens: float | None = None,
                         n_draws: int | None = 400, seed: int = 0) -> xr.DataArray:
    """Each data cell's posterior optimum (natural log) moved along the fitted law to a common
    ``n_tokens`` (or ``n_params``), draw by draw: log q*_g + e_D (log D - log D_g). The cell's
    own residual from the law stays in (a partial-residual view). Dims (sample, cell)."""
    _, e_n, e_d, opt = LAW_TERMS[quantity]
    post = thin(posterior["posterior"].to_dataset()[[e_n, e_d, opt]], n_draws, seed)
    table = posterior_cells(posterior).reindex(post["cell"].values)
    arch = xr.DataArray(table["arch"].to_numpy(), dims="cell")
    out = post[opt]
    if n_tokens is not None:
        shift = np.log(n_tokens / table["n_tokens"].to_numpy(float))
        out = out + post[e_d].sel(arch=arch) * xr.DataArray(shift, dims="cell")
    if n_params is not None:
        shift = np.log(n_params / table["n_params"].to_numpy(float))
        out = out + post[e_n].sel(arch=arch) * xr.DataArray(shift, dims="cell")
    return out.drop_vars("arch", errors="ignore").transpose("sample", "cell")


def _slice_point(posterior: xr.DataTree, target: dict | pd.Series | None) -> tuple[float, float]:
    if target is not None:
        return float(target["n_params"]), float(target["n_tokens"])
    cells = posterior_cells(posterior)
    return (float(np.exp(np.log(cells["n_params"]).mean())),
            float(np.exp(np.log(cells["n_tokens"]).mean())))


def _panel(ax, posterior, quantity: str, along: str, fixed: float, xs: np.ndarray,
           groups, colours, prob, n_draws, seed) -> None:
    cells = posterior_cells(posterior)
    for arch, mix in groups:
        n = xs if along == "n_params" else np.full_like(xs, fixed)
        d = np.full_like(xs, fixed) if along == "n_params" else xs
        med, lo, hi = interval(np.exp(law_slice(posterior, quantity, arch, mix, n, d, n_draws,
                                                seed).to_numpy()), prob, axis=0)
        colour = colours[(arch, mix)]
        name = group_label(arch, mix)
        ax.fill_between(xs, lo, hi, color=colour, alpha=0.2, lw=0)
        ax.plot(xs, med, color=colour, lw=1.6,
                label=f"{name}: law median, {100 * prob:.0f}% band")
        keep = ((cells["arch"] == arch) & (cells["data_mix"] == mix)).to_numpy()
        if not keep.any():
            continue
        kw = {"n_tokens": fixed} if along == "n_params" else {"n_params": fixed}
        adj = adjusted_cell_optima(posterior, quantity, n_draws=n_draws, seed=seed, **kw)
        adj = adj.sel(cell=cells.index[keep])
        cmed, clo, chi = interval(np.exp(adj.to_numpy()), prob, axis=0)
        x = cells.loc[keep, along].to_numpy(float)
        ax.errorbar(x, cmed, yerr=[cmed - clo, chi - cmed], fmt="o", ms=4, color=colour,
                    mec="black", mew=0.5, elinewidth=1, capsize=2, zorder=4,
                    label=f"{name}: data cells' optima (moved along the law)")
    for law, fn in PUBLISHED[quantity].items():
        n = xs if along == "n_params" else np.full_like(xs, fixed)
        d = np.full_like(xs, fixed) if along == "n_params" else xs
        style = PUBLISHED_STYLE[law]
        ax.plot(xs, fn(n, d), color=style["color"], ls=style["ls"], lw=1.3,
                label=style["label"])


def plot_law_curves(posterior: xr.DataTree, target: dict | pd.Series | None = None, *,
                    prob: float = 0.9, n_draws: int | None = 1000, seed: int = 0) -> Figure:
    """Optimal lr and batch size against N (at the target's D) and against D (at the
    target's N), per (arch, mix): the law's posterior median and ``prob`` band (the mean law,
    without cell scatter), the data cells' posterior optima moved along the fitted law to
    that D (or N) with ``prob`` error bars, and the Step Law and DeepSeek laws. Without a
    target the slices sit at the data's geometric centre."""
    cells = posterior_cells(posterior)
    n_fix, d_fix = _slice_point(posterior, target)
    groups = sorted({(a, m) for a, m in zip(cells["arch"], cells["data_mix"], strict=True)})
    colours = group_colours(groups)
    fig, axes = new_figure(2, 2, 5.2, 3.9)
    ranges = {"n_params": (cells["n_params"].min(), cells["n_params"].max(), n_fix),
              "n_tokens": (cells["n_tokens"].min(), cells["n_tokens"].max(), d_fix)}
    for col, along in enumerate(("n_params", "n_tokens")):
        lo, hi, at = ranges[along]
        xs = np.geomspace(min(lo, at) / 1.5, max(hi, at) * 1.5, 80)
        fixed = d_fix if along == "n_params" else n_fix
        for row, quantity in enumerate(("lr", "batch")):
            ax = axes[row, col]
            _panel(ax, posterior, quantity, along, fixed, xs, groups, colours, prob, n_draws,
                   seed)
            if target is not None:
                ax.axvline(at, color="tab:red", ls=":", lw=1.2, label="target")
            log_axes(ax)
            other = (f"D = {fmt_sci(fixed)} tokens" if along == "n_params"
                     else f"N = {fmt_sci(fixed)}")
            ax.set(xlabel=LABELS[along], ylabel=LABELS[f"{quantity}_opt"],
                   title=f"{LABELS[f'{quantity}_opt']} vs {'N' if along == 'n_params' else 'D'}"
                         f" at {other}")
            ax.title.set_fontsize(10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8)
    where = "the target" if target is not None else "the data's centre"
    fig.suptitle(f"Fitted scaling laws of the optimum (sliced through {where}) "
                 "with published laws")
    return fig
