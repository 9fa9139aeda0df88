"""One fit of the real Step Law dense + MoE sweeps with the default spec (slow)."""

import pytest

from bayes_scaling.data import concat_sweeps, read_steplaw
from bayes_scaling.model.fit import LAW_PARAMETERS, diagnose, fit


@pytest.mark.slow
@pytest.mark.realdata
def test_steplaw_fit_samples_cleanly_and_separates_dense_from_moe(steplaw_dir):
    sweep = concat_sweeps([read_steplaw(steplaw_dir / "dense_lr_bs_loss.csv"),
                           read_steplaw(steplaw_dir / "moe_lr_bs_loss.csv")])
    assert len(sweep.runs) == 2619
    posterior = fit(sweep, seed=0, progressbar=False)
    report = diagnose(posterior, var_names=LAW_PARAMETERS)
    assert report.max_rhat <= 1.01, report.report()
    assert report.min_ess_bulk >= 400, report.report()
    assert report.divergences == 0, report.report()
    a_n = posterior["posterior"]["a_n"].median(("chain", "draw"))
    # dense lr falls steeply with N (Step Law: -0.713); MoE lr barely moves with active N
    assert -0.8 < float(a_n.sel(arch="dense")) < -0.5
    assert float(a_n.sel(arch="moe")) > -0.3
