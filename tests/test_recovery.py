"""Statistical recovery on simulated sweeps with a known truth (slow; run in CI)."""

import numpy as np
import pytest

from bayes_scaling.data.simulate import default_cells, simulate_sweep
from bayes_scaling.model.fit import diagnose, fit

LAW = ("c_eta", "c_batch", "a_n", "a_d", "b_n", "b_d", "c_tau", "g_tpp")
EXPONENTS = ("a_n", "a_d", "b_n", "b_d", "g_tpp")


def _inside(posterior, truth, names, prob):
    """{parameter[label]: truth inside the central `prob` interval} for every element."""
    post = posterior["posterior"].to_dataset()
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    out = {}
    for name in names:
        q = post[name].quantile([lo, hi], dim=("chain", "draw"))
        t = truth[name]
        for idx in np.ndindex(t.shape):
            sel = dict(zip(t.dims, [t[d].values[i] for d, i in zip(t.dims, idx, strict=True)],
                           strict=True))
            value = float(t.sel(sel))
            band = q.sel(sel)
            out[f"{name}{list(sel.values()) if sel else ''}"] = bool(
                band.sel(quantile=lo) <= value <= band.sel(quantile=hi))
    return out


@pytest.mark.slow
def test_every_true_law_parameter_inside_its_94pct_interval():
    """Dense + MoE, two data mixes, weight decay varied: the embedded default sweep."""
    sweep, truth = simulate_sweep(0)
    posterior = fit(sweep, seed=1, progressbar=False)
    diagnostics = diagnose(posterior)
    assert diagnostics.max_rhat <= 1.01 and diagnostics.min_ess_bulk >= 400
    inside = _inside(posterior, truth, LAW, 0.94)
    assert len(inside) == 2 * 2 * 2 + 4 * 2 + 2
    assert all(inside.values()), {k: v for k, v in inside.items() if not v}


@pytest.mark.slow
def test_exponent_90pct_intervals_cover_the_truth_at_about_the_nominal_rate():
    """20 simulated sweeps (dense + MoE, two mixes, weight decay varied, 3 sizes x 2 token
    budgets each): pooled coverage of the 90% intervals of the 9 exponents (a_n, a_d, b_n,
    b_d per arch and g_tpp) must lie in [0.80, 0.97]."""
    cells = default_cells(n_params=(5e7, 1.5e8, 4.5e8), tokens_per_param=(20.0, 100.0))
    hits = []
    for seed in range(20):
        sweep, truth = simulate_sweep(100 + seed, cells=cells, n_lr=6)
        posterior = fit(sweep, seed=seed, draws=400, tune=400, chains=2, progressbar=False)
        hits += list(_inside(posterior, truth, EXPONENTS, 0.90).values())
    coverage = float(np.mean(hits))
    assert len(hits) == 20 * 9
    assert 0.80 <= coverage <= 0.97, coverage
