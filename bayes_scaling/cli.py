"""Command line interface: ``bayes-scaling <command> ...``, a thin layer over public functions.

Each command is one ``_add_<cmd>_parser(subparsers)`` plus one ``_run_<cmd>(args) -> int``,
registered in :data:`COMMANDS`. User errors print ``error: ...`` on stderr and exit with 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bayes_scaling import __version__
from bayes_scaling.errors import PosteriorError
from bayes_scaling.spec import SpecError
from bayes_scaling.sweep import FORMATS, Sweep, SweepError, concat_sweeps, read_sweep, write_sweep

USER_ERRORS: tuple[type[Exception], ...] = (SweepError, SpecError, PosteriorError, OSError)
"""Exceptions shown as ``error: <message>`` (exit code 2) rather than a traceback."""


# ----------------------------------------------------------------------------- helpers
def _window(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"window must be >= 0, got {text}")
    return value


def _column_map(pairs: Sequence[str]) -> dict[str, str] | None:
    """``["N=n_params", ...]`` -> ``{"N": "n_params", ...}``."""
    mapping = {}
    for pair in pairs:
        theirs, sep, canonical = pair.rpartition("=")
        if not sep or not theirs or not canonical:
            raise SweepError(f"--column expects THEIRS=CANONICAL, got {pair!r}")
        mapping[theirs] = canonical
    return mapping or None


def _fmt_range(values: list[float] | None) -> str:
    return "unknown (all missing)" if values is None else f"{values[0]:.4g} .. {values[1]:.4g}"


def validation_text(sweep: Sweep, window: float = 0.02, max_rows: int = 20) -> str:
    """The human-readable validation report printed by ``bayes-scaling validate``."""
    summary = sweep.summary(window)
    lines = [f"sweep: {sweep.source}",
             f"runs: {summary['runs']} in {summary['cells']} cells; "
             f"archs: {', '.join(summary['archs'])}; "
             f"data mixes: {', '.join(summary['data_mixes'])}"]
    lines += [f"  {name:<13} {_fmt_range(values)}" for name, values in summary["ranges"].items()]
    lines.append(f"diverged: {summary['n_diverged']}; censored: {summary['n_censored']} "
                 f"(window {window:g}); excluded: {summary['n_excluded']}")
    lines += [f"  censored, {reason}: {count}" for reason, count in summary["censored"].items()]
    lines += ["", "cells:", sweep.cells().to_string(float_format=lambda x: f"{x:.4g}")]
    report = sweep.exclusion_report(window)
    if len(report):
        shown = report if max_rows <= 0 else report.head(max_rows)
        lines += ["", f"censored and excluded rows ({len(shown)} of {len(report)} shown; "
                  "--max-rows 0 shows all, --json gives counts):",
                  shown.to_string(index=False)]
    if summary["warnings"]:
        lines += ["", "warnings:", *[f"  - {w}" for w in summary["warnings"]]]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- validate
def _add_validate_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate", help="check sweep file(s) and report runs, cells, ranges and censoring",
        description="Read and validate sweep files (several are concatenated); print runs, "
                    "cells, label and value ranges and the censoring/exclusion report.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--format", choices=FORMATS, help="file format (default: by suffix)")
    p.add_argument("--column", action="append", default=[], metavar="THEIRS=CANONICAL",
                   help="rename a column onto the canonical schema (repeatable)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--window", type=_window, default=0.02,
                   help="fit window: runs with loss > (1 + window) * cell best are censored")
    p.add_argument("--max-rows", type=int, default=20,
                   help="censored/excluded rows to print (0: all)")


def _run_validate(args: argparse.Namespace) -> int:
    columns = _column_map(args.column)
    sweep = concat_sweeps(read_sweep(path, columns=columns, format=args.format)
                          for path in args.paths)
    if args.json:
        print(json.dumps(sweep.summary(args.window), allow_nan=False))
    else:
        print(validation_text(sweep, args.window, args.max_rows))
    return 0


# ----------------------------------------------------------------------------- simulate
def _add_simulate_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate", help="write a synthetic sweep with a known truth",
        description="Simulate a sweep (bayes_scaling.simulate.simulate_sweep); write it to "
                    "--out and the truth to <out stem>.truth.nc next to it.")
    p.add_argument("--out", type=Path, required=True, help="sweep file (.csv/.parquet/.jsonl)")
    p.add_argument("--seed", type=int, default=0)


def _run_simulate(args: argparse.Namespace) -> int:
    from bayes_scaling.simulate import simulate_sweep

    sweep, truth = simulate_sweep(seed=args.seed)
    write_sweep(sweep, args.out)
    truth_path = args.out.with_name(f"{args.out.stem}.truth.nc")
    truth.to_netcdf(truth_path, engine="h5netcdf")
    print(f"simulated {len(sweep.runs)} runs in {len(sweep.cells())} cells (seed {args.seed})"
          f" -> {args.out}; truth -> {truth_path}")
    return 0


# ----------------------------------------------------------------------------- fit
def _add_fit_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fit", help="fit the hierarchical scaling-law model to one or more sweeps",
        description="Fit the model (nutpie through PyMC), print the law parameters with 90%% "
                    "intervals and the sampling diagnostics, save the posterior (NetCDF). "
                    "Exits with 3 when the diagnostics show problems, unless "
                    "--allow-bad-diagnostics.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="sweep file(s)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="file format (default: by suffix); 'steplaw' for the Step Law CSVs")
    p.add_argument("--model", type=Path, default=None,
                   help="model spec TOML (default: the built-in models/default.toml)")
    p.add_argument("--out", type=Path, required=True, help="posterior file (.nc)")
    p.add_argument("--draws", type=int, default=None, help="draws per chain (spec default)")
    p.add_argument("--tune", type=int, default=None, help="tuning steps per chain")
    p.add_argument("--chains", type=int, default=None, help="chains")
    p.add_argument("--seed", type=int, default=0, help="random seed (results reproducible)")
    p.add_argument("--allow-bad-diagnostics", action="store_true",
                   help="exit 0 even when R-hat, ESS, divergences or E-BFMI look bad")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_fit(args: argparse.Namespace) -> int:
    from bayes_scaling.fit import diagnose, fit, save_posterior
    from bayes_scaling.spec import load_spec
    from bayes_scaling.summary import format_law_table, law_table

    spec = load_spec(args.model)
    sweeps = [read_sweep(p, format=args.format, arch_labels=spec.archs or None)
              for p in args.paths]
    sweep = concat_sweeps(sweeps) if len(sweeps) > 1 else sweeps[0]
    summary = sweep.summary(spec.window)
    print(f"sweep: {summary['runs']} runs in {summary['cells']} cells "
          f"({', '.join(summary['archs'])}; mixes {', '.join(summary['data_mixes'])}); "
          f"censored {summary['n_censored']}, excluded {summary['n_excluded']}", flush=True)
    print(f"model: {spec.name} ({spec.source}); sampler {spec.sampler}", flush=True)
    posterior = fit(sweep, spec, seed=args.seed, draws=args.draws, tune=args.tune,
                    chains=args.chains, progressbar=not args.quiet)
    path = save_posterior(posterior, args.out)
    print(f"\nlaw parameters (natural logs; intercepts at N = 1e9, D = 1e11, TPP = 20; "
          f"batch in tokens):\n{format_law_table(law_table(posterior))}")
    diagnostics = diagnose(posterior)
    print(f"\n{diagnostics.report()}\nsampling took {posterior.attrs['fit_seconds']:.1f} s; "
          f"posterior -> {path}")
    if not diagnostics.ok and not args.allow_bad_diagnostics:
        print("error: sampling diagnostics show problems (see above); rerun with more "
              "--tune/--draws, or pass --allow-bad-diagnostics to accept them",
              file=sys.stderr)
        return 3
    return 0


# ----------------------------------------------------------------------------- registry
Command = tuple[Callable[[argparse._SubParsersAction], None],
                Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {
    "validate": (_add_validate_parser, _run_validate),
    "simulate": (_add_simulate_parser, _run_simulate),
    "fit": (_add_fit_parser, _run_fit),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="bayes-scaling",
        description="Bayesian scaling laws for the optimal lr, batch size and weight decay.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_parser, run) in COMMANDS.items():
        add_parser(subparsers)
        subparsers.choices[name].set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayes-scaling`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python docs' recipe
        return 1
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
