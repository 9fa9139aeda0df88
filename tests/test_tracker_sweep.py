"""A practitioner's own sweep, end to end, from a tracker export with its own column names.

tests/data/tracker_fixed_tpp.csv is what a W&B export of a typical sweep looks like: four
sizes (6e7 .. 5e8 parameters) at a fixed 20 tokens per parameter, so N and D move together;
5 learning rates x 3 batches (in sequences) per size; weight decay fixed (absent); one run whose
loss went NaN (finished, so: diverged), and a crashed, a killed and a still-running rerun. Its
losses were simulated (bayes_scaling.data.simulate.simulate_sweep, seed 0, lr rounded to three
digits as trackers print it). It goes through validate, fit, predict, propose and report with
the mapping options only (conftest.TRACKER_COLUMNS); the fit (default spec and sampler) runs in
a background worker.
"""

import json

import pytest
from conftest import TRACKER, TRACKER_COLUMNS

from bayes_scaling.model.fit import load_posterior

TARGET = ["--arch", "dense"]
SIZE = ["--params", "2B", "--tokens", "40B"]
PROPOSE_SIZE = ["--target-params", "2B", "--target-tokens", "40B"]


def test_validate_reads_it_with_the_maps_and_warns_about_the_design(run_cli):
    out = run_cli("validate", TRACKER, *TRACKER_COLUMNS, "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["runs"] == 61 and summary["cells"] == 4  # 64 rows, 3 excluded
    assert summary["n_excluded"] == 3 and summary["n_diverged"] == 1
    reasons = " ".join(str(r["reason"]) for r in summary["excluded"])
    for state in ("crashed", "killed", "running"):
        assert f"status '{state}'" in reasons
    design = " ".join(summary["design"])
    assert "N and D move together (about 20 tokens per parameter" in design


def test_fit_samples_cleanly_and_exits_0(tracker_fit):
    proc, path = tracker_fit
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "diagnostics ok" in proc.stdout and "divergences 0/" in proc.stdout
    assert "'adaptation': 'low_rank'" in proc.stdout  # auto: a fixed-ratio design's ridge
    posterior = load_posterior(path)
    assert posterior.attrs["diagnostics_ok"] == 1
    assert posterior.attrs["sampler_adaptation"] == "low_rank"


@pytest.fixture(scope="module")
def posterior_path(tracker_fit):
    proc, path = tracker_fit
    if proc.returncode != 0:
        pytest.fail(f"the tracker fit failed (exit {proc.returncode}): see "
                    "test_fit_samples_cleanly_and_exits_0")
    return path


def test_predict_gives_the_target_with_an_extrapolation_note(run_cli, posterior_path):
    out = run_cli("predict", posterior_path, *SIZE)  # --arch: the posterior's only arch
    assert out.returncode == 0, out.stderr
    assert "lr_opt" in out.stdout and "batch_seqs_opt" in out.stdout
    assert "is 4x the largest fitted" in out.stdout  # 2B vs 5e8: extrapolation said
    assert "warning" not in out.stderr.lower()  # a clean posterior: no banner


def test_propose_and_report_run_on_it(run_cli, posterior_path, tmp_path):
    out = run_cli("propose", posterior_path, *PROPOSE_SIZE, "-k", "2",
                  "--draws", "200", "--outcomes", "8")
    assert out.returncode == 0, out.stderr
    assert "verdict:" in out.stdout
    report = run_cli("report", posterior_path, *SIZE, *TARGET, "-k", "2",
                     "--out", tmp_path / "report.html")
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report.html").stat().st_size > 10_000
