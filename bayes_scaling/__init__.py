"""bayes_scaling: Bayesian scaling laws for the optimal learning rate, batch size and weight
decay of LLM pretraining, with partial pooling across architectures and data mixes.

The public API, by stage (each name is imported on first use, so ``import bayes_scaling``
stays light and loads no PyMC)::

    import bayes_scaling as bs
    sweep = bs.read_sweep("sweep.csv")            # data: read_sweep, read_steplaw, simulate_sweep
    posterior = bs.fit(sweep, seed=0)             # model: load_spec, build_model, fit, diagnose
    bs.save_posterior(posterior, "posterior.nc")  #        save_posterior, load_posterior
    pred = bs.predict(posterior, target)          # predict: predict, expected_regret, default_mix
    new = bs.update_posterior(posterior, runs)    #          a few runs more: PSIS or refit
    runs = bs.propose(posterior, target, k=3)     # design: propose, default_candidates
    checked = bs.check(posterior, cells=5)        # heldout: leave-one-cell-out check
    page, plan = bs.build_report(posterior)       # present: plan, build_report, run_demo

Every user error is a :class:`BayesScalingError`.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module

from bayes_scaling.errors import (
    BayesScalingError,
    BayesScalingWarning,
    CandidateError,
    PosteriorError,
    PosteriorWarning,
    SpecError,
    SweepError,
    TargetError,
)

__version__ = "0.1.0"

_STAGES = {
    "data": ("Sweep", "read_sweep", "read_steplaw", "from_frame", "concat_sweeps",
             "write_sweep", "simulate_sweep", "read_column_map", "ColumnMap"),
    "model": ("Spec", "load_spec", "default_spec", "prepare_inputs", "build_model", "fit",
              "diagnose", "save_posterior", "load_posterior", "sample_prior"),
    "predict": ("predict", "Prediction", "expected_regret", "default_mix", "default_targets",
                "make_target", "compare_choices", "Comparison", "max_safe_batch", "MaxBatch",
                "predict_loss", "LossPrediction",
                "prior_summary", "draw_new_cells", "update_posterior", "reweight_posterior",
                "Update"),
    "design": ("propose", "default_candidates", "as_candidates", "read_pool"),
    "heldout": ("check", "HeldOutCheck"),
    "present": ("plan", "Plan", "build_report", "render_report", "write_report", "run_demo",
                "make_figures", "write_figures", "law_table", "read_candidates",
                "plot_prior_predictive", "plot_max_batch", "plot_check_calibration"),
}
"""Stage subpackage -> the public names it exports (see each stage's ``_EXPORTS``)."""

_WHERE = {name: stage for stage, names in _STAGES.items() for name in names}
__all__ = ["BayesScalingError", "BayesScalingWarning", "CandidateError", "PosteriorError",
           "PosteriorWarning", "SpecError", "SweepError", "TargetError", "__version__"]
__all__ += sorted(_WHERE)


def _resolve(name: str) -> object:
    """The object behind a public name, from the stage module that defines it (not the stage
    package's attribute, which a same-named submodule such as ``model.fit`` may shadow)."""
    package = f"{__name__}.{_WHERE[name]}"
    module = import_module(package)._EXPORTS[name]
    return getattr(import_module(f"{package}.{module}"), name)


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return _resolve(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """``bs.predict`` is the function although ``bayes_scaling.predict`` is also a stage
    subpackage: importing the subpackage binds it on this module, and this property keeps the
    function in front (the subpackage stays importable: ``from bayes_scaling.predict import
    ...``)."""

    @property
    def predict(self) -> object:
        return _resolve("predict")

    @predict.setter
    def predict(self, _subpackage: types.ModuleType) -> None:
        pass  # the import system binding the subpackage; it stays in sys.modules


sys.modules[__name__].__class__ = _Package
