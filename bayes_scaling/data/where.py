"""Where a problem is (file, rows, the user's column name) and lenient number parsing.

Used by every step from a raw frame to a :class:`~bayes_scaling.data.schema.Sweep`: messages
name the source, the 0-based data rows (plus file lines where the format has them) and the
column as the user's file spells it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.data.schema import parse_size
from bayes_scaling.errors import SweepError

MAX_SHOWN = 10
"""Rows (or run_id clashes) listed in one message before '... and N more'."""
NA_TOKENS = frozenset({"", "na", "nan", "-nan", "n/a", "null", "none", "<na>", "#n/a"})


class Where:
    """Names the source and turns 0-based data rows into text (with file lines if known).

    ``names`` maps canonical column names to the file's own (set when columns are renamed),
    so messages name the column the user can find in the file.
    """

    def __init__(self, source: str, line_of: Callable[[], Sequence[int] | None] | None = None):
        self.source = source
        self._line_of = line_of
        self.names: dict[str, str] = {}

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

    def column(self, column: str) -> str:
        """``'lr'``, or ``'config.lr' (as lr)`` when the file's column was renamed."""
        theirs = self.names.get(column)
        return f"'{column}'" if theirs is None else f"'{theirs}' (as {column})"

    def problem(self, column: str, what: str, rows: Iterable[int], values: Iterable = ()) -> str:
        """'column 'lr': non-positive values at rows 3, 17 (...) (values: -1.0, 0.0)'."""
        values = list(values)
        shown = [repr(v) if isinstance(v, str) else f"{v}" for v in values[:3]]
        eg = f" (values: {', '.join(shown)}{', ...' if len(values) > 3 else ''})"
        return f"column {self.column(column)}: {what} at {self.rows(rows)}{eg if shown else ''}"

    def error(self, problems: list[str]) -> SweepError:
        if len(problems) == 1:
            return SweepError(f"{self.source}: {problems[0]}")
        return SweepError(f"{self.source}: {len(problems)} problems:\n  - "
                          + "\n  - ".join(problems))


def blank(column: pd.Series) -> pd.Series:
    """Missing values, counting empty or whitespace-only strings as missing."""
    missing = column.isna()
    if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
        missing |= column.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    return missing


def _parse_float(value: Any, sizes: bool = False) -> float | None:
    """A float, NaN for a missing value, None if the value is not a number (with ``sizes``,
    text such as '7B' or '350M' is a number)."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        try:
            return float(value)
        except OverflowError:  # an integer beyond float range (JSON allows any size)
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in NA_TOKENS:
            return math.nan
        try:
            return parse_size(text) if sizes else float(text)
        except ValueError:
            return None
    return math.nan if value is None or value is pd.NA else None


def as_float(column: pd.Series, sizes: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(float values, mask of present-but-not-numeric entries); ``sizes``: accept suffixes."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(float, na_value=np.nan), np.zeros(len(column), bool)
    parsed = [_parse_float(v, sizes) for v in column]
    bad = np.array([p is None for p in parsed], bool)
    return np.array([math.nan if p is None else p for p in parsed], float), bad
