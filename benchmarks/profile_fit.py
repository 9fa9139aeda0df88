"""Where the time of a CLI fit of the Step Law sweeps goes, phase by phase, from process start.

Each repeat runs a fresh interpreter that does what `bayes-scaling fit <dense> <moe> --format
steplaw --out X --quiet` does (it calls the CLI's own entry point), with timing wrappers around
the library calls on the fit path. Phases are exclusive (a phase's time excludes the phases it
calls); "startup" is interpreter start to the first line of the child, "other" is what no
wrapper covers.

    .venv/bin/python benchmarks/profile_fit.py [--repeats 3] [--cold] [--json] [--figure PNG]

``--cold`` gives every repeat an empty PyTensor compile directory (``base_compiledir``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPLAW = ROOT.parent / "shared" / "data" / "steplaw"

PHASES = ("startup", "import numpy/pandas/cli", "import pymc", "import arviz/xarray",
          "import nutpie/numba", "import bayes_scaling.model.fit", "read sweeps",
          "prepare inputs", "build model", "pm.sample overhead", "compile: PyTensor",
          "compile: callbacks", "compile (nutpie)", "sample (nutpie)", "trace -> DataTree",
          "diagnostics", "attach tables/provenance", "write NetCDF", "law table (CLI)", "other")


def _child(out: Path) -> None:
    """One CLI-equivalent fit with timing wrappers; prints one JSON line of phase seconds."""
    t0 = time.time()
    times: dict[str, float] = {}
    stack: list[float] = []  # time spent in nested wrapped calls, per open frame

    def add(name: str, seconds: float) -> None:
        times[name] = times.get(name, 0.0) + seconds

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            stack.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                total = time.perf_counter() - start
                inner = stack.pop()
                add(name, total - inner)
                if stack:
                    stack[-1] += total
        wrapper.__wrapped__ = fn
        return wrapper

    def timed_import(name: str, modules: list[str]) -> None:
        start = time.perf_counter()
        for m in modules:
            __import__(m)
        add(name, time.perf_counter() - start)

    timed_import("import numpy/pandas/cli", ["numpy", "pandas", "bayes_scaling.present.cli"])
    timed_import("import pymc", ["pymc"])
    timed_import("import arviz/xarray", ["xarray", "arviz"])
    timed_import("import nutpie/numba", ["numba", "nutpie"])
    timed_import("import bayes_scaling.model.fit",
                 ["bayes_scaling.model.fit", "bayes_scaling.present.summary"])

    import nutpie
    import pymc as pm
    import pymc.sampling.mcmc as mcmc

    from bayes_scaling.data import schema as sweep_mod
    from bayes_scaling.model import fit as fit_mod
    from bayes_scaling.model import nutpie_wrappers
    from bayes_scaling.present import cli, cli_commands, summary

    cli_commands.read_sweep = timed("read sweeps", cli_commands.read_sweep)
    cli_commands.concat_sweeps = timed("read sweeps", cli_commands.concat_sweeps)
    sweep_mod.Sweep.summary = timed("read sweeps", sweep_mod.Sweep.summary)
    for name, phase in (("prepare_inputs", "prepare inputs"), ("build_model", "build model"),
                        ("diagnose", "diagnostics"), ("save_posterior", "write NetCDF"),
                        ("fit", "attach tables/provenance")):
        if hasattr(fit_mod, name):
            setattr(fit_mod, name, timed(phase, getattr(fit_mod, name)))
    for name in ("_compile", "_compiled_model"):  # the compile cache of fit.py, when present
        if hasattr(fit_mod, name):
            setattr(fit_mod, name, timed("compile (nutpie)", getattr(fit_mod, name)))
    pm.sample = timed("pm.sample overhead", pm.sample)
    nutpie.compile_pymc_model = timed("compile (nutpie)", nutpie.compile_pymc_model)
    nutpie_wrappers.compile_cached = timed("compile (nutpie)", nutpie_wrappers.compile_cached)
    nutpie_wrappers._make_functions = timed("compile: PyTensor",
                                            nutpie_wrappers._make_functions)
    nutpie_wrappers._cached_cfunc = timed("compile: callbacks", nutpie_wrappers._cached_cfunc)
    nutpie.sample = timed("sample (nutpie)", nutpie.sample)
    mcmc.patch_nutpie_idata = timed("trace -> DataTree", mcmc.patch_nutpie_idata)
    if hasattr(fit_mod, "_to_datatree"):
        fit_mod._to_datatree = timed("trace -> DataTree", fit_mod._to_datatree)
    summary.law_table = timed("law table (CLI)", summary.law_table)
    summary.format_law_table = timed("law table (CLI)", summary.format_law_table)

    argv = ["fit", str(STEPLAW / "dense_lr_bs_loss.csv"), str(STEPLAW / "moe_lr_bs_loss.csv"),
            "--format", "steplaw", "--out", str(out), "--quiet"]
    start = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        stdout, sys.stdout = sys.stdout, devnull
        try:
            code = cli.main(argv)
        finally:
            sys.stdout = stdout
    run = time.perf_counter() - start
    covered = sum(v for k, v in times.items() if not k.startswith("import"))
    times["other"] = max(run - covered, 0.0)
    print(json.dumps({"t0": t0, "exit": code, "times": times}))


def _one(cold: bool) -> dict:
    env = dict(os.environ)
    tmp = Path(tempfile.mkdtemp(prefix="profile_fit_"))
    if cold:
        compiledir = tmp / "compiledir"
        compiledir.mkdir()
        flags = env.get("PYTENSOR_FLAGS", "")
        env["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, f"base_compiledir={compiledir}") if f)
    start = time.time()
    proc = subprocess.run([sys.executable, __file__, "--child", str(tmp / "steplaw.nc")],
                          capture_output=True, text=True, env=env)
    wall = time.time() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child failed with exit {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    times = {"startup": result["t0"] - start, **result["times"]}
    return {"wall": wall, "exit": result["exit"], "times": times}


def _figure(median: dict[str, float], wall: float, path: Path, cold: bool, repeats: int) -> None:
    """The median phases from process start, as one horizontal bar per phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = {p: t for p, t in median.items() if t >= 0.05}
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(shown) + 1.2))
    names = list(shown)[::-1]
    ax.barh(names, [shown[p] for p in names], color="tab:blue")
    for i, p in enumerate(names):
        ax.text(shown[p], i, f" {shown[p]:.1f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds (median)")
    ax.set_title(f"bayes-scaling fit of the Step Law sweeps: {wall:.1f} s from process start\n"
                 f"(median of {repeats}, {'cold' if cold else 'warm'} compile cache)", fontsize=9)
    ax.set_xlim(0, max(shown.values()) * 1.25)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="empty compile cache each repeat")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--figure", type=Path, default=None, metavar="PNG",
                        help="write the median phases as a bar chart")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child)
        return 0
    if not STEPLAW.is_dir():
        print(f"error: {STEPLAW} is absent: this benchmark needs the Step Law files",
              file=sys.stderr)
        return 2
    runs = [_one(args.cold) for _ in range(args.repeats)]
    names = [p for p in PHASES if any(p in r["times"] for r in runs)]
    names += sorted({k for r in runs for k in r["times"]} - set(names))
    median = {p: statistics.median(r["times"].get(p, 0.0) for r in runs) for p in names}
    print(f"{'phase':<30}" + "".join(f"{f'run {i + 1}':>9}" for i in range(len(runs)))
          + f"{'median':>9}")
    for p in names:
        print(f"{p:<30}" + "".join(f"{r['times'].get(p, 0.0):9.2f}" for r in runs)
              + f"{median[p]:9.2f}")
    walls = [r["wall"] for r in runs]
    print(f"{'wall (process start to exit)':<30}" + "".join(f"{w:9.2f}" for w in walls)
          + f"{statistics.median(walls):9.2f}")
    print(f"exit codes {[r['exit'] for r in runs]}; compile cache "
          f"{'cold (empty per run)' if args.cold else 'as is (warm after the first run)'}")
    if args.figure is not None:
        _figure(median, statistics.median(walls), args.figure, args.cold, len(runs))
        print(f"figure: {args.figure}")
    if args.json:
        print(json.dumps({"cold": args.cold, "wall_seconds": walls,
                          "median_wall_seconds": statistics.median(walls),
                          "median_phase_seconds": median,
                          "runs": [r["times"] for r in runs],
                          "exit_codes": [r["exit"] for r in runs]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
