"""A posterior that failed its diagnostics is never used silently."""

import pytest

from bayes_scaling.errors import PosteriorWarning
from bayes_scaling.model.fit import save_posterior
from bayes_scaling.predict.predict import predict

TARGET = {"arch": "dense", "data_mix": "web", "n_params": 7e9, "n_tokens": 2e12}


@pytest.fixture(scope="module")
def failed(fake_post):
    bad = fake_post.copy()
    bad.attrs.update(diagnostics_ok=0, diagnostics="diagnostics PROBLEMS:\n  - 12 divergent "
                     "transition(s) out of 600 draws")
    return bad


def test_predict_warns_on_a_failed_posterior(failed, fake_post):
    with pytest.warns(PosteriorWarning, match="12 divergent transition"):
        predict(failed, TARGET)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", PosteriorWarning)
        predict(fake_post, TARGET)  # a clean posterior: no warning


def test_cli_prints_one_warning_line(failed, run_cli, tmp_path):
    path = save_posterior(failed, tmp_path / "failed.nc")
    out = run_cli("predict", path, "--params", "7B", "--tokens", "2T", "--arch", "dense")
    assert out.returncode == 0, out.stderr
    lines = [x for x in out.stderr.splitlines() if x.startswith("warning:")]
    assert len(lines) == 1 and "failed its sampling diagnostics" in lines[0]
    assert "PosteriorWarning" not in out.stderr
