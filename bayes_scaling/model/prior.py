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

import pymc as pm
import xarray as xr

from bayes_scaling.data import Sweep
from bayes_scaling.model.fit import draws_hash, frame_to_dataset, provenance
from bayes_scaling.model.graph import build_model
from bayes_scaling.model.inputs import prepare_inputs
from bayes_scaling.model.spec import Spec, default_spec


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
    tree.attrs.update(kind="prior", draws_sha256=draws_hash(tree))
    return tree
