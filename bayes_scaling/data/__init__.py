"""Sweep data: schema, validation, readers and the simulator.

Modules in data-flow order: ``schema`` (canonical columns, cell ids, :class:`Sweep`),
``where`` (file/row/column locations, lenient numbers), ``rows`` (input rows that are not
runs: duplicates, tracker run states), ``validate`` (raw frame -> validated runs,
:func:`from_frame`), ``formats`` (CSV / Parquet / JSONL files, column-map files),
``steplaw`` (the Step Law CSVs), ``readers`` (:func:`read_sweep`, :func:`write_sweep`,
:func:`concat_sweeps`), ``simulate`` (synthetic sweeps).
"""

from bayes_scaling.lazy import lazy_exports

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

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
