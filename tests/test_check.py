"""The leave-one-cell-out check (``bs.check``, ``bayes-scaling check POSTERIOR``): the
reference optimum, the scores and the verdict by hand on tiny cases, and the whole check on a
fake refit (no MCMC; in process and in two joblib workers)."""

import functools
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_scaling.errors import TargetError
from bayes_scaling.heldout.cells import parse_cells, select_cells
from bayes_scaling.heldout.coverage import consistent_range, coverage_table, verdict_lines
from bayes_scaling.heldout.loco import REFIT_TUNE
from bayes_scaling.heldout.reference import cell_optimum, reference_noise, regret_pct
from bayes_scaling.heldout.score import pit, score_cell, score_optimum

LOG_LR, LOG_B, LOSS_OPT = np.log(1e-3), np.log(2.0**20), 2.0
H = np.array([[0.2, 0.05], [0.05, 0.1]])


def _bowl(d_lr, d_b):
    """An exact quadratic: LOSS_OPT + 1/2 d^T H d at log offsets d from the optimum."""
    return LOSS_OPT + 0.5 * (H[0, 0] * d_lr**2 + 2 * H[0, 1] * d_lr * d_b + H[1, 1] * d_b**2)


def _cell_runs() -> pd.DataFrame:
    """15 runs on an exact quadratic (all within 1% of the best), one diverged and one far
    above the window."""
    d = [(a, b) for a in (-0.3, -0.15, 0.0, 0.15, 0.3) for b in (-0.3, 0.0, 0.3)]
    d += [(0.6, 0.0), (-1.5, 0.0)]
    lr = np.exp(LOG_LR + np.array([a for a, _ in d]))
    batch = np.exp(LOG_B + np.array([b for _, b in d]))
    loss = np.array([_bowl(a, b) for a, b in d[:15]] + [np.nan, 2.5])
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(len(d))], "lr": lr,
                         "batch_tokens": batch, "weight_decay": np.nan, "loss": loss,
                         "status": ["ok"] * 15 + ["diverged", "ok"]})


# ----------------------------------------------------------------------------- by hand
def test_reference_optimum_of_an_exact_quadratic():
    runs = _cell_runs()
    opt = cell_optimum(runs)
    assert opt["method"] == "quadratic, 1% window" and opt["n_fit"] == 15
    assert opt["log_lr"] == pytest.approx(LOG_LR, abs=1e-9)
    assert opt["log_batch"] == pytest.approx(LOG_B, abs=1e-9)
    assert opt["loss"] == pytest.approx(LOSS_OPT, abs=1e-12) and not opt["problems"]
    assert regret_pct(opt, 1e-3, 2.0**20) == pytest.approx(0.0, abs=1e-9)
    lr, b = np.exp(LOG_LR + 0.2), np.exp(LOG_B - 0.1)
    assert regret_pct(opt, lr, b) == pytest.approx(100 * (_bowl(0.2, -0.1) - 2) / 2, rel=1e-9)
    # too few distinct points for any quadratic: the best run, regret from the nearest run
    few = runs.iloc[[0, 4, 7]]
    fallback = cell_optimum(few)
    assert fallback["method"].startswith("best run") and len(fallback["problems"]) == 4
    assert fallback["loss"] == few["loss"].min()
    nearest = few["loss"].iloc[0]
    assert regret_pct(fallback, few["lr"].iloc[0], few["batch_tokens"].iloc[0]) == \
        pytest.approx(100 * (nearest - few["loss"].min()) / few["loss"].min())


def test_pit_and_intervals_by_hand():
    draws = np.arange(1.0, 11.0)  # 1..10
    assert pit(draws, 3.5) == 0.3 and pit(draws, 3.0) == 0.25 and pit(draws, 11) == 1.0
    np.testing.assert_allclose(pit(np.tile(draws, (2, 1)).T, [3.5, 0.0]), [0.3, 0.0])
    s = score_optimum("lr", draws, 3.5)  # log draws; quantiles 1.45, 3.25, 7.75, 9.55
    assert s["lr_pit"] == 0.3 and s["lr_pred"] == pytest.approx(np.exp(5.5))
    assert s["lr_lo90"] == pytest.approx(np.exp(1.45)) and s["lr_hi90"] == pytest.approx(
        np.exp(9.55))
    assert s["lr_width90_log"] == pytest.approx(8.1) and s["lr_width50_log"] == pytest.approx(4.5)
    assert s["lr_in90"] and s["lr_in50"] and s["lr_in80"]
    t = score_optimum("lr", draws, 3.0)
    assert t["lr_in90"] and not t["lr_in50"] and t["lr_pit"] == 0.25



def test_reference_noise_widens_the_judged_interval():
    """The reference's bootstrap noise is added draw by draw: a reference just outside the
    model's own 90% interval is inside the interval of model + noise, and the model's own
    interval is reported unchanged."""
    draws = np.random.default_rng(1).normal(0.0, 0.1, 4000)
    noise = np.random.default_rng(2).normal(0.0, 0.2, 200)
    s = score_optimum("lr", draws, 0.25, noise, seed=3)
    assert not s["lr_in90_point"] and s["lr_in90"]
    assert s["lr_lo90"] == pytest.approx(np.exp(np.quantile(draws, 0.05)))
    assert s["lr_ref_sd"] == pytest.approx(np.std(noise))
    # PIT under N(0, sqrt(0.1^2 + 0.2^2)) at 0.25: 0.868
    assert s["lr_pit"] == pytest.approx(0.868, abs=0.02)


def test_reference_noise_is_the_bootstrap_of_the_whole_procedure():
    """Exact bowls give no noise; noisy runs give a spread of the size a direct bootstrap
    of the quadratic's minimum has; the draws repeat with the seed."""
    runs = _cell_runs()
    exact = reference_noise(runs, seed=0, n_boot=30)
    assert exact.shape == (30, 2) and np.abs(exact).max() < 1e-6
    noisy = runs.assign(loss=runs["loss"] + np.random.default_rng(0).normal(0, 0.004,
                                                                              len(runs)))
    a, b = reference_noise(noisy, seed=5, n_boot=50), reference_noise(noisy, seed=5, n_boot=50)
    np.testing.assert_array_equal(a, b)
    assert 0.01 < a[:, 0].std() < 1.0


def test_score_cell_by_hand():
    runs = _cell_runs()
    i = np.arange(10)
    draws = xr.Dataset({"log_lr_opt": ("draw", LOG_LR + 0.1 * (i - 3) + 0.05),
                        "log_batch_tokens_opt": ("draw", LOG_B + 0.1 * (i + 1)),
                        "loss_opt": ("draw", LOSS_OPT * (1.005 + 0.01 * (i - 3)))})
    observed = runs["loss"].to_numpy()
    loss_draws = observed + np.array([-0.2, -0.1, 0.1, 0.2])[:, None]
    loss_draws[:, 0] += 1.0  # every draw above run 0's loss
    row, table = score_cell(draws, runs, loss_draws, window=0.05)
    # medians: lr offset 0.2, batch 0.55; the cell's optimum is at offset 0
    assert row["regret_pct"] == pytest.approx(100 * (_bowl(0.2, 0.55) - 2) / 2, rel=1e-9)
    assert row["regret_pct"] == pytest.approx(1.23125, rel=1e-9)
    assert row["lr_pit"] == pytest.approx(0.3) and row["batch_pit"] == 0.0
    # lr: 50% [-0.025, 0.425], 90% [-0.205, 0.605] around 0; batch: 90% from 0.145
    assert row["lr_in50"] and row["lr_in90"] and not row["batch_in90"]
    assert row["lr_lo50"] == pytest.approx(np.exp(LOG_LR - 0.025))
    assert row["batch_lo90"] == pytest.approx(np.exp(LOG_B + 0.145))
    assert row["loss_pred"] == pytest.approx(2.04) and row["loss_err_pct"] == pytest.approx(2.0)
    assert row["loss_pit"] == pytest.approx(0.3)
    assert row["ref_method"] == "quadratic, 1% window"
    # runs: 15 on the bowl; the diverged one and the one above the 5% window get no PIT
    assert table["censored"].tolist() == [False] * 15 + [True, True]
    assert table["pit"].iloc[0] == 0.0 and (table["pit"].iloc[1:15] == 0.5).all()
    assert table["pit"].iloc[15:].isna().all() and row["n_runs_pit"] == 15
    assert row["run_pit_mean"] == pytest.approx(7 / 15)


def _cells(n: int, in90: int, in50: int) -> pd.DataFrame:
    hit = lambda k: [True] * k + [False] * (n - k)  # noqa: E731
    return pd.DataFrame({"cell": [f"c{j}" for j in range(n)], "status": "scored",
                         "error": "", "diagnostics_ok": [False] + [True] * (n - 1),
                         **{f"{q}_in{p}": hit(k) for q in ("lr", "batch")
                            for p, k in ((90, in90), (80, in90), (50, in50))},
                         **{f"{q}_in90_point": hit(max(in90 - 5, 0)) for q in ("lr", "batch")},
                         "lr_ref_sd": 0.1, "batch_ref_sd": np.linspace(0.0, 0.2, n),
                         "regret_pct": np.linspace(0.0, 0.2, n), "loss_err_pct": 0.5,
                         "ref_method": "quadratic, 1% window"})


def test_coverage_and_verdict_text():
    assert consistent_range(33, 0.9) == (26, 33)  # scipy's binomial, two-sided 5%
    cells = _cells(33, in90=20, in50=33)
    cov = coverage_table(cells)
    assert len(cov) == 6 and (cov["n"] == 33).all()
    lines = verdict_lines(cells, cov)
    assert ("lr_opt: 90% intervals (with the optimum's own noise) contained the cell optimum "
            "in 20/33 cells (61%): too narrow (26-33 of 33 would be, at the 5% level)") in lines
    assert any(x.startswith("batch_opt: 50% intervals (with the optimum's own noise) contained "
                            "the cell optimum in 33/33 cells (100%): too wide") for x in lines)
    assert ("the cell optima are estimates: their bootstrap sd (median over cells, log units) "
            "lr_opt 0.100, batch_opt 0.100; the model's 90% intervals alone, without that "
            "noise, contained them in lr_opt 15/33, batch_opt 15/33 cells") in lines
    assert "regret of the predicted median (lr, batch) on each cell's own quadratic: mean " \
           "0.100% of the loss (median 0.100%, worst 0.200%)" in lines
    assert "1 of 33 refits failed their sampling diagnostics (diagnostics_ok False in the " \
           "table): c0" in lines
    ok = verdict_lines(_cells(33, 27, 16), coverage_table(_cells(33, 27, 16)))
    assert ok[0].endswith("(82%): consistent with nominal (26-33 of 33 would be, at the 5% "
                          "level)") and "90% intervals" in ok[0]
    failed = pd.concat([cells.iloc[:2], pd.DataFrame(
        [{"cell": "x", "status": "skipped", "error": "the only cell of arch 'moe'"}])])
    assert "skipped: x: the only cell of arch 'moe'" in verdict_lines(failed,
                                                                        coverage_table(failed))


def test_cells_to_hold_out():
    table = pd.DataFrame(index=[f"dense|web|N={n}" for n in range(6)])
    assert select_cells(table, None, 0) == list(table.index)
    three = select_cells(table, 3, seed=1)
    assert len(set(three)) == 3 and three == select_cells(table, 3, seed=1)
    assert three == [c for c in table.index if c in three]  # in the table's order
    assert select_cells(table, ["dense|web|N=4", "dense|web|N=1"], 0) == [
        "dense|web|N=1", "dense|web|N=4"]
    assert parse_cells("4") == 4 and parse_cells("a|b, c") == ["a|b", "c"]
    with pytest.raises(TargetError, match="no cell 'nope' in the posterior"):
        select_cells(table, ["nope"], 0)
    with pytest.raises(TargetError, match="the posterior has 6 cells"):
        select_cells(table, 7, 0)


# ----------------------------------------------------------------------------- fake refits
@pytest.fixture(scope="module")
def loco_case(sim_sweep, sim_truth):
    """A fake posterior of the simulated sweep's six dense cells and ONE MoE cell (so that it
    cannot be held out), and the cells to hold out: that MoE cell and two dense ones."""
    from bayes_scaling.testing import fake_posterior

    cells = sorted(sim_sweep.runs["cell"].unique())
    dense = [c for c in cells if c.startswith("dense")]
    moe = next(c for c in cells if c.startswith("moe"))
    sweep = sim_sweep.subset(sim_sweep.runs["cell"].isin([*dense, moe]).to_numpy())
    posterior = fake_posterior(sweep, truth=sim_truth, chains=2, draws=60, seed=3)
    return posterior, [moe, dense[1], dense[4]]


@pytest.fixture(scope="module")
def serial(loco_case, sim_truth):
    """The check of :func:`loco_case` in process (jobs=1), every refit call recorded."""
    from bayes_scaling.heldout.loco import check
    from bayes_scaling.testing import fake_refit

    posterior, chosen = loco_case
    calls, lines = [], []

    def recording_refit(sweep, spec, seed):
        posterior = fake_refit(sweep, spec, seed, truth=sim_truth)
        calls.append((sweep, spec, seed, posterior))
        return posterior

    result = check(posterior, chosen, seed=2, jobs=1, draws=40, chains=2,
                   refit=recording_refit, progress=lines.append)
    return result, calls, lines


def test_every_requested_cell_is_scored_once(loco_case, serial, sim_truth):
    from bayes_scaling.model.fit import posterior_cells, posterior_spec

    posterior, chosen = loco_case
    result, calls, lines = serial
    cells = result.cells.set_index("cell", drop=False)
    order = [c for c in posterior_cells(posterior).index if c in chosen]
    assert cells["cell"].tolist() == order  # once each, in the posterior's order
    assert cells.loc[chosen, "status"].tolist() == ["skipped", "scored", "scored"]
    assert "the only cell of arch 'moe'" in cells.loc[chosen[0], "error"]
    assert len(calls) == 2 and len(lines) == 3  # no refit for the skipped cell
    for (sweep, spec, seed, _), cell in zip(calls, [c for c in order if c != chosen[0]],
                                            strict=True):
        assert cell not in set(sweep.runs["cell"]) and sweep.runs["cell"].nunique() == 6
        assert spec.sampler["cores"] == 1 and spec.sampler["draws"] == 40 and seed == 2
    assert result.attrs["data_hash"] == posterior.attrs["data_hash"]
    assert posterior_spec(posterior).sampler["tune"] == "auto"
    assert result.attrs["sampler"] == {**posterior_spec(posterior).sampler, "draws": 40,
                                       "chains": 2, "cores": 1, "tune": REFIT_TUNE}
    assert cells.attrs["spec_hash"] == posterior.attrs["spec_hash"] == result.runs.attrs[
        "spec_hash"]
    assert set(result.runs["cell"]) == set(chosen[1:]) and result.runs["pit"].between(0, 1).any()
    assert sorted(x[:5] for x in lines) == ["[1/3]", "[2/3]", "[3/3]"]
    assert any(f"] {chosen[0]}: SKIPPED: the only cell of arch" in x for x in lines)
    assert sum("diagnostics" in x for x in lines) == 2
    # the truth is known: each held-out cell's own quadratic finds its true optimum (up to
    # the bowl's skew, which a symmetric quadratic cannot follow, and the runs' noise)
    scored = cells[cells["status"] == "scored"]
    for row in scored.itertuples():
        for name in ("lr", "batch"):
            true = float(sim_truth[f"log_{name}_opt"].sel(cell=row.cell))
            assert abs(np.log(getattr(row, f"{name}_ref")) - true) < 0.35


def test_scores_are_those_of_the_refit_predictive(loco_case, serial):
    """Wiring: the scores of a held-out cell are its refit posterior's prediction (same
    target and seed) and predictive losses, scored against its own runs."""
    from bayes_scaling.model.fit import posterior_runs
    from bayes_scaling.predict.loss import predict_loss
    from bayes_scaling.predict.predict import predict

    result, calls, _ = serial
    sweep, _, seed, refitted = calls[0]
    row = result.cells[result.cells["status"] == "scored"].iloc[0]
    assert row["cell"] not in set(sweep.runs["cell"]) | set(posterior_runs(refitted)["cell"])
    target = row[["arch", "data_mix", "n_params", "n_tokens", "seq_len"]].to_dict()
    draws = predict(refitted, pd.DataFrame([target]), seed=seed).draws.isel(target=0)
    log_lr = draws["log_lr_opt"].to_numpy().ravel()
    lo, hi = np.quantile(log_lr, [0.05, 0.95])
    assert row["lr_in90_point"] == (lo <= np.log(row["lr_ref"]) <= hi)
    assert row["lr_lo90"] == pytest.approx(np.exp(lo))
    fitted = posterior_runs(loco_case[0])
    mine = fitted[fitted["cell"] == row["cell"]].reset_index(drop=True)
    held = result.runs[result.runs["cell"] == row["cell"]]
    assert mine["run_id"].tolist() == held["run_id"].tolist()
    # judged with the reference's own bootstrap noise from the cell's runs
    noise = reference_noise(mine, seed)[:, 0]
    judged = score_optimum("lr", log_lr, np.log(row["lr_ref"]), noise, seed)
    assert row["lr_pit"] == pytest.approx(judged["lr_pit"])
    assert row["lr_in90"] == judged["lr_in90"] and row["lr_ref_sd"] == pytest.approx(np.std(noise))
    loss = predict_loss(refitted, mine, seed=seed).draws.to_numpy()
    j = int(np.flatnonzero(~held["censored"].to_numpy())[0])
    assert held["pit"].iloc[j] == pytest.approx(np.mean(loss[:, j] < mine["loss"].iloc[j]))


def test_coverage_counts_the_scored_cells(serial):
    result = serial[0]
    assert result.coverage["n"].eq(2).all()


def test_the_parallel_path_gives_the_serial_result(loco_case, serial, sim_truth):
    from bayes_scaling.heldout.loco import check
    from bayes_scaling.testing import fake_refit

    posterior, chosen = loco_case
    result = check(posterior, chosen, seed=2, jobs=2, draws=40, chains=2,
                   refit=functools.partial(fake_refit, truth=sim_truth))
    assert result.attrs["jobs"] == 2
    cols = [c for c in result.cells if c not in ("seconds",)]
    pd.testing.assert_frame_equal(result.cells[cols], serial[0].cells[cols])
    pd.testing.assert_frame_equal(result.runs, serial[0].runs)


# ----------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def posterior_file(loco_case, tmp_path_factory):
    from bayes_scaling.model.fit import save_posterior

    return save_posterior(loco_case[0], tmp_path_factory.mktemp("check") / "posterior.nc")


def test_cli_check_writes_table_results_and_figure(posterior_file, loco_case, sim_truth,
                                                   monkeypatch, tmp_path, capsys):
    from bayes_scaling.heldout import loco
    from bayes_scaling.present.cli import main
    from bayes_scaling.testing import fake_refit

    monkeypatch.setattr(loco, "refit_posterior", functools.partial(fake_refit, truth=sim_truth))
    cell = loco_case[1][1]
    out, figure = tmp_path / "check.csv", tmp_path / "calibration.png"
    code = main(["check", str(posterior_file), "--cells", cell, "--jobs", "1", "--draws", "30",
                 "--chains", "2", "--out", str(out), "--figure", str(figure)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "leave-one-cell-out check of" in stdout and "1 of 7 cells" in stdout
    assert f"[1/1] {cell}: " in stdout and "verdict:" in stdout
    assert ("lr_opt: 90% intervals (with the optimum's own noise) contained the cell optimum "
            "in ") in stdout
    table = pd.read_csv(out)
    assert table["cell"].tolist() == [cell] and table["status"].tolist() == ["scored"]
    assert len(pd.read_csv(tmp_path / "check.runs.csv")) == 24
    meta = json.loads((tmp_path / "check.meta.json").read_text())
    assert meta["attrs"]["seed"] == 0 and meta["verdict"] and len(meta["coverage"]) == 6
    assert figure.stat().st_size > 10_000
    code = main(["check", str(posterior_file), "--cells", cell, "--jobs", "1", "--draws", "30",
                 "--chains", "2", "--json"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout: one JSON object; progress on stderr
    assert code == 0 and f"[1/1] {cell}" in captured.err
    assert set(result) == {"attrs", "verdict", "coverage", "cells", "runs"}


@pytest.mark.parametrize(("args", "message"), [
    (["--cells", "nope"], "error: --cells: no cell 'nope' in the posterior"),
    (["--cells", "99"], "error: --cells 99: the posterior has 7 cells"),
    (["--out", "x.txt"], "error: --out x.txt: give a .csv or .json file"),
    (["--figure", "x.jpg"], "error: --figure x.jpg: give a .png or .svg or .pdf file"),
    (["--format", "steplaw"], "error: check: --format only apply with --prior"),
    (["--target-params", "7B"], "error: check: --target-params only apply with --prior"),
    (["--prior-sensitivity", "missing.toml"], "error: missing.toml: no such model spec file"),
])
def test_cli_check_user_errors_are_one_line(posterior_file, args, message, capsys, tmp_path,
                                            monkeypatch):
    from bayes_scaling.present.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["check", str(posterior_file), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err


def test_cli_check_errors_by_subprocess(run_cli, posterior_file, tmp_path):
    sweep = tmp_path / "sweep.csv"
    sweep.write_text("lr\n")
    for args, message in (
            ((tmp_path / "missing.nc",), "no such posterior file"),
            ((sweep,), "a sweep file; without --prior check needs the posterior file"),
            ((posterior_file, posterior_file), "give one posterior file"),
            ((sweep, "--prior", "--jobs", "2"), "check --prior: --jobs only apply to the "
                                                 "leave-one-cell-out check")):
        result = run_cli("check", *args, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ") and message in lines[0], lines[0]
