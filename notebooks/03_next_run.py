# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Choosing the next small run
#
# You have a sweep of small runs and a big run to plan. Which *next* small run would shrink
# the uncertainty about the big run's optimal lr, batch size and weight decay the most, per
# FLOP spent? `bayes_scaling.design.propose` scores candidate runs by the expected
# information gain about the target's optimum (simulating each candidate's outcome under
# every posterior draw, censoring and divergence included) divided by its cost 6ND.
#
# We start from a sweep that only has the two smallest model sizes, so the extrapolation to
# 7B is uncertain, and ask what to run next with a budget.

# %%
import os

import numpy as np
import pandas as pd

from bayes_scaling import diagnose, fit, predict, propose, simulate_sweep
from bayes_scaling.data.simulate import default_cells
from bayes_scaling.present.plots import plot_expected_regret, plot_proposals, regret_grid

DRAWS = int(os.environ.get("BAYES_SCALING_NOTEBOOK_DRAWS", "1000"))
CHAINS = 4 if DRAWS >= 1000 else 2
SEED = 0
BUDGET_FLOPS = 2e18
"""What we can spend on the next runs (6ND per run)."""
pd.set_option("display.width", 140)

# %% [markdown]
# ## The starting point: small models only

# %%
cells = default_cells(n_params=(5e7, 1e8))
sweep, truth = simulate_sweep(seed=SEED, cells=cells)
print(f"{len(sweep.runs)} runs in {len(sweep.cells())} cells, N up to "
      f"{sweep.runs['n_params'].max():.0e}")
posterior = fit(sweep, seed=SEED, draws=DRAWS, tune=DRAWS, chains=CHAINS, progressbar=False)
print(diagnose(posterior).report())

# %% [markdown]
# The big run and how well we know its optimum today:

# %%
target = {"arch": "dense", "data_mix": "web", "n_params": 7e9, "n_tokens": 2e12}
prediction = predict(posterior, pd.DataFrame([target]), seed=SEED)
today = prediction.summary.set_index("quantity")
today["90% width (x-fold)"] = today["hi90"] / today["lo90"]
today.loc[["lr_opt", "batch_tokens_opt", "weight_decay_opt"],
          ["median", "lo90", "hi90", "90% width (x-fold)"]]

# %% [markdown]
# What would running at the posterior median cost us, compared with running at the
# (unknown) true optimum? The expected regret over (lr, batch):

# %%
regret = regret_grid(posterior, target, prediction, seed=SEED)
fig = plot_expected_regret(regret, prediction)
print(f"least expected regret on the grid: {float(regret['expected_regret_pct'].min()):.3f}% "
      "of the optimal loss")

# %% [markdown]
# ## Proposals
# The default candidates: new cells of the target's arch and mix on a ladder of model sizes
# up to a tenth of the target (at 20 and 100 tokens per parameter), and the existing cells;
# in each, single runs around the predicted optimum, a 3-run lr line and a 5-run cross.
# Three picks within the budget, chosen greedily (each after a simulated outcome of the
# previous one):

# %%
proposals = propose(posterior, target, budget_flops=BUDGET_FLOPS, k=3, seed=SEED)
picks = proposals[proposals["selected"]]
picks[["rank", "group", "n_params", "n_tokens", "lr", "batch_tokens", "cost_flops",
       "eig_nats", "lr_width90_before", "lr_width90_after"]]

# %%
print(f"spent {proposals.attrs['spent_flops']:.3g} of {BUDGET_FLOPS:.3g} FLOPs")
assert proposals.attrs["spent_flops"] <= BUDGET_FLOPS
assert picks["group"].nunique() == 3

# %%
fig = plot_proposals(posterior, proposals, pd.DataFrame([target]))

# %% [markdown]
# ## How do the picks compare with the obvious alternatives?
# Score, on the same footing, (a) a classic 12-run grid in one new cell at 4x the largest
# model we have, and (b) a single run at the predicted optimum of that cell. The score is
# information per FLOP; `eig_nats` is the information itself.

# %%
n_new, d_new = 4e8, 8e9
opt = predict(posterior, pd.DataFrame([{**target, "n_params": n_new, "n_tokens": d_new}]))
med = opt.summary.set_index("quantity")["median"]
grid = [{"group": "grid 4x3", "arch": "dense", "data_mix": "web", "n_params": n_new,
         "n_tokens": d_new, "lr": med["lr_opt"] * f_lr, "batch_tokens": med["batch_tokens_opt"]
         * f_b, "weight_decay": med["weight_decay_opt"], "seq_len": 2048}
        for f_lr in (0.5, 0.8, 1.25, 2.0) for f_b in (0.5, 1.0, 2.0)]
single = [{**grid[0], "group": "single run at the optimum", "lr": med["lr_opt"],
           "batch_tokens": med["batch_tokens_opt"]}]
alternatives = propose(posterior, target, candidates=pd.DataFrame(grid + single), k=1,
                       seed=SEED)
by_group = alternatives.groupby("group").agg(runs=("lr", "size"),
                                             cost_flops=("group_cost_flops", "first"),
                                             eig_nats=("eig_nats", "first"),
                                             score=("score", "first"))
best_pick = picks.iloc[0]
by_group.loc["first proposal"] = [int((picks["group"] == best_pick["group"]).sum()),
                                  best_pick["group_cost_flops"], best_pick["eig_nats"],
                                  best_pick["score"]]
by_group.sort_values("score", ascending=False)

# %%
assert np.isfinite(by_group["score"]).all()

# %% [markdown]
# In practice: run the picks, append their rows to the sweep (`concat_sweeps`), refit, and
# repeat until the target's intervals (or the expected regret) are small enough for the
# money at stake.
