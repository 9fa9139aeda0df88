"""Posterior draws at cells the fit has not seen: the law at any (arch, mix, N, D) plus a new
cell's own residuals, from the formulas of :mod:`bayes_scaling.model.core`.

The one place for the rules of prediction:
- a fitted (arch, mix) uses its own intercept; a fitted arch with an unseen mix adds a mix
  offset drawn from N(0, sd_mix_<intercept>);
- an unseen arch (only where the spec allows it) draws its exponents around their population
  means (sd_arch_exponent), its intercepts from their prior spread around the fitted archs'
  mean, and takes the fitted archs' mean curvature, skew and noise;
- a new cell's optimum is the law plus the cell-level scatter (sigma_cell_*); its curvature is
  drawn around its arch's mean, and (with ``bowl.skew_by_cell``) its skew around its arch's.
Draws of unseen labels are fixed per (posterior draw, label), so every cell and target that
carries a label shares them (a small run's outcome informs the target through them).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.errors import PosteriorWarning, TargetError
from bayes_scaling.model import core
from bayes_scaling.model.inputs import TOTAL_COLUMN, config_label, largest_sparsity
from bayes_scaling.model.spec import Spec, spec_from_json

TARGET_COLUMNS = ("arch", "data_mix", "n_params", "n_tokens")
SAMPLE_DIMS = ("chain", "draw")
INTERCEPTS = {"lr": "c_eta", "batch": "c_batch", "loss": "c_loss"}
"""Quantity -> its intercept's model name (exponents: :data:`core.LAWS`)."""
NEW_CELL_VARS = ("log_lr_opt", "log_batch_opt", "log_tau_opt", "log_weight_decay_opt",
                 "log_loss_opt", "chol_diag", "chol_offdiag", "skew", "noise")


def as_targets(targets: pd.DataFrame | dict) -> pd.DataFrame:
    """Validate target rows: arch, data_mix (default 'default'), n_params, n_tokens > 0, and
    n_params_total (a sparse model's total parameters; NaN: not given)."""
    if isinstance(targets, dict):  # scalars broadcast against lists
        cols = {k: np.atleast_1d(v) for k, v in targets.items()}
        n = max((len(v) for v in cols.values()), default=0)
        if any(len(v) not in (1, n) for v in cols.values()):
            raise TargetError(f"targets: columns of different lengths "
                              f"{ {k: len(v) for k, v in cols.items()} }")
        targets = {k: np.repeat(v, n) if len(v) == 1 else v for k, v in cols.items()}
    df = pd.DataFrame(targets)
    if "data_mix" not in df:
        df["data_mix"] = "default"
    total = pd.to_numeric(df.get(TOTAL_COLUMN, np.nan), errors="coerce")
    bad = np.flatnonzero(df[TOTAL_COLUMN].notna() & ~(total > 0)) if TOTAL_COLUMN in df else []
    if len(bad):
        raise TargetError(f"targets: column '{TOTAL_COLUMN}' must be a positive number (or "
                          f"empty), rows {list(bad)}")
    df[TOTAL_COLUMN] = np.asarray(total, dtype=float) * np.ones(len(df))
    missing = [c for c in TARGET_COLUMNS if c not in df]
    if missing:
        raise TargetError(f"targets: missing column(s) {missing}")
    positive_columns(df, ("n_params", "n_tokens"), "targets")
    return df.reset_index(drop=True)


def positive_columns(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """Make ``columns`` of ``df`` floats, in place; a missing column, or a value that is not
    a positive number, is a :class:`TargetError` naming ``what``, the column and the rows."""
    for c in columns:
        if c not in df:
            raise TargetError(f"{what}: missing column '{c}'")
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = np.flatnonzero(~(vals > 0))
        if len(bad):
            raise TargetError(f"{what}: column '{c}' must be a positive number, rows "
                              f"{bad.tolist()}")
        df[c] = vals.astype(float)


_WARNED: set[tuple[str, ...]] = set()
"""Posteriors already warned about in this process (by provenance)."""


def warn_if_unreliable(posterior: xr.DataTree) -> None:
    """Warn (:class:`PosteriorWarning`), once per posterior and process, when the posterior
    failed its sampling diagnostics: everything drawn from it inherits the problem."""
    key = tuple(str(posterior.attrs.get(k)) for k in ("created", "data_hash", "spec_hash",
                                                       "seed", "diagnostics"))
    if int(posterior.attrs.get("diagnostics_ok", 1)) == 0 and key not in _WARNED:
        _WARNED.add(key)
        lines = str(posterior.attrs.get("diagnostics", "")).splitlines()
        problems = "; ".join(x.strip()[2:] for x in lines if x.strip().startswith("- "))
        warnings.warn(PosteriorWarning(
            f"this posterior failed its sampling diagnostics ({problems or 'see its attrs'}); "
            f"results drawn from it may be wrong"), stacklevel=1)


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from labels (stable across processes, unlike ``hash``)."""
    text = json.dumps([str(p) for p in parts])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


@dataclass
class Draws:
    """A (thinned) flattened set of posterior draws, S of them, with label-aware accessors."""

    post: xr.Dataset
    index: np.ndarray
    spec: Spec
    dims: tuple[str, ...]
    cells: pd.DataFrame
    seed: int
    _shared: dict = field(default_factory=dict)

    @classmethod
    def from_posterior(cls, posterior: xr.DataTree, n_draws: int | None = None,
                       seed: int = 0) -> Draws:
        """Every draw (``n_draws`` None) or ``n_draws`` evenly spaced ones."""
        from bayes_scaling.model.fit import posterior_cells  # local: keeps this module light

        warn_if_unreliable(posterior)
        post = posterior["posterior"].to_dataset()
        total = post.sizes["chain"] * post.sizes["draw"]
        n = total if not n_draws or n_draws >= total else n_draws
        index = np.unique(np.linspace(0, total - 1, n).round().astype(int))
        return cls(post=post, index=index, spec=spec_from_json(posterior.attrs["spec_json"]),
                   dims=tuple(json.loads(posterior.attrs["dims"])),
                   cells=posterior_cells(posterior), seed=seed)

    @property
    def n(self) -> int:
        return len(self.index)

    def get(self, name: str, **sel: str) -> np.ndarray:
        """Variable ``name`` (optionally at labels) as (S, remaining dims...)."""
        da = self.post[name].sel(**sel) if sel else self.post[name]
        da = da.transpose("chain", "draw", ...)
        return da.to_numpy().reshape(-1, *da.shape[2:])[self.index]

    def z(self, *key: object, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Standard normal draws (S, *shape) fixed per key: shared by all cells using it."""
        full = (*key, shape)
        if full not in self._shared:
            rng = np.random.default_rng([self.seed, stable_seed(*key)])
            self._shared[full] = rng.standard_normal((self.n, *shape))
        return self._shared[full]

    def known(self, coord: str) -> list[str]:
        return [str(v) for v in self.post[coord].to_numpy()]

    def check_archs(self, targets: pd.DataFrame) -> None:
        """Fail clearly on an unseen arch unless the spec allows it."""
        unseen = sorted(set(targets["arch"]) - set(self.known("arch")))
        if unseen and not self.spec.allow_unseen_arch:
            raise TargetError(f"targets: arch {unseen} not in the fitted data (known: "
                              f"{sorted(self.known('arch'))}); set data.allow_unseen_arch = "
                              f"true in the spec to draw an unseen arch from the population")

    def by_arch(self, name: str, arch: str, sd_name: str | None = None) -> np.ndarray:
        """A per-arch variable; an unseen arch draws around the population mean (shared), or
        takes the fitted archs' mean where there is no population scale."""
        if arch in self.known("arch"):
            return self.get(name, arch=arch)
        if sd_name and f"mu_{name}" in self.post and sd_name in self.post:
            return self.get(f"mu_{name}") + self.get(sd_name) * self.z(name, arch)
        return self.get(name).mean(axis=1)

    def intercept(self, name: str, arch: str, mix: str) -> np.ndarray:
        """c[arch, mix] at the reference; unseen mixes/archs draw their offsets (shared)."""
        archs, mixes = self.known("arch"), self.known("mix")
        if arch in archs and mix in mixes:
            return self.get(name, arch=arch, mix=mix)
        base = (self.get(f"{name}_arch", arch=arch) if arch in archs else
                self.get(f"{name}_arch").mean(axis=1)
                + self.spec.priors[f"{name}_arch"].sigma * self.z(name, "arch", arch))
        if mix in mixes:
            return base + self.get(name, arch=archs[0], mix=mix) - self.get(
                f"{name}_arch", arch=archs[0])
        return base + self.get(f"sd_mix_{name}") * self.z(name, "mix", mix)

    def law_mean(self, q: str, arch: str, mix: str, n_params: float, n_tokens: float,
                 n_params_total: float = np.nan) -> np.ndarray:
        """Law (no cell residual) for q in lr, batch, loss (log scale), per draw (S,), with
        the configuration's offset (:meth:`config_offset`)."""
        _, e_n, e_d = core.LAWS[q]
        sd = "sd_arch_loss_exponent" if q == "loss" else "sd_arch_exponent"
        args = (self.intercept(INTERCEPTS[q], arch, mix), self.by_arch(e_n, arch, sd),
                self.by_arch(e_d, arch, sd))
        total = self.total_params(arch, n_params, n_params_total)
        shift = self.config_offset(q, arch, n_params, total)
        if q == "loss":
            return core.loss_law_at(*args, self.q_loss(), n_params, n_tokens) + shift
        return core.law_at(*args, core.size_of(q, n_params, total), n_tokens) + shift

    def total_params(self, arch: str, n_params: float, n_params_total: float = np.nan
                     ) -> float:
        """A model's total parameters: as given; NaN for a dense one. An arch fitted on
        sparse configurations needs it (its lr law runs in total parameters): a
        :class:`TargetError` when it is not given."""
        if np.isfinite(n_params_total):
            return float(n_params_total)
        if np.isfinite(largest_sparsity(self.cells, arch)):
            raise TargetError(
                f"targets: arch {arch!r} was fitted on sparse configurations (total "
                f"parameters above active ones), and its lr law runs in total parameters: "
                f"give the target's {TOTAL_COLUMN} (--total-params on the command line)")
        return np.nan

    def config_offset(self, q: str, arch: str, n_params: float,
                      n_params_total: float = np.nan) -> np.ndarray:
        """The sparse configuration's offset of the q law per draw (S,): a fitted
        configuration's own; a new one's drawn from N(0, sd_config_q), shared by every cell
        of that configuration; 0 for a dense model (or a posterior without configurations)."""
        label = config_label(arch, n_params, n_params_total)
        if not label or f"config_{q}" not in self.post:
            return np.zeros(self.n)
        if label in self.known("config"):
            return self.get(f"config_{q}", config=label)
        return self.get(f"sd_config_{q}") * self.z("config", q, label)

    def q_loss(self) -> np.ndarray:
        """The loss law's bend per draw (:func:`core.loss_bend`); zero for posteriors fitted
        before the law had it."""
        return self.get("q_loss") if "q_loss" in self.post else np.zeros(self.n)

    def skew(self, arch: str, n_tokens: float) -> np.ndarray:
        """A cell's lr skew per draw (S,) at D tokens (:func:`core.skew_at`); zero without
        skew, constant in D for posteriors without ``skew_d``."""
        if "skew" not in self.post:
            return np.zeros(self.n)
        skew_d = self.by_arch("skew_d", arch) if "skew_d" in self.post else 0.0
        x_d = core.log_scale(1.0, float(n_tokens))[1]
        return core.skew_at(self.by_arch("skew", arch), skew_d, x_d)

    def tau_mean(self, n_params: float, n_tokens: float) -> np.ndarray:
        """log tau* law per draw (S,)."""
        return core.tau_at(self.get("c_tau"), self.get("g_tpp"), n_params, n_tokens)


def new_cell_draws(d: Draws, arch: str, mix: str, n_params: float, n_tokens: float,
                   n_inner: int, n_params_total: float = np.nan) -> dict[str, np.ndarray]:
    """A new cell's effects: the law from each draw plus ``n_inner`` residual samples.

    Returns (S, n_inner) arrays log_lr_opt, log_batch_opt, log_tau_opt, log_weight_decay_opt,
    log_loss_opt; chol_diag (S, n_inner, k); and per arch (S[, offdiag]) chol_offdiag, skew
    (per cell with ``bowl.skew_by_cell``: one draw for the inner samples), noise. The
    residuals are seeded by the cell's labels and sizes.
    """
    k = len(d.dims)
    rng = np.random.default_rng([d.seed, stable_seed("cell", arch, mix, n_params, n_tokens)])
    z = rng.standard_normal((4 + k, d.n, n_inner))
    sig = {q: d.get(f"sigma_cell_{q}")[:, None] for q in ("lr", "batch", "tau", "loss")}
    out = {f"log_{q}_opt": d.law_mean(q, arch, mix, n_params, n_tokens, n_params_total)[:, None]
           + sig[q] * z[i]
           for i, q in ((0, "lr"), (1, "batch"), (3, "loss"))}
    out["log_tau_opt"] = d.tau_mean(n_params, n_tokens)[:, None] + sig["tau"] * z[2]
    out["log_weight_decay_opt"] = core.log_weight_decay(
        out["log_tau_opt"], out["log_lr_opt"], out["log_batch_opt"], np.log(n_tokens))
    mu_diag = d.by_arch("mu_log_chol_diag", arch)
    out["chol_diag"] = np.exp(mu_diag[:, None, :] + d.get("sd_log_chol_diag")[:, None, :]
                              * np.moveaxis(z[4:], 0, -1))
    out["chol_offdiag"] = d.by_arch("chol_offdiag", arch)
    out["skew"] = d.skew(arch, n_tokens)
    if "sd_skew_cell" in d.post:  # the cell's own skew (one for its inner samples)
        out["skew"] = out["skew"] + d.get("sd_skew_cell") * rng.standard_normal(d.n)
    out["noise"] = d.by_arch("noise", arch)
    return out


def draw_new_cells(posterior: xr.DataTree, targets: pd.DataFrame | dict,
                   seed: int = 0) -> xr.Dataset:
    """Posterior predictive cell effects at each target (one new cell per posterior draw).

    Returns a Dataset with dims (chain, draw, target[, dim, offdiag]): log_lr_opt,
    log_batch_opt (tokens), log_tau_opt, log_weight_decay_opt, log_loss_opt, chol_diag,
    chol_offdiag, skew and noise, plus the target table as coords.
    """
    targets = as_targets(targets)
    d = Draws.from_posterior(posterior, None, seed)
    d.check_archs(targets)
    shape = (d.post.sizes["chain"], d.post.sizes["draw"])
    per_target = [new_cell_draws(d, t.arch, t.data_mix, t.n_params, t.n_tokens, 1,
                                 t.n_params_total) for t in targets.itertuples()]
    out = xr.Dataset()
    for name in NEW_CELL_VARS:
        stacked = np.stack([np.asarray(e[name]) for e in per_target], axis=1)  # (S, T, ...)
        if name in ("chol_diag",) or name.startswith("log_"):
            stacked = stacked[:, :, 0]  # the single inner sample
        extra = {"chol_diag": ("dim",), "chol_offdiag": ("offdiag",)}.get(name, ())
        out[name] = xr.DataArray(stacked.reshape(*shape, *stacked.shape[1:]),
                                 dims=(*SAMPLE_DIMS, "target", *extra))
    out = out.assign_coords({c: d.post[c] for c in (*SAMPLE_DIMS, "dim", "offdiag")
                             if c in d.post.coords})
    coords = {c: ("target", targets[c].to_numpy()) for c in TARGET_COLUMNS}
    return out.assign_coords(target=np.arange(len(targets)), **coords).assign_attrs(
        seed=seed, dims=posterior.attrs["dims"], targets=json.dumps(
            targets[list(TARGET_COLUMNS)].to_dict(orient="records")))
