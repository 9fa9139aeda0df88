"""The model: generative core, spec and priors, PyMC graph, fit, diagnostics, files."""

from importlib import import_module

_EXPORTS = {
    "load_spec": "spec",
    "default_spec": "spec",
    "Spec": "spec",
    "prepare_inputs": "inputs",
    "build_model": "graph",
    "fit": "fit",
    "diagnose": "fit",
    "save_posterior": "fit",
    "load_posterior": "fit",
}
"""Public name -> module of this stage that defines it (imported on first use)."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
