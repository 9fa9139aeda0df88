"""Posterior predictive draws of a NEW cell's effects at a target (arch, mix, N, D).

The cell-level scatter of the laws is part of every draw (a new cell's optimum is the law
plus its own residual), unseen data mixes draw their offset from the mix population, and an
unseen arch draws its exponents from the arch population (only when the spec allows it).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.errors import TargetError
from bayes_scaling.model import laws
from bayes_scaling.model.spec import Spec, spec_from_json

TARGET_COLUMNS = ("arch", "data_mix", "n_params", "n_tokens")
SAMPLE_DIMS = ("chain", "draw")



def as_targets(targets: pd.DataFrame | dict) -> pd.DataFrame:
    """Validate target rows: arch, data_mix (default 'default'), n_params, n_tokens > 0."""
    df = pd.DataFrame(targets if not isinstance(targets, dict) else
                      {k: np.atleast_1d(v) for k, v in targets.items()})
    if "data_mix" not in df:
        df["data_mix"] = "default"
    missing = [c for c in TARGET_COLUMNS if c not in df]
    if missing:
        raise TargetError(f"targets: missing column(s) {missing}")
    for c in ("n_params", "n_tokens"):
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = np.flatnonzero(~(vals > 0))
        if len(bad):
            raise TargetError(f"targets: column '{c}' must be a positive number, rows "
                              f"{bad.tolist()}")
        df[c] = vals.astype(float)
    return df.reset_index(drop=True)


def _norm(rng: np.random.Generator, like: xr.DataArray, target: xr.DataArray) -> xr.DataArray:
    """Standard normal draws with the sample dims of ``like`` and the target dim."""
    shape = (*like.shape, target.size)
    return xr.DataArray(rng.standard_normal(shape), dims=(*like.dims, "target"))


def _by_arch(post: xr.Dataset, name: str, archs: list[str], spec: Spec,
             rng: np.random.Generator, sd_name: str | None) -> xr.DataArray:
    """A per-arch variable at each target's arch; unseen archs draw from the population."""
    known = list(post["arch"].values)
    parts = []
    for a in archs:
        if a in known:
            parts.append(post[name].sel(arch=a, drop=True))
        elif sd_name is not None and f"mu_{name}" in post:
            z = rng.standard_normal(post[f"mu_{name}"].shape)
            parts.append(post[f"mu_{name}"] + post[sd_name] * z)
        else:  # intercepts and curvature of an unseen arch: the average arch
            parts.append(post[name].mean("arch"))
    return xr.concat(parts, dim="target")


def _intercept(post: xr.Dataset, name: str, targets: pd.DataFrame, spec: Spec,
               rng: np.random.Generator) -> xr.DataArray:
    """c[arch, mix] for each target; an unseen mix adds a draw from N(0, sd_mix)."""
    known_arch, known_mix = list(post["arch"].values), list(post["mix"].values)
    parts = []
    for arch, mix in zip(targets["arch"], targets["data_mix"], strict=True):
        if arch in known_arch and mix in known_mix:
            parts.append(post[name].sel(arch=arch, mix=mix, drop=True))
            continue
        base = (post[f"{name}_arch"].sel(arch=arch, drop=True) if arch in known_arch
                else post[f"{name}_arch"].mean("arch")
                + spec.priors[f"{name}_arch"].sigma
                * rng.standard_normal(post[name].isel(arch=0, mix=0).shape))
        sd_mix = post[f"sd_mix_{name}"]
        offset = (sd_mix * rng.standard_normal(sd_mix.shape) if mix not in known_mix
                  else post[name].sel(arch=known_arch[0], mix=mix, drop=True)
                  - post[f"{name}_arch"].sel(arch=known_arch[0], drop=True))
        parts.append(base + offset)
    return xr.concat(parts, dim="target")


def check_archs(posterior: xr.DataTree, targets: pd.DataFrame) -> None:
    """Fail clearly on an unseen arch unless the posterior's spec allows it."""
    known = set(posterior["posterior"]["arch"].values.tolist())
    unseen = sorted(set(targets["arch"]) - known)
    if unseen and not spec_from_json(posterior.attrs["spec_json"]).allow_unseen_arch:
        raise TargetError(f"targets: arch {unseen} not in the fitted data (known: "
                          f"{sorted(known)}); set data.allow_unseen_arch = true in the spec "
                          f"to draw an unseen arch from the population")


def draw_new_cells(posterior: xr.DataTree, targets: pd.DataFrame | dict,
                   seed: int = 0) -> xr.Dataset:
    """Posterior predictive cell effects at each target.

    Returns a Dataset with dims (chain, draw, target[, dim, offdiag]): log_lr_opt,
    log_batch_opt (tokens), log_tau_opt, log_weight_decay_opt, log_loss_opt, chol_diag,
    chol_offdiag, skew and noise, plus the target table as coords.
    """
    targets = as_targets(targets)
    check_archs(posterior, targets)
    spec = spec_from_json(posterior.attrs["spec_json"])
    post = posterior["posterior"].to_dataset()
    rng = np.random.default_rng(seed)
    archs = list(targets["arch"])
    tgt = xr.DataArray(np.arange(len(targets)), dims="target")
    log_n = xr.DataArray(np.log(targets["n_params"].to_numpy() / laws.N_REF), dims="target")
    log_d = xr.DataArray(np.log(targets["n_tokens"].to_numpy() / laws.D_REF), dims="target")
    log_tpp = xr.DataArray(np.log(targets["n_tokens"].to_numpy()
                                  / targets["n_params"].to_numpy() / laws.TPP_REF),
                           dims="target")
    ex = {e: _by_arch(post, e, archs, spec, rng, sd)
          for e, sd in (("a_n", "sd_arch_exponent"), ("a_d", "sd_arch_exponent"),
                        ("b_n", "sd_arch_exponent"), ("b_d", "sd_arch_exponent"),
                        ("l_n", "sd_arch_loss_exponent"), ("l_d", "sd_arch_loss_exponent"))}
    scatter = {q: post[f"sigma_cell_{q}"] * _norm(rng, post["sigma_cell_lr"], tgt)
               for q in ("lr", "batch", "tau", "loss")}
    out = xr.Dataset()
    out["log_lr_opt"] = (_intercept(post, "c_eta", targets, spec, rng)
                         + ex["a_n"] * log_n + ex["a_d"] * log_d + scatter["lr"])
    out["log_batch_opt"] = (_intercept(post, "c_batch", targets, spec, rng)
                            + ex["b_n"] * log_n + ex["b_d"] * log_d + scatter["batch"])
    out["log_loss_opt"] = (_intercept(post, "c_loss", targets, spec, rng)
                           + ex["l_n"] * log_n + ex["l_d"] * log_d + scatter["loss"])
    out["log_tau_opt"] = post["c_tau"] + post["g_tpp"] * log_tpp + scatter["tau"]
    out["log_weight_decay_opt"] = (out["log_batch_opt"] - out["log_lr_opt"]
                                   - out["log_tau_opt"] - log_d - np.log(laws.D_REF))
    mu_diag = _by_arch(post, "mu_log_chol_diag", archs, spec, rng, None)
    z = rng.standard_normal(mu_diag.transpose(*SAMPLE_DIMS, "target", "dim").shape)
    out["chol_diag"] = np.exp(mu_diag + post["sd_log_chol_diag"]
                              * xr.DataArray(z, dims=(*SAMPLE_DIMS, "target", "dim")))
    out["chol_offdiag"] = _by_arch(post, "chol_offdiag", archs, spec, rng, None)
    out["skew"] = (_by_arch(post, "skew", archs, spec, rng, None) if "skew" in post
                   else xr.zeros_like(out["log_lr_opt"]))
    out["noise"] = _by_arch(post, "noise", archs, spec, rng, None)
    out = out.transpose(*SAMPLE_DIMS, "target", ...)
    coords = {c: ("target", targets[c].to_numpy()) for c in TARGET_COLUMNS}
    return out.assign_coords(target=np.arange(len(targets)), **coords).assign_attrs(
        seed=seed, dims=posterior.attrs["dims"], targets=json.dumps(
            targets[list(TARGET_COLUMNS)].to_dict(orient="records")))


def chol_matrix(chol_diag: np.ndarray, chol_offdiag: np.ndarray) -> np.ndarray:
    """Assemble lower-triangular factors (..., k, k) from diag (..., k) and the off-diagonal
    entries (..., k(k-1)/2) in the model's order: (1,0), (2,0), (2,1)."""
    k = chol_diag.shape[-1]
    out = np.zeros((*chol_diag.shape, k))
    idx = np.arange(k)
    out[..., idx, idx] = chol_diag
    pos = 0
    for i in range(1, k):
        for j in range(i):
            out[..., i, j] = chol_offdiag[..., pos]
            pos += 1
    return out
