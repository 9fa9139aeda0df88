"""Each cell its own lr skew (``bowl.skew_by_cell``): a fitted cell predicts with its own
skew draws, a new cell draws one around its arch's with the fitted spread."""

import numpy as np
import pytest

from bayes_scaling.model.spec import spec_from_dict
from bayes_scaling.predict.cells import existing_cell, new_cell
from bayes_scaling.predict.draws import Draws
from bayes_scaling.testing import fake_posterior

pytestmark = pytest.mark.filterwarnings("ignore::bayes_scaling.errors.PosteriorWarning")


@pytest.fixture(scope="module")
def draws():
    spec = spec_from_dict({"bowl": {"skew_by_cell": True}})
    post = fake_posterior(spec=spec, draws=200, jitter=0.3)
    return Draws.from_posterior(post, None, 0)


def test_a_fitted_cell_uses_its_own_skew(draws):
    cell = draws.cells.index[3]
    got = existing_cell(draws, cell).skew
    assert np.array_equal(got, draws.get("skew_cell", cell=cell))
    assert not np.allclose(got, draws.by_arch("skew", draws.cells.loc[cell, "arch"]))


def test_a_new_cell_draws_its_skew_around_its_arch(draws):
    eff = new_cell(draws, "dense", "web", 3e9, 6e10, 4)
    z = (eff.skew - draws.by_arch("skew", "dense")) / draws.get("sd_skew_cell")
    assert eff.skew.shape == (draws.n,)
    # 400 standard normal draws: mean within 4 standard errors, sd within 15%
    assert abs(z.mean()) < 4 / np.sqrt(z.size)
    assert z.std() == pytest.approx(1.0, rel=0.15)
