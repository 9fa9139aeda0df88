"""Next-run selection: candidates (generated, given, or a pool's rows), their value, propose."""

from bayes_scaling.lazy import lazy_exports

_EXPORTS = {
    "propose": "propose",
    "default_candidates": "candidates",
    "as_candidates": "candidates",
    "read_pool": "pool",
}
"""Public name -> module of this stage that defines it (imported on first use)."""

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
