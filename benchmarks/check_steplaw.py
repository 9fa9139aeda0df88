"""Leave-one-cell-out check on the Step Law dense + MoE sweeps (33 cells).

Fits the default model to both sweeps (or reuses --posterior), then runs the check of
`bayes-scaling check` (bayes_scaling.heldout.check): each cell held out in turn, the sweep
refitted without it (--jobs refits at a time, chains sequential inside each), the cell
predicted as a new one and scored against the optimum of a quadratic fitted to its own runs
(bayes_scaling.heldout.reference): regret of the predicted median (lr, batch), whether the
50% and 90% intervals contain the cell's optimum, PITs, the loss level's error and the PIT
of every held-out run's loss. Prints one line per refit, the table, the coverage against
nominal, the mean regret and the total time.

The full run is 33 refits (plus the fit): about 33 x 60 s of sampling on 2 cores. A quick
smoke run:

    .venv/bin/python benchmarks/check_steplaw.py --cells 2 --draws 200 --tune 200
    .venv/bin/python benchmarks/check_steplaw.py [--cells N|ID,ID] [--jobs N] [--seed 0]
        [--draws --tune --chains] [--posterior post.nc] [--out check.json]
        [--figure calibration.png] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPLAW = ROOT.parent / "shared" / "data" / "steplaw"
FILES = ("dense_lr_bs_loss.csv", "moe_lr_bs_loss.csv")


def _say(line: str) -> None:
    print(line, flush=True)


def _posterior(args: argparse.Namespace):
    """The fit of both Step Law sweeps: --posterior, or fitted now with the settings given."""
    from bayes_scaling.data import concat_sweeps, read_steplaw
    from bayes_scaling.model.fit import diagnose, fit, load_posterior, save_posterior

    if args.posterior is not None and args.posterior.is_file():
        posterior = load_posterior(args.posterior)
        _say(f"posterior: {args.posterior} (fit seed {posterior.attrs['seed']})")
        return posterior
    sweep = concat_sweeps([read_steplaw(STEPLAW / f) for f in FILES])
    _say(f"fit: {len(sweep.runs)} runs in {sweep.runs['cell'].nunique()} cells (default spec)")
    posterior = fit(sweep, seed=args.seed, draws=args.draws, tune=args.tune,
                    chains=args.chains, progressbar=False)
    _say(f"{diagnose(posterior).report()}; sampling {posterior.attrs['fit_seconds']:.1f} s")
    if args.posterior is not None:
        save_posterior(posterior, args.posterior)
        _say(f"posterior -> {args.posterior}")
    return posterior


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default=None,
                        help="N random cells (--seed) or cell ids, comma-separated (default: "
                             "all 33)")
    parser.add_argument("--jobs", type=int, default=None, help="refits at a time (cores)")
    parser.add_argument("--seed", type=int, default=0, help="fit, cells, refits, predictions")
    parser.add_argument("--draws", type=int, default=None, help="draws per chain (spec)")
    parser.add_argument("--tune", type=int, default=None, help="tuning steps (spec)")
    parser.add_argument("--chains", type=int, default=None, help="chains (spec)")
    parser.add_argument("--posterior", type=Path, default=None,
                        help="reuse this fit of both sweeps if it exists, else save it here")
    parser.add_argument("--out", type=Path, default=None, help="results (.json or .csv)")
    parser.add_argument("--figure", type=Path, default=None, help="calibration figure (.png)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    missing = [str(STEPLAW / f) for f in FILES if not (STEPLAW / f).is_file()]
    if missing:
        print(f"error: this benchmark needs the Step Law files, missing: {', '.join(missing)}",
              file=sys.stderr)
        return 2

    from bayes_scaling.heldout.cells import parse_cells
    from bayes_scaling.heldout.loco import check
    from bayes_scaling.present.text_check import check_text

    start = time.perf_counter()
    posterior = _posterior(args)
    cells = None if args.cells is None else parse_cells(args.cells)
    result = check(posterior, cells, seed=args.seed, jobs=args.jobs, draws=args.draws,
                   tune=args.tune, chains=args.chains, progress=_say)
    wall = time.perf_counter() - start
    print(check_text(result))
    scored = result.cells[result.cells["status"] == "scored"]
    cov = result.coverage.set_index(["quantity", "level"])
    print(f"\n{len(scored)} cells scored; mean regret {scored['regret_pct'].mean():.3f}%; "
          + "; ".join(f"{q} {lvl:.0%}: {cov.loc[(q, lvl), 'hits']}/{cov.loc[(q, lvl), 'n']}"
                      for q, lvl in cov.index if lvl in (0.5, 0.9))
          + f"; total {wall:.0f} s (check {result.attrs['seconds']:.0f} s)")
    if args.out is not None:
        _say(f"results -> {', '.join(map(str, result.save(args.out)))}")
    if args.figure is not None:
        from bayes_scaling.present.plots_check import plot_check_calibration

        plot_check_calibration(result).savefig(args.figure, dpi=110)
        _say(f"figure -> {args.figure}")
    if args.json:
        summary = {"n_scored": len(scored),
                   "mean_regret_pct": float(scored["regret_pct"].mean()),
                   "mean_abs_loss_err_pct": float(scored["loss_err_pct"].abs().mean()),
                   "wall_seconds": round(wall, 1)}
        print(json.dumps({**summary, **result.to_dict()}, allow_nan=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
