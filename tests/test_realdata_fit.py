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
    post = posterior["posterior"]
    a_n = post["a_n"].median(("chain", "draw"))
    # dense lr falls steeply with N (Step Law: -0.713)
    assert -0.8 < float(a_n.sel(arch="dense")) < -0.5
    # the four MoE configurations share one total size: their lr law runs in total
    # parameters, so its N exponent is left to the pooled prior (much wider than the dense
    # one), and the configurations' lr offsets are small (their lr barely moves)
    assert post.sizes["config"] == 4
    sd = post["a_n"].std(("chain", "draw"))
    assert float(sd.sel(arch="moe")) > 2 * float(sd.sel(arch="dense"))
    assert float(post["sd_config_lr"].median()) < 0.2
