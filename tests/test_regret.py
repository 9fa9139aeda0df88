"""expected_regret(): loss increase of a choice over each posterior draw's optimum."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_scaling.model import core
from bayes_scaling.predict.predict import TargetError, predict
from bayes_scaling.predict.regret import expected_regret, regret_draws

TARGET = {"arch": "dense", "data_mix": "web", "n_params": 7e9, "n_tokens": 2e12}


@pytest.fixture(scope="module")
def posterior(fake_post):
    """The shared fake posterior (conftest): 2 chains x 300 draws, no sampling."""
    return fake_post


def _cells(n_draws: int = 4, spread: float = 0.0, seed: int = 0) -> xr.Dataset:
    """Synthetic new-cell draws (1 chain): optimum at lr 1e-3, B 2^20, wd 0.1, loss 2.0
    (plus ``spread`` normal noise in logs), a fixed 3x3 curvature and skew 0.2."""
    rng = np.random.default_rng(seed)
    shape = (1, n_draws)
    noise = lambda: spread * rng.standard_normal(shape)  # noqa: E731
    s = ("chain", "draw")
    return xr.Dataset(
        {"log_lr_opt": (s, np.log(1e-3) + noise()),
         "log_batch_opt": (s, np.log(2.0**20) + noise()),
         "log_weight_decay_opt": (s, np.log(0.1) + noise()),
         "log_loss_opt": (s, np.full(shape, np.log(2.0))),
         "chol_diag": ((*s, "dim"), np.broadcast_to([0.3, 0.2, 0.2], (*shape, 3)).copy()),
         "chol_offdiag": ((*s, "offdiag"), np.broadcast_to([0.05, 0.08, 0.02],
                                                           (*shape, 3)).copy()),
         "skew": (s, np.full(shape, 0.2))},
        coords={"chain": [0], "draw": np.arange(n_draws),
                "dim": ["lr", "batch", "weight_decay"]})


def as_choices(lr, batch, wd=np.nan) -> pd.DataFrame:
    lr, batch, wd = np.broadcast_arrays(np.atleast_1d(lr), np.atleast_1d(batch),
                                        np.atleast_1d(wd))
    return pd.DataFrame({"lr": lr.astype(float), "batch_tokens": batch.astype(float),
                         "weight_decay": wd.astype(float)})


def test_regret_is_exactly_zero_at_the_optimum_and_the_bowl_elsewhere():
    cells = _cells()
    r = regret_draws(cells, as_choices([1e-3, 2e-3, 5e-4], 2.0**20, 0.1))
    np.testing.assert_allclose(r.isel(choice=0), 0.0, atol=1e-15)
    chol = core.chol_matrix(np.array([0.3, 0.2, 0.2]), np.array([0.05, 0.08, 0.02]))
    for i, f in ((1, 2.0), (2, 0.5)):
        want = core.bowl_loss_matrix(0.0, [np.log(f), 0.0, 0.0], chol, 0.2)
        np.testing.assert_allclose(r.isel(choice=i), want, rtol=1e-12)
    # skew 0.2 > 0: doubling the lr costs more than halving it
    assert float(r.isel(chain=0, choice=1, draw=0)) > float(r.isel(chain=0, choice=2, draw=0)) > 0


def test_free_weight_decay_is_never_worse_than_a_fixed_one():
    """weight_decay NaN = the best wd for that lr and batch, so it lower-bounds every wd."""
    cells = _cells(n_draws=50, spread=0.3, seed=1)
    lr = np.geomspace(3e-4, 3e-3, 5)
    free = regret_draws(cells, as_choices(lr, 2.0**21))
    for wd in (0.02, 0.1, 0.5):
        fixed = regret_draws(cells, as_choices(lr, 2.0**21, wd))
        assert bool((free <= fixed + 1e-15).all())
    assert float(free.min()) >= 0.0


def test_regret_matches_predict_draws_and_vectorises(posterior):
    """Same seed: the regret's cells are predict()'s; several choices = one at a time."""
    lr, batch = [8e-4, 1.2e-3, 2e-3], [4e6, 8e6, 8e6]
    together = expected_regret(posterior, TARGET, lr=lr, batch_tokens=batch, seed=4)
    for i in range(3):
        alone = expected_regret(posterior, TARGET, lr=lr[i], batch_tokens=batch[i], seed=4)
        assert float(alone["expected_regret"][0]) == pytest.approx(
            float(together["expected_regret"][i]), rel=1e-12)
    cells = predict(posterior, TARGET, seed=4).cells.isel(target=0)
    direct = regret_draws(cells, as_choices(lr, batch)).mean(("chain", "draw"))
    np.testing.assert_allclose(together["expected_regret"], direct, rtol=1e-12)
    np.testing.assert_allclose(together["lr"], lr)
    pct = together["expected_regret_pct"]
    assert bool((together["regret_pct_lo"] <= together["regret_pct_median"]).all())
    assert bool((together["regret_pct_median"] <= together["regret_pct_hi"]).all())
    assert bool((pct > 0).all())


INTERIOR = {"arch": "dense", "data_mix": "web", "n_params": 1.5e8, "n_tokens": 1.5e10}


@pytest.mark.parametrize("target, tol, ratio", [(INTERIOR, 0.1, 10.0), (TARGET, 1.0, 5.0)])
def test_expected_regret_is_near_zero_at_the_posterior_optimum_and_grows_away(
        posterior, target, tol, ratio):
    """At the posterior median (lr, B) the expected regret is small: below ``tol`` % of the
    loss (0.1% inside the sweep's range; 1% at 7e9 / 2e12, 15x N and 45x D beyond the small
    sweep, where what is left is the posterior's own spread about the optimum: 0.53% for the
    fake posterior's jitter, under 0.5% for the real 2 x 300-draw fit used before). The
    lowest value on a grid of lr and batch multipliers sits within one grid step of the
    median, and the regret grows monotonically away from it, to > ``ratio`` x at 4x off."""
    s = predict(posterior, target, seed=0).summary.set_index("quantity")["median"]
    factors = np.array([0.25, 0.4, 0.6, 0.8, 1.0, 1.25, 1.6, 2.5, 4.0])
    centre = int(np.flatnonzero(factors == 1.0)[0])
    for lr, batch in ((s["lr_opt"] * factors, s["batch_tokens_opt"]),
                      (s["lr_opt"], s["batch_tokens_opt"] * factors)):
        pct = expected_regret(posterior, target, lr=lr, batch_tokens=batch,
                              seed=0)["expected_regret_pct"].to_numpy()
        assert pct[centre] < tol, pct
        low = int(np.argmin(pct))
        assert abs(low - centre) <= 1, pct
        assert (np.diff(pct[low:]) > 0).all() and (np.diff(pct[:low + 1]) < 0).all(), pct
        assert min(pct[0], pct[-1]) > ratio * pct[centre], pct


def test_expected_regret_errors(posterior):
    with pytest.raises(TargetError, match="one target row"):
        expected_regret(posterior, pd.DataFrame([TARGET, TARGET]), lr=1e-3,
                        batch_tokens=2.0**20)
    with pytest.raises(TargetError, match="lr must be positive"):
        expected_regret(posterior, TARGET, lr=[1e-3, 0.0], batch_tokens=2.0**20)
    with pytest.raises(TargetError, match="weight_decay"):
        expected_regret(posterior, TARGET, lr=1e-3, batch_tokens=2.0**20, weight_decay=-1)
