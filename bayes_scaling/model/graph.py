"""Build the hierarchical PyMC model: per-cell loss bowls whose optima move as power laws.

Inside cell g the final loss of run r is a bowl in u = (log lr, log batch[, log wd]):
    L_r = L*_g + 1/2 ||C_g^T s(u_r - u*_g)||^2 + noise,
C_g lower triangular with a positive diagonal (curvature C C^T positive definite) and s()
stretching the lr offset by exp(+-skew) (the loss rises faster on the high-lr side). Runs
above the fit window and diverged runs are right-censored at the window edge.
The optima follow power laws in N and D with per-arch exponents pooled around population
means, per-mix offsets drawn from a population, and cell-level scatter:
    log lr*_g  = c_eta[arch, mix] + a_n[arch] log(N/N_REF) + a_d[arch] log(D/D_REF) + e
    log B*_g   = c_batch[arch, mix] + b_n[arch] log(N/N_REF) + b_d[arch] log(D/D_REF) + e
    log tau*_g = c_tau + g_tpp log(TPP/TPP_REF) + e,  wd*_g = B*_g / (lr*_g tau*_g D)
    log L*_g   = c_loss[arch, mix] + l_n[arch] log(N/N_REF) + l_d[arch] log(D/D_REF) + e
Internally intercepts are sampled at the data's centre and reported at the reference scale.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_scaling.data import Sweep
from bayes_scaling.model.inputs import ModelInputs, prepare_inputs
from bayes_scaling.model.spec import Prior, Spec, default_spec

EXPONENTS = (("a_n", "a_d"), ("b_n", "b_d"), ("l_n", "l_d"))
"""(N, D) exponent names of the lr, batch and loss laws."""


def _rv(name: str, prior: Prior, dims=None, mu_shift: float = 0.0, sigma=None):
    """A random variable from a spec prior (optionally with a shifted mean / other sigma)."""
    sigma = prior.sigma if sigma is None else sigma
    if prior.dist == "halfnormal":
        return pm.HalfNormal(name, sigma=sigma, dims=dims)
    if prior.dist == "gamma":
        return pm.Gamma(name, alpha=prior.alpha, beta=prior.beta, dims=dims)
    return pm.Normal(name, mu=prior.mu + mu_shift, sigma=sigma, dims=dims)


def _exponent(name: str, prior: Prior, sd):
    """An exponent per arch, centred around a population mean (shared when sd is None)."""
    mu = _rv(f"mu_{name}", prior)
    n_arch = len(pm.modelcontext(None).coords["arch"])
    if sd is None:
        return pm.Deterministic(name, mu * pt.ones(n_arch), dims="arch")
    return pm.Normal(name, mu, sd, dims="arch")


def _mix_offsets(spec: Spec, name: str, n_mix: int):
    """Zero-sum per-mix offsets with a population scale (an unseen mix draws N(0, sd))."""
    key = "sd_mix_loss" if name == "c_loss" else "sd_mix"
    sd_mix = _rv(f"sd_mix_{name}", spec.priors[key])
    if not spec.mix_offsets or n_mix < 2:
        return pt.zeros(n_mix)
    return pm.ZeroSumNormal(f"mix_{name}", sigma=sd_mix, dims="mix")


def _intercepts(spec: Spec, name: str, exps, shifts: tuple[float, float], n_mix: int):
    """Intercepts per arch (independent: two or three archs cannot inform a population)
    plus per-mix offsets, sampled at the data centre.

    Returns (per-(arch, mix) intercept at the centre, the deterministic at the reference).
    """
    prior = spec.priors[name]
    ea, eb = EXPONENTS[("c_eta", "c_batch", "c_loss").index(name)]
    pa, pb = spec.priors[ea], spec.priors[eb]
    shift = pa.mu * shifts[0] + pb.mu * shifts[1]
    sigma = float(np.sqrt(prior.sigma**2 + (pa.sigma * shifts[0])**2 + (pb.sigma * shifts[1])**2))
    arch_centre = _rv(f"{name}_arch_centre", prior, dims="arch", mu_shift=shift, sigma=sigma)
    to_ref = -(exps[0] * shifts[0] + exps[1] * shifts[1])
    pm.Deterministic(f"{name}_arch", arch_centre + to_ref, dims="arch")
    offset = _mix_offsets(spec, name, n_mix)
    centre = arch_centre[:, None] + offset[None, :]
    pm.Deterministic(name, centre + to_ref[:, None], dims=("arch", "mix"))
    return centre


def _tau_optima(mean, sigma, has_wd: np.ndarray):
    """Cell log tau optima: centred where weight decay varies (data-informed), non-centred
    where it does not (prior-only), which keeps both kinds of cell free of funnels."""
    informed, blind = np.flatnonzero(has_wd), np.flatnonzero(~has_wd)
    out = pt.zeros(len(has_wd))
    if len(informed):
        centred = pm.Normal("log_tau_opt_informed", mean[informed], sigma,
                            shape=len(informed))
        out = pt.set_subtensor(out[informed], centred)
    if len(blind):
        z = pm.Normal("z_tau_blind", 0.0, 1.0, shape=len(blind))
        out = pt.set_subtensor(out[blind], mean[blind] + sigma * z)
    return pm.Deterministic("log_tau_opt", out, dims="cell")


def _law_mean(centre, exps, cells) -> pt.TensorVariable:
    """Mean law at each cell from the centre intercepts and the exponents."""
    a, m = cells["arch_idx"], cells["mix_idx"]
    return centre[a, m] + exps[0][a] * cells["x_n"] + exps[1][a] * cells["x_d"]


def _curvature(spec: Spec, arch_idx: np.ndarray):
    """Per-cell Cholesky diagonal (centred, pooled by arch); off-diagonals shared by arch."""
    p = spec.priors
    mu_diag = _rv("mu_log_chol_diag", p["log_chol_diag"], dims=("arch", "dim"))
    sd_diag = _rv("sd_log_chol_diag", p["sd_log_chol_diag"], dims="dim")
    log_diag = pm.Normal("log_chol_diag", mu_diag[arch_idx], sd_diag, dims=("cell", "dim"))
    diag = pm.Deterministic("chol_diag", pt.exp(log_diag), dims=("cell", "dim"))
    off = _rv("chol_offdiag", p["chol_offdiag"], dims=("arch", "offdiag"))[arch_idx]
    return diag, off


def _bowl_mean(spec, inputs, data, opt_idx, diag, off, skew, loss_opt):
    """Expected loss of every run under its cell's bowl."""
    c = data["cell_idx"]
    d_lr = data["log_lr"] - opt_idx["lr"][c]
    if spec.skew:
        d_lr = d_lr * pt.exp(pt.switch(d_lr > 0, 1.0, -1.0) * skew[data["arch_idx"]])
    d_b = data["log_batch"] - opt_idx["batch"][c]
    deltas = [d_lr, d_b]
    if len(inputs.dims) == 3:
        deltas.append(data["wd_mask"] * (data["log_wd"] - opt_idx["weight_decay"][c]))
    k = len(deltas)
    # z = C^T delta with C lower triangular: z_j = sum_{i >= j} C[i, j] delta_i
    offs = {}
    pos = 0
    for i in range(1, k):
        for j in range(i):
            offs[(i, j)] = off[c, pos]
            pos += 1
    quad = 0.0
    for j in range(k):
        z = diag[c, j] * deltas[j]
        for i in range(j + 1, k):
            z = z + offs[(i, j)] * deltas[i]
        quad = quad + z**2
    return loss_opt[c] + 0.5 * quad


def initial_values(inputs: ModelInputs) -> dict[str, np.ndarray]:
    """Data-informed starting values: each cell's optimum at its best run, the per-arch
    intercepts at the mean of those (chains then jitter around this point)."""
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
    cells, runs = inputs.cells, inputs.runs
    shifts = (inputs.x_n_centre, inputs.x_d_centre)
    cell_cov = {k: cells[k].to_numpy() for k in ("arch_idx", "mix_idx", "x_n", "x_d", "x_tpp")}
    p = spec.priors
    with pm.Model(coords=inputs.coords) as model:
        pooled = spec.exponents_by_arch
        sd_exp = _rv("sd_arch_exponent", p["sd_arch_exponent"]) if pooled else None
        sd_lexp = _rv("sd_arch_loss_exponent", p["sd_arch_loss_exponent"]) if pooled else None
        law = {}
        for pair, sd, name in ((EXPONENTS[0], sd_exp, "c_eta"), (EXPONENTS[1], sd_exp, "c_batch"),
                               (EXPONENTS[2], sd_lexp, "c_loss")):
            ex = [_exponent(e, p[e], sd) for e in pair]
            centre = _intercepts(spec, name, ex, shifts, len(inputs.mixes))
            law[name] = _law_mean(centre, ex, cell_cov)

        sig = {q: _rv(f"sigma_cell_{q}", p[f"sigma_cell_{q}"])
               for q in ("lr", "batch", "tau", "loss")}
        log_lr_opt = pm.Normal("log_lr_opt", law["c_eta"], sig["lr"], dims="cell")
        log_batch_opt = pm.Normal("log_batch_opt", law["c_batch"], sig["batch"], dims="cell")
        log_loss_opt = pm.Normal("log_loss_opt", law["c_loss"], sig["loss"], dims="cell")
        loss_opt = pm.Deterministic("loss_opt", pt.exp(log_loss_opt), dims="cell")

        tau_prior = p["c_tau"]
        g_tpp = _rv("g_tpp", p["g_tpp"])
        c_tau_centre = _rv("c_tau_centre", tau_prior,
                           mu_shift=p["g_tpp"].mu * inputs.x_tpp_centre,
                           sigma=float(np.hypot(tau_prior.sigma,
                                                p["g_tpp"].sigma * inputs.x_tpp_centre)))
        pm.Deterministic("c_tau", c_tau_centre - g_tpp * inputs.x_tpp_centre)
        log_tau_opt = _tau_optima(c_tau_centre + g_tpp * cell_cov["x_tpp"], sig["tau"],
                                  cells["has_wd"].to_numpy())
        log_d = np.log(cells["n_tokens"].to_numpy(float))
        log_wd_opt = pm.Deterministic("log_weight_decay_opt",
                                      log_batch_opt - log_lr_opt - log_tau_opt - log_d,
                                      dims="cell")

        diag, off = _curvature(spec, cell_cov["arch_idx"])
        skew = _rv("skew", p["skew"], dims="arch") if spec.skew else None
        noise = _rv("noise", p["noise"], dims="arch")

        opt = {"lr": log_lr_opt, "batch": log_batch_opt, "weight_decay": log_wd_opt}
        run_arch = cells["arch_idx"].to_numpy()[runs["cell_idx"].to_numpy()]
        parts = {"obs": ~runs["censored"].to_numpy(), "cens": runs["censored"].to_numpy()}
        for part, mask in parts.items():
            if not mask.any():
                continue
            r = runs[mask]
            dim = f"run_{part}"
            data = {k: pm.Data(f"{k}_{part}", r[k].to_numpy(), dims=dim)
                    for k in ("log_lr", "log_batch", "log_wd", "wd_mask")}
            data["cell_idx"] = pm.Data(f"cell_idx_{part}", r["cell_idx"].to_numpy(), dims=dim)
            data["arch_idx"] = run_arch[mask]
            mu = _bowl_mean(spec, inputs, data, opt, diag, off, skew, loss_opt)
            sd = noise[run_arch[mask]]
            if part == "obs":
                obs = pm.Data("loss_obs_data", r["loss"].to_numpy(), dims=dim)
                if spec.likelihood == "student_t":
                    pm.StudentT("loss_obs", nu=spec.nu, mu=mu, sigma=sd, observed=obs, dims=dim)
                else:
                    pm.Normal("loss_obs", mu=mu, sigma=sd, observed=obs, dims=dim)
            else:
                edge = pm.Data("edge_cens", r["edge"].to_numpy(), dims=dim)
                pm.Censored("loss_cens", pm.Normal.dist(mu=mu, sigma=sd), lower=None,
                            upper=edge, observed=edge, dims=dim)
    return model
