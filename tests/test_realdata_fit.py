"""One fit of the real Step Law dense + MoE sweeps with the default spec (slow).

The fit comes from conftest (``steplaw_fit``: the spec's sampler, 4 chains x 1,000 draws after
1,000 tuning steps, run in a background worker from the start of the session)."""

import pytest

from bayes_scaling.model.fit import LAW_PARAMETERS, diagnose, posterior_runs, posterior_spec
from bayes_scaling.model.spec import default_spec


@pytest.mark.slow
@pytest.mark.realdata
def test_steplaw_fit_samples_cleanly_and_separates_dense_from_moe(steplaw_fit):
    posterior = steplaw_fit
    assert len(posterior_runs(posterior)) == 2619
    assert posterior_spec(posterior).hash == default_spec().hash
    report = diagnose(posterior, var_names=LAW_PARAMETERS)
    assert report.n_draws == 4 * 1000
    assert report.max_rhat <= 1.01, report.report()
    assert report.min_ess_bulk >= 400, report.report()
    assert report.divergences == 0, report.report()
    a_n = posterior["posterior"]["a_n"].median(("chain", "draw"))
    # dense lr falls steeply with N (Step Law: -0.713); MoE lr barely moves with active N
    assert -0.8 < float(a_n.sel(arch="dense")) < -0.5
    assert float(a_n.sel(arch="moe")) > -0.3
