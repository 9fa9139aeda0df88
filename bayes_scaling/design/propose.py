"""Next-run selection: which small run(s) are worth their cost for the target.

By default a candidate's score is its value per FLOP (:mod:`bayes_scaling.design.value`: the
expected drop of the target's expected regret, as target FLOPs), and a group is selected only
when its value exceeds its cost; information gain per FLOP remains an objective. With a
budget, the selection is the better, by value less cost, of the greedy on value per FLOP and
the greedy on value: per FLOP alone takes the cheapest runs first and, with a cap on the
picks, leaves most of a budget unspent even where larger runs are worth far more.

Candidates are generated around the predicted optima, given as a table, or read from a pool
of runnable configurations (:mod:`bayes_scaling.design.pool`: its rows not yet run).
For each candidate (a run, or a mini-sweep ``group`` of runs) every posterior draw implies
the candidate cell's loss bowl (see :mod:`bayes_scaling.design.candidates`). Simulated outcomes
follow the fit's censoring rule: runs past the divergence side (log lr more than
``diverge_log_lr`` above the draw's optimum) and runs above the window edge
((1 + window) x the cell's best loss) only say "loss > edge", and a new cell with no finite
loss says nothing. The draws are reweighted by the model's likelihood of each simulated
outcome (importance reweighting; a new cell's residuals are marginalised over inner
samples), and the target's predictive covariance of (log lr_opt, log batch_opt[, log
weight_decay_opt]) is recomputed, Rao-Blackwellised over the target's own cell scatter.
Value = the drop of 1/2 tr(H Sigma) from that covariance before to the expected one after.
Information gain (nats) = 0.5 log det(before) - 0.5 log det(expected covariance after): the
Gaussian entropy drop of the expected posterior, which (unlike averaging log dets) does not
mistake a few surviving draws for information.

All candidates are screened with a linear-Gaussian (ensemble) approximation of the same
quantity, then the top ``n_rescore`` are re-scored by reweighting. ``k > 1`` picks greedily:
after each pick one outcome of it is fantasised and the draw weights conditioned on it
(tempered if the effective sample size would fall below ``ess_floor`` x draws). With the
"auto" information objective and a budget, the batch is the better of the per-FLOP greedy and
the plain-gain greedy (by total expected gain), the usual remedy for budgeted greedy
selection.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.data.formats import ColumnMap
from bayes_scaling.design.candidates import as_candidates, default_candidates
from bayes_scaling.design.intervals import Z90, target_intervals
from bayes_scaling.design.outcomes import condition, rescore
from bayes_scaling.design.pool import pool_candidates
from bayes_scaling.design.problem import (
    Problem,
    State,
    build_problem,
    cell_bowl,
    normalise,
    target_cov,
)
from bayes_scaling.design.selection import Selection, net_value, verdict
from bayes_scaling.design.value import compute_equivalent, expected_regret, regret_pct, value
from bayes_scaling.errors import CandidateError
from bayes_scaling.model import core
from bayes_scaling.predict.draws import Draws, as_targets


# ----------------------------------------------------------------------------- screen
def _screen_arrays(p: Problem, state: State, rng: np.random.Generator) -> dict:
    """One residual sample per draw and cell (the weighted pick for fantasised cells)."""
    w = normalise(state.logw)
    picks = []
    for i in range(len(p.cells)):
        m = np.zeros(p.d.n, int)
        if i in state.inner:
            cum = np.cumsum(np.exp(state.inner[i]), axis=1)
            m = np.minimum((cum < rng.random((p.d.n, 1)) * cum[:, -1:]).sum(1), cum.shape[1] - 1)
        picks.append(m)
    s = np.arange(p.d.n)
    take = lambda a, m: a[s, m] if a.shape[1] > 1 else a[:, 0]  # noqa: E731
    return {"w": w,
            "opt": np.stack([take(c.opt, m) for c, m in zip(p.cells, picks, strict=True)]),
            "loss": np.stack([take(c.loss_opt, m) for c, m in zip(p.cells, picks, strict=True)]),
            "diag": np.stack([take(c.chol_diag, m) for c, m in zip(p.cells, picks, strict=True)]),
            "off": np.stack([c.chol_offdiag for c in p.cells]),
            "skew": np.stack([c.skew for c in p.cells]),
            "noise": np.stack([c.noise for c in p.cells]),
            "best": np.array([c.best_loss for c in p.cells])}


def _screen(p: Problem, state: State, idx: np.ndarray, rng: np.random.Generator,
            chunk: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Linear-Gaussian EIG (nats) of groups ``idx`` and the target covariance after each."""
    a = _screen_arrays(p, state, rng)
    w = a["w"]
    tc = p.t_mean - w @ p.t_mean
    cov0 = target_cov(w, p)
    post = np.zeros((len(idx), *cov0.shape))
    size = p.g_valid[idx].sum(1)
    # groups of equal size together (valid runs come first), in chunks
    batches = [(np.flatnonzero(size == r)[lo:lo + chunk], r) for r in np.unique(size)
               for lo in range(0, int((size == r).sum()), chunk)]
    for rows, r in batches:
        g = idx[rows]
        cg, valid, u = p.g_cell[g, :r], p.g_valid[g, :r], p.g_u[g, :r][:, :, None, :]
        mu, d_lr = cell_bowl(a["opt"][cg], a["loss"][cg], a["diag"][cg], a["off"][cg],
                         a["skew"][cg], u)
        diverged = core.diverges(d_lr, p.diverge)
        finite = valid[..., None] & ~diverged
        same = cg[:, :, None] == cg[:, None, :]
        low = np.where(same[..., None] & finite[:, None, :, :], mu[:, None, :, :], np.inf).min(2)
        edge = core.window_edge(np.minimum(a["best"][cg][..., None], low), p.window)
        y = np.where(core.is_censored(mu, ~diverged, edge), edge, mu)
        y = np.where(np.isfinite(edge) & valid[..., None], y, 0.0)
        yc = y - (y * w).sum(-1, keepdims=True)
        c_ty = np.einsum("grs,s,sk->grk", yc, w, tc)
        c_yy = np.einsum("grs,s,gqs->grq", yc, w, yc)
        noise2 = (a["noise"][cg] ** 2 * w).sum(-1) + (~valid)
        c_yy = c_yy + noise2[..., None] * np.eye(cg.shape[1])
        post[rows] = cov0 - np.einsum("grk,grl->gkl", c_ty, np.linalg.solve(c_yy, c_ty))
    eig = 0.5 * (np.linalg.slogdet(cov0)[1] - np.linalg.slogdet(post)[1])
    return eig, post


# ----------------------------------------------------------------------------- propose
OBJECTIVES = ("value", "auto", "per_flop", "total")
VALUED = ("value", "value_total")
"""Greedy orders that select by value (per FLOP, or plain within a budget)."""
SCORE_LABELS = {"value": "value per FLOP (target FLOPs per FLOP)",
                "auto": "expected information gain per FLOP (nats/FLOP)",
                "per_flop": "expected information gain per FLOP (nats/FLOP)",
                "total": "expected information gain (nats)"}
"""What ``score`` is under each objective, with its unit (``attrs["score_label"]``)."""


def _group_rows(p: Problem, g: int, eig: float, w: np.ndarray, before: np.ndarray,
                after: np.ndarray, ess: float, how: str, objective: str) -> dict:
    v = value(p, w, before, after)
    score = (v["value_flops"] / p.g_cost[g] if objective == "value"
             else v["value_flops"] if objective == "value_total"
             else eig / p.g_cost[g] if objective != "total" else eig)
    row = {"group": p.groups[g], "eig_nats": eig, "score": score, **v,
           "worth_running": bool(v["value_flops"] > p.g_cost[g]),
           "group_cost_flops": p.g_cost[g], "ess": ess, "scored_by": how}
    for i, q in enumerate(p.d.dims):
        row[f"{q}_width90_before"] = 2 * Z90 * np.sqrt(before[i, i])
        row[f"{q}_width90_after"] = 2 * Z90 * np.sqrt(max(after[i, i], 0.0))
    return row


def _greedy(p: Problem, k: int, budget: float, seed: int, objective: str, n_rescore: int,
            n_outcomes: int, ess_floor: float) -> Selection:
    """Greedy picks with fantasised outcomes between picks: by value per FLOP or by value
    ("value_total"; both stopping when no candidate's value exceeds its cost), by EIG per
    FLOP, or by EIG (stopping when no candidate's information gain is positive)."""
    state = State(logw=np.full(p.d.n, -np.log(p.d.n)), inner={})
    w0 = normalise(state.logw)
    before = float(regret_pct(p, w0, target_cov(w0, p)))
    path = Selection([], {}, {}, 0.0, before, before)
    for pick in range(k):
        eligible = np.flatnonzero((p.g_cost <= (budget - p.g_cost[path.chosen].sum())
                                   * (1 + 1e-12)) & ~np.isin(np.arange(len(p.groups)),
                                                             path.chosen))
        if not len(eligible):
            break
        w = normalise(state.logw)
        cov0 = target_cov(w, p)
        eig_s, post_s = _screen(p, state, eligible, np.random.default_rng([seed, pick, 1]))
        if objective in VALUED:
            drop = expected_regret(p, w, cov0) - expected_regret(p, w, post_s)
            key_s = compute_equivalent(p, w, drop) / (p.g_cost[eligible]
                                                      if objective == "value" else 1.0)
        else:
            key_s = eig_s / (p.g_cost[eligible] if objective != "total" else 1.0)
        order = np.argsort(-np.nan_to_num(key_s, nan=-np.inf), kind="stable")
        rescored = {int(eligible[j]): rescore(p, state, int(eligible[j]),
                                              np.random.default_rng([seed, pick]), n_outcomes)
                    for j in order[:n_rescore]}
        rows = {g: _group_rows(p, g, r[0], w, cov0, r[1], r[2], "reweight", objective)
                for g, r in rescored.items()}
        best = max(rows, key=lambda g: np.nan_to_num(rows[g]["score"], nan=-np.inf))
        if pick == 0:
            path.first = {int(g): _group_rows(p, g, eig_s[j], w, cov0, post_s[j], np.nan,
                                              "screen", objective)
                          for j, g in enumerate(eligible)}
            path.first.update(rows)
        if not (rows[best]["worth_running"] if objective in VALUED
                else rows[best]["eig_nats"] > 0):
            break  # the stopping rule: nothing left is worth its cost / tells anything
        path.rows[best] = rows[best]
        path.total_eig += rescored[best][0]
        path.regret_after_pct *= rows[best]["regret_after_pct"] / rows[best]["regret_before_pct"]
        path.chosen.append(best)
        if pick < k - 1:
            state = condition(p, state, best, np.random.default_rng([seed, pick, 2]),
                              ess_floor)
    return path


def _candidate_table(posterior: xr.DataTree, draws: Draws, target: pd.DataFrame,
                     candidates: pd.DataFrame | None, pool: pd.DataFrame | str | Path | None,
                     pool_columns: Mapping[str, str] | ColumnMap | None
                     ) -> tuple[pd.DataFrame, dict]:
    """The candidates (given, generated, or a pool's rows not yet run) and, for a pool,
    what was read and dropped."""
    if pool is not None:
        if candidates is not None:
            raise CandidateError("propose: give candidates or a pool, not both")
        return pool_candidates(posterior, draws, pool, pool_columns)
    if pool_columns is not None:
        raise CandidateError("propose: pool_columns maps the columns of a pool; no pool given")
    table = (default_candidates(draws, target) if candidates is None
             else as_candidates(candidates))
    return table, {}


def propose(posterior: xr.DataTree, target: pd.DataFrame | dict,
            candidates: pd.DataFrame | None = None, budget_flops: float | None = None,
            k: int = 1, seed: int = 0, *, pool: pd.DataFrame | str | Path | None = None,
            pool_columns: Mapping[str, str] | ColumnMap | None = None, n_outcomes: int = 32,
            n_draws: int = 1000, n_inner: int = 8, n_rescore: int = 48,
            diverge_log_lr: float = 1.6, ess_floor: float = 0.1, objective: str = "value"
            ) -> pd.DataFrame:
    """Rank candidate runs by their value for the target (or by information gain), and
    select up to ``k`` of them within ``budget_flops``.

    Args:
        posterior: a fitted posterior (:func:`bayes_scaling.model.fit.fit`).
        target: one row/dict: arch, data_mix, n_params, n_tokens.
        candidates: runs (see :func:`~bayes_scaling.design.candidates.as_candidates`; a
            ``group`` column makes mini-sweeps); default
            :func:`~bayes_scaling.design.candidates.default_candidates`.
        pool: instead of candidates, a table of runnable configurations (a csv / parquet /
            jsonl file, e.g. a sweep file, or a DataFrame; :func:`~.pool.read_pool`): each
            row a candidate run (rows sharing a ``group`` run together), cost 6 N D unless a
            ``cost_flops`` or ``cost`` column gives it, other columns (loss, status) ignored;
            rows that are runs of the fitted sweep are dropped (:func:`~.pool.already_run`).
        pool_columns: {their column: canonical name} of the pool file, or a
            :class:`~bayes_scaling.data.formats.ColumnMap` (as for a sweep).
        budget_flops: the total cost of the selected groups never exceeds it.
        k: how many groups to select at most (greedily, each after a fantasised outcome of
            the last).
        seed: seeds everything random (scores are reproducible).
        n_outcomes: simulated outcomes per re-scored candidate.
        n_draws: posterior draws used (thinned evenly); n_inner: residual samples per draw
            for a new cell; n_rescore: candidates re-scored by reweighting after the screen.
        diverge_log_lr: simulated runs this far above the draw's log lr optimum diverge.
        ess_floor: fantasised conditioning is tempered to keep ESS >= this x draws.
        objective: "value" (default): greedy on value per FLOP (:mod:`.value`: the drop of
            the target's expected regret, as target FLOPs), and a group is selected only when
            its value exceeds its cost, so the answer can be "nothing is worth running";
            with a budget, the better by value less cost of that and the greedy on value.
            Information gain: "per_flop" (EIG per FLOP), "total" (EIG), or "auto"
            (per_flop without a budget; with one, the better by total EIG of the per_flop and
            total greedy batches); a group is selected only when its information gain is
            positive.

    Returns one row per candidate run, ranked (``rank`` 1 = best; rows of a group share it):
    the run, ``cost_flops`` (the run) and ``group_cost_flops``, ``score`` (one unit per
    table, :data:`SCORE_LABELS`: target FLOPs of value per FLOP for "value", nats for
    "total", nats per FLOP for "per_flop" and "auto", whichever greedy path a row comes
    from), ``eig_nats``, the target's expected regret before and after (% of its loss),
    ``value_pct``, ``value_flops``, ``worth_running`` (value_flops > group cost), the 90%
    interval width (3.29 sd, log scale) of each target quantity (``lr``, ``batch``[,
    ``weight_decay``]) before and after (expected), the 90% interval after in natural units
    (``{q}_lo90_after``, ``{q}_hi90_after``; see :func:`target_intervals`), ``ess``, ``scored_by``
    (reweight / screen / over budget) and ``selected`` (in ``rank`` order; a later pick's
    figures are conditional on the fantasised outcomes of the earlier ones, so its "after"
    is after it and the earlier picks). ``rank`` puts the picks first, in selection order,
    then the other groups by score within each tier (reweighted, screened, over budget).
    ``attrs`` hold the expected regret before and after the selection, a plain verdict,
    ``score_label`` and ``target_now`` (the target's optima now, from :func:`target_intervals`);
    with a pool, ``attrs["pool"]``: {"source", "rows", "already_run" (rows dropped as runs
    of the fitted sweep), "new_mixes"}, and the table has each run's ``pool_row`` (0-based
    data row of the pool).
    """
    target = as_targets(target)
    if len(target) != 1:
        raise ValueError(f"propose: give one target row, got {len(target)}")
    if k < 1 or objective not in OBJECTIVES:
        raise ValueError(f"propose: need k >= 1 and objective in {OBJECTIVES}, got "
                         f"k={k}, objective={objective!r}")
    draws = Draws.from_posterior(posterior, n_draws, seed)
    draws.check_archs(target)
    table, pool_info = _candidate_table(posterior, draws, target, candidates, pool,
                                        pool_columns)
    draws.check_archs(table)
    p = build_problem(draws, target, table, n_inner=n_inner, diverge=diverge_log_lr)
    budget = np.inf if budget_flops is None else float(budget_flops)
    cheapest = int(np.argmin(p.g_cost))
    if budget < p.g_cost[cheapest]:
        raise CandidateError(f"propose: the budget ({budget:.3g} FLOPs) is below the cheapest "
                             f"candidate, {p.groups[cheapest]} ({p.g_cost[cheapest]:.3g} FLOPs)")
    run = lambda how: _greedy(p, k, budget, seed, how, n_rescore,  # noqa: E731
                              n_outcomes, ess_floor)
    second = {"auto": "total", "value": "value_total"}.get(objective)
    paths = [run("per_flop" if objective == "auto" else objective)]
    if second and budget_flops is not None:
        paths.append(run(second))
    best = max(paths, key=(lambda q: net_value(p, q)) if objective == "value"
               else (lambda q: q.total_eig))
    rows = dict(paths[0].first)
    rows.update({g: r for g, r in paths[-1].first.items() if r["scored_by"] == "reweight"
                 and rows.get(g, {}).get("scored_by") != "reweight"})
    rows.update(best.rows)
    if second:  # the two paths scored per FLOP and not: rank by one unit, per FLOP
        rows = {g: {**r, "score": r["eig_nats" if objective == "auto" else "value_flops"]
                    / r["group_cost_flops"]} for g, r in rows.items()}
    ranked = _ranked(p, rows, best, target, budget_flops, objective)
    if pool_info:
        ranked.attrs["pool"] = pool_info
    return ranked


def _ranked(p: Problem, rows: dict[int, dict], path: Selection, target: pd.DataFrame,
            budget_flops: float | None, objective: str) -> pd.DataFrame:
    """Assemble the run-level ranked table."""
    chosen = path.chosen
    per_group = pd.DataFrame([rows.get(g, {"group": p.groups[g], "group_cost_flops":
                                           p.g_cost[g], "scored_by": "over budget"})
                              for g in range(len(p.groups))]).set_index("group")
    widths = [f"{q}_width90_{w}" for q in p.d.dims for w in ("before", "after")]
    per_group = per_group.reindex(columns=[
        "score", "eig_nats", "regret_before_pct", "regret_after_pct", "value_pct",
        "value_flops", "worth_running", "group_cost_flops", "ess", "scored_by", *widths])
    tier = per_group["scored_by"].map({"reweight": 1, "screen": 2, "over budget": 3})
    per_group["selected"] = False
    per_group.loc[p.groups[chosen], "selected"] = True
    per_group["_pick"] = np.inf
    per_group.loc[p.groups[chosen], "_pick"] = np.arange(len(chosen))
    per_group["_tier"] = np.where(per_group["selected"], 0, tier)
    per_group = per_group.sort_values(["_tier", "_pick", "score"],
                                      ascending=[True, True, False], kind="stable")
    per_group["rank"] = np.arange(1, len(per_group) + 1)
    now = target_intervals(p, per_group)
    out = p.table.drop(columns=["cell_id"]).assign(
        new_cell=p.table["cell_id"].eq("").to_numpy()).join(
        per_group.drop(columns=["_pick", "_tier"]), on="group")
    out = out.sort_values("rank", kind="stable").reset_index(drop=True)
    front = ["rank", "selected", "group", "arch", "data_mix", "n_params", "n_tokens", "lr",
             "batch_tokens", "weight_decay", "cost_flops", "group_cost_flops", "score",
             "value_flops", "worth_running", "eig_nats"]
    out = out[front + [c for c in out.columns if c not in front]]
    out.attrs.update(target=target.iloc[0][["arch", "data_mix", "n_params",
                                            "n_tokens"]].to_dict(),
                     budget_flops=budget_flops, n_draws=p.d.n, dims=list(p.d.dims),
                     spent_flops=float(p.g_cost[chosen].sum()), objective=objective,
                     score_label=SCORE_LABELS[objective], target_now=now,
                     regret_before_pct=path.regret_before_pct,
                     regret_after_pct=path.regret_after_pct,
                     verdict=verdict(p, path, rows, objective))
    return out
