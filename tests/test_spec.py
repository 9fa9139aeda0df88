"""Model specs: the shipped files, and one clear error per malformed input."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bayes_scaling.model.spec import (
    SpecError,
    default_spec,
    load_spec,
    spec_from_dict,
    with_sampler,
)

MODELS = Path(__file__).resolve().parents[1] / "models"


def test_default_toml_mirrors_the_built_in_defaults():
    assert load_spec(MODELS / "default.toml").raw == default_spec().raw


def test_functions_that_censor_default_to_the_default_specs_window():
    from bayes_scaling.model import core

    assert default_spec().window == core.DEFAULT_WINDOW


def test_literature_spec_centres_exponents_on_published_values():
    spec = load_spec(MODELS / "literature.toml")
    assert spec.priors["mu_a_n"].mu == pytest.approx(-0.713)
    assert spec.priors["mu_b_d"].mu == pytest.approx(0.571)
    assert spec.priors["g_tpp"].mu == pytest.approx(-0.518)
    assert spec.hash != default_spec().hash


def _write(tmp_path, text):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "needle"), [
    ("[data]\nwindoww = 0.1\n", "unknown key 'data.windoww'"),
    ("colour = 'red'\n", "unknown key 'colour'"),
    ("[priors]\na_x = { dist = 'normal', mu = 0, sigma = 1 }\n", "unknown prior 'priors.a_x'"),
    ("[priors]\nmu_a_n = { dist = 'normal', mu = 0 }\n", "'sigma' must be a number"),
    ("[priors]\nmu_a_n = { dist = 'cauchy', mu = 0, sigma = 1 }\n", "unknown dist 'cauchy'"),
    ("[priors]\nmu_a_n = { dist = 'normal', mu = 0, sigma = -1 }\n", "sigma must be > 0"),
    ("[priors]\nnoise = { dist = 'normal', mu = 0, sigma = 1 }\n", "needs dist = HalfNormal or"),
    ("[priors]\nmu_a_n = { dist = 'normal', mu = 0, sigma = 1, nu = 3 }\n", "unexpected field"),
    ("[priors]\nmu_a_n = 3\n", "must be a table with 'dist'"),
    ("[data]\nwindow = 2.0\n", "'data.window' must be a number in (0, 1)"),
    ("[likelihood]\nfamily = 'cauchy'\n", "'likelihood.family'"),
    ("[sampler]\ndraws = 0\n", "'sampler.draws' must be a positive integer"),
    ("[sampler]\nadaptation = 'full'\n", "'sampler.adaptation'"),
    ("[pooling]\nmix_offsets = 'yes'\n", "'pooling.mix_offsets' must be true or false"),
    ("[data\nwindow = 0.1\n", "not valid TOML"),
])
def test_malformed_spec_is_one_clear_error_naming_file_and_key(tmp_path, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert needle in str(err.value)


def test_missing_spec_file_is_a_clear_error(tmp_path):
    with pytest.raises(SpecError, match="no such model spec file"):
        load_spec(tmp_path / "absent.toml")


def test_hash_tracks_the_model_not_the_sampler():
    base = default_spec()
    assert with_sampler(base, draws=10).hash == base.hash
    changed = spec_from_dict({"priors": {"mu_a_n": {"dist": "normal", "mu": 0.0, "sigma": 1.0}}})
    assert changed.hash != base.hash
    assert spec_from_dict({"data": {"window": 0.03}}).hash != base.hash


def test_every_prior_is_named_after_a_model_variable():
    from bayes_scaling.model.graph import build_model
    from bayes_scaling.testing import small_sweep

    sweep = small_sweep(0)[0]  # sparse MoE configurations, skews by tokens and by cell
    runs = sweep.runs.assign(n_params_total=np.where(sweep.runs["arch"] == "moe",
                                                     4 * sweep.runs["n_params"], np.nan))
    spec = spec_from_dict({"bowl": {"skew_by_tokens": True, "skew_by_cell": True}})
    model = build_model(replace(sweep, runs=runs), spec)
    missing = sorted(set(default_spec().priors) - set(model.named_vars))
    assert not missing


def test_prior_accepts_pymc_family_names_and_creates_the_variable():
    import pymc as pm

    spec = spec_from_dict({"priors": {"skew": {"dist": "StudentT", "nu": 4, "mu": 0.0,
                                               "sigma": 0.2}}})
    from scipy import stats

    with pm.Model():
        rv = spec.priors["skew"].create("skew", shift=1.0)
    assert float(pm.logp(rv, 1.3).eval()) == pytest.approx(
        stats.t.logpdf(1.3, 4, loc=1.0, scale=0.2))
    assert spec.priors["skew"].to_dict() == {"dist": "StudentT", "nu": 4.0, "mu": 0.0,
                                             "sigma": 0.2}
