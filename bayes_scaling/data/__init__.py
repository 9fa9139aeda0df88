"""Sweep data: schema, readers, validation and the simulator."""

from importlib import import_module

_EXPORTS = {
    "Sweep": "sweep",
    "read_sweep": "sweep",
    "read_steplaw": "sweep",
    "from_frame": "sweep",
    "concat_sweeps": "sweep",
    "write_sweep": "sweep",
    "simulate_sweep": "simulate",
}
"""Public name -> module of this stage that defines it (imported on first use)."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
