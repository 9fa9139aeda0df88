"""Synthetic sweeps with a known truth: the embedded default for the demo, tests and notebooks.

The true optimum of each cell (arch, data_mix, N, D) moves with scale as the power laws of
:mod:`bayes_scaling.model.core` (per-arch exponents, per-mix offsets, cell-level scatter); inside a
cell the final loss is an asymmetric bowl in (log lr, log batch, log weight decay) around that
optimum, runs past a stability edge in lr diverge, and observations carry Gaussian noise.
Defaults look like the Step Law sweeps: losses 2-3, noise 0.005, bowls about as wide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.data.schema import Sweep, cell_id
from bayes_scaling.data.validate import from_frame
from bayes_scaling.model import core

SEQ_LEN = 2048


@dataclass(frozen=True)
class ArchTruth:
    """True law parameters of one architecture family (natural logs, batch in tokens)."""

    c_eta: float
    a_n: float
    a_d: float
    c_b: float
    b_n: float
    b_d: float
    c_loss: float
    l_n: float
    l_d: float
    skew: float = 0.15
    q_loss: float = 0.0
    """The loss law's bend in tokens per parameter (:func:`core.loss_bend`); none by default."""


@dataclass(frozen=True)
class SimulationTruth:
    """Everything the simulator draws from; defaults resemble the Step Law sweeps."""

    archs: dict[str, ArchTruth] = field(default_factory=lambda: {
        "dense": ArchTruth(c_eta=-6.4, a_n=-0.70, a_d=0.30, c_b=13.9, b_n=0.05, b_d=0.57,
                           c_loss=0.73, l_n=-0.035, l_d=-0.030, skew=0.15),
        "moe": ArchTruth(c_eta=-6.1, a_n=-0.55, a_d=0.24, c_b=14.1, b_n=0.0, b_d=0.50,
                         c_loss=0.70, l_n=-0.040, l_d=-0.032, skew=0.15),
    })
    mix_offsets: dict[str, tuple[float, float, float]] = field(default_factory=lambda: {
        "web": (0.0, 0.0, 0.0), "code": (0.15, -0.10, -0.06)})
    """Per data mix: offsets of (log lr_opt, log batch_opt, log loss_opt)."""
    c_tau: float = float(np.log(0.2))
    g_tpp: float = -0.53
    sigma_cell_lr: float = 0.08
    sigma_cell_batch: float = 0.10
    sigma_cell_tau: float = 0.10
    sigma_cell_loss: float = 0.004
    chol_diag: tuple[float, float, float] = (0.30, 0.21, 0.22)
    chol_offdiag: tuple[float, float, float] = (0.05, 0.08, 0.0)
    """Lower-triangular entries (1,0), (2,0), (2,1) of the curvature's Cholesky factor."""
    sigma_chol: float = 0.10
    """Cell-level log-scale scatter of the Cholesky diagonal."""
    noise: float = 0.005
    diverge_log_lr: float = 1.6
    """Runs with log lr more than this above the cell's optimum diverge."""


def default_cells(archs: tuple[str, ...] = ("dense", "moe"),
                  mixes: tuple[str, ...] = ("web", "code"),
                  n_params: tuple[float, ...] = (5e7, 1e8, 2e8, 4e8),
                  tokens_per_param: tuple[float, ...] = (20.0, 100.0)) -> pd.DataFrame:
    """The (arch, data_mix, n_params, n_tokens) design: every N crossed with every TPP."""
    rows = [(a, m, n, n * t) for a in archs for m in mixes for n in n_params
            for t in tokens_per_param]
    return pd.DataFrame(rows, columns=["arch", "data_mix", "n_params", "n_tokens"])


def _cell_optima(cells: pd.DataFrame, truth: SimulationTruth,
                 rng: np.random.Generator) -> pd.DataFrame:
    """Draw each cell's true optimum (log lr, log batch, log tau, log wd, loss)."""
    out = cells.copy()
    arch = [truth.archs[a] for a in cells["arch"]]
    mix = np.array([truth.mix_offsets[m] for m in cells["data_mix"]])
    n, d = cells["n_params"].to_numpy(float), cells["n_tokens"].to_numpy(float)
    pick = lambda name: np.array([getattr(t, name) for t in arch])  # noqa: E731
    k = len(cells)
    out["log_lr_opt"] = (core.law_at(pick("c_eta"), pick("a_n"), pick("a_d"), n, d)
                         + mix[:, 0] + truth.sigma_cell_lr * rng.standard_normal(k))
    out["log_batch_opt"] = (core.law_at(pick("c_b"), pick("b_n"), pick("b_d"), n, d)
                            + mix[:, 1] + truth.sigma_cell_batch * rng.standard_normal(k))
    out["log_tau_opt"] = (core.tau_at(truth.c_tau, truth.g_tpp, n, d)
                          + truth.sigma_cell_tau * rng.standard_normal(k))
    out["log_weight_decay_opt"] = core.log_weight_decay(
        out["log_tau_opt"], out["log_lr_opt"], out["log_batch_opt"], np.log(d))
    log_loss = (core.loss_law_at(pick("c_loss"), pick("l_n"), pick("l_d"), pick("q_loss"),
                                 n, d) + mix[:, 2]
                + truth.sigma_cell_loss * rng.standard_normal(k))
    out["loss_opt"] = np.exp(log_loss)
    out["skew"] = pick("skew")
    return out


def _cell_chol(truth: SimulationTruth, k: int, rng: np.random.Generator) -> np.ndarray:
    """Per-cell 3x3 lower-triangular curvature factors with log-normal diagonal scatter."""
    chol = np.zeros((k, 3, 3))
    diag = np.asarray(truth.chol_diag) * np.exp(truth.sigma_chol * rng.standard_normal((k, 3)))
    chol[:, [0, 1, 2], [0, 1, 2]] = diag
    chol[:, 1, 0], chol[:, 2, 0], chol[:, 2, 1] = truth.chol_offdiag
    return chol


def _design_runs(cell: pd.Series, n_lr: int, n_batch: int, vary_weight_decay: bool,
                 rng: np.random.Generator) -> pd.DataFrame:
    """A team's grid in one cell: lr in sqrt(2) steps and batch in 2x steps around a guess
    that misses the true optimum by a random offset; weight decay drawn log-uniformly."""
    guess_lr = cell["log_lr_opt"] + rng.normal(0.0, 0.3)
    guess_b = cell["log_batch_opt"] + rng.normal(0.0, 0.3)
    log_lr = guess_lr + np.log(np.sqrt(2.0)) * (np.arange(n_lr) - (n_lr - 1) / 2)
    log_b = guess_b + np.log(2.0) * (np.arange(n_batch) - (n_batch - 1) / 2)
    grid_lr, grid_b = (g.ravel() for g in np.meshgrid(log_lr, log_b, indexing="ij"))
    seqs = np.maximum(1, np.round(np.exp(grid_b) / SEQ_LEN))
    if vary_weight_decay:
        log_wd = cell["log_weight_decay_opt"] + rng.uniform(-1.5, 1.5, size=grid_lr.size)
        wd = np.exp(log_wd)
    else:
        wd = np.full(grid_lr.size, np.nan)
    return pd.DataFrame({"lr": np.exp(grid_lr), "batch_tokens": seqs * SEQ_LEN,
                         "weight_decay": wd})


def _losses(runs: pd.DataFrame, cell: pd.Series, chol: np.ndarray, truth: SimulationTruth,
            rng: np.random.Generator) -> np.ndarray:
    """True bowl plus noise; runs past the stability edge diverge (NaN loss)."""
    d_lr = np.log(runs["lr"].to_numpy()) - cell["log_lr_opt"]
    d_b = np.log(runs["batch_tokens"].to_numpy()) - cell["log_batch_opt"]
    wd = runs["weight_decay"].to_numpy()
    d_wd = np.where(np.isnan(wd), 0.0, np.log(wd) - cell["log_weight_decay_opt"])
    delta = np.stack([d_lr, d_b, d_wd], axis=-1)
    loss = core.bowl_loss_matrix(cell["loss_opt"], delta, chol, cell["skew"])
    loss = loss + truth.noise * rng.standard_normal(loss.size)
    return np.where(core.diverges(d_lr, truth.diverge_log_lr), np.nan, loss)


def simulate_sweep(seed: int = 0, *, cells: pd.DataFrame | None = None,
                   truth: SimulationTruth | None = None, n_lr: int = 7, n_batch: int = 4,
                   vary_weight_decay: bool = True, return_truth: bool = True,
                   ) -> tuple[Sweep, xr.Dataset] | Sweep:
    """Simulate a sweep with a known truth.

    Args:
        seed: seeds everything drawn (cell effects, grids, noise).
        cells: (arch, data_mix, n_params, n_tokens) rows; default :func:`default_cells`.
        truth: the law parameters; default :class:`SimulationTruth` (Step-Law-like).
        n_lr, n_batch: grid points per cell (lr in sqrt(2) steps, batch in 2x steps).
        vary_weight_decay: draw each run's weight decay around the cell optimum (else NaN).
        return_truth: also return the truth as a labelled ``xarray.Dataset``.
    """
    rng = np.random.default_rng(seed)
    truth = truth or SimulationTruth()
    cells = default_cells() if cells is None else cells.reset_index(drop=True)
    cells = cells.assign(seq_len=cells.get("seq_len", SEQ_LEN))
    optima = _cell_optima(cells, truth, rng)
    chols = _cell_chol(truth, len(cells), rng)
    frames = []
    for i, cell in optima.iterrows():
        runs = _design_runs(cell, n_lr, n_batch, vary_weight_decay, rng)
        runs["loss"] = _losses(runs, cell, chols[i], truth, rng)
        for key in ("arch", "data_mix", "n_params", "n_tokens", "seq_len"):
            runs[key] = cell[key]
        frames.append(runs)
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "run_id", [f"sim{seed}-{i:05d}" for i in range(len(df))])
    sweep = from_frame(df, source=f"<simulated seed={seed}>")
    if not return_truth:
        return sweep
    return sweep, truth_dataset(truth, optima, chols, seed)


def truth_dataset(truth: SimulationTruth, optima: pd.DataFrame, chols: np.ndarray,
                  seed: int) -> xr.Dataset:
    """The truth as a labelled Dataset: law parameters by arch/mix, optima by cell."""
    archs = list(truth.archs)
    mixes = list(truth.mix_offsets)
    ids = [cell_id(r.arch, r.data_mix, r.n_params, r.n_tokens, r.seq_len)
           for r in optima.itertuples()]
    mix = np.array([truth.mix_offsets[m] for m in mixes])
    arch_var = lambda name: ("arch", [getattr(truth.archs[a], name) for a in archs])  # noqa: E731
    c_eta = np.array([[truth.archs[a].c_eta + mix[j, 0] for j in range(len(mixes))]
                      for a in archs])
    c_b = np.array([[truth.archs[a].c_b + mix[j, 1] for j in range(len(mixes))] for a in archs])
    ds = xr.Dataset(
        {
            "c_eta": (("arch", "mix"), c_eta),
            "c_batch": (("arch", "mix"), c_b),
            "a_n": arch_var("a_n"), "a_d": arch_var("a_d"),
            "b_n": arch_var("b_n"), "b_d": arch_var("b_d"),
            "skew": arch_var("skew"),
            "c_tau": truth.c_tau, "g_tpp": truth.g_tpp,
            "sigma_cell_lr": truth.sigma_cell_lr, "sigma_cell_batch": truth.sigma_cell_batch,
            "sigma_cell_tau": truth.sigma_cell_tau, "noise": truth.noise,
            "log_lr_opt": ("cell", optima["log_lr_opt"].to_numpy()),
            "log_batch_opt": ("cell", optima["log_batch_opt"].to_numpy()),
            "log_tau_opt": ("cell", optima["log_tau_opt"].to_numpy()),
            "log_weight_decay_opt": ("cell", optima["log_weight_decay_opt"].to_numpy()),
            "loss_opt": ("cell", optima["loss_opt"].to_numpy()),
            "chol": (("cell", "dim_row", "dim_col"), chols),
        },
        coords={"arch": archs, "mix": mixes, "cell": ids,
                "dim_row": ["lr", "batch", "weight_decay"],
                "dim_col": ["lr", "batch", "weight_decay"]},
        attrs={"seed": seed, "n_ref": core.N_REF, "d_ref": core.D_REF, "tpp_ref": core.TPP_REF,
               "description": "true parameters of a bayes_scaling simulated sweep"},
    )
    return ds

