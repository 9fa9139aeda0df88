"""Presentation: the planning pipeline, plots, report, demo and the command line."""

from importlib import import_module

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
    "law_table": "summary",
    "validation_text": "text",
    "read_candidates": "cli_args",
    "main": "cli",
}
"""Public name -> module of this stage that defines it (imported on first use)."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
