"""What each ``bayes-scaling`` command does: ``run_<cmd>(args) -> exit code``. Each calls
public functions and prints; heavy stages are imported inside, so ``--help`` stays fast."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bayes_scaling.data import Sweep, concat_sweeps, read_sweep, write_sweep
from bayes_scaling.data.formats import SUFFIXES as SWEEP_SUFFIXES
from bayes_scaling.errors import BayesScalingError, TargetError
from bayes_scaling.model.inputs import TOTAL_COLUMN
from bayes_scaling.present.cli_args import (
    EXIT_BAD_DIAGNOSTICS,
    PRIOR_DRAWS,
    check_batch,
    check_output_dir,
    check_output_file,
    pool_map,
    read_candidates,
    sweep_map,
)
from bayes_scaling.present.text import (
    comparison_result,
    predict_text,
    prior_text,
    propose_result,
    propose_text,
    validation_text,
)

EXCLUDED_SHOWN = 10
"""Excluded rows listed by ``fit`` before '... and N more'."""


def _say(text: str) -> None:
    print(text, flush=True)


def _sweep_lines(sweep: Sweep, window: float) -> list[str]:
    """What ``fit`` says about its input: counts, excluded rows with reasons, notes."""
    summary = sweep.summary(window)
    lines = [f"sweep: {summary['runs']} runs in {summary['cells']} cells "
             f"({', '.join(summary['archs'])}; mixes {', '.join(summary['data_mixes'])}); "
             f"censored {summary['n_censored']}, excluded {summary['n_excluded']}"]
    excluded = summary["excluded"]
    lines += [f"  excluded {row['run_id'] or '(no run_id)'}: {row['reason']}"
              for row in excluded[:EXCLUDED_SHOWN]]
    if len(excluded) > EXCLUDED_SHOWN:
        lines.append(f"  ... and {len(excluded) - EXCLUDED_SHOWN} more excluded "
                     "(`bayes-scaling validate` lists them all)")
    if sweep.notes:
        lines += [f"notes on {sweep.source}:", *[f"  - {note}" for note in sweep.notes]]
    return lines


def _read_sweeps(args: argparse.Namespace, arch_labels: tuple[str, ...] | None = None
                 ) -> Sweep:
    """The sweep file(s) of a command, read with its --format/--column/--status maps."""
    maps = sweep_map(args)
    sweeps = [read_sweep(path, columns=maps, format=args.format, arch_labels=arch_labels)
              for path in args.paths]
    return concat_sweeps(sweeps)


def run_validate(args: argparse.Namespace) -> int:
    sweep = _read_sweeps(args)
    if args.json:
        print(json.dumps(sweep.summary(args.window), allow_nan=False))
    else:
        print(validation_text(sweep, args.window, args.max_rows))
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    check_output_file(args.out)

    from bayes_scaling.data import simulate_sweep

    sweep, truth = simulate_sweep(seed=args.seed)
    write_sweep(sweep, args.out)
    truth_path = args.out.with_name(f"{args.out.stem}.truth.nc")
    truth.to_netcdf(truth_path, engine="h5netcdf")
    print(f"simulated {len(sweep.runs)} runs in {len(sweep.cells())} cells (seed {args.seed})"
          f" -> {args.out}; truth -> {truth_path}")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    check_output_file(args.out)

    from bayes_scaling.model.fit import diagnose, fit, save_posterior
    from bayes_scaling.model.sampler import resolved_sampler
    from bayes_scaling.model.spec import load_spec, with_sampler
    from bayes_scaling.present.summary import format_law_table, law_table

    spec = with_sampler(load_spec(args.model), draws=args.draws, tune=args.tune,
                        chains=args.chains)
    sweep = _read_sweeps(args, spec.archs or None)
    _say("\n".join(_sweep_lines(sweep, spec.window)))
    _say(f"model: {spec.name} ({spec.source}); sampler {resolved_sampler(sweep, spec)}")
    posterior = fit(sweep, spec, seed=args.seed, progressbar=not args.quiet)
    path = save_posterior(posterior, args.out)
    print(f"\nlaw parameters (natural logs; intercepts at N = 1e9, D = 1e11, TPP = 20; "
          f"batch in tokens):\n{format_law_table(law_table(posterior))}")
    diagnostics = diagnose(posterior)
    print(f"\n{diagnostics.report()}\nsampling took {posterior.attrs['fit_seconds']:.1f} s; "
          f"posterior -> {path}")
    if not diagnostics.ok and not args.allow_bad_diagnostics:
        advice = _advice(diagnostics, sweep)
        print(f"error: sampling diagnostics show problems (see above); {advice}; or pass "
              "--allow-bad-diagnostics to accept them", file=sys.stderr)
        return EXIT_BAD_DIAGNOSTICS
    return 0


def _advice(diagnostics, sweep: Sweep) -> str:
    """The likely cause of failed diagnostics and what to try, from what they show."""
    from bayes_scaling.data.identifiability import design_notes

    tips = []
    if diagnostics.divergences:
        tips.append("divergences come from the posterior's geometry, which more --tune rarely "
                    "fixes: raise [sampler] target_accept to 0.99 in a --model spec file")
    if diagnostics.max_rhat > 1.01 or diagnostics.min_ess_bulk < 400:
        tips.append("for R-hat or ESS, more --draws")
    notes = design_notes(sweep.runs)
    if notes:
        tips.append(f"the design leaves {len(notes)} direction(s) to the priors (`validate` "
                    "lists them), which can make the posterior hard to sample")
    return "; ".join(tips) or "rerun with more --tune/--draws"


def check_output_kind(option: str, out: Path, suffixes: tuple[str, ...]) -> None:
    """An output file of an allowed kind whose folder is writable (checked before the work)."""
    if out.suffix.lower() not in suffixes:
        raise BayesScalingError(f"{option} {out}: give a {' or '.join(suffixes)} file")
    check_output_file(out, option)


def run_predict(args: argparse.Namespace) -> int:
    check_batch(args.batch_tokens, args.seq_len)
    if args.figure is not None:
        if args.max_regret is None:
            raise BayesScalingError("predict --figure draws the regret-against-batch figure "
                                    "of --max-regret: give --max-regret too")
        check_output_kind("--figure", args.figure, FIGURE_SUFFIXES)

    from bayes_scaling.model.fit import load_posterior
    from bayes_scaling.predict.targets import (
        compare_choices,
        extrapolation_notes,
        make_target,
        mix_notes,
    )

    posterior = load_posterior(args.posterior)
    target = make_target(posterior, args.arch, args.params, args.tokens, mix=args.mix,
                         seq_len=args.seq_len, batch_tokens=args.batch_tokens,
                         n_params_total=args.total_params)
    comparison = compare_choices(posterior, target, seed=args.seed,
                                 notes=mix_notes(posterior, args.mix)
                                 + extrapolation_notes(posterior, target))
    result = {**comparison_result(comparison), "posterior": str(args.posterior),
              "seed": args.seed}
    if args.max_regret is not None:
        from bayes_scaling.predict.max_batch import max_safe_batch

        max_batch = max_safe_batch(posterior, target, args.max_regret, seed=args.seed)
        result["max_batch"] = max_batch.to_dict()
        if args.figure is not None:
            from bayes_scaling.present.plots_batch import plot_max_batch
            from bayes_scaling.present.plots_common import close, save_figure

            fig = plot_max_batch(max_batch, title=f"{args.arch or ''} N = {args.params:.3g}, "
                                 f"D = {args.tokens:.3g}".strip())
            saved = save_figure(fig, args.figure.parent, args.figure.stem,
                                formats=(args.figure.suffix.lower().lstrip("."),))
            close(fig)
            print(f"figure -> {saved[0]}", file=sys.stderr)
    print(json.dumps(result, allow_nan=False) if args.json else predict_text(result))
    return 0


def _pool_line(pool: dict) -> str:
    """What ``propose --pool`` did with the pool: rows read, rows left out as already run."""
    new = (f"; data_mix {', '.join(pool['new_mixes'])} not in the fit (drawn from the mix "
           "population)" if pool["new_mixes"] else "")
    return (f"pool {pool['source']}: {pool['rows']} rows, {pool['already_run']} already in the "
            f"fitted sweep (not proposed again), {pool['rows'] - pool['already_run']} "
            f"candidate runs{new}")


def run_propose(args: argparse.Namespace) -> int:
    columns = pool_map(args)

    from bayes_scaling.design.propose import propose
    from bayes_scaling.model.fit import load_posterior
    from bayes_scaling.predict.targets import extrapolation_notes, make_target, mix_notes

    posterior = load_posterior(args.posterior)
    full = make_target(posterior, args.arch, args.target_params, args.target_tokens, args.mix,
                       n_params_total=args.total_params)
    target = {key: full[key] for key in ("arch", "data_mix", "n_params", "n_tokens",
                                         TOTAL_COLUMN)}
    candidates = None if args.candidates is None else read_candidates(args.candidates)
    ranked = propose(posterior, target, candidates=candidates, budget_flops=args.budget_flops,
                     k=args.k, seed=args.seed, pool=args.pool, pool_columns=columns,
                     n_draws=args.draws, n_outcomes=args.outcomes, objective=args.objective)
    result = propose_result(ranked, target, args.k, args.budget_flops, show=args.show)
    pool = ranked.attrs.get("pool")
    if pool:
        result["pool"] = pool
    if args.json:
        print(json.dumps(result, allow_nan=False))
    else:
        notes = mix_notes(posterior, args.mix) + extrapolation_notes(posterior, target)
        print(propose_text(ranked, result, notes + ([_pool_line(pool)] if pool else [])))
    return 0


LOCO_ONLY = ("cells", "jobs", "figure", "tune", "chains", "prior_sensitivity")
"""``check`` options of the leave-one-cell-out check alone."""
PRIOR_ONLY = ("format", "column", "columns_file", "status", "model", "target_params",
              "target_tokens", "arch", "mix")
"""``check`` options of the prior predictive check alone."""
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    """The options among ``names`` that were given, as flags."""
    return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) not in (None, [])]


def run_check(args: argparse.Namespace) -> int:
    if not args.prior:
        return _run_held_out_check(args)
    if _given(args, LOCO_ONLY):
        raise BayesScalingError(f"check --prior: {', '.join(_given(args, LOCO_ONLY))} only "
                                "apply to the leave-one-cell-out check of a posterior file")
    return _run_prior_check(args)


def _check_posterior_path(args: argparse.Namespace) -> Path:
    """The one posterior file of ``check`` without --prior; its outputs writable."""
    if _given(args, PRIOR_ONLY):
        raise BayesScalingError(f"check: {', '.join(_given(args, PRIOR_ONLY))} only apply "
                                "with --prior (the prior predictive check of sweep files)")
    if len(args.paths) != 1:
        raise BayesScalingError(f"check: give one posterior file (`bayes-scaling fit --out`), "
                                f"not {len(args.paths)} paths; --prior checks sweep files")
    path = args.paths[0]
    if path.suffix.lower() in SWEEP_SUFFIXES:
        raise BayesScalingError(f"check {path}: a sweep file; without --prior check needs the "
                                "posterior file `bayes-scaling fit --out` wrote (add --prior "
                                "for the prior predictive check of a sweep)")
    for option, out, suffixes in (("--out", args.out, (".csv", ".json")),
                                   ("--figure", args.figure, FIGURE_SUFFIXES)):
        if out is not None:
            check_output_kind(option, out, suffixes)
    return path


def _run_held_out_check(args: argparse.Namespace) -> int:
    path = _check_posterior_path(args)

    from bayes_scaling.heldout.cells import parse_cells, select_cells
    from bayes_scaling.heldout.loco import check, default_jobs, refit_spec
    from bayes_scaling.model.fit import load_posterior, posterior_cells
    from bayes_scaling.model.spec import load_spec
    from bayes_scaling.present.text_check import check_header, check_text

    other = None if args.prior_sensitivity is None else load_spec(args.prior_sensitivity)
    posterior = load_posterior(path)
    cells = None if args.cells is None else parse_cells(args.cells)
    table = posterior_cells(posterior)
    chosen = select_cells(table, cells, args.seed)
    jobs = args.jobs or default_jobs()
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else _say
    say(check_header(str(path), len(chosen), len(table),
                     refit_spec(posterior, args.draws, args.tune, args.chains).sampler, jobs))
    result = check(posterior, cells, seed=args.seed, jobs=jobs, draws=args.draws,
                   tune=args.tune, chains=args.chains, progress=say, sensitivity=other)
    print(json.dumps(result.to_dict(), allow_nan=False) if args.json else check_text(result))
    if args.out is not None:
        say(f"results -> {', '.join(map(str, result.save(args.out)))}")
    if args.figure is not None:
        from bayes_scaling.present.plots_check import plot_check_calibration
        from bayes_scaling.present.plots_common import close, save_figure

        fig = plot_check_calibration(result)
        saved = save_figure(fig, args.figure.parent, args.figure.stem,
                            formats=(args.figure.suffix.lower().lstrip("."),))
        close(fig)
        say(f"figure -> {saved[0]}")
    return 0


def _run_prior_check(args: argparse.Namespace) -> int:
    if args.out is not None:
        check_output_dir(args.out)
    if (args.target_params is None) != (args.target_tokens is None):
        raise TargetError("check: give both --target-params and --target-tokens, or neither")

    from bayes_scaling.model.prior import sample_prior
    from bayes_scaling.model.spec import load_spec
    from bayes_scaling.predict.prior_check import prior_summary
    from bayes_scaling.present.plots_common import save_figure
    from bayes_scaling.present.plots_prior import plot_prior_predictive

    spec = load_spec(args.model)
    sweep = _read_sweeps(args, spec.archs or None)
    target = None
    if args.target_params is not None:
        arch = args.arch or sorted(sweep.runs["arch"].unique())[0]
        mix = args.mix or sweep.runs["data_mix"].value_counts().index[0]
        target = {"arch": arch, "data_mix": mix, "n_params": args.target_params,
                  "n_tokens": args.target_tokens,
                  TOTAL_COLUMN: args.total_params}
    draws = args.draws or PRIOR_DRAWS
    _say(f"drawing {draws} prior draws ({spec.name} spec) for {len(sweep.runs)} runs")
    table = prior_summary(sample_prior(sweep, spec, draws=draws, seed=args.seed), target)
    if args.json:
        print(table.to_json(orient="records"))
    else:
        print(prior_text(table, spec.name))
    if args.out is not None:
        paths = save_figure(plot_prior_predictive(table, spec.name), args.out,
                            "prior_predictive")
        _say(f"figure -> {paths[0]}")
    return 0


def run_predict_loss(args: argparse.Namespace) -> int:
    from bayes_scaling.model.fit import load_posterior
    from bayes_scaling.predict.loss import predict_loss

    runs = read_candidates(args.runs, "runs")
    table = predict_loss(load_posterior(args.posterior), runs, seed=args.seed).summary
    if args.json:
        print(table.to_json(orient="records"))
    else:
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 0


def run_report(args: argparse.Namespace) -> int:
    check_output_file(args.out)
    if args.figures is not None:
        check_output_dir(args.figures, "--figures")

    from bayes_scaling.model.fit import load_posterior
    from bayes_scaling.predict.targets import default_targets
    from bayes_scaling.present.plots import write_figures
    from bayes_scaling.present.report import build_report, write_report

    posterior = load_posterior(args.posterior)
    given = args.params is not None or args.tokens is not None or args.arch or args.mix
    targets = (default_targets(posterior, args.params, args.tokens, args.arch, args.mix)
               if given else None)
    page, plan = build_report(posterior, targets, k=args.k, seed=args.seed,
                              budget_flops=args.budget_flops, progress=_say)
    path = write_report(page, args.out)
    if args.figures is not None:
        saved = write_figures(plan.figures, args.figures, close_after=True)
        print(f"{len(saved)} figures (PNG + SVG) -> {args.figures}")
    print(f"report -> {path}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    check_output_dir(args.out)

    from bayes_scaling.present.demo import run_demo as demo

    demo(args.out, seed=args.seed, draws=args.draws, tune=args.tune, chains=args.chains,
         k=args.k, progress=_say)
    return 0
