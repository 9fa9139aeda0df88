"""Prior sensitivity: the sweep refitted under a second spec and compared with the posterior,
checked on fake posteriors (no sampling) against independent predictions of both fits."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.heldout.sensitivity import SENSITIVE_SD, prior_sensitivity
from bayes_scaling.model.fit import posterior_cells, posterior_runs, posterior_spec
from bayes_scaling.model.spec import load_spec

LITERATURE = Path(__file__).resolve().parents[1] / "models" / "literature.toml"


@pytest.fixture(scope="module")
def compared(loco_case_posterior, sim_truth):
    from bayes_scaling.testing import fake_refit

    calls = []

    def refit(sweep, spec, seed):
        calls.append((sweep, spec, seed))
        return fake_refit(sweep, spec, seed, truth=sim_truth)

    result = prior_sensitivity(loco_case_posterior, load_spec(LITERATURE), seed=4, refit=refit)
    return result, calls


@pytest.fixture(scope="module")
def loco_case_posterior(sim_sweep, sim_truth):
    """A fake posterior of three of the simulated sweep's cells (two dense, one MoE)."""
    from bayes_scaling.testing import fake_posterior

    cells = sorted(sim_sweep.runs["cell"].unique())
    dense = [c for c in cells if c.startswith("dense")]
    keep = [*dense[:2], next(c for c in cells if c.startswith("moe"))]
    sweep = sim_sweep.subset(sim_sweep.runs["cell"].isin(keep).to_numpy())
    return fake_posterior(sweep, truth=sim_truth, chains=2, draws=60, seed=3)


def test_the_whole_sweep_is_refitted_under_the_other_spec(compared, loco_case_posterior):
    result, calls = compared
    (sweep, spec, seed), = calls
    assert seed == 4 and spec.name == "literature"
    assert spec.sampler == posterior_spec(loco_case_posterior).sampler
    assert sorted(sweep.runs["run_id"]) == sorted(posterior_runs(loco_case_posterior)["run_id"])
    assert result.attrs["spec_a"] == "default" and result.attrs["spec_b"] == "literature"


def test_optima_are_both_fits_predictions_side_by_side(compared, loco_case_posterior,
                                                       sim_truth):
    """Independently: predict each cell from both posteriors and compare medians, intervals
    and the shift in sds of the first posterior's log draws."""
    from bayes_scaling.predict.predict import predict
    from bayes_scaling.testing import fake_refit

    result, calls = compared
    cells = posterior_cells(loco_case_posterior)
    assert len(result.optima) == 2 * len(cells)
    other = fake_refit(calls[0][0], calls[0][1], 4, truth=sim_truth)
    row = result.optima.iloc[2]  # second cell, lr_opt
    assert row["quantity"] == "lr_opt" and row["cell"] == cells.index[1]
    target = cells.iloc[[1]][["arch", "data_mix", "n_params", "n_tokens"]]
    a, b = (predict(p, target.reset_index(drop=True), seed=4).draws["log_lr_opt"]
            .to_numpy().ravel() for p in (loco_case_posterior, other))
    assert row["median_a"] == pytest.approx(np.exp(np.median(a)))
    assert row["hi90_b"] == pytest.approx(np.exp(np.quantile(b, 0.95)))
    assert row["shift_sd"] == pytest.approx((np.median(b) - np.median(a)) / np.std(a))


def test_laws_and_the_verdict(compared):
    result, _ = compared
    laws = result.laws
    assert set(laws["quantity"]) == {"a_n", "a_d", "b_n", "b_d", "l_n", "l_d"}
    assert (laws["lo90_a"] <= laws["median_a"]).all() and (laws["median_b"] <= laws[
        "hi90_b"]).all()
    lines = result.lines()
    assert lines[0].startswith("prior sensitivity (default vs literature spec): lr_opt "
                               "medians move by ")
    big = laws[laws["shift_sd"].abs() > SENSITIVE_SD]
    if len(big):
        assert lines[-1].startswith("prior-sensitive exponents: ")
    else:
        assert lines[-1] == f"no exponent moves by more than {SENSITIVE_SD:g} posterior sd"


def test_check_carries_and_saves_the_sensitivity(loco_case_posterior, sim_truth, tmp_path):
    import functools

    from bayes_scaling.heldout.loco import check
    from bayes_scaling.testing import fake_refit

    cell = posterior_cells(loco_case_posterior).index[0]
    lines = []
    result = check(loco_case_posterior, [cell], seed=1, jobs=1, draws=30, chains=2,
                   refit=functools.partial(fake_refit, truth=sim_truth),
                   progress=lines.append, sensitivity=load_spec(LITERATURE))
    assert any(x.startswith("prior sensitivity: fitting the whole sweep under the literature")
               for x in lines)
    assert any(x.startswith("prior sensitivity (default vs literature spec)")
               for x in result.verdict())
    whole = json.loads(json.dumps(result.to_dict()))
    assert len(whole["sensitivity"]["optima"]) == len(result.sensitivity.optima)
    files = result.save(tmp_path / "check.csv")
    saved = pd.read_csv(files[-1])
    assert files[-1].name == "check.sensitivity.csv"
    assert set(saved["table"]) == {"optima", "laws"}
    assert len(saved) == len(result.sensitivity.optima) + len(result.sensitivity.laws)
