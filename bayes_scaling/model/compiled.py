"""Sample a built model with nutpie, compiling it once per process for every sweep of the
same structure.

Compiling the model takes PyTensor's rewrites (~4 s on the Step Law model) and nutpie's
C-callable wrappers, which :mod:`bayes_scaling.model.nutpie_wrappers` caches on disk (numba
recompiled nutpie's own in every process: ~8 s). Every number the model takes
from a sweep enters the graph as data (:mod:`bayes_scaling.model.graph`), so two sweeps with
the same parameter shapes (archs, mixes, cells, dims, weight-decay-informed cells) under the
same spec share one compiled model: a later fit swaps the data in
(:func:`~bayes_scaling.model.nutpie_wrappers.with_data`) and its start point, and samples
at once. Runs per cell may differ. The draws depend on the seed and the data alone, not on
whether the compiled model was reused (tests/test_fit.py compares a fresh compile on an
empty cache with a reused one).
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np
import nutpie
import pymc as pm
import pytensor
import xarray as xr
from nutpie.compile_pymc import (
    CompiledPyMCModel,
    _prepare_dims_and_coords,
    _rv_dict_to_flat_array_wrapper,
    _wrap_with_lock,
)
from pymc.backends.arviz import patch_nutpie_idata
from pymc.initial_point import make_initial_point_fn
from pymc.progress_bar import NutpieProgressBarManager
from pymc.util import get_random_generator
from pytensor.compile.sharedvalue import SharedVariable

from bayes_scaling.model import nutpie_wrappers
from bayes_scaling.model.inputs import ModelInputs
from bayes_scaling.model.spec import Spec

CACHE_SIZE = 4
"""Compiled models kept per process (least recently used dropped first)."""
_CACHE: OrderedDict[Hashable, CompiledPyMCModel] = OrderedDict()


def structure_key(inputs: ModelInputs, spec: Spec) -> tuple:
    """What fixes the compiled graph and its parameter shapes; the rest is data."""
    runs, has_wd = inputs.runs, inputs.cells["has_wd"].to_numpy()
    return (spec.hash, len(inputs.archs), len(inputs.mixes), len(inputs.configs),
            len(inputs.cells), inputs.dims,
            int(has_wd.sum()), int(inputs.cells["thin"].sum()),
            bool((~runs["censored"]).any()), bool(runs["censored"].any()))


JITTER = 0.2
"""Half-width of the uniform jitter added to each chain's start on the unconstrained scale
(:func:`start_point_fn`)."""


def start_point_fn(model: pm.Model, initvals: dict) -> Callable[[int], dict[str, np.ndarray]]:
    """Each chain's start (a function of its seed; transformed values by name): the
    data-informed values of ``initvals`` (cell optima, arch intercepts) as they are, every
    other free variable at PyMC's start plus uniform(-JITTER, JITTER).

    PyMC's own jitter, uniform(-1, 1) on every variable, ignores their scales: it moved a
    cell's log optimal loss by up to a factor of e from its best run (on a simulated 156-cell
    sweep one chain of four never left such a start: 1,000 divergent transitions), and a
    skew (prior sd 0.3) near 1 started chains of a 4-cell tracker sweep in local modes
    they never left (log density 114 and -4,566 against 179)."""
    base = make_initial_point_fn(model=model, overrides=initvals, jitter_rvs=set(),
                                 return_transformed=True)
    jittered = [model.rvs_to_values[rv].name for rv in model.free_RVs
                if rv.name not in initvals]

    def start(seed: int) -> dict[str, np.ndarray]:
        point, rng = base(seed), np.random.default_rng(seed)
        for name in jittered:
            value = np.asarray(point[name], dtype=float)
            point[name] = value + rng.uniform(-JITTER, JITTER, value.shape)
        return point

    return start


def _initial_point_fn(model: pm.Model, initvals: dict, shape_info: tuple):
    """nutpie's start-point function of ``model`` (:func:`start_point_fn`), flattened in
    the order of a compiled model's ``shape_info``, callable from the chains' threads at once
    (what :func:`nutpie.compile_pymc_model` builds)."""
    names, _, shapes = shape_info
    n_free = len(model.free_RVs)
    fn = _wrap_with_lock(start_point_fn(model, initvals))
    return _rv_dict_to_flat_array_wrapper(fn, names=names[:n_free], shapes=shapes[:n_free])


def _shared_values(model: pm.Model, names: list[str]) -> dict[str, np.ndarray] | None:
    """The values of ``model``'s shared variables (data and dim lengths) by name; None when
    one is missing (then the graphs differ)."""
    found = {v.name: v for v in model.named_vars.values() if isinstance(v, SharedVariable)}
    found.update({n: v for n, v in model.dim_lengths.items() if isinstance(v, SharedVariable)})
    if not set(names) <= set(found):
        return None
    return {n: found[n].get_value() for n in names}


def compiled_model(model: pm.Model, inputs: ModelInputs, spec: Spec,
                   initvals: dict) -> tuple[CompiledPyMCModel, bool]:
    """The nutpie model of ``model`` and whether it was reused: this process's compiled model
    of the same structure with ``model``'s data and start point swapped in, or a new compile
    (then kept)."""
    key = structure_key(inputs, spec)
    cached = _CACHE.get(key)
    if cached is not None:
        names = [var.name for var in cached.shared_var_keys]
        values = _shared_values(model, names)
        if values is not None:
            _CACHE.move_to_end(key)
            dims, coords = _prepare_dims_and_coords(model, cached.shape_info,
                                                    cached.reparameterized_names)
            start = _initial_point_fn(model, initvals, cached.shape_info)
            swapped = (nutpie_wrappers.with_data(cached, **values)
                       if _is_cached_build(cached) else cached.with_data(**values))
            return dataclasses.replace(swapped, initial_point_func=start, dims=dims,
                                       _coords=coords), True
    # numba's fastmath lets LLVM fuse and reorder floating point differently in freshly
    # compiled and in disk-cached functions, so the same seed gave other draws on a cold and
    # on a warm compile cache; IEEE arithmetic makes the draws depend on the seed alone.
    with pytensor.config.change_flags(numba__fastmath=False):
        compiled = nutpie_wrappers.compile_cached(model, start_point_fn(model, initvals))
        if compiled is None:
            compiled = nutpie.compile_pymc_model(model)
            compiled = dataclasses.replace(compiled, initial_point_func=_initial_point_fn(
                model, initvals, compiled.shape_info))
    _CACHE[key] = compiled
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled, False


def _is_cached_build(compiled: CompiledPyMCModel) -> bool:
    """Whether ``compiled`` carries :mod:`nutpie_wrappers`' callbacks (flat user data)."""
    return compiled.user_data.dtype == np.uint64


def sample(model: pm.Model, inputs: ModelInputs, spec: Spec, *, initvals: dict, draws: int,
           tune: int, chains: int, cores: int, seed: int, target_accept: float,
           adaptation: str, progressbar: bool | str) -> xr.DataTree:
    """NUTS draws of ``model`` (nutpie), as ``pm.sample(nuts_sampler="nutpie")`` returns
    them, with the same seed handling; attrs ``compile_seconds`` and ``compiled`` ("new" or
    "reused") say what the compile cost."""
    start = time.perf_counter()
    compiled, reused = compiled_model(model, inputs, spec, initvals)
    compile_seconds = time.perf_counter() - start
    chain_seed = int(get_random_generator(seed).spawn(chains)[0].integers(2**30))
    bar = NutpieProgressBarManager(chains=chains, draws=draws, progressbar=progressbar,
                                   progressbar_theme=None)
    start = time.time()
    with bar:
        idata = nutpie.sample(compiled, draws=draws, tune=max(tune, 1), chains=chains,
                              cores=cores, seed=chain_seed, save_warmup=False,
                              progress_bar=False, progress_callback=bar.update,
                              target_accept=target_accept, adaptation=adaptation)
    patch_nutpie_idata(idata, model, sampling_time=time.time() - start)
    idata.attrs.update(compiled="reused" if reused else "new",
                       compile_seconds=compile_seconds)
    return idata
