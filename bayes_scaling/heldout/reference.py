"""The reference optimum of a cell: what its own runs say, with no model.

A cell's optimum is the minimum of a quadratic fitted by least squares (in u = (log lr,
log batch), with a cross term) to its runs within 1% of its best loss. The quadratic is
degenerate when its Hessian is not positive definite or its minimum lies outside the lr x
batch range of the cell's runs; the window is then widened (2%, 3%, 5%) and the first
non-degenerate fit used; if none is, the optimum falls back to the best run and the regret
to the loss of the run nearest (in log space) to the point. Both are flagged (``method``,
``problems``). The held-out benchmarks and ``bayes-scaling check`` score predictions
against it.

That optimum is itself an estimate from noisy runs: resampling a Step Law cell's runs moves
it by 0.03-0.28 in log lr (bootstrap sd), as much as the model's own predictive spread.
:func:`reference_noise` gives its bootstrap deviations, so that a score can ask whether
the predictive *of the reference* (the model's optimum plus that noise) contains it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

WINDOWS = (0.01, 0.02, 0.03, 0.05)
"""Fit windows tried in turn: runs with loss <= (1 + w) x the cell's best loss."""

N_BOOT = 200
"""Bootstrap resamples of a cell's runs behind :func:`reference_noise`."""

__all__ = ["N_BOOT", "WINDOWS", "cell_optimum", "reference_noise", "regret_pct"]


def _quadratic(x: np.ndarray, y: np.ndarray, loss: np.ndarray) -> dict[str, Any] | None:
    """Least-squares loss = c0 + g.u + 1/2 u^T H u in u = (log lr, log B); None if rank < 6."""
    a = np.column_stack([np.ones_like(x), x, y, 0.5 * x * x, x * y, 0.5 * y * y])
    if len(x) < 6 or np.linalg.matrix_rank(a) < 6:
        return None
    c, *_ = np.linalg.lstsq(a, loss, rcond=None)
    h = np.array([[c[3], c[4]], [c[4], c[5]]])
    return {"c0": c[0], "g": c[1:3], "h": h, "pd": bool(np.linalg.eigvalsh(h).min() > 0)}


def _value(q: dict[str, Any], u: np.ndarray) -> float:
    """The quadratic ``q`` at u = (log lr, log batch)."""
    return float(q["c0"] + q["g"] @ u + 0.5 * u @ q["h"] @ u)


def cell_optimum(runs: pd.DataFrame) -> dict[str, Any]:
    """The fitted optimum of one cell's runs (lr, batch_tokens, loss, status columns).

    Returns method, window, n_fit (runs in the fit), log_lr, log_batch, loss (the
    quadratic's minimum), quad (None for the best-run fallback), bracketed_by_window (the
    minimum inside the fitted runs' range), problems (degenerate windows tried first) and,
    for the fallback, grid (log lr, log batch, loss of the ok runs).
    """
    ok = runs[(runs["status"] == "ok") & np.isfinite(runs["loss"])]
    x, y = np.log(ok["lr"].to_numpy()), np.log(ok["batch_tokens"].to_numpy())
    best = ok["loss"].min()
    problems = []
    for w in WINDOWS:
        sel = (ok["loss"] <= (1 + w) * best).to_numpy()
        q = _quadratic(x[sel], y[sel], ok["loss"].to_numpy()[sel])
        if q is None:
            problems.append(f"{w:.0%}: too few distinct (lr, batch) points")
            continue
        if not q["pd"]:
            problems.append(f"{w:.0%}: Hessian not positive definite")
            continue
        u = np.linalg.solve(q["h"], -q["g"])
        inside = x.min() <= u[0] <= x.max() and y.min() <= u[1] <= y.max()
        if not inside:
            problems.append(f"{w:.0%}: minimum outside the runs' lr x batch range")
            continue
        bracketed = bool(x[sel].min() <= u[0] <= x[sel].max()
                         and y[sel].min() <= u[1] <= y[sel].max())
        return {"method": f"quadratic, {w:.0%} window", "window": w, "n_fit": int(sel.sum()),
                "log_lr": u[0], "log_batch": u[1], "loss": _value(q, u), "quad": q,
                "bracketed_by_window": bracketed, "problems": problems}
    i = int(np.argmin(ok["loss"].to_numpy()))
    return {"method": "best run (every quadratic degenerate)", "window": np.nan,
            "n_fit": 0, "log_lr": x[i], "log_batch": y[i], "loss": float(best), "quad": None,
            "bracketed_by_window": False, "problems": problems, "grid": (x, y, ok["loss"])}


def reference_noise(runs: pd.DataFrame, seed: int = 0, n_boot: int = N_BOOT) -> np.ndarray:
    """Bootstrap deviations (n_boot, 2) of the cell optimum's (log lr, log batch): the whole
    :func:`cell_optimum` procedure on the cell's usable runs (ok, finite loss) resampled with
    replacement, minus its value on the runs themselves (the basic bootstrap of the
    reference's error)."""
    ok = runs[(runs["status"] == "ok") & np.isfinite(runs["loss"])]
    ref = cell_optimum(ok)
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, 2))
    for b in range(n_boot):
        opt = cell_optimum(ok.iloc[rng.integers(0, len(ok), len(ok))])
        out[b] = (opt["log_lr"] - ref["log_lr"], opt["log_batch"] - ref["log_batch"])
    return out


def regret_pct(opt: dict[str, Any], lr: float, batch: float) -> float:
    """Relative loss increase (%) at (lr, batch) over the cell's fitted minimum ``opt``
    (:func:`cell_optimum`)."""
    u = np.log([lr, batch])
    if opt["quad"] is not None:
        return 100.0 * (_value(opt["quad"], u) - opt["loss"]) / opt["loss"]
    x, y, loss = opt["grid"]
    i = int(np.argmin((x - u[0]) ** 2 + (y - u[1]) ** 2))
    return 100.0 * (float(loss.iloc[i]) - opt["loss"]) / opt["loss"]
