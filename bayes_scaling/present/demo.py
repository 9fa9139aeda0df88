"""The whole job on the embedded simulated sweep, end to end: simulate, validate, fit, then the
planning pipeline of ``report`` (predict, propose, figures) and the report itself.

``run_demo(out_dir)`` is what ``bayes-scaling demo`` runs; every output lands in ``out_dir``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bayes_scaling.present.plots_common import close
from bayes_scaling.present.text import validation_text

DEMO_TARGETS = pd.DataFrame({"arch": ["dense", "moe"], "data_mix": ["web", "web"],
                             "n_params": [7e9, 7e9], "n_tokens": [2e12, 2e12]})
"""The big runs the demo plans: a 7B dense model and a 7B-active MoE, 2T web tokens."""

STEPS = 7


def run_demo(out_dir: str | Path = "demo_out", seed: int = 0, draws: int | None = None,
             tune: int | None = None, chains: int | None = None, k: int = 3,
             targets: pd.DataFrame | None = None,
             progress: Callable[[str], None] = print) -> dict[str, object]:
    """Run the demo and write its outputs into ``out_dir``.

    Args:
        out_dir: folder for sweep.csv, truth.nc, posterior.nc, figures/ and report.html.
        seed: seeds the simulation, the sampler, the predictions and the proposals.
        draws, tune, chains: sampler settings (default: the model spec's, 4 x 1000 + 1000
            tuning); ``tune`` defaults to ``draws`` when only ``draws`` is given.
        k: how many next runs to propose.
        targets: the big runs to plan (default :data:`DEMO_TARGETS`).
        progress: called with each progress line (``print`` by default).

    Returns a dict with the paths (sweep, truth, posterior_path, report, figures: {stem:
    [png, svg]}), the :class:`~bayes_scaling.present.pipeline.Plan` (``plan``), its pieces
    (posterior, prediction, proposals, regret) and the seconds per step.
    """
    from bayes_scaling.data import simulate_sweep, write_sweep
    from bayes_scaling.model.fit import diagnose, fit, save_posterior
    from bayes_scaling.present.pipeline import plan
    from bayes_scaling.present.plots import write_figures
    from bayes_scaling.present.report import render_plan, write_report
    from bayes_scaling.present.summary import format_law_table, law_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = DEMO_TARGETS if targets is None else targets.reset_index(drop=True)
    if draws is not None and tune is None:
        tune = draws
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    counter = iter(range(1, STEPS + 1))

    def step(text: str) -> None:
        progress(f"\n[{next(counter)}/{STEPS}] {text}  (t = {time.perf_counter() - start:.0f} s)")

    t = time.perf_counter()
    step("Simulating the default sweep (dense + MoE, web + code, weight decay varied)")
    sweep, truth = simulate_sweep(seed=seed)
    sweep_path, truth_path = out / "sweep.csv", out / "truth.nc"
    write_sweep(sweep, sweep_path)
    truth.to_netcdf(truth_path, engine="h5netcdf")
    progress(f"{len(sweep.runs)} runs in {len(sweep.cells())} cells -> {sweep_path}; "
             f"the true laws -> {truth_path}")
    seconds["simulate"] = time.perf_counter() - t

    t = time.perf_counter()
    step("Validating the sweep")
    progress(validation_text(sweep).split("\n\n")[0])
    seconds["validate"] = time.perf_counter() - t

    t = time.perf_counter()
    step("Fitting the hierarchical model (nutpie)")
    posterior = fit(sweep, seed=seed, draws=draws, tune=tune, chains=chains, progressbar=True)
    posterior_path = save_posterior(posterior, out / "posterior.nc")
    progress(f"\nlaw parameters (natural logs; intercepts at N = 1e9, D = 1e11; batch in "
             f"tokens):\n{format_law_table(law_table(posterior))}")
    progress(f"\n{diagnose(posterior).report()}\nsampling took "
             f"{posterior.attrs['fit_seconds']:.1f} s; posterior -> {posterior_path}")
    seconds["fit"] = time.perf_counter() - t

    result = plan(posterior, targets, k=k, seed=seed, truth=truth, step=step,
                  progress=progress)
    seconds.update(result.seconds)
    t = time.perf_counter()
    paths = write_figures(result.figures, out / "figures", close_after=True)
    progress(f"{len(paths)} figures (PNG + SVG) -> {out / 'figures'}")
    seconds["figures"] += time.perf_counter() - t

    t = time.perf_counter()
    step("Writing the report")
    page = render_plan(
        result, figures={stem: files[0] for stem, files in paths.items()},
        title=f"bayes_scaling demo: planning {result.label}",
        notes=("Data: the embedded simulated sweep (bayes_scaling.data.simulate.simulate_sweep, "
               f"seed {seed}); the true optima are starred in the cell figures.",))
    report_path = write_report(page, out / "report.html")
    seconds["report"] = time.perf_counter() - t
    total = time.perf_counter() - start
    progress(f"report -> {report_path}\ndone in {total:.0f} s "
             f"({', '.join(f'{n} {s:.0f} s' for n, s in seconds.items())})")
    for fig in result.figures.values():
        close(fig)
    return {"out_dir": out, "sweep": sweep_path, "truth": truth_path,
            "posterior_path": posterior_path, "report": report_path, "figures": paths,
            "plan": result, "posterior": posterior, "prediction": result.prediction,
            "proposals": result.proposals, "regret": result.regret,
            "seconds": {**seconds, "total": total}}
