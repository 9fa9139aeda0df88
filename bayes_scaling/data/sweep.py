"""The sweep data layer: canonical schema, validation, readers and writers (incl. Step Law).

One row per training run (DESIGN.md, "Canonical sweep schema"). Every input row is used,
censored (diverged, or above the fit window) or listed as excluded with its reason: nothing
is dropped silently. Bad input raises one :class:`SweepError` naming the file, the rows
(0-based data rows, plus file lines where the format has them) and the column.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from bayes_scaling.errors import SweepError

REQUIRED_COLUMNS = ("n_params", "n_tokens", "batch_tokens", "lr", "loss")
CANONICAL_COLUMNS = ("run_id", "arch", "data_mix", "n_params", "n_tokens", "batch_tokens",
                     "seq_len", "lr", "weight_decay", "loss", "status")
CELL_KEYS = ("arch", "data_mix", "n_params", "n_tokens", "seq_len")
LABEL_COLUMNS = ("run_id", "arch", "data_mix", "status")
POSITIVE_COLUMNS = ("n_params", "n_tokens", "batch_tokens", "seq_len", "lr")
STATUSES = ("ok", "diverged")
DEFAULTS: dict[str, Any] = {"arch": "dense", "data_mix": "default", "seq_len": 2048,
                            "weight_decay": math.nan, "status": None}
"""Values of absent columns; status None means 'ok', or 'diverged' where loss is NaN/inf."""
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
            ".ndjson": "jsonl", ".json": "jsonl"}
FORMATS = ("csv", "parquet", "jsonl", "steplaw")
STEPLAW_SEQ_LEN = 2048
MAX_SHOWN = 10
NA_TOKENS = frozenset({"", "na", "nan", "-nan", "n/a", "null", "none", "<na>", "#n/a"})
REPORT_COLUMNS = ("run_id", "row", "cell", "action", "reason")
NO_EDGE_REASON = "cell has no finite loss: no window edge to censor against"



# ----------------------------------------------------------------------------- locations
class _Where:
    """Names the source and turns 0-based data rows into text (with file lines if known)."""

    def __init__(self, source: str, line_of: Callable[[], Sequence[int] | None] | None = None):
        self.source = source
        self._line_of = line_of

    @functools.cached_property
    def lines(self) -> Sequence[int] | None:
        return self._line_of() if self._line_of else None

    def rows(self, rows: Iterable[int]) -> str:
        rows = [int(r) for r in rows]
        shown = rows[:MAX_SHOWN]
        more = f" ... and {len(rows) - len(shown)} more" if len(rows) > len(shown) else ""
        text = f"{'row' if len(rows) == 1 else 'rows'} {', '.join(map(str, shown))}{more}"
        if self.lines is None:
            return f"{text} (0-based data rows)"
        lines = ", ".join(str(self.lines[r]) for r in shown)
        return f"{text} (0-based data rows; file {'line' if len(rows) == 1 else 'lines'} {lines})"

    def problem(self, column: str, what: str, rows: Iterable[int], values: Iterable = ()) -> str:
        """'column 'lr': non-positive values at rows 3, 17 (...) (values: -1.0, 0.0)'."""
        values = list(values)
        shown = [repr(v) if isinstance(v, str) else f"{v}" for v in values[:3]]
        eg = f" (values: {', '.join(shown)}{', ...' if len(values) > 3 else ''})"
        return f"column '{column}': {what} at {self.rows(rows)}{eg if shown else ''}"

    def error(self, problems: list[str]) -> SweepError:
        if len(problems) == 1:
            return SweepError(f"{self.source}: {problems[0]}")
        return SweepError(f"{self.source}: {len(problems)} problems:\n  - "
                          + "\n  - ".join(problems))


def _csv_lines(path: Path, n_rows: int) -> list[int] | None:
    """1-based file line where each data record starts (None if the count disagrees)."""
    starts, previous = [], 0
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        for _ in reader:
            starts.append(previous + 1)
            previous = reader.line_num
    return starts[1:] if len(starts) - 1 == n_rows else None


# ----------------------------------------------------------------------------- cell ids
def _label_key(label: str) -> str:
    return str(label).replace("\\", "\\\\").replace("|", "\\|")


def cell_id(arch: str, data_mix: str, n_params: float, n_tokens: float, seq_len: int,
            digits: int = 3) -> str:
    """Cell id, e.g. ``"dense|default|N=2.15e+08|D=4e+09|S=2048"`` ('|' in labels escaped)."""
    return (f"{_label_key(arch)}|{_label_key(data_mix)}|N={float(n_params):.{digits}g}"
            f"|D={float(n_tokens):.{digits}g}|S={int(seq_len)}")


def cell_ids(runs: pd.DataFrame) -> pd.Series:
    """Cell id of every run: 3 significant digits, more only if distinct cells would merge."""
    keys = runs[list(CELL_KEYS)]
    n_cells = len(keys.drop_duplicates())
    for digits in range(3, 18):
        ids = [cell_id(*row, digits=digits) for row in keys.itertuples(index=False)]
        if len(set(ids)) == n_cells:
            break
    return pd.Series(ids, index=runs.index, dtype="str", name="cell")


# ----------------------------------------------------------------------------- the Sweep
def _empty_report() -> pd.DataFrame:
    return pd.DataFrame({"run_id": pd.Series(dtype="str"), "row": pd.Series(dtype="Int64"),
                         "cell": pd.Series(dtype="str"), "action": pd.Series(dtype="str"),
                         "reason": pd.Series(dtype="str")})


@dataclass(frozen=True, eq=False)
class Sweep:
    """A validated sweep: canonical columns, then extras as read, then ``cell``."""

    runs: pd.DataFrame
    source: str
    excluded: pd.DataFrame = field(default_factory=_empty_report)
    """Input rows that are not in ``runs`` (e.g. empty rows), in exclusion-report layout."""
    notes: tuple[str, ...] = ()
    """What the reader did that the user should know (defaults applied, values changed)."""

    def cells(self) -> pd.DataFrame:
        """One row per cell (index: cell id): keys, n_runs, n_ok, n_diverged, best_loss,
        n_lr and n_batch (distinct values over all runs)."""
        runs = self.runs
        ok = runs["status"] == "ok"
        table = runs.assign(_ok=ok, _div=~ok, _ok_loss=runs["loss"].where(ok)).groupby(
            "cell", sort=False).agg(
            **{key: (key, "first") for key in CELL_KEYS}, n_runs=("run_id", "size"),
            n_ok=("_ok", "sum"), n_diverged=("_div", "sum"), best_loss=("_ok_loss", "min"),
            n_lr=("lr", "nunique"), n_batch=("batch_tokens", "nunique"))
        return table.sort_values(list(CELL_KEYS))

    def data_hash(self) -> str:
        """sha256 of the canonical columns, in row order (the source path is not hashed)."""
        digest = hashlib.sha256(f"runs={len(self.runs)}".encode())
        for column in CANONICAL_COLUMNS:
            values = self.runs[column]
            digest.update(f"\0{column}\0".encode())
            if column in LABEL_COLUMNS:
                digest.update(json.dumps(values.tolist()).encode())
            elif column == "seq_len":
                digest.update(values.to_numpy("<i8").tobytes())
            else:
                x = values.to_numpy(float)
                digest.update(np.where(np.isnan(x), np.nan, x + 0.0).astype("<f8").tobytes())
        return digest.hexdigest()

    def exclusion_report(self, window: float = 0.02) -> pd.DataFrame:
        """Every row that is not a plain observation: run_id, row (index in runs; <NA> for
        input rows not in runs), cell, action ("censored" or "excluded"), reason."""
        if not (math.isfinite(window) and window >= 0):
            raise ValueError(f"window must be a finite number >= 0, got {window}")
        runs = self.runs
        loss = runs["loss"].to_numpy(float)
        ok = (runs["status"] == "ok").to_numpy()
        best = runs["loss"].where(ok).groupby(runs["cell"]).transform("min").to_numpy(float)
        no_edge = np.isnan(best)
        reason = np.select(
            [no_edge, ~ok & ~np.isfinite(loss), ~ok, loss > (1 + window) * best],
            [NO_EDGE_REASON, "diverged: loss is NaN/inf", "status=diverged",
             f"loss above the fit window: loss > (1 + {window:g}) * cell's best ok loss"],
            default="")
        keep = reason != ""
        report = pd.DataFrame({
            "run_id": runs["run_id"][keep], "row": pd.array(runs.index[keep], dtype="Int64"),
            "cell": runs["cell"][keep], "reason": reason[keep],
            "action": np.where(no_edge[keep], "excluded", "censored")})[list(REPORT_COLUMNS)]
        if self.excluded.empty:
            return report.reset_index(drop=True)
        return pd.concat([report, self.excluded], ignore_index=True)

    def summary(self, window: float = 0.02) -> dict:
        """JSON-serialisable overview: counts, labels, ranges, censoring and warnings."""
        runs, cells = self.runs, self.cells()
        report = self.exclusion_report(window)
        censored = report[report["action"] == "censored"]
        excluded = report[report["action"] == "excluded"].astype(object)
        return {
            "source": self.source, "runs": len(runs), "cells": len(cells),
            "archs": sorted(runs["arch"].unique().tolist()),
            "data_mixes": sorted(runs["data_mix"].unique().tolist()),
            "ranges": {c: _range(runs[c]) for c in ("n_params", "n_tokens", "lr",
                                                    "batch_tokens", "weight_decay")},
            "window": window,
            "n_diverged": int((runs["status"] == "diverged").sum()),
            "n_censored": len(censored), "n_excluded": len(excluded),
            "censored": {str(k): int(v) for k, v in censored["reason"].value_counts().items()},
            "excluded": excluded.where(excluded.notna(), None).to_dict(orient="records"),
            "warnings": [*self.notes, *_cell_warnings(runs)],
            "data_hash": self.data_hash(),
        }

    def subset(self, mask: ArrayLike) -> Sweep:
        """The runs where boolean ``mask`` is true (e.g. a held-out benchmark split)."""
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (len(self.runs),):
            raise ValueError(f"mask must be a boolean array of length {len(self.runs)}, "
                             f"got dtype {mask.dtype} and shape {mask.shape}")
        return Sweep(self.runs[mask].reset_index(drop=True), self.source, self.excluded,
                     self.notes)


def _range(values: pd.Series) -> list[float] | None:
    x = values.to_numpy(float)
    x = x[np.isfinite(x)]
    return [float(x.min()), float(x.max())] if x.size else None


def _cell_warnings(runs: pd.DataFrame) -> list[str]:
    """Cells whose ok runs span fewer than 3 distinct lr or batch values (cells without ok
    runs are excluded, see the exclusion report)."""
    ok = runs[runs["status"] == "ok"].groupby("cell")
    counts = pd.DataFrame({"lr": ok["lr"].nunique(), "batch": ok["batch_tokens"].nunique()})
    thin = counts[(counts["lr"] < 3) | (counts["batch"] < 3)]
    return [f"cell {cell}: ok runs at {row.lr} distinct lr and {row.batch} distinct batch "
            "values (< 3): optimum located by the hierarchy only"
            for cell, row in thin.iterrows()]


# ----------------------------------------------------------------------------- validation
def _blank(column: pd.Series) -> pd.Series:
    """Missing values, counting empty or whitespace-only strings as missing."""
    blank = column.isna()
    if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
        blank |= column.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    return blank


def _parse_float(value: Any) -> float | None:
    """A float, NaN for a missing value, None if the value is not a number."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in NA_TOKENS:
            return math.nan
        try:
            return float(text)
        except ValueError:
            return None
    return math.nan if value is None or value is pd.NA else None


def _as_float(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float values, mask of present-but-not-numeric entries)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(float, na_value=np.nan), np.zeros(len(column), bool)
    parsed = [_parse_float(v) for v in column]
    bad = np.array([p is None for p in parsed], bool)
    return np.array([math.nan if p is None else p for p in parsed], float), bad


def _rename(df: pd.DataFrame, columns: Mapping[str, str] | None, where: _Where) -> pd.DataFrame:
    present = list(df.columns)
    if len(set(present)) != len(present):
        raise where.error([f"duplicate column names: {present}"])
    columns = dict(columns or {})
    absent = [name for name in columns if name not in present]
    if absent:
        raise where.error([f"columns= maps {absent} but there is no such column; "
                           f"columns present: {present}"])
    renamed = [columns.get(c, c) for c in present]
    clash = sorted({c for c in renamed if renamed.count(c) > 1})
    if clash:
        raise where.error([f"after renaming with columns={columns}, several columns are "
                           f"named {clash}"])
    return df.rename(columns=columns)


def _drop_empty_rows(frame: pd.DataFrame, where: _Where) -> tuple[pd.DataFrame, pd.DataFrame]:
    if frame.shape[1] == 0:
        return frame, _empty_report()
    empty = pd.concat([_blank(frame[c]) for c in frame.columns], axis=1).all(axis=1)
    if not empty.any():
        return frame, _empty_report()
    excluded = pd.DataFrame({
        "run_id": pd.Series([np.nan] * int(empty.sum()), dtype="str"),
        "row": pd.array([pd.NA] * int(empty.sum()), dtype="Int64"),
        "cell": pd.Series([np.nan] * int(empty.sum()), dtype="str"), "action": "excluded",
        "reason": [f"empty row (every field missing): {where.source} {where.rows([i])}"
                   for i in frame.index[empty]]})
    return frame[~empty], excluded


def _fill_defaults(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    notes = []
    if "run_id" not in frame:
        frame.insert(0, "run_id", [f"r{i:05d}" for i in range(len(frame))])
        notes.append("run_id absent: generated r00000, r00001, ...")
    shown = {"weight_decay": "NaN (unknown)", "status": "'ok' ('diverged' where loss is NaN/inf)"}
    for column, value in DEFAULTS.items():
        if column not in frame:
            frame[column] = value
            notes.append(f"{column} absent: default {shown.get(column, repr(value))} applied "
                         "to every run")
    return frame, notes


def _numbers(frame: pd.DataFrame, where: _Where, problems: list[str]) -> dict[str, np.ndarray]:
    """Parse and check the numeric canonical columns; append problems."""
    out = {}
    for column in (*POSITIVE_COLUMNS, "weight_decay", "loss"):
        x, bad = _as_float(frame[column])
        rows, raw = frame.index, frame[column].to_numpy(object)
        if bad.any():
            problems.append(where.problem(column, "non-numeric values (give plain numbers in "
                                          "the column's unit)", rows[bad], raw[bad]))
        present = ~bad & ~np.isnan(x)
        if column in POSITIVE_COLUMNS:
            checks = [(~bad & np.isnan(x), "missing values"),
                      (present & ~(np.isfinite(x) & (x > 0)), "non-positive or infinite values")]
            if column == "seq_len":
                checks.append((present & np.isfinite(x) & (x != np.round(x)), "non-integers"))
        elif column == "weight_decay":
            checks = [(present & ~(np.isfinite(x) & (x >= 0)), "negative or infinite values")]
        else:
            checks = [(present & np.isfinite(x) & (x <= 0), "non-positive finite losses")]
        problems += [where.problem(column, what, rows[m], x[m]) for m, what in checks if m.any()]
        out[column] = x
    _check_units(out, frame.index, where, problems)
    return out


def _check_units(x: dict[str, np.ndarray], rows: pd.Index, where: _Where,
                 problems: list[str]) -> None:
    """Catch batches in sequences and token counts in billions (physically impossible)."""
    small_batch = x["batch_tokens"] < x["seq_len"]
    if small_batch.any():
        problems.append(where.problem(
            "batch_tokens", "smaller than seq_len (batch_tokens is the global batch in "
            "TOKENS = sequences * seq_len; was it given in sequences?)", rows[small_batch],
            x["batch_tokens"][small_batch]))
    few_tokens = x["n_tokens"] < x["batch_tokens"]
    if few_tokens.any():
        problems.append(where.problem(
            "n_tokens", "fewer training tokens than one batch (n_tokens is in tokens, "
            "not billions)", rows[few_tokens], x["n_tokens"][few_tokens]))


def _labels(frame: pd.DataFrame, column: str, where: _Where, problems: list[str]) -> pd.Series:
    blank = _blank(frame[column])
    if blank.any() and column != "status":
        problems.append(where.problem(column, "missing labels", frame.index[blank]))
    return pd.Series([v if isinstance(v, str) else str(v) for v in frame[column]],
                     index=frame.index, dtype="str").where(~blank)


def _status(frame: pd.DataFrame, loss: np.ndarray, where: _Where, problems: list[str],
            notes: list[str]) -> pd.Series:
    """ok / diverged; blank -> from the loss; NaN/inf loss -> diverged."""
    status = _labels(frame, "status", where, problems).str.strip().str.lower()
    unknown = status.notna() & ~status.isin(STATUSES)
    if unknown.any():
        problems.append(where.problem("status", f"values other than {list(STATUSES)}",
                                      frame.index[unknown], frame["status"][unknown]))
    finite = np.isfinite(loss)
    if status.isna().any() and not status.isna().all():
        notes.append(f"status blank in {int(status.isna().sum())} rows: set from the loss")
    overridden = (status == "ok").to_numpy() & ~finite
    if overridden.any():
        notes.append(f"status 'ok' but loss NaN/inf at {where.rows(frame.index[overridden])}:"
                     " set to 'diverged'")
    return status.where(finite, "diverged").fillna("ok")


def _check_run_ids(run_id: pd.Series, where: _Where, problems: list[str]) -> None:
    dup = run_id[run_id.duplicated(keep=False) & run_id.notna()]
    if dup.empty:
        return
    groups = [f"{value!r} at {where.rows(rows)}"
              for value, rows in dup.groupby(dup, sort=False).groups.items()]
    more = f"; ... and {len(groups) - MAX_SHOWN} more" if len(groups) > MAX_SHOWN else ""
    problems.append(f"column 'run_id': duplicate values: {'; '.join(groups[:MAX_SHOWN])}{more}")


def _check_arch(arch: pd.Series, allowed: Iterable[str] | None, where: _Where,
                problems: list[str]) -> None:
    if allowed is None:
        return
    allowed = sorted(set(allowed))
    unknown = arch.notna() & ~arch.isin(allowed)
    if unknown.any():
        problems.append(where.problem("arch", f"labels not in the model spec {allowed}",
                                      arch.index[unknown], arch[unknown].unique()))


def _canonical(frame: pd.DataFrame, where: _Where, arch_labels: Iterable[str] | None,
               notes: list[str]) -> pd.DataFrame:
    """Validated canonical columns (same index as ``frame``); raises on any problem."""
    problems: list[str] = []
    x = _numbers(frame, where, problems)
    labels = {c: _labels(frame, c, where, problems) for c in LABEL_COLUMNS if c != "status"}
    status = _status(frame, x["loss"], where, problems, notes)
    _check_run_ids(labels["run_id"], where, problems)
    _check_arch(labels["arch"], arch_labels, where, problems)
    if problems:
        raise where.error(problems)
    out = pd.DataFrame({**labels, **{c: x[c] for c in x}, "status": status}, index=frame.index)
    return out.astype({"seq_len": "int64"})[list(CANONICAL_COLUMNS)]


def _assemble(canonical: pd.DataFrame, frame: pd.DataFrame, where: _Where) -> pd.DataFrame:
    """Canonical columns, extras as read, then the computed ``cell``; RangeIndex."""
    extras = [c for c in frame.columns if c not in CANONICAL_COLUMNS and c != "cell"]
    runs = pd.concat([canonical, frame[extras]], axis=1)
    runs["cell"] = cell_ids(runs)
    if "cell" in frame:
        differs = frame["cell"].astype(str) != runs["cell"]
        if differs.any():
            raise where.error([where.problem(
                "cell", "given cell ids differ from the computed ones (cell is reserved: "
                "computed from arch, data_mix, n_params, n_tokens, seq_len; rename yours "
                "with columns=)", frame.index[differs])])
    return runs.reset_index(drop=True)


def _build(df: pd.DataFrame, where: _Where, columns: Mapping[str, str] | None = None,
           arch_labels: Iterable[str] | None = None, notes: Sequence[str] = (),
           excluded: pd.DataFrame | None = None) -> Sweep:
    """Rename, drop (and report) empty rows, fill defaults, validate, assemble."""
    frame = _rename(df, columns, where)
    frame, empty = _drop_empty_rows(frame, where)
    excluded = empty if excluded is None or excluded.empty else pd.concat([excluded, empty])
    missing = [c for c in REQUIRED_COLUMNS if c not in frame]
    if missing:
        raise where.error([f"missing required column(s) {missing}; columns present: "
                           f"{list(frame.columns)} (map other names with columns=)"])
    if frame.empty:
        raise where.error(["no runs: there are no data rows"])
    frame, default_notes = _fill_defaults(frame)
    notes = [*notes, *default_notes]
    canonical = _canonical(frame, where, arch_labels, notes)
    runs = _assemble(canonical, frame, where)
    return Sweep(runs=runs, source=where.source, excluded=excluded.reset_index(drop=True),
                 notes=tuple(notes))


def from_frame(df: pd.DataFrame, source: str = "<frame>",
               columns: Mapping[str, str] | None = None,
               arch_labels: Iterable[str] | None = None) -> Sweep:
    """Validate a DataFrame (renamed with ``columns={theirs: canonical}``) into a Sweep.

    ``arch_labels``: allowed arch labels (e.g. from a model spec); others are an error.
    """
    return _build(df.reset_index(drop=True), _Where(source), columns, arch_labels)


# ----------------------------------------------------------------------------- readers
def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise SweepError(f"{path}: unknown format {format!r}; use one of {list(FORMATS)}")
        return format
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SweepError(f"{path}: cannot tell the format from the suffix {suffix!r}; known "
                         f"suffixes {sorted(SUFFIXES)} (or give format=)")
    return SUFFIXES[suffix]


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise SweepError(f"{path}: no such file")


def _label_sources(columns: Mapping[str, str] | None) -> list[str]:
    """File names of the label columns (read as text, only empty fields missing)."""
    columns = dict(columns or {})
    inverse = {dst: src for src, dst in columns.items()}
    return [inverse.get(c, c) for c in LABEL_COLUMNS if c in inverse or c not in columns]


def _read_csv(path: Path, text_columns: Sequence[str]) -> tuple[pd.DataFrame, _Where]:
    """CSV with pandas' usual typing, except ``text_columns`` are kept as exact text."""
    try:
        frame = pd.read_csv(path, skip_blank_lines=False)
        text = [c for c in text_columns if c in frame.columns]
        if text:
            exact = pd.read_csv(path, skip_blank_lines=False, usecols=text, dtype=str,
                                keep_default_na=False, na_values=[""])
            frame[text] = exact[text].to_numpy(object)
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise SweepError(f"{path}: cannot read as CSV: {exc}") from exc
    return frame, _Where(str(path), lambda: _csv_lines(path, len(frame)))


def _read_parquet(path: Path, text_columns: Sequence[str] = ()) -> tuple[pd.DataFrame, _Where]:
    try:
        return pd.read_parquet(path), _Where(str(path))
    except (ValueError, OSError) as exc:
        raise SweepError(f"{path}: cannot read as Parquet: {exc}") from exc


def _read_jsonl(path: Path, text_columns: Sequence[str] = ()) -> tuple[pd.DataFrame, _Where]:
    """JSON lines (one object per line; blank lines skipped) or one JSON array of objects."""
    text = path.read_text(encoding="utf-8-sig")
    numbered = [(i, line) for i, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if text.lstrip().startswith("["):
        numbered = [(1, text)]
    records, lines = [], []
    for number, line in numbered:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SweepError(f"{path}: line {number}: not valid JSON: {exc}") from exc
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, dict) for item in items):
            raise SweepError(f"{path}: line {number}: expected JSON objects (one per run)")
        records += items
        lines += [number] * len(items)
    frame = pd.DataFrame(records)
    for column in frame.columns[frame.isna().all()]:
        frame[column] = frame[column].astype(float)
    at_lines = None if text.lstrip().startswith("[") else (lambda: lines)
    return frame, _Where(str(path), at_lines)


_READERS = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}


def read_sweep(path: str | Path, columns: Mapping[str, str] | None = None,
               format: str | None = None, arch_labels: Iterable[str] | None = None) -> Sweep:
    """Read and validate a sweep file; ``format`` in csv, parquet, jsonl, steplaw or None
    (by suffix: .csv, .parquet/.pq, .jsonl/.ndjson/.json)."""
    path = Path(path)
    fmt = _format_of(path, format)
    _check_file(path)
    if fmt == "steplaw":
        if columns:
            raise SweepError(f"{path}: columns= is not used with format 'steplaw'")
        return read_steplaw(path, arch_labels=arch_labels)
    frame, where = _READERS[fmt](path, _label_sources(columns))
    return _build(frame, where, columns, arch_labels)


# ----------------------------------------------------------------------------- Step Law
def _round_sig(value: float, digits: int) -> Decimal:
    exact = Decimal(repr(float(value)))
    if exact == 0:
        return exact
    return exact.quantize(Decimal(1).scaleb(exact.adjusted() - digits + 1), ROUND_HALF_UP)


def _printed_digits(value: float) -> int:
    return len(Decimal(repr(float(value))).normalize().as_tuple().digits)


def snap_printed(values: ArrayLike, digits: int = 3) -> np.ndarray:
    """Map values that agree to ``digits`` significant digits onto the most precisely
    printed one.

    Step Law prints one grid lr as 0.0003453 or 0.000345 (and 2^-6.5 as 0.01105 or 0.0111):
    rounded half-up on their shortest decimal text to 3 digits both give 0.000345, so both
    become 0.0003453. A group with two different most-precise values (distinct grid points)
    is left unchanged.
    """
    x = np.asarray(values, dtype=float)
    out = x.copy()
    groups: dict[Decimal, list[float]] = {}
    for value in np.unique(x[np.isfinite(x)]):
        groups.setdefault(_round_sig(value, digits), []).append(float(value))
    for members in groups.values():
        precision = [_printed_digits(v) for v in members]
        best = [v for v, p in zip(members, precision, strict=True) if p == max(precision)]
        if len(members) > 1 and len(best) == 1:
            out[np.isin(x, members)] = best[0]
    return out


def _dedupe(ids: pd.Series) -> tuple[pd.Series, list[str]]:
    """Suffix '#2', '#3', ... to repeated run names (only if there are any)."""
    repeat = ids.groupby(ids).cumcount()
    if not (repeat > 0).any():
        return ids, []
    fixed = ids.where(repeat == 0, ids + "#" + (repeat + 1).astype(str))
    return fixed, [f"exp_name repeated in {int((repeat > 0).sum())} rows: suffixed #2, #3, ..."]


def read_steplaw(path: str | Path, arch_labels: Iterable[str] | None = None) -> Sweep:
    """Read a Step Law CSV (dense or MoE, detected by columns) into the canonical schema.

    loss = 'smooth loss' (the paper's target; raw loss kept as ``loss_raw``); batch_tokens =
    bs * seq_len (2048 for dense); MoE: n_params = Na (active), n_params_total = N. lr values
    printed with different precision are snapped (:func:`snap_printed`), the file's value
    kept as ``lr_printed``. Other columns are kept as extras.
    """
    path = Path(path)
    _check_file(path)
    raw, where = _read_csv(path, ["exp_name"])
    raw, excluded = _drop_empty_rows(raw, where)
    dense = {"N", "D", "lr", "bs", "loss", "smooth loss", "exp_name"}
    moe = dense | {"Na", "seq_len"}
    if not dense <= set(raw.columns):
        raise where.error([f"not a Step Law file: expected columns {sorted(dense)} (MoE also "
                           f"Na, seq_len); columns present: {list(raw.columns)}"])
    is_moe = moe <= set(raw.columns)
    problems = []
    numbers = {c: _as_float(raw[c]) for c in ("bs", "lr", *(["seq_len"] if is_moe else []))}
    for c, (_, bad) in numbers.items():
        if bad.any():
            problems.append(where.problem(c, "non-numeric values", raw.index[bad], raw[c][bad]))
    if problems:
        raise where.error(problems)
    rename = {"exp_name": "run_id", "D": "n_tokens", "loss": "loss_raw", "smooth loss": "loss",
              **({"Na": "n_params", "N": "n_params_total"} if is_moe else {"N": "n_params"})}
    frame = raw.rename(columns=rename)
    seq_len = numbers["seq_len"][0] if is_moe else STEPLAW_SEQ_LEN
    frame = frame.assign(arch="moe" if is_moe else "dense", data_mix="default", seq_len=seq_len,
                         batch_tokens=numbers["bs"][0] * seq_len,
                         lr=snap_printed(numbers["lr"][0]), lr_printed=numbers["lr"][0])
    frame["run_id"], notes = _dedupe(frame["run_id"])
    changed = int((frame["lr"] != frame["lr_printed"]).sum())
    if changed:
        notes.append(f"lr: {changed} runs had a grid lr printed with fewer digits; snapped "
                     f"onto {frame['lr'].nunique()} grid values (file value in lr_printed)")
    return _build(frame, where, arch_labels=arch_labels, notes=notes, excluded=excluded)


# ----------------------------------------------------------------------------- writers
def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _write_jsonl(data: pd.DataFrame, path: Path) -> None:
    """One JSON object per run; NaN -> null, +-inf -> Infinity (Python's json reads it)."""
    columns = {c: data[c].tolist() for c in data.columns}
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(len(data)):
            record = {str(c): _json_value(values[i]) for c, values in columns.items()}
            handle.write(json.dumps(record, default=str) + "\n")


def write_sweep(sweep: Sweep, path: str | Path) -> None:
    """Write the runs (without the derived ``cell``) as csv, parquet or jsonl, by suffix.

    Floats are written at full (round-trip) precision; CSV quotes every text field. CSV is
    untyped: an extra text column that reads as numbers or booleans, or holds empty
    strings, comes back typed or missing.
    """
    path = Path(path)
    fmt = _format_of(path, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = sweep.runs.drop(columns="cell")
    if fmt == "csv":
        data.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)  # quotes text with \r
    elif fmt == "parquet":
        data.to_parquet(path, index=False)
    else:
        _write_jsonl(data, path)


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
