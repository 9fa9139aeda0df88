"""The prior predictive in numbers: what the spec's priors alone imply for lr_opt, batch_opt
and the optimal loss at a sweep's cells and at targets, next to the cells' best runs.

Takes the prior draws of :func:`bayes_scaling.model.prior.sample_prior` (packaged like a
posterior, so :func:`~bayes_scaling.predict.predict.predict` gives the prior predictive at a
target unchanged).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.model.fit import posterior_cells, posterior_runs
from bayes_scaling.predict.predict import predict

QUANTITIES = {"lr_opt": "log_lr_opt", "batch_tokens_opt": "log_batch_opt",
              "loss_opt": "log_loss_opt"}
"""Prior-checked quantity -> its cell-level model variable (natural log)."""


def _interval(values: np.ndarray) -> dict[str, float]:
    lo, med, hi = np.quantile(values, [0.05, 0.5, 0.95])
    return {"lo90": float(lo), "median": float(med), "hi90": float(hi)}


def prior_summary(prior: xr.DataTree, targets: pd.DataFrame | dict | None = None,
                  seed: int = 0) -> pd.DataFrame:
    """Prior 90% ranges (natural units) of lr_opt, batch_tokens_opt and loss_opt at each sweep
    cell and each target row: columns where ("cell" / "target"), label, arch, n_params,
    n_tokens, quantity, lo90, median, hi90, observed (the cell's best run's value; NaN for
    targets) and inside (observed within the 90% range)."""
    post = prior["posterior"]
    cells = posterior_cells(prior)
    runs = posterior_runs(prior)
    ok = runs[(runs["status"] == "ok") & np.isfinite(runs["loss"])]
    best = ok.loc[ok.groupby("cell")["loss"].idxmin()].set_index("cell")
    observed = {"lr_opt": best["lr"], "batch_tokens_opt": best["batch_tokens"],
                "loss_opt": best["loss"]}
    rows = []
    for cid, cell in cells.iterrows():
        for q, var in QUANTITIES.items():
            seen = float(observed[q].get(cid, np.nan))
            rng = _interval(np.exp(post[var].sel(cell=cid).to_numpy().ravel()))
            rows.append({"where": "cell", "label": cid, "arch": cell["arch"],
                         "n_params": float(cell["n_params"]),
                         "n_tokens": float(cell["n_tokens"]), "quantity": q, **rng,
                         "observed": seen, "inside": rng["lo90"] <= seen <= rng["hi90"]})
    if targets is not None:
        pred = predict(prior, targets, seed=seed)
        for t in range(pred.draws.sizes["target"]):
            at = pred.draws.isel(target=t)
            for q in QUANTITIES:
                n, d = float(at["n_params"]), float(at["n_tokens"])
                rows.append({"where": "target", "label": f"{at['arch'].item()} N={n:.3g} D={d:.3g}",
                             "arch": str(at["arch"].item()), "n_params": n, "n_tokens": d,
                             "quantity": q, **_interval(at[q].to_numpy().ravel()),
                             "observed": np.nan, "inside": False})
    return pd.DataFrame(rows)
