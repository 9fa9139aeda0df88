"""CLI tests, by subprocess (``python -m bayes_scaling.present.cli``), as a user would run it."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.present.cli import COMMANDS, main


def write_runs(path: Path, n: int = 6, **columns) -> Path:
    df = pd.DataFrame({"run_id": [f"{path.stem}{i}" for i in range(n)], "n_params": 1e8,
                       "n_tokens": 2e9, "batch_tokens": 2.0**19,
                       "lr": np.geomspace(1e-4, 3e-3, n), "loss": np.linspace(3.0, 3.1, n)})
    df.assign(**columns).to_csv(path, index=False)
    return path


def test_commands_are_registered_with_parser_and_runner():
    assert {"validate", "simulate"} <= set(COMMANDS)
    for add_parser, run in COMMANDS.values():
        assert callable(add_parser) and callable(run)


def test_validate_human_report(run_cli, tmp_path):
    path = write_runs(tmp_path / "a.csv", loss=[3.0, np.nan, 3.01, 3.2, 3.02, 3.03])
    result = run_cli("validate", path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "runs: 6 in 1 cells; archs: dense; data mixes: default" in out
    assert "lr            0.0001 .. 0.003" in out
    assert "weight_decay  unknown (all missing)" in out
    assert "diverged: 1; censored: 2 (window 0.02); excluded: 0" in out
    assert "diverged: loss is NaN/inf" in out and "a1" in out and "a3" in out
    assert "seq_len absent: default 2048" in out


def test_validate_json_several_paths_and_window(run_cli, tmp_path):
    a = write_runs(tmp_path / "a.csv")
    b = write_runs(tmp_path / "b.csv", data_mix="code")
    result = run_cli("validate", a, b, "--json", "--window", "0.5")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["runs"], summary["cells"], summary["excluded"]) == (12, 2, [])
    assert summary["data_mixes"] == ["code", "default"] and summary["window"] == 0.5
    assert summary["n_censored"] == 0


def test_validate_column_mapping(run_cli, tmp_path):
    path = tmp_path / "theirs.csv"
    write_runs(path)
    pd.read_csv(path).rename(columns={"lr": "eta"}).to_csv(path, index=False)
    assert run_cli("validate", path).returncode == 2
    result = run_cli("validate", path, "--column", "eta=lr", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["runs"] == 6


def test_validate_bad_input_exits_2_with_row_and_column(run_cli, tmp_path):
    path = write_runs(tmp_path / "bad.csv", lr=[1e-3, -1e-3, 1e-3, 2e-3, 0.0, 3e-3])
    result = run_cli("validate", path, "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: column 'lr': non-positive")
    assert "rows 1, 4 (0-based data rows; file lines 3, 6)" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_duplicate_ids_across_files(run_cli, tmp_path):
    a = write_runs(tmp_path / "a.csv")
    result = run_cli("validate", a, a)
    assert result.returncode == 2
    assert "column 'run_id': duplicate values across sweeps" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["validate", "missing.csv"],
                                  ["validate", "x.txt"],
                                  ["validate", "x.csv", "--format", "xlsx"],
                                  ["validate", "x.csv", "--window", "-1"]])
def test_validate_usage_errors(run_cli, tmp_path, args):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "error" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "runs", "cells", "arch"),
                         [("dense_lr_bs_loss.csv", 1911, 17, "dense"),
                          ("moe_lr_bs_loss.csv", 708, 16, "moe")])
def test_validate_steplaw_json(run_cli, steplaw_dir, name, runs, cells, arch):
    result = run_cli("validate", steplaw_dir / name, "--format", "steplaw", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["runs"], summary["cells"], summary["archs"]) == (runs, cells, [arch])
    assert summary["excluded"] == [] and summary["ranges"]["weight_decay"] is None


def test_simulate_writes_sweep_and_truth(run_cli, tmp_path):
    out = tmp_path / "sim" / "sweep.csv"
    result = run_cli("simulate", "--out", out, "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert out.is_file() and (tmp_path / "sim" / "sweep.truth.nc").is_file()
    assert "runs in" in result.stdout and len(result.stdout.strip().splitlines()) == 1
    check = run_cli("validate", out, "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["runs"] > 0


def test_main_in_process_returns_exit_code(tmp_path, capsys):
    path = write_runs(tmp_path / "a.csv")
    assert main(["validate", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == 6
    assert main(["validate", str(tmp_path / "none.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
