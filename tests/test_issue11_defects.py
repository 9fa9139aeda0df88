"""Issue 11's measured defects that had no test of their own (the others are tested where
their fix lives: test_reading, test_reading_cli, test_warnings, test_posterior_file,
test_diagnose, test_api, test_cli_propose, test_report_propose_selection, ...).

No sampling here: fake posteriors (bayes_scaling.testing.fake_posterior), the toy posterior
of test_design, and ``fit`` replaced by a stub where only its header is tested.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import subprocess
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.design.propose import propose
from bayes_scaling.model.fit import load_posterior, save_posterior
from bayes_scaling.present.cli import main
from bayes_scaling.present.text import picks_table

DATA = Path(__file__).parent / "data"
TARGET = {"arch": "dense", "data_mix": "web", "n_params": 4e9, "n_tokens": 8e10}
PROPOSE = ["--target-params", "4e9", "--target-tokens", "8e10", "--arch", "dense"]
FAST = {"k": 3, "seed": 5, "n_draws": 200, "n_outcomes": 8}
FAST_FLAGS = ["-k", "3", "--seed", "5", "--draws", "200", "--outcomes", "8"]


def run_main(*args: object) -> subprocess.CompletedProcess:
    """The command line's ``main`` in this process: exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]
    with (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          warnings.catch_warnings()):  # main replaces showwarning: restore it after
        warnings.simplefilter("always")
        code = main(argv)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def ranked(cli_posterior_path) -> pd.DataFrame:
    """propose() on the CLI's fake posterior (dense + MoE), -k 3, by value (the default)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return propose(load_posterior(cli_posterior_path), TARGET, **FAST)


# ----------------------------------------------------------------------------- fit header
def test_fit_reads_with_column_flags_and_prints_the_sampler_settings_it_uses(monkeypatch,
                                                                            tmp_path):
    """`fit` takes --column maps (d08d91e: only `validate` did), and its header shows the
    sampler settings it passes on (d08d91e printed the spec's 1000 draws ... whatever
    --draws/--tune/--chains said). The sampler itself is replaced by a stub."""
    import bayes_scaling.model.fit as model_fit

    class Sampled(Exception):
        pass

    def fake_fit(sweep, spec, **kwargs):
        raise Sampled(sweep, spec)

    monkeypatch.setattr(model_fit, "fit", fake_fit)
    maps = ["Name=run_id", "State=status", "config.model_params=n_params",
            "config.tokens=n_tokens", "config.learning_rate=lr", "config.batch_size=batch_seqs",
            "config.seq_len=seq_len", "config.weight_decay=weight_decay",
            "summary.final_loss=loss"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(Sampled) as info:
        main(["fit", str(DATA / "wandb_export.csv"), *[x for m in maps for x in ("--column", m)],
              "--draws", "123", "--tune", "45", "--chains", "3", "--out", str(tmp_path / "p.nc")])
    sweep, spec = info.value.args
    assert len(sweep.runs) == 61 and len(sweep.cells()) == 4  # 66 rows, 5 not finished
    header = next(x for x in out.getvalue().splitlines() if x.startswith("model: "))
    for setting in ("'draws': 123", "'tune': 45", "'chains': 3"):
        assert setting in header, header
    assert (spec.sampler["draws"], spec.sampler["tune"], spec.sampler["chains"]) == (123, 45, 3)


# ----------------------------------------------------------------------------- posteriors
@pytest.fixture(scope="module")
def failed_path(fake_post, tmp_path_factory) -> Path:
    bad = fake_post.copy()
    bad.attrs.update(diagnostics_ok=0, created="issue 11: a failed posterior",
                     diagnostics="diagnostics PROBLEMS:\n  - 12 divergent transition(s) out "
                                 "of 600 draws")
    return save_posterior(bad, tmp_path_factory.mktemp("failed") / "failed.nc")


def _warning_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [x for x in result.stderr.splitlines() if x.startswith("warning:")]


def test_propose_warns_once_on_a_failed_posterior(failed_path, monkeypatch):
    monkeypatch.setattr(importlib.import_module("bayes_scaling.predict.draws"), "_WARNED", set())
    lines = _warning_lines(run_main("propose", failed_path, *PROPOSE, "--draws", "100",
                                    "--outcomes", "4"))
    assert len(lines) == 1 and "failed its sampling diagnostics" in lines[0]
    assert "12 divergent transition" in lines[0]


def test_report_warns_once_on_a_failed_posterior(failed_path, monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.import_module("bayes_scaling.predict.draws"), "_WARNED", set())
    nothing = pd.DataFrame({"selected": [False]})  # proposals: not what is tested here
    nothing.attrs["verdict"] = "nothing is worth running"
    with (mock.patch("bayes_scaling.design.propose.propose", return_value=nothing),
          mock.patch("bayes_scaling.present.plots.make_figures", return_value={}),
          mock.patch("bayes_scaling.present.plots.regret_grid", return_value=None),
          mock.patch("bayes_scaling.present.report.render_plan", return_value="<html/>")):
        result = run_main("report", failed_path, "--out", tmp_path / "r.html", "--params",
                          "4e9", "--tokens", "8e10", "--arch", "dense")
    lines = _warning_lines(result)
    assert len(lines) == 1 and "failed its sampling diagnostics" in lines[0]


def test_report_on_a_posterior_without_its_runs_group_is_one_error_line(cli_posterior_path,
                                                                         tmp_path):
    """d08d91e: a traceback."""
    import h5py

    path = tmp_path / "no_runs.nc"
    path.write_bytes(cli_posterior_path.read_bytes())
    with h5py.File(path, "r+") as handle:
        del handle["runs"]
    with mock.patch("bayes_scaling.present.report.build_report", return_value=("", None)):
        line = one_error_line(run_main("report", path, "--out", tmp_path / "r.html"))
    assert str(path) in line and "'runs'" in line


def test_predict_notes_a_target_far_beyond_the_data(cli_posterior_path):
    """The issue's 1e13 parameters, through the command line."""
    result = run_main("predict", cli_posterior_path, "--params", "1e13", "--tokens", "2e13",
                      "--arch", "dense")
    assert result.returncode == 0, result.stderr
    assert re.search(r"target N = 1e\+13 is \S+x the largest fitted", result.stdout), (
        result.stdout)


# ----------------------------------------------------------------------------- proposals
def test_propose_prints_one_row_per_pick_in_selection_order(cli_posterior_path):
    """-k 3 printed 8 or 17 rows at d08d91e (one per run of each picked mini-sweep, rank 1
    repeated on each): now one row per picked group, with its number of runs. By total
    information gain, which picks mini-sweeps (by value per FLOP, single runs may win)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked = propose(load_posterior(cli_posterior_path), TARGET, objective="total", **FAST)
    picks = ranked[ranked["selected"]]
    groups = list(picks["group"].drop_duplicates())
    sizes = picks.groupby("group").size()
    assert 1 <= len(groups) <= 3 and sizes.max() > 1  # a mini-sweep among the picks
    result = run_main("propose", cli_posterior_path, *PROPOSE, *FAST_FLAGS, "--objective",
                      "total")
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("picked, in selection order")[1].split("next best:")[0]
    rows = [line.split() for line in table.strip().splitlines()[2:] if line.strip()]
    assert [r[1] for r in rows] == groups  # one row each, in selection order
    assert [int(r[0]) for r in rows] == list(range(1, len(groups) + 1))  # rank
    assert [int(r[4]) for r in rows] == [sizes[g] for g in groups]  # its runs


def _propose_with_a_budget(path: Path, objective: str) -> pd.DataFrame:
    """propose() on the CLI's fake posterior, -k 3 within 3e18 FLOPs (the picks cost 1.35e18:
    the budget does not bind, but it made d08d91e's default objective, 'auto', run and mix
    two greedy paths)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return propose(load_posterior(path), TARGET, budget_flops=3e18, objective=objective,
                       **FAST)


def test_one_rank_per_group_picks_first_then_by_score(cli_posterior_path):
    """Every run of a group shares its rank and no two groups share one; the picks come
    first, in selection order; the other groups follow by score within each scoring tier
    (re-scored by reweighting, then screened only), and every score is in one unit (value
    per FLOP), so the alternatives `propose` lists are in score order. d08d91e's default,
    'auto' with a budget, ranked nats per FLOP and nats in one table."""
    from bayes_scaling.present.text import propose_result

    ranked = _propose_with_a_budget(cli_posterior_path, "value")
    per_group = ranked.groupby("group", sort=False)["rank"]
    assert (per_group.nunique() == 1).all()
    groups = ranked.drop_duplicates("group")
    assert groups["rank"].is_unique and groups["rank"].is_monotonic_increasing
    picks = groups[groups["selected"]]
    assert picks["rank"].tolist() == list(range(1, len(picks) + 1))
    scored = groups[groups["score"].notna()]
    assert np.allclose(scored["score"], scored["value_flops"] / scored["group_cost_flops"],
                       rtol=1e-9, atol=0)
    for tier, g in groups[~groups["selected"]].groupby("scored_by"):
        assert g["score"].dropna().is_monotonic_decreasing, tier
    shown = pd.DataFrame(propose_result(ranked, TARGET, 3, 3e18)["alternatives"])
    assert shown.drop_duplicates("group")["score"].is_monotonic_decreasing


def test_auto_objective_with_a_budget_ranks_by_one_score(cli_posterior_path):
    """d08d91e ranked the per_flop path's rows (nats per FLOP) and the total path's (nats) in
    one table; now every score is in one unit, named in the table's attrs."""
    ranked = _propose_with_a_budget(cli_posterior_path, "auto")
    groups = ranked.drop_duplicates("group")
    g = groups[groups["score"].notna()]
    per_flop = np.isclose(g["score"], g["eig_nats"] / g["group_cost_flops"], rtol=1e-9, atol=0)
    total = np.isclose(g["score"], g["eig_nats"], rtol=1e-9, atol=0)
    assert per_flop.all() or total.all()
    assert ranked.attrs["score_label"].endswith("(nats/FLOP)")
    picks = groups[groups["selected"]]
    assert picks["rank"].tolist() == list(range(1, len(picks) + 1))
    for tier, rest in groups[~groups["selected"]].groupby("scored_by"):
        assert rest["score"].dropna().is_monotonic_decreasing, tier


def _uninformative(toy) -> pd.DataFrame:
    """test_design's candidates that say nothing about the target: runs that all diverge,
    and runs in the cell the posterior already pins down (information gain about -2e-10
    nats, so below zero)."""
    from test_design import _candidates

    cands = _candidates(toy)
    return cands[cands["group"].isin(["diverging", "fitted_cell", "fitted_cell_high_lr"])]


def test_no_pick_without_an_expected_benefit():
    """d08d91e picked the best of whatever was left, a negative information gain too; by
    value (the default) nothing is picked and the verdict says so."""
    from test_design import TARGET as TOY_TARGET
    from test_design import _toy_posterior

    toy = _toy_posterior()
    cands = _uninformative(toy)
    out = propose(toy, TOY_TARGET, candidates=cands, k=2, seed=0, n_outcomes=8)
    assert (out.drop_duplicates("group")["eig_nats"] <= 0).any()  # the case of the issue
    assert not out["selected"].any()
    assert out.attrs["verdict"].startswith("nothing is worth running")


@pytest.mark.parametrize("objective", ["per_flop", "total", "auto"])
def test_no_pick_without_information_by_the_information_objectives(objective):
    """d08d91e: the information objectives picked whatever was left, a negative information
    gain too; now they stop, and the verdict says so as the value objective's does."""
    from test_design import TARGET as TOY_TARGET
    from test_design import _toy_posterior

    toy = _toy_posterior()
    out = propose(toy, TOY_TARGET, candidates=_uninformative(toy), k=2, seed=0,
                  n_outcomes=8, objective=objective)
    assert (out.loc[out["selected"], "eig_nats"] > 0).all()
    assert not out["selected"].any()  # none of these has a positive gain
    assert out.attrs["verdict"].startswith("nothing is worth running: no candidate is "
                                           "expected to tell anything"), out.attrs["verdict"]


def test_report_and_demo_print_one_row_per_pick(ranked):
    """d08d91e: one row per run, the group's rank and gain repeated on each; now the rows
    `propose` prints (one per pick, its runs counted)."""
    from bayes_scaling.present.text import groups_text

    picks = ranked[ranked["selected"]]
    rows = picks_table(ranked).splitlines()[2:]  # the verdict, the header, then the rows
    assert len(rows) == picks["group"].nunique()
    assert picks_table(ranked).split("\n", 1)[1] == groups_text(picks)
    assert [r.split()[1] for r in rows] == list(picks["group"].drop_duplicates())


def test_propose_prints_the_targets_intervals_now_and_after_each_pick(ranked,
                                                                      cli_posterior_path):
    """Issue 11, build item 6: per pick, the target's optimal lr and batch as median [90%
    interval] now -> the expected 90% interval after, in natural units."""
    from bayes_scaling.present.plots_common import fmt_value

    now = ranked.attrs["target_now"]
    picks = ranked[ranked["selected"]].drop_duplicates("group")
    result = run_main("propose", cli_posterior_path, *PROPOSE, *FAST_FLAGS)
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("picked, in selection order")[1].split("next best:")[0]
    rows = [line for line in table.strip().splitlines()[2:] if line.strip()]
    assert len(rows) == len(picks)
    f = lambda x: fmt_value(x, 2)  # noqa: E731
    for row, (_, pick) in zip(rows, picks.iterrows(), strict=True):
        for q in ("lr", "batch"):
            lo, hi, median = pick[f"{q}_lo90_after"], pick[f"{q}_hi90_after"], now[q]["median"]
            assert lo < median < hi
            assert np.log(hi / lo) == pytest.approx(pick[f"{q}_width90_after"])
            shown = (f"{f(median)} [{f(now[q]['lo90'])}, {f(now[q]['hi90'])}] -> "
                     f"[{f(lo)}, {f(hi)}]")
            assert shown in row, (shown, row)
    assert 5e-5 < now["lr"]["median"] < 1e-2 and 1e4 < now["batch"]["median"] < 1e8


def test_proposals_figure_legend_and_pick_list_leave_the_picks_visible(ranked,
                                                                        cli_posterior_path):
    """The picks of -k 3 (at d08d91e the third sat under the pick list) and a pool's
    over-trained small run (N = 5e7, D = 1e11: the upper left corner, under d08d91e's
    legend); picks at one (N, D) share one circle."""
    from bayes_scaling.present.plots_common import close
    from bayes_scaling.present.plots_target import plot_proposals

    extra = ranked.iloc[[0]].assign(group="pool:overtrained", n_params=5e7, n_tokens=1e11,
                                    selected=True)
    proposals = pd.concat([ranked, extra], ignore_index=True)
    proposals.attrs = dict(ranked.attrs)
    fig = plot_proposals(load_posterior(cli_posterior_path), proposals, pd.DataFrame([TARGET]))
    try:
        ax = fig.axes[0]
        renderer = fig.canvas.get_renderer()
        covers = [ax.get_legend().get_window_extent(renderer)]
        covers += [t.get_window_extent(renderer) for t in ax.texts if "\n" in t.get_text()]
        numbers = [t for t in ax.texts if "\n" not in t.get_text()]
        spots = [xy for c in ax.collections
                 if c.get_label() in ("proposed next runs (pick order)", "_pick")
                 for xy in ax.transData.transform(c.get_offsets())]
        picked = proposals[proposals["selected"]]
        places = {(round(np.log10(n), 3), round(np.log10(d), 3))
                  for n, d in zip(picked["n_params"], picked["n_tokens"], strict=True)}
        assert len(spots) == len(places) >= 2 and numbers  # one circle per place
        hidden = [f"pick at {xy.round()}" for xy in spots for box in covers
                  if box.contains(*xy)]
        hidden += [f"number {t.get_text()!r}" for t in numbers for box in covers
                   if box.overlaps(t.get_window_extent(renderer))]
        assert not hidden, hidden
    finally:
        close(fig)
