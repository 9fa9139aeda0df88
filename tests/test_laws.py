"""Unit tests for bayes_scaling.model.laws: the published laws in the model's parametrisation.

Pure numpy (no PyMC). The Step Law bootstrap check reads ../shared/data/steplaw and skips,
with a reason, only when that folder is absent.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bayes_scaling.model import core, laws

STEPLAW_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "steplaw"
BOOTSTRAP_CSV = STEPLAW_DIR / "1004_fitted_lr_bs_scaling_model_parameters.csv"


def _bootstrap():
    if not STEPLAW_DIR.is_dir():
        pytest.skip(f"Step Law data folder absent: {STEPLAW_DIR}")
    pd = pytest.importorskip("pandas")
    return pd.read_csv(BOOTSTRAP_CSV)


# --------------------------------------------------------------------------------------
# Step Law
# --------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_steplaw_constants_match_bootstrap_means():
    """Published 1.79 N^-0.713 D^0.307, 0.58 D^0.571 (arXiv 2503.04715, abstract / Sec. 3) are
    exp(mean intercept) and mean slopes of the released 1,000 bootstrap fits, up to rounding."""
    boot = _bootstrap()
    mean = boot.mean()
    assert mean["lr_coefN"] == pytest.approx(laws.STEPLAW_LR_EXP_N, abs=5e-4)
    assert mean["lr_coefD"] == pytest.approx(laws.STEPLAW_LR_EXP_D, abs=5e-4)
    assert mean["bs_coefD"] == pytest.approx(laws.STEPLAW_BATCH_EXP_D, abs=5e-4)
    # exp(0.58631) = 1.7973 is printed as 1.79 (truncated, 0.4%); exp(-0.54354) = 0.5807 -> 0.58
    assert math.exp(mean["lr_intercept"]) == pytest.approx(laws.STEPLAW_LR_COEF, rel=5e-3)
    assert math.exp(mean["bs_intercept"]) == pytest.approx(laws.STEPLAW_BATCH_COEF, rel=5e-3)


@pytest.mark.realdata
def test_steplaw_bootstrap_spread_matches_published_exponents_entry():
    """The sds in PUBLISHED_EXPONENTS['steplaw'] are the bootstrap sds, intercepts taken at
    (N_REF, D_REF)."""
    boot = _bootstrap()
    c_eta = (boot.lr_intercept + boot.lr_coefN * np.log(core.N_REF)
             + boot.lr_coefD * np.log(core.D_REF))
    c_b = boot.bs_intercept + boot.bs_coefD * np.log(core.D_REF)
    pub = laws.PUBLISHED_EXPONENTS["steplaw"]
    assert boot.lr_coefN.std() == pytest.approx(pub["a_n"]["sd"], rel=1e-3)
    assert boot.lr_coefD.std() == pytest.approx(pub["a_d"]["sd"], rel=1e-3)
    assert boot.bs_coefD.std() == pytest.approx(pub["b_d"]["sd"], rel=1e-3)
    assert c_eta.std() == pytest.approx(pub["c_eta"]["sd"], rel=1e-3)
    assert c_b.std() == pytest.approx(pub["c_b"]["sd"], rel=1e-3)
    # the published (rounded) intercepts sit inside the bootstrap spread at the reference point
    assert abs(pub["c_eta"]["mean"] - c_eta.mean()) < c_eta.std()
    assert abs(pub["c_b"]["mean"] - c_b.mean()) < c_b.std()


def test_steplaw_at_the_papers_test_cell():
    """Hand-computed at the held-out test cell of arXiv 2503.04715 Fig. 1 (right), N = 1B,
    D = 100B. The paper shows this prediction only graphically (no printed number found):
    lr = 1.79 * 10^(-0.713*9 + 0.307*11) = 1.79 * 10^-3.040, B = 0.58 * 10^(0.571*11) tokens."""
    lr = laws.steplaw_lr_opt(1e9, 1e11)
    batch = laws.steplaw_batch_opt(1e9, 1e11)
    assert lr == pytest.approx(1.79 * 10 ** -3.040, rel=1e-12)
    assert lr == pytest.approx(1.6325e-3, rel=1e-4)
    assert batch == pytest.approx(0.58 * 10 ** 6.281, rel=1e-12)
    assert batch / 2048 == pytest.approx(540.9, rel=1e-3)  # sequences of 2048 tokens
    # B does not depend on N; lr falls with N and rises with D
    assert laws.steplaw_batch_opt(1e8, 1e11) == pytest.approx(batch)
    assert laws.steplaw_lr_opt(2e9, 1e11) < lr < laws.steplaw_lr_opt(1e9, 2e11)


def test_steplaw_matches_shared_parametrisation():
    pub = laws.PUBLISHED_EXPONENTS["steplaw"]
    n, d = np.array([2e8, 1e9, 7e9]), np.array([4e9, 1e11, 2e12])
    np.testing.assert_allclose(
        np.log(laws.steplaw_lr_opt(n, d)),
        core.law_at(pub["c_eta"]["mean"], pub["a_n"]["mean"], pub["a_d"]["mean"], n, d))
    np.testing.assert_allclose(
        np.log(laws.steplaw_batch_opt(n, d)),
        core.law_at(pub["c_b"]["mean"], pub["b_n"]["mean"], pub["b_d"]["mean"], n, d))


# --------------------------------------------------------------------------------------
# DeepSeek LLM
# --------------------------------------------------------------------------------------


def test_deepseek_flops_per_token_eq2():
    """arXiv 2401.02954 Sec. 3.2 Eq. (2): M = 72 n_layer d^2 + 12 n_layer d l_seq."""
    m = laws.deepseek_flops_per_token(30, 4096, 4096)
    assert m == 72 * 30 * 4096**2 + 12 * 30 * 4096 * 4096
    assert m == pytest.approx(4.2278e10, rel=1e-4)


def test_deepseek_7b_reproduces_table2():
    """DeepSeek LLM 7B, arXiv 2401.02954 Table 2: 30 layers, d_model 4096, context 4096,
    2.0T tokens, batch 2304 sequences, peak lr 4.2e-4 (hyperparameters set from Eq. 1,
    Sec. 3.1 / Fig. 3 blue stars). With M from Eq. (2), C = M D = 8.46e22 FLOPs: the lr
    rounds to the printed 4.2e-4 (4.25e-4) and the batch is 2252 sequences, within 3% of the
    printed 2304 (which is a hardware-friendly 9 * 256)."""
    m = laws.deepseek_flops_per_token(30, 4096, 4096)
    lr = laws.deepseek_lr_opt(6.9e9, 2.0e12, flops_per_token=m)
    batch = laws.deepseek_batch_opt(6.9e9, 2.0e12, flops_per_token=m)
    assert float(f"{lr:.1e}") == 4.2e-4
    assert lr == pytest.approx(4.2e-4, rel=0.02)
    assert batch / 4096 == pytest.approx(2304, rel=0.03)


def test_deepseek_67b_close_to_table2():
    """DeepSeek LLM 67B, Table 2: 95 layers, d_model 8192, context 4096, 2.0T tokens, batch 4608
    sequences, peak lr 3.2e-4. Eq. (2) is written for multi-head attention; the 67B uses GQA
    (8 KV heads), so Eq. (2) over-counts its M and the formula lands a little low on lr (3.12e-4,
    within 5%) and high on batch (5043 sequences, within 10%)."""
    m = laws.deepseek_flops_per_token(95, 8192, 4096)
    lr = laws.deepseek_lr_opt(67e9, 2.0e12, flops_per_token=m)
    batch = laws.deepseek_batch_opt(67e9, 2.0e12, flops_per_token=m)
    assert lr == pytest.approx(3.2e-4, rel=0.05)
    assert batch / 4096 == pytest.approx(4608, rel=0.10)


def test_deepseek_formula_worked_numbers_at_1e20():
    """The paper validates Eq. (1) at a 1e20-FLOP budget (Sec. 3.1, Fig. 2b, 2.94B FLOPs/token).
    Worked from the formula (rel 1e-9): lr = 0.3118 * 10^-2.5 = 9.860e-4;
    B = 0.2920 * 10^6.542 = 1.017e6 tokens."""
    m = 2.94e9
    d = 1e20 / m
    assert laws.deepseek_compute(1.0, d, flops_per_token=m) == pytest.approx(1e20)
    lr = laws.deepseek_lr_opt(1.0, d, flops_per_token=m)
    batch = laws.deepseek_batch_opt(1.0, d, flops_per_token=m)
    assert lr == pytest.approx(0.3118 * 10**-2.5, rel=1e-9)
    assert lr == pytest.approx(9.860e-4, rel=1e-3)
    assert batch == pytest.approx(0.2920 * 10 ** (20 * 0.3271), rel=1e-9)
    assert batch == pytest.approx(1.017e6, rel=1e-3)


def test_deepseek_default_compute_is_6nd():
    n, d = np.array([1e9, 7e9]), np.array([1e11, 2e12])
    np.testing.assert_allclose(laws.deepseek_lr_opt(n, d),
                               laws.deepseek_lr_opt(n, d, flops_per_token=6 * n))
    pub = laws.PUBLISHED_EXPONENTS["deepseek"]
    np.testing.assert_allclose(
        np.log(laws.deepseek_lr_opt(n, d)),
        core.law_at(pub["c_eta"]["mean"], pub["a_n"]["mean"], pub["a_d"]["mean"], n, d))
    np.testing.assert_allclose(
        np.log(laws.deepseek_batch_opt(n, d)),
        core.law_at(pub["c_b"]["mean"], pub["b_n"]["mean"], pub["b_d"]["mean"], n, d))


# --------------------------------------------------------------------------------------
# Power Lines
# --------------------------------------------------------------------------------------


def test_powerlines_tau_reproduces_reported_values():
    """Bergsma et al. (arXiv 2505.13738) Sec. 3: tau_opt ~= 0.21 for the 610M model at 20 TPP
    (the law's anchor), and m_tau inside the reported bootstrap 10th-90th band
    (-0.529, -0.507)."""
    assert laws.powerlines_tau_opt(610e6, 20 * 610e6) == pytest.approx(0.21)
    assert -0.529 <= laws.POWERLINES_TAU_EXP_TPP <= -0.507
    # tau depends on D/N only and falls with TPP
    assert laws.powerlines_tau_opt(1e8, 2e9) == pytest.approx(laws.powerlines_tau_opt(1e10, 2e11))
    tpp = np.array([20.0, 200.0, 2000.0])
    tau = laws.powerlines_tau_opt(1e9, tpp * 1e9)
    np.testing.assert_allclose(tau[1:] / tau[:-1], 10.0 ** laws.POWERLINES_TAU_EXP_TPP)


def test_powerlines_weight_decay_hand_computed():
    """610M, 20 TPP, lr = 0.016 (the paper's fixed-lr sweep), B = 252 sequences of 2048:
    lambda = B / (lr tau D) = 516096 / (0.016 * 0.21 * 1.22e10) = 0.012590."""
    lam = laws.powerlines_weight_decay_opt(610e6, 1.22e10, 0.016, 252 * 2048)
    assert lam == pytest.approx(516096 / (0.016 * 0.21 * 1.22e10), rel=1e-12)
    assert lam == pytest.approx(0.012590, rel=1e-4)
    # linear in B at fixed N, D, lr (the paper's lambda_opt ~ B finding)
    lam2 = laws.powerlines_weight_decay_opt(610e6, 1.22e10, 0.016, 2 * 252 * 2048)
    assert lam2 == pytest.approx(2 * lam)


def test_powerlines_prior_entry_consistent_with_function():
    pub = laws.PUBLISHED_EXPONENTS["powerlines"]
    n, d = np.array([1e8, 1e9, 3e9]), np.array([2e9, 1e11, 3e12])
    np.testing.assert_allclose(np.log(laws.powerlines_tau_opt(n, d)),
                               core.tau_at(pub["c_tau"]["mean"], pub["g_tpp"]["mean"], n, d))


# --------------------------------------------------------------------------------------
# Bjorck et al.
# --------------------------------------------------------------------------------------


def test_bjorck_transfer_rule():
    """arXiv 2409.19913: at fixed N, LR*(D) ~ D^-beta, beta ~= 0.32 for N >= 760M. No printed
    (N, D) -> lr value could be retrieved, so this checks the transfer rule: 4x the tokens
    -> lr * 4^-0.32 = 0.6417 lr."""
    lr = laws.bjorck_lr_opt(1.3e9, np.array([25e9, 100e9]), lr_ref=1e-3, tokens_ref=25e9)
    assert lr[0] == pytest.approx(1e-3)
    assert lr[1] / lr[0] == pytest.approx(4**-0.32)
    assert lr[1] / lr[0] == pytest.approx(0.6417, rel=1e-3)
    per_size = laws.bjorck_lr_opt(3.5e8, 100e9, lr_ref=1e-3, tokens_ref=25e9,
                                  beta=laws.BJORCK_BETA_BY_SIZE[3.5e8])
    assert per_size == pytest.approx(1e-3 * 4**-0.3799)


def test_bjorck_requires_anchor():
    with pytest.raises(ValueError, match="anchor"):
        laws.bjorck_lr_opt(1e9, 1e11)


# --------------------------------------------------------------------------------------
# PUBLISHED_EXPONENTS and published_optima
# --------------------------------------------------------------------------------------


def test_published_exponents_structure():
    allowed = {"a_n", "a_d", "b_n", "b_d", "c_eta", "c_b", "g_tpp", "c_tau"}
    for law, entries in laws.PUBLISHED_EXPONENTS.items():
        assert law in {"steplaw", "deepseek", "powerlines", "bjorck"}
        for name, entry in entries.items():
            assert name in allowed
            assert set(entry) == {"mean", "sd", "source"}
            assert np.isfinite(entry["mean"]) and entry["sd"] > 0 and entry["source"]
    steplaw = laws.PUBLISHED_EXPONENTS["steplaw"]
    assert (steplaw["a_n"]["mean"], steplaw["a_d"]["mean"]) == (-0.713, 0.307)
    assert (steplaw["b_n"]["mean"], steplaw["b_d"]["mean"]) == (0.0, 0.571)
    # hand-computed intercepts at (1e9, 1e11): ln(1.79) - 0.713 ln 1e9 + 0.307 ln 1e11
    assert steplaw["c_eta"]["mean"] == pytest.approx(
        math.log(1.79) - 0.713 * math.log(1e9) + 0.307 * math.log(1e11))
    assert steplaw["c_b"]["mean"] == pytest.approx(math.log(0.58) + 0.571 * math.log(1e11))
    assert laws.PUBLISHED_EXPONENTS["powerlines"]["c_tau"]["mean"] == pytest.approx(
        math.log(0.21))


def test_published_optima_table():
    pytest.importorskip("pandas")
    df = laws.published_optima(1e9, 1e11)
    assert list(df["law"]) == ["steplaw", "deepseek", "powerlines", "bjorck"]
    for col in ("law", "lr_opt", "batch_tokens_opt", "weight_decay_opt", "reference"):
        assert col in df.columns
    row = df.set_index("law")
    assert row.loc["steplaw", "lr_opt"] == pytest.approx(laws.steplaw_lr_opt(1e9, 1e11))
    assert row.loc["deepseek", "batch_tokens_opt"] == pytest.approx(
        laws.deepseek_batch_opt(1e9, 1e11))
    assert row.loc["steplaw", "batch_sequences_opt"] == pytest.approx(
        row.loc["steplaw", "batch_tokens_opt"] / 2048)
    # weight decay through the Power Lines timescale at that law's lr and batch
    tau = laws.powerlines_tau_opt(1e9, 1e11)
    for law in ("steplaw", "deepseek"):
        lam = row.loc[law, "batch_tokens_opt"] / (row.loc[law, "lr_opt"] * tau * 1e11)
        assert row.loc[law, "weight_decay_opt"] == pytest.approx(lam)
    # NaN where the law says nothing
    assert np.isnan(row.loc["powerlines", ["lr_opt", "batch_tokens_opt", "weight_decay_opt"]]
                    .astype(float)).all()
    assert np.isnan(row.loc["bjorck", ["lr_opt", "batch_tokens_opt"]].astype(float)).all()
    assert row.loc["powerlines", "tau_opt"] == pytest.approx(tau)
    assert df["reference"].str.len().min() > 0


def test_published_optima_vectorised_and_anchored():
    pytest.importorskip("pandas")
    n, d = np.array([1e9, 1e9]), np.array([1e11, 4e11])
    df = laws.published_optima(n, d, seq_len=4096, bjorck_anchor=(1e-3, 1e11))
    assert len(df) == 8
    bj = df[df.law == "bjorck"]
    np.testing.assert_allclose(bj["lr_opt"], [1e-3, 1e-3 * 4**-0.32])
    sl = df[df.law == "steplaw"]
    np.testing.assert_allclose(sl["batch_sequences_opt"], sl["batch_tokens_opt"] / 4096)
