"""Which cells to hold out, and each held-out split: the sweep without the cell, and the cell.

The fitted sweep comes from the posterior file itself (its ``runs`` group), so the check needs
nothing but the posterior.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.data import Sweep
from bayes_scaling.errors import TargetError
from bayes_scaling.model.fit import fitted_sweep, posterior_cells
from bayes_scaling.model.spec import Spec

TARGET_COLUMNS = ("arch", "data_mix", "n_params", "n_tokens", "seq_len", "n_params_total")
SHOWN = 5
"""Cell ids listed in an error about an unknown one."""

__all__ = ["HeldOut", "fitted_sweep", "held_out", "parse_cells", "select_cells"]


@dataclass(frozen=True)
class HeldOut:
    """One leave-one-cell-out split: refit ``train`` with ``spec`` and ``seed``, predict
    ``target`` and score it on ``runs`` (the cell's runs); ``skip`` says why it cannot be
    done (then nothing is refitted)."""

    cell: str
    train: Sweep
    runs: pd.DataFrame
    target: dict
    spec: Spec
    seed: int
    skip: str = ""


def parse_cells(text: str) -> int | list[str]:
    """``--cells``: a count ('5': five random cells) or cell ids separated by commas."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    return [c.strip() for c in text.split(",") if c.strip()]


def select_cells(table: pd.DataFrame, cells: int | Sequence[str] | None, seed: int) -> list[str]:
    """Cell ids to hold out, in the table's order: every cell (None), ``cells`` random ones
    (an int; seeded), or the given ids. Unknown ids or a count out of range are a
    :class:`TargetError`."""
    ids = [str(c) for c in table.index]
    if cells is None:
        return ids
    if isinstance(cells, int | np.integer):
        if not 1 <= cells <= len(ids):
            raise TargetError(f"--cells {cells}: the posterior has {len(ids)} cells; give 1 to "
                              f"{len(ids)}, or cell ids")
        pick = np.random.default_rng(seed).choice(len(ids), size=int(cells), replace=False)
        return [ids[i] for i in sorted(pick)]
    unknown = [c for c in cells if c not in ids]
    if unknown or not cells:
        shown = ", ".join(ids[:SHOWN]) + (f" ... ({len(ids)} in all)" if len(ids) > SHOWN else "")
        raise TargetError(f"--cells: no cell {', '.join(map(repr, unknown))} in the posterior "
                          f"(its cells: {shown})" if unknown else "--cells: no cell given")
    return [c for c in ids if c in set(cells)]


def held_out(posterior: xr.DataTree, chosen: Sequence[str], spec: Spec, seed: int
             ) -> list[HeldOut]:
    """One :class:`HeldOut` per chosen cell. A cell is skipped when the rest of the sweep has
    no cell of its arch and the spec does not allow an unseen arch (nothing would predict
    it), or when it is the only cell."""
    sweep, table = fitted_sweep(posterior), posterior_cells(posterior)
    out = []
    for cell in chosen:
        mask = (sweep.runs["cell"] != cell).to_numpy()
        train = sweep.subset(mask)
        target = {c: table.loc[cell, c] if c in table else np.nan for c in TARGET_COLUMNS}
        skip = ""
        if not len(train.runs):
            skip = "the only cell of the sweep: nothing left to fit"
        elif target["arch"] not in set(train.runs["arch"]) and not spec.allow_unseen_arch:
            skip = (f"the only cell of arch {target['arch']!r} (the spec does not allow an "
                    "unseen arch)")
        out.append(HeldOut(cell=cell, train=train, runs=sweep.runs[~mask], target=target,
                           spec=spec, seed=seed, skip=skip))
    return out
