"""Sweep data: schema, validation, readers and the simulator.

Modules in data-flow order: ``schema`` (canonical columns, cell ids, :class:`Sweep`),
``where`` (file/row/column locations, lenient numbers), ``rows`` (input rows that are not
runs: duplicates, tracker run states), ``validate`` (raw frame -> validated runs,
:func:`from_frame`), ``formats`` (CSV / Parquet / JSONL files, column-map files),
``steplaw`` (the Step Law CSVs), ``readers`` (:func:`read_sweep`, :func:`write_sweep`,
:func:`concat_sweeps`), ``simulate`` (synthetic sweeps).
"""

from importlib import import_module

_EXPORTS = {
    "Sweep": "schema",
    "read_sweep": "readers",
    "read_column_map": "formats",
    "ColumnMap": "formats",
    "read_steplaw": "steplaw",
    "from_frame": "validate",
    "concat_sweeps": "readers",
    "write_sweep": "readers",
    "simulate_sweep": "simulate",
}
"""Public name -> module of this stage that defines it (imported on first use)."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
