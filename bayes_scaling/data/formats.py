"""File formats: pick the format, parse CSV / Parquet / JSONL into a raw frame, write JSONL;
read a column map (a small TOML file naming the user's columns and run states)."""

from __future__ import annotations

import csv
import json
import math
import tomllib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.data.rows import status_map
from bayes_scaling.data.schema import INPUT_COLUMNS
from bayes_scaling.data.validate import Where
from bayes_scaling.errors import SweepError

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
            ".ndjson": "jsonl", ".json": "jsonl"}
FORMATS = ("csv", "parquet", "jsonl", "steplaw")


# ----------------------------------------------------------------------------- files
def format_of(path: Path, format: str | None) -> str:
    """The given format, checked, or the one the suffix names."""
    if format is not None:
        if format not in FORMATS:
            raise SweepError(f"{path}: unknown format {format!r}; use one of {list(FORMATS)}")
        return format
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SweepError(f"{path}: cannot tell the format from the suffix {suffix!r}; known "
                         f"suffixes {sorted(SUFFIXES)} (or give format=)")
    return SUFFIXES[suffix]


def check_file(path: Path) -> None:
    """Raise a SweepError unless ``path`` is a file."""
    if not path.is_file():
        raise SweepError(f"{path}: no such file")


def _csv_lines(path: Path, n_rows: int) -> list[int] | None:
    """1-based file line where each data record starts (None if the count disagrees or
    Python's csv module cannot split the file, e.g. at a NUL byte)."""
    starts, previous = [], 0
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for _ in reader:
                starts.append(previous + 1)
                previous = reader.line_num
    except (csv.Error, UnicodeDecodeError, OSError):
        return None
    return starts[1:] if len(starts) - 1 == n_rows else None


def one_line(exc: BaseException) -> str:
    """A library's error message on one line (parsers' messages may span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_header(path: Path) -> None:
    """Refuse a header that names a column twice (pandas would rename the second 'lr.1')."""
    names = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False,
                        index_col=False).iloc[0].tolist()
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        where = "; ".join(f"{n!r} in columns {[i + 1 for i, m in enumerate(names) if m == n]}"
                          for n in twice)
        raise SweepError(f"{path}: the header names a column twice: {where} (1-based)")


# ----------------------------------------------------------------------------- reading
def read_csv(path: Path, text_columns: Sequence[str]) -> tuple[pd.DataFrame, Where]:
    """CSV with pandas' usual typing, except ``text_columns`` are kept as exact text.

    Data rows with more fields than the header has names are an error (pandas would make
    the first fields an index, or drop the last ones)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, skip_blank_lines=False, index_col=False)
            text = [c for c in text_columns if c in frame.columns]
            if text:
                exact = pd.read_csv(path, skip_blank_lines=False, usecols=text, dtype=str,
                                    keep_default_na=False, na_values=[""], index_col=False)
                frame[text] = exact[text].to_numpy(object)
    except pd.errors.ParserWarning as exc:
        raise SweepError(f"{path}: cannot read as CSV: data rows have more fields than the "
                         f"header has column names (a name missing from the header?)") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise SweepError(f"{path}: cannot read as CSV: {one_line(exc)}") from exc
    _check_header(path)
    return frame, Where(str(path), lambda: _csv_lines(path, len(frame)))


def _read_parquet(path: Path, text_columns: Sequence[str] = ()) -> tuple[pd.DataFrame, Where]:
    from pyarrow import ArrowException  # pandas reads Parquet through pyarrow

    try:
        frame = pd.read_parquet(path)
    except (ValueError, OSError, ArrowException) as exc:
        raise SweepError(f"{path}: cannot read as Parquet: {one_line(exc)}") from exc
    for column in frame.columns:  # pyarrow decodes text lazily: damaged bytes fail here
        try:
            frame[column].to_numpy(object)
        except ArrowException as exc:
            raise SweepError(f"{path}: column {column!r}: cannot read as text (damaged "
                             f"bytes?): {one_line(exc)}") from exc
    return frame, Where(str(path))


def _read_jsonl(path: Path, text_columns: Sequence[str] = ()) -> tuple[pd.DataFrame, Where]:
    """JSON lines (one object per line; blank lines skipped) or one JSON array of objects."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SweepError(f"{path}: cannot read as JSON lines: not UTF-8 text "
                         f"({one_line(exc)})") from exc
    numbered = [(i, line) for i, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if text.lstrip().startswith("["):
        numbered = [(1, text)]
    records, lines = [], []
    for number, line in numbered:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SweepError(f"{path}: line {number}: not valid JSON: {one_line(exc)}") from exc
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, dict) for item in items):
            raise SweepError(f"{path}: line {number}: expected JSON objects (one per run)")
        records += items
        lines += [number] * len(items)
    frame = pd.DataFrame(records)
    for column in frame.columns[frame.isna().all()]:
        frame[column] = frame[column].astype(float)
    at_lines = None if text.lstrip().startswith("[") else (lambda: lines)
    return frame, Where(str(path), at_lines)


READERS: dict[str, Callable[[Path, Sequence[str]], tuple[pd.DataFrame, Where]]] = {
    "csv": read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}
"""Format -> reader of (path, label columns to keep as text) into (raw frame, locations)."""


# ----------------------------------------------------------------------------- writing
def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def write_jsonl(data: pd.DataFrame, path: Path) -> None:
    """One JSON object per run; NaN -> null, +-inf -> Infinity (Python's json reads it)."""
    columns = {c: data[c].tolist() for c in data.columns}
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(len(data)):
            record = {str(c): _json_value(values[i]) for c, values in columns.items()}
            handle.write(json.dumps(record, default=str) + "\n")



# ----------------------------------------------------------------------------- column maps
@dataclass(frozen=True)
class ColumnMap:
    """How a sweep file maps onto the schema: ``columns`` {their column: canonical name}
    and ``status`` {their run state: ok, diverged or excluded} (on top of the built-in
    tracker states). Pass them to :func:`~bayes_scaling.data.read_sweep`."""

    columns: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)

    def updated(self, columns: Mapping[str, str] | None = None,
                status: Mapping[str, str] | None = None) -> ColumnMap:
        """This map with ``columns`` and ``status`` entries added (they win over ours)."""
        return ColumnMap({**self.columns, **(columns or {})}, {**self.status, **(status or {})})


def check_column_map(columns: Mapping[str, str], source: str = "column map") -> dict[str, str]:
    """``columns`` as a dict, if every target is a name of the schema (INPUT_COLUMNS)."""
    wrong = {theirs: canonical for theirs, canonical in columns.items()
             if canonical not in INPUT_COLUMNS}
    if wrong:
        theirs, canonical = next(iter(wrong.items()))
        raise SweepError(f"{source}: {theirs!r} is mapped onto {canonical!r}, which is not a "
                         f"column of the schema; map onto one of {', '.join(INPUT_COLUMNS)} "
                         "(THEIRS=CANONICAL)")
    return dict(columns)


def _flat(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables back to dotted names: ``config.lr = "lr"`` (unquoted) is the
    column 'config.lr', as in a W&B export."""
    out = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        out.update(_flat(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def read_column_map(path: str | Path) -> ColumnMap:
    """Read a column map from TOML: a ``[columns]`` table of ``THEIRS = "canonical"`` and an
    optional ``[status]`` table of ``THEIRS = "ok" | "diverged" | "excluded"``::

        [columns]
        "config.learning_rate" = "lr"
        "config.batch_size" = "batch_seqs"     # the batch in sequences
        State = "status"

        [status]
        preempted = "excluded"
    """
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: no such column-map file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path}: not a valid TOML column map: {exc}") from exc
    unknown = sorted(set(data) - {"columns", "status"})
    if unknown or not isinstance(data.get("columns", {}), dict) or not isinstance(
            data.get("status", {}), dict):
        raise SweepError(f"{path}: a column map has a [columns] table and optionally a "
                         f"[status] table; found {sorted(data)}")
    tables = {name: _flat(data.get(name, {})) for name in ("columns", "status")}
    for name, table in tables.items():
        odd = [key for key, value in table.items() if not isinstance(value, str)]
        if odd:
            raise SweepError(f"{path}: [{name}] {odd[0]!r}: the value must be a string, got "
                             f"{table[odd[0]]!r}")
    columns = check_column_map(tables["columns"], f"{path}: [columns]")
    try:
        status_map(tables["status"])
    except SweepError as exc:
        raise SweepError(f"{path}: [status]: {exc}") from exc
    return ColumnMap(columns, tables["status"])
