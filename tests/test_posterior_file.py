"""A posterior file whose draws were edited, or of an older format, fails to load clearly."""

import pytest

from bayes_scaling.errors import PosteriorError
from bayes_scaling.model.fit import load_posterior, save_posterior


def test_edited_draws_fail_to_load(fake_post, tmp_path):
    path = save_posterior(fake_post, tmp_path / "post.nc")
    tree = load_posterior(path)  # the untouched file loads
    post = tree["posterior"].to_dataset()
    post["a_n"] = post["a_n"] * 0 + 5.0  # the edit issue 11 found unnoticed (lr_opt 69)
    tree["posterior"] = post
    with pytest.raises(PosteriorError, match="draws do not match their recorded checksum"):
        load_posterior(save_posterior(tree, tmp_path / "edited.nc"))


def test_older_format_asks_for_a_refit(fake_post, tmp_path):
    tree = fake_post.copy()
    tree.attrs["bayes_scaling_format"] = 1
    with pytest.raises(PosteriorError, match="posterior format 1, this version reads format 2"):
        load_posterior(save_posterior(tree, tmp_path / "old.nc"))


def test_targets_far_beyond_the_data_are_noted(fake_post):
    from bayes_scaling.predict.targets import extrapolation_notes

    far = {"arch": "dense", "n_params": 7e9, "n_tokens": 2e12}
    notes = extrapolation_notes(fake_post, far)
    assert any(n.startswith("target N = 7e+09 is") and "largest fitted" in n for n in notes)
    assert any(n.startswith("target D = 2e+12") for n in notes)
    inside = {"arch": "dense", "n_params": 1.5e8, "n_tokens": 3e9}
    assert extrapolation_notes(fake_post, inside) == []
    tiny = {"arch": "dense", "n_params": 1e6, "n_tokens": 2e7}
    assert any("below the smallest fitted" in n for n in extrapolation_notes(fake_post, tiny))


def test_sampler_messages_read_back_exactly(real_fit, tmp_path):
    """Every group of a real fit, sampler statistics included (nutpie's text divergence
    messages too), reads back identical."""
    import xarray as xr

    back = load_posterior(save_posterior(real_fit, tmp_path / "post.nc"))
    for group in ("posterior", "sample_stats", "observed_data", "constant_data"):
        xr.testing.assert_identical(back[group].to_dataset(), real_fit[group].to_dataset())
