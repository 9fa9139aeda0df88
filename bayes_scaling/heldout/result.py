"""The result of the leave-one-cell-out check: labelled tables, the verdict, and files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_scaling.heldout.coverage import verdict_lines
from bayes_scaling.heldout.sensitivity import PriorSensitivity

SUFFIXES = (".csv", ".json")
"""File types :meth:`HeldOutCheck.save` writes."""

__all__ = ["SUFFIXES", "HeldOutCheck"]


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON-ready records (NaN -> None)."""
    return json.loads(df.to_json(orient="records")) if len(df) else []


@dataclass(frozen=True)
class HeldOutCheck:
    """Leave-one-cell-out check of a posterior (:func:`bayes_scaling.heldout.loco.check`).

    cells: one row per held-out cell: its keys, status (scored, failed, skipped), error,
        seconds, the refit's diagnostics (diagnostics_ok, divergences, max_rhat,
        min_ess_bulk, diagnostics), the reference optimum (ref_*), per optimum (lr, batch)
        the reference, predicted median, PIT, 50/80/90% intervals, containment (``*_in90``)
        and log widths, regret_pct, loss_ref, loss_pred, loss_err_pct, loss_pit.
    runs: one row per held-out run: cell, its settings and loss, censored, the PIT of its
        loss under the posterior predictive (NaN when censored), predictive median and 90%.
    coverage: per optimum and level: hits, n, rate, consistent range, verdict.
    sensitivity: the sweep fitted under a second spec, side by side (None unless asked).
    attrs: provenance (posterior data and spec hashes, seed, sampler settings, jobs, time);
        also in both tables' ``attrs``.
    """

    cells: pd.DataFrame
    runs: pd.DataFrame
    coverage: pd.DataFrame
    attrs: dict[str, Any]
    sensitivity: PriorSensitivity | None = None

    def verdict(self) -> list[str]:
        """The plain verdict, one statement a line (:func:`~bayes_scaling.heldout.coverage
        .verdict_lines`)."""
        lines = verdict_lines(self.cells, self.coverage)
        return lines + (self.sensitivity.lines() if self.sensitivity is not None else [])

    def to_dict(self) -> dict[str, Any]:
        """Everything as one JSON-ready object: attrs, verdict, coverage, cells, runs and
        (when computed) sensitivity {attrs, optima, laws}."""
        out = {"attrs": self.attrs, "verdict": self.verdict(),
               "coverage": _records(self.coverage), "cells": _records(self.cells),
               "runs": _records(self.runs)}
        if self.sensitivity is not None:
            s = self.sensitivity
            out["sensitivity"] = {"attrs": s.attrs, "optima": _records(s.optima),
                                  "laws": _records(s.laws)}
        return out

    def save(self, path: str | Path) -> list[Path]:
        """Write to ``path``: ``.json`` one object (:meth:`to_dict`); ``.csv`` the cell
        table, with the runs in ``<stem>.runs.csv``, attrs, verdict and coverage in
        ``<stem>.meta.json`` and the prior sensitivity (when computed) in
        ``<stem>.sensitivity.csv`` (optima and laws, a ``table`` column tells them apart).
        Returns the files written."""
        path = Path(path)
        if path.suffix.lower() not in SUFFIXES:
            raise ValueError(f"{path}: write the check to .csv or .json")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(self.to_dict(), allow_nan=False) + "\n")
            return [path]
        runs = path.with_name(f"{path.stem}.runs.csv")
        meta = path.with_name(f"{path.stem}.meta.json")
        self.cells.to_csv(path, index=False)
        self.runs.to_csv(runs, index=False)
        meta.write_text(json.dumps({k: v for k, v in self.to_dict().items()
                                    if k in ("attrs", "verdict", "coverage")}) + "\n")
        if self.sensitivity is None:
            return [path, runs, meta]
        sens = path.with_name(f"{path.stem}.sensitivity.csv")
        pd.concat([self.sensitivity.optima.assign(table="optima"),
                   self.sensitivity.laws.assign(table="laws")], ignore_index=True).to_csv(
            sens, index=False)
        return [path, runs, meta, sens]
