"""Candidate runs for next-run selection (a table, or a default ladder of new cells below the
target), and the target's optimum per draw (:func:`target_effects`).

A candidate is a run (arch, data_mix, n_params, n_tokens, lr, batch_tokens[, weight_decay])
with a cost (6 N D FLOPs unless the table has a ``cost_flops`` or ``cost`` column); runs
sharing a ``group`` label are a mini-sweep chosen together.

Each candidate cell's effects per draw come from :mod:`bayes_scaling.predict.cells`: a new
cell's law part is computed from the SAME draw of the law parameters as the target's, so a
small run's outcome informs the target through the shared law.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.errors import CandidateError
from bayes_scaling.model import core
from bayes_scaling.predict.cells import (
    CellEffects,
    cell_optimum,
    existing_cell,
    new_cell,
)
from bayes_scaling.predict.draws import Draws, as_targets

DEFAULT_SEQ_LEN = 2048
RUN_COLUMNS = ("arch", "data_mix", "n_params", "n_tokens", "lr", "batch_tokens")


def as_candidates(candidates: pd.DataFrame | dict, seq_len: int = DEFAULT_SEQ_LEN
                  ) -> pd.DataFrame:
    """Validate a candidate table; add data_mix ('default'), seq_len, weight_decay (NaN),
    cost_flops (6 N D unless given as ``cost_flops`` or ``cost``) and group (one per run)."""
    df = pd.DataFrame(candidates).reset_index(drop=True)
    if not len(df):
        raise CandidateError("candidates: the table is empty")
    df["data_mix"] = df.get("data_mix", "default")
    missing = [c for c in RUN_COLUMNS if c not in df]
    if missing:
        raise CandidateError(f"candidates: missing column(s) {missing}")
    for col in ("n_params", "n_tokens", "lr", "batch_tokens"):
        df[col] = _positive(df[col], col)
    for col, default in (("weight_decay", np.nan), ("seq_len", seq_len)):
        if col not in df:
            df[col] = default
    df["weight_decay"] = pd.to_numeric(df["weight_decay"], errors="coerce").astype(float)
    bad = np.flatnonzero(df["weight_decay"].to_numpy() <= 0)
    if len(bad):
        raise CandidateError(f"candidates: column 'weight_decay' must be positive or empty, "
                             f"rows {bad[:10].tolist()}")
    df["seq_len"] = pd.to_numeric(df["seq_len"]).astype(int)
    cost_col = next((c for c in ("cost_flops", "cost") if c in df), None)
    df["cost_flops"] = (_positive(df[cost_col], cost_col) if cost_col
                        else 6.0 * df["n_params"] * df["n_tokens"])
    if "group" in df:
        df["group"] = df["group"].astype(str)
    else:
        df["group"] = [f"run{i}" for i in range(len(df))]
    front = ["group", *RUN_COLUMNS, "seq_len", "weight_decay", "cost_flops"]
    return df[front + [c for c in df.columns if c not in front and c != "cost"]]


def _positive(col: pd.Series, name: str) -> pd.Series:
    vals = pd.to_numeric(col, errors="coerce").astype(float)
    bad = np.flatnonzero(~(vals.to_numpy() > 0) | ~np.isfinite(vals.to_numpy()))
    if len(bad):
        raise CandidateError(f"candidates: column '{name}' must be a positive number, rows "
                             f"{bad[:10].tolist()}")
    return vals


def target_effects(d: Draws, target: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The target's optimum per draw, Rao-Blackwellised: law mean (S, k) and the covariance of
    its cell residuals (S, k, k), for log lr, log batch[, log weight decay]."""
    arch, mix = target["arch"], target["data_mix"]
    n, dtok = float(target["n_params"]), float(target["n_tokens"])
    m_lr, m_b = (d.law_mean(q, arch, mix, n, dtok) for q in ("lr", "batch"))
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
    cells: list[CellEffects] = []
    for n in rungs:
        for tpp in tpps:
            if n * tpp <= max_fraction * t["n_tokens"] * (1 + 1e-9):
                cells.append(new_cell(d, t["arch"], t["data_mix"], float(n), float(n * tpp), 8))
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
                             "new_cell": not eff.existing})
    return as_candidates(pd.DataFrame(rows))
