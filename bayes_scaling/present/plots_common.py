"""Shared pieces of the figures: axis labels with units, colours per (arch, mix), draw
thinning, credible ellipses and saving to PNG + SVG. Matplotlib with the Agg backend
(except inside a Jupyter kernel, where the inline backend displays the figures)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # in Jupyter keep the inline backend (figures show)
    matplotlib.use("Agg")  # elsewhere headless: figures are files, never windows
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

LABELS = {
    "lr": "peak learning rate (AdamW step size)",
    "batch": "batch size (tokens)",
    "weight_decay": "AdamW weight decay λ (decoupled)",
    "n_params": "non-embedding parameters N",
    "n_tokens": "training tokens D",
    "loss": "loss (nats/token)",
    "lr_opt": "optimal peak learning rate",
    "batch_opt": "optimal batch size (tokens)",
    "weight_decay_opt": "optimal AdamW weight decay λ",
    "loss_opt": "loss at the optimum (nats/token)",
    "excess_pct": "loss above the cell's best run (%)",
}
"""Axis labels, units included (lr and weight decay are unit-free)."""

PUBLISHED_STYLE = {
    "steplaw": {"label": "Step Law (Li et al. 2025)", "color": "black", "ls": "--",
                "marker": "s"},
    "deepseek": {"label": "DeepSeek LLM (2024)", "color": "0.45", "ls": ":", "marker": "D"},
    "powerlines": {"label": "Power Lines λ (Bergsma et al. 2025)", "color": "tab:brown",
                   "ls": "-.", "marker": "^"},
}
"""How each published law is drawn."""

SAMPLE_DIMS = ("chain", "draw")
_PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:cyan", "tab:olive",
            "tab:pink", "tab:gray")
"""Group colours; red is kept for targets and optima, brown for Power Lines."""


def group_colours(groups: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A fixed colour per (arch, mix) pair, in sorted order (stable across figures)."""
    return {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(sorted(set(groups)))}


def group_label(arch: str, mix: str) -> str:
    """'dense / web' (the mix is left out when it is the reader's 'default')."""
    return arch if mix == "default" else f"{arch} / {mix}"


def thin(data: xr.Dataset | xr.DataArray, n: int | None,
         seed: int = 0) -> xr.Dataset | xr.DataArray:
    """Stack (chain, draw) into ``sample`` and keep ``n`` draws chosen at random (all if None
    or fewer exist); fixed ``seed``, so figures are reproducible."""
    stacked = data.stack(sample=SAMPLE_DIMS)
    size = stacked.sizes["sample"]
    if n is None or n >= size:
        return stacked
    keep = np.sort(np.random.default_rng(seed).choice(size, n, replace=False))
    return stacked.isel(sample=keep)


def interval(values: np.ndarray, prob: float, axis: int = -1) -> tuple[np.ndarray, ...]:
    """(median, lo, hi) of an equal-tailed ``prob`` interval along ``axis``."""
    q = np.quantile(values, [0.5, (1 - prob) / 2, (1 + prob) / 2], axis=axis)
    return q[0], q[1], q[2]


def ellipse(x: np.ndarray, y: np.ndarray, prob: float = 0.9,
            n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian ``prob`` credible ellipse of the points (x, y), as a closed curve."""
    mean = np.array([np.mean(x), np.mean(y)])
    cov = np.cov(np.vstack([x, y]))
    radius = np.sqrt(-2.0 * np.log(1.0 - prob))  # chi-square quantile with 2 dof
    vals, vecs = np.linalg.eigh(cov)
    t = np.linspace(0.0, 2.0 * np.pi, n)
    circle = np.vstack([np.cos(t), np.sin(t)]) * radius * np.sqrt(np.maximum(vals, 0))[:, None]
    pts = mean[:, None] + vecs @ circle
    return pts[0], pts[1]


def fmt_sci(x: float) -> str:
    """1.5e+09 -> '1.5e9', 0.002 -> '2e-3' (compact labels, up to 3 significant digits)."""
    mantissa, _, exp = f"{x:.2e}".partition("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exp)}"


def fmt_value(x: float, digits: int = 3) -> str:
    """Numbers as people write them: '1.77', '0.071', '2e-3', '7.6e6', '0'."""
    if x == 0 or 1e-2 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    mantissa, _, exp = f"{x:.{digits - 1}e}".partition("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exp)}"


def _tick(x: float, _pos: int | None = None) -> str:
    return fmt_value(x)


def log_axes(ax: Axes, which: str = "xy") -> None:
    """Log scale with readable ticks: majors at 1, 2, 5 x 10^k labelled like '2e-3' (or
    at 1 x 10^k only when the range spans many decades), unlabelled minors."""
    for name in which:
        axis = ax.xaxis if name == "x" else ax.yaxis
        (ax.set_xscale if name == "x" else ax.set_yscale)("log")
        lo, hi = (ax.get_xlim() if name == "x" else ax.get_ylim())
        decades = np.log10(max(hi, 1e-300) / max(lo, 1e-300))
        subs = (1.0,) if decades > 4 else (1.0, 3.0) if decades > 1.6 else (1.0, 2.0, 5.0)
        axis.set_major_locator(LogLocator(base=10, subs=subs))
        axis.set_major_formatter(FuncFormatter(_tick))
        axis.set_minor_formatter(NullFormatter())


def new_figure(nrows: int, ncols: int, width: float, height: float,
               **kwargs) -> tuple[Figure, np.ndarray]:
    """A figure with an (nrows, ncols) array of axes, constrained layout."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             squeeze=False, layout="constrained", **kwargs)
    return fig, axes


def save_figure(fig: Figure, out_dir: str | Path, stem: str,
                formats: tuple[str, ...] = ("png", "svg"), dpi: int = 110) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.<fmt>`` for each format; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        fig.savefig(path, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
        paths.append(path)
    return paths


def close(fig: Figure) -> None:
    """Free a figure's memory (pyplot keeps every figure it made)."""
    plt.close(fig)
