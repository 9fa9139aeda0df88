"""Pool mode: ``propose(posterior, target, pool=...)`` and ``bayes-scaling propose --pool``, on
fake posteriors (no sampling)."""

import json

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.design.candidates import as_candidates
from bayes_scaling.design.pool import already_run, read_pool
from bayes_scaling.design.propose import propose
from bayes_scaling.errors import CandidateError
from bayes_scaling.model.fit import load_posterior, posterior_runs

TARGET = {"arch": "dense", "data_mix": "web", "n_params": 4e9, "n_tokens": 8e10}
FAST = {"n_draws": 200, "n_outcomes": 8, "n_rescore": 8, "seed": 0}
CLI_TARGET = ["--target-params", "4e9", "--target-tokens", "8e10", "--arch", "dense",
              "--draws", "200", "--outcomes", "8"]


@pytest.fixture(scope="module")
def fitted(fake_post) -> pd.DataFrame:
    """The runs the fake posterior was fitted to."""
    return posterior_runs(fake_post)


def new_runs(n: int = 5, **extra) -> pd.DataFrame:
    """``n`` dense runs in a cell the fit has not seen (N = 2e8, D = 4e9, 64 sequences of
    2048 tokens), lr spread around 1e-3."""
    return pd.DataFrame({"run_id": [f"new{i}" for i in range(n)], "arch": "dense",
                         "data_mix": "web", "n_params": 2e8, "n_tokens": 4e9,
                         "lr": 1e-3 * np.exp(np.linspace(-1, 1, n)),
                         "batch_tokens": 2048.0 * 64, "seq_len": 2048, **extra})


def keys(table: pd.DataFrame) -> set[tuple]:
    return set(map(tuple, table[["n_params", "n_tokens", "lr", "batch_tokens"]].to_numpy()))


def test_pool_rows_become_the_candidates_at_6nd(fake_post):
    pool = new_runs()
    out = propose(fake_post, TARGET, pool=pool, **FAST)
    assert len(out) == len(pool) and keys(out) == keys(pool)
    assert sorted(out["group"]) == [f"row{i}" for i in range(len(pool))]  # one run each
    assert sorted(out["pool_row"]) == list(range(len(pool)))
    assert np.allclose(out["cost_flops"], 6 * out["n_params"] * out["n_tokens"], rtol=1e-12)
    assert out.attrs["pool"] == {"source": "pool", "rows": 5, "already_run": 0,
                                 "new_mixes": []}
    assert {"verdict", "regret_before_pct", "spent_flops"} <= set(out.attrs)


def test_an_unseen_mix_in_the_pool_is_a_new_mix(fake_post):
    out = propose(fake_post, TARGET, pool=new_runs(data_mix="code"), **FAST)
    assert out.attrs["pool"]["new_mixes"] == ["code"] and set(out["data_mix"]) == {"code"}


def test_rows_of_the_fitted_sweep_are_not_proposed_again(fake_post, fitted):
    ran = fitted.iloc[[0, 7, 30, 200]]  # dense and MoE runs, with loss, status and cell
    pool = pd.concat([ran, new_runs()], ignore_index=True)
    out = propose(fake_post, TARGET, pool=pool, **FAST)
    assert out.attrs["pool"]["rows"] == 9 and out.attrs["pool"]["already_run"] == 4
    assert keys(out) == keys(new_runs()) and not keys(out) & keys(ran)
    assert sorted(out["pool_row"]) == [4, 5, 6, 7, 8]
    assert not {"loss", "status", "cell"} & set(out.columns)  # a sweep's extras are ignored
    with pytest.raises(CandidateError, match="all 4 rows are runs of the fitted sweep"):
        propose(fake_post, TARGET, pool=ran, **FAST)


def test_already_run_matches_within_a_relative_tolerance(fitted):
    runs = fitted[fitted["arch"] == "dense"].iloc[:5]
    table = as_candidates(runs.assign(
        lr=runs["lr"] * [1 + 1e-3, 1 + 2e-2, 1, 1, 1],
        weight_decay=[runs["weight_decay"].iloc[0], np.nan, np.nan,
                      2 * runs["weight_decay"].iloc[3], runs["weight_decay"].iloc[4]],
        data_mix=["web", "web", "web", "web", "code"]))
    # lr printed to three digits (0.1% off): a match; 2% off (another setting): new; unknown
    # weight decay matches any; another weight decay or another data mix: new
    assert already_run(table, fitted).tolist() == [True, False, True, False, False]


@pytest.mark.parametrize("column", ["cost", "cost_flops"])
def test_a_given_cost_column_is_used(fake_post, column):
    cost = [1e15, 2e15, 3e15, 4e15, 5e15]
    out = propose(fake_post, TARGET, pool=new_runs(**{column: cost}), **FAST)
    by_row = out.set_index("pool_row").sort_index()
    assert by_row["cost_flops"].tolist() == cost
    assert by_row["group_cost_flops"].tolist() == cost


def test_a_group_column_makes_rows_run_together(fake_post):
    pool = new_runs(group=["line", "line", "line", None, ""])
    out = propose(fake_post, TARGET, pool=pool, **FAST)
    assert set(out["group"]) == {"line", "row3", "row4"}  # blank: a group of its own
    line = out[out["group"] == "line"]
    assert len(line) == 3 and line["rank"].nunique() == 1
    assert line["group_cost_flops"].iloc[0] == pytest.approx(line["cost_flops"].sum())
    assert line["group_cost_flops"].iloc[0] == pytest.approx(3 * 6 * 2e8 * 4e9)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_pool_file_reads_like_a_sweep_file(tmp_path, suffix):
    """Sweep defaults (arch dense), size suffixes, the batch in sequences, blank lines."""
    raw = pd.DataFrame({"N": ["200M", "200M"], "D": ["4B", "4B"], "learning_rate": [1e-3, 2e-3],
                        "bsz": [64, 128], "data_mix": ["web", "web"], "loss": [2.9, None]})
    path = tmp_path / f"pool{suffix}"
    {".csv": lambda: raw.to_csv(path, index=False),
     ".parquet": lambda: raw.to_parquet(path, index=False),
     ".jsonl": lambda: raw.to_json(path, orient="records", lines=True)}[suffix]()
    columns = {"N": "n_params", "D": "n_tokens", "learning_rate": "lr", "bsz": "batch_seqs"}
    table = read_pool(path, columns)
    assert table["arch"].tolist() == ["dense", "dense"]
    assert table["n_params"].tolist() == [2e8, 2e8] and table["n_tokens"].tolist() == [4e9, 4e9]
    assert table["batch_tokens"].tolist() == [64 * 2048.0, 128 * 2048.0]
    assert table.attrs["pool"] == str(path) and "loss" not in table


def test_pool_errors_name_the_file_rows_and_column(fake_post, tmp_path):
    path = tmp_path / "pool.csv"
    new_runs().assign(arch=["dense", "xl", "dense", "xl", "dense"]).to_csv(path, index=False)
    with pytest.raises(CandidateError) as err:
        propose(fake_post, TARGET, pool=path, **FAST)
    assert str(err.value).startswith(f"{path}: column 'arch': labels not in the fitted data")
    assert "rows 1, 3 (0-based data rows; file lines 3, 5) (values: 'xl')" in str(err.value)
    with pytest.raises(CandidateError, match="not both"):
        propose(fake_post, TARGET, candidates=new_runs(), pool=new_runs(), **FAST)


def test_cli_pool_with_mapped_columns(run_cli, cli_posterior_path, tmp_path):
    """A sweep-style export as the pool: lr and the batch (in sequences) under their own
    names, three rows the fit has seen and three new ones."""
    seen = posterior_runs(load_posterior(cli_posterior_path)).iloc[[0, 1, 30]]
    rows = pd.concat([seen.drop(columns="cell"), new_runs(3)], ignore_index=True)
    rows["bsz"] = rows.pop("batch_tokens") / rows["seq_len"]
    path = tmp_path / "export.csv"
    rows.rename(columns={"lr": "learning_rate"}).to_csv(path, index=False)
    maps = ["--column", "learning_rate=lr", "--column", "bsz=batch_seqs"]
    result = run_cli("propose", cli_posterior_path, *CLI_TARGET, "--pool", path, *maps)
    assert result.returncode == 0, result.stderr
    assert (f"note: pool {path}: 6 rows, 3 already in the fitted sweep (not proposed again), "
            "3 candidate runs") in result.stdout
    result = run_cli("propose", cli_posterior_path, *CLI_TARGET, "--pool", path, *maps,
                     "--json", "-k", "3")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["pool"] == {"source": str(path), "rows": 6, "already_run": 3, "new_mixes": []}
    assert out["candidates"] == 3
    assert all(r["n_params"] == 2e8 for r in out["runs"] + out["alternatives"])


def test_cli_malformed_pool_exits_2_with_one_error_line(run_cli, cli_posterior_path, tmp_path):
    path = tmp_path / "pool.csv"
    new_runs(3).assign(lr=["1e-3", "fast", "2e-3"]).rename(columns={"lr": "LR"}).to_csv(
        path, index=False)
    result = run_cli("propose", cli_posterior_path, *CLI_TARGET, "--pool", path,
                     "--column", "LR=lr")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert lines == [f"error: {path}: column 'LR' (as lr): must be a positive number at row 1 "
                     "(0-based data rows; file line 3) (values: 'fast')"]
    result = run_cli("propose", cli_posterior_path, *CLI_TARGET, "--column", "LR=lr")
    assert result.returncode == 2 and "give --pool" in result.stderr
