"""The ``update`` command: add runs to a fitted posterior (PSIS reweighting, or a refit)."""

from __future__ import annotations

import argparse
import sys

from bayes_scaling.present.cli_args import EXIT_BAD_DIAGNOSTICS, check_output_file
from bayes_scaling.present.cli_commands import _read_sweeps, _say, _sweep_lines


def run_update(args: argparse.Namespace) -> int:
    check_output_file(args.out)

    from bayes_scaling.model.fit import load_posterior, posterior_spec, save_posterior
    from bayes_scaling.predict.update import reweight_posterior, update_posterior

    posterior = load_posterior(args.posterior)
    runs = _read_sweeps(args)
    _say("new " + "\n".join(_sweep_lines(runs, posterior_spec(posterior).window)))
    if args.no_refit:
        result = reweight_posterior(posterior, runs, seed=args.seed)
    else:
        result = update_posterior(posterior, runs, seed=args.seed)
    print(result.line())
    if result.posterior is None:
        print("error: the runs need a refit (above); run without --no-refit", file=sys.stderr)
        return EXIT_BAD_DIAGNOSTICS
    path = save_posterior(result.posterior, args.out)
    print(f"diagnostics: {result.posterior.attrs['diagnostics']}\nposterior -> {path}")
    return 0
