"""Validation: a raw frame (any layout) -> the canonical runs of a :class:`Sweep`.

Every input row is used, censored or listed as excluded with its reason: nothing is dropped
silently. Bad input raises one :class:`SweepError` naming the source, the rows (0-based data
rows, plus file lines where the format has them) and the column (as the file names it);
implausible but possible values (an lr of 3, labels with stray spaces) are notes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from bayes_scaling.data.rows import (
    check_status_mapped,
    exact_duplicates,
    excluded_rows,
    split_by_status,
)
from bayes_scaling.data.schema import (
    CANONICAL_COLUMNS,
    DEFAULTS,
    INPUT_COLUMNS,
    LABEL_COLUMNS,
    LR_RANGE,
    MIN_SIZES,
    POSITIVE_COLUMNS,
    REQUIRED_COLUMNS,
    SIZE_COLUMNS,
    STATUSES,
    Sweep,
    cell_ids,
    empty_report,
)
from bayes_scaling.data.where import MAX_SHOWN, NA_TOKENS, Where, as_float, blank

__all__ = ["MAX_SHOWN", "NA_TOKENS", "Where", "as_float", "batch_from_sequences", "build_sweep",
           "drop_empty_rows", "from_frame", "rename_columns"]


def rename_columns(df: pd.DataFrame, columns: Mapping[str, str] | None, where: Where
                   ) -> pd.DataFrame:
    """``df`` with {their column: canonical name} applied, the file's names kept in
    ``where.names``; unknown, duplicate or clashing names are an error."""
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
    where.names.update({canonical: theirs for theirs, canonical in columns.items()
                        if canonical != theirs})
    return df.rename(columns=columns)


def _check_scalars(frame: pd.DataFrame, where: Where) -> None:
    """Refuse lists and objects (from JSON) where the schema wants one number or label."""
    problems = []
    for column in frame.columns:
        if column not in INPUT_COLUMNS or frame[column].dtype != object:
            continue
        nested = frame[column].map(lambda v: isinstance(v, list | dict | tuple | set))
        if nested.any():
            problems.append(where.problem(
                column, "lists or objects where one value belongs", frame.index[nested],
                frame[column][nested]))
    if problems:
        raise where.error(problems)


def drop_empty_rows(frame: pd.DataFrame, where: Where) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows with any field present, exclusion report of the all-missing rows)."""
    if frame.shape[1] == 0:
        return frame, empty_report()
    empty = pd.concat([blank(frame[c]) for c in frame.columns], axis=1).all(axis=1)
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
    """Absent optional columns get their DEFAULTS (run_id: r + the 0-based data row)."""
    notes = []
    frame = frame.copy()
    if "run_id" not in frame:
        frame.insert(0, "run_id", [f"r{i:05d}" for i in frame.index])
        notes.append("run_id absent: generated from the data row, r00000, r00001, ...")
    shown = {"weight_decay": "NaN (unknown)", "status": "'ok' ('diverged' where loss is NaN/inf)"}
    for column, value in DEFAULTS.items():
        if column not in frame:
            frame[column] = value
            notes.append(f"{column} absent: default {shown.get(column, repr(value))} applied "
                         "to every run")
    return frame, notes


def _numbers(frame: pd.DataFrame, where: Where, problems: list[str],
             notes: list[str]) -> dict[str, np.ndarray]:
    """Parse and check the numeric canonical columns (and batch_seqs); append problems."""
    out = {}
    positive = [*POSITIVE_COLUMNS, *(["batch_seqs"] if "batch_seqs" in frame else [])]
    if "batch_tokens" not in frame:
        positive.remove("batch_tokens")
    for column in (*positive, "weight_decay", "loss"):
        x, bad = as_float(frame[column], sizes=column in SIZE_COLUMNS)
        rows, raw = frame.index, frame[column].to_numpy(object)
        if bad.any():
            problems.append(where.problem(column, "non-numeric values (give plain numbers in "
                                          "the column's unit)", rows[bad], raw[bad]))
        present = ~bad & ~np.isnan(x)
        if column in positive:
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
    batch_from_sequences(out, frame.index, where, problems, notes)
    _check_units(out, frame.index, where, problems)
    _check_plausible(out, frame.index, where, problems, notes)
    out.pop("batch_seqs", None)
    return out


def batch_from_sequences(x: dict[str, np.ndarray], rows: pd.Index, where: Where,
                         problems: list[str], notes: list[str]) -> None:
    """batch_tokens = batch_seqs * seq_len when the batch is given in sequences; both
    given: they must agree."""
    if "batch_seqs" not in x:
        return
    tokens = x["batch_seqs"] * x["seq_len"]
    if "batch_tokens" not in x:
        x["batch_tokens"] = tokens
        notes.append(f"batch_tokens = batch_seqs x seq_len (batch_seqs: column "
                     f"{where.names.get('batch_seqs', 'batch_seqs')!r})")
        return
    differs = ~np.isclose(x["batch_tokens"], tokens, rtol=1e-9, atol=0) & np.isfinite(tokens)
    if differs.any():
        problems.append(where.problem("batch_tokens", "differs from batch_seqs x seq_len",
                                      rows[differs], x["batch_tokens"][differs]))


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


def _check_plausible(x: dict[str, np.ndarray], rows: pd.Index, where: Where,
                     problems: list[str], notes: list[str]) -> None:
    """Refuse sizes that look like millions or billions; note lr outside LR_RANGE."""
    for column, least in MIN_SIZES.items():
        small = x[column] < least
        if column == "n_tokens":
            small &= x["n_tokens"] >= x["batch_tokens"]  # those are reported above
        if small.any():
            problems.append(where.problem(
                column, f"below {least:g}: looks like a count in millions or billions (give "
                "the count itself, e.g. 7e9 or 7B)", rows[small], x[column][small]))
    lo, hi = LR_RANGE
    odd = ~((x["lr"] > lo) & (x["lr"] < hi)) & np.isfinite(x["lr"]) & (x["lr"] > 0)
    if odd.any():
        notes.append(where.problem("lr", f"outside ({lo:g}, {hi:g}), implausible for a peak "
                                   "learning rate (another column or unit?)", rows[odd],
                                   x["lr"][odd]))


def _labels(frame: pd.DataFrame, column: str, where: Where, problems: list[str],
            notes: list[str]) -> pd.Series:
    """Labels as text; missing labels are a problem. arch and data_mix are stripped of stray
    spaces ("Dense " is "Dense") and labels differing only in case are noted."""
    missing = blank(frame[column])
    if missing.any() and column != "status":
        problems.append(where.problem(column, "missing labels", frame.index[missing]))
    text = pd.Series([v if isinstance(v, str) else str(v) for v in frame[column]],
                     index=frame.index, dtype="str").where(~missing)
    if column not in ("arch", "data_mix"):  # run ids are kept exactly; status is mapped
        return text
    stripped = text.str.strip()
    spaced = (stripped != text) & ~missing
    if spaced.any():
        notes.append(where.problem(column, "labels with leading/trailing spaces, stripped",
                                   frame.index[spaced], text[spaced].unique()))
    labels = pd.Series(stripped.dropna().unique())
    clashes = [names for names in labels.groupby(labels.str.lower()).agg(list)
               if len(names) > 1]
    if clashes:
        notes.append(f"column {where.column(column)}: labels that differ only in case are "
                     f"different labels: {'; '.join(map(str, clashes))}")
    return stripped


def _status(frame: pd.DataFrame, loss: np.ndarray, where: Where, problems: list[str],
            notes: list[str]) -> pd.Series:
    """ok / diverged; blank -> from the loss; NaN/inf loss -> diverged."""
    status = _labels(frame, "status", where, problems, notes).str.lower()
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
    absent = (status.isna().all() and not finite.all())
    if absent:
        notes.append(f"no status: {int((~finite).sum())} runs with NaN/inf loss taken as "
                     "diverged (censored); if a run crashed instead, give a status column")
    return status.where(finite, "diverged").fillna("ok")


def _check_run_ids(run_id: pd.Series, where: Where, problems: list[str]) -> None:
    dup = run_id[run_id.duplicated(keep=False) & run_id.notna()]
    if dup.empty:
        return
    groups = [f"{value!r} at {where.rows(rows)}"
              for value, rows in dup.groupby(dup, sort=False).groups.items()]
    more = f"; ... and {len(groups) - MAX_SHOWN} more" if len(groups) > MAX_SHOWN else ""
    problems.append(f"column {where.column('run_id')}: duplicate values: "
                    f"{'; '.join(groups[:MAX_SHOWN])}{more}")


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
    x = _numbers(frame, where, problems, notes)
    labels = {c: _labels(frame, c, where, problems, notes)
              for c in LABEL_COLUMNS if c != "status"}
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


def _missing_columns(frame: pd.DataFrame, where: Where) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame
               and not (c == "batch_tokens" and "batch_seqs" in frame)]
    if missing:
        batch = " (or batch_seqs: the batch in sequences)" if "batch_tokens" in missing else ""
        raise where.error([f"missing required column(s) {missing}{batch}; columns present: "
                           f"{list(frame.columns)} (map other names with columns=)"])


def build_sweep(df: pd.DataFrame, where: Where, columns: Mapping[str, str] | None = None,
                arch_labels: Iterable[str] | None = None, notes: Sequence[str] = (),
                excluded: pd.DataFrame | None = None,
                status: Mapping[str, str] | None = None) -> Sweep:
    """Rename; refuse lists/objects in schema columns; drop (and report) empty rows, exact
    duplicates and runs whose status maps to excluded; fill defaults; validate; assemble."""
    frame = rename_columns(df, columns, where)
    _check_scalars(frame, where)
    frame, empty = drop_empty_rows(frame, where)
    _missing_columns(frame, where)
    check_status_mapped(frame, where)
    if frame.empty:
        raise where.error(["no runs: there are no data rows"])
    duplicates, duplicate_notes = exact_duplicates(frame, where)
    if "batch_seqs" in frame and "seq_len" not in frame:
        duplicate_notes.append(
            f"batch_seqs given without seq_len: batch_tokens = batch_seqs x "
            f"{DEFAULTS['seq_len']} (the default seq_len; map your sequence-length column if "
            "it differs)")
    frame, default_notes = _fill_defaults(frame)
    notes = [*notes, *duplicate_notes, *default_notes]
    kept, by_status = split_by_status(frame.drop(index=duplicates.index), where, status)
    reasons = pd.concat([duplicates, by_status]).sort_index()
    if kept.empty:
        raise where.error([f"no runs left: all {len(frame)} rows are excluded (e.g. "
                           f"{reasons.iloc[0]})"])
    canonical = _canonical(kept, where, arch_labels, notes)
    runs = _assemble(canonical, kept, where)
    parts = [p for p in (excluded, empty, excluded_rows(frame, reasons, runs))
             if p is not None and not p.empty]
    report = pd.concat(parts, ignore_index=True) if parts else empty_report()
    return Sweep(runs=runs, source=where.source, excluded=report, notes=tuple(notes))


def from_frame(df: pd.DataFrame, source: str = "<frame>",
               columns: Mapping[str, str] | None = None,
               arch_labels: Iterable[str] | None = None,
               status: Mapping[str, str] | None = None) -> Sweep:
    """Validate a DataFrame (renamed with ``columns={theirs: canonical}``) into a Sweep.

    ``arch_labels``: allowed arch labels (e.g. from a model spec); others are an error.
    ``status``: {their run state: ok, diverged or excluded}, on top of the built-in tracker
    states (finished/completed -> ok; crashed, failed, killed, running -> excluded).
    ``batch_seqs`` (the global batch in sequences) may stand in for ``batch_tokens``.
    """
    return build_sweep(df.reset_index(drop=True), Where(source), columns, arch_labels,
                       status=status)
