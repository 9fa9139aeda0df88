"""nutpie's C-callable logp and expand functions, compiled once and cached on disk.

``nutpie.compile_pymc_model`` wraps PyTensor's numba functions in ``numba.cfunc`` callbacks
that numba cannot cache ("uses dynamic globals"), so every process recompiled them: on the
Step Law model 6.6 s for the logp wrapper and 1.3 s for the expand one, most of it LLVM
re-optimizing the whole logp graph linked into the wrapper. Here the same callbacks are
generated as source with a cache key (PyTensor's key of the wrapped function, which names
its graph, plus the parameter count) and compiled with ``cache=True`` in PyTensor's numba
cache: a later process loads them.

They take the model's shared variables through nutpie's user-data pointer as a flat
``uint64`` array of (address, length) pairs, so every shared variable must be a 1-D float64
vector: :mod:`bayes_scaling.model.graph` puts the whole sweep in one. Anything else returns
None and the caller falls back to nutpie's own compile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numba
import numpy as np
from nutpie.compile_pymc import (
    CompiledPyMCModel,
    _make_functions,
    _prepare_dims_and_coords,
    _wrap_with_lock,
    address_as_void_pointer,
)
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

__all__ = ["WRAPPER_VERSION", "compile_cached", "with_data"]

WRAPPER_VERSION = 2
"""Part of every wrapper's cache key: bump it when the generated source changes."""

_LOGP_SIG = numba.types.int64(numba.types.uint64, numba.types.CPointer(numba.types.double),
                              numba.types.CPointer(numba.types.double),
                              numba.types.CPointer(numba.types.double), numba.types.voidptr)
_EXPAND_SIG = numba.types.int64(numba.types.uint64, numba.types.uint64,
                                numba.types.CPointer(numba.types.double),
                                numba.types.CPointer(numba.types.double), numba.types.voidptr)

_SHARED = """
    meta = numba.carray(user_data_, ({pairs},), np.uint64)
{unpack}"""
_LOGP_SRC = """
def bs_logp(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    try:
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_dim},))
        logp = numba.carray(logp_, ())
{shared}
        logp_val, grad = inner(x{args})
        logp[()] = logp_val
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:  # noqa: BLE001
        return 1
    return 0
"""
_EXPAND_SRC = """
def bs_expand(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    try:
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_expanded},))
{shared}
        (values,) = inner(x{args})
        out[...] = values
    except Exception:  # noqa: BLE001
        return -2
    return 0
"""


def _shared_lines(positions: list[int], n_pairs: int) -> tuple[str, str]:
    """Source that unpacks the shared vectors at ``positions`` of the user data, and the
    call's extra arguments."""
    if not positions:
        return "", ""
    unpack = "".join(
        f"    d{i} = numba.carray(address_as_void_pointer(meta[{2 * p}]), "
        f"(int(meta[{2 * p + 1}]),), np.float64)\n" for i, p in enumerate(positions))
    shared = _SHARED.format(pairs=2 * n_pairs, unpack=unpack)
    shared = "\n".join("    " + line if line else line for line in shared.splitlines())
    return shared, "".join(f", d{i}" for i in range(len(positions)))


def _cached_cfunc(template: str, name: str, fn, positions: list[int], n_pairs: int,
                  sig, **sizes: int):
    """The callback of ``template`` around PyTensor's compiled ``fn``, cached on disk; None
    when PyTensor did not give ``fn`` a cache key."""
    inner_key = CACHED_SRC_FUNCTIONS.get(fn.vm.jit_fn.py_func)
    if inner_key is None:
        return None
    shared, args = _shared_lines(positions, n_pairs)
    src = template.format(shared=shared, args=args, **sizes)
    key = (f"bayes_scaling_{name}_v{WRAPPER_VERSION}_{inner_key}_"
           + "_".join(f"{k}{v}" for k, v in sorted(sizes.items()))
           + f"_shared{'-'.join(map(str, positions))}of{n_pairs}")
    # __name__: a cached callback's environment is rebuilt by importing its module
    py = compile_numba_function_src(
        src, name, global_env={"__name__": __name__, "numba": numba, "np": np,
                               "inner": fn.vm.jit_fn,
                               "address_as_void_pointer": address_as_void_pointer},
        cache_key=key)
    return numba.cfunc(sig, cache=True)(py)


def _user_data(shared: dict[str, np.ndarray]) -> np.ndarray:
    """(address, length) of each shared vector, in order, as nutpie's user data."""
    return np.array([v for arr in shared.values() for v in (arr.ctypes.data, arr.size)],
                    dtype=np.uint64)


def compile_cached(model, start: Callable[[int], dict]) -> CompiledPyMCModel | None:
    """What ``nutpie.compile_pymc_model(model)`` returns, with the callbacks loaded from (or
    compiled into) the disk cache and ``start`` (seed -> transformed start values by name) as
    the chains' start; None where the model's shared variables are not all 1-D float64
    vectors or PyTensor gave no cache key."""
    if not all(_is_flat(v.get_value()) for v in model.named_vars.values()
               if isinstance(v, SharedVariable)):
        return None  # before PyTensor's functions are built: nutpie's compile builds its own
    (n_dim, n_expanded, logp_fn, expand_fn, initial_point_fn, shape_info,
     reparameterized) = _make_functions(model, mode="NUMBA", compute_grad=True,
                                        join_expanded=True,
                                        pymc_initial_point_fn=_wrap_with_lock(start),
                                        var_names=None)
    variables = list(dict.fromkeys([*logp_fn.get_shared(), *expand_fn.get_shared()]))
    if not all(_is_flat(v.get_value()) for v in variables):
        return None
    keys = {var: var.name or f"shared{i}" for i, var in enumerate(variables)}
    shared = {keys[var]: _frozen(var.get_value()) for var in variables}
    logp_c = _cached_cfunc(_LOGP_SRC, "bs_logp", logp_fn,
                           [variables.index(v) for v in logp_fn.get_shared()], len(variables),
                           _LOGP_SIG, n_dim=n_dim)
    expand_c = _cached_cfunc(_EXPAND_SRC, "bs_expand", expand_fn,
                             [variables.index(v) for v in expand_fn.get_shared()],
                             len(variables), _EXPAND_SIG, n_dim=n_dim, n_expanded=n_expanded)
    if logp_c is None or expand_c is None:
        return None
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_c, compiled_expand_func=expand_c,
        initial_point_func=initial_point_fn, shared_data=shared, shared_var_keys=keys,
        user_data=_user_data(shared), n_expanded=n_expanded, shape_info=shape_info,
        logp_func=logp_fn, expand_func=expand_fn, reparameterized_names=reparameterized)


def _is_flat(value) -> bool:
    """Whether the callbacks can read ``value``: a 1-D float64 vector."""
    value = np.asarray(value)
    return value.ndim == 1 and value.dtype == np.float64


def _frozen(values) -> np.ndarray:
    """A read-only C-ordered float64 copy (what the callbacks read through its address)."""
    out = np.array(values, dtype=np.float64, order="C", copy=True)
    out.flags.writeable = False
    return out


def with_data(compiled: CompiledPyMCModel, **updates: np.ndarray) -> CompiledPyMCModel:
    """``compiled`` reading other values of its shared vectors (by name), as nutpie's
    ``with_data`` does for its own callbacks."""
    unknown = set(updates) - set(compiled.shared_data)
    if unknown:
        raise KeyError(f"unknown shared variable(s): {sorted(unknown)}")
    shared = {k: (_frozen(updates[k]) if k in updates else v)
              for k, v in compiled.shared_data.items()}
    return dataclasses.replace(compiled, shared_data=shared, user_data=_user_data(shared))
