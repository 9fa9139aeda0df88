"""Input rows that are not runs: exact duplicates and runs a tracker says did not finish.

A tracker export lists every run it knows, finished or not. The run status is mapped through
:data:`~bayes_scaling.data.schema.TRACKER_STATUSES` (finished/completed -> ok; crashed, failed,
killed, running, ... -> excluded) updated with the user's map; excluded rows leave the sweep
with their state as the reason, so a crashed run's missing loss is never taken as a divergence.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayes_scaling.data.schema import (
    CELL_KEYS,
    REPORT_COLUMNS,
    STATUS_ACTIONS,
    TRACKER_STATUSES,
    cell_id,
    empty_report,
)
from bayes_scaling.data.where import Where, as_float, blank
from bayes_scaling.errors import SweepError

STATUS_LIKE = ("state", "status", "run_state", "run_status", "runstate")
"""Column names (any case; the last dotted part) that hold a run's state in tracker exports."""


def status_map(status: Mapping[str, str] | None = None) -> dict[str, str]:
    """The built-in :data:`TRACKER_STATUSES` updated with ``status`` ({their value: ok,
    diverged or excluded}); keys and values compared stripped and in lower case."""
    out = dict(TRACKER_STATUSES)
    for theirs, action in (status or {}).items():
        value = str(action).strip().lower()
        if value not in STATUS_ACTIONS:
            raise SweepError(f"status map: {theirs!r} -> {action!r}: map a run state onto one "
                             f"of {', '.join(STATUS_ACTIONS)}")
        out[str(theirs).strip().lower()] = value
    return out


def check_status_mapped(frame: pd.DataFrame, where: Where) -> None:
    """Refuse an unmapped column of tracker run states (e.g. W&B's ``State``) when the sweep
    has no ``status``: its crashed runs would be used, or their NaN loss taken as divergence."""
    if "status" in frame:
        return
    for name in frame.columns:
        if str(name).strip().lower().rsplit(".", 1)[-1] not in STATUS_LIKE:
            continue
        values = frame[name][~blank(frame[name])].astype(str).str.strip()
        states = values[values.str.lower().isin(TRACKER_STATUSES)].unique().tolist()
        if states:
            shown = ", ".join(repr(s) for s in states[:5])
            raise where.error([
                f"column {name!r} holds run states ({shown}) but is not mapped onto 'status': "
                f"map it (--column {name}=status; Python: columns={{{name!r}: 'status'}}), "
                "otherwise a crashed or running run would count as finished, or its missing "
                "loss as a divergence"])


def exact_duplicates(frame: pd.DataFrame, where: Where) -> tuple[pd.Series, list[str]]:
    """(reason per repeated row, indexed like ``frame``; notes): rows whose every column
    equals an earlier row's are excluded, so each run counts once."""
    try:
        group = frame.groupby(list(frame.columns), dropna=False, sort=False).ngroup()
    except TypeError:  # unhashable cells (e.g. lists from JSON): no exact-duplicate check
        return pd.Series(dtype="str"), []
    first = pd.Series(frame.index, index=frame.index).groupby(group).transform("min")
    repeated = first != frame.index
    if not repeated.any():
        return pd.Series(dtype="str"), []
    reasons = pd.Series(
        [f"exact duplicate of row {first[i]} (every column equal): counted once; "
         f"{where.rows([i])}" for i in frame.index[repeated]], index=frame.index[repeated])
    note = (f"{int(repeated.sum())} exact duplicate rows (every column equal to an earlier "
            f"row) excluded: {where.rows(frame.index[repeated])}")
    return reasons, [note]


def split_by_status(frame: pd.DataFrame, where: Where, status: Mapping[str, str] | None
                    ) -> tuple[pd.DataFrame, pd.Series]:
    """(``frame`` without excluded rows, its status mapped to ok/diverged or None where
    blank; reason per excluded row). Unknown states are an error naming rows and values."""
    raw = frame["status"]
    missing = blank(raw)
    mapping = status_map(status)
    user = {str(k).strip().lower() for k in (status or {})}
    key = raw.map(lambda v: str(v).strip().lower()).where(~missing)
    action = key.map(mapping)
    unknown = ~missing & action.isna()
    if unknown.any():
        known = ", ".join(sorted(mapping))
        raise where.error([where.problem(
            "status", f"unknown run states (known: {known}; map others with --status "
            "THEIRS=ok|diverged|excluded, Python: status={...})", frame.index[unknown],
            raw[unknown].unique())])
    out = action == "excluded"
    reasons = pd.Series(
        [f"status {raw[i]!r}: "
         + ("excluded by the status map" if key[i] in user else "run not finished")
         + f"; not used, not censored; {where.rows([i])}" for i in frame.index[out]],
        index=frame.index[out], dtype="str")
    kept = frame[~out].copy()
    kept["status"] = action[~out].astype(object).where(~missing[~out], None)
    return kept, reasons


def excluded_rows(frame: pd.DataFrame, reasons: pd.Series, runs: pd.DataFrame) -> pd.DataFrame:
    """Exclusion-report rows (row <NA>: not in runs) for ``frame``'s rows named in
    ``reasons``; cell as in ``runs`` where the row's keys match one, else computed, else NA."""
    if reasons.empty:
        return empty_report()
    rows = frame.loc[reasons.index]
    known = {_key(k): c for k, c in zip(runs[list(CELL_KEYS)].itertuples(index=False),
                                        runs["cell"], strict=True)}
    numbers = {c: as_float(rows[c], sizes=True)[0] for c in ("n_params", "n_tokens", "seq_len")}
    cells = []
    for j, (_, row) in enumerate(rows.iterrows()):
        arch, mix = (str(row[c]).strip() if not pd.isna(row[c]) else None
                     for c in ("arch", "data_mix"))
        n, d, s = (numbers[c][j] for c in ("n_params", "n_tokens", "seq_len"))
        valid = arch and mix and all(np.isfinite(v) and v > 0 for v in (n, d, s))
        key = (arch, mix, n, d, s)
        cells.append(known.get(_key(key), cell_id(*key)) if valid else np.nan)
    run_id = rows["run_id"].map(lambda v: np.nan if pd.isna(v) else str(v).strip())
    report = pd.DataFrame({
        "run_id": pd.Series(run_id.to_numpy(object), dtype="str"),
        "row": pd.array([pd.NA] * len(rows), dtype="Int64"),
        "cell": pd.Series(cells, dtype="str"), "action": "excluded",
        "reason": reasons.to_numpy(object)})
    return report[list(REPORT_COLUMNS)]


def _key(values: tuple) -> tuple:
    arch, mix, n, d, s = values
    return str(arch), str(mix), float(n), float(d), int(s)
