"""Shared fixtures: a simulated sweep with its truth, a fake posterior (no sampling), ONE
small real fit for the tests that need a sampler, the real fits of the slow statistical
tests (all real fits run in background workers from the start of the session), the Step Law
data folder, and the one way tests run the command line.

Session-scoped objects are shared by every test: treat them as read-only (``.copy()`` a
DataTree before changing it).
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import xarray as xr

REPO_ROOT = Path(__file__).resolve().parents[1]
STEPLAW_DIR = REPO_ROOT.parent / "shared" / "data" / "steplaw"


@pytest.fixture(scope="session")
def steplaw_dir() -> Path:
    """The Step Law data folder (../shared/data/steplaw); skips the test if it is absent."""
    if not STEPLAW_DIR.is_dir():
        pytest.skip("../shared/data/steplaw is absent: real-data tests need the Step Law files")
    return STEPLAW_DIR


@pytest.fixture(scope="session")
def sim_sweep_and_truth():
    """:func:`bayes_scaling.testing.small_sweep` (seed 3): dense + MoE, one mix 'web', 12
    cells of 6 lrs x 4 batches, weight decay varied; and its truth."""
    from bayes_scaling.testing import small_sweep

    return small_sweep(3)


@pytest.fixture(scope="session")
def sim_sweep(sim_sweep_and_truth):
    """The simulated sweep of :func:`sim_sweep_and_truth`."""
    return sim_sweep_and_truth[0]


@pytest.fixture(scope="session")
def sim_truth(sim_sweep_and_truth) -> xr.Dataset:
    """The truth of :func:`sim_sweep_and_truth`."""
    return sim_sweep_and_truth[1]


@pytest.fixture(scope="session")
def fake_post(sim_sweep, sim_truth) -> xr.DataTree:
    """A fake posterior of :func:`sim_sweep` (2 chains x 300 draws jittered around the truth,
    no sampling; :func:`bayes_scaling.testing.fake_posterior`): for everything downstream
    of fit that does not test statistics."""
    from bayes_scaling.testing import fake_posterior

    return fake_posterior(sim_sweep, truth=sim_truth, chains=2, draws=300, seed=3)


# ----------------------------------------------------------------------------- real fits
# Real fits (nutpie) and the notebook runs (each fits too) happen in two background worker
# processes (bayes_scaling.testing.BackgroundJobs), started as soon as the tests that need
# them are collected, so they overlap the rest of the suite, which mostly keeps one core
# busy. A fit's draws are those of the same fit() call in any other process (fit is seeded;
# test_fit checks real_fit against the command line's fit).
REAL_FIT_SETTINGS = {"seed": 5, "draws": 150, "tune": 150, "chains": 2}
"""Seed and sampler settings of :func:`real_fit` (short chains: its diagnostics flag low
ESS)."""
COVERAGE_SWEEPS = 8
"""Simulated sweeps (seeds 100, 101, ...) fitted for the coverage tests."""
COVERAGE_SETTINGS = {"draws": 400, "tune": 400, "chains": 2}
"""Sampler settings of the coverage fits (fit seed i for sweep 100 + i)."""
RECOVERY_SETTINGS = {"seed": 1}
"""The recovery fit of the embedded default sweep: the spec's sampler (4 x 1000 draws)."""
STEPLAW_SETTINGS = {"seed": 0}
"""The Step Law fit: the spec's sampler settings (4 chains of 1,000 draws after 1,000 tuning
steps)."""

NOTEBOOKS = REPO_ROOT / "notebooks"
NOTEBOOK_ENV = {"BAYES_SCALING_NOTEBOOK_DRAWS": "200",
                "BAYES_SCALING_STEPLAW_DIR": str(STEPLAW_DIR)}
"""Environment of the notebook runs: small fits (2 chains x 200 draws), the Step Law data."""

TRACKER = REPO_ROOT / "tests" / "data" / "tracker_fixed_tpp.csv"
"""A tracker export of a fixed tokens-per-parameter sweep, with its own column names (see
tests/test_tracker_sweep.py)."""
TRACKER_COLUMNS = ("--column", "model_params=n_params", "--column", "tokens_seen=n_tokens",
                   "--column", "learning_rate=lr", "--column", "global_batch_size_seqs=batch_seqs",
                   "--column", "seq_length=seq_len", "--column", "final_val_loss=loss",
                   "--column", "State=status", "--column", "Name=run_id")
"""The mapping options that read :data:`TRACKER`, and nothing else."""

CLI = (sys.executable, "-m", "bayes_scaling.present.cli")
"""How tests run the command line (what the ``bayes-scaling`` entry point runs)."""


def _command(*args: object, **kwargs) -> dict:
    return {"args": [*map(str, args)], "cwd": REPO_ROOT, "timeout": 900, **kwargs}


def _tracker_commands(out: Path) -> list[dict]:
    return [_command(*CLI, "fit", TRACKER, *TRACKER_COLUMNS, "--out", out / "posterior.nc",
                     "--quiet")]


def _demo_commands(out: Path) -> list[dict]:
    return [_command(*CLI, "demo", "--out", out / "out", "--draws", 150, "--tune", 150,
                     "--chains", 2, "--k", 2)]


def _cli_fit_commands(out: Path) -> list[dict]:
    """`bayes-scaling fit` of :func:`tiny_sweep` as CSV with real_fit's settings, in a fresh
    process on an empty PyTensor/numba compile folder (a cold cache)."""
    from bayes_scaling.data import write_sweep

    write_sweep(_tiny_sweep(), out / "sweep.csv")
    (out / "compiledir").mkdir()
    env = {"PYTENSOR_FLAGS": f"base_compiledir={out / 'compiledir'}", "PATH": "/usr/bin:/bin"}
    return [_command(*CLI, "fit", out / "sweep.csv", "--draws", REAL_FIT_SETTINGS["draws"],
                     "--tune", REAL_FIT_SETTINGS["tune"], "--chains",
                     REAL_FIT_SETTINGS["chains"], "--quiet", "--seed", REAL_FIT_SETTINGS["seed"],
                     "--out", out / "same.nc", env=env)]


PROCESSES = {"tracker_fit": _tracker_commands, "demo_run": _demo_commands,
             "cli_fit": _cli_fit_commands}
"""Fixtures served by processes run in turn in a background worker: output folder ->
the commands (:func:`bayes_scaling.testing.processes_in_turn`)."""

BACKGROUND = ("real_fit", "cli_fit", "demo_run", "recovery_fit", "notebook_run",
              "coverage_fits", "steplaw_fit", "tracker_fit")
"""Fixtures served by the background workers, in the order they start (the longest chains
of work first); the tests that use them run after all others (:func:`pytest_collection_
modifyitems`), in this order."""

_BACKGROUND: dict = {}


def _tiny_sweep(seed: int = 3):
    from bayes_scaling.data.simulate import default_cells, simulate_sweep

    cells = default_cells(mixes=("web",), n_params=(1e8, 4e8), tokens_per_param=(20.0,))
    return simulate_sweep(seed, cells=cells, return_truth=False)


def _batches(name: str) -> list[list[tuple[tuple, object, object, dict]]]:
    """The fits behind the fixture ``name``, as batches of (key, sweep, truth, fit kwargs):
    one batch runs in one worker, in turn, so that its fits of one structure share one
    compiled model."""
    from bayes_scaling.data import concat_sweeps, read_steplaw
    from bayes_scaling.data.simulate import default_cells, simulate_sweep

    if name == "real_fit":  # a sibling sweep first: real_fit samples on a reused compile
        other_seed = {**REAL_FIT_SETTINGS, "seed": REAL_FIT_SETTINGS["seed"] + 1}
        return [[(("real_sibling",), _tiny_sweep(4), None, REAL_FIT_SETTINGS),
                 (("real",), _tiny_sweep(), None, REAL_FIT_SETTINGS),
                 (("real_other_seed",), _tiny_sweep(), None, other_seed)]]
    if name == "coverage_fits":
        cells = default_cells(n_params=(5e7, 1.5e8, 4.5e8), tokens_per_param=(20.0, 100.0))
        fits = [(("coverage", i), *simulate_sweep(100 + i, cells=cells, n_lr=6),
                 {"seed": i, **COVERAGE_SETTINGS}) for i in range(COVERAGE_SWEEPS)]
        return [fits]
    if name == "recovery_fit":
        return [[(("recovery",), *simulate_sweep(0), RECOVERY_SETTINGS)]]
    if name == "steplaw_fit":
        if not STEPLAW_DIR.is_dir():
            return []
        sweep = concat_sweeps([read_steplaw(STEPLAW_DIR / "dense_lr_bs_loss.csv"),
                               read_steplaw(STEPLAW_DIR / "moe_lr_bs_loss.csv")])
        return [[(("steplaw",), sweep, None, STEPLAW_SETTINGS)]]
    raise KeyError(name)


def _workers():
    from bayes_scaling.testing import BackgroundJobs

    if "workers" not in _BACKGROUND:
        _BACKGROUND["workers"] = BackgroundJobs(workers=2)
    return _BACKGROUND["workers"]


def _notebook_names() -> list[str]:
    """The notebooks to run: all, but 02 (Step Law) only with the Step Law data."""
    return [p.name for p in sorted(NOTEBOOKS.glob("*.py"))
            if STEPLAW_DIR.is_dir() or "steplaw" not in p.name]


def _start(name: str) -> list[tuple[tuple, object, object]]:
    """Submit the jobs of ``name`` to the background workers (once); their keys, sweeps
    and truths (of fits)."""
    from bayes_scaling.testing import execute_notebook, fits_in_turn, processes_in_turn

    if name == "notebook_run" and name not in _BACKGROUND:
        keys = [("notebook", nb) for nb in _notebook_names()]
        for key in keys:
            _workers().submit(key, execute_notebook, NOTEBOOKS / key[1], cwd=NOTEBOOKS,
                              env=NOTEBOOK_ENV)
        _BACKGROUND[name] = [(key, None, None) for key in keys]
    if name in PROCESSES and name not in _BACKGROUND:
        out = Path(tempfile.mkdtemp(prefix=f"bayes_scaling_{name}_"))
        _workers().submit((name,), processes_in_turn, PROCESSES[name](out))
        _BACKGROUND[name] = [((name,), out, None)]
    if name not in _BACKGROUND:
        _BACKGROUND[name] = []
        for batch in _batches(name):
            batch_key = batch[-1][0]
            _workers().submit(batch_key, fits_in_turn, [(sw, kw) for _, sw, _, kw in batch])
            _BACKGROUND[name] += [((batch_key, i), sweep, truth)
                                  for i, (key, sweep, truth, _) in enumerate(batch)
                                  if key != ("real_sibling",)]
    return _BACKGROUND[name]


def _result(key: tuple) -> object:
    """The result of a background job, or of one fit of a batch ((batch key, index))."""
    if key in _workers():
        return _workers().result(key, timeout=3600)
    batch_key, index = key
    return _workers().result(batch_key, timeout=3600)[index]


def _results(name: str) -> list[tuple[object, object, xr.DataTree]]:
    """(sweep, truth, posterior) of every fit of ``name``, waiting for them."""
    return [(sweep, truth, _result(key)) for key, sweep, truth in _start(name)]


def _background_rank(item) -> int:
    """Where a test runs: 0 without background fixtures, else 1 + the position of the last
    of them in :data:`BACKGROUND` (so that tests wait as little as possible)."""
    names = set(getattr(item, "fixturenames", ()))
    return max((1 + i for i, name in enumerate(BACKGROUND) if name in names), default=0)


def pytest_collection_modifyitems(session, config, items):
    """Tests that need background work run last, while the workers did it meanwhile."""
    items.sort(key=_background_rank)


def pytest_collection_finish(session):
    """Start the fits that the selected tests need."""
    if session.config.option.collectonly:
        return
    needed = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    for name in BACKGROUND:
        if name in needed:
            _start(name)


def pytest_sessionfinish(session):
    """Stop the workers and remove the folders the background processes wrote in."""
    if "workers" in _BACKGROUND:
        _BACKGROUND["workers"].close()
    for name in PROCESSES:
        for _, out, _ in _BACKGROUND.get(name, []):
            shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="session")
def real_fit_settings() -> dict:
    """:data:`REAL_FIT_SETTINGS`."""
    return dict(REAL_FIT_SETTINGS)


@pytest.fixture(scope="session")
def tiny_sweep():
    """Four cells (dense + MoE, N = 1e8 and 4e8, 20 tokens per parameter, mix 'web'),
    simulated with seed 3: the sweep of :func:`real_fit`."""
    return _tiny_sweep()


@pytest.fixture(scope="session")
def real_fit() -> xr.DataTree:
    """THE one small real fit of the unit tests: :func:`tiny_sweep` sampled with nutpie
    (:data:`REAL_FIT_SETTINGS`). Use it only where a sampler is what is tested."""
    return _results("real_fit")[0][2]


@pytest.fixture(scope="session")
def real_fit_other_seed() -> xr.DataTree:
    """:func:`real_fit` with fit seed + 1 (same worker, same compiled model)."""
    return _results("real_fit")[1][2]


@pytest.fixture(scope="session")
def notebook_run():
    """``notebook_run(file name)``: that notebook of notebooks/ executed with
    :data:`NOTEBOOK_ENV` (waits for its background run; raises its error if a cell raised).
    All run, but 02 (Step Law) only with the Step Law data."""
    keys = {key[1]: key for key, _, _ in _start("notebook_run")}
    return lambda name: _workers().result(keys[name], timeout=3600)


@pytest.fixture(scope="session")
def coverage_fits() -> list[tuple[object, xr.Dataset, xr.DataTree]]:
    """(sweep, truth, posterior) of :data:`COVERAGE_SWEEPS` simulated sweeps (seeds 100, 101,
    ...; dense + MoE, mixes web + code, N = 5e7 / 1.5e8 / 4.5e8 x 20 and 100 tokens per
    parameter, 6 lrs x 4 batches, weight decay varied; the simulator's default truth),
    fitted with :data:`COVERAGE_SETTINGS` (fit seed i for sweep 100 + i)."""
    return _results("coverage_fits")


@pytest.fixture(scope="session")
def recovery_fit() -> tuple[object, xr.Dataset, xr.DataTree]:
    """(sweep, truth, posterior) of the embedded default sweep (seed 0) fitted with the
    spec's sampler settings (fit seed 1)."""
    return _results("recovery_fit")[0]


def _processes(name: str) -> tuple[list[subprocess.CompletedProcess], Path]:
    """The finished processes of the background job ``name`` and its output folder."""
    (key, out, _), = _start(name)
    return _workers().result(key, timeout=3600), out


@pytest.fixture(scope="session")
def tracker_fit() -> tuple[subprocess.CompletedProcess, Path]:
    """`bayes-scaling fit` of :data:`TRACKER` with :data:`TRACKER_COLUMNS` only (default spec
    and sampler, seed 0), run in a background worker: (the finished process, the posterior
    path)."""
    (proc,), out = _processes("tracker_fit")
    return proc, out / "posterior.nc"


@pytest.fixture(scope="session")
def demo_run() -> tuple[Path, subprocess.CompletedProcess]:
    """`bayes-scaling demo` with tiny sampler settings (2 chains x 150 draws, k 2), run in a
    background worker: (its output folder, the finished process)."""
    (proc,), out = _processes("demo_run")
    return out / "out", proc


@pytest.fixture(scope="session")
def cli_fit() -> tuple[subprocess.CompletedProcess, Path]:
    """`bayes-scaling fit` on :func:`tiny_sweep` written to CSV, with real_fit's seed and
    sampler settings (short chains: exit 3), in a fresh process on an empty compile folder,
    run in a background worker: (the finished process, its folder: same.nc, compiledir/)."""
    (proc,), out = _processes("cli_fit")
    return proc, out


@pytest.fixture(scope="session")
def steplaw_fit(steplaw_dir) -> xr.DataTree:
    """The Step Law dense + MoE sweeps fitted with :data:`STEPLAW_SETTINGS`."""
    return _results("steplaw_fit")[0][2]


# ----------------------------------------------------------------------------- CLI helper
# (presentation stage: the one way tests run the command line, and a posterior file for it)


def run_cli(*args: object, cwd: Path | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``python -m bayes_scaling.present.cli ARGS`` (what the ``bayes-scaling`` entry point
    runs) in a subprocess, as a user would; returns the finished process (text output)."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, timeout=timeout)


@pytest.fixture(name="run_cli", scope="session")
def run_cli_fixture():
    """:func:`run_cli` as a fixture, so test modules need not import conftest."""
    return run_cli


@pytest.fixture(scope="session")
def cli_posterior_path(tmp_path_factory) -> Path:
    """A fake posterior (:func:`bayes_scaling.testing.fake_posterior`: dense + MoE, one mix
    'web', no sampling) saved to a file, for CLI tests of predict, propose and report. Not
    :func:`fake_post`: the hand-made candidates of test_cli_propose were written against
    this one (on fake_post their information is within the 8-outcome estimate's noise)."""
    from bayes_scaling.model.fit import save_posterior
    from bayes_scaling.testing import fake_posterior

    return save_posterior(fake_posterior(), tmp_path_factory.mktemp("cli") / "posterior.nc")


@pytest.fixture(scope="session")
def figure_pieces() -> dict:
    """What the figure and report tests draw from, computed once: a fake posterior
    (no sampling) on a 16-cell simulated sweep (dense + MoE, mixes code + web), its truth,
    two targets, their prediction, proposals and a regret grid for the first target."""
    import pandas as pd

    from bayes_scaling.data.simulate import default_cells, simulate_sweep
    from bayes_scaling.design.propose import propose
    from bayes_scaling.predict.predict import predict
    from bayes_scaling.present.plots import regret_grid
    from bayes_scaling.testing import fake_posterior

    sweep, truth = simulate_sweep(seed=1, cells=default_cells(n_params=(5e7, 2e8)))
    posterior = fake_posterior(sweep, truth=truth, draws=100, seed=1)
    targets = pd.DataFrame({"arch": ["dense", "moe"], "data_mix": ["web", "web"],
                            "n_params": [7e9, 7e9], "n_tokens": [2e12, 2e12]})
    prediction = predict(posterior, targets, seed=0)
    proposals = propose(posterior, targets.iloc[0].to_dict(), k=2, seed=0, n_draws=200,
                        n_rescore=8, n_outcomes=8)
    regret = regret_grid(posterior, targets.iloc[0], prediction, n_lr=14, n_batch=12)
    return {"posterior": posterior, "truth": truth, "targets": targets,
            "prediction": prediction, "proposals": proposals, "regret": regret}
