"""Validation: a raw frame (any layout) -> the canonical runs of a :class:`Sweep`.

Every input row is used, censored or listed as excluded with its reason: nothing is dropped
silently. Bad input raises one :class:`SweepError` naming the source, the rows (0-based data
rows, plus file lines where the format has them) and the column.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.data.schema import (
    CANONICAL_COLUMNS,
    DEFAULTS,
    LABEL_COLUMNS,
    POSITIVE_COLUMNS,
    REQUIRED_COLUMNS,
    STATUSES,
    Sweep,
    cell_ids,
    empty_report,
)
from bayes_scaling.errors import SweepError

MAX_SHOWN = 10
"""Rows (or run_id clashes) listed in one message before '... and N more'."""
NA_TOKENS = frozenset({"", "na", "nan", "-nan", "n/a", "null", "none", "<na>", "#n/a"})


# ----------------------------------------------------------------------------- locations
class Where:
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


def as_float(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float values, mask of present-but-not-numeric entries)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(float, na_value=np.nan), np.zeros(len(column), bool)
    parsed = [_parse_float(v) for v in column]
    bad = np.array([p is None for p in parsed], bool)
    return np.array([math.nan if p is None else p for p in parsed], float), bad


def _rename(df: pd.DataFrame, columns: Mapping[str, str] | None, where: Where) -> pd.DataFrame:
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


def drop_empty_rows(frame: pd.DataFrame, where: Where) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows with any field present, exclusion report of the all-missing rows)."""
    if frame.shape[1] == 0:
        return frame, empty_report()
    empty = pd.concat([_blank(frame[c]) for c in frame.columns], axis=1).all(axis=1)
    if not empty.any():
        return frame, empty_report()
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


def _numbers(frame: pd.DataFrame, where: Where, problems: list[str]) -> dict[str, np.ndarray]:
    """Parse and check the numeric canonical columns; append problems."""
    out = {}
    for column in (*POSITIVE_COLUMNS, "weight_decay", "loss"):
        x, bad = as_float(frame[column])
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


def _check_units(x: dict[str, np.ndarray], rows: pd.Index, where: Where,
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


def _labels(frame: pd.DataFrame, column: str, where: Where, problems: list[str]) -> pd.Series:
    blank = _blank(frame[column])
    if blank.any() and column != "status":
        problems.append(where.problem(column, "missing labels", frame.index[blank]))
    return pd.Series([v if isinstance(v, str) else str(v) for v in frame[column]],
                     index=frame.index, dtype="str").where(~blank)


def _status(frame: pd.DataFrame, loss: np.ndarray, where: Where, problems: list[str],
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


def _check_run_ids(run_id: pd.Series, where: Where, problems: list[str]) -> None:
    dup = run_id[run_id.duplicated(keep=False) & run_id.notna()]
    if dup.empty:
        return
    groups = [f"{value!r} at {where.rows(rows)}"
              for value, rows in dup.groupby(dup, sort=False).groups.items()]
    more = f"; ... and {len(groups) - MAX_SHOWN} more" if len(groups) > MAX_SHOWN else ""
    problems.append(f"column 'run_id': duplicate values: {'; '.join(groups[:MAX_SHOWN])}{more}")


def _check_arch(arch: pd.Series, allowed: Iterable[str] | None, where: Where,
                problems: list[str]) -> None:
    if allowed is None:
        return
    allowed = sorted(set(allowed))
    unknown = arch.notna() & ~arch.isin(allowed)
    if unknown.any():
        problems.append(where.problem("arch", f"labels not in the model spec {allowed}",
                                      arch.index[unknown], arch[unknown].unique()))


def _canonical(frame: pd.DataFrame, where: Where, arch_labels: Iterable[str] | None,
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


def _assemble(canonical: pd.DataFrame, frame: pd.DataFrame, where: Where) -> pd.DataFrame:
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


def build_sweep(df: pd.DataFrame, where: Where, columns: Mapping[str, str] | None = None,
                arch_labels: Iterable[str] | None = None, notes: Sequence[str] = (),
                excluded: pd.DataFrame | None = None) -> Sweep:
    """Rename, drop (and report) empty rows, fill defaults, validate, assemble."""
    frame = _rename(df, columns, where)
    frame, empty = drop_empty_rows(frame, where)
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
    return build_sweep(df.reset_index(drop=True), Where(source), columns, arch_labels)
