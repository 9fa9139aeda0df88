"""Candidate runs for next-run selection (a table, or a default ladder of new cells below the
target), and the target's optimum per draw (:func:`target_effects`).

A candidate is a run (arch, data_mix, n_params, n_tokens, lr, batch_tokens[, weight_decay])
with a cost (:func:`run_flops`, 6 N D, unless the table has a ``cost_flops`` or ``cost``
column); runs sharing a ``group`` label are a mini-sweep chosen together. A pool of runnable
configurations is read into such a table by :mod:`bayes_scaling.design.pool`.

Each candidate cell's effects per draw come from :mod:`bayes_scaling.predict.cells`: a new
cell's law part is computed from the SAME draw of the law parameters as the target's, so a
small run's outcome informs the target through the shared law.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from bayes_scaling.data.schema import DEFAULTS, SIZE_COLUMNS
from bayes_scaling.data.validate import batch_from_sequences
from bayes_scaling.data.where import Where, as_float, blank
from bayes_scaling.errors import CandidateError
from bayes_scaling.model import core
from bayes_scaling.model.inputs import TOTAL_COLUMN
from bayes_scaling.model.laws import deepseek_compute
from bayes_scaling.predict.cells import (
    CellEffects,
    cell_optimum,
    existing_cell,
    match_cells,
    new_cell,
)
from bayes_scaling.predict.draws import Draws, as_targets

DEFAULT_SEQ_LEN = int(DEFAULTS["seq_len"])
RUN_COLUMNS = ("arch", "data_mix", "n_params", "n_tokens", "lr", "batch_tokens")


def run_flops(n_params: ArrayLike, n_tokens: ArrayLike) -> np.ndarray:
    """Training FLOPs of a run, 6 N D (:func:`~bayes_scaling.model.laws.deepseek_compute`
    with M = 6 N): a candidate's default cost, and the target's compute."""
    return deepseek_compute(n_params, n_tokens)


@dataclass(frozen=True)
class _Rows:
    """Where a candidate table's problems are: a file (``where``; ``rows`` are its 0-based
    data rows) or, without one, the table itself (``rows`` are positions)."""

    where: Where | None
    rows: np.ndarray

    def error(self, what: str) -> CandidateError:
        return CandidateError(f"{self.where.source if self.where else 'candidates'}: {what}")

    def column_error(self, column: str, what: str, bad: np.ndarray,
                     values: Iterable = ()) -> CandidateError:
        """The rows where ``bad`` holds, named by the file's row (and column name) if any."""
        if self.where is None:
            return self.error(f"column '{column}' {what}, rows {self.rows[bad][:10].tolist()}")
        return self.error(self.where.problem(column, what, self.rows[bad], values))


def as_candidates(candidates: pd.DataFrame | dict, seq_len: int = DEFAULT_SEQ_LEN, *,
                  where: Where | None = None) -> pd.DataFrame:
    """Validate a candidate table; absent arch, data_mix and weight_decay take a sweep's
    defaults (dense, default, NaN) and seq_len ``seq_len``; add cost_flops (:func:`run_flops`
    unless given as ``cost_flops`` or ``cost``) and group (a run without one is a group of
    its own). Sizes may read 7B or 350M; ``batch_seqs`` x seq_len may stand in for
    batch_tokens. ``where``: the file the table was read from (its index: the file's data
    rows); errors then name the file, its rows and its own column names."""
    df = pd.DataFrame(candidates)
    at = _Rows(where, df.index.to_numpy() if where is not None else np.arange(len(df)))
    df, present = df.reset_index(drop=True), list(df.columns)
    if not len(df):
        raise at.error("the table is empty")
    for col, default in (*((c, DEFAULTS[c]) for c in ("arch", "data_mix", "weight_decay")),
                         ("seq_len", seq_len)):
        if col not in df:
            df[col] = default
    df["seq_len"] = _positive(df["seq_len"], "seq_len", at).astype(int)
    if "batch_seqs" in df:
        df["batch_tokens"] = _batch_tokens(df, at)
    missing = [c for c in RUN_COLUMNS if c not in df]
    if missing:
        hint = "" if where is None else " (map other names with --column or a column map)"
        raise at.error(f"missing column(s) {missing}; columns present: {present}{hint}")
    for col in ("arch", "data_mix"):
        df[col] = _labels(df[col], col, at)
    for col in ("n_params", "n_tokens", "lr", "batch_tokens"):
        df[col] = _positive(df[col], col, at)
    df["weight_decay"] = _weight_decay(df["weight_decay"], at)
    cost_col = next((c for c in ("cost_flops", "cost") if c in df), None)
    df["cost_flops"] = (_positive(df[cost_col], cost_col, at) if cost_col
                        else run_flops(df["n_params"], df["n_tokens"]))
    df["group"] = _groups(df.get("group"), at)
    front = ["group", *RUN_COLUMNS, "seq_len", "weight_decay", "cost_flops"]
    return df[front + [c for c in df.columns if c not in front and c != "cost"]]


def _positive(col: pd.Series, name: str, at: _Rows) -> pd.Series:
    """Positive finite numbers (size suffixes read in the size columns)."""
    vals, _ = as_float(col, sizes=name in SIZE_COLUMNS)
    bad = ~(np.isfinite(vals) & (vals > 0))
    if bad.any():
        raise at.column_error(name, "must be a positive number", bad,
                              col.to_numpy(object)[bad])
    return pd.Series(vals, index=col.index)


def _weight_decay(col: pd.Series, at: _Rows) -> pd.Series:
    """Positive numbers, or empty (unknown: NaN)."""
    vals, text = as_float(col)
    bad = text | (vals <= 0) | np.isinf(vals)
    if bad.any():
        raise at.column_error("weight_decay", "must be positive or empty", bad,
                              col.to_numpy(object)[bad])
    return pd.Series(vals, index=col.index)


def _labels(col: pd.Series, name: str, at: _Rows) -> pd.Series:
    """Labels as text, stripped of stray spaces (as a sweep's are); none may be missing."""
    missing = blank(col).to_numpy()
    if missing.any():
        raise at.column_error(name, "missing labels", missing)
    return col.astype(str).str.strip()


def _batch_tokens(df: pd.DataFrame, at: _Rows) -> np.ndarray:
    """batch_tokens from batch_seqs (the batch in sequences) as a sweep's are; a given
    batch_tokens must agree."""
    x = {"batch_seqs": _positive(df["batch_seqs"], "batch_seqs", at).to_numpy(),
         "seq_len": df["seq_len"].to_numpy(float)}
    if "batch_tokens" in df:
        x["batch_tokens"] = _positive(df["batch_tokens"], "batch_tokens", at).to_numpy()
    problems: list[str] = []
    batch_from_sequences(x, pd.Index(at.rows), at.where or Where("candidates"), problems, [])
    if problems:
        raise at.error(problems[0])
    return x["batch_tokens"]


def _groups(group: pd.Series | None, at: _Rows) -> list[str]:
    """Group labels; a run without one (no column, or a blank) is a group of its own, run<i>
    (row<i> for the data row i of a file)."""
    own = [f"{'row' if at.where else 'run'}{r}" for r in at.rows]
    if group is None:
        return own
    return [mine if missing else str(label)
            for label, missing, mine in zip(group, blank(group), own, strict=True)]


def target_effects(d: Draws, target: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The target's optimum per draw, Rao-Blackwellised: law mean (S, k) and the covariance of
    its cell residuals (S, k, k), for log lr, log batch[, log weight decay]."""
    arch, mix = target["arch"], target["data_mix"]
    n, dtok = float(target["n_params"]), float(target["n_tokens"])
    total = float(target.get(TOTAL_COLUMN, np.nan))
    m_lr, m_b = (d.law_mean(q, arch, mix, n, dtok, total) for q in ("lr", "batch"))
    s_lr, s_b, s_tau = (d.get(f"sigma_cell_{q}") ** 2 for q in ("lr", "batch", "tau"))
    if len(d.dims) == 2:
        cov = np.zeros((d.n, 2, 2))
        cov[:, 0, 0], cov[:, 1, 1] = s_lr, s_b
        return np.stack([m_lr, m_b], axis=-1), cov
    m_wd = core.log_weight_decay(d.tau_mean(n, dtok), m_lr, m_b, np.log(dtok))
    cov = np.zeros((d.n, 3, 3))
    cov[:, 0, 0], cov[:, 1, 1], cov[:, 2, 2] = s_lr, s_b, s_lr + s_b + s_tau
    cov[:, 0, 2] = cov[:, 2, 0] = -s_lr
    cov[:, 1, 2] = cov[:, 2, 1] = s_b
    return np.stack([m_lr, m_b, m_wd], axis=-1), cov


def default_candidates(posterior: xr.DataTree | Draws, target: pd.DataFrame | dict, *,
                       max_fraction: float = 0.1, size_ratio: float = float(np.sqrt(2.0)),
                       tokens_per_param: tuple[float, ...] = (10.0, 20.0, 100.0),
                       lr_offsets: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0),
                       batch_offsets: tuple[float, ...] = (-1.0, 0.0, 1.0),
                       sweep_lr_step: float = 0.7, sweep_batch_step: float = 1.2,
                       include_existing: bool = True, n_draws: int = 400, seed: int = 0
                       ) -> pd.DataFrame:
    """Sensible candidates for ``target``: new cells of its arch and mix on a geometric N
    ladder (ratio ``size_ratio``) from the smallest fitted N up to ``max_fraction`` x the
    target's N, at the given tokens per param (plus the target's) with D <= max_fraction x
    the target's D, and the existing cells. In each cell: single runs at log-offsets
    ``lr_offsets`` x ``batch_offsets`` around the cell's predicted optimum, a 3-run lr line
    (step ``sweep_lr_step``), a 5-run cross (adds batch +-``sweep_batch_step``) and a 6-run
    box (the lr line at batch +-``sweep_batch_step`` / 2). Mini-sweeps inform a new cell far
    more than single runs: its loss at the optimum is unknown, so differences carry the news.
    Weight decay (when the fit has it) is set at the predicted optimum. ``posterior`` may be
    already-extracted :class:`Draws` (``n_draws`` and ``seed`` are then theirs)."""
    t = as_targets(target).iloc[0]
    d = (posterior if isinstance(posterior, Draws)
         else Draws.from_posterior(posterior, n_draws, seed))
    d.check_archs(as_targets(target))
    seq = int(d.cells["seq_len"].mode().iloc[0]) if len(d.cells) else DEFAULT_SEQ_LEN
    n_min = float(d.cells["n_params"].min()) if len(d.cells) else t["n_params"] / 1e3
    n_top = max_fraction * t["n_params"]
    rungs = n_top / size_ratio ** np.arange(0, 60)
    rungs = rungs[rungs >= n_min / np.sqrt(size_ratio)] if n_top >= n_min else rungs[:1]
    tpps = sorted({*tokens_per_param, float(t["n_tokens"] / t["n_params"])})
    sparsity = float(t[TOTAL_COLUMN] / t["n_params"])  # NaN for a dense target
    spots = pd.DataFrame([{"arch": t["arch"], "data_mix": t["data_mix"], "n_params": float(n),
                           "n_tokens": float(n * tpp), TOTAL_COLUMN: n * sparsity}
                          for n in rungs for tpp in tpps
                          if n * tpp <= max_fraction * t["n_tokens"] * (1 + 1e-9)],
                         columns=["arch", "data_mix", "n_params", "n_tokens", TOTAL_COLUMN])
    fitted = match_cells(d, spots).ne("") if len(spots) else pd.Series([], dtype=bool)
    # a rung on a fitted cell (5e7 from 4e8 / 2**3 is 49999999.99999998) is that cell
    cells: list[CellEffects] = [new_cell(d, s.arch, s.data_mix, s.n_params, s.n_tokens, 8,
                                         s.n_params_total)
                                for s in spots[~fitted.to_numpy()].itertuples()]
    if include_existing:
        cells += [existing_cell(d, cid) for cid in d.cells.index]
    rows = []
    for eff in cells:
        opt = cell_optimum(eff)
        arch, mix, n, dtok = eff.key
        name = f"{arch}|{mix}|N={n:.3g}|D={dtok:.3g}"
        shapes = {f"{name}:single{i}": [(a, b)] for i, (a, b) in enumerate(
            (a, b) for a in lr_offsets for b in batch_offsets)}
        line = [(-sweep_lr_step, 0.0), (0.0, 0.0), (sweep_lr_step, 0.0)]
        shapes[f"{name}:line3"] = line
        shapes[f"{name}:cross5"] = [*line, (0.0, -sweep_batch_step), (0.0, sweep_batch_step)]
        shapes[f"{name}:box6"] = [(a, b * sweep_batch_step / 2) for a, _ in line
                                  for b in (-1.0, 1.0)]
        for group, offs in shapes.items():
            for a, b in offs:
                seqs = max(1.0, np.round(np.exp(opt[1] + b) / seq))
                rows.append({"group": group, "arch": arch, "data_mix": mix, "n_params": n,
                             "n_tokens": dtok, "lr": float(np.exp(opt[0] + a)),
                             "batch_tokens": seqs * seq, "seq_len": seq,
                             "weight_decay": float(np.exp(opt[2])) if len(opt) == 3 else np.nan,
                             "new_cell": not eff.existing, TOTAL_COLUMN: n * sparsity})
    return as_candidates(pd.DataFrame(rows))
