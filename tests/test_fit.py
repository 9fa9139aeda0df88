"""Fitting: provenance, reproducibility, diagnostics, and save/load round trips."""

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from bayes_scaling.data import write_sweep
from bayes_scaling.data.simulate import default_cells, simulate_sweep
from bayes_scaling.errors import PosteriorError
from bayes_scaling.model.fit import (
    diagnose,
    fit,
    load_posterior,
    posterior_cells,
    posterior_runs,
    posterior_spec,
    save_posterior,
)
from bayes_scaling.model.spec import default_spec, spec_from_dict

SMALL = {"draws": 150, "tune": 150, "chains": 2}


@pytest.fixture(scope="module")
def small_sweep():
    cells = default_cells(mixes=("web",), n_params=(1e8, 4e8))
    return simulate_sweep(3, cells=cells, return_truth=False)


@pytest.fixture(scope="module")
def posterior(small_sweep):
    return fit(small_sweep, seed=5, progressbar=False, **SMALL)


def test_posterior_is_a_labelled_datatree_with_provenance(posterior, small_sweep):
    assert isinstance(posterior, xr.DataTree)
    for group in ("posterior", "sample_stats", "observed_data", "runs", "cells"):
        assert group in posterior.children
    post = posterior["posterior"].to_dataset()
    assert post["a_n"].dims == ("chain", "draw", "arch")
    assert list(post["arch"].values) == ["dense", "moe"]
    attrs = posterior.attrs
    assert attrs["data_hash"] == small_sweep.data_hash()
    assert attrs["seed"] == 5
    assert attrs["spec_hash"] == default_spec().hash
    assert posterior_spec(posterior).hash == default_spec().hash
    assert attrs["bayes_scaling_version"]
    assert "R-hat" in attrs["diagnostics"]


def test_fitted_sweep_and_cells_travel_with_the_posterior(posterior, small_sweep):
    assert posterior_runs(posterior).equals(small_sweep.runs)
    cells = posterior_cells(posterior)
    assert set(cells.index) == set(small_sweep.runs["cell"])


def test_same_seed_same_draws_other_seed_other_draws(posterior, small_sweep):
    again = fit(small_sweep, seed=5, progressbar=False, **SMALL)
    other = fit(small_sweep, seed=6, progressbar=False, **SMALL)
    a = posterior["posterior"]["a_n"].values
    assert np.array_equal(a, again["posterior"]["a_n"].values)
    assert not np.array_equal(a, other["posterior"]["a_n"].values)


def test_saved_posterior_loads_back_with_identical_draws(posterior, tmp_path):
    path = save_posterior(posterior, tmp_path / "post.nc")
    back = load_posterior(path)
    xr.testing.assert_identical(back["posterior"].to_dataset(),
                                posterior["posterior"].to_dataset())
    assert back.attrs["spec_hash"] == posterior.attrs["spec_hash"]
    assert posterior_runs(back).equals(posterior_runs(posterior))
    load_posterior(path, spec=default_spec())  # the matching spec is accepted


def test_loading_with_another_spec_fails_clearly(posterior, tmp_path):
    path = save_posterior(posterior, tmp_path / "post.nc")
    other = spec_from_dict({"data": {"window": 0.05}}, source="other.toml")
    with pytest.raises(PosteriorError, match=r"does not match the spec other\.toml"):
        load_posterior(path, spec=other)


def test_tampered_or_foreign_files_fail_clearly(posterior, tmp_path):
    path = save_posterior(posterior, tmp_path / "post.nc")
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


def test_diagnostics_report_short_chains_plainly(posterior):
    report = diagnose(posterior)
    assert report.n_draws == 300
    # 150 draws per chain cannot reach 400 bulk ESS on every parameter
    assert not report.ok
    assert any("ESS below 400" in p for p in report.problems)
    assert "PROBLEMS" in report.report()


def test_cli_fit_exits_3_on_bad_diagnostics_and_0_when_allowed(small_sweep, tmp_path):
    sweep_path = tmp_path / "sweep.csv"
    write_sweep(small_sweep, sweep_path)
    cmd = [sys.executable, "-m", "bayes_scaling.present.cli", "fit", str(sweep_path), "--out",
           str(tmp_path / "p.nc"), "--draws", "60", "--tune", "60", "--chains", "2", "--quiet"]
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 3, bad.stderr
    assert "diagnostics PROBLEMS" in bad.stdout
    assert "a_n" in bad.stdout and "90% interval" in bad.stdout
    assert "--allow-bad-diagnostics" in bad.stderr
    assert (tmp_path / "p.nc").is_file()  # kept for inspection
    ok = subprocess.run([*cmd, "--allow-bad-diagnostics"], capture_output=True, text=True,
                        timeout=600)
    assert ok.returncode == 0, ok.stderr
    load_posterior(tmp_path / "p.nc")


def test_cli_fit_rejects_a_bad_spec_without_traceback(small_sweep, tmp_path):
    sweep_path = tmp_path / "sweep.csv"
    write_sweep(small_sweep, sweep_path)
    spec = tmp_path / "bad.toml"
    spec.write_text("[data]\nwindoww = 0.1\n")
    out = subprocess.run([sys.executable, "-m", "bayes_scaling.present.cli", "fit", str(sweep_path),
                          "--model", str(spec), "--out", str(tmp_path / "p.nc")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "unknown key 'data.windoww'" in out.stderr and "Traceback" not in out.stderr
