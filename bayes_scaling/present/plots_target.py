"""Figures about the big run: the posterior predictive optima at the targets, the expected
regret over (lr, batch) at one target, and the proposed next runs on the (N, D) plane."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, LogNorm
from matplotlib.figure import Figure
from matplotlib.transforms import ScaledTranslation, Transform

from bayes_scaling.model import laws
from bayes_scaling.model.fit import posterior_cells
from bayes_scaling.predict.predict import Prediction
from bayes_scaling.predict.regret import expected_regret
from bayes_scaling.present.plots_common import (
    LABELS,
    PUBLISHED_STYLE,
    ellipse,
    fmt_sci,
    fmt_value,
    group_colours,
    group_label,
    interval,
    log_axes,
    new_figure,
    thin,
)

PREDICTED = (("lr_opt", "lr_opt"), ("batch_tokens_opt", "batch_opt"),
             ("weight_decay_opt", "weight_decay_opt"), ("loss_opt", "loss_opt"))
"""(Prediction.draws variable, LABELS key) of each panel of the predictive figure."""


def target_label(row: pd.Series | dict) -> str:
    """'dense / web, N=7e9, D=2e12'."""
    return (f"{group_label(row['arch'], row['data_mix'])}, N={fmt_sci(row['n_params'])}, "
            f"D={fmt_sci(row['n_tokens'])}")


def _targets(draws: xr.Dataset) -> pd.DataFrame:
    return pd.DataFrame({c: draws[c].values for c in ("arch", "data_mix", "n_params",
                                                       "n_tokens")})


def _target_index(draws: xr.Dataset, target: pd.Series | dict) -> int:
    """Position of ``target`` (arch, data_mix, n_params, n_tokens) among the draws' targets."""
    label = target_label(target)
    for i, row in _targets(draws).iterrows():
        if target_label(row) == label:
            return int(i)
    raise ValueError(f"target {label} is not among the prediction's targets")


def _published_points(targets: pd.DataFrame, draws: xr.Dataset) -> dict[str, dict]:
    """Per published law and panel variable: values at each target (NaN where silent).
    Power Lines gives λ at each target's predicted median lr and batch."""
    n, d = targets["n_params"].to_numpy(), targets["n_tokens"].to_numpy()
    lr_med = draws["lr_opt"].median(("chain", "draw")).to_numpy()
    b_med = draws["batch_tokens_opt"].median(("chain", "draw")).to_numpy()
    return {
        "steplaw": {"lr_opt": laws.steplaw_lr_opt(n, d),
                    "batch_tokens_opt": laws.steplaw_batch_opt(n, d)},
        "deepseek": {"lr_opt": laws.deepseek_lr_opt(n, d),
                     "batch_tokens_opt": laws.deepseek_batch_opt(n, d)},
        "powerlines": {"weight_decay_opt": laws.powerlines_weight_decay_opt(n, d, lr_med,
                                                                            b_med)},
    }


def plot_target_predictive(prediction: Prediction, *, truth: pd.DataFrame | None = None
                           ) -> Figure:
    """Posterior predictive optima at each target (one row per target): median, 50% and 90%
    intervals of the optimal lr, batch size, weight decay and loss, with the Step Law and
    DeepSeek optima (and Power Lines' λ at the predicted lr and batch) as points. ``truth``
    (optional, columns as the panel variables, one row per target) adds true values."""
    draws = prediction.draws
    targets = _targets(draws)
    published = _published_points(targets, draws)
    k = len(targets)
    fig, axes = new_figure(2, 2, 5.6, 0.9 + 0.5 * k)
    ys = np.arange(k)[::-1]
    names = [target_label(r) for _, r in targets.iterrows()]
    handles: dict[str, object] = {}
    for ax, (var, key) in zip(axes.flat, PREDICTED, strict=True):
        vals = draws[var].transpose("target", "chain", "draw").to_numpy().reshape(k, -1)
        med, lo90, hi90 = interval(vals, 0.9)
        _, lo50, hi50 = interval(vals, 0.5)
        ax.hlines(ys, lo90, hi90, color="tab:red", lw=1.5, label="90% interval")
        ax.hlines(ys, lo50, hi50, color="tab:red", lw=5, alpha=0.6, label="50% interval")
        ax.plot(med, ys, "o", color="white", mec="tab:red", mew=1.5, ms=7,
                label="posterior predictive median (value printed)")
        for y, m in zip(ys, med, strict=True):
            ax.annotate(fmt_value(m), (m, y), textcoords="offset points", xytext=(0, 7),
                        ha="center", fontsize=8)
        for law, values in published.items():
            if var in values:
                style = PUBLISHED_STYLE[law]
                ax.plot(values[var], ys, style["marker"], color=style["color"], ms=6,
                        mfc="none" if law == "deepseek" else style["color"],
                        label=style["label"] + (" at the predicted lr and B"
                                                if law == "powerlines" else ""))
        if truth is not None and var in truth:
            ax.plot(truth[var].to_numpy(), ys, "*", color="gold", mec="black", ms=11,
                    label="truth (simulation)")
        if var != "loss_opt":
            log_axes(ax, "x")
        ax.set_yticks(ys, names, fontsize=8)
        ax.set_ylim(-0.7, k - 0.3)
        ax.set(xlabel=LABELS[key], ylabel="target run",
               title=LABELS[key].replace(" (tokens)", "").replace(" (nats/token)", ""))
        ax.title.set_fontsize(10)
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=3,
               fontsize=8)
    fig.suptitle("Posterior predictive optimum at the target(s), with published laws")
    return fig


def regret_grid(posterior: xr.DataTree, target: dict | pd.Series, prediction: Prediction,
                *, n_lr: int = 40, n_batch: int = 36, seed: int = 0, pad: float = 0.5
                ) -> xr.Dataset:
    """:func:`bayes_scaling.predict.regret.expected_regret` on an (lr, batch) grid at ``target``
    covering its predictive optima (0.5-99.5% range, ``pad`` in natural log beyond) and
    the published laws' optima. Dims (lr, batch_tokens); weight decay at each draw's best."""
    row = pd.DataFrame({k: [target[k]] for k in ("arch", "data_mix", "n_params", "n_tokens")})
    sel = prediction.draws.isel(target=_target_index(prediction.draws, row.iloc[0]))
    n, d = float(row["n_params"][0]), float(row["n_tokens"][0])
    axes = {}
    for var, pub in (("log_lr_opt", (laws.steplaw_lr_opt, laws.deepseek_lr_opt)),
                     ("log_batch_tokens_opt", (laws.steplaw_batch_opt,
                                               laws.deepseek_batch_opt))):
        lo, hi = np.quantile(sel[var].to_numpy(), [0.005, 0.995])
        pts = [float(np.log(f(n, d))) for f in pub]
        axes[var] = (min(lo, *pts) - pad, max(hi, *pts) + pad)
    lr = np.exp(np.linspace(*axes["log_lr_opt"], n_lr))
    batch = np.exp(np.linspace(*axes["log_batch_tokens_opt"], n_batch))
    mesh_lr, mesh_b = np.meshgrid(lr, batch, indexing="ij")
    out = expected_regret(posterior, row, mesh_lr.ravel(), mesh_b.ravel(), seed=seed)
    data = {v: (("lr", "batch_tokens"), out[v].to_numpy().reshape(n_lr, n_batch))
            for v in out.data_vars}
    return xr.Dataset(data, coords={"lr": lr, "batch_tokens": batch}).assign_attrs(
        out.attrs, target_label=target_label(row.iloc[0]))


def plot_expected_regret(regret: xr.Dataset, prediction: Prediction | None = None, *,
                         n_draws: int = 300, seed: int = 0) -> Figure:
    """Filled contours of the expected regret (% of the optimal loss) over (lr, batch) at
    one target (from :func:`regret_grid`), the choice with the least expected regret, the
    predictive draws of the optimum and their 90% region, and the published laws' choices
    with their expected regret."""
    fig, axes = new_figure(1, 1, 7.0, 5.2)
    ax = axes[0, 0]
    pct = regret["expected_regret_pct"].transpose("batch_tokens", "lr")
    levels = [lv for lv in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50)
              if lv <= float(pct.max()) * 2]
    norm = BoundaryNorm(levels, 256, extend="both")
    cf = ax.contourf(regret["lr"], regret["batch_tokens"], pct, levels=levels, norm=norm,
                     cmap="magma_r", extend="both")
    cs = ax.contour(regret["lr"], regret["batch_tokens"], pct, levels=levels, colors="0.3",
                    linewidths=0.5)
    ax.clabel(cs, fmt=lambda v: f"{v:g}%", fontsize=7)
    fig.colorbar(cf, ax=ax, label="expected regret (% of the optimal loss)")
    best = pct.where(pct == pct.min(), drop=True)
    b_lr, b_b = float(best["lr"][0]), float(best["batch_tokens"][0])
    ax.plot(b_lr, b_b, "*", color="white", mec="black", ms=15, zorder=5,
            label=f"least expected regret: lr {fmt_sci(b_lr)}, B {fmt_sci(b_b)} "
                  f"({float(pct.min()):.2g}%)")
    if prediction is not None:
        draws = prediction.draws
        t = _target_index(draws, json.loads(regret.attrs["target"]))
        sub = thin(draws[["log_lr_opt", "log_batch_tokens_opt"]].isel(target=t), n_draws, seed)
        x, y = sub["log_lr_opt"].to_numpy(), sub["log_batch_tokens_opt"].to_numpy()
        ax.scatter(np.exp(x), np.exp(y), s=4, color="tab:cyan", alpha=0.4, zorder=3,
                   label="posterior predictive draws of the optimum")
        ex, ey = ellipse(x, y, 0.9)
        ax.plot(np.exp(ex), np.exp(ey), color="tab:blue", lw=1.5, zorder=4,
                label="90% region of the optimum")
    target = json.loads(regret.attrs["target"])
    n, d = float(target["n_params"]), float(target["n_tokens"])
    for law, (f_lr, f_b) in (("steplaw", (laws.steplaw_lr_opt, laws.steplaw_batch_opt)),
                             ("deepseek", (laws.deepseek_lr_opt, laws.deepseek_batch_opt))):
        p_lr, p_b = float(f_lr(n, d)), float(f_b(n, d))
        at = float(pct.interp(lr=p_lr, batch_tokens=p_b))
        style = PUBLISHED_STYLE[law]
        ax.plot(p_lr, p_b, style["marker"], color="white", mec=style["color"], mew=2, ms=9,
                zorder=5, label=f"{style['label']}: {at:.2g}% expected regret")
    log_axes(ax)
    ax.set(xlabel=LABELS["lr"], ylabel=LABELS["batch"],
           title=f"Expected regret at {regret.attrs.get('target_label', 'the target')}")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def pick_lines(picks: pd.DataFrame) -> list[str]:
    """One line per selected group: '1. dense / web N=4.4e7 D=8.8e8: 1 run, lr 1.3e-3,
    B 2.25e4 tokens' (ranges for a mini-sweep)."""
    lines = []
    for _, g in picks.groupby("order", sort=True):
        first = g.iloc[0]
        rng = {c: (fmt_value(g[c].iloc[0]) if g[c].nunique() == 1
                   else f"{fmt_value(g[c].min())}..{fmt_value(g[c].max())}")
               for c in ("lr", "batch_tokens")}
        lines.append(f"{first['order']}. {group_label(first['arch'], first['data_mix'])} "
                     f"N={fmt_sci(first['n_params'])} D={fmt_sci(first['n_tokens'])}: "
                     f"{len(g)} run{'s' if len(g) > 1 else ''}, lr {rng['lr']}, "
                     f"B {rng['batch_tokens']} tokens")
    return lines


def _spots(frame: pd.DataFrame) -> pd.Series:
    """One key per (N, D) spot: the rounded log10 values (5e7 and 49999999.99999998, the
    same cell computed two ways, are one spot)."""
    return (np.round(np.log10(frame["n_params"].astype(float)), 3).astype(str) + "/"
            + np.round(np.log10(frame["n_tokens"].astype(float)), 3).astype(str))


def _below_axes(ax: Axes, pad_pt: float = 6.0) -> Transform:
    """Axes coordinates shifted down by the x axis' tick labels and label (measured once:
    they are fixed sizes in points), so that (0, 0) is just below the x label wherever the
    layout puts the axes."""
    fig = ax.get_figure()
    renderer = fig.canvas.get_renderer()
    below = (ax.get_window_extent(renderer).y0 - ax.xaxis.get_tightbbox(renderer).y0) / fig.dpi
    return ax.transAxes + ScaledTranslation(0, -(below + pad_pt / 72), fig.dpi_scale_trans)


def plot_proposals(posterior: xr.DataTree, proposals: pd.DataFrame,
                   targets: pd.DataFrame | None = None, *, top: int | None = None) -> Figure:
    """The (N, D) plane: the fitted data cells, the candidate cells coloured by their best
    score (the objective's, ``proposals.attrs["score_label"]``), the selected next runs
    numbered in pick order, the target(s), and lines of constant tokens per parameter and
    compute. The legend and the list of picks sit below the plane, never over a pick."""
    cells = posterior_cells(posterior)
    picks = proposals[proposals["selected"]]
    order = {g: i for i, g in enumerate(picks["group"].drop_duplicates(), start=1)}
    if top is not None:
        order = {g: i for g, i in order.items() if i <= top}
    n_entries = len({(a, m) for a, m in zip(cells["arch"], cells["data_mix"], strict=True)}) + 5
    fig, axes = new_figure(1, 1, 7.2, 5.4 + 0.17 * np.ceil(n_entries / 2) + 0.14 * len(order))
    ax = axes[0, 0]
    groups = sorted({(a, m) for a, m in zip(cells["arch"], cells["data_mix"], strict=True)})
    colours = group_colours(groups)
    for arch, mix in groups:
        c = cells[(cells["arch"] == arch) & (cells["data_mix"] == mix)]
        ax.scatter(c["n_params"], c["n_tokens"], marker="o" if arch == "dense" else "s",
                   s=45 if arch == "dense" else 110, facecolors="none",
                   edgecolors=colours[(arch, mix)], linewidths=1.5, zorder=3,
                   label=f"data cells: {group_label(arch, mix)}")
    scored = proposals[np.isfinite(proposals["score"])]
    best = scored.assign(spot=_spots(scored)).groupby("spot", sort=False).agg(
        n_params=("n_params", "first"), n_tokens=("n_tokens", "first"), score=("score", "max"))
    if len(best):
        sc = ax.scatter(best["n_params"], best["n_tokens"], c=best["score"], s=22,
                        cmap="viridis", norm=LogNorm(), zorder=2, marker="D",
                        label="candidate cells (colour: best score)")
        label = proposals.attrs.get("score_label", "score")
        fig.colorbar(sc, ax=ax, label=f"best score: {label}")
    picks = picks[picks["group"].isin(order)].assign(order=lambda f: f["group"].map(order))
    spots = picks.assign(spot=_spots(picks)).groupby("spot", sort=False).agg(
        n_params=("n_params", "first"), n_tokens=("n_tokens", "first"),
        order=("order", lambda o: ", ".join(map(str, sorted(set(o)))))).reset_index(drop=True)
    log_x, log_y = np.log(spots["n_params"]), np.log(spots["n_tokens"])
    for i, row in spots.iterrows():
        # label each spot on the side facing away from the other picks
        dx = 1.0 if log_x[i] >= log_x.mean() else -1.0
        dy = 1.0 if log_y[i] >= log_y.mean() else -1.0
        ax.scatter(row["n_params"], row["n_tokens"], s=260, facecolors="none",
                   edgecolors="tab:red", linewidths=2, zorder=4,
                   label="proposed next runs (pick order)" if i == 0 else "_pick")
        ax.annotate(row["order"], (row["n_params"], row["n_tokens"]),
                    textcoords="offset points", xytext=(12 * dx, 10 * dy),
                    ha="left" if dx > 0 else "right", va="bottom" if dy > 0 else "top",
                    color="tab:red", fontweight="bold")
    if targets is not None:
        ax.scatter(targets["n_params"], targets["n_tokens"], marker="*", s=260, color="gold",
                   edgecolors="black", zorder=5, label="target run")
    xs = [cells["n_params"], proposals["n_params"]]
    ys = [cells["n_tokens"], proposals["n_tokens"]]
    if targets is not None:
        xs.append(targets["n_params"])
        ys.append(targets["n_tokens"])
    x_lo, x_hi = min(float(v.min()) for v in xs) / 2, max(float(v.max()) for v in xs) * 2
    y_lo, y_hi = min(float(v.min()) for v in ys) / 2, max(float(v.max()) for v in ys) * 2
    grid = np.geomspace(x_lo, x_hi, 50)
    for tpp in (20, 100):
        ax.plot(grid, tpp * grid, color="0.6", lw=0.8, ls="--",
                label="20 and 100 tokens per parameter" if tpp == 20 else "_tpp")
    for flops in 10.0 ** np.arange(np.ceil(np.log10(6 * x_lo * y_lo)),
                                   np.log10(6 * x_hi * y_hi) + 1, 2):
        ax.plot(grid, flops / (6 * grid), color="0.75", lw=0.6, ls=":",
                label="constant compute 6ND (every 100x)" if flops == 10.0 ** np.ceil(
                    np.log10(6 * x_lo * y_lo)) else "_flops")
    ax.set(xlim=(x_lo, x_hi), ylim=(y_lo, y_hi))
    log_axes(ax)
    target = proposals.attrs.get("target")
    where = f" for {target_label(target)}" if target else ""
    ax.set(xlabel=LABELS["n_params"], ylabel=LABELS["n_tokens"],
           title=f"Proposed next runs{where}")
    below = _below_axes(ax)
    legend = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, 0),
                       bbox_transform=below, borderaxespad=0, ncol=2)
    if len(picks):  # under the legend (its height is fixed in points, like the x label's)
        drop = legend.get_window_extent(fig.canvas.get_renderer()).height / fig.dpi + 8 / 72
        ax.text(0, 0, "\n".join(pick_lines(picks)), ha="left", va="top", fontsize=7,
                transform=below + ScaledTranslation(0, -drop, fig.dpi_scale_trans),
                family="monospace")
    return fig
