"""benchmarks/scalebench_pool.py without MCMC: the baselines' choices within a budget, the
budget schedule, the assembly of our picks from propose's ranking, R^2, the posterior file
names, the command line, and (with ../shared/data/scalebench) the pool and its target cell."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import scalebench_pool as sp  # noqa: E402

COST = np.array([5.0, 1.0, 3.0, 1.0, 8.0, 2.0])


@pytest.fixture(scope="module")
def scalebench() -> sp.Sweep:
    """The ScaleBench file read as a sweep; skips when ../shared/data/scalebench is absent."""
    if not sp.POOL_FILE.is_file():
        pytest.skip("../shared/data/scalebench is absent: this test reads the ScaleBench pool")
    return sp.read_pool_sweep()


def test_take_within_walks_the_order_and_skips_what_does_not_fit():
    assert sp.take_within([4, 0, 2, 1], COST, 9.0) == [4, 1]
    assert sp.take_within([0, 2, 1], COST, 9.0) == [0, 2, 1]
    assert sp.take_within([4], COST, 7.9) == []


def test_spend_limits_split_each_budget_step_and_end_on_the_checkpoints():
    limits = sp.spend_limits(1000.0, [0.1, 0.01, 0.05], 2)
    assert [b for _, b in limits] == [None, 0.01, None, 0.05, None, 0.1]
    assert np.allclose([lim for lim, _ in limits], [5, 10, 30, 50, 75, 100])
    assert sp.spend_limits(10.0, [0.5], 1) == [(5.0, 0.5)]


@pytest.mark.parametrize("strategy", ["random", "cheapest", "cost_random"])
def test_baselines_stay_within_the_budget_and_fill_it(strategy):
    cost = np.random.default_rng(1).lognormal(0, 1.5, 400)
    order = sp.preference_order(strategy, cost, np.random.default_rng(0))
    assert sorted(order) == list(range(len(cost)))
    budget = 0.1 * cost.sum()
    picks = sp.take_within(order, cost, budget)
    assert cost[picks].sum() <= budget
    left = np.setdiff1d(np.arange(len(cost)), picks)
    assert cost[left].min() > budget - cost[picks].sum()  # nothing else would have fitted


def test_cheapest_is_sorted_and_cost_random_prefers_cheap_runs():
    cost = np.repeat([1.0, 100.0], 200)
    assert list(sp.preference_order("cheapest", COST, None)) == [1, 3, 5, 2, 0, 4]
    first = sp.preference_order("cost_random", cost, np.random.default_rng(0))[:100]
    assert (cost[first] == 1.0).mean() > 0.9
    first = sp.preference_order("random", cost, np.random.default_rng(0))[:100]
    assert 0.3 < (cost[first] == 1.0).mean() < 0.7
    with pytest.raises(ValueError, match="not a baseline"):
        sp.preference_order("value", COST, np.random.default_rng(0))


def test_our_picks_are_the_greedy_selection_then_the_ranking_within_budget():
    ranked = pd.DataFrame({"pool_row": [3, 1, 0, 5, 2, 4],
                           "selected": [True, True, False, False, False, False]})
    assert sp.picks_from_ranking(ranked, COST, 10.0) == [3, 1, 0, 5]
    assert sp.picks_from_ranking(ranked, COST, 1.5) == [3]


def test_r_squared():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert sp.r_squared(y, y) == 1.0
    assert sp.r_squared(y, np.full(4, y.mean())) == 0.0
    assert sp.r_squared(y, y + 1.0) == pytest.approx(1 - 4 / 5)


def test_posterior_file_names():
    assert sp.posterior_path(Path("d"), "value", 0.01, 0) == Path("d/value-0.01-seed0.nc")
    assert sp.posterior_path(Path("d"), "cost_random", 0.1, 4).name == "cost_random-0.1-seed4.nc"


def test_command_line():
    args = sp.parse_args(["--strategies", "value,random", "--budgets", "0.1,0.01"])
    assert args.strategies == ["value", "random"] and args.budgets == [0.01, 0.1]
    args = sp.parse_args(["--target", "1B,20B", "--whole-pool", "--save-posteriors", "x"])
    assert args.target == (1e9, 2e10) and args.save_posteriors == Path("x")
    for bad in (["--target", "1e9,2e10"], ["--whole-pool"], ["--strategies", "grid"],
                ["--budgets", "2"], ["--target", "1e9", "--whole-pool"]):
        with pytest.raises(SystemExit):
            sp.parse_args(bad)


def test_the_pool_and_its_internal_target(scalebench):
    runs = scalebench.runs
    assert len(runs) == 2702 and runs["cell"].nunique() == 41
    assert (runs["batch_tokens"] == runs["batch_seqs"] * 2048).all()
    n, d = sp.largest_cell(runs)
    assert n == pytest.approx(1.07e9, rel=0.01) and d == pytest.approx(5.69e10, rel=1e-3)
    assert sp.in_cell(runs, n, d).sum() == 47
    assert sp.run_costs(runs).sum() == pytest.approx(1.68e23, rel=0.01)
    stand_in = sp.in_cell(runs, sp.STAND_IN["n_params"], sp.STAND_IN["n_tokens"], rtol=0.5)
    assert not stand_in.any()  # the prior's stand-in cell is far from every pool cell
