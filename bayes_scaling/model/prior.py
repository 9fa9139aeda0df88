"""The prior predictive: what the spec's priors alone imply for a sweep and a target.

:func:`sample_prior` draws every model variable from its prior (PyMC's
``sample_prior_predictive`` on the model built for the sweep) and packages the draws like a
posterior (the draws sit in the ``posterior`` group, ``attrs["kind"] = "prior"``), so the
prediction code gives the prior predictive at any target unchanged
(:func:`bayes_scaling.predict.predict`). :func:`prior_summary` tabulates, per sweep cell and
per target, the prior 90% range of lr_opt, batch_opt and the optimal loss next to what the
cell's own runs show.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayes_scaling.data import Sweep
from bayes_scaling.model.fit import frame_to_dataset, provenance
from bayes_scaling.model.graph import build_model
from bayes_scaling.model.inputs import prepare_inputs
from bayes_scaling.model.spec import Spec, default_spec

QUANTITIES = {"lr_opt": "log_lr_opt", "batch_tokens_opt": "log_batch_opt",
              "loss_opt": "log_loss_opt"}
"""Prior-checked quantity -> its cell-level model variable (natural log)."""


def sample_prior(sweep: Sweep, spec: Spec | None = None, *, draws: int = 500,
                 seed: int = 0) -> xr.DataTree:
    """``draws`` prior draws of every model variable for ``sweep``'s cells, packaged like a
    posterior (one chain; groups posterior, runs, cells, excluded; provenance attrs with
    ``kind = "prior"``)."""
    spec = spec or default_spec()
    inputs = prepare_inputs(sweep, window=spec.window)
    model = build_model(inputs, spec)
    names = [v.name for v in model.free_RVs + model.deterministics]
    start = time.perf_counter()
    with model:
        sampled = pm.sample_prior_predictive(draws=draws, random_seed=seed, var_names=names)
    seconds = time.perf_counter() - start
    tree = xr.DataTree.from_dict({"posterior": sampled["prior"].to_dataset()})
    tree["runs"] = xr.DataTree(frame_to_dataset(sweep.runs, "row"))
    tree["cells"] = xr.DataTree(frame_to_dataset(
        inputs.cells.rename_axis("cell_id").reset_index(), "cell_row"))
    tree["excluded"] = xr.DataTree(frame_to_dataset(inputs.excluded, "excluded_row"))
    tree.attrs.update(provenance(sweep, spec, inputs, seed, seconds, None))
    tree.attrs["kind"] = "prior"
    return tree


def _interval(values: np.ndarray) -> dict[str, float]:
    lo, med, hi = np.quantile(values, [0.05, 0.5, 0.95])
    return {"lo90": float(lo), "median": float(med), "hi90": float(hi)}


def prior_summary(prior: xr.DataTree, targets: pd.DataFrame | dict | None = None,
                  seed: int = 0) -> pd.DataFrame:
    """Prior 90% ranges (natural units) of lr_opt, batch_tokens_opt and loss_opt at each sweep
    cell and each target row: columns where ("cell" / "target"), label, arch, n_params,
    n_tokens, quantity, lo90, median, hi90, observed (the cell's best run's value; NaN for
    targets) and inside (observed within the 90% range)."""
    from bayes_scaling.model.fit import posterior_cells, posterior_runs
    from bayes_scaling.predict.predict import predict

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
                rows.append({"where": "target", "label": f"target {t}",
                             "arch": str(at["arch"].item()),
                             "n_params": float(at["n_params"]), "n_tokens": float(at["n_tokens"]),
                             "quantity": q, **_interval(at[q].to_numpy().ravel()),
                             "observed": np.nan, "inside": False})
    return pd.DataFrame(rows)
