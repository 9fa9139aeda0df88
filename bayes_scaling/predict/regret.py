"""Expected regret of a hyperparameter choice at a target: the posterior expected loss increase
of running at (lr, batch[, weight decay]) instead of at each posterior draw's own optimum.

For every posterior predictive draw of the new cell (its optimum, curvature and skew), the
loss of the choice is the draw's bowl (:func:`bayes_scaling.model.core.bowl_loss`) evaluated at the
choice's log offset from that draw's optimum; the regret is that minus the draw's optimal
loss, averaged over draws (absolute, and relative to the optimal loss in %).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from bayes_scaling.errors import TargetError
from bayes_scaling.model import core
from bayes_scaling.predict.draws import SAMPLE_DIMS, draw_new_cells
from bayes_scaling.predict.predict import conditional_optimum, curvature, prediction_targets

__all__ = ["expected_regret", "regret_draws"]


def as_choices(lr: ArrayLike, batch_tokens: ArrayLike,
             weight_decay: ArrayLike | None) -> pd.DataFrame:
    wd = np.nan if weight_decay is None else weight_decay
    lr, batch, wd = (np.ravel(a).astype(float) for a in
                     np.broadcast_arrays(np.asarray(lr, float), np.asarray(batch_tokens, float),
                                         np.asarray(wd, float)))
    for name, vals in (("lr", lr), ("batch_tokens", batch)):
        if not (vals > 0).all():
            raise TargetError(f"expected_regret: {name} must be positive, got {vals.tolist()}")
    if weight_decay is not None and not (wd > 0).all():
        raise TargetError(f"expected_regret: weight_decay must be positive, got {wd.tolist()}")
    return pd.DataFrame({"lr": lr, "batch_tokens": batch, "weight_decay": wd})


def regret_draws(cells: xr.Dataset, choices: pd.DataFrame) -> xr.DataArray:
    """Loss increase of each choice over each draw's optimum, dims (chain, draw, choice).

    ``cells`` holds ONE target's new-cell draws (dims chain, draw[, dim, offdiag]). A NaN
    weight decay means "at that draw's best weight decay for this lr and batch" (so only the
    lr and batch choice is scored); without a weight-decay dim it is ignored.
    """
    k = cells.sizes["dim"]
    opt = {"lr": cells["log_lr_opt"], "batch": cells["log_batch_opt"],
           "weight_decay": cells["log_weight_decay_opt"]}
    choice = {"lr": np.log(choices["lr"].to_numpy()),
              "batch": np.log(choices["batch_tokens"].to_numpy()),
              "weight_decay": np.log(choices["weight_decay"].to_numpy())}
    at = {d: v.transpose(*SAMPLE_DIMS).to_numpy()[..., None] for d, v in opt.items()}
    delta = np.stack([choice[d][None, None, :] - at[d] for d in cells["dim"].to_numpy()],
                     axis=-1)  # (chain, draw, choice, k)
    skew = cells["skew"].transpose(*SAMPLE_DIMS).to_numpy()[..., None]
    diag = cells["chol_diag"].transpose(*SAMPLE_DIMS, "dim").to_numpy()[:, :, None]
    offdiag = cells["chol_offdiag"].transpose(*SAMPLE_DIMS, "offdiag").to_numpy()[:, :, None]
    if k == 3 and np.isnan(delta[..., 2]).any():
        # best weight decay given lr and batch: minimise the bowl over the wd offset with
        # the (stretched) lr offset and the batch offset held fixed
        s_lr = core.stretch_lr(delta[..., 0], skew)
        h = curvature(cells).transpose(*SAMPLE_DIMS, "dim_row", "dim_col").to_numpy()
        x, _ = conditional_optimum(h[:, :, None], {0: s_lr, 1: delta[..., 1]})
        delta[..., 2] = np.where(np.isnan(delta[..., 2]), x[..., 2], delta[..., 2])
    loss = core.bowl_loss_array(0.0, delta, diag, offdiag, skew)
    return xr.DataArray(loss, dims=(*SAMPLE_DIMS, "choice"),
                        coords={c: cells[c] for c in SAMPLE_DIMS})


def expected_regret(posterior: xr.DataTree, target: pd.DataFrame | dict, lr: ArrayLike,
                    batch_tokens: ArrayLike, weight_decay: ArrayLike | None = None,
                    seed: int = 0, prob: float = 0.9) -> xr.Dataset:
    """Posterior expected loss increase of running ``target`` at each (lr, batch) choice.

    Args:
        posterior: a fitted posterior.
        target: ONE target row (arch, data_mix, n_params, n_tokens[, seq_len]), as for
            :func:`bayes_scaling.predict.predict`; with the same seed the draws are the
            ones ``predict`` uses for that target alone.
        lr, batch_tokens, weight_decay: choices, broadcast against each other (batch in
            tokens). weight_decay None: each draw's best weight decay for that lr and batch.
        seed: seeds the new cell's effects.
        prob: central interval reported for the regret's posterior distribution.

    Returns a Dataset along ``choice`` (coords lr, batch_tokens, weight_decay):
    expected_regret (loss units), expected_regret_pct (100 x regret / optimal loss, averaged
    over draws), and regret_pct_median, regret_pct_lo, regret_pct_hi (its ``prob`` interval).
    """
    rows = pd.DataFrame(target if not isinstance(target, dict) else
                        {k: np.atleast_1d(v) for k, v in target.items()})
    if len(rows) != 1:
        raise TargetError(f"expected_regret: give one target row, got {len(rows)}")
    choices = as_choices(lr, batch_tokens, weight_decay)
    cells = draw_new_cells(posterior, prediction_targets(rows), seed=seed).isel(target=0)
    regret = regret_draws(cells, choices)
    pct = 100.0 * regret / np.exp(cells["log_loss_opt"])
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    q = pct.quantile([0.5, lo, hi], dim=SAMPLE_DIMS)
    out = xr.Dataset({
        "expected_regret": regret.mean(SAMPLE_DIMS),
        "expected_regret_pct": pct.mean(SAMPLE_DIMS),
        "regret_pct_median": q.sel(quantile=0.5, drop=True),
        "regret_pct_lo": q.sel(quantile=lo, drop=True),
        "regret_pct_hi": q.sel(quantile=hi, drop=True),
    })
    out = out.assign_coords(choice=np.arange(len(choices)),
                            **{c: ("choice", choices[c].to_numpy()) for c in choices})
    return out.assign_attrs(prob=prob, seed=seed, target=rows.iloc[0].to_json(),
                            units="expected_regret: loss units; *_pct: % of the optimal loss")
