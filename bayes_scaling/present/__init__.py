"""Presentation: the planning pipeline, plots, report, demo and the command line."""

from bayes_scaling.lazy import lazy_exports

_EXPORTS = {
    "plan": "pipeline",
    "Plan": "pipeline",
    "build_report": "report",
    "render_report": "report",
    "render_plan": "report",
    "write_report": "report",
    "run_demo": "demo",
    "make_figures": "plots",
    "write_figures": "plots",
    "plot_prior_predictive": "plots_prior",
    "plot_max_batch": "plots_batch",
    "plot_check_calibration": "plots_check",
    "law_table": "summary",
    "validation_text": "text",
    "read_candidates": "cli_args",
    "main": "cli",
}
"""Public name -> module of this stage that defines it (imported on first use)."""

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
