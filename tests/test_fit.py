"""Fitting: provenance, reproducibility, diagnostics, save/load round trips, and the fake
posterior that stands in for a fit in the other tests.

What needs a sampler runs on the ONE small real fit shared through conftest (``real_fit``);
file handling runs on the fake posterior (``fake_post``), which carries the same attrs.
"""

import json

import numpy as np
import pytest
import xarray as xr

from bayes_scaling.data import write_sweep
from bayes_scaling.errors import PosteriorError
from bayes_scaling.model.fit import (
    diagnose,
    load_posterior,
    posterior_cells,
    posterior_runs,
    posterior_spec,
    save_posterior,
)
from bayes_scaling.model.graph import build_model
from bayes_scaling.model.spec import default_spec, spec_from_dict
from bayes_scaling.testing import fake_posterior


@pytest.fixture(scope="module")
def settings(real_fit_settings) -> dict:
    return real_fit_settings


def test_posterior_is_a_labelled_datatree_with_provenance(real_fit, tiny_sweep, settings):
    assert isinstance(real_fit, xr.DataTree)
    for group in ("posterior", "sample_stats", "observed_data", "runs", "cells"):
        assert group in real_fit.children
    post = real_fit["posterior"].to_dataset()
    assert post["a_n"].dims == ("chain", "draw", "arch")
    assert list(post["arch"].values) == ["dense", "moe"]
    assert dict(post.sizes)["draw"] == settings["draws"]
    attrs = real_fit.attrs
    assert attrs["data_hash"] == tiny_sweep.data_hash()
    assert attrs["seed"] == settings["seed"]
    assert attrs["spec_hash"] == default_spec().hash
    assert posterior_spec(real_fit).hash == default_spec().hash
    assert attrs["bayes_scaling_version"]
    assert "R-hat" in attrs["diagnostics"]


def test_fitted_sweep_and_cells_travel_with_the_posterior(real_fit, tiny_sweep):
    assert posterior_runs(real_fit).equals(tiny_sweep.runs)
    cells = posterior_cells(real_fit)
    assert set(cells.index) == set(tiny_sweep.runs["cell"])


def test_saved_posterior_loads_back_with_identical_draws(real_fit, tmp_path):
    path = save_posterior(real_fit, tmp_path / "post.nc")
    back = load_posterior(path)
    for group in ("posterior", "observed_data", "constant_data"):
        xr.testing.assert_identical(back[group].to_dataset(), real_fit[group].to_dataset())
    stats = real_fit["sample_stats"].to_dataset()
    numeric = [name for name in stats.data_vars if stats[name].dtype.kind in "biuf"]
    assert {"diverging", "logp", "energy", "step_size"} <= set(numeric)
    xr.testing.assert_equal(back["sample_stats"].to_dataset()[numeric], stats[numeric])
    assert back.attrs["spec_hash"] == real_fit.attrs["spec_hash"]
    assert posterior_runs(back).equals(posterior_runs(real_fit))
    load_posterior(path, spec=default_spec())  # the matching spec is accepted


def test_loading_with_another_spec_fails_clearly(fake_post, tmp_path):
    path = save_posterior(fake_post, tmp_path / "post.nc")
    other = spec_from_dict({"data": {"window": 0.05}}, source="other.toml")
    with pytest.raises(PosteriorError, match=r"does not match the spec other\.toml"):
        load_posterior(path, spec=other)


def test_tampered_or_foreign_files_fail_clearly(fake_post, tmp_path):
    path = save_posterior(fake_post, tmp_path / "post.nc")
    tree = load_posterior(path)
    tree.attrs["spec_json"] = json.dumps(json.loads(tree.attrs["spec_json"])
                                         | {"name": "x", "data": {"window": 0.3}})
    tampered = save_posterior(tree, tmp_path / "tampered.nc")
    with pytest.raises(PosteriorError, match="does not match its recorded hash"):
        load_posterior(tampered)
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("i", [1.0])}).to_netcdf(foreign, engine="h5netcdf")
    with pytest.raises(PosteriorError, match="not a bayes_scaling posterior"):
        load_posterior(foreign)
    with pytest.raises(PosteriorError, match="no such posterior file"):
        load_posterior(tmp_path / "absent.nc")


def test_diagnostics_report_short_chains_plainly(real_fit, settings):
    report = diagnose(real_fit)
    assert report.n_draws == settings["chains"] * settings["draws"]
    # 150 draws per chain cannot reach 400 bulk ESS on every parameter
    assert not report.ok
    assert any("ESS below 400" in p for p in report.problems)
    assert "PROBLEMS" in report.report()


# ----------------------------------------------------------------------------- fake posterior
def test_fake_posterior_has_the_structure_of_a_real_fit(real_fit, tiny_sweep, tmp_path, settings):
    """Same groups, the same posterior variables with the same dims and coords, the same
    sampler statistics and the same provenance attrs as fit() on the same sweep."""
    fake = fake_posterior(tiny_sweep, draws=settings["draws"], seed=settings["seed"])
    assert set(fake.children) == set(real_fit.children)
    # the tiny sweep is a fixed-ratio design, so fit() adapts a low-rank mass matrix, whose
    # extra statistic (the eigenvalues it kept) a fake made without a sampler does not have
    assert real_fit.attrs["sampler_adaptation"] == "low_rank"
    for group in ("posterior", "sample_stats"):
        f, r = fake[group].to_dataset(), real_fit[group].to_dataset()
        r = r.drop_vars(["num_eigenvalues"], errors="ignore")
        assert set(f.data_vars) == set(r.data_vars), group
        for name in r.data_vars:
            assert f[name].dims == r[name].dims, name
            assert f[name].dtype.kind == r[name].dtype.kind, name
        for c in r.coords:
            np.testing.assert_array_equal(f[c].values, r[c].values)
    for group in ("observed_data", "constant_data", "runs", "cells", "excluded"):
        # equal values and coords; attrs differ only in their creation time
        xr.testing.assert_equal(fake[group].to_dataset(), real_fit[group].to_dataset())
    assert set(fake.attrs) - set(real_fit.attrs) == {"fake_posterior"}
    for key in ("spec_hash", "data_hash", "seed", "dims", "window", "x_n_centre"):
        assert fake.attrs[key] == real_fit.attrs[key], key
    back = load_posterior(save_posterior(fake, tmp_path / "fake.nc"))
    xr.testing.assert_identical(back["posterior"].to_dataset(), fake["posterior"].to_dataset())


def test_fake_posterior_is_consistent_seeded_and_sits_at_the_truth(fake_post, sim_truth):
    """Deterministics agree with the free variables they are computed from, the draws
    scatter around the simulator's truth where the model has the truth's names, and the
    jitter is seeded."""
    post = fake_post["posterior"].to_dataset()
    np.testing.assert_allclose(post["loss_opt"], np.exp(post["log_loss_opt"]), rtol=1e-12)
    for name in ("a_n", "b_d", "g_tpp", "sigma_cell_lr", "noise", "log_lr_opt"):
        med = post[name].median(("chain", "draw"))
        np.testing.assert_allclose(med, sim_truth[name].broadcast_like(med), rtol=0.1,
                                   atol=0.02, err_msg=name)
    assert int(fake_post["sample_stats"]["diverging"].sum()) == 0
    assert np.isfinite(fake_post["sample_stats"]["logp"]).all()
    assert "no sampling" in fake_post.attrs["fake_posterior"]


def test_fake_posterior_follows_the_model_it_is_given(tiny_sweep):
    """Variables come from the model object: a spec without skew or pooling gives a
    posterior without those variables; jitter 0 gives identical draws."""
    spec = spec_from_dict({"bowl": {"skew": False},
                           "pooling": {"exponents_by_arch": False, "mix_offsets": False}})
    fake = fake_posterior(tiny_sweep, spec=spec, draws=4, jitter=0.0)
    model = build_model(tiny_sweep, spec)
    names = {v.name for v in (*model.free_RVs, *model.deterministics)}
    post = fake["posterior"].to_dataset()
    assert set(post.data_vars) == names
    assert "skew" not in post and "sd_arch_exponent" not in post
    assert float(post["a_n"].std()) == 0.0
    assert fake.attrs["spec_hash"] == spec.hash


# ----------------------------------------------------------------------------- CLI
def test_cli_fit_exits_3_on_bad_diagnostics(cli_fit):
    bad, folder = cli_fit
    assert bad.returncode == 3, bad.stderr
    assert "diagnostics PROBLEMS" in bad.stdout
    assert "a_n" in bad.stdout and "90% interval" in bad.stdout
    assert "--allow-bad-diagnostics" in bad.stderr
    # the advice follows what failed: short chains (ESS) and a fixed-ratio design
    assert "for R-hat or ESS, more --draws" in bad.stderr
    assert "direction(s) to the priors" in bad.stderr
    load_posterior(folder / "same.nc")  # kept for inspection


def test_cli_fit_exits_0_on_bad_diagnostics_when_allowed(real_fit, tiny_sweep, monkeypatch,
                                                         tmp_path, capsys):
    """The same failing diagnostics (real_fit's, short chains) with --allow-bad-diagnostics:
    reported, saved, exit 0 (the sampler is replaced by real_fit: the exit code is main's)."""
    from bayes_scaling.model import fit as model_fit
    from bayes_scaling.present.cli import main

    monkeypatch.setattr(model_fit, "fit", lambda *args, **kwargs: real_fit.copy())
    write_sweep(tiny_sweep, tmp_path / "sweep.csv")
    code = main(["fit", str(tmp_path / "sweep.csv"), "--allow-bad-diagnostics", "--quiet",
                 "--out", str(tmp_path / "p.nc")])
    assert "diagnostics PROBLEMS" in capsys.readouterr().out
    assert code == 0
    load_posterior(tmp_path / "p.nc")


def test_same_seed_same_draws_other_seed_other_draws(real_fit, real_fit_other_seed, cli_fit):
    """The command line, from the sweep written to CSV, in a fresh process compiling the model
    on an empty (cold) compile cache, gives the draws of real_fit (fit() in a background
    worker on a warm cache, on the compiled model of a sibling sweep with other data) with
    the same seed and settings; another seed gives other draws."""
    _, folder = cli_fit
    assert any((folder / "compiledir").iterdir())  # the CLI run compiled into the empty cache
    same = load_posterior(folder / "same.nc")
    other = real_fit_other_seed
    assert (real_fit.attrs["compiled"], same.attrs["compiled"]) == ("reused", "new")
    assert other.attrs["compiled"] == "reused"
    assert same.attrs["data_hash"] == other.attrs["data_hash"] == real_fit.attrs["data_hash"]
    xr.testing.assert_equal(same["posterior"].to_dataset(), real_fit["posterior"].to_dataset())
    for name in ("a_n", "log_lr_opt", "noise"):
        assert not np.array_equal(other["posterior"][name].values,
                                  real_fit["posterior"][name].values), name


def test_cli_fit_rejects_a_bad_spec_without_traceback(tiny_sweep, tmp_path, run_cli):
    sweep_path = tmp_path / "sweep.csv"
    write_sweep(tiny_sweep, sweep_path)
    spec = tmp_path / "bad.toml"
    spec.write_text("[data]\nwindoww = 0.1\n")
    out = run_cli("fit", sweep_path, "--model", spec, "--out", tmp_path / "p.nc")
    assert out.returncode == 2
    assert "unknown key 'data.windoww'" in out.stderr and "Traceback" not in out.stderr


def test_progress_bar_is_one_combined_bar_where_the_stats_table_would_cut_its_headings():
    from bayes_scaling.model.sampler import progress_mode

    assert progress_mode(80) == "combined" and progress_mode(144) == "combined"
    assert progress_mode(145) is True
