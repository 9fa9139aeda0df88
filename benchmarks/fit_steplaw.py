"""Wall time and diagnostics of the CLI fit on the Step Law dense + MoE sweeps.

Runs `bayes-scaling fit` as a subprocess (so the time includes interpreter start, imports and
model compilation), then prints the exponents with 90% intervals next to Step Law's.

    .venv/bin/python benchmarks/fit_steplaw.py [--json] [--out posterior.nc]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPLAW = ROOT.parent / "shared" / "data" / "steplaw"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--out", type=Path, default=None, help="keep the posterior here")
    args = parser.parse_args()
    if not STEPLAW.is_dir():
        print(f"error: {STEPLAW} is absent: this benchmark needs the Step Law files",
              file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp()) / "steplaw.nc"
    cmd = [sys.executable, "-m", "bayes_scaling.present.cli", "fit",
           str(STEPLAW / "dense_lr_bs_loss.csv"), str(STEPLAW / "moe_lr_bs_loss.csv"),
           "--format", "steplaw", "--out", str(out), "--quiet"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    print(proc.stdout)
    if proc.returncode not in (0, 3):
        print(proc.stderr, file=sys.stderr)
        return proc.returncode

    from bayes_scaling.model.fit import diagnose, load_posterior
    from bayes_scaling.present.summary import law_table

    posterior = load_posterior(out)
    diagnostics = diagnose(posterior)
    table = law_table(posterior, names=("a_n", "a_d", "b_n", "b_d"))
    result = {
        "wall_seconds": round(wall, 1),
        "sampling_seconds": round(float(posterior.attrs["fit_seconds"]), 1),
        "exit_code": proc.returncode,
        "max_rhat": round(diagnostics.max_rhat, 4),
        "min_ess_bulk": round(diagnostics.min_ess_bulk),
        "divergences": diagnostics.divergences,
        "exponents": [{k: (round(v, 3) if isinstance(v, float) else v)
                       for k, v in row.items() if k in ("parameter", "arch", "median", "lo",
                                                        "hi", "published")}
                      for row in table.to_dict(orient="records")],
    }
    print(f"CLI fit wall time (process start to exit, compile included): {wall:.1f} s; "
          f"sampling {result['sampling_seconds']} s; max R-hat {result['max_rhat']}, "
          f"min bulk ESS {result['min_ess_bulk']}, divergences {result['divergences']}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
