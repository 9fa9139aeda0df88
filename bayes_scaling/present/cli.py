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

import numpy as np
import pandas as pd

from bayes_scaling import __version__
from bayes_scaling.data.sweep import (
    FORMATS,
    Sweep,
    SweepError,
    concat_sweeps,
    read_sweep,
    write_sweep,
)
from bayes_scaling.design.candidates import CandidateError
from bayes_scaling.errors import PosteriorError
from bayes_scaling.model.spec import SpecError
from bayes_scaling.predict.draws import TargetError

USER_ERRORS: tuple[type[Exception], ...] = (SweepError, SpecError, PosteriorError, OSError,
                                            TargetError, CandidateError)
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
        description="Simulate a sweep (bayes_scaling.data.simulate.simulate_sweep); write it to "
                    "--out and the truth to <out stem>.truth.nc next to it.")
    p.add_argument("--out", type=Path, required=True, help="sweep file (.csv/.parquet/.jsonl)")
    p.add_argument("--seed", type=int, default=0)


def _run_simulate(args: argparse.Namespace) -> int:
    from bayes_scaling.data.simulate import simulate_sweep

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
    from bayes_scaling.model.fit import diagnose, fit, save_posterior
    from bayes_scaling.model.spec import load_spec
    from bayes_scaling.present.summary import format_law_table, law_table

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


# ----------------------------------------------------------------------------- predict
_PREDICT_ROWS = ("lr_opt", "batch_tokens_opt", "batch_seqs_opt", "weight_decay_opt", "tau_opt",
                 "loss_opt", "lr_opt_at_batch", "weight_decay_opt_at_batch", "loss_opt_at_batch")
_PUBLISHED_COLUMN = {"batch_seqs_opt": "batch_sequences_opt"}
_PREDICT_LAWS = ("steplaw", "deepseek", "powerlines")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _add_predict_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="posterior predictive lr, batch and weight decay at a target scale",
        description="Predict the optimal peak lr, batch size (tokens and sequences), AdamW "
                    "weight decay and loss of a new run at (N, D) from a fitted posterior: "
                    "median and 90%% interval next to each published law's value, and the "
                    "expected regret (loss increase) of each law's choice.")
    p.add_argument("posterior", type=Path, help="posterior file written by `fit` (.nc)")
    p.add_argument("--params", type=_positive, required=True,
                   help="non-embedding (for MoE: active) parameters N")
    p.add_argument("--tokens", type=_positive, required=True, help="training tokens D")
    p.add_argument("--arch", required=True, help="architecture family, e.g. dense or moe")
    p.add_argument("--mix", default=None,
                   help="data mix (default: the fitted mix if there is one, else 'default'; "
                        "a mix absent from the fit draws its offset from the mix population)")
    p.add_argument("--seq-len", type=_positive, default=2048.0,
                   help="sequence length (converts batch tokens to sequences)")
    p.add_argument("--batch-tokens", type=_positive, default=None,
                   help="a batch size (tokens) the run must use: also predict lr at it")
    p.add_argument("--seed", type=int, default=0, help="seed of the new cell's draws")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _predict_choices(summary: pd.DataFrame, published: pd.DataFrame,
                     batch: float | None) -> pd.DataFrame:
    """(name, lr, batch_tokens) choices whose expected regret is reported."""
    med = summary.set_index("quantity")["median"]
    law = published.set_index("law")
    rows = [("ours (median)", med["lr_opt"], med["batch_tokens_opt"])]
    rows += [(name, law.loc[name, "lr_opt"], law.loc[name, "batch_tokens_opt"])
             for name in ("steplaw", "deepseek")]
    if batch is not None:
        rows += [("ours at the given batch", med["lr_opt_at_batch"], batch),
                 ("steplaw lr at the given batch", law.loc["steplaw", "lr_opt"], batch)]
    return pd.DataFrame(rows, columns=["choice", "lr", "batch_tokens"])


def _predict_text(result: dict) -> str:
    t = result["target"]
    lines = [f"target: {t['arch']}, mix {t['data_mix']}, N = {t['n_params']:.4g} params, "
             f"D = {t['n_tokens']:.4g} tokens, seq_len {t['seq_len']:g}"
             + (f", batch fixed at {t['batch_tokens']:.4g} tokens" if t["batch_tokens"] else ""),
             *[f"note: {n}" for n in result["notes"]], "",
             f"{'quantity':<26}{'median':>11}  {'90% interval':<24}"
             + "".join(f"{law:>12}" for law in _PREDICT_LAWS)]
    fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    for q in _PREDICT_ROWS:
        if q not in result:
            continue
        r = result[q]
        band = f"[{fmt(r['lo90'])}, {fmt(r['hi90'])}]"
        pub = "".join(f"{fmt(result['published'][law].get(q)):>12}" for law in _PREDICT_LAWS)
        lines.append(f"{q:<26}{fmt(r['median']):>11}  {band:<24}{pub}")
    lines += ["", "expected regret: loss increase over each draw's optimum (weight decay at "
              "its best for each choice); % of the optimal loss, 90% interval",
              f"{'choice':<31}{'lr':>10}{'batch_tokens':>14}{'regret':>10}{'regret %':>10}"
              f"  {'90% interval':<18}"]
    for r in result["regret"]:
        lines.append(f"{r['choice']:<31}{fmt(r['lr']):>10}{fmt(r['batch_tokens']):>14}"
                     f"{fmt(r['expected_regret']):>10}{fmt(r['expected_regret_pct']):>10}"
                     f"  [{fmt(r['regret_pct_lo90'])}, {fmt(r['regret_pct_hi90'])}]")
    return "\n".join(line.rstrip() for line in lines)


def _run_predict(args: argparse.Namespace) -> int:
    from bayes_scaling.model.fit import load_posterior
    from bayes_scaling.model.laws import published_optima
    from bayes_scaling.predict.predict import predict
    from bayes_scaling.predict.regret import expected_regret

    posterior = load_posterior(args.posterior)
    mixes = [str(m) for m in posterior["posterior"]["mix"].values]
    mix = args.mix or (mixes[0] if len(mixes) == 1 else "default")
    notes = [] if mix in mixes else [
        f"mix '{mix}' is not in the fit (fitted: {', '.join(mixes)}): its offset is drawn "
        "from the mix population" + ("; pass --mix to choose one" if args.mix is None else "")]
    notes.append("published laws: weight decay = Power Lines timescale tau at that law's lr "
                 "and batch; Bjorck et al. needs an anchor run and is not shown; for MoE, "
                 "N = active parameters")
    target = {"arch": args.arch, "data_mix": mix, "n_params": args.params,
              "n_tokens": args.tokens, "seq_len": args.seq_len}
    pred = predict(posterior, {**target, "batch_tokens": args.batch_tokens or np.nan},
                   seed=args.seed)
    published = published_optima(args.params, args.tokens, int(args.seq_len))
    choices = _predict_choices(pred.summary, published, args.batch_tokens)
    regret = expected_regret(posterior, target, lr=choices["lr"], seed=args.seed,
                             batch_tokens=choices["batch_tokens"]).to_dataframe()
    result: dict = {"target": {**target, "batch_tokens": args.batch_tokens},
                    "posterior": str(args.posterior), "seed": args.seed, "notes": notes}
    for row in pred.summary.to_dict(orient="records"):
        result[row["quantity"]] = {k: _finite(row[k]) for k in
                                   ("median", "mean", "lo50", "hi50", "lo90", "hi90")}
    by_law = published.set_index("law")
    result["published"] = {
        law: {q: _finite(by_law.loc[law, _PUBLISHED_COLUMN.get(q, q)])
              for q in ("lr_opt", "batch_tokens_opt", "batch_seqs_opt", "weight_decay_opt",
                        "tau_opt") if law == "powerlines" or q != "tau_opt"}
        for law in _PREDICT_LAWS}
    result["regret"] = [
        {"choice": c, "lr": _finite(r.lr), "batch_tokens": _finite(r.batch_tokens),
         "expected_regret": _finite(r.expected_regret),
         "expected_regret_pct": _finite(r.expected_regret_pct),
         "regret_pct_lo90": _finite(r.regret_pct_lo), "regret_pct_hi90": _finite(r.regret_pct_hi)}
        for c, r in zip(choices["choice"], regret.itertuples(), strict=True)]
    print(json.dumps(result, allow_nan=False) if args.json else _predict_text(result))
    return 0


# ----------------------------------------------------------------------------- report, demo
def _add_report_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="one static HTML page about a posterior (figures embedded)",
        description="Write a self-contained HTML report of a fitted posterior: data summary, "
                    "sampling diagnostics, laws with 90%% intervals next to the published "
                    "values, the predicted optimum at the target(s), the expected regret "
                    "over (lr, batch), the proposed next runs, and every figure (embedded as "
                    "PNG; the page needs no network). Without --params/--tokens the target "
                    "is 10x the largest fitted N and D.")
    p.add_argument("posterior", type=Path, help="posterior file written by `fit` (.nc)")
    p.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write")
    p.add_argument("--params", type=_positive, default=None,
                   help="target non-embedding (for MoE: active) parameters N")
    p.add_argument("--tokens", type=_positive, default=None,
                   help="target training tokens D")
    p.add_argument("--arch", action="append", default=None,
                   help="target architecture (repeatable: one target per arch; default: "
                        "every fitted arch); proposals are for the first")
    p.add_argument("--mix", default=None, help="target data mix (default: the most common "
                                                "fitted mix)")
    p.add_argument("--k", type=int, default=3, help="next runs to propose (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of predictions and proposals")
    p.add_argument("--figures", type=Path, default=None,
                   help="also save every figure as PNG and SVG into this folder")


def _run_report(args: argparse.Namespace) -> int:
    from bayes_scaling.model.fit import load_posterior
    from bayes_scaling.present.plots import write_figures
    from bayes_scaling.present.report import build_report, default_targets, write_report

    posterior = load_posterior(args.posterior)
    given = args.params is not None or args.tokens is not None or args.arch or args.mix
    targets = (default_targets(posterior, args.params, args.tokens, args.arch, args.mix)
               if given else None)
    page, pieces = build_report(posterior, targets, k=args.k, seed=args.seed,
                                progress=lambda msg: print(msg, flush=True))
    path = write_report(page, args.out)
    if args.figures is not None:
        saved = write_figures(pieces["figures"], args.figures, close_after=True)
        print(f"{len(saved)} figures (PNG + SVG) -> {args.figures}")
    print(f"report -> {path}")
    return 0


def _add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="the whole job on a simulated sweep: fit, predict, propose, report",
        description="Simulate the embedded default sweep (dense + MoE, two data mixes, weight "
                    "decay varied), validate it, fit the model, predict the optimum for a 7B "
                    "dense and a 7B-active MoE run on 2T tokens, propose the next runs, and "
                    "write sweep.csv, truth.nc, posterior.nc, figures/ and report.html into "
                    "--out.")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random")
    p.add_argument("--draws", type=int, default=None,
                   help="draws per chain (default: the spec's 1000); tuning steps follow "
                        "unless --tune is given")
    p.add_argument("--tune", type=int, default=None, help="tuning steps per chain")
    p.add_argument("--chains", type=int, default=None, help="chains (default: the spec's 4)")
    p.add_argument("--k", type=int, default=3, help="next runs to propose (default 3)")


def _run_demo(args: argparse.Namespace) -> int:
    from bayes_scaling.present.demo import run_demo

    run_demo(args.out, seed=args.seed, draws=args.draws, tune=args.tune, chains=args.chains,
             k=args.k, progress=lambda msg: print(msg, flush=True))
    return 0


# ----------------------------------------------------------------------------- propose
def _add_propose_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "propose", help="the next run(s) that shrink the target's uncertainty most per FLOP",
        description="Score candidate runs (default: new cells on a ladder of sizes up to a "
                    "tenth of the target, and the fitted cells; single runs, 3-run lr lines "
                    "and 5-run crosses around each cell's predicted optimum) by the expected "
                    "information gain about the target's optimal lr, batch[, weight decay] "
                    "per FLOP, simulating divergence and censoring; pick -k of them within "
                    "--budget-flops.")
    p.add_argument("posterior", type=Path, help="posterior file written by `fit` (.nc)")
    p.add_argument("--target-params", type=_positive, required=True,
                   help="target non-embedding (for MoE: active) parameters N")
    p.add_argument("--target-tokens", type=_positive, required=True,
                   help="target training tokens D")
    p.add_argument("--arch", required=True, help="target architecture, e.g. dense")
    p.add_argument("--mix", default=None,
                   help="target data mix (default: the fitted mix when there is one; a label "
                        "not in the data is a new mix)")
    p.add_argument("--candidates", type=Path, default=None,
                   help="candidate runs (.csv/.parquet/.jsonl): arch, data_mix, n_params, "
                        "n_tokens, lr, batch_tokens[, weight_decay, seq_len, group, "
                        "cost_flops]; default: generated")
    p.add_argument("--budget-flops", type=_positive, default=None,
                   help="total FLOPs the picks may cost")
    p.add_argument("-k", type=int, default=1, help="runs or mini-sweeps to pick (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed (scores are reproducible)")
    p.add_argument("--draws", type=int, default=1000, help="posterior draws used (thinned)")
    p.add_argument("--outcomes", type=int, default=32,
                   help="simulated outcomes per re-scored candidate")
    p.add_argument("--show", type=int, default=8, help="alternatives to list after the picks")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: runs (the picks), alternatives, target, ...")


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise OSError(f"{path}: no such candidate file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".json"):
        return pd.read_json(path, lines=True)
    return pd.read_csv(path)


def _propose_mix(posterior, mix: str | None) -> str:
    mixes = [str(m) for m in posterior["posterior"]["mix"].to_numpy()]
    if mix is not None:
        return mix
    if len(mixes) == 1:
        return mixes[0]
    raise TargetError(f"--mix is needed: the posterior has mixes {mixes} (any other label is "
                      "treated as a new mix)")


_PROPOSE_COLUMNS = ("rank", "group", "arch", "data_mix", "n_params", "n_tokens", "lr",
                    "batch_tokens", "weight_decay", "cost_flops", "group_cost_flops", "score",
                    "eig_nats", "new_cell", "scored_by")


def _propose_records(frame: pd.DataFrame) -> list[dict]:
    cols = [c for c in frame.columns if c in _PROPOSE_COLUMNS or "_width90_" in c]
    return [{k: (_finite(v) if isinstance(v, float) else v.item() if hasattr(v, "item") else v)
             for k, v in row.items()} for row in frame[cols].to_dict(orient="records")]


def _run_propose(args: argparse.Namespace) -> int:
    from bayes_scaling.design.propose import propose
    from bayes_scaling.model.fit import load_posterior

    if args.k < 1:
        raise CandidateError(f"-k must be >= 1, got {args.k}")
    posterior = load_posterior(args.posterior)
    target = {"arch": args.arch, "data_mix": _propose_mix(posterior, args.mix),
              "n_params": args.target_params, "n_tokens": args.target_tokens}
    cands = None if args.candidates is None else _read_table(args.candidates)
    ranked = propose(posterior, target, candidates=cands, budget_flops=args.budget_flops,
                     k=args.k, seed=args.seed, n_draws=args.draws, n_outcomes=args.outcomes)
    picks = ranked[ranked["selected"]]
    rest = ranked[~ranked["selected"] & ranked["score"].notna()]
    alt = rest[rest["group"].isin(rest["group"].drop_duplicates().head(args.show))]
    result = {"target": target, "budget_flops": args.budget_flops,
              "spent_flops": ranked.attrs["spent_flops"], "k": args.k,
              "candidates": int(ranked["group"].nunique()), "runs": _propose_records(picks),
              "alternatives": _propose_records(alt)}
    if args.json:
        print(json.dumps(result, allow_nan=False))
        return 0
    cols = [c for c in ("rank", "group", "n_params", "n_tokens", "lr", "batch_tokens",
                        "weight_decay", "group_cost_flops", "eig_nats", "score",
                        "lr_width90_before", "lr_width90_after", "batch_width90_after")
            if c in ranked and (c != "weight_decay" or ranked[c].notna().any())]
    fmt = lambda x: f"{x:.4g}"  # noqa: E731
    print(f"target: {target['arch']} / {target['data_mix']}, N = {args.target_params:.3g}, "
          f"D = {args.target_tokens:.3g}; {result['candidates']} candidate groups scored; "
          f"score = expected information gain (nats) per FLOP; widths are 90% intervals of "
          f"the target's log optimum (before -> after the run)")
    if picks.empty:
        print("no candidate fits the budget")
    else:
        budget = "" if args.budget_flops is None else f" of {args.budget_flops:.3g}"
        print(f"\npicked ({result['spent_flops']:.3g}{budget} FLOPs):\n"
              + picks[cols].to_string(index=False, float_format=fmt))
    if not alt.empty:
        print("\nnext best:\n" + alt[cols].to_string(index=False, float_format=fmt))
    return 0


# ----------------------------------------------------------------------------- registry
Command = tuple[Callable[[argparse._SubParsersAction], None],
                Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {
    "validate": (_add_validate_parser, _run_validate),
    "simulate": (_add_simulate_parser, _run_simulate),
    "fit": (_add_fit_parser, _run_fit),
    "predict": (_add_predict_parser, _run_predict),
    "report": (_add_report_parser, _run_report),
    "demo": (_add_demo_parser, _run_demo),
    "propose": (_add_propose_parser, _run_propose),
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
