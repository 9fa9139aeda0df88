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
# # The Step Law sweeps: dense and MoE
#
# Li et al. (2025, "Predictable Scale: Part I", arXiv 2503.04715) released the final losses
# of thousands of small runs over (lr, batch) grids: 1,911 dense runs in 17 cells and 708
# MoE runs in 16 cells. Here we fit them jointly (exponents pooled across dense and MoE),
# compare the posterior with the published Step Law, and plan a 7B run.
#
# **Parameter**: `STEPLAW_DIR`, the folder with `dense_lr_bs_loss.csv` and
# `moe_lr_bs_loss.csv`, relative to the project root (or absolute); the environment
# variable `BAYES_SCALING_STEPLAW_DIR` overrides it.

# %%
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling import (
    concat_sweeps,
    diagnose,
    expected_regret,
    fit,
    law_table,
    predict,
    read_steplaw,
)
from bayes_scaling.model import laws
from bayes_scaling.present.plots import (
    plot_cell_landscapes,
    plot_law_curves,
    plot_target_predictive,
)

# %% tags=["parameters"]
STEPLAW_DIR = os.environ.get("BAYES_SCALING_STEPLAW_DIR", "../shared/data/steplaw")
DRAWS = int(os.environ.get("BAYES_SCALING_NOTEBOOK_DRAWS", "1000"))
CHAINS = 4 if DRAWS >= 1000 else 2
SEED = 0

# %%
project = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
data_dir = Path(STEPLAW_DIR) if Path(STEPLAW_DIR).is_absolute() else project / STEPLAW_DIR
pd.set_option("display.width", 140)
print(data_dir.resolve())

# %% [markdown]
# ## The data
# For MoE, `n_params` is the *active* non-embedding parameter count (the total is kept in
# `n_params_total`); batch sizes are in tokens (sequences x 2048).

# %%
sweeps = {}
for arch in ("dense", "moe"):
    sweeps[arch] = read_steplaw(data_dir / f"{arch}_lr_bs_loss.csv")
    s = sweeps[arch].summary()
    print(f"{arch}: {s['runs']} runs in {s['cells']} cells; censored {s['n_censored']} "
          f"(diverged {s['n_diverged']}), excluded {s['n_excluded']}")
sweep = concat_sweeps(sweeps.values())
sweep.cells()[["arch", "n_params", "n_tokens", "n_runs", "n_lr", "n_batch", "best_loss"]]

# %% [markdown]
# ## Fit
# About 30 s from a cold start with the default 4 x 1000 draws on two cores.

# %%
posterior = fit(sweep, seed=SEED, draws=DRAWS, tune=DRAWS, chains=CHAINS, progressbar=False)
print(diagnose(posterior).report())

# %% [markdown]
# The laws with 90% intervals; `published` is the Step Law value in the same
# parametrisation (natural logs, intercepts at N = 1e9, D = 1e11, batch in tokens).

# %%
table = law_table(posterior)
table[["parameter", "arch", "median", "lo", "hi", "published"]].round(3)

# %% [markdown]
# The fitted laws against N and D through the target, with the Step Law (dashed) and
# DeepSeek (dotted) laws. The data cells' optima are moved along the fitted law to the
# slice.

# %%
# A MoE target needs its total parameters (the MoE lr law runs in total parameters): here
# 7B active of 12B total, the sparsity of the densest Step Law configuration (3in8).
targets = pd.DataFrame({"arch": ["dense", "moe"], "data_mix": "default",
                        "n_params": [7e9, 7e9], "n_tokens": [2e12, 2e12],
                        "n_params_total": [np.nan, 1.2e10]})
fig = plot_law_curves(posterior, targets.iloc[0])

# %% [markdown]
# A few cells' landscapes: the runs (open circles: above the fit window, censored), the
# fitted bowl and the posterior of the optimum.

# %%
cells = list(posterior["posterior"]["cell"].values)
picked = [c for c in cells if c.startswith("dense")][::5] + [c for c in cells
                                                             if c.startswith("moe")][::5]
fig = plot_cell_landscapes(posterior, picked)

# %% [markdown]
# ## Planning a 7B run on 2T tokens

# %%
prediction = predict(posterior, targets, seed=SEED)
summary = prediction.summary[prediction.summary["quantity"].isin(
    ["lr_opt", "batch_tokens_opt", "batch_seqs_opt", "loss_opt"])]
summary[["arch", "quantity", "median", "lo90", "hi90"]]

# %%
fig = plot_target_predictive(prediction)

# %% [markdown]
# The Step Law's own numbers at the target, and the expected regret (% of the optimal
# loss) of using them instead of our posterior median, for the dense run:

# %%
step_lr = float(laws.steplaw_lr_opt(7e9, 2e12))
step_b = float(laws.steplaw_batch_opt(7e9, 2e12))
med = prediction.summary.set_index(["arch", "quantity"])["median"]
lr = np.array([med["dense", "lr_opt"], step_lr])
batch = np.array([med["dense", "batch_tokens_opt"], step_b])
regret = expected_regret(posterior, targets.iloc[[0]], lr, batch, seed=SEED)
pd.DataFrame({"choice": ["posterior median", "Step Law"], "lr": lr, "batch_tokens": batch,
              "expected regret (%)": regret["expected_regret_pct"].values,
              "90% interval (%)": [f"[{a:.3f}, {b:.3f}]" for a, b in
                                   zip(regret["regret_pct_lo"].values,
                                       regret["regret_pct_hi"].values, strict=True)]})

# %%
assert (regret["expected_regret_pct"] >= 0).all()
dense_an = table[(table["parameter"] == "a_n") & (table["arch"] == "dense")].iloc[0]
print(f"dense a_n: {dense_an['median']:.3f} [{dense_an['lo']:.3f}, {dense_an['hi']:.3f}], "
      f"Step Law {laws.STEPLAW_LR_EXP_N}")
