"""Next-run selection on a hand-made toy posterior where the answer is known."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_scaling.design.candidates import (
    CandidateError,
    as_candidates,
    default_candidates,
    new_cell,
    target_effects,
)
from bayes_scaling.design.propose import propose
from bayes_scaling.model import core
from bayes_scaling.model.fit import frame_to_dataset
from bayes_scaling.model.spec import default_spec
from bayes_scaling.predict.draws import Draws, draw_new_cells
from bayes_scaling.predict.regret import expected_regret

S = 400
CELL = "dense|web|N=1e+08|D=2e+09|S=2048"
TARGET = {"arch": "dense", "data_mix": "web", "n_params": 1e10, "n_tokens": 2e11}
NEAR = (4e9, 8e10)
"""A new cell 2.5x below the target: its optimum moves with the uncertain a_n like the
target's (both far from N_REF), so a mini-sweep there pins the target down."""


def _toy_posterior() -> xr.DataTree:
    """One arch, one mix, one fitted cell; the only real uncertainty is the lr exponent a_n
    (sd 0.3), which the fitted cell (at N = 1e8, its draws held fixed) says nothing about."""
    rng = np.random.default_rng(0)
    one = lambda v: (("chain", "draw"), np.full((1, S), float(v)))  # noqa: E731
    arch = lambda v: (("chain", "draw", "arch"), np.asarray(v, float).reshape(1, S, 1))  # noqa: E731
    am = lambda v: (("chain", "draw", "arch", "mix"), np.full((1, S, 1, 1), float(v)))  # noqa: E731
    cell = lambda v: (("chain", "draw", "cell"), np.full((1, S, 1), float(v)))  # noqa: E731
    post = xr.Dataset(
        {"a_n": arch(-0.7 + 0.3 * rng.standard_normal(S)), "a_d": arch(np.full(S, 0.3)),
         "b_n": arch(np.zeros(S)), "b_d": arch(np.full(S, 0.57)),
         "l_n": arch(np.full(S, -0.035)), "l_d": arch(np.full(S, -0.03)),
         "c_eta": am(-6.4), "c_batch": am(13.9), "c_loss": am(0.73),
         "c_eta_arch": arch(np.full(S, -6.4)), "c_batch_arch": arch(np.full(S, 13.9)),
         "c_loss_arch": arch(np.full(S, 0.73)),
         "sd_mix_c_eta": one(0.1), "sd_mix_c_batch": one(0.1), "sd_mix_c_loss": one(0.01),
         "c_tau": one(np.log(0.2)), "g_tpp": one(-0.5),
         "sigma_cell_lr": one(0.05), "sigma_cell_batch": one(0.05),
         "sigma_cell_tau": one(0.1), "sigma_cell_loss": one(0.002),
         "mu_log_chol_diag": (("chain", "draw", "arch", "dim"),
                              np.log(np.tile([0.3, 0.21], (1, S, 1, 1)))),
         "sd_log_chol_diag": (("chain", "draw", "dim"), np.full((1, S, 2), 0.05)),
         "chol_offdiag": (("chain", "draw", "arch", "offdiag"), np.full((1, S, 1, 1), 0.05)),
         "skew": arch(np.full(S, 0.15)), "noise": arch(np.full(S, 0.005)),
         "log_lr_opt": cell(-5.5), "log_batch_opt": cell(11.0),
         "log_weight_decay_opt": cell(-2.3), "loss_opt": cell(3.0),
         "chol_diag": (("chain", "draw", "cell", "dim"), np.tile([0.3, 0.21], (1, S, 1, 1)))},
        coords={"chain": [0], "draw": np.arange(S), "arch": ["dense"], "mix": ["web"],
                "cell": [CELL], "dim": ["lr", "batch"], "offdiag": ["batch~lr"]})
    cells = pd.DataFrame({"cell_id": [CELL], "arch": ["dense"], "data_mix": ["web"],
                          "n_params": [1e8], "n_tokens": [2e9], "seq_len": [2048],
                          "best_loss": [3.0], "edge": [3.06], "has_wd": [False]})
    tree = xr.DataTree.from_dict({"posterior": post,
                                  "cells": frame_to_dataset(cells, "cell_row")})
    tree.attrs.update(spec_json=default_spec().to_json(), dims=json.dumps(["lr", "batch"]))
    return tree


@pytest.fixture(scope="module")
def toy() -> xr.DataTree:
    return _toy_posterior()


def _line(group: str, n: float, d: float, log_lr: float, log_b: float,
          offsets: tuple[float, ...] = (-0.6, 0.0, 0.6), cost_factor: float = 1.0) -> list[dict]:
    return [{"group": group, "arch": "dense", "data_mix": "web", "n_params": n, "n_tokens": d,
             "lr": float(np.exp(log_lr + o)), "batch_tokens": float(np.exp(log_b)),
             "cost_flops": cost_factor * 6 * n * d} for o in offsets]


def _candidates(toy: xr.DataTree) -> pd.DataFrame:
    d = Draws.from_posterior(toy, None, 0)
    opt = np.median(new_cell(d, "dense", "web", *NEAR, 8).opt.reshape(-1, 2), axis=0)
    rows = (_line("near", *NEAR, *opt)
            + _line("near_10x_cost", *NEAR, *opt, cost_factor=10.0)
            # far above the optimum: every run diverges, so the cell gives no finite loss
            + _line("diverging", *NEAR, *opt, offsets=(3.5, 4.0, 4.5))
            + _line("fitted_cell", 1e8, 2e9, -5.5, 11.0)
            + _line("fitted_cell_high_lr", 1e8, 2e9, -5.5, 11.0, offsets=(1.5,)))
    return pd.DataFrame(rows)


def _by_group(ranked: pd.DataFrame) -> pd.DataFrame:
    return ranked.drop_duplicates("group").set_index("group")


def test_the_informative_candidate_ranks_first(toy):
    ranked = propose(toy, TARGET, candidates=_candidates(toy), seed=0, n_outcomes=16,
                     objective="per_flop")
    g = _by_group(ranked)
    assert g.index[0] == "near" and bool(g.loc["near", "selected"])
    assert g.loc["near", "eig_nats"] > 0.5
    assert g.loc["near", "lr_width90_after"] < 0.6 * g.loc["near", "lr_width90_before"]
    # runs that blow up, and a cell whose optimum is already known, say (almost) nothing
    for name in ("diverging", "fitted_cell", "fitted_cell_high_lr"):
        assert abs(g.loc[name, "eig_nats"]) < 0.02 * g.loc["near", "eig_nats"], name


def test_ten_times_the_cost_ranks_lower(toy):
    g = _by_group(propose(toy, TARGET, candidates=_candidates(toy), seed=0, n_outcomes=16,
                          objective="per_flop"))
    assert g.loc["near_10x_cost", "rank"] > g.loc["near", "rank"]
    # same cell, same simulated outcomes: the same information at a tenth of the score
    assert g.loc["near_10x_cost", "eig_nats"] == pytest.approx(g.loc["near", "eig_nats"])
    assert g.loc["near_10x_cost", "score"] == pytest.approx(g.loc["near", "score"] / 10)


@pytest.mark.parametrize("objective", ["auto", "per_flop", "total", "value"])
def test_budget_is_never_exceeded(toy, objective):
    cands = _candidates(toy)
    if objective == "value":  # runs cheap enough to be worth their cost
        cands["cost_flops"] *= 1e-6
    cost = cands.groupby("group")["cost_flops"].sum()
    budget = 1.5 * cost["near"]
    ranked = propose(toy, TARGET, candidates=cands, budget_flops=budget, k=4, seed=1,
                     n_outcomes=8, objective=objective)
    chosen = ranked.loc[ranked["selected"], "group"].unique()
    assert 1 <= len(chosen) <= 4
    assert cost[chosen].sum() <= budget
    assert ranked.attrs["spent_flops"] == pytest.approx(cost[chosen].sum())
    assert "near_10x_cost" not in chosen
    assert (ranked.loc[ranked["group"] == "near_10x_cost", "scored_by"] == "over budget").all()


def test_a_budget_below_every_candidate_is_a_clear_error(toy):
    cands = _candidates(toy)
    cheapest = cands.groupby("group")["cost_flops"].sum().min()
    with pytest.raises(CandidateError, match="below the cheapest candidate") as err:
        propose(toy, TARGET, candidates=cands, budget_flops=1.0, k=2)
    assert f"({cheapest:.3g} FLOPs)" in str(err.value)


def test_scores_are_reproducible_with_a_seed(toy):
    run = lambda seed: propose(toy, TARGET, candidates=_candidates(toy), k=2,  # noqa: E731
                               seed=seed, n_outcomes=8, objective="per_flop")
    a, b, c = run(3), run(3), run(4)
    pd.testing.assert_frame_equal(a, b)
    assert _by_group(a).loc["near", "eig_nats"] != _by_group(c).loc["near", "eig_nats"]


def test_value_is_the_drop_in_expected_regret_priced_in_target_flops(toy):
    """regret_before_pct (1/2 tr(H Sigma)) against an independent evaluation: the exact
    expected regret (skewed bowl, every draw) of the posterior mean choice; the value in
    target FLOPs by the loss law (l_d = -0.03 in the toy): 6ND (exp(value / 0.03) - 1)."""
    ranked = propose(toy, TARGET, candidates=_candidates(toy), seed=0, n_outcomes=16)
    g = _by_group(ranked)
    cells = draw_new_cells(toy, TARGET, seed=0).isel(target=0)
    choice = {q: float(np.exp(cells[f"log_{q}_opt"].mean())) for q in ("lr", "batch")}
    exact = expected_regret(toy, TARGET, lr=choice["lr"], batch_tokens=choice["batch"])
    assert g.loc["near", "regret_before_pct"] == pytest.approx(
        float(exact["expected_regret_pct"][0]), rel=0.15)
    near = g.loc["near"]
    assert 0 < near["value_pct"] <= near["regret_before_pct"]
    assert near["regret_after_pct"] == pytest.approx(near["regret_before_pct"]
                                                     - near["value_pct"])
    flops = 6 * TARGET["n_params"] * TARGET["n_tokens"]
    assert near["value_flops"] == pytest.approx(
        flops * np.expm1(near["value_pct"] / 100 / 0.03), rel=1e-6)


def test_stopping_rule_nothing_worth_its_cost(toy):
    """The near mini-sweep costs 3 x 6 x 4e9 x 8e10 FLOPs, half the target's compute: by
    value nothing is worth running (said plainly), though it is the most informative; at a
    millionth of the cost it is selected and worth it."""
    cands = _candidates(toy)
    ranked = propose(toy, TARGET, candidates=cands, seed=0, n_outcomes=16, k=2)
    g = _by_group(ranked)
    assert not ranked["selected"].any() and not g["worth_running"].fillna(False).any()
    assert ranked.attrs["verdict"].startswith("nothing is worth running")
    cheap = propose(toy, TARGET, candidates=cands.assign(cost_flops=cands["cost_flops"] * 1e-6),
                    seed=0, n_outcomes=16, k=1)
    gc = _by_group(cheap)
    assert bool(gc.loc["near", "selected"]) and bool(gc.loc["near", "worth_running"])
    assert cheap.attrs["verdict"].startswith("run the 1 selected group")
    assert cheap.attrs["regret_after_pct"] < cheap.attrs["regret_before_pct"]


def test_with_a_budget_value_takes_the_better_of_per_flop_and_plain_greedy(toy):
    """Greedy on value per FLOP alone takes a cheap part of a mini-sweep (two of its three
    runs at a fiftieth of the cost) and leaves most of the budget unspent; with a budget the
    selection is the better, by value less cost, of that and the greedy on value itself,
    which takes the whole mini-sweep."""
    cands = _candidates(toy)
    cands["cost_flops"] *= 1e-6  # everything is worth running
    near = cands[cands["group"] == "near"]
    cands = pd.concat([cands, near.iloc[:2].assign(group="near_part",
                                                  cost_flops=near["cost_flops"].iloc[0] / 50)])
    budget = 1.2 * near["cost_flops"].sum()
    per_flop = _by_group(propose(toy, TARGET, candidates=cands, seed=0, n_outcomes=16, k=1))
    assert bool(per_flop.loc["near_part", "selected"])
    assert per_flop.loc["near_part", "value_flops"] < per_flop.loc["near", "value_flops"]
    ranked = propose(toy, TARGET, candidates=cands, budget_flops=budget, seed=0,
                     n_outcomes=16, k=1)
    g = _by_group(ranked)
    assert bool(g.loc["near", "selected"]) and not g.loc["near_part", "selected"]
    assert ranked.attrs["regret_after_pct"] < per_flop.attrs["regret_after_pct"]
    # one unit for the whole table: value per FLOP, whichever greedy scored the row
    assert g.loc["near", "score"] == pytest.approx(g.loc["near", "value_flops"]
                                                   / g.loc["near", "group_cost_flops"])


def test_target_matches_draw_new_cells(toy):
    """The Rao-Blackwellised target equals the posterior predictive of cells.draw_new_cells."""
    mean, cov = target_effects(Draws.from_posterior(toy, None, 0), pd.Series(TARGET))
    pp = draw_new_cells(toy, TARGET, seed=0).isel(target=0)
    for i, q in enumerate(("log_lr_opt", "log_batch_opt")):
        x = pp[q].to_numpy().ravel()
        assert mean[:, i].mean() == pytest.approx(x.mean(), abs=0.05)
        sd = np.sqrt(cov[:, i, i].mean() + mean[:, i].var())
        assert sd == pytest.approx(x.std(), rel=0.15)


def test_new_cell_shares_the_law_draw_with_the_target(toy):
    d = Draws.from_posterior(toy, None, 0)
    eff = new_cell(d, "dense", "web", TARGET["n_params"], TARGET["n_tokens"], 64)
    mean, _ = target_effects(d, pd.Series(TARGET))
    resid = eff.opt[:, :, 0] - mean[:, :1]
    assert abs(resid.mean()) < 0.01 and resid.std() == pytest.approx(0.05, rel=0.1)
    assert np.corrcoef(eff.opt[:, 0, 0], mean[:, 0])[0, 1] > 0.95


def test_default_candidates_stay_below_the_target(toy):
    cands = default_candidates(toy, TARGET, n_draws=200)
    assert cands["n_params"].max() <= 0.1 * TARGET["n_params"] * (1 + 1e-9)
    assert cands["n_tokens"].max() <= 0.1 * TARGET["n_tokens"] * (1 + 1e-9)
    assert {"line3", "cross5"} <= set(cands["group"].str.split(":").str[1])
    assert np.allclose(cands["cost_flops"], 6 * cands["n_params"] * cands["n_tokens"])
    assert (cands["n_params"] == 1e8).any()  # the fitted cell is a candidate too
    # lr within a factor e of the cell's predicted optimum
    top = cands[cands["n_params"] == cands["n_params"].max()]
    pred = core.law_at(-6.4, -0.7, 0.3, top["n_params"], top["n_tokens"])
    assert np.all(np.abs(np.log(top["lr"]) - pred) <= 1.0 + 0.5)


def test_a_ladder_rung_on_a_fitted_cell_is_that_cell(cli_posterior_path):
    """4e8 / 2**3 is 49999999.99999998: a rung on the fitted cell N = 5e7, D = 1e9 was also
    generated as a new cell, and its groups' names collided with the fitted cell's (a
    'single' group of two runs). Now every group is runs of one cell."""
    from bayes_scaling.model.fit import load_posterior

    post = load_posterior(cli_posterior_path)
    cands = default_candidates(post, {"arch": "dense", "data_mix": "web", "n_params": 4e9,
                                      "n_tokens": 8e10}, n_draws=100)
    spots = cands.groupby("group")[["n_params", "n_tokens"]].agg(lambda x: np.ptp(np.log(x)))
    assert (spots.to_numpy() == 0).all()
    assert (cands.groupby("group").size()[lambda n: n.index.str.contains(":single")] == 1).all()
    fitted = Draws.from_posterior(post, 100, 0).cells
    at = cands[np.isclose(cands["n_params"], 5e7) & np.isclose(cands["n_tokens"], 1e9)]
    assert len(fitted[(fitted["n_params"] == 5e7) & (fitted["n_tokens"] == 1e9)]) >= 1
    assert len(at) and not at["new_cell"].any()


def test_intervals_now_and_after_in_natural_units(toy):
    """The target's 90% intervals, normal on the log scale around today's median: now (the
    first pick's width before) and after each group (its width after)."""
    ranked = propose(toy, TARGET, candidates=_candidates(toy), seed=0, n_outcomes=16,
                     objective="per_flop")
    g = _by_group(ranked)
    now = ranked.attrs["target_now"]
    assert set(now) == {"lr", "batch"}
    cells = draw_new_cells(toy, TARGET, seed=0).isel(target=0)
    for q in ("lr", "batch"):
        median, lo, hi = now[q]["median"], now[q]["lo90"], now[q]["hi90"]
        assert median == pytest.approx(np.sqrt(lo * hi))
        assert np.log(hi / lo) == pytest.approx(g.loc["near", f"{q}_width90_before"])
        draws = np.exp(cells[f"log_{q}_opt"].to_numpy().ravel())
        assert median == pytest.approx(np.median(draws), rel=0.05)
        assert np.mean((draws > lo) & (draws < hi)) == pytest.approx(0.9, abs=0.05)
        after_lo, after_hi = g[f"{q}_lo90_after"], g[f"{q}_hi90_after"]
        assert np.allclose(np.sqrt(after_lo * after_hi), median)
        assert np.allclose(np.log(after_hi / after_lo), g[f"{q}_width90_after"])
    assert g.loc["near", "lr_hi90_after"] / g.loc["near", "lr_lo90_after"] < (
        0.6 * now["lr"]["hi90"] / now["lr"]["lo90"])


@pytest.mark.parametrize(("change", "message"), [
    ({"lr": [-1.0]}, "'lr' must be a positive number, rows [0]"),
    ({"cost": [0.0]}, "'cost' must be a positive number, rows [0]"),
    ({"weight_decay": [-0.1]}, "'weight_decay' must be positive or empty, rows [0]"),
])
def test_bad_candidates_name_column_and_row(change, message):
    row = {"arch": ["dense"], "n_params": [1e8], "n_tokens": [2e9], "lr": [1e-3],
           "batch_tokens": [1e5]}
    with pytest.raises(CandidateError, match=message.replace("[", r"\[").replace("]", r"\]")):
        as_candidates(pd.DataFrame({**row, **change}))
    with pytest.raises(CandidateError, match="missing column"):
        as_candidates(pd.DataFrame({k: v for k, v in row.items() if k != "lr"}))


def test_the_selection_removes_a_share_of_the_regret_never_more_than_all(fake_post):
    """Several picks, each from the state its predecessors' fantasised outcomes left: the
    selection's expected regret after is before times each pick's after/before ratio, so it
    stays in (0, before] (summing the drops went negative from a wide posterior)."""
    out = propose(fake_post, TARGET, k=4, seed=2, n_draws=200, n_outcomes=8,
                  objective="per_flop")
    picks = out[out["selected"]].drop_duplicates("rank").sort_values("rank")
    assert len(picks) >= 2
    before, after = out.attrs["regret_before_pct"], out.attrs["regret_after_pct"]
    ratio = np.prod(picks["regret_after_pct"] / picks["regret_before_pct"])
    assert after == pytest.approx(before * ratio, rel=1e-9)
    assert 0 < after


def test_value_verdict_when_the_loss_law_does_not_fall_with_tokens_at_the_target(toy):
    """Far beyond the data in tokens per parameter the loss law's bend can turn over: no run
    can then be valued in target compute, and the verdict says why (not 'nothing is worth
    running' with no reason)."""
    post = toy["posterior"].to_dataset()
    post["q_loss"] = (("chain", "draw"), np.full((1, S), 0.05))
    bent = xr.DataTree.from_dict({"posterior": post, "cells": toy["cells"].to_dataset()})
    bent.attrs.update(toy.attrs)
    far = {**TARGET, "n_tokens": 2e13}  # 2,000 tokens per parameter: slope -0.03 + 0.46 > 0
    out = propose(bent, far, k=2, seed=0, n_outcomes=8)
    assert not out["selected"].any()
    assert out.attrs["verdict"].startswith("no run can be valued in target compute")
