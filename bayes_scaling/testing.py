"""A small fake posterior made without sampling, for tests, notebooks and benchmarks.

:func:`fake_posterior` returns a DataTree with the structure and provenance attrs of
:func:`bayes_scaling.model.fit.fit` (posterior with every free variable and deterministic,
sample_stats, observed_data, constant_data, runs, cells, excluded), so predict, regret,
propose, plots, report, save and load all accept it, in well under a second once the model
is compiled. It is generic over the model: the variables come from the PyMC model that
:func:`~bayes_scaling.model.graph.build_model` returns, evaluated at a jittered point by one
compiled function. Its draws are NOT a posterior: they scatter around one point (the
model's data-informed start, or the simulator's truth where names match), with ``jitter``
standard deviation in the unconstrained space. Use a real fit to test statistics.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import subprocess
import time
import traceback
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr
from pymc.backends.arviz import (
    coords_and_dims_for_inferencedata,
    dict_to_dataset,
    find_constants,
    find_observations,
)
from pymc.initial_point import make_initial_point_fn

from bayes_scaling.data import Sweep
from bayes_scaling.data.simulate import default_cells, simulate_sweep
from bayes_scaling.model.fit import package_posterior
from bayes_scaling.model.graph import build_model, initial_values
from bayes_scaling.model.inputs import ModelInputs, prepare_inputs
from bayes_scaling.model.sampler import DRAWS_AUTO
from bayes_scaling.model.spec import Spec, default_spec

__all__ = ["BackgroundJobs", "core_arrays", "execute_notebook", "fake_posterior", "fake_refit",
           "small_sweep"]


def core_arrays(inputs: ModelInputs) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The ``cells`` and ``runs`` arrays :func:`bayes_scaling.model.core.log_density` takes,
    from model inputs (covariates uncentred; a censored run's loss is its edge)."""
    cells, runs = inputs.cells, inputs.runs
    cell_arrays = {
        "arch_idx": cells["arch_idx"].to_numpy(), "mix_idx": cells["mix_idx"].to_numpy(),
        "x_n": cells["x_n"].to_numpy() + inputs.x_n_centre,
        "x_n_total": cells["x_n_total"].to_numpy() + inputs.x_n_centre,
        "x_d": cells["x_d"].to_numpy() + inputs.x_d_centre,
        "x_tpp": cells["x_tpp"].to_numpy() + inputs.x_tpp_centre,
        "log_d": np.log(cells["n_tokens"].to_numpy(float)), "has_wd": cells["has_wd"].to_numpy(),
        "thin": cells["thin"].to_numpy(), "config_idx": cells["config_idx"].to_numpy()}
    censored = runs["censored"].to_numpy()
    run_arrays = {k: runs[k].to_numpy() for k in ("cell_idx", "log_lr", "log_batch", "log_wd",
                                                  "wd_mask", "batch_mask")}
    run_arrays.update(censored=censored,
                      loss=np.where(censored, runs["edge"], runs["loss"]).astype(float))
    return cell_arrays, run_arrays


def small_sweep(seed: int = 0) -> tuple[Sweep, xr.Dataset]:
    """A small simulated sweep (dense + MoE, one mix 'web', three sizes, 12 cells, 6 lrs x
    4 batches each) and its truth: the sweep :func:`fake_posterior` uses by default."""
    cells = default_cells(mixes=("web",), n_params=(5e7, 1.5e8, 4.5e8))
    return simulate_sweep(seed, cells=cells, n_lr=6)


def _truth_values(model: pm.Model, truth: xr.Dataset, start: dict[str, np.ndarray],
                  ) -> dict[str, np.ndarray]:
    """Free variables whose name and dims match a truth variable, aligned by coordinate
    labels; elements the truth lacks (e.g. a cell it does not know) keep ``start``."""
    out = {}
    for rv in model.free_RVs:
        name = rv.name
        if name not in truth or name not in start:
            continue
        dims = model.named_vars_to_dims.get(name) or ()
        value = truth[name]
        if not set(value.dims) <= set(dims):
            continue
        here = xr.DataArray(np.asarray(start[name], float),
                            dims=dims, coords={d: list(model.coords[d]) for d in dims})
        aligned = value.reindex({d: here[d].values for d in value.dims}).broadcast_like(here)
        merged = aligned.transpose(*dims).where(aligned.notnull(), here)
        out[name] = merged.to_numpy().astype(np.asarray(start[name]).dtype)
    return out


def fake_posterior(sweep: Sweep | None = None, *, truth: xr.Dataset | None = None,
                   chains: int = 2, draws: int = 50, jitter: float = 0.05, seed: int = 0,
                   spec: Spec | None = None) -> xr.DataTree:
    """A posterior-shaped DataTree for ``sweep`` made without sampling.

    Args:
        sweep: the data; default :func:`small_sweep` (whose truth is then used unless
            ``truth`` is given).
        truth: a simulator truth (``simulate_sweep(..., return_truth=True)``): free model
            variables with the same name and dims take its values.
        chains, draws: sample dims of the result.
        jitter: standard deviation of the per-draw normal jitter in the unconstrained space.
        seed: seeds the jitter (and the default sweep).
        spec: the model spec; default :func:`~bayes_scaling.model.spec.default_spec`.
    """
    spec = spec or default_spec()
    if sweep is None:
        sweep, simulated = small_sweep(seed)
        truth = simulated if truth is None else truth
    inputs = prepare_inputs(sweep, window=spec.window)
    model = build_model(inputs, spec)

    start = make_initial_point_fn(model=model, overrides=initial_values(inputs),
                                  return_transformed=False)(seed)
    if truth is not None:
        start |= _truth_values(model, truth, start)
    point = make_initial_point_fn(model=model, overrides=start, return_transformed=True)(seed)

    names = [rv.name for rv in model.free_RVs] + [d.name for d in model.deterministics]
    outs = model.replace_rvs_by_values([*model.free_RVs, *model.deterministics])
    fn = model.compile_fn([*outs, model.logp()], inputs=model.value_vars, point_fn=False,
                          on_unused_input="ignore")
    rng = np.random.default_rng(seed)
    values: dict[str, list] = {n: [] for n in names}
    lp = np.empty((chains, draws))
    for c in range(chains):
        for d in range(draws):
            at = {v.name: point[v.name] + jitter * rng.standard_normal(np.shape(point[v.name]))
                  for v in model.value_vars}
            result = fn(**at)
            for n, r in zip(names, result[:-1], strict=True):
                values[n].append(r)
            lp[c, d] = result[-1]
    stacked = {n: np.stack(v).reshape(chains, draws, *np.shape(v[0])) for n, v in values.items()}

    coords, dims = coords_and_dims_for_inferencedata(model)
    posterior = dict_to_dataset(stacked, inference_library=pm, coords=coords, dims=dims,
                                attrs={"sampling_time": 0.0, "tuning_steps": 0})
    tree = xr.DataTree.from_dict({
        "posterior": posterior,
        "sample_stats": _sample_stats(lp, rng),
        "observed_data": dict_to_dataset(find_observations(model), inference_library=pm,
                                         coords=coords, dims=dims, sample_dims=[]),
        "constant_data": dict_to_dataset(find_constants(model), inference_library=pm,
                                         coords=coords, dims=dims, sample_dims=[]),
    })
    tree = package_posterior(tree, sweep, spec, inputs, seed=seed, seconds=0.0)
    tree.attrs["fake_posterior"] = (f"bayes_scaling.testing.fake_posterior: no sampling, "
                                    f"jitter {jitter} around one point")
    return tree


def _sample_stats(lp: np.ndarray, rng: np.random.Generator) -> xr.Dataset:
    """Sampler statistics named and typed as nutpie's, shaped like a clean run (no
    divergences, E-BFMI near 2 for independent draws)."""
    shape = lp.shape
    s = ("chain", "draw")
    full = lambda value, dtype=float: (s, np.full(shape, value, dtype))  # noqa: E731
    error = 0.1 * rng.standard_normal(shape)
    return xr.Dataset(
        {"depth": full(4, np.uint64), "maxdepth_reached": full(False, bool),
         "step_size": full(0.3), "transformation_update_id": full(0, np.int64),
         "step_size_bar": full(0.3), "mean_tree_accept": full(0.8),
         "mean_tree_accept_sym": full(0.8), "n_steps": full(15, np.uint64),
         "max_energy_error": (s, np.abs(error)), "tuning": full(False, bool),
         "index_in_trajectory": full(0, np.int64), "logp": (s, lp),
         "energy": (s, -lp + rng.standard_normal(shape)), "energy_error": (s, error),
         "fisher_distance": full(0.0), "transformation_index": full(0, np.int64),
         "diverging": full(False, bool), "divergence_draw": full(0, np.uint64),
         "divergence_message": full("", object), "divergence_energy_error": full(np.nan)},
        coords={"chain": np.arange(shape[0]), "draw": np.arange(shape[1])})


def _silence() -> None:
    """Worker initialiser: send the worker's stdout and stderr (compiler and sampler
    chatter) to /dev/null; errors still reach the caller through
    :meth:`BackgroundJobs.result`."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


JOB_LOG = "BAYES_SCALING_JOB_LOG"
"""Environment variable: a file to which each background job appends one line (name, wall
and CPU seconds, its child processes' included), to see where a test session's time goes."""


def _call(key: Hashable, func: Callable, args: tuple, kwargs: dict) -> Any:
    """Run ``func`` in a worker; its error comes back as a RuntimeError carrying the type,
    message and traceback (some exception classes do not survive pickling)."""
    start, cpu = time.perf_counter(), _cpu_seconds()
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        raise RuntimeError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}") from None
    finally:
        if os.environ.get(JOB_LOG):
            with open(os.environ[JOB_LOG], "a", encoding="utf-8") as log:
                log.write(f"{key!r}\twall {time.perf_counter() - start:.1f} s\tcpu "
                          f"{_cpu_seconds() - cpu:.1f} s\n")


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children so far."""
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                 resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _fit(sweep: Sweep, **kwargs) -> xr.DataTree:
    from bayes_scaling.model.fit import fit

    return fit(sweep, progressbar=False, **kwargs)


def fits_in_turn(jobs: list[tuple[Sweep, dict]]) -> list[xr.DataTree]:
    """``fit(sweep, progressbar=False, **kwargs)`` for each job, one after the other in this
    process, so that sweeps of one structure share one compiled model
    (:mod:`bayes_scaling.model.compiled`)."""
    return [_fit(sweep, **kwargs) for sweep, kwargs in jobs]


def processes_in_turn(commands: list[dict]) -> list[subprocess.CompletedProcess]:
    """``subprocess.run(capture_output=True, text=True, **command)`` for each command, one
    after the other (a command may need the files of the one before)."""
    return [subprocess.run(capture_output=True, text=True, **command) for command in commands]


class BackgroundJobs:
    """Calls (fits, notebook runs) in spawned worker processes while the caller does other
    work; :meth:`result` waits for one. A fit's draws are those of the same call in any
    other process (fit is seeded); only the wall time changes.

    Compiling the model, most of a small fit's time, uses one core; a test suite that runs
    on one core otherwise leaves the second core of a 2-core machine idle for these.
    """

    def __init__(self, workers: int = 2, quiet: bool = True) -> None:
        self._pool = multiprocessing.get_context("spawn").Pool(
            workers, initializer=_silence if quiet else None)
        self._jobs: dict[Hashable, multiprocessing.pool.AsyncResult] = {}

    def submit(self, key: Hashable, func: Callable, *args, **kwargs) -> None:
        """Start ``func(*args, **kwargs)`` under ``key`` (once); ``func`` must be importable
        by name (a module-level function)."""
        if key not in self._jobs:
            self._jobs[key] = self._pool.apply_async(_call, (key, func, args, kwargs))

    def __contains__(self, key: Hashable) -> bool:
        return key in self._jobs

    def result(self, key: Hashable, timeout: float | None = None) -> Any:
        """What the call submitted under ``key`` returned (waits for it; raises its error)."""
        return self._jobs[key].get(timeout)

    def close(self) -> None:
        """Stop the workers, finished or not."""
        self._pool.terminate()
        self._pool.join()


def execute_notebook(notebook: str | Path | Any, cwd: str | Path, env: dict[str, str] | None = None,
                     timeout: int = 900) -> Any:
    """Execute a notebook with nbclient in the ``python3`` kernel (this environment's) in the
    folder ``cwd``; the kernel inherits the environment plus ``env``. ``notebook`` is a
    jupytext source path or an ``nbformat`` notebook. Returns the executed notebook; raises
    on the first cell that errors. Needs the dev extras (jupytext, nbclient, ipykernel)."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(notebook) if isinstance(notebook, str | Path) else notebook
    env = env or {}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd)}})
        return client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def fake_refit(sweep: Sweep, spec: Spec, seed: int, *,
               truth: xr.Dataset | None = None) -> xr.DataTree:
    """A stand-in for a real refit (:func:`bayes_scaling.heldout.loco.refit_posterior`):
    :func:`fake_posterior` of ``sweep`` around ``truth``, with the chains and draws of the
    spec's sampler. Module-level, so ``functools.partial(fake_refit, truth=...)`` pickles
    into the check's worker processes."""
    draws = spec.sampler["draws"]
    return fake_posterior(sweep, truth=truth, chains=spec.sampler["chains"],
                          draws=DRAWS_AUTO if draws == "auto" else draws, seed=seed,
                          spec=spec)
