"""The leave-one-cell-out check as terminal text (what ``bayes-scaling check POSTERIOR``
prints after its progress lines)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # the CLI imports this module: keep it light
    from bayes_scaling.heldout.result import HeldOutCheck

__all__ = ["check_header", "check_text"]


def _g(value: float) -> str:
    return f"{value:.3g}"


def _optimum(row: pd.Series, name: str) -> str:
    """'2.1e-3 [1.4e-3, 3e-3] in' : prediction, 90% interval, whether it holds the cell's."""
    inside = "in" if row[f"{name}_in90"] else "OUT"
    return (f"{_g(row[f'{name}_pred'])} [{_g(row[f'{name}_lo90'])}, "
            f"{_g(row[f'{name}_hi90'])}] {inside}")


def _table(cells: pd.DataFrame) -> pd.DataFrame:
    """One display row per cell: scores of scored cells, the reason for the others."""
    rows = []
    for _, r in cells.iterrows():
        row = {"cell": r["cell"], "status": r["status"]}
        if r["status"] == "scored":
            row |= {"regret %": f"{r['regret_pct']:.3f}", "lr cell": _g(r["lr_ref"]),
                    "lr predicted [90%]": _optimum(r, "lr"), "batch cell": _g(r["batch_ref"]),
                    "batch predicted [90%]": _optimum(r, "batch"),
                    "PIT lr": f"{r['lr_pit']:.2f}", "PIT batch": f"{r['batch_pit']:.2f}",
                    "loss err %": f"{r['loss_err_pct']:+.2f}",
                    "diagnostics": "ok" if r["diagnostics_ok"] else "PROBLEMS"}
        else:
            row["diagnostics"] = r["error"]
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def check_header(source: str, n_cells: int, n_fitted: int, sampler: dict, jobs: int) -> str:
    """What the check is about to do."""
    draws = ("1,000 draws (doubled where a cell is thin in runs, again below 10 cells)"
             if sampler["draws"] == "auto"
             else f"{sampler['draws']} draws")
    return (f"leave-one-cell-out check of {source}: {n_cells} of {n_fitted} cells, each "
            f"refitted without itself ({sampler['chains']} chains x {draws} after "
            f"{sampler['tune']} tuning steps per refit; {jobs} at a time)")


def check_text(result: HeldOutCheck) -> str:
    """The cell table, the reference optimum's caveats, and the verdict."""
    lines = ["", _table(result.cells).to_string(index=False), "",
             "cell: the optimum of a quadratic fitted to the cell's runs within 1% of its best "
             "loss (ref_method in --out), itself an estimate: in/OUT and PIT judge it under "
             "the predictive plus its own bootstrap noise (lr_ref_sd, batch_ref_sd in --out; "
             "the model's interval alone: *_in90_point); the interval shown is the model's",
             "", "verdict:"]
    lines += [f"  - {line}" for line in result.verdict()]
    lines.append(f"({result.attrs['seconds']:.0f} s)")
    return "\n".join(lines)
