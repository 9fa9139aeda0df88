"""The model: generative core, spec and priors, PyMC graph, fit, diagnostics, files."""

from bayes_scaling.lazy import lazy_exports

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
    "sample_prior": "prior",
}
"""Public name -> module of this stage that defines it (imported on first use)."""

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
