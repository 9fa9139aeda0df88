"""Build the hierarchical PyMC model from the generative core.

The model itself (laws, skewed bowl, curvature, censoring, weight decay from tau) is stated
and written once in :mod:`bayes_scaling.model.core`; this module puts it in a PyMC graph:
priors from the spec (:class:`~bayes_scaling.model.spec.Prior`, named after the variables),
per-arch exponents pooled around population means, zero-sum per-mix offsets, intercepts
sampled at the data's centre and reported at the reference scale, cell-level optima around
the laws (log tau non-centred where weight decay does not vary), and the observed
(Student-t or Normal) and censored (Normal survival at the window edge) likelihoods, whose
bowl and density the sampler evaluates in one compiled loop
(:class:`~bayes_scaling.model.run_kernel.RunLogLik`).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_scaling.data import Sweep
from bayes_scaling.model import core
from bayes_scaling.model.generated_source import keep_generated_source
from bayes_scaling.model.inputs import ModelInputs, prepare_inputs
from bayes_scaling.model.run_kernel import RunLogLik
from bayes_scaling.model.spec import Spec, default_spec

keep_generated_source()  # in PyTensor's compile cache, not thousands of files in /tmp

EXPONENTS = {"c_eta": ("a_n", "a_d"), "c_batch": ("b_n", "b_d"), "c_loss": ("l_n", "l_d")}
"""Intercept -> its (N, D) exponent names (the lr, batch and loss laws of :mod:`core`)."""


def _exponent(spec: Spec, name: str, sd):
    """An exponent per arch, drawn around its population mean ``mu_<name>`` (shared when
    sd is None).

    With one arch and a Normal prior on the mean, the same joint distribution is sampled the
    other way round: the arch's exponent from its marginal prior N(m, sqrt(s^2 + sd^2)) and the
    mean from its exact conditional given the exponent and sd (through ``w_mu_<name>``). No data
    see the mean apart from the exponent, so drawn the usual way the mean's width given the
    data-pinned exponent is sd itself: a funnel that made single-arch sweeps diverge.
    """
    prior = spec.priors[f"mu_{name}"]
    n_arch = len(pm.modelcontext(None).coords["arch"])
    if sd is not None and n_arch == 1 and prior.dist == "Normal":
        m, s2, sd2 = prior.mu, prior.sigma**2, sd**2
        exponent = pm.Normal(name, m, pt.sqrt(s2 + sd2), dims="arch")
        w = pm.Normal(f"w_mu_{name}", 0.0, 1.0)
        mean = (exponent[0] * s2 + m * sd2) / (s2 + sd2)
        pm.Deterministic(f"mu_{name}", mean + pt.sqrt(s2 * sd2 / (s2 + sd2)) * w)
        return exponent
    mu = prior.create(f"mu_{name}")
    if sd is None:
        return pm.Deterministic(name, mu * pt.ones(n_arch), dims="arch")
    return pm.Normal(name, mu, sd, dims="arch")


def _mix_offsets(spec: Spec, name: str, n_mix: int):
    """Zero-sum per-mix offsets with a population scale (an unseen mix draws N(0, sd))."""
    sd_mix = spec.priors[f"sd_mix_{name}"].create(f"sd_mix_{name}")
    if not spec.mix_offsets or n_mix < 2:
        return pt.zeros(n_mix)
    return pm.ZeroSumNormal(f"mix_{name}", sigma=sd_mix, dims="mix")


def _intercepts(spec: Spec, name: str, exps, centre_x: tuple, n_mix: int):
    """Per-arch intercepts ``<name>_arch`` at the reference scale with exactly their declared
    prior, plus per-mix offsets; sampled at the data's centre for a better geometry.

    The centre intercept given the exponents is c_ref + law slope at the centre, so drawing
    it as Normal(mu + a_n x_n,c + a_d x_d,c, sigma) is the declared prior on ``<name>_arch``
    (a shift with unit Jacobian), not an approximation.
    Returns the per-(arch, mix) intercept at the centre (for the laws at centred covariates).
    """
    to_centre = core.law_mean(0.0, exps[0], exps[1], *centre_x)
    arch_centre = spec.priors[f"{name}_arch"].create(f"{name}_arch_centre", dims="arch",
                                                      shift=to_centre)
    pm.Deterministic(f"{name}_arch", arch_centre - to_centre, dims="arch")
    centre = arch_centre[:, None] + _mix_offsets(spec, name, n_mix)[None, :]
    pm.Deterministic(name, centre - to_centre[:, None], dims=("arch", "mix"))
    return centre


RUN_SIGNATURE = "(c),(c),(c),(c),(c,k),(c,p),(c),(c),(r),(r),(r),(r),(r),(r)->(r)"
"""Per-cell inputs of the runs' likelihood, then per-run data, -> one loss per run."""


CELL_COVARIATES = ("x_n", "x_d", "x_tpp", "x_n_total", "log_tokens")
"""Per-cell numbers in the table ``cell_covariates`` (in this order)."""
CELL_INDICES = ("arch_idx", "mix_idx", "config_idx")
"""Per-cell indices in the table ``cell_indices`` (config_idx -1 for a dense cell)."""
CENTRES = ("x_n_centre", "x_d_centre", "x_tpp_centre")
"""The data's centres, in the table ``centres``."""
ARCH_CENTRED = ("x_n", "x_n_total")
"""Sizes whose per-arch means make the table ``arch_centred`` (arch x size)."""
RUN_COLUMNS = ("cell_idx", "log_lr", "log_batch", "log_wd", "batch_mask", "wd_mask", "y")
"""Per-run numbers in the table ``runs_<part>`` (one row each; the cell index as a
float, which the likelihood's kernel reads as an integer; y the observed loss, or the window
edge of a censored run)."""


SWEEP_DATA = "sweep_data"
"""The one shared vector that holds every number the model takes from a sweep."""


def _sweep_tables(inputs: ModelInputs) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The sweep's numbers as tables: those whose shape the model's structure fixes (cell
    covariates and indices, centres, the weight-decay cell list) and the runs' tables, one per
    part (observed, censored), whose lengths may change between sweeps of one structure."""
    cells, runs = inputs.cells, inputs.runs
    cells = cells.assign(log_tokens=np.log(cells["n_tokens"].to_numpy(float)))
    has_wd, thin = cells["has_wd"].to_numpy(), cells["thin"].to_numpy()
    arch_centred = np.column_stack([_arch_means(cells, x, inputs.archs) for x in ARCH_CENTRED])
    fixed = {"cell_covariates": cells[list(CELL_COVARIATES)].to_numpy(float).T,
             "cell_indices": cells[list(CELL_INDICES)].to_numpy(float).T,
             "centres": np.array([getattr(inputs, k) for k in CENTRES], float),
             "arch_centred": arch_centred,
             "cells_wd": np.concatenate([np.flatnonzero(has_wd), np.flatnonzero(~has_wd)]),
             "cells_skew": np.concatenate([np.flatnonzero(~thin), np.flatnonzero(thin)])}
    varying = {}
    censored = runs["censored"].to_numpy()
    for part, mask in (("obs", ~censored), ("cens", censored)):
        if mask.any():
            r = runs[mask]
            r = r.assign(y=r["loss" if part == "obs" else "edge"])
            varying[f"runs_{part}"] = r[list(RUN_COLUMNS)].to_numpy(float).T
    return fixed, varying


def _shared_sweep(fixed: dict[str, np.ndarray], varying: dict[str, np.ndarray]) -> dict:
    """The tables as views of one shared float64 vector :data:`SWEEP_DATA` (what the cached
    callbacks of :mod:`~bayes_scaling.model.nutpie_wrappers` read; nutpie's own took ~0.6 s
    more to compile per shared variable): a header with the length of each varying table, the
    fixed tables at constant offsets, then the varying ones (rows x length) at offsets the
    header gives, so that a sweep of the same structure with other run counts swaps in."""
    header = np.array([table.shape[1] for table in varying.values()], float)
    flat = np.concatenate([header, *(t.ravel() for t in fixed.values()),
                           *(t.ravel() for t in varying.values())])
    data = pm.Data(SWEEP_DATA, flat)
    views, start = {}, len(header)
    for name, table in fixed.items():
        views[name] = data[start:start + table.size].reshape(table.shape)
        start += table.size
    for i, (name, table) in enumerate(varying.items()):
        length = data[i].astype("int64")
        views[name] = data[start:start + table.shape[0] * length].reshape(
            (table.shape[0], length))
        start = start + table.shape[0] * length
    return views


CONFIG_LAWS = {"c_eta": "lr"}
"""Intercept -> the quantity of its law that configurations shift (``config_<q>``). Only the
lr law, whose size is the total parameters (:data:`core.SIZE_BY_TOTAL`): offsets on the batch
and loss laws, whose size is the active parameters, traded off against their exponents (a
trend over four configurations): R-hat up to 1.024 and bulk ESS 295 on the held-out Step Law
split (loss), 9 of 33 check refits with R-hat above 1.01 on b_n[moe] (batch)."""
SIZE_BY_TOTAL = tuple(c for c, q in CONFIG_LAWS.items() if q in core.SIZE_BY_TOTAL)


def _config_effects(spec: Spec, q: str):
    """Zero-sum per-configuration offsets of a law, ``config_<q>``, with a population scale
    ``sd_config_<q>`` (an unseen configuration draws N(0, sd)), to be added to the cells' laws
    by :func:`core.config_shift`. Zero-sum as the mix offsets: the arch's intercept is their
    mean, not a second parameter for it. With one configuration the offset is 0 and
    ``sd_config_<q>`` keeps its prior."""
    sd = spec.priors[f"sd_config_{q}"].create(f"sd_config_{q}")
    return pm.ZeroSumNormal(f"config_{q}", sigma=sd, dims="config")


def _arch_means(cells, column: str, archs) -> np.ndarray:
    """Per-arch mean of a cell covariate (in arch order)."""
    return cells.groupby("arch_idx")[column].mean().reindex(range(len(archs)),
                                                             fill_value=0.0).to_numpy(float)


def _partly_centred(names: tuple[str, str], mean, sigma, informed: np.ndarray, both):
    """Cell values ~ Normal(mean, sigma): centred where the cell's runs inform them, non-centred
    (a standard normal z) where they barely do, which keeps both kinds of cell free of
    funnels. Which cells are which enters as data (the compiled graph depends only on how
    many of each): one index vector ``both``, the informed cells first. ``names``: the
    centred and the z variable."""
    n_informed, n_blind = int(informed.sum()), int((~informed).sum())
    if not n_blind:  # one kind only: ``both`` is the identity, and indexing costs ~10%
        return pm.Normal(names[0], mean, sigma, shape=n_informed)
    if not n_informed:
        return mean + sigma * pm.Normal(names[1], 0.0, 1.0, shape=n_blind)
    both = both.astype("int64")
    out = pt.zeros(mean.shape[0])
    if n_informed:
        idx = both[:n_informed]
        out = pt.set_subtensor(out[idx], pm.Normal(names[0], mean[idx], sigma))
    if n_blind:
        idx = both[n_informed:]
        z = pm.Normal(names[1], 0.0, 1.0, shape=n_blind)
        out = pt.set_subtensor(out[idx], mean[idx] + sigma * z)
    return out


def _tau_optima(mean, sigma, has_wd: np.ndarray, both):
    """Cell log tau optima: centred where weight decay varies, non-centred where it does not
    (prior-only); ``both`` is ``cells_wd``."""
    out = _partly_centred(("log_tau_opt_informed", "z_tau_blind"), mean, sigma, has_wd, both)
    return pm.Deterministic("log_tau_opt", out, dims="cell")


def _curvature(spec: Spec, arch_idx):
    """Per-cell Cholesky diagonal (centred, pooled by arch); off-diagonals shared by arch."""
    p = spec.priors
    mu_diag = p["mu_log_chol_diag"].create("mu_log_chol_diag", dims=("arch", "dim"))
    sd_diag = p["sd_log_chol_diag"].create("sd_log_chol_diag", dims="dim")
    log_diag = pm.Normal("log_chol_diag", mu_diag[arch_idx], sd_diag, dims=("cell", "dim"))
    diag = pm.Deterministic("chol_diag", pt.exp(log_diag), dims=("cell", "dim"))
    off = p["chol_offdiag"].create("chol_offdiag", dims=("arch", "offdiag"))
    return diag, off


def _cell_skew(spec: Spec, arch_idx, x_d, x_d_centre, thin: np.ndarray, both):
    """Per-cell lr skew (:func:`core.skew_at`; x_d centred), or None without skew. With
    ``skew_by_tokens`` the per-arch skew is sampled at the data's centre (as the intercepts,
    so the declared prior holds at D_REF) and reported at D_REF as ``skew``. With
    ``skew_by_cell`` each cell's skew (``skew_cell``) is drawn around that: centred in cells
    with enough runs in the window, non-centred in ``thin`` ones (``both``: ``cells_skew``)."""
    p = spec.priors
    if not spec.skew:
        return None
    if not spec.skew_by_tokens:
        skew = p["skew"].create("skew", dims="arch")[arch_idx]
    else:
        skew_d = p["skew_d"].create("skew_d", dims="arch")
        to_centre = skew_d * x_d_centre
        skew_centre = p["skew"].create("skew_centre", dims="arch", shift=to_centre)
        pm.Deterministic("skew", skew_centre - to_centre, dims="arch")
        skew = core.skew_at(skew_centre[arch_idx], skew_d[arch_idx], x_d)
    if not spec.skew_by_cell:
        return skew
    sd = p["sd_skew_cell"].create("sd_skew_cell")
    skew = skew * pt.ones(len(thin))  # per cell even without skew_by_tokens
    out = _partly_centred(("skew_cell_informed", "z_skew_cell_thin"), skew, sd, ~thin, both)
    return pm.Deterministic("skew_cell", out, dims="cell")


def _run_likelihood(spec: Spec, part: str, params: list, data: list, observed) -> None:
    """The runs' likelihood (:class:`~bayes_scaling.model.run_kernel.RunLogLik`: each run's
    loss under its cell's bowl, :func:`core.bowl_loss`, with the density of
    :func:`core.run_log_likelihood`) as the observed variable ``loss_<part>``: inside the
    window (Student-t or Normal) or censored at the edge (Normal survival)."""
    op = RunLogLik("censored" if part == "cens" else spec.likelihood, spec.nu)
    pm.CustomDist(f"loss_{part}", *params, *data, logp=lambda value, *args: op(*args, value)[0],
                  signature=RUN_SIGNATURE, observed=observed, dims=f"run_{part}")


def initial_values(inputs: ModelInputs) -> dict[str, np.ndarray]:
    """Data-informed starting values: each cell's optimum at its best run, the per-arch
    intercepts at the mean of those (every chain starts them here; the other parameters are
    jittered: :func:`bayes_scaling.model.compiled.start_point_fn`)."""
    runs = inputs.runs[~inputs.runs["censored"]]
    best = runs.loc[runs.groupby("cell_idx")["loss"].idxmin()].set_index("cell_idx")
    best = best.reindex(range(len(inputs.cells)))
    fill = lambda col: best[col].fillna(best[col].mean()).to_numpy()  # noqa: E731
    init = {"log_lr_opt": fill("log_lr"), "log_batch_opt": fill("log_batch"),
            "log_loss_opt": np.log(fill("loss"))}
    arch_idx = inputs.cells["arch_idx"].to_numpy()
    for name, key in (("c_eta", "log_lr_opt"), ("c_batch", "log_batch_opt"),
                      ("c_loss", "log_loss_opt")):
        means = [init[key][arch_idx == a].mean() if (arch_idx == a).any() else init[key].mean()
                 for a in range(len(inputs.archs))]
        init[f"{name}_arch_centre"] = np.asarray(means)
    return init


def build_model(inputs: ModelInputs | Sweep, spec: Spec | None = None) -> pm.Model:
    """The hierarchical scaling-law model for ``inputs`` (or a sweep) under ``spec``."""
    spec = spec or default_spec()
    if isinstance(inputs, Sweep):
        inputs = prepare_inputs(inputs, window=spec.window)
    cells = inputs.cells
    p = spec.priors
    with pm.Model(coords=inputs.coords) as model:
        # every number that comes from the sweep enters as data, so one compiled graph (and
        # its on-disk numba cache) serves every sweep of the same structure
        tables = _shared_sweep(*_sweep_tables(inputs))
        cell_cov = {c: tables["cell_covariates"][i] for i, c in enumerate(CELL_COVARIATES)}
        cell_cov |= {c: tables["cell_indices"][i].astype("int64")
                     for i, c in enumerate(CELL_INDICES)}
        centre = {k: tables["centres"][i] for i, k in enumerate(CENTRES)}
        arch_means = tables["arch_centred"]
        centre_x = (centre["x_n_centre"], centre["x_d_centre"])
        a, m = cell_cov["arch_idx"], cell_cov["mix_idx"]
        pooled = spec.exponents_by_arch
        sd_exp = p["sd_arch_exponent"].create("sd_arch_exponent") if pooled else None
        sd_lexp = (p["sd_arch_loss_exponent"].create("sd_arch_loss_exponent") if pooled
                   else None)
        law = {}
        for name, pair in EXPONENTS.items():
            ex = [_exponent(spec, e, sd_lexp if name == "c_loss" else sd_exp) for e in pair]
            x_name = "x_n_total" if name in SIZE_BY_TOTAL else "x_n"
            # each arch's intercept sampled at its own cells' mean size: an arch whose N
            # exponent the data barely see (sparse configurations of one total size) then
            # does not tie it to its intercept
            off = arch_means[:, ARCH_CENTRED.index(x_name)]
            intercept = _intercepts(spec, name, ex, (centre_x[0] + off, centre_x[1]),
                                    len(inputs.mixes))
            law[name] = core.law_mean(intercept[a, m], ex[0][a], ex[1][a],
                                      cell_cov[x_name] - off[a], cell_cov["x_d"])
        if inputs.configs:  # sparse (MoE) configurations shift their cells' laws
            for name, q in CONFIG_LAWS.items():
                law[name] = law[name] + core.config_shift(_config_effects(spec, q),
                                                          cell_cov["config_idx"], pt)
        q_loss = p["q_loss"].create("q_loss")  # one bend for every arch
        law["c_loss"] = law["c_loss"] + core.loss_bend(
            q_loss, cell_cov["x_tpp"] + centre["x_tpp_centre"])

        sig = {q: p[f"sigma_cell_{q}"].create(f"sigma_cell_{q}")
               for q in ("lr", "batch", "tau", "loss")}
        log_lr_opt = pm.Normal("log_lr_opt", law["c_eta"], sig["lr"], dims="cell")
        log_batch_opt = pm.Normal("log_batch_opt", law["c_batch"], sig["batch"], dims="cell")
        log_loss_opt = pm.Normal("log_loss_opt", law["c_loss"], sig["loss"], dims="cell")
        loss_opt = pm.Deterministic("loss_opt", pt.exp(log_loss_opt), dims="cell")

        g_tpp = p["g_tpp"].create("g_tpp")
        to_centre = g_tpp * centre["x_tpp_centre"]
        c_tau_centre = p["c_tau"].create("c_tau_centre", shift=to_centre)
        pm.Deterministic("c_tau", c_tau_centre - to_centre)
        log_tau_opt = _tau_optima(core.tau_mean(c_tau_centre, g_tpp, cell_cov["x_tpp"]),
                                  sig["tau"], cells["has_wd"].to_numpy(), tables["cells_wd"])
        log_d = cell_cov["log_tokens"]
        log_wd_opt = pm.Deterministic(
            "log_weight_decay_opt",
            core.log_weight_decay(log_tau_opt, log_lr_opt, log_batch_opt, log_d), dims="cell")

        diag, off = _curvature(spec, a)
        skew = _cell_skew(spec, a, cell_cov["x_d"], centre["x_d_centre"],
                          cells["thin"].to_numpy(), tables["cells_skew"])
        noise = p["noise"].create("noise", dims="arch")

        params = [loss_opt, log_lr_opt, log_batch_opt, log_wd_opt, diag, off[a],
                  pt.zeros(len(cells)) if skew is None else skew, noise[a]]
        for part in ("obs", "cens"):
            if f"runs_{part}" in tables:
                *data, observed = (tables[f"runs_{part}"][i] for i in range(len(RUN_COLUMNS)))
                _run_likelihood(spec, part, params, data, observed)
    return model
