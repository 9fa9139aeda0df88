"""The whole job on the embedded simulated sweep, end to end: simulate, validate, fit,
predict for a large target, propose the next runs, draw the figures and write the report.

``run_demo(out_dir)`` is what ``bayes-scaling demo`` runs; every output lands in ``out_dir``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bayes_scaling.present.plots_common import close, fmt_sci

DEMO_TARGETS = pd.DataFrame({"arch": ["dense", "moe"], "data_mix": ["web", "web"],
                             "n_params": [7e9, 7e9], "n_tokens": [2e12, 2e12]})
"""The big runs the demo plans: a 7B dense model and a 7B-active MoE, 2T web tokens."""


def _quantity_table(summary: pd.DataFrame) -> str:
    keep = summary[summary["quantity"].isin(["lr_opt", "batch_tokens_opt", "batch_seqs_opt",
                                             "weight_decay_opt", "loss_opt"])]
    out = keep.assign(target=[f"{r.arch}/{r.data_mix} N={fmt_sci(r.n_params)} "
                              f"D={fmt_sci(r.n_tokens)}" for r in keep.itertuples()])
    return out[["target", "quantity", "median", "lo50", "hi50", "lo90", "hi90"]].to_string(
        index=False, float_format=lambda x: f"{x:.4g}")


def run_demo(out_dir: str | Path = "demo_out", seed: int = 0, draws: int | None = None,
             tune: int | None = None, chains: int | None = None, k: int = 3,
             targets: pd.DataFrame | None = None,
             progress: Callable[[str], None] = print) -> dict[str, object]:
    """Run the demo pipeline and write its outputs into ``out_dir``.

    Args:
        out_dir: folder for sweep.csv, truth.nc, posterior.nc, figures/ and report.html.
        seed: seeds the simulation, the sampler, the predictions and the proposals.
        draws, tune, chains: sampler settings (default: the model spec's, 4 x 1000 + 1000
            tuning); ``tune`` defaults to ``draws`` when only ``draws`` is given.
        k: how many next runs to propose.
        targets: the big runs to plan (default :data:`DEMO_TARGETS`).
        progress: called with each progress line (``print`` by default).

    Returns a dict with the paths (sweep, truth, posterior, report, figures: {stem: [png,
    svg]}) and the results (posterior, prediction, proposals, regret, seconds per step).
    """
    from bayes_scaling.data.simulate import simulate_sweep
    from bayes_scaling.data.sweep import write_sweep
    from bayes_scaling.design.propose import propose
    from bayes_scaling.model.fit import diagnose, fit, save_posterior
    from bayes_scaling.predict.predict import predict
    from bayes_scaling.present.cli import validation_text
    from bayes_scaling.present.plots import make_figures, regret_grid, write_figures
    from bayes_scaling.present.plots_target import target_label
    from bayes_scaling.present.report import render_report, write_report
    from bayes_scaling.present.summary import format_law_table, law_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = DEMO_TARGETS if targets is None else targets.reset_index(drop=True)
    if draws is not None and tune is None:
        tune = draws
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    steps = 7

    def step(i: int, text: str) -> None:
        seconds_so_far = time.perf_counter() - start
        progress(f"\n[{i}/{steps}] {text}  (t = {seconds_so_far:.0f} s)")

    def done(name: str, since: float) -> None:
        seconds[name] = time.perf_counter() - since

    t = time.perf_counter()
    step(1, "Simulating the default sweep (dense + MoE, web + code, weight decay varied)")
    sweep, truth = simulate_sweep(seed=seed)
    sweep_path, truth_path = out / "sweep.csv", out / "truth.nc"
    write_sweep(sweep, sweep_path)
    truth.to_netcdf(truth_path, engine="h5netcdf")
    progress(f"{len(sweep.runs)} runs in {len(sweep.cells())} cells -> {sweep_path}; "
             f"the true laws -> {truth_path}")
    done("simulate", t)

    t = time.perf_counter()
    step(2, "Validating the sweep")
    progress(validation_text(sweep).split("\n\n")[0])
    done("validate", t)

    t = time.perf_counter()
    step(3, "Fitting the hierarchical model (nutpie)")
    posterior = fit(sweep, seed=seed, draws=draws, tune=tune, chains=chains, progressbar=True)
    posterior_path = save_posterior(posterior, out / "posterior.nc")
    progress(f"\nlaw parameters (natural logs; intercepts at N = 1e9, D = 1e11; batch in "
             f"tokens):\n{format_law_table(law_table(posterior))}")
    progress(f"\n{diagnose(posterior).report()}\nsampling took "
             f"{posterior.attrs['fit_seconds']:.1f} s; posterior -> {posterior_path}")
    done("fit", t)

    t = time.perf_counter()
    step(4, f"Predicting the optimum for {len(targets)} big run(s)")
    prediction = predict(posterior, targets, seed=seed)
    progress(_quantity_table(prediction.summary))
    done("predict", t)

    t = time.perf_counter()
    first = targets.iloc[0]
    step(5, f"Choosing the next {k} run(s) for {target_label(first)}")
    proposals = propose(posterior, first[["arch", "data_mix", "n_params", "n_tokens"]].to_dict(),
                        k=k, seed=seed)
    shown = proposals[proposals["selected"]][["rank", "arch", "data_mix", "n_params",
                                              "n_tokens", "lr", "batch_tokens", "cost_flops",
                                              "eig_nats"]]
    progress(shown.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    done("propose", t)

    t = time.perf_counter()
    step(6, "Drawing the figures")
    regret = regret_grid(posterior, first, prediction, seed=seed)
    figures = make_figures(posterior, prediction=prediction, proposals=proposals, regret=regret,
                           targets=targets, truth=truth, progress=progress)
    paths = write_figures(figures, out / "figures", close_after=True)
    progress(f"{len(paths)} figures (PNG + SVG) -> {out / 'figures'}")
    done("figures", t)

    t = time.perf_counter()
    step(7, "Writing the report")
    page = render_report(
        posterior, prediction=prediction, proposals=proposals, regret=regret,
        figures={stem: files[0] for stem, files in paths.items()},
        title=f"bayes_scaling demo: planning {target_label(first)}",
        notes=("Data: the embedded simulated sweep (bayes_scaling.data.simulate.simulate_sweep, "
               f"seed {seed}); the true optima are starred in the cell figures.",))
    report_path = write_report(page, out / "report.html")
    done("report", t)
    total = time.perf_counter() - start
    progress(f"report -> {report_path}\ndone in {total:.0f} s "
             f"({', '.join(f'{n} {s:.0f} s' for n, s in seconds.items())})")
    for fig in figures.values():
        close(fig)
    return {"out_dir": out, "sweep": sweep_path, "truth": truth_path,
            "posterior_path": posterior_path, "report": report_path, "figures": paths,
            "posterior": posterior, "prediction": prediction, "proposals": proposals,
            "regret": regret, "seconds": {**seconds, "total": total}}
