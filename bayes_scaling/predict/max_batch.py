"""The largest safe batch: how far the batch can go above its optimum, with the lr (and weight
decay) re-optimised, before the target's loss rises by more than a tolerance.

Two answers, both from the target's posterior predictive cell (:func:`draw_new_cells`):

- per draw, in closed form: with the batch offset d_b = log B - log B* fixed and every other
  setting at its best, the bowl's excess is 1/2 d_b^2 / (H^-1)_bb (H = C C^T; the lr skew
  drops out because the lr is free), so the draw's largest batch within ``tol`` % of its
  optimal loss L* is log B* + sqrt(2 tol L* (H^-1)_bb / 100). Its quantiles are the interval.
- the choice a user makes: at each batch on a grid, the ONE lr that minimises the posterior
  expected regret (weight decay at each draw's best); the largest batch whose expected regret
  stays within ``tol`` is the recommendation, with that lr.

Next to it, the critical batch (McCandlish et al. 2018; the "batch beyond which more batch
buys nothing" of Power Lines and Time Transfer): the batch at which reaching the optimal loss
of the target's D takes twice the tokens (E = 2 E_min). Per draw, in closed form: doubling D
lowers the optimal loss by L*(D) - L*(2D) under the loss law (with the bend), and moves B* by
the batch law; the batch whose excess at 2D (lr re-optimised, the bowl's curvature kept)
eats that gain is log B*(2D) + sqrt(2 (L*(D) - L*(2D)) (H^-1)_bb). Beyond it, a larger batch
needs more than twice the data for the same loss. It rests on the D-slopes of the loss and
batch laws: where the sweep does not vary D apart from N (:func:`exponent_ridges`) or never
varies the batch, the priors carry it and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.data.identifiability import exponent_ridges
from bayes_scaling.errors import TargetError
from bayes_scaling.predict.draws import SAMPLE_DIMS, Draws, draw_new_cells
from bayes_scaling.predict.predict import curvature, optimum_at_batch, prediction_targets
from bayes_scaling.predict.regret import as_choices, regret_draws

__all__ = ["MaxBatch", "max_safe_batch"]


@dataclass(frozen=True)
class MaxBatch:
    """The largest safe batch at one target.

    max_batch_tokens: {"point", "median", "lo", "hi"}: the recommendation (largest batch
        whose expected regret, at the best single lr, is within the tolerance) and the
        interval of each draw's own largest batch.
    lr: the lr to pair with the recommended batch; expected_regret_pct: its expected regret.
    curve: along ``batch_tokens``: regret_pct_median / _lo / _hi (each draw re-optimised),
        expected_regret_pct and lr (the best single lr at that batch).
    critical_batch_tokens: {"median", "lo", "hi"} of each draw's critical batch (module doc);
    critical_from_data: False where the design leaves the D-slopes (or the batch) to the
        priors.
    """

    tolerance_pct: float
    prob: float
    max_batch_tokens: dict[str, float]
    lr: float
    expected_regret_pct: float
    batch_opt_tokens: float
    curve: xr.Dataset
    critical_batch_tokens: dict[str, float]
    critical_from_data: bool

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (None for NaN): max_batch_tokens {point, median, lo90, hi90}, lr,
        tolerance_pct, batch_opt_tokens, expected_regret_pct."""
        tag = f"{round(100 * self.prob)}"
        b = self.max_batch_tokens
        num = lambda x: None if not np.isfinite(x) else float(x)  # noqa: E731
        c = self.critical_batch_tokens
        return {"tolerance_pct": self.tolerance_pct, "batch_opt_tokens": self.batch_opt_tokens,
                "max_batch_tokens": {"point": num(b["point"]), "median": num(b["median"]),
                                     f"lo{tag}": num(b["lo"]), f"hi{tag}": num(b["hi"])},
                "lr": num(self.lr), "expected_regret_pct": num(self.expected_regret_pct),
                "critical_batch_tokens": {"median": num(c["median"]), f"lo{tag}": num(c["lo"]),
                                          f"hi{tag}": num(c["hi"])},
                "critical_from_data": self.critical_from_data}


def _per_draw_bowl(cells: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per draw, flattened over (chain, draw): log B*, L* and (H^-1)_bb, the batch term of
    the inverse curvature that sets how far the batch can move (lr re-optimised) for a given
    loss excess: d_b = sqrt(2 excess (H^-1)_bb)."""
    flat = lambda name: cells[name].transpose(*SAMPLE_DIMS).to_numpy().ravel()  # noqa: E731
    h = curvature(cells).transpose(*SAMPLE_DIMS, "dim_row", "dim_col").to_numpy()
    return flat("log_batch_opt"), np.exp(flat("log_loss_opt")), np.linalg.inv(h)[
        ..., 1, 1].ravel()


def _per_draw_max_log_batch(cells: xr.Dataset, tol_pct: float) -> np.ndarray:
    """Each draw's largest log batch within ``tol_pct`` (closed form, see the module doc)."""
    log_b_opt, loss_opt, inv_bb = _per_draw_bowl(cells)
    return log_b_opt + np.sqrt(2.0 * tol_pct / 100.0 * loss_opt * inv_bb)


def _per_draw_critical_log_batch(posterior: xr.DataTree, target: pd.Series,
                                 cells: xr.Dataset, seed: int) -> np.ndarray:
    """Each draw's critical log batch (closed form, see the module doc); draws in the order
    of ``cells`` flattened over (chain, draw). NaN for a draw whose loss law does not fall
    from D to 2D (no batch reaches the loss there)."""
    d = Draws.from_posterior(posterior, None, seed)
    at = lambda q, tokens: d.law_mean(q, target["arch"], target["data_mix"],  # noqa: E731
                                      float(target["n_params"]), tokens,
                                      float(target.get("n_params_total", np.nan)))
    n_tokens = float(target["n_tokens"])
    d_log_loss = at("loss", 2 * n_tokens) - at("loss", n_tokens)
    d_log_batch = at("batch", 2 * n_tokens) - at("batch", n_tokens)
    log_b_opt, loss_opt, inv_bb = _per_draw_bowl(cells)
    gain = loss_opt * (1.0 - np.exp(d_log_loss))
    with np.errstate(invalid="ignore"):
        return np.where(gain > 0, log_b_opt + d_log_batch + np.sqrt(2.0 * gain * inv_bb),
                        np.nan)


def _critical_from_data(posterior: xr.DataTree, arch: str) -> bool:
    """Whether the fitted runs of ``arch`` vary D apart from N and vary the batch in a cell."""
    from bayes_scaling.model.fit import posterior_runs  # local: keeps this module light

    runs = posterior_runs(posterior)
    mine = runs[(runs["arch"] == arch) & (runs["status"] == "ok")]
    if mine.empty or arch in exponent_ridges(runs):
        return False
    return bool((mine.groupby("cell")["batch_tokens"].nunique() >= 2).any())


def _best_single_lr(cells: xr.Dataset, log_batch: np.ndarray, n_lr: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At each log batch: the lr minimising the expected regret (%), that regret, and the
    per-draw regret (%) with each draw's own best lr, as (batch,) arrays and (draw, batch)."""
    loss_opt = np.exp(cells["log_loss_opt"])
    per_draw = xr.concat([optimum_at_batch(cells, float(b)) for b in log_batch], dim="batch")
    own = 100.0 * (np.exp(per_draw["log_loss_opt_at_batch"]) - loss_opt) / loss_opt
    centre = per_draw["log_lr_opt_at_batch"].median(SAMPLE_DIMS).to_numpy()
    offsets = np.linspace(-0.6, 0.6, n_lr)
    log_lr = centre[:, None] + offsets[None, :]
    choices = as_choices(np.exp(log_lr).ravel(), np.repeat(np.exp(log_batch), n_lr), None)
    pct = 100.0 * regret_draws(cells, choices) / loss_opt
    expected = pct.mean(SAMPLE_DIMS).to_numpy().reshape(len(log_batch), n_lr)
    best = expected.argmin(axis=1)
    rows = np.arange(len(log_batch))
    return (np.exp(log_lr[rows, best]), expected[rows, best],
            own.transpose(*SAMPLE_DIMS, "batch").to_numpy().reshape(-1, len(log_batch)))


def max_safe_batch(posterior: xr.DataTree, target: pd.DataFrame | dict,
                   max_regret_pct: float = 0.1, *, prob: float = 0.9, n_grid: int = 61,
                   n_lr: int = 41, seed: int = 0) -> MaxBatch:
    """The largest batch (tokens) at ``target`` whose expected regret, with the lr
    re-optimised, stays within ``max_regret_pct`` % of the optimal loss.

    Args:
        posterior: a fitted posterior; target: one row (arch, data_mix, n_params, n_tokens).
        max_regret_pct: the tolerance in % of the loss (0.1 = 0.1%).
        prob: central interval of each draw's largest batch.
        n_grid: batch grid points (from B*/8 to B* x 64, log-spaced); n_lr: lr grid per batch.
        seed: seeds the target's new-cell draws (as :func:`predict`).
    """
    if not max_regret_pct > 0:
        raise TargetError(f"max_safe_batch: the tolerance must be > 0 %, got {max_regret_pct}")
    rows = prediction_targets(target)
    if len(rows) != 1:
        raise TargetError(f"max_safe_batch: give one target row, got {len(rows)}")
    cells = draw_new_cells(posterior, rows, seed=seed).isel(target=0)
    log_b_opt = float(cells["log_batch_opt"].median())
    log_batch = log_b_opt + np.linspace(np.log(1 / 8), np.log(64.0), n_grid)
    lr, expected, own = _best_single_lr(cells, log_batch, n_lr)
    draws = _per_draw_max_log_batch(cells, max_regret_pct)
    lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2])
    start = int(np.argmin(expected))
    ok = expected[start:] <= max_regret_pct
    last = start + (int(np.flatnonzero(~ok)[0]) - 1 if (~ok).any() else len(ok) - 1)
    if last < start:  # even the best batch misses the tolerance
        point, pair, regret = np.nan, np.nan, float(expected[start])
    elif last + 1 < len(log_batch):  # interpolate the crossing in log batch
        e0, e1 = expected[last], expected[last + 1]
        f = (max_regret_pct - e0) / (e1 - e0)
        point = float(np.exp(log_batch[last] + f * (log_batch[last + 1] - log_batch[last])))
        pair = float(np.exp(np.log(lr[last]) + f * (np.log(lr[last + 1]) - np.log(lr[last]))))
        regret = float(max_regret_pct)
    else:
        point, pair, regret = float(np.exp(log_batch[last])), float(lr[last]), float(
            expected[last])
    qs = np.quantile(own, [0.5, (1 - prob) / 2, (1 + prob) / 2], axis=0)
    critical = np.exp(np.nanquantile(
        _per_draw_critical_log_batch(posterior, rows.iloc[0], cells, seed),
        [0.5, (1 - prob) / 2, (1 + prob) / 2]))
    curve = xr.Dataset(
        {"expected_regret_pct": ("batch_tokens", expected), "lr": ("batch_tokens", lr),
         "regret_pct_median": ("batch_tokens", qs[0]), "regret_pct_lo": ("batch_tokens", qs[1]),
         "regret_pct_hi": ("batch_tokens", qs[2])},
        coords={"batch_tokens": np.exp(log_batch)},
        attrs={"tolerance_pct": max_regret_pct, "prob": prob, "seed": seed})
    return MaxBatch(tolerance_pct=float(max_regret_pct), prob=prob,
                    max_batch_tokens={"point": point, "median": float(np.exp(np.median(draws))),
                                      "lo": float(np.exp(lo)), "hi": float(np.exp(hi))},
                    lr=pair, expected_regret_pct=regret, batch_opt_tokens=float(np.exp(log_b_opt)),
                    curve=curve, critical_batch_tokens=dict(zip(("median", "lo", "hi"),
                                                                map(float, critical),
                                                                strict=True)),
                    critical_from_data=_critical_from_data(posterior, rows.iloc[0]["arch"]))
