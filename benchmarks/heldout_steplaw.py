"""Held-out check on the Step Law data: predict six cells the fit never saw.

Fits the default model to the Step Law dense + MoE sweeps WITHOUT the two dense cells at
N = 1.07e9 and WITHOUT the four MoE cells of the configuration with the most active parameters
(moe_name 3in8, Na = 1.24e9), then predicts those six cells (arch, default mix, their N and D).
Each cell's "true" optimum is the minimum of a quadratic fitted by least squares (in log lr,
log batch, with a cross term) to its own runs within 1% of its best loss. For our posterior
median (lr, batch) and for Step Law's formula (lr = 1.79 N^-0.713 D^0.307, B = 0.58 D^0.571
tokens; applied to MoE with N = ACTIVE parameters, as the sweep's n_params, although Step Law
fitted it on dense models) the regret is the quadratic's relative increase over its minimum at
that point, in %. covered: our 90% intervals of lr AND batch both contain the cell's optimum,
allowing for that optimum's own noise (the predictive of model draw + the optimum's bootstrap
deviation, as `bayes-scaling check` judges: bayes_scaling.heldout.score); covered_point: the
model's intervals alone.

A cell's quadratic is degenerate when its Hessian is not positive definite or its minimum lies
outside the lr x batch range of the cell's runs; the window is then widened (2%, 3%, 5%) and
the first non-degenerate fit used; if none is, the optimum falls back to the best run and the
regret to the loss of the run nearest (in log space) to the predicted point. Both are flagged.
(The definition: bayes_scaling.heldout.reference, which `bayes-scaling check` uses too.)

Supplementary check: the model's optimum is the vertex of a SKEWED bowl, the benchmark's is a
symmetric quadratic's, and the two differ by the skew (and by the quadratic's own estimation
noise). So for each cell the posterior predictive of the benchmark's own statistic is also
computed (the cell's grid re-simulated from each draw, then fitted the same way), and whether
its 90% interval covers the observed quadratic optimum is reported as covered_quad_definition.

    .venv/bin/python benchmarks/heldout_steplaw.py [--json] [--seed 0] [--out post.nc]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling.heldout.reference import cell_optimum, reference_noise, regret_pct
from bayes_scaling.heldout.score import OPTIMA, score_optimum

ROOT = Path(__file__).resolve().parents[1]
STEPLAW = ROOT.parent / "shared" / "data" / "steplaw"
DENSE_N_HELD = 1.07e9
MOE_HELD = "3in8"


def held_out(runs: pd.DataFrame) -> pd.Series:
    """The six held-out cells: dense at N = 1.07e9, MoE configuration 3in8 (Na = 1.24e9)."""
    dense = (runs["arch"] == "dense") & np.isclose(runs["n_params"], DENSE_N_HELD, rtol=0.01)
    moe = (runs["arch"] == "moe") & (runs.get("moe_name") == MOE_HELD)
    return dense | moe


def predictive_cell_optimum(runs: pd.DataFrame, cells, nu: float, n: int = 400,
                            seed: int = 0) -> np.ndarray:
    """Posterior predictive of the BENCHMARK'S optimum (log lr, log batch), shape (n, 2): for
    n draws of the new cell, the cell's own (lr, batch) grid is re-simulated from the draw's
    bowl (Student-t noise, nu from the spec, the draw's noise scale) and passed through
    :func:`cell_optimum`, so the 1%-quadratic's definition and its estimation noise are in it."""
    from bayes_scaling.model import core

    rng = np.random.default_rng(seed)
    flat = cells.stack(sample=("chain", "draw"))
    pick = rng.choice(flat.sizes["sample"], size=n, replace=False)
    ok = runs[(runs["status"] == "ok") & np.isfinite(runs["loss"])]
    u = np.log(ok[["lr", "batch_tokens"]].to_numpy())
    out = np.empty((n, 2))
    for i, j in enumerate(pick):
        d = flat.isel(sample=j)
        delta = u - np.array([float(d["log_lr_opt"]), float(d["log_batch_opt"])])
        loss = core.bowl_loss_array(float(np.exp(d["log_loss_opt"])), delta,
                                    d["chol_diag"].to_numpy(), d["chol_offdiag"].to_numpy(),
                                    float(d["skew"]))
        loss = loss + float(d["noise"]) * rng.standard_t(nu, size=len(loss))
        opt = cell_optimum(ok.assign(loss=loss))
        out[i] = opt["log_lr"], opt["log_batch"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--seed", type=int, default=0, help="fit and prediction seed")
    parser.add_argument("--draws", type=int, default=None, help="draws per chain (spec)")
    parser.add_argument("--tune", type=int, default=None, help="tuning steps (spec)")
    parser.add_argument("--chains", type=int, default=None, help="chains (spec)")
    parser.add_argument("--out", type=Path, default=None, help="also save the posterior here")
    parser.add_argument("--posterior", type=Path, default=None,
                        help="reuse a posterior saved by --out (skips the fit)")
    args = parser.parse_args()
    start = time.perf_counter()
    files = [STEPLAW / "dense_lr_bs_loss.csv", STEPLAW / "moe_lr_bs_loss.csv"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"error: this benchmark needs the Step Law files, missing: {', '.join(missing)}",
              file=sys.stderr)
        return 2

    from bayes_scaling.data import concat_sweeps, read_steplaw
    from bayes_scaling.model import laws
    from bayes_scaling.model.fit import diagnose, fit, load_posterior, save_posterior
    from bayes_scaling.model.inputs import prepare_inputs
    from bayes_scaling.model.spec import load_spec
    from bayes_scaling.predict.predict import predict

    sweep = concat_sweeps([read_steplaw(f) for f in files])
    mask = held_out(sweep.runs)
    train = sweep.subset(~mask.to_numpy())
    test = sweep.runs[mask]
    cells = test.groupby("cell", sort=False).first()[["arch", "data_mix", "n_params", "n_tokens",
                                                       "seq_len", "n_params_total"]]
    print(f"fit: {len(train.runs)} runs in {train.runs['cell'].nunique()} cells (default spec); "
          f"held out: {len(test)} runs in {len(cells)} cells", flush=True)
    spec = load_spec(None)
    if args.posterior is None:
        posterior = fit(train, spec, seed=args.seed, draws=args.draws, tune=args.tune,
                        chains=args.chains, progressbar=False)
    else:
        posterior = load_posterior(args.posterior, spec)
        if posterior.attrs["data_hash"] != prepare_inputs(train, spec.window).data_hash:
            print(f"error: {args.posterior} was not fitted on this training split",
                  file=sys.stderr)
            return 2
    diagnostics = diagnose(posterior)
    if args.out is not None:
        save_posterior(posterior, args.out)
    print(f"{diagnostics.report()}; sampling {posterior.attrs['fit_seconds']:.1f} s", flush=True)
    pred = predict(posterior, cells.reset_index(drop=True), seed=args.seed)
    summ = pred.summary.set_index(["target", "quantity"])

    rows = []
    for t, (name, cell) in enumerate(cells.iterrows()):
        opt = cell_optimum(test[test["cell"] == name])
        lr_q, b_q = summ.loc[(t, "lr_opt")], summ.loc[(t, "batch_tokens_opt")]
        sl_lr = float(laws.steplaw_lr_opt(cell["n_params"], cell["n_tokens"]))
        sl_b = float(laws.steplaw_batch_opt(cell["n_params"], cell["n_tokens"]))
        lr_opt, b_opt = float(np.exp(opt["log_lr"])), float(np.exp(opt["log_batch"]))
        draws = pred.draws.isel(target=t)
        noise = reference_noise(test[test["cell"] == name], seed=args.seed)
        judged = {q: score_optimum(q, draws[var].to_numpy(), opt[f"log_{q}"], noise[:, j],
                                   args.seed) for j, (q, var) in enumerate(OPTIMA.items())}
        lr_pit, b_pit = judged["lr"]["lr_pit"], judged["batch"]["batch_pit"]
        pp = predictive_cell_optimum(test[test["cell"] == name], pred.cells.isel(target=t),
                                     spec.nu, seed=args.seed)
        pp_lo, pp_hi = np.quantile(pp, [0.05, 0.95], axis=0)
        pp_in = bool(pp_lo[0] <= opt["log_lr"] <= pp_hi[0]
                     and pp_lo[1] <= opt["log_batch"] <= pp_hi[1])
        lr_in, b_in = judged["lr"]["lr_in90"], judged["batch"]["batch_in90"]
        point = judged["lr"]["lr_in90_point"] and judged["batch"]["batch_in90_point"]
        rows.append({
            "name": name, "arch": cell["arch"], "n_params": float(cell["n_params"]),
            "n_tokens": float(cell["n_tokens"]), "cell_lr_opt": lr_opt, "cell_batch_opt": b_opt,
            "cell_method": opt["method"], "cell_n_fit": opt["n_fit"],
            "cell_bracketed_by_window": opt["bracketed_by_window"],
            "cell_problems": opt["problems"],
            "ours_lr": float(lr_q["median"]), "ours_lr_lo90": float(lr_q["lo90"]),
            "ours_lr_hi90": float(lr_q["hi90"]), "ours_batch": float(b_q["median"]),
            "ours_batch_lo90": float(b_q["lo90"]), "ours_batch_hi90": float(b_q["hi90"]),
            "steplaw_lr": sl_lr, "steplaw_batch": sl_b,
            "regret_ours_pct": regret_pct(opt, lr_q["median"], b_q["median"]),
            "regret_steplaw_pct": regret_pct(opt, sl_lr, sl_b),
            "lr_predictive_quantile": lr_pit, "batch_predictive_quantile": b_pit,
            "pp_quad_lr_lo90": float(np.exp(pp_lo[0])), "pp_quad_lr_hi90": float(np.exp(pp_hi[0])),
            "pp_quad_batch_lo90": float(np.exp(pp_lo[1])),
            "pp_quad_batch_hi90": float(np.exp(pp_hi[1])), "covered_quad_definition": pp_in,
            "lr_ref_sd": judged["lr"]["lr_ref_sd"],
            "batch_ref_sd": judged["batch"]["batch_ref_sd"],
            "lr_covered": lr_in, "batch_covered": b_in, "covered": lr_in and b_in,
            "covered_point": point})
    table = pd.DataFrame(rows)
    _print_table(table)
    wall = time.perf_counter() - start
    result = {
        "cells": table.to_dict(orient="records"),
        "mean_regret_ours_pct": float(table["regret_ours_pct"].mean()),
        "mean_regret_steplaw_pct": float(table["regret_steplaw_pct"].mean()),
        "n_covered": int(table["covered"].sum()), "n_cells": len(table),
        "n_covered_point": int(table["covered_point"].sum()),
        "n_lr_covered": int(table["lr_covered"].sum()),
        "n_batch_covered": int(table["batch_covered"].sum()),
        "n_covered_quad_definition": int(table["covered_quad_definition"].sum()),
        "diagnostics": diagnostics.report(), "wall_seconds": round(wall, 1), "seed": args.seed,
        "notes": "Step Law applied to MoE with N = active parameters (Step Law fitted dense "
                 "models); regret = relative increase of each cell's quadratic (1% window) over "
                 "its minimum"}
    print(f"\nmean regret: ours {result['mean_regret_ours_pct']:.3f}%, Step Law "
          f"{result['mean_regret_steplaw_pct']:.3f}%; covered (lr AND batch in our 90% "
          f"intervals, allowing for the cell optimum's bootstrap noise): {result['n_covered']}/"
          f"{len(table)} (lr {result['n_lr_covered']}, batch {result['n_batch_covered']}); the "
          f"model's intervals alone: {result['n_covered_point']}/{len(table)}; supplementary, "
          f"covered by the predictive of the cell's 1%-quadratic optimum itself: "
          f"{result['n_covered_quad_definition']}/{len(table)}; "
          f"wall time {wall:.1f} s")
    if args.json:
        print(json.dumps(result, default=str))
    return 0


def _print_table(table: pd.DataFrame) -> None:
    g = lambda v: f"{v:.3g}"  # noqa: E731
    print(f"\n{'cell':<44}{'cell opt lr':>12}{'ours lr [90%]':>32}{'steplaw':>10}"
          f"{'cell opt B':>12}{'ours B [90%]':>32}{'steplaw':>10}"
          f"{'regret ours %':>15}{'steplaw %':>11}{'covered':>9}{'q(lr)':>8}{'q(B)':>8}")
    for r in table.itertuples():
        lr = f"{g(r.ours_lr)} [{g(r.ours_lr_lo90)}, {g(r.ours_lr_hi90)}]"
        b = f"{g(r.ours_batch)} [{g(r.ours_batch_lo90)}, {g(r.ours_batch_hi90)}]"
        print(f"{r.name:<44}{g(r.cell_lr_opt):>12}{lr:>32}{g(r.steplaw_lr):>10}"
              f"{g(r.cell_batch_opt):>12}{b:>32}{g(r.steplaw_batch):>10}"
              f"{r.regret_ours_pct:>15.3f}{r.regret_steplaw_pct:>11.3f}"
              f"{('yes' if r.covered else 'no'):>9}{r.lr_predictive_quantile:>8.3f}"
              f"{r.batch_predictive_quantile:>8.3f}")
    print("q(lr), q(B): quantile of the cell's fitted optimum under our predictive plus its own "
          "bootstrap noise (0.05-0.95: covered)")
    print("\ncell optimum fits:")
    for r in table.itertuples():
        extra = f"; degenerate first: {'; '.join(r.cell_problems)}" if r.cell_problems else ""
        print(f"  {r.name}: {r.cell_method} ({r.cell_n_fit} runs; minimum "
              f"{'inside' if r.cell_bracketed_by_window else 'OUTSIDE'} the window's runs' "
              f"range){extra}")
    print("\nsupplementary: 90% posterior predictive of the cell's 1%-quadratic optimum itself "
          "(grid re-simulated from each draw's bowl, then fitted like the data):")
    for r in table.itertuples():
        print(f"  {r.name}: lr [{g(r.pp_quad_lr_lo90)}, {g(r.pp_quad_lr_hi90)}], B "
              f"[{g(r.pp_quad_batch_lo90)}, {g(r.pp_quad_batch_hi90)}]: "
              f"{'covered' if r.covered_quad_definition else 'NOT covered'}")


if __name__ == "__main__":
    raise SystemExit(main())
