"""Next-run selection: candidates, their value, propose."""

from importlib import import_module

_EXPORTS = {
    "propose": "propose",
    "default_candidates": "candidates",
    "as_candidates": "candidates",
}
"""Public name -> module of this stage that defines it (imported on first use)."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
