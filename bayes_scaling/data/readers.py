"""Reading, writing and joining sweeps: :func:`read_sweep`, :func:`write_sweep`,
:func:`concat_sweeps`; :func:`read_table`, a run table as the file has it."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from bayes_scaling.data.formats import (
    READERS,
    ColumnMap,
    check_file,
    format_of,
    write_jsonl,
)
from bayes_scaling.data.schema import LABEL_COLUMNS, Sweep, cell_ids
from bayes_scaling.data.steplaw import read_steplaw
from bayes_scaling.data.validate import MAX_SHOWN, build_sweep
from bayes_scaling.data.where import Where
from bayes_scaling.errors import SweepError


def _label_sources(columns: Mapping[str, str] | None) -> list[str]:
    """File names of the label columns (read as text, only empty fields missing)."""
    columns = dict(columns or {})
    inverse = {dst: src for src, dst in columns.items()}
    return [inverse.get(c, c) for c in LABEL_COLUMNS if c in inverse or c not in columns]


def read_sweep(path: str | Path, columns: Mapping[str, str] | ColumnMap | None = None,
               format: str | None = None, arch_labels: Iterable[str] | None = None,
               status: Mapping[str, str] | None = None) -> Sweep:
    """Read and validate a sweep file; ``format`` in csv, parquet, jsonl, steplaw or None
    (by suffix: .csv, .parquet/.pq, .jsonl/.ndjson/.json).

    ``columns``: {their column: canonical name} (``batch_seqs`` may stand in for
    batch_tokens), or a :class:`ColumnMap` (e.g. from :func:`read_column_map`), whose status
    map is used too. ``status``: {their run state: ok, diverged or excluded}, on top of the
    built-in tracker states (finished, completed -> ok; crashed, failed, killed, running ->
    excluded with the state as the reason, never censored).
    """
    if isinstance(columns, ColumnMap):
        columns, status = columns.columns, {**columns.status, **(status or {})}
    path = Path(path)
    if format_of(path, format) == "steplaw":
        check_file(path)
        if columns or status:
            raise SweepError(f"{path}: column and status maps are not used with format "
                             "'steplaw'")
        return read_steplaw(path, arch_labels=arch_labels)
    frame, where = read_table(path, columns, format)
    return build_sweep(frame, where, columns, arch_labels, status=status)


def read_table(path: str | Path, columns: Mapping[str, str] | None = None,
               format: str | None = None) -> tuple[pd.DataFrame, Where]:
    """A csv, parquet or jsonl file of runs as it is (not renamed, not validated) and where
    its rows are; the label columns (named as ``columns`` {their column: canonical name}
    maps them) are read as exact text. :func:`read_sweep` validates it into a sweep;
    a pool of candidate runs is read with it too."""
    path = Path(path)
    fmt = format_of(path, format)
    check_file(path)
    if fmt == "steplaw":
        raise SweepError(f"{path}: format 'steplaw' is not a plain table; read it with "
                         "read_steplaw")
    return READERS[fmt](path, _label_sources(columns))


def write_sweep(sweep: Sweep, path: str | Path) -> None:
    """Write the runs (without the derived ``cell``) as csv, parquet or jsonl, by suffix.

    Floats are written at full (round-trip) precision; CSV quotes every text field. CSV is
    untyped: an extra text column that reads as numbers or booleans, or holds empty
    strings, comes back typed or missing.
    """
    path = Path(path)
    fmt = format_of(path, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = sweep.runs.drop(columns="cell")
    if fmt == "csv":
        data.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)  # quotes text with \r
    elif fmt == "parquet":
        data.to_parquet(path, index=False)
    else:
        write_jsonl(data, path)


def concat_sweeps(sweeps: Iterable[Sweep]) -> Sweep:
    """One sweep from several; run_id must stay unique across them."""
    sweeps = list(sweeps)
    if not sweeps:
        raise SweepError("concat_sweeps: no sweeps given")
    if len(sweeps) == 1:
        return sweeps[0]
    origin = [f"{s.source} row {i}" for s in sweeps for i in range(len(s.runs))]
    runs = pd.concat([s.runs.drop(columns="cell") for s in sweeps], ignore_index=True)
    dup = runs["run_id"][runs["run_id"].duplicated(keep=False)]
    if not dup.empty:
        clashes = [f"{value!r} at {' and '.join(origin[i] for i in rows)}"
                   for value, rows in dup.groupby(dup, sort=False).groups.items()]
        more = f"; ... and {len(clashes) - MAX_SHOWN} more" if len(clashes) > MAX_SHOWN else ""
        raise SweepError("column 'run_id': duplicate values across sweeps (0-based rows): "
                         + "; ".join(clashes[:MAX_SHOWN]) + more
                         + " (give each file distinct run_id values)")
    runs["cell"] = cell_ids(runs)
    excluded = pd.concat([s.excluded for s in sweeps], ignore_index=True)
    notes = tuple(f"{s.source}: {note}" for s in sweeps for note in s.notes)
    return Sweep(runs, ", ".join(s.source for s in sweeps), excluded, notes)
