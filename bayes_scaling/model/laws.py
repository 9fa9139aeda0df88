"""Published reference laws (pure numpy, no PyMC), and their parameters in this package's
parametrisation (:data:`PUBLISHED_EXPONENTS`, for literature priors). The model's own laws
live in :mod:`bayes_scaling.model.core`.

Conventions: natural logs; lr is the peak learning rate; batch sizes are in tokens;
weight decay is decoupled AdamW lambda; N is non-embedding (active) parameters and D
training tokens. Law intercepts are quoted at the reference scale (N_REF, D_REF).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from bayes_scaling.model.core import D_REF, N_REF, TPP_REF, log_weight_decay

# ======================================================================================
# Published reference laws: pure-numpy baselines.
#
# Units everywhere below: lr is the peak learning rate (dimensionless AdamW step size);
# n_params N is non-embedding parameters; n_tokens D is training tokens; batch sizes are in
# TOKENS (sequences * seq_len); compute C is FLOPs; the AdamW timescale tau = B / (lr lambda D)
# is a fraction of the training run (B and D both in tokens, so tau is unit-free); weight
# decay lambda is torch-style decoupled AdamW (the update subtracts lr * lambda * w).
# Every coefficient carries its source. Where a coefficient could not be found in the
# paper's retrievable text it is NOT invented: the gap is stated and the API asks for an
# anchor instead.
# ======================================================================================

# --- Step Law (Li et al. 2025, "Predictable Scale: Part I", arXiv 2503.04715) -----------
# Published law (abstract / Sec. 3; also the step-law/steplaw README):
#     lr_opt = 1.79 N^-0.713 D^0.307,      B_opt = 0.58 D^0.571   (B in tokens).
# The released bootstrap file data/1004_fitted_lr_bs_scaling_model_parameters.csv (1,000
# OLS refits; natural logs) has column means, read on this machine:
#     lr_intercept 0.58631 (exp = 1.7973), lr_coefN -0.71292, lr_coefD 0.30749,
#     bs_intercept -0.54354 (exp = 0.58069), bs_coefD 0.57094
# and standard deviations (ddof=1): lr_intercept 0.6237, lr_coefN 0.02986, lr_coefD 0.01914,
# bs_intercept 0.4372, bs_coefD 0.01867. The published constants are exp(mean intercept) and
# the mean slopes, rounded to 3 decimals (the repo's fit_tool.get_mean_lr_bs_scaling_model
# averages the log-space intercepts). The raw intercepts are nearly collinear with the
# slopes; re-expressed at (N_REF, D_REF) the bootstrap spread of the intercepts is small:
#     c_eta = lr_intercept + lr_coefN ln N_REF + lr_coefD ln D_REF: mean -6.3995, sd 0.04402
#     c_B   = bs_intercept + bs_coefD ln D_REF:                      mean 13.9176, sd 0.04279.
STEPLAW_LR_COEF = 1.79
STEPLAW_LR_EXP_N = -0.713
STEPLAW_LR_EXP_D = 0.307
STEPLAW_BATCH_COEF = 0.58
STEPLAW_BATCH_EXP_D = 0.571
STEPLAW_BOOTSTRAP_SD = {"a_n": 0.02986, "a_d": 0.01914, "b_d": 0.01867,
                        "c_eta": 0.04402, "c_b": 0.04279}
"""Bootstrap standard deviations from the Step Law bootstrap file (see comment above)."""
STEPLAW_REFERENCE = ("Li et al. 2025, Predictable Scale: Part I (Step Law), arXiv 2503.04715, "
                     "Sec. 3 / abstract")

# --- DeepSeek LLM (DeepSeek-AI 2024, arXiv 2401.02954) -----------------------------------
# Sec. 3.1, Eq. (1): eta_opt = 0.3118 C^-0.1250, B_opt = 0.2920 C^0.3271, with C in FLOPs and
# B in tokens, fitted on budgets 1e17..2e19 FLOPs (near-optimal = within 0.25% of the best
# loss) and validated at 1e20 FLOPs. Their compute is C = M D with M the non-embedding
# FLOPs per token of Sec. 3.2, Eq. (2): M = 72 n_layer d_model^2 + 12 n_layer d_model l_seq
# (attention included, vocabulary excluded), not 6N; 6N (= 72 n_layer d_model^2 for a
# standard block) is only the default here, override it with `flops_per_token`.
DEEPSEEK_LR_COEF = 0.3118
DEEPSEEK_LR_EXP_C = -0.1250
DEEPSEEK_BATCH_COEF = 0.2920
DEEPSEEK_BATCH_EXP_C = 0.3271
DEEPSEEK_REFERENCE = "DeepSeek-AI 2024, DeepSeek LLM, arXiv 2401.02954, Sec. 3.1 Eq. (1)"

# --- Power Lines (Bergsma et al. 2025, arXiv 2505.13738) ---------------------------------
# tau_opt(TPP) = c_tau TPP^m_tau with TPP = D/N (Sec. 3; fit R^2 = 0.975). What could be
# found: the bootstrap 10th/90th percentiles of m_tau, (-0.529, -0.507), and the measured
# tau_opt ~= 0.21 for the 610M model at 20 TPP, stable for B in [63, 2016] sequences
# (lambda_opt linear in B). The fitted point estimates of m_tau and c_tau were NOT found in
# retrievable text, so: m_tau = midpoint of the reported percentiles (-0.518; sd from the
# 80% band assuming normality: 0.022 / (2 * 1.2816) = 0.0086), and the law is anchored at
# the measured tau_opt = 0.21 at TPP = 20 (= TPP_REF). Power Lines also fits B_opt and B_crit
# as power laws in D alone (B_opt ~ D^0.4, B_crit ~ D_min^0.5 as quoted approximately); their
# coefficients were NOT found, so no batch-size function is provided for Power Lines.
POWERLINES_TAU_EXP_TPP = -0.518
POWERLINES_TAU_EXP_TPP_SD = 0.0086
POWERLINES_TAU_ANCHOR_TPP = 20.0
POWERLINES_TAU_ANCHOR = 0.21
POWERLINES_REFERENCE = ("Bergsma et al. 2025, Power Lines, arXiv 2505.13738, Sec. 3 "
                        "(tau_opt power law in TPP; anchor tau=0.21 at 610M/20 TPP)")

# --- Bjorck et al. (2024/2025, "Scaling Optimal LR Across Token Horizons", arXiv 2409.19913)
# At fixed model size: LR*(D) = B D^-beta (Sec. 3); across sizes LR*(N, D) = C N^-alpha D^-beta
# (Sec. 4), beta ~= 0.32 for N >= 760M. Per-size fits (v3 Table 5, at a 0.5M-token batch):
# beta = 0.7029 (50M), 0.6531 (125M), 0.3799 (350M), 0.3155 (760M), 0.3171 (1.3B),
# 0.4184 (2.7B). alpha = 0.23 is the value carried with beta = 0.32 in Step Law's comparison
# of published laws. The intercepts B (per size) and C were NOT found in a usable form (the
# transcription C = 1.3192e-5 gives lr ~ 1e-11 at 1B/100B, so it is not used): the law here
# is the paper's transfer rule, which needs one known optimum (lr_ref at tokens_ref) for the
# same model size.
BJORCK_BETA = 0.32
BJORCK_ALPHA = 0.23
BJORCK_BETA_BY_SIZE = {5e7: 0.7029, 1.25e8: 0.6531, 3.5e8: 0.3799, 7.6e8: 0.3155,
                       1.3e9: 0.3171, 2.7e9: 0.4184}
"""Per-model-size beta (nominal size as named in the paper -> beta), v3 Table 5."""
BJORCK_REFERENCE = ("Bjorck et al. 2025, Scaling Optimal LR Across Token Horizons, "
                    "arXiv 2409.19913, Sec. 3-4, Table 5")

DEFAULT_EXPONENT_SD = 0.05
"""Stated default prior sd of a published exponent whose paper reports no spread."""
DEFAULT_INTERCEPT_SD = 0.5
"""Stated default prior sd (natural log, about x1.65) of a published intercept with no spread."""


def steplaw_lr_opt(n_params: ArrayLike, n_tokens: ArrayLike) -> np.ndarray:
    """Step Law optimal peak lr: 1.79 N^-0.713 D^0.307 (N non-embedding params, D tokens)."""
    n = np.asarray(n_params, dtype=float)
    d = np.asarray(n_tokens, dtype=float)
    return STEPLAW_LR_COEF * n**STEPLAW_LR_EXP_N * d**STEPLAW_LR_EXP_D


def steplaw_batch_opt(n_params: ArrayLike, n_tokens: ArrayLike) -> np.ndarray:
    """Step Law optimal batch size in TOKENS: 0.58 D^0.571 (independent of N)."""
    n = np.asarray(n_params, dtype=float)
    d = np.asarray(n_tokens, dtype=float)
    return STEPLAW_BATCH_COEF * d**STEPLAW_BATCH_EXP_D * np.ones_like(n)


def deepseek_flops_per_token(n_layer: ArrayLike, d_model: ArrayLike,
                             seq_len: ArrayLike) -> np.ndarray:
    """DeepSeek's non-embedding FLOPs per token M (arXiv 2401.02954, Sec. 3.2, Eq. 2).

    M = 72 n_layer d_model^2 + 12 n_layer d_model seq_len (training FLOPs per token, attention
    included, vocabulary excluded; written for multi-head attention with a standard FFN).
    """
    n_layer = np.asarray(n_layer, dtype=float)
    d_model = np.asarray(d_model, dtype=float)
    return 72.0 * n_layer * d_model**2 + 12.0 * n_layer * d_model * np.asarray(seq_len, float)


def deepseek_compute(n_params: ArrayLike, n_tokens: ArrayLike,
                     flops_per_token: ArrayLike | None = None) -> np.ndarray:
    """Training compute C = M D in FLOPs; M defaults to 6 N (N non-embedding parameters)."""
    d = np.asarray(n_tokens, dtype=float)
    m = (6.0 * np.asarray(n_params, dtype=float) if flops_per_token is None
         else np.asarray(flops_per_token, dtype=float))
    return m * d


def deepseek_lr_opt(n_params: ArrayLike, n_tokens: ArrayLike,
                    flops_per_token: ArrayLike | None = None) -> np.ndarray:
    """DeepSeek optimal peak lr: 0.3118 C^-0.1250 with C = M D FLOPs (M = 6N by default).

    Pass ``flops_per_token`` (e.g. from :func:`deepseek_flops_per_token`) to use the paper's
    own compute measure; ``n_params`` is then used only for broadcasting.
    """
    c = deepseek_compute(n_params, n_tokens, flops_per_token)
    return DEEPSEEK_LR_COEF * c**DEEPSEEK_LR_EXP_C * np.ones_like(np.asarray(n_params, float))


def deepseek_batch_opt(n_params: ArrayLike, n_tokens: ArrayLike,
                       flops_per_token: ArrayLike | None = None) -> np.ndarray:
    """DeepSeek optimal batch size in TOKENS: 0.2920 C^0.3271 (C = M D FLOPs, M = 6N default)."""
    c = deepseek_compute(n_params, n_tokens, flops_per_token)
    return DEEPSEEK_BATCH_COEF * c**DEEPSEEK_BATCH_EXP_C * np.ones_like(np.asarray(n_params, float))


def powerlines_tau_opt(n_params: ArrayLike, n_tokens: ArrayLike) -> np.ndarray:
    """Power Lines optimal AdamW timescale tau = B / (lr lambda D), a fraction of the run.

    tau_opt = 0.21 (TPP / 20)^-0.518 with TPP = D / N: exponent = midpoint of the reported
    bootstrap 10th/90th percentiles, level anchored at the measured tau_opt ~= 0.21 of the
    610M model at 20 TPP (the fitted intercept was not found; see the module comment).
    """
    tpp = np.asarray(n_tokens, dtype=float) / np.asarray(n_params, dtype=float)
    return POWERLINES_TAU_ANCHOR * (tpp / POWERLINES_TAU_ANCHOR_TPP) ** POWERLINES_TAU_EXP_TPP


def powerlines_weight_decay_opt(n_params: ArrayLike, n_tokens: ArrayLike, lr: ArrayLike,
                                batch_tokens: ArrayLike) -> np.ndarray:
    """Optimal decoupled AdamW weight decay lambda = B / (lr tau_opt D) at a given lr and B.

    B (``batch_tokens``) and D (``n_tokens``) in tokens; lambda is torch-style (the update
    subtracts lr * lambda * w). Computed through :func:`core.log_weight_decay`.
    """
    log_tau = np.log(powerlines_tau_opt(n_params, n_tokens))
    return np.exp(log_weight_decay(log_tau, np.log(np.asarray(lr, dtype=float)),
                                   np.log(np.asarray(batch_tokens, dtype=float)),
                                   np.log(np.asarray(n_tokens, dtype=float))))


def bjorck_lr_opt(n_params: ArrayLike, n_tokens: ArrayLike, *, lr_ref: ArrayLike | None = None,
                  tokens_ref: ArrayLike | None = None,
                  beta: ArrayLike = BJORCK_BETA) -> np.ndarray:
    """Bjorck et al. token-horizon law at FIXED model size: lr_opt(D) = lr_ref (D / D_ref)^-beta.

    Needs one known optimum of the same model: ``lr_ref`` (optimal peak lr) measured at
    ``tokens_ref`` training tokens, because the paper's intercepts (B per size, C of the joint
    fit) were not found in usable form. ``beta`` defaults to 0.32 (their value for N >= 760M);
    per-size values are in :data:`BJORCK_BETA_BY_SIZE`. ``n_params`` only broadcasts.
    """
    if lr_ref is None or tokens_ref is None:
        raise ValueError(
            "bjorck_lr_opt needs an anchor: lr_ref (a known optimal lr) and tokens_ref (the "
            "tokens it was measured at) for the same model size; the paper's intercepts are "
            "not available here (see BJORCK_REFERENCE).")
    n = np.asarray(n_params, dtype=float)
    ratio = np.asarray(n_tokens, dtype=float) / np.asarray(tokens_ref, dtype=float)
    return np.asarray(lr_ref, dtype=float) * ratio ** (-np.asarray(beta, float)) * np.ones_like(n)


def _entry(mean: float, sd: float, source: str) -> dict:
    return {"mean": float(mean), "sd": float(sd), "source": source}


def _published_exponents() -> dict:
    ln_n, ln_d = np.log(N_REF), np.log(D_REF)
    ln_c = np.log(6.0 * N_REF * D_REF)  # DeepSeek compute at the reference point, C = 6ND
    boot = "Step Law bootstrap file (1,000 refits), sd across refits"
    sl = f"{STEPLAW_REFERENCE}; {boot}"
    steplaw = {
        "a_n": _entry(STEPLAW_LR_EXP_N, STEPLAW_BOOTSTRAP_SD["a_n"], sl),
        "a_d": _entry(STEPLAW_LR_EXP_D, STEPLAW_BOOTSTRAP_SD["a_d"], sl),
        "b_n": _entry(0.0, DEFAULT_EXPONENT_SD,
                      f"{STEPLAW_REFERENCE}: B_opt has no N term; default sd"),
        "b_d": _entry(STEPLAW_BATCH_EXP_D, STEPLAW_BOOTSTRAP_SD["b_d"], sl),
        "c_eta": _entry(np.log(STEPLAW_LR_COEF) + STEPLAW_LR_EXP_N * ln_n
                        + STEPLAW_LR_EXP_D * ln_d, STEPLAW_BOOTSTRAP_SD["c_eta"],
                        f"{STEPLAW_REFERENCE}, at (N_REF, D_REF); {boot}"),
        "c_b": _entry(np.log(STEPLAW_BATCH_COEF) + STEPLAW_BATCH_EXP_D * ln_d,
                      STEPLAW_BOOTSTRAP_SD["c_b"],
                      f"{STEPLAW_REFERENCE}, at D_REF, B in tokens; {boot}"),
    }
    ds = f"{DEEPSEEK_REFERENCE}, with C = 6ND (exponent on C applies to N and D alike)"
    deepseek = {
        "a_n": _entry(DEEPSEEK_LR_EXP_C, DEFAULT_EXPONENT_SD, f"{ds}; default sd"),
        "a_d": _entry(DEEPSEEK_LR_EXP_C, DEFAULT_EXPONENT_SD, f"{ds}; default sd"),
        "b_n": _entry(DEEPSEEK_BATCH_EXP_C, DEFAULT_EXPONENT_SD, f"{ds}; default sd"),
        "b_d": _entry(DEEPSEEK_BATCH_EXP_C, DEFAULT_EXPONENT_SD, f"{ds}; default sd"),
        "c_eta": _entry(np.log(DEEPSEEK_LR_COEF) + DEEPSEEK_LR_EXP_C * ln_c, DEFAULT_INTERCEPT_SD,
                        f"{ds}, at (N_REF, D_REF); default sd"),
        "c_b": _entry(np.log(DEEPSEEK_BATCH_COEF) + DEEPSEEK_BATCH_EXP_C * ln_c,
                      DEFAULT_INTERCEPT_SD, f"{ds}, at (N_REF, D_REF), B in tokens; default sd"),
    }
    powerlines = {
        "g_tpp": _entry(POWERLINES_TAU_EXP_TPP, POWERLINES_TAU_EXP_TPP_SD,
                        f"{POWERLINES_REFERENCE}; midpoint of bootstrap 10th/90th percentiles "
                        "(-0.529, -0.507), sd from that 80% band"),
        "c_tau": _entry(np.log(POWERLINES_TAU_ANCHOR)
                        + POWERLINES_TAU_EXP_TPP
                        * np.log(TPP_REF / POWERLINES_TAU_ANCHOR_TPP),
                        DEFAULT_INTERCEPT_SD,
                        f"{POWERLINES_REFERENCE}; measured optimum, not the fitted c_tau "
                        "(not found); default sd"),
        "b_n": _entry(0.0, DEFAULT_EXPONENT_SD,
                      f"{POWERLINES_REFERENCE}: B_opt independent of N; default sd"),
        "b_d": _entry(0.4, 2 * DEFAULT_EXPONENT_SD,
                      f"{POWERLINES_REFERENCE}: B_opt ~ D^0.4 as quoted approximately by a "
                      "secondary source (fitted value not found); doubled default sd"),
    }
    bjorck = {
        "a_d": _entry(-BJORCK_BETA, float(np.std([0.3155, 0.3171, 0.4184], ddof=1)),
                      f"{BJORCK_REFERENCE}: beta = 0.32 for N >= 760M; sd of the per-size "
                      "fits 760M/1.3B/2.7B (Table 5)"),
        "a_n": _entry(-BJORCK_ALPHA, 2 * DEFAULT_EXPONENT_SD,
                      f"{BJORCK_REFERENCE}: alpha = 0.23 as carried in Step Law's comparison of "
                      "published laws (not verified in the paper text); doubled default sd"),
    }
    return {"steplaw": steplaw, "deepseek": deepseek, "powerlines": powerlines,
            "bjorck": bjorck}


PUBLISHED_EXPONENTS = _published_exponents()
"""Published law parameters in this package's parametrisation, for literature priors.

``PUBLISHED_EXPONENTS[law][name] = {"mean", "sd", "source"}`` with law in steplaw, deepseek,
powerlines, bjorck and name in a_n, a_d, b_n, b_d, c_eta, c_b (log lr / log B-in-tokens laws at
N_REF, D_REF) or g_tpp, c_tau (log tau law at TPP_REF). Natural logs throughout. sd is the
paper's reported spread where one exists (Step Law bootstrap, Power Lines percentiles),
otherwise DEFAULT_EXPONENT_SD / DEFAULT_INTERCEPT_SD (or twice that where the value itself is
approximate); each entry's source says which.
"""


def published_optima(n_params: ArrayLike, n_tokens: ArrayLike, seq_len: int = 2048, *,
                     bjorck_anchor: tuple[float, float] | None = None):
    """Optima predicted by each published law at (N, D): a tidy ``pandas.DataFrame``.

    One row per law (per target when N, D are arrays; they broadcast) with columns law,
    n_params, n_tokens, lr_opt, batch_tokens_opt, batch_sequences_opt (= tokens / seq_len),
    tau_opt, weight_decay_opt, reference. NaN where a law says nothing. Weight decay comes from
    the Power Lines timescale at that row's lr and batch (so it is NaN when either is NaN).
    Power Lines itself gives tau only (its lr is set by muP and its B_opt coefficients were not
    found); Bjorck needs ``bjorck_anchor = (lr_ref, tokens_ref)`` for the same model size.
    """
    import pandas as pd  # local: keep the law maths importable with numpy alone

    n, d = np.broadcast_arrays(np.asarray(n_params, dtype=float),
                               np.asarray(n_tokens, dtype=float))
    n, d = n.ravel(), d.ravel()
    nan = np.full(n.shape, np.nan)
    tau = powerlines_tau_opt(n, d)
    if bjorck_anchor is None:
        bjorck_lr = nan
    else:
        bjorck_lr = bjorck_lr_opt(n, d, lr_ref=bjorck_anchor[0], tokens_ref=bjorck_anchor[1])
    rows = [
        ("steplaw", steplaw_lr_opt(n, d), steplaw_batch_opt(n, d), STEPLAW_REFERENCE),
        ("deepseek", deepseek_lr_opt(n, d), deepseek_batch_opt(n, d),
         DEEPSEEK_REFERENCE + " (C = 6ND)"),
        ("powerlines", nan, nan, POWERLINES_REFERENCE),
        ("bjorck", bjorck_lr, nan, BJORCK_REFERENCE + (
            "" if bjorck_anchor is None else f" (anchored at lr={bjorck_anchor[0]:g}, "
            f"D={bjorck_anchor[1]:g})")),
    ]
    frames = []
    for law, lr, batch, ref in rows:
        with np.errstate(invalid="ignore"):
            wd = powerlines_weight_decay_opt(n, d, lr, batch)
        frames.append(pd.DataFrame({
            "law": law, "n_params": n, "n_tokens": d, "lr_opt": lr,
            "batch_tokens_opt": batch, "batch_sequences_opt": batch / float(seq_len),
            "tau_opt": tau, "weight_decay_opt": wd, "reference": ref}))
    return pd.concat(frames, ignore_index=True)
