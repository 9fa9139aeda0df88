"""`report` and `propose` pick the same next runs for the same options (issue 11, item 6).

Both commands run in-process on a fake posterior (no sampling) with the same target, -k,
--budget-flops and seed (the objective: the default of both, 'value'; `report` has no
--objective). The report's figures and regret grid are stubbed out: they do not take part in
the selection and are slow to draw; its proposals are taken from the plan it renders.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import warnings
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest

from bayes_scaling.design.propose import propose
from bayes_scaling.present import cli_args
from bayes_scaling.present.cli import build_parser, main
from bayes_scaling.present.text import propose_records

N, D, ARCH = "4e9", "8e10", "dense"


def _run(*args: object) -> str:
    """``main(args)`` in this process; its stdout (exit 0 asserted)."""
    out, err = io.StringIO(), io.StringIO()
    with (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          warnings.catch_warnings()):  # main replaces showwarning: restore it after
        code = main([str(a) for a in args])
    assert code == 0, err.getvalue()
    return out.getvalue()


def _options(k: int, budget: float | None, seed: int) -> list[object]:
    return ["-k", k, "--seed", seed, *([] if budget is None else ["--budget-flops", budget])]


def propose_picks(path: Path, k: int, budget: float | None, seed: int) -> dict:
    """What `propose --json` prints."""
    return json.loads(_run("propose", path, "--target-params", N, "--target-tokens", D,
                           "--arch", ARCH, *_options(k, budget, seed), "--json"))


def report_proposals(path: Path, out: Path, k: int, budget: float | None,
                     seed: int) -> pd.DataFrame:
    """The ranked proposal table the `report` page is rendered from."""
    plans = []

    def render(plan) -> str:
        plans.append(plan)
        return "<html></html>"

    with (mock.patch("bayes_scaling.present.plots.make_figures", return_value={}),
          mock.patch("bayes_scaling.present.plots.regret_grid", return_value=None),
          mock.patch("bayes_scaling.present.report.render_plan", render)):
        _run("report", path, "--out", out, "--params", N, "--tokens", D, "--arch", ARCH,
             *_options(k, budget, seed))
    assert len(plans) == 1
    target = plans[0].first
    assert (target["arch"], target["n_params"], target["n_tokens"]) == (ARCH, float(N), float(D))
    return plans[0].proposals


# 1e18 binds on this posterior: without it the 2 picks cost 1.2e18
@pytest.mark.parametrize(("k", "budget", "seed"), [(2, 1e18, 5), (3, None, 0)])
def test_report_and_propose_pick_the_same_runs(cli_posterior_path, tmp_path, k, budget, seed):
    shown = propose_picks(cli_posterior_path, k, budget, seed)
    table = report_proposals(cli_posterior_path, tmp_path / "r.html", k, budget, seed)
    picks = table[table["selected"]]
    assert shown["runs"], "no pick: the comparison would be empty"
    assert json.loads(json.dumps(propose_records(picks))) == shown["runs"]  # rows, order, costs
    assert (table.attrs["spent_flops"], table.attrs["verdict"], table.attrs["objective"]) == (
        shown["spent_flops"], shown["verdict"], shown["objective"])
    assert picks["group"].nunique() <= k
    if budget is not None:
        assert picks.drop_duplicates("group")["group_cost_flops"].sum() <= budget


def test_both_commands_take_the_same_selection_options():
    parser = build_parser()
    common = ["-k", "2", "--budget-flops", "1e19", "--seed", "4"]
    chosen = [parser.parse_args(["propose", "p.nc", "--target-params", N, "--target-tokens", D,
                                 "--arch", ARCH, *common]),
              parser.parse_args(["report", "p.nc", "--out", "r.html", *common])]
    assert {(a.k, a.budget_flops, a.seed) for a in chosen} == {(2, 1e19, 4)}
    # what `report` leaves at propose()'s defaults, `propose` sets from cli_args: the same
    defaults = inspect.signature(propose).parameters
    assert chosen[0].objective == defaults["objective"].default
    assert cli_args.PROPOSE_DRAWS == defaults["n_draws"].default
    assert cli_args.PROPOSE_OUTCOMES == defaults["n_outcomes"].default
