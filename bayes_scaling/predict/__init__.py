"""Predictions from posterior draws: optima at a target, lr at a batch, regret."""

from importlib import import_module

_EXPORTS = {
    "predict": "predict",
    "Prediction": "predict",
    "expected_regret": "regret",
    "default_mix": "targets",
    "default_targets": "targets",
    "make_target": "targets",
    "compare_choices": "targets",
    "Comparison": "targets",
}
"""Public name -> module of this stage that defines it (imported on first use)."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
