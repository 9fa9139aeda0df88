"""What a sweep's design can and cannot tell the model, in words: one size, N and D that move
together, no batch or weight-decay variation. Said by ``validate`` before any fit, so a user
knows which predictions will be data-driven and which will come from the priors."""

from __future__ import annotations

import numpy as np
import pandas as pd

COLLINEAR_SD = 0.1
"""Spread of log(tokens per parameter) across cells below which N and D 'move together'."""


def _sizes(cells: pd.DataFrame) -> tuple[int, int, pd.Series]:
    """Distinct N, distinct D and log tokens per parameter of an arch's cells."""
    tpp = np.log(cells["n_tokens"]) - np.log(cells["n_params"])
    return cells["n_params"].nunique(), cells["n_tokens"].nunique(), tpp


def _arch_cells(runs: pd.DataFrame):
    """(arch, its ok runs, its cells' N and D) for each arch with ok runs."""
    ok = runs[runs["status"] == "ok"]
    for arch, mine in ok.groupby("arch"):
        yield arch, mine, mine.groupby("cell")[["n_params", "n_tokens"]].first()


def exponent_ridges(runs: pd.DataFrame) -> list[str]:
    """Archs whose N and D exponents the runs cannot separate (one size, one token count, or
    N and D moving together): their posterior is a ridge along a direction the priors set."""
    out = []
    for arch, _, cells in _arch_cells(runs):
        sizes, tokens, tpp = _sizes(cells)
        if sizes == 1 or tokens == 1 or float(tpp.std(ddof=0)) < COLLINEAR_SD:
            out.append(str(arch))
    return out


def design_notes(runs: pd.DataFrame) -> list[str]:
    """One sentence per limitation of the design, per arch."""
    notes = []
    for arch, mine, cells in _arch_cells(runs):
        sizes, tokens, tpp = _sizes(cells)
        if sizes == 1:
            notes.append(f"{arch}: one model size (N = {cells['n_params'].iloc[0]:.3g}): how the "
                         "optima move with N (a_n, b_n, l_n) comes from the priors and the "
                         "other archs, not from these runs")
        if tokens == 1:
            notes.append(f"{arch}: one token count (D = {cells['n_tokens'].iloc[0]:.3g}): how "
                         "the optima move with D (a_d, b_d, l_d) comes from the priors and the "
                         "other archs, not from these runs")
        if sizes > 1 and tokens > 1 and float(tpp.std(ddof=0)) < COLLINEAR_SD:
            notes.append(f"{arch}: N and D move together (about {np.exp(tpp.mean()):.3g} tokens "
                         "per parameter in every cell): the runs fix how the optima move along "
                         "that ratio but not the N and D exponents separately; predictions at "
                         "another tokens-per-parameter ratio lean on the priors")
        per_cell = mine.groupby("cell")
        if (per_cell["batch_tokens"].nunique() < 2).all():
            notes.append(f"{arch}: the batch never varies within a cell: batch_opt and its law "
                         "come from the priors")
        wd = mine.dropna(subset=["weight_decay"]).groupby("cell")["weight_decay"].nunique()
        if not (wd >= 2).any():
            notes.append(f"{arch}: weight decay does not vary within any cell: weight_decay_opt "
                         "is the AdamW-timescale prior (Power Lines) pushed through the fitted "
                         "lr and batch laws")
    return notes
