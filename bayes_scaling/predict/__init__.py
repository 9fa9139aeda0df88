"""Predictions from posterior draws: optima at a target, lr at a batch, regret."""

from bayes_scaling.lazy import lazy_exports

_EXPORTS = {
    "predict": "predict",
    "Prediction": "predict",
    "expected_regret": "regret",
    "default_mix": "targets",
    "default_targets": "targets",
    "make_target": "targets",
    "compare_choices": "targets",
    "Comparison": "targets",
    "prior_summary": "prior_check",
    "max_safe_batch": "max_batch",
    "predict_loss": "loss",
    "LossPrediction": "loss",
    "MaxBatch": "max_batch",
    "draw_new_cells": "draws",
    "update_posterior": "update",
    "reweight_posterior": "update",
    "Update": "update",
}
"""Public name -> module of this stage that defines it (imported on first use)."""

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
