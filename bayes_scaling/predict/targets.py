"""Targets: the big run(s) to plan, the one rule for their defaults, and our choice of (lr,
batch) next to the published laws' with the expected regret of each.

The default data mix is decided here and only here (:func:`default_mix`); ``predict``,
``propose``, ``report`` and ``demo`` all use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.errors import TargetError
from bayes_scaling.model import laws
from bayes_scaling.model.inputs import TOTAL_COLUMN, largest_sparsity
from bayes_scaling.predict.predict import Prediction, predict
from bayes_scaling.predict.regret import expected_regret

DEFAULT_SEQ_LEN = 2048
TARGET_SCALE = 10.0
"""Default target: this many times the largest fitted N and the largest fitted D."""

__all__ = ["Comparison", "compare_choices", "default_mix", "default_targets", "fitted_mixes",
           "make_target", "mix_notes", "regret_choices"]


def _cells(posterior: xr.DataTree) -> pd.DataFrame:
    from bayes_scaling.model.fit import posterior_cells  # local: the fit module loads PyMC

    return posterior_cells(posterior)


def fitted_mixes(posterior: xr.DataTree) -> list[str]:
    """The posterior's data mixes, most fitted cells first (ties: the posterior's order)."""
    order = [str(m) for m in posterior["posterior"]["mix"].to_numpy()]
    counts = _cells(posterior)["data_mix"].astype(str).value_counts()
    return sorted(order, key=lambda m: (-int(counts.get(m, 0)), order.index(m)))


def default_mix(posterior: xr.DataTree, mix: str | None = None) -> str:
    """THE rule for a target's data mix: ``mix`` when given (a label absent from the fit is a
    new mix, its offset drawn from the mix population); otherwise the fitted mix with the most
    cells (the only one when the fit has one mix; ties: the first in the posterior's order)."""
    return str(mix) if mix is not None else fitted_mixes(posterior)[0]


def default_arch(posterior: xr.DataTree, arch: str | None = None) -> str:
    """A target's arch: ``arch`` when given, else the posterior's only fitted arch (a
    :class:`TargetError` naming the fitted archs when there are several)."""
    if arch is not None:
        return str(arch)
    archs = sorted(_cells(posterior)["arch"].unique())
    if len(archs) != 1:
        raise TargetError(f"give the target's arch (--arch): the posterior has "
                          f"{', '.join(archs)}")
    return str(archs[0])


def mix_notes(posterior: xr.DataTree, mix: str | None) -> list[str]:
    """What :func:`default_mix` did with ``mix``, in words (empty when nothing to say)."""
    mixes = fitted_mixes(posterior)
    chosen = default_mix(posterior, mix)
    if chosen not in mixes:
        return [f"mix '{chosen}' is not in the fit (fitted: {', '.join(mixes)}): its offset is "
                "drawn from the mix population"]
    if mix is None and len(mixes) > 1:
        return [f"mix '{chosen}' chosen by default (the fitted mix with the most cells; fitted: "
                f"{', '.join(mixes)}); give a mix to choose another"]
    return []


def extrapolation_notes(posterior: xr.DataTree, target: dict[str, object],
                        factor: float = 2.0) -> list[str]:
    """Where ``target`` lies beyond the fitted cells of its arch (all cells for an unseen
    arch) by more than ``factor`` in N, D or tokens per parameter, in words: such
    predictions extrapolate the laws (their intervals say how far they can be trusted)."""
    cells = _cells(posterior)
    mine = cells[cells["arch"] == target["arch"]]
    mine = mine if len(mine) else cells
    n, d = float(target["n_params"]), float(target["n_tokens"])
    values = {"N": (n, mine["n_params"]), "D": (d, mine["n_tokens"]),
              "tokens per parameter": (d / n, mine["n_tokens"] / mine["n_params"])}
    notes = []
    for name, (x, fitted) in values.items():
        lo, hi = float(fitted.min()), float(fitted.max())
        if x > factor * hi:
            notes.append(f"target {name} = {x:.3g} is {x / hi:.3g}x the largest fitted "
                         f"({hi:.3g}, {target['arch']}): the prediction extrapolates the law")
        elif x < lo / factor:
            notes.append(f"target {name} = {x:.3g} is {lo / x:.3g}x below the smallest fitted "
                         f"({lo:.3g}, {target['arch']}): the prediction extrapolates the law")
    return notes


def make_target(posterior: xr.DataTree, arch: str | None, n_params: float, n_tokens: float,
                mix: str | None = None, seq_len: float = DEFAULT_SEQ_LEN,
                batch_tokens: float | None = None, n_params_total: float | None = None
                ) -> dict[str, object]:
    """One target row (arch, data_mix, n_params, n_tokens, seq_len, batch_tokens,
    n_params_total) with the data mix from :func:`default_mix` and the arch from
    :func:`default_arch`; ``batch_tokens`` None: the batch is free; ``n_params_total`` None:
    not given (dense, or the arch's fitted sparsity)."""
    return {"arch": default_arch(posterior, arch), "data_mix": default_mix(posterior, mix),
            "n_params": float(n_params), "n_tokens": float(n_tokens), "seq_len": float(seq_len),
            "batch_tokens": None if batch_tokens is None else float(batch_tokens),
            TOTAL_COLUMN: None if n_params_total is None else float(n_params_total)}


def default_targets(posterior: xr.DataTree, n_params: float | None = None,
                    n_tokens: float | None = None, archs: list[str] | None = None,
                    mix: str | None = None) -> pd.DataFrame:
    """Target rows, one per arch (default: every fitted arch) at (n_params, n_tokens),
    default :data:`TARGET_SCALE` x the largest fitted N and D; mix by :func:`default_mix`;
    a sparse arch's total parameters (column n_params_total, only where the posterior has
    sparse configurations) at the total / active ratio of its largest configuration."""
    cells = _cells(posterior)
    archs = list(archs or sorted(cells["arch"].unique()))
    n = n_params or float(TARGET_SCALE * cells["n_params"].max())
    d = n_tokens or float(TARGET_SCALE * cells["n_tokens"].max())
    out = pd.DataFrame({"arch": archs, "data_mix": default_mix(posterior, mix),
                        "n_params": n, "n_tokens": d})
    totals = [n * largest_sparsity(cells, a) for a in archs]
    return out.assign(**{TOTAL_COLUMN: totals}) if np.isfinite(totals).any() else out



def regret_choices(summary: pd.DataFrame, published: pd.DataFrame,
                   batch_tokens: float | None = None) -> pd.DataFrame:
    """(choice, lr, batch_tokens) rows to compare: our posterior medians, Step Law's and
    DeepSeek's optima; with a fixed batch also our lr at it and Step Law's lr at it."""
    med = summary.set_index("quantity")["median"]
    law = published.set_index("law")
    rows = [("ours (median)", med["lr_opt"], med["batch_tokens_opt"])]
    rows += [(name, law.loc[name, "lr_opt"], law.loc[name, "batch_tokens_opt"])
             for name in ("steplaw", "deepseek")]
    if batch_tokens is not None:
        rows += [("ours at the given batch", med["lr_opt_at_batch"], batch_tokens),
                 ("steplaw lr at the given batch", law.loc["steplaw", "lr_opt"], batch_tokens)]
    return pd.DataFrame(rows, columns=["choice", "lr", "batch_tokens"])


@dataclass(frozen=True)
class Comparison:
    """One target's prediction next to the published laws.

    target: the target row; prediction: :func:`~bayes_scaling.predict.predict` at it;
    published: :func:`bayes_scaling.model.laws.published_optima` at it; regret: one row per
    choice (choice, lr, batch_tokens, expected_regret, expected_regret_pct, regret_pct_lo,
    regret_pct_hi); notes: what a reader should know (mix choice, published laws' caveats).
    """

    target: dict[str, object]
    prediction: Prediction
    published: pd.DataFrame
    regret: pd.DataFrame
    notes: list[str]


def compare_choices(posterior: xr.DataTree, target: dict[str, object], seed: int = 0,
                    notes: list[str] | None = None) -> Comparison:
    """Predict ``target`` (from :func:`make_target`), and the expected regret of our choice and
    of each published law's choice there (same seed: the same new-cell draws)."""
    batch = target.get("batch_tokens")
    row = {**target, "batch_tokens": np.nan if batch is None else batch}
    prediction = predict(posterior, row, seed=seed)
    published = laws.published_optima(target["n_params"], target["n_tokens"],
                                      int(target.get("seq_len", DEFAULT_SEQ_LEN)))
    choices = regret_choices(prediction.summary, published, batch)
    plain = {k: target[k] for k in ("arch", "data_mix", "n_params", "n_tokens", "seq_len")
             if k in target}
    regret = expected_regret(posterior, plain, lr=choices["lr"], seed=seed,
                             batch_tokens=choices["batch_tokens"]).to_dataframe()
    table = choices.assign(**{c: regret[c].to_numpy() for c in (
        "expected_regret", "expected_regret_pct", "regret_pct_lo", "regret_pct_hi")})
    notes = [*(notes or []), "published laws: weight decay = Power Lines timescale tau at that "
             "law's lr and batch; Bjorck et al. needs an anchor run and is not shown; for MoE, "
             "N = active parameters"]
    return Comparison(target, prediction, published, table, notes)
