"""Command line interface: ``bayes-scaling <command> ...``, a thin layer over public functions.

Each command is one ``_add_<cmd>_parser(subparsers)`` here plus one ``run_<cmd>(args) -> int``
in :mod:`bayes_scaling.present.cli_commands`, registered in :data:`COMMANDS`; defaults and
argument checks live in :mod:`bayes_scaling.present.cli_args`. User errors print one
``error: ...`` line on stderr and exit with 2; bad sampling diagnostics exit with 3.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from bayes_scaling import __version__
from bayes_scaling.errors import BayesScalingWarning
from bayes_scaling.present import cli_args as defaults
from bayes_scaling.present import cli_commands as run
from bayes_scaling.present import cli_update
from bayes_scaling.present.cli_args import (
    EXIT_USER_ERROR,
    USER_ERRORS,
    count,
    percent,
    positive,
    window,
)

FORMATS = ("csv", "parquet", "jsonl", "steplaw")
"""Sweep file formats (``bayes_scaling.data`` readers); checked against the data stage in
tests, listed here so ``--help`` does not import it."""

__all__ = ["COMMANDS", "USER_ERRORS", "build_parser", "main"]


def _add_column_map_arguments(p: argparse.ArgumentParser, file: str = "the file") -> None:
    """--column and --columns-file: how the columns of ``file`` map onto the schema."""
    p.add_argument("--column", action="append", default=[], metavar="THEIRS=CANONICAL",
                   help=f"map a column of {file} onto the schema (repeatable), e.g. "
                        "config.lr=lr; canonical names: run_id, arch, data_mix, n_params, "
                        "n_tokens, batch_tokens, batch_seqs (batch in sequences: times "
                        "seq_len), seq_len, lr, weight_decay, loss, status")
    p.add_argument("--columns-file", type=Path, default=None, metavar="TOML",
                   help="the same maps in a file: a [columns] table (THEIRS = \"canonical\") "
                        "and an optional [status] table; --column/--status win over it")


def _add_sweep_input_arguments(p: argparse.ArgumentParser) -> None:
    """--format and the column/status maps of every command that reads a sweep file."""
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="file format (default: by suffix); 'steplaw' for the Step Law CSVs")
    _add_column_map_arguments(p)
    p.add_argument("--status", action="append", default=[],
                   metavar="THEIRS=ok|diverged|excluded",
                   help="map a run state of the status column (repeatable); built in: "
                        "finished, completed = ok; crashed, failed, killed, running = "
                        "excluded (listed with the reason, never censored)")


def _add_target_arguments(p: argparse.ArgumentParser, params: str, tokens: str,
                          required: bool) -> None:
    """The target run's size, arch and mix (``params``/``tokens``: the flag names)."""
    p.add_argument(params, type=positive, required=required, default=None,
                   help="target non-embedding (for MoE: active) parameters N, e.g. 7e9 or 7B")
    p.add_argument("--total-params", type=positive, default=None, dest="total_params",
                   help="a sparse (MoE) target's total parameters (needed where the arch was "
                        "fitted with n_params_total: its lr law runs in total parameters)")
    p.add_argument(tokens, type=positive, required=required, default=None,
                   help="target training tokens D, e.g. 2e12 or 2T")
    p.add_argument("--arch", default=None,
                   help="target architecture, e.g. dense or moe (default: "
                        + ("the posterior's only arch)" if required else "the first in the sweep)"))
    p.add_argument("--mix", default=None, help=defaults.MIX_HELP)


def _add_validate_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate", help="check sweep file(s) and report runs, cells, ranges and censoring",
        description="Read and validate sweep files (several are concatenated); print runs, "
                    "cells, label and value ranges and the censoring/exclusion report.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    _add_sweep_input_arguments(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--window", type=window, default=defaults.WINDOW,
                   help="fit window: runs with loss > (1 + window) * cell best are censored")
    p.add_argument("--max-rows", type=int, default=defaults.MAX_ROWS,
                   help="censored/excluded rows to print (0: all)")


def _add_simulate_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate", help="write a synthetic sweep with a known truth",
        description="Simulate a sweep (bayes_scaling.data.simulate.simulate_sweep); write it to "
                    "--out and the truth to <out stem>.truth.nc next to it.")
    p.add_argument("--out", type=Path, required=True, help="sweep file (.csv/.parquet/.jsonl)")
    p.add_argument("--seed", type=int, default=0)


def _add_fit_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fit", help="fit the hierarchical scaling-law model to one or more sweeps",
        description="Fit the model (nutpie through PyMC), print the law parameters with 90% "
                    "intervals and the sampling diagnostics, save the posterior (NetCDF). "
                    "Exits with 3 when the diagnostics show problems, unless "
                    "--allow-bad-diagnostics.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="sweep file(s)")
    _add_sweep_input_arguments(p)
    p.add_argument("--model", type=Path, default=None,
                   help="model spec TOML (default: the built-in models/default.toml)")
    p.add_argument("--out", type=Path, required=True, help="posterior file (.nc)")
    p.add_argument("--draws", type=int, default=None,
                   help="draws per chain (default: the spec's; 'auto' = 1000, doubled when a "
                        "cell has fewer runs in the window than bowl unknowns, doubled again "
                        "below 10 cells)")
    p.add_argument("--tune", type=int, default=None, help="tuning steps per chain")
    p.add_argument("--chains", type=int, default=None, help="chains")
    p.add_argument("--seed", type=int, default=0, help="random seed (results reproducible)")
    p.add_argument("--allow-bad-diagnostics", action="store_true",
                   help="exit 0 even when R-hat, ESS, divergences or E-BFMI look bad")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_predict_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="posterior predictive lr, batch and weight decay at a target scale",
        description="Predict the optimal peak lr, batch size (tokens and sequences), AdamW "
                    "weight decay and loss of a new run at (N, D) from a fitted posterior: "
                    "median and 90% interval next to each published law's value, and the "
                    "expected regret (loss increase) of each law's choice.")
    p.add_argument("posterior", type=Path, help="posterior file written by `fit` (.nc)")
    _add_target_arguments(p, "--params", "--tokens", required=True)
    p.add_argument("--seq-len", type=positive, default=defaults.SEQ_LEN,
                   help="sequence length (converts batch tokens to sequences)")
    p.add_argument("--batch-tokens", type=positive, default=None,
                   help="a batch size (tokens) the run must use: also predict lr at it")
    p.add_argument("--max-regret", type=percent, default=None, metavar="PCT",
                   help="also the largest batch whose expected regret (lr re-optimised) stays "
                        "within PCT percent of the loss, e.g. 0.1%% or 0.1")
    p.add_argument("--figure", type=Path, default=None, metavar="FILE",
                   help="with --max-regret: the regret-against-batch figure (.png, .svg, .pdf)")
    p.add_argument("--seed", type=int, default=0, help="seed of the new cell's draws")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _add_report_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="one static HTML page about a posterior (figures embedded)",
        description="Write a self-contained HTML report of a fitted posterior: data summary, "
                    "sampling diagnostics, laws with 90% intervals next to the published "
                    "values, the predicted optimum at the target(s), the expected regret "
                    "over (lr, batch), the proposed next runs, and every figure (embedded as "
                    "PNG; the page needs no network). Without --params/--tokens the target "
                    "is 10x the largest fitted N and D.")
    p.add_argument("posterior", type=Path, help="posterior file written by `fit` (.nc)")
    p.add_argument("--out", type=Path, default=defaults.REPORT_OUT, help="HTML file to write")
    p.add_argument("--params", type=positive, default=None,
                   help="target non-embedding (for MoE: active) parameters N, e.g. 7B")
    p.add_argument("--tokens", type=positive, default=None,
                   help="target training tokens D, e.g. 2T")
    p.add_argument("--arch", action="append", default=None,
                   help="target architecture (repeatable: one target per arch; default: "
                        "every fitted arch); proposals are for the first")
    p.add_argument("--mix", default=None, help=defaults.MIX_HELP)
    p.add_argument("-k", "--k", dest="k", type=count, default=defaults.K_REPORT,
                   help="next runs to propose (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of predictions and proposals")
    p.add_argument("--budget-flops", type=positive, default=None,
                   help="total FLOPs the proposed runs may cost")
    p.add_argument("--figures", type=Path, default=None,
                   help="also save every figure as PNG and SVG into this folder")


def _add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="the whole job on a simulated sweep: fit, predict, propose, report",
        description="Simulate the embedded default sweep (dense + MoE, two data mixes, weight "
                    "decay varied), validate it, fit the model, predict the optimum for a 7B "
                    "dense and a 7B-active MoE run on 2T tokens, propose the next runs, and "
                    "write sweep.csv, truth.nc, posterior.nc, figures/ and report.html into "
                    "--out.")
    p.add_argument("--out", type=Path, default=defaults.DEMO_OUT, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random")
    p.add_argument("--draws", type=int, default=None,
                   help="draws per chain (default: the spec's auto, 1000 here); tuning "
                        "steps follow unless --tune is given")
    p.add_argument("--tune", type=int, default=None, help="tuning steps per chain")
    p.add_argument("--chains", type=int, default=None, help="chains (default: the spec's 4)")
    p.add_argument("-k", "--k", dest="k", type=count, default=defaults.K_REPORT,
                   help="next runs to propose (default 3)")


def _add_propose_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "propose", help="the next run(s) worth their cost for the target, or 'nothing'",
        description="Score candidate runs (default: new cells on a ladder of sizes up to a "
                    "tenth of the target, and the fitted cells; single runs, 3-run lr lines "
                    "and 5-run crosses around each cell's predicted optimum; or the rows of "
                    "--candidates, or those of --pool the fit has not seen) by their value "
                    "for the target: the expected drop of its expected regret (the loss lost "
                    "to a wrong lr / batch / weight decay), priced as the target compute that "
                    "would buy as much loss, per FLOP of the run (or, with --objective, by "
                    "information gain per FLOP), simulating divergence and censoring. Picks "
                    "at most -k within --budget-flops, and only runs worth their cost.")
    p.add_argument("posterior", type=Path, help="posterior file written by `fit` (.nc)")
    _add_target_arguments(p, "--target-params", "--target-tokens", required=True)
    given = p.add_mutually_exclusive_group()
    given.add_argument("--candidates", type=Path, default=None,
                       help="candidate runs (.csv/.parquet/.jsonl): arch, data_mix, n_params, "
                            "n_tokens, lr, batch_tokens[, weight_decay, seq_len, group, "
                            "cost_flops]; default: generated")
    given.add_argument("--pool", type=Path, default=None, metavar="FILE",
                       help="propose from the rows of this table of runnable configurations "
                            "(.csv/.parquet/.jsonl; a sweep file will do): arch, data_mix, "
                            "n_params, n_tokens, lr, batch_tokens or batch_seqs[, "
                            "weight_decay, seq_len, group (rows that run together), "
                            "cost_flops or cost (default 6ND)]; other columns are ignored, "
                            "rows already in the fitted sweep are not proposed again")
    _add_column_map_arguments(p, "the --pool file")
    p.add_argument("--budget-flops", type=positive, default=None,
                   help="total FLOPs the picks may cost")
    p.add_argument("-k", "--k", dest="k", type=count, default=defaults.K_PROPOSE,
                   help="runs or mini-sweeps to pick (default 1)")
    p.add_argument("--objective", choices=("value", "per_flop", "total", "auto"),
                   default="value", help="value (default): value per FLOP, with the stopping "
                   "rule (with --budget-flops: the better, value less cost, of that and the "
                   "picks by value itself); per_flop / total / auto: expected information gain")
    p.add_argument("--seed", type=int, default=0, help="seed (scores are reproducible)")
    p.add_argument("--draws", type=int, default=defaults.PROPOSE_DRAWS,
                   help="posterior draws used (thinned)")
    p.add_argument("--outcomes", type=int, default=defaults.PROPOSE_OUTCOMES,
                   help="simulated outcomes per re-scored candidate")
    p.add_argument("--show", type=int, default=defaults.PROPOSE_SHOW,
                   help="alternatives to list after the picks")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: runs (the picks), alternatives, target, ...")


def _add_check_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check", help="leave-one-cell-out check of a posterior, or (--prior) the priors",
        description="Without --prior: the leave-one-cell-out predictive check of a posterior "
                    "(PATH: the file `fit --out` wrote) on its own sweep. Each chosen cell is "
                    "held out, the sweep refitted without it (the posterior's spec and "
                    "sampler settings, chains one after the other, --jobs refits at a time) "
                    "and the cell predicted as a new one; the prediction is scored against "
                    "the optimum of a quadratic fitted to the cell's runs: regret, whether the "
                    "50% and 90% intervals contain it, PITs, and the PIT of every held-out "
                    "run's loss. Prints one line per finished refit, the table and a verdict "
                    "on coverage. With --prior: PATH... are sweep files; draw every model "
                    "variable from the spec's priors for the sweep's cells (no fit), and show "
                    "the prior 90% ranges of lr_opt, batch_opt and the optimal loss at each "
                    "cell and at the target next to each cell's best run (a table, and "
                    "prior_predictive.png/.svg in --out).")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="a posterior file (.nc); with --prior, sweep file(s)")
    p.add_argument("--prior", action="store_true",
                   help="the prior predictive check of sweep files instead")
    p.add_argument("--cells", type=str, default=None, metavar="N|ID,ID",
                   help="hold out N random cells (--seed), or the cells with these ids (as "
                        "`validate` and this table print them); default: every cell")
    p.add_argument("--jobs", type=count, default=None,
                   help="refits at a time, one core each (default: the number of cores)")
    p.add_argument("--figure", type=Path, default=None, metavar="FILE",
                   help="calibration figure (.png, .svg or .pdf): PIT histograms and "
                        "coverage against nominal")
    p.add_argument("--prior-sensitivity", type=Path, default=None, metavar="SPEC",
                   help="also fit the whole sweep under this spec TOML (for example "
                        "models/literature.toml) and compare: every cell's predicted optima "
                        "and the exponents side by side, and how far they move in posterior "
                        "sds")
    _add_sweep_input_arguments(p)
    p.add_argument("--model", type=Path, default=None,
                   help="--prior: model spec TOML (default: the built-in models/default.toml)")
    _add_target_arguments(p, "--target-params", "--target-tokens", required=False)
    p.add_argument("--draws", type=count, default=None,
                   help="draws per chain of each refit (default: the posterior's); --prior: "
                        f"prior draws (default {defaults.PRIOR_DRAWS})")
    p.add_argument("--tune", type=count, default=None,
                   help="tuning steps per chain of each refit (default: the posterior's)")
    p.add_argument("--chains", type=count, default=None,
                   help="chains of each refit (default: the posterior's)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed (cells chosen, refits, predictions; --prior: draws)")
    p.add_argument("--out", type=Path, default=None,
                   help="results file: .json (everything) or .csv (the cell table, plus "
                        "<stem>.runs.csv, <stem>.meta.json and <stem>.sensitivity.csv); --prior: "
                        "folder for the figure")
    p.add_argument("--json", action="store_true",
                   help="print the result as one JSON object (--prior: the table as records)")


def _add_predict_loss_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict-loss", help="posterior predictive final loss of given runs",
        description="The posterior predictive final loss of each run of --runs (fitted cells "
                    "use their own draws, new cells the law plus new residuals), with 50% "
                    "and 90% intervals.")
    p.add_argument("posterior", type=Path, help="posterior file written by `fit` (.nc)")
    p.add_argument("--runs", type=Path, required=True,
                   help="runs (.csv/.parquet/.jsonl): arch, data_mix, n_params, n_tokens, lr, "
                        "batch_tokens[, weight_decay]")
    p.add_argument("--seed", type=int, default=0, help="seed of the new cells and the noise")
    p.add_argument("--json", action="store_true", help="print the table as JSON records")


def _add_update_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "update", help="add a few runs to a fitted posterior (PSIS reweighting, or a refit)",
        description="Add the runs of sweep file(s) to a fitted posterior: the draws are "
                    "reweighted by the new runs' likelihood (Pareto-smoothed importance "
                    "sampling) where its k-hat is at most 0.7 and the runs fall in fitted "
                    "cells; otherwise the combined sweep is refitted. Saves the result.")
    p.add_argument("posterior", type=Path, help="posterior file written by `fit` (.nc)")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="sweep file(s) of new runs")
    _add_sweep_input_arguments(p)
    p.add_argument("--out", type=Path, required=True, help="updated posterior file (.nc)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling (and a refit)")
    p.add_argument("--no-refit", action="store_true",
                   help="only reweight: exit 3 when the runs need a refit")


Command = tuple[Callable[[argparse._SubParsersAction], None],
                Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {
    "validate": (_add_validate_parser, run.run_validate),
    "simulate": (_add_simulate_parser, run.run_simulate),
    "fit": (_add_fit_parser, run.run_fit),
    "predict": (_add_predict_parser, run.run_predict),
    "report": (_add_report_parser, run.run_report),
    "demo": (_add_demo_parser, run.run_demo),
    "propose": (_add_propose_parser, run.run_propose),
    "check": (_add_check_parser, run.run_check),
    "predict-loss": (_add_predict_loss_parser, run.run_predict_loss),
    "update": (_add_update_parser, cli_update.run_update),
}
"""Command name -> (add its subparser, run it)."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="bayes-scaling",
        description="Bayesian scaling laws for the optimal lr, batch size and weight decay.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_parser, runner) in COMMANDS.items():
        add_parser(subparsers)
        subparsers.choices[name].set_defaults(run=runner)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The package's warnings as one ``warning: ...`` line on stderr; others as Python's."""
    if issubclass(category, BayesScalingWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line).rstrip(),
              file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayes-scaling`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return args.run(args)
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python docs' recipe
        return 1
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
