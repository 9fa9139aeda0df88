"""Pool mode: the candidates of :func:`~bayes_scaling.design.propose.propose` are the rows of a
table of runnable configurations (a csv / parquet / jsonl file, e.g. a sweep file itself, or
a DataFrame), not runs generated around the predicted optima.

A pool is read with the sweep readers and column maps
(:func:`~bayes_scaling.data.readers.read_table`,
:func:`~bayes_scaling.data.validate.rename_columns`, a
:class:`~bayes_scaling.data.formats.ColumnMap`), takes a sweep's defaults for absent columns,
and is validated as a candidate table (:func:`~bayes_scaling.design.candidates.as_candidates`):
one candidate run per row, a ``group`` column for rows that must run together, cost 6 N D
unless given. Rows already in the fitted sweep are not proposed again (:func:`already_run`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.data.formats import ColumnMap
from bayes_scaling.data.readers import read_table
from bayes_scaling.data.validate import drop_empty_rows, rename_columns
from bayes_scaling.data.where import Where
from bayes_scaling.design.candidates import RUN_COLUMNS, as_candidates
from bayes_scaling.errors import CandidateError
from bayes_scaling.predict.draws import Draws

POOL_COLUMNS = ("group", *RUN_COLUMNS, "seq_len", "weight_decay", "cost_flops", "batch_seqs",
                "run_id")
"""The columns of a pool's candidate table; any other (loss, status, ...) is ignored."""
MATCH_RTOL = 5e-3
"""Relative tolerance on N, D, lr, batch and weight decay when matching fitted runs: exports
print lr with three digits (ScaleBench has 0.00195 for Step Law's 0.001953), while a sweep's
distinct settings differ by far more than 0.5%."""


def read_pool(pool: pd.DataFrame | str | Path,
              columns: Mapping[str, str] | ColumnMap | None = None, *,
              archs: Iterable[str] | None = None) -> pd.DataFrame:
    """The candidate table of a pool: one run per row (arch, data_mix, n_params, n_tokens, lr,
    batch_tokens or batch_seqs[, seq_len, weight_decay, group, cost_flops or cost, run_id]).

    ``pool``: a csv, parquet or jsonl file, or a DataFrame. ``columns``: {their column:
    canonical name}, or a :class:`ColumnMap`, as for a sweep. Absent arch, data_mix, seq_len
    and weight_decay take a sweep's defaults (dense, default, 2048, unknown), so a sweep file
    read as a pool names the runs the fit saw; a row without a group is a group of its own
    (row<i>, i its data row). ``archs``: the allowed arch labels (others are
    an error). Errors (:class:`CandidateError`) name the file, the rows and the column.
    Returns :func:`~bayes_scaling.design.candidates.as_candidates`' table with ``pool_row``
    (the 0-based data row of the file) and ``attrs["pool"]`` (the source).
    """
    if isinstance(columns, ColumnMap):
        columns = columns.columns
    if isinstance(pool, pd.DataFrame):
        frame, where = pool.reset_index(drop=True), Where("pool")
    else:
        frame, where = read_table(pool, columns)
    frame, _ = drop_empty_rows(rename_columns(frame, columns, where), where)
    table = as_candidates(frame, where=where)
    table = table[[c for c in table.columns if c in POOL_COLUMNS]].assign(
        pool_row=frame.index.to_numpy())
    if archs is not None:
        _check_archs(table, sorted(set(archs)), where)
    table.attrs["pool"] = where.source
    return table


def _check_archs(table: pd.DataFrame, archs: list[str], where: Where) -> None:
    unknown = ~table["arch"].isin(archs)
    if unknown.any():
        raise CandidateError(f"{where.source}: " + where.problem(
            "arch", f"labels not in the fitted data {archs} (set data.allow_unseen_arch = true "
            "in the spec to draw an unseen arch from the population)",
            table["pool_row"][unknown], table["arch"][unknown].unique()))


def already_run(table: pd.DataFrame, runs: pd.DataFrame, rtol: float = MATCH_RTOL
                ) -> np.ndarray:
    """Which rows of a candidate table are runs of ``runs`` (the fitted sweep): the same arch
    and data_mix, and n_params, n_tokens, lr, batch_tokens within ``rtol``; weight decay too
    where both know it (an unknown one matches any)."""
    hit = np.zeros(len(table), bool)
    floats = ["n_params", "n_tokens", "lr", "batch_tokens"]
    for (arch, mix), rows in table.groupby(["arch", "data_mix"], sort=False).indices.items():
        fitted = runs[(runs["arch"] == arch) & (runs["data_mix"] == mix)]
        if fitted.empty:
            continue
        same = np.ones((len(rows), len(fitted)), bool)
        for col in [*floats, "weight_decay"]:
            a = table[col].to_numpy(float)[rows, None]
            b = fitted[col].to_numpy(float)[None, :]
            close = np.isclose(a, b, rtol=rtol, atol=0.0)
            same &= close if col in floats else close | np.isnan(a) | np.isnan(b)
        hit[rows] = same.any(axis=1)
    return hit


def pool_candidates(posterior: xr.DataTree, draws: Draws, pool: pd.DataFrame | str | Path,
                    columns: Mapping[str, str] | ColumnMap | None = None
                    ) -> tuple[pd.DataFrame, dict]:
    """The pool's candidates that the fitted sweep does not hold yet, and what was done:
    {"source", "rows" (read), "already_run" (dropped), "new_mixes" (labels not fitted,
    drawn from the mix population)}. Archs not fitted are an error unless the spec allows
    them; so is a pool with nothing left."""
    from bayes_scaling.model.fit import posterior_runs  # local: reading a pool stays light

    archs = None if draws.spec.allow_unseen_arch else draws.known("arch")
    table = read_pool(pool, columns, archs=archs)
    source = table.attrs["pool"]
    ran = already_run(table, posterior_runs(posterior))
    if ran.all():
        raise CandidateError(f"{source}: all {len(table)} rows are runs of the fitted sweep; "
                             "nothing left to propose")
    kept = table[~ran].reset_index(drop=True)
    info = {"source": source, "rows": len(table), "already_run": int(ran.sum()),
            "new_mixes": sorted(set(kept["data_mix"]) - set(draws.known("mix")))}
    return kept, info
