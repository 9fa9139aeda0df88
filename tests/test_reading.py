"""Reading a practitioner's own sweep (issue 11, item 1), in process: column and status maps,
batch in sequences, size suffixes, tracker run states, plausibility checks, column-map files.

The W&B-style export in tests/data is a 4-cell dense sweep with 61 finished runs (one with a
NaN loss: a divergence) and 5 that did not finish (2 crashed, 1 failed, 1 running, 1 killed).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayes_scaling as bs
from bayes_scaling.data import ColumnMap, from_frame, read_column_map, read_sweep
from bayes_scaling.data.schema import parse_size
from bayes_scaling.errors import SweepError

DATA = Path(__file__).parent / "data"
WANDB = DATA / "wandb_export.csv"
WANDB_MAP = DATA / "wandb_columns.toml"
WANDB_COLUMNS = {"Name": "run_id", "State": "status", "config.model_params": "n_params",
                 "config.tokens": "n_tokens", "config.learning_rate": "lr",
                 "config.batch_size": "batch_seqs", "config.seq_len": "seq_len",
                 "config.weight_decay": "weight_decay", "summary.final_loss": "loss"}
NOT_FINISHED = {"d120m-tpp20-lr2.17e-03-bs56-try1": "crashed",
                "d120m-tpp80-lr3.15e-03-bs71-try1": "failed",
                "d350m-tpp20-lr1.51e-03-bs117-try1": "crashed",
                "d350m-tpp80-lr1.56e-03-bs359-rerun": "running",
                "d350m-tpp80-lr3.12e-03-bs179-rerun": "killed"}


def runs_frame(n: int = 6, **columns) -> pd.DataFrame:
    """A valid one-cell sweep of ``n`` runs (lr varies), with optional extra columns."""
    df = pd.DataFrame({"run_id": [f"run{i}" for i in range(n)], "n_params": 1e8,
                       "n_tokens": 2e9, "batch_tokens": 2.0**19,
                       "lr": np.geomspace(1e-4, 3e-3, n), "loss": np.linspace(3.0, 3.05, n)})
    return df.assign(**columns)


def error_of(df: pd.DataFrame, **kwargs) -> str:
    with pytest.raises(SweepError) as info:
        from_frame(df, source="mine.csv", **kwargs)
    return str(info.value)


def accounting(sweep, window: float = 0.02) -> tuple[int, int, int]:
    """(used, censored, excluded) rows; they add up to the input rows."""
    report = sweep.exclusion_report(window)
    censored = int((report["action"] == "censored").sum())
    excluded = int((report["action"] == "excluded").sum())
    in_runs = int(report["row"].notna().sum())
    return len(sweep.runs) - in_runs, censored, excluded


# ----------------------------------------------------------------------------- the W&B file
def test_wandb_export_read_with_a_column_map():
    sweep = read_sweep(WANDB, columns=WANDB_COLUMNS)
    n_rows = len(pd.read_csv(WANDB))
    used, censored, excluded = accounting(sweep)
    assert (len(sweep.runs), excluded, n_rows) == (61, 5, 66)
    assert used + censored + excluded == n_rows
    assert not set(NOT_FINISHED) & set(sweep.runs["run_id"])
    report = sweep.exclusion_report().set_index("run_id")
    for run_id, state in NOT_FINISHED.items():
        assert report.loc[run_id, "action"] == "excluded"
        assert report.loc[run_id, "reason"].startswith(f"status '{state}': run not finished")
        assert "not censored" in report.loc[run_id, "reason"]
        assert report.loc[run_id, "cell"].startswith("dense|default|N=")
    assert "file line 13" in report.loc["d120m-tpp20-lr2.17e-03-bs56-try1", "reason"]
    # the finished run with a NaN loss is the one divergence
    diverged = sweep.runs[sweep.runs["status"] == "diverged"]
    assert diverged["run_id"].tolist() == ["d120m-tpp20-lr1.20e-02-bs28"]
    # batch in sequences x seq_len; extras kept as read
    runs = sweep.runs
    assert np.array_equal(runs["batch_tokens"], runs["batch_seqs"] * runs["seq_len"])
    assert {"Created", "Runtime", "summary._step"} <= set(runs.columns)


def test_wandb_columns_file_reads_the_same_sweep():
    mapping = read_column_map(WANDB_MAP)
    assert mapping.columns == WANDB_COLUMNS and mapping.status == {}
    by_file = read_sweep(WANDB, columns=mapping)
    by_dict = read_sweep(WANDB, columns=WANDB_COLUMNS)
    assert by_file.data_hash() == by_dict.data_hash()
    assert bs.read_column_map is read_column_map and bs.ColumnMap is ColumnMap


def test_crashed_mapped_to_diverged_is_censored_not_excluded():
    sweep = read_sweep(WANDB, columns=WANDB_COLUMNS, status={"crashed": "diverged"})
    crashed = [r for r, state in NOT_FINISHED.items() if state == "crashed"]
    runs = sweep.runs.set_index("run_id")
    assert (runs.loc[crashed, "status"] == "diverged").all()
    report = sweep.exclusion_report().set_index("run_id")
    assert (report.loc[crashed, "action"] == "censored").all()
    assert (len(sweep.runs), int((report["action"] == "excluded").sum())) == (63, 3)


def test_unmapped_state_column_is_refused():
    columns = {k: v for k, v in WANDB_COLUMNS.items() if k != "State"}
    with pytest.raises(SweepError) as info:
        read_sweep(WANDB, columns=columns)
    msg = str(info.value)
    assert msg.startswith(f"{WANDB}: column 'State' holds run states")
    assert "'crashed'" in msg and "--column State=status" in msg


def test_without_any_map_the_missing_columns_are_named():
    with pytest.raises(SweepError, match=r"missing required column\(s\) \['n_params', "
                                         r"'n_tokens', 'batch_tokens', 'lr', 'loss'\] \(or "
                                         "batch_seqs"):
        read_sweep(WANDB)


# ----------------------------------------------------------------------------- status map
@pytest.mark.parametrize(("state", "used"), [("finished", True), ("Completed", True),
                                             ("crashed", False), ("FAILED", False),
                                             ("killed", False), ("running ", False)])
def test_built_in_tracker_states(state, used):
    status = ["finished"] * 5 + [state]
    sweep = from_frame(runs_frame(status=status, loss=[3.0, 3.01, 3.02, 3.03, 3.04, np.nan]))
    assert ("run5" in set(sweep.runs["run_id"])) is used
    report = sweep.exclusion_report().set_index("run_id")
    expected = "censored" if used else "excluded"  # NaN loss: divergence only if finished
    assert report.loc["run5", "action"] == expected
    if not used:
        assert report.loc["run5", "reason"].startswith(f"status {state!r}: run not finished")


def test_user_status_map_and_its_errors():
    df = runs_frame(status=["done"] * 4 + ["preempted", "nan-stop"])
    sweep = from_frame(df, status={"done": "ok", "nan-stop": "diverged",
                                   "PREEMPTED": "excluded"})
    assert sweep.runs.set_index("run_id")["status"].to_dict() == {
        "run0": "ok", "run1": "ok", "run2": "ok", "run3": "ok", "run5": "diverged"}
    reason = sweep.exclusion_report().set_index("run_id").loc["run4", "reason"]
    assert reason.startswith("status 'preempted': excluded by the status map")
    msg = error_of(df)
    assert "column 'status': unknown run states" in msg and "--status" in msg
    assert "rows 0, 1, 2, 3, 5" in msg and "'done'" in msg
    assert "one of ok, diverged, excluded" in error_of(df, status={"done": "good"})


def test_every_row_excluded_is_an_error():
    msg = error_of(runs_frame(status="running"))
    assert msg.startswith("mine.csv: no runs left: all 6 rows are excluded")
    assert "status 'running'" in msg


# ----------------------------------------------------------------------------- batch, sizes
def test_batch_in_sequences_with_and_without_seq_len():
    df = runs_frame().drop(columns="batch_tokens").assign(bs=256, S=4096)
    sweep = from_frame(df, columns={"bs": "batch_seqs", "S": "seq_len"})
    assert (sweep.runs["batch_tokens"] == 256 * 4096).all()
    assert any("batch_tokens = batch_seqs x seq_len (batch_seqs: column 'bs')" in n
               for n in sweep.notes)
    default = from_frame(df.drop(columns="S"), columns={"bs": "batch_seqs"})
    assert (default.runs["batch_tokens"] == 256 * 2048).all()
    assert any("batch_seqs given without seq_len" in n and "2048" in n for n in default.notes)


def test_batch_tokens_and_sequences_must_agree():
    df = runs_frame(batch_seqs=[256, 256, 256, 100, 256, 256])
    msg = error_of(df)
    assert "column 'batch_tokens': differs from batch_seqs x seq_len at row 3" in msg


@pytest.mark.parametrize(("text", "value"), [("7B", 7e9), ("2T", 2e12), ("350M", 3.5e8),
                                             ("4k", 4e3), ("1.5e9", 1.5e9), (" 7 b ", 7e9),
                                             ("1_000", 1e3), (3, 3.0)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["7X", "", "B", "seven"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError, match="7B, 2T, 350M"):
        parse_size(text)


def test_size_suffixes_in_cells(tmp_path):
    df = runs_frame(n_params="120M", n_tokens=["2.4B"] * 5 + ["2400000000"])
    path = tmp_path / "sizes.csv"
    df.to_csv(path, index=False)
    runs = read_sweep(path).runs
    assert (runs["n_params"] == 1.2e8).all() and (runs["n_tokens"] == 2.4e9).all()
    lr = error_of(runs_frame(lr=["1e-3"] * 5 + ["3m"]))  # lr is not a size: no suffixes
    assert "column 'lr': non-numeric values" in lr and "at row 5" in lr


# ----------------------------------------------------------------------------- plausibility
def test_sizes_in_millions_or_billions_are_refused(tmp_path):
    df = runs_frame(n_params=[1e8] * 5 + [350.0])
    path = tmp_path / "sweep.csv"
    df.to_csv(path, index=False)
    with pytest.raises(SweepError) as info:
        read_sweep(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: column 'n_params': below 10000: looks like a count in "
                          "millions or billions")
    assert "row 5 (0-based data rows; file line 7)" in msg and "7B" in msg
    tokens = error_of(runs_frame(n_tokens=6e5, batch_tokens=2048.0))
    assert "column 'n_tokens': below 1e+06" in tokens


def test_implausible_lr_is_noted_with_row_and_column():
    sweep = from_frame(runs_frame(eta=[1e-3, 2e-3, 3.0, 4e-3, 1e-7, 5e-3]).drop(columns="lr"),
                       columns={"eta": "lr"})
    note = next(n for n in sweep.notes if "outside (1e-06, 1)" in n)
    assert note.startswith("column 'eta' (as lr): outside (1e-06, 1)")
    assert "rows 2, 4 (0-based data rows)" in note and "3.0" in note


def test_errors_name_the_users_column():
    df = runs_frame(eta=[1e-3, -1e-3, 1e-3, 2e-3, 1e-3, 3e-3]).drop(columns="lr")
    msg = error_of(df, columns={"eta": "lr"})
    assert "column 'eta' (as lr): non-positive or infinite values at row 1" in msg


def test_labels_with_stray_spaces_are_stripped_and_noted():
    sweep = from_frame(runs_frame(arch=["dense", "Dense ", " dense", "dense", "dense", "Dense"]))
    assert sorted(sweep.runs["arch"].unique()) == ["Dense", "dense"]
    notes = " | ".join(sweep.notes)
    assert "column 'arch': labels with leading/trailing spaces, stripped at rows 1, 2" in notes
    assert "'Dense '" in notes
    assert "labels that differ only in case are different labels: ['dense', 'Dense']" in notes


def test_exact_duplicate_rows_are_excluded_once():
    df = runs_frame()
    df = pd.concat([df, df.iloc[[2, 2]]], ignore_index=True)  # rows 6 and 7 repeat row 2
    sweep = from_frame(df)
    assert len(sweep.runs) == 6
    report = sweep.exclusion_report()
    excluded = report[report["action"] == "excluded"]
    assert excluded["run_id"].tolist() == ["run2", "run2"]
    assert excluded["reason"].str.startswith("exact duplicate of row 2 (every column "
                                             "equal)").all()
    assert "rows 6, 7" in " | ".join(sweep.notes)
    nearly = df.copy()
    nearly.loc[7, "loss"] = 3.5  # same run_id, another loss: not a duplicate, an error
    assert "column 'run_id': duplicate values: 'run2' at rows 2, 7" in error_of(nearly)


# ----------------------------------------------------------------------------- map files
def test_column_map_file_flattens_dotted_keys_and_reads_status(tmp_path):
    path = tmp_path / "cols.toml"
    path.write_text('[columns]\nconfig.lr = "lr"\n"summary.loss" = "loss"\nN = "n_params"\n'
                    '[status]\npreempted = "excluded"\n')
    mapping = read_column_map(path)
    assert mapping.columns == {"config.lr": "lr", "summary.loss": "loss", "N": "n_params"}
    assert mapping.status == {"preempted": "excluded"}
    merged = mapping.updated({"N": "n_tokens"}, {"stopped": "ok"})
    assert merged.columns["N"] == "n_tokens" and merged.status == {"preempted": "excluded",
                                                                     "stopped": "ok"}


@pytest.mark.parametrize(("text", "expected"), [
    ('[columns]\nlr = "learning_rate"\n', "not a column of the schema"),
    ('[columns]\nlr = 3\n', "the value must be a string"),
    ('[status]\ncrashed = "maybe"\n', "one of ok, diverged, excluded"),
    ('[colums]\nlr = "lr"\n', "has a [columns] table"),
    ('[columns\n', "not a valid TOML column map"),
])
def test_column_map_file_errors_name_the_file(tmp_path, text, expected):
    path = tmp_path / "cols.toml"
    path.write_text(text)
    with pytest.raises(SweepError) as info:
        read_column_map(path)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value)
    with pytest.raises(SweepError, match="no such column-map file"):
        read_column_map(tmp_path / "absent.toml")
