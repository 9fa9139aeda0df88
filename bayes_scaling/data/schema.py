"""The canonical sweep schema: columns, cell ids and the validated :class:`Sweep`.

One row per training run (DESIGN.md, "Canonical sweep schema"). A Sweep's rows are used,
censored (diverged, or above the fit window) or listed in its exclusion report with the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from bayes_scaling.data.identifiability import design_notes
from bayes_scaling.model import core

REQUIRED_COLUMNS = ("n_params", "n_tokens", "batch_tokens", "lr", "loss")
CANONICAL_COLUMNS = ("run_id", "arch", "data_mix", "n_params", "n_tokens", "batch_tokens",
                     "seq_len", "lr", "weight_decay", "loss", "status")
CELL_KEYS = ("arch", "data_mix", "n_params", "n_tokens", "seq_len")
LABEL_COLUMNS = ("run_id", "arch", "data_mix", "status")
POSITIVE_COLUMNS = ("n_params", "n_tokens", "batch_tokens", "seq_len", "lr")
STATUSES = ("ok", "diverged")
"""Statuses of the runs in a Sweep; an input row may also map to "excluded" (not a run)."""
STATUS_ACTIONS = ("ok", "diverged", "excluded")
TRACKER_STATUSES = {
    "ok": "ok", "diverged": "diverged", "finished": "ok", "completed": "ok",
    "crashed": "excluded", "failed": "excluded", "killed": "excluded", "running": "excluded",
    "preempted": "excluded", "pending": "excluded", "queued": "excluded",
    "scheduled": "excluded", "cancelled": "excluded", "canceled": "excluded"}
"""Built-in status map (run states of W&B / MLflow style trackers, lower case): a run that
did not finish is excluded with its state as the reason, never censored as a divergence."""
INPUT_COLUMNS = (*CANONICAL_COLUMNS, "batch_seqs")
"""Names a column may be mapped onto: the canonical ones, and ``batch_seqs`` (the global batch
in sequences: batch_tokens = batch_seqs * seq_len)."""
SIZE_COLUMNS = ("n_params", "n_tokens", "batch_tokens", "batch_seqs")
"""Columns whose text cells may carry a size suffix (7B, 2T, 350M, 1.5e9)."""
SIZE_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
LR_RANGE = (1e-6, 1.0)
"""A peak lr outside this open interval is warned about (a unit or column mix-up?)."""
MIN_SIZES = {"n_params": 1e4, "n_tokens": 1e6}
"""Smaller values are refused: counts given in millions or billions, not units."""
DEFAULTS: dict[str, Any] = {"arch": "dense", "data_mix": "default", "seq_len": 2048,
                            "weight_decay": math.nan, "status": None}
"""Values of absent columns; status None means 'ok', or 'diverged' where loss is NaN/inf."""
REPORT_COLUMNS = ("run_id", "row", "cell", "action", "reason")
NO_EDGE_REASON = "cell has no finite loss: no window edge to censor against"


# ----------------------------------------------------------------------------- sizes
def parse_size(text: str | float) -> float:
    """A count with an optional suffix: ``"7B"`` -> 7e9, ``"2T"``, ``"350M"``, ``"4k"``,
    ``"1.5e9"`` (K/M/B/G/T, any case); ValueError if it is not one."""
    if isinstance(text, int | float):
        return float(text)
    raw = str(text).strip().replace("_", "")
    scale = SIZE_SUFFIXES.get(raw[-1:].lower()) if raw else None
    number = raw[:-1].strip() if scale else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a number or a size such as 7B, 2T, 350M or 1.5e9: {text!r}"
                         ) from None
    return value * scale if scale else value


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
def empty_report() -> pd.DataFrame:
    """An exclusion report with no rows (columns REPORT_COLUMNS, typed)."""
    return pd.DataFrame({"run_id": pd.Series(dtype="str"), "row": pd.Series(dtype="Int64"),
                         "cell": pd.Series(dtype="str"), "action": pd.Series(dtype="str"),
                         "reason": pd.Series(dtype="str")})


@dataclass(frozen=True, eq=False)
class Sweep:
    """A validated sweep: canonical columns, then extras as read, then ``cell``."""

    runs: pd.DataFrame
    source: str
    excluded: pd.DataFrame = field(default_factory=empty_report)
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

    def exclusion_report(self, window: float = core.DEFAULT_WINDOW) -> pd.DataFrame:
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
            [no_edge, ~ok & ~np.isfinite(loss), ~ok,
             core.is_censored(loss, ok, core.window_edge(best, window))],
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

    def summary(self, window: float = core.DEFAULT_WINDOW) -> dict:
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
            "design": design_notes(runs),
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
