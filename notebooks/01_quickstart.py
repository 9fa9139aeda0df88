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
# # Quick start: from a sweep table to the big run's learning rate, batch size and weight decay
#
# This notebook runs the whole job on the simulated default sweep, where the true laws are
# known, so every step can be checked:
#
# 1. a sweep table (one row per small training run: model size N, tokens D, peak lr,
#    batch size in tokens, AdamW weight decay, final loss);
# 2. the hierarchical model fitted to it (loss bowls per cell, optima moving as power laws);
# 3. the posterior predictive optimum of a big run (7B parameters, 2T tokens);
# 4. the expected regret of a choice, and where the next small run would help most.
#
# `BAYES_SCALING_NOTEBOOK_DRAWS` (environment) sets the sampler's draws; the test suite
# uses a small number, the default is the model spec's 1000.

# %%
import os

import numpy as np
import pandas as pd

from bayes_scaling import diagnose, expected_regret, fit, law_table, predict, simulate_sweep
from bayes_scaling.model import laws
from bayes_scaling.present.plots import (
    plot_cell_landscapes,
    plot_law_curves,
    plot_target_predictive,
)

DRAWS = int(os.environ.get("BAYES_SCALING_NOTEBOOK_DRAWS", "1000"))
CHAINS = 4 if DRAWS >= 1000 else 2
SEED = 0
pd.set_option("display.width", 140)

# %% [markdown]
# ## 1. The sweep
# Dense and MoE models, two data mixes ("web", "code"), N from 50M to 400M at 20 and 100
# tokens per parameter; in each cell a 7 x 4 grid of (lr, batch) with weight decay drawn
# around its optimum. Runs far above the cell's best loss are *censored* by the model (we
# only use "the loss was above the window"), never dropped.

# %%
sweep, truth = simulate_sweep(seed=SEED)
summary = sweep.summary()
print(f"{summary['runs']} runs in {summary['cells']} cells; censored {summary['n_censored']}, "
      f"excluded {summary['n_excluded']}")
sweep.runs.head()

# %%
sweep.cells().head(8)

# %% [markdown]
# ## 2. Fit
# nutpie samples the model through PyMC (about 30 s with 4 chains x 1000 draws on two
# cores). Always look at the diagnostics.

# %%
posterior = fit(sweep, seed=SEED, draws=DRAWS, tune=DRAWS, chains=CHAINS, progressbar=False)
print(diagnose(posterior).report())

# %% [markdown]
# The law parameters with 90% intervals, next to the simulation's truth:

# %%
table = law_table(posterior)
true = {"a_n": truth["a_n"], "a_d": truth["a_d"], "b_n": truth["b_n"], "b_d": truth["b_d"],
        "c_eta": truth["c_eta"], "c_batch": truth["c_batch"], "c_tau": truth["c_tau"],
        "g_tpp": truth["g_tpp"], "sigma_cell_lr": truth["sigma_cell_lr"],
        "sigma_cell_batch": truth["sigma_cell_batch"], "sigma_cell_tau": truth["sigma_cell_tau"]}


def true_value(row: pd.Series) -> float:
    da = true[row["parameter"]]
    sel = {d: row[k] for d, k in (("arch", "arch"), ("mix", "mix")) if d in da.dims}
    return float(da.sel(sel))


table["truth"] = table.apply(true_value, axis=1)
table["covered"] = (table["lo"] <= table["truth"]) & (table["truth"] <= table["hi"])
print(f"{table['covered'].sum()} of {len(table)} true values inside their 90% interval")
table[["parameter", "arch", "mix", "median", "lo", "hi", "truth", "published"]].round(3)

# %% [markdown]
# Each cell's loss landscape: the runs, the fitted bowl, the posterior of the optimum and
# (gold star) the true optimum.

# %%
dense_web = [c for c in posterior["posterior"]["cell"].values if c.startswith("dense|web")]
fig = plot_cell_landscapes(posterior, dense_web, truth=truth)

# %% [markdown]
# The laws against N and D, sliced through the target, with the published Step Law and
# DeepSeek laws:

# %%
target = pd.DataFrame({"arch": ["dense", "moe"], "data_mix": ["web", "web"],
                       "n_params": [7e9, 7e9], "n_tokens": [2e12, 2e12]})
fig = plot_law_curves(posterior, target.iloc[0])

# %% [markdown]
# ## 3. The big run
# The posterior predictive optimum includes the scatter of a new cell around the law: it
# is what you should expect for *your* run, not just the mean law.

# %%
prediction = predict(posterior, target, seed=SEED)
prediction.summary[["arch", "quantity", "median", "lo90", "hi90"]]

# %%
fig = plot_target_predictive(prediction)

# %% [markdown]
# How does that compare with the published laws at the same (N, D)?

# %%
laws.published_optima(7e9, 2e12)[["law", "lr_opt", "batch_tokens_opt", "weight_decay_opt"]]

# %% [markdown]
# ## 4. The cost of a choice
# Expected regret: the loss increase of running at a given (lr, batch) instead of at the
# (unknown) optimum, averaged over the posterior. Compare our median with the Step Law's
# choice:

# %%
med = prediction.summary.set_index(["arch", "quantity"])["median"]
choices = {"posterior median": (med["dense", "lr_opt"], med["dense", "batch_tokens_opt"]),
           "Step Law": (float(laws.steplaw_lr_opt(7e9, 2e12)),
                        float(laws.steplaw_batch_opt(7e9, 2e12))),
           "DeepSeek": (float(laws.deepseek_lr_opt(7e9, 2e12)),
                        float(laws.deepseek_batch_opt(7e9, 2e12)))}
lr, batch = np.array(list(choices.values())).T
regret = expected_regret(posterior, target.iloc[[0]], lr, batch, seed=SEED)
pd.DataFrame({"choice": list(choices), "lr": lr, "batch_tokens": batch,
              "expected regret (% of loss)": regret["expected_regret_pct"].values})

# %%
assert np.isfinite(regret["expected_regret_pct"]).all()
assert table["covered"].mean() >= 0.6, "most true values should fall inside 90% intervals"

# %% [markdown]
# Next: `02_steplaw.py` fits the real Step Law sweeps, `03_next_run.py` chooses the next
# small run. On the command line, `bayes-scaling demo` does all of this and writes a report.
