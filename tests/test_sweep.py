"""Unit tests of the sweep data layer: schema, validation messages, censoring, Step Law."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.data import (
    Sweep,
    concat_sweeps,
    from_frame,
    read_steplaw,
    read_sweep,
    write_sweep,
)
from bayes_scaling.data.schema import CANONICAL_COLUMNS, NO_EDGE_REASON, cell_id
from bayes_scaling.data.steplaw import snap_printed
from bayes_scaling.errors import SweepError


def runs_frame(n: int = 6, **columns) -> pd.DataFrame:
    """A valid sweep of ``n`` runs in one cell (lr varies), with optional extra columns."""
    df = pd.DataFrame({
        "run_id": [f"run{i}" for i in range(n)],
        "n_params": 1e8, "n_tokens": 2e9, "batch_tokens": 2.0**19,
        "lr": np.geomspace(1e-4, 3e-3, n), "loss": np.linspace(3.0, 3.05, n)})
    for name, values in columns.items():
        df[name] = values
    return df


def set_values(df: pd.DataFrame, column: str, rows: list[int], value) -> pd.DataFrame:
    """Copy of ``df`` with ``value`` at ``rows`` of ``column`` (object column if needed)."""
    out = df.copy()
    out[column] = out[column].astype(object)
    for row in rows:
        out.loc[row, column] = value
    return out


def to_csv(tmp_path: Path, df: pd.DataFrame, name: str = "sweep.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def error_of(path_or_frame, **kwargs) -> str:
    with pytest.raises(SweepError) as info:
        if isinstance(path_or_frame, pd.DataFrame):
            from_frame(path_or_frame, **kwargs)
        else:
            read_sweep(path_or_frame, **kwargs)
    return str(info.value)


# ----------------------------------------------------------------------------- bad input
def test_missing_required_column_lists_missing_and_present(tmp_path):
    path = to_csv(tmp_path, runs_frame().drop(columns=["lr", "loss"]))
    msg = error_of(path)
    assert str(path) in msg
    assert "missing required column(s) ['lr', 'loss']" in msg
    assert "columns present: ['run_id', 'n_params'" in msg


@pytest.mark.parametrize("column", ["n_params", "n_tokens", "batch_tokens", "lr", "seq_len"])
def test_non_numeric_value_names_file_row_and_column(tmp_path, column):
    df = set_values(runs_frame(seq_len=2048), column, [2], "215 M params")
    path = to_csv(tmp_path, df)
    msg = error_of(path)
    assert msg.startswith(f"{path}: column '{column}': non-numeric values")
    assert "row 2 (0-based data rows; file line 4)" in msg
    assert "'215 M params'" in msg


@pytest.mark.parametrize("column", ["n_params", "n_tokens", "batch_tokens", "lr", "seq_len"])
@pytest.mark.parametrize("value", [0, -1.5])
def test_non_positive_value_names_rows_and_column(tmp_path, column, value):
    df = set_values(runs_frame(seq_len=2048), column, [1, 3], value)
    path = to_csv(tmp_path, df)
    msg = error_of(path)
    assert str(path) in msg
    assert (f"column '{column}': non-positive or infinite values at rows 1, 3 "
            "(0-based data rows; file lines 3, 5)") in msg


def test_non_integer_seq_len(tmp_path):
    path = to_csv(tmp_path, set_values(runs_frame(seq_len=2048), "seq_len", [4], 2048.5))
    assert "column 'seq_len': non-integers at row 4 (0-based data rows; file line 6)" in (
        error_of(path))


def test_missing_size_value_is_an_error(tmp_path):
    path = to_csv(tmp_path, set_values(runs_frame(), "n_params", [0], np.nan))
    assert "column 'n_params': missing values at row 0 (0-based data rows; file line 2)" in (
        error_of(path))


def test_negative_weight_decay(tmp_path):
    path = to_csv(tmp_path, runs_frame(weight_decay=[0.1, np.nan, -0.1, 0.0, 0.1, 0.1]))
    msg = error_of(path)
    assert msg.startswith(f"{path}: column 'weight_decay': negative or infinite values")
    assert "row 2 (0-based data rows; file line 4)" in msg


def test_duplicate_run_id_names_both_rows(tmp_path):
    path = to_csv(tmp_path, set_values(runs_frame(), "run_id", [1, 4], "dup"))
    msg = error_of(path)
    assert str(path) in msg
    assert "column 'run_id': duplicate values: 'dup' at rows 1, 4" in msg
    assert "file lines 3, 6" in msg


def test_unknown_arch_label_with_allowed_set(tmp_path):
    df = runs_frame(arch=["dense", "moe", "dense", "moe", "dense", "mystery"])
    path = to_csv(tmp_path, df)
    msg = error_of(path, arch_labels={"dense", "moe"})
    assert msg.startswith(f"{path}: column 'arch': labels not in the model spec")
    assert "row 5 (0-based data rows; file line 7)" in msg and "'mystery'" in msg
    assert len(read_sweep(path).runs) == 6  # without a spec any label is fine


def test_unknown_format_and_suffix(tmp_path):
    path = to_csv(tmp_path, runs_frame(), name="sweep.txt")
    assert "cannot tell the format from the suffix '.txt'" in error_of(path)
    assert "unknown format 'xlsx'" in error_of(path, format="xlsx")
    with pytest.raises(SweepError, match=r"sweep\.txt"):
        write_sweep(from_frame(runs_frame()), path)


def test_columns_mapping_naming_absent_column(tmp_path):
    path = to_csv(tmp_path, runs_frame())
    msg = error_of(path, columns={"N": "n_params", "eta": "lr"})
    assert str(path) in msg
    assert "columns= maps ['N', 'eta'] but there is no such column" in msg
    assert "columns present: ['run_id', 'n_params'" in msg


def test_columns_mapping_renames_onto_schema(tmp_path):
    df = runs_frame().rename(columns={"n_params": "N", "lr": "eta", "run_id": "name"})
    sweep = read_sweep(to_csv(tmp_path, df), columns={"N": "n_params", "eta": "lr",
                                                      "name": "run_id"})
    assert list(sweep.runs.columns[:len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)
    assert sweep.runs["run_id"].tolist() == df["name"].tolist()
    assert "N" not in sweep.runs and "eta" not in sweep.runs


def test_columns_mapping_collision():
    df = runs_frame(N=1e8)
    assert "several columns are named ['n_params']" in error_of(df, columns={"N": "n_params"})


def test_many_bad_rows_are_truncated(tmp_path):
    df = set_values(runs_frame(30), "lr", list(range(5, 30)), -1.0)
    msg = error_of(to_csv(tmp_path, df))
    assert "rows 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 ... and 15 more" in msg
    assert "file lines 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)" in msg


def test_unknown_status_value(tmp_path):
    status = ["ok", "diverged", "OK", "exploded", "ok", ""]
    msg = error_of(to_csv(tmp_path, runs_frame(status=status)))
    assert "column 'status': unknown run states" in msg and "at row 3" in msg
    assert "file line 5" in msg and "'exploded'" in msg


def test_missing_labels(tmp_path):
    path = to_csv(tmp_path, runs_frame(arch=["dense", "dense", None, "dense", " ", "dense"]))
    assert "column 'arch': missing labels at rows 2, 4 (0-based data rows; file lines 4, 6)" in (
        error_of(path))


def test_batch_given_in_sequences_is_caught(tmp_path):
    path = to_csv(tmp_path, runs_frame(batch_tokens=256.0))
    msg = error_of(path)
    assert "column 'batch_tokens': smaller than seq_len" in msg and "sequences" in msg


def test_tokens_given_in_billions_is_caught():
    msg = error_of(runs_frame(n_tokens=2.0))
    assert "column 'n_tokens': fewer training tokens than one batch" in msg
    assert "rows 0, 1, 2, 3, 4, 5 (0-based data rows)" in msg


def test_several_problems_in_one_message():
    df = set_values(set_values(runs_frame(), "lr", [1], -1.0), "n_params", [2], "big")
    msg = error_of(df, source="mine")
    assert msg.startswith("mine: 2 problems:")
    assert "column 'lr': non-positive or infinite values at row 1 (0-based data rows)" in msg
    assert "column 'n_params': non-numeric values" in msg and "row 2 (0-based data rows)" in msg


def test_jsonl_errors_give_file_lines(tmp_path):
    path = tmp_path / "sweep.jsonl"
    records = runs_frame().to_dict(orient="records")
    records[3]["lr"] = 0.0
    path.write_text("\n" + "\n".join(json.dumps(r) for r in records) + "\n")
    msg = error_of(path)
    assert "column 'lr': non-positive or infinite values at row 3" in msg
    assert "(0-based data rows; file line 5)" in msg


def test_invalid_json_line(tmp_path):
    path = tmp_path / "sweep.jsonl"
    path.write_text('{"lr": 1}\n{"lr": \n')
    assert re.search(r"sweep.jsonl: line 2: not valid JSON", error_of(path))


def test_parquet_errors_give_data_rows(tmp_path):
    path = tmp_path / "sweep.parquet"
    runs_frame(loss=[3.0, 3.1, -3.0, 3.2, 3.3, 3.4]).to_parquet(path)
    msg = error_of(path)
    assert msg.startswith(f"{path}: column 'loss': non-positive finite losses at row 2 "
                          "(0-based data rows)")


def test_missing_file():
    assert "no such file" in error_of(Path("/nonexistent/sweep.csv"))


def test_cell_column_is_reserved():
    df = runs_frame(cell="mine")
    assert "column 'cell': given cell ids differ from the computed ones" in error_of(df)


# ----------------------------------------------------------------------------- censoring
def test_nan_and_inf_loss_are_diverged_and_censored_nothing_dropped(tmp_path):
    df = runs_frame(8, loss=[3.0, np.nan, 3.01, np.inf, 3.02, 3.5, 3.03, 3.04])
    df["loss"] = df["loss"].astype(object)
    df.loc[6, "loss"] = "nan"  # text spelling of NaN in a CSV
    path = to_csv(tmp_path, df)
    text = path.read_text().splitlines()
    path.write_text("\n".join([*text[:4], "", *text[4:]]) + "\n")  # a blank line: row 3
    sweep = read_sweep(path)
    assert sweep.runs["status"].tolist() == ["ok", "diverged", "ok", "diverged", "ok", "ok",
                                             "diverged", "ok"]
    report = sweep.exclusion_report(window=0.02)
    censored = report[report["action"] == "censored"]
    excluded = report[report["action"] == "excluded"]
    assert censored["run_id"].tolist() == ["run1", "run3", "run5", "run6"]
    assert censored["reason"].tolist()[:2] == ["diverged: loss is NaN/inf"] * 2
    assert censored["reason"].iloc[2].startswith("loss above the fit window")
    assert len(excluded) == 1 and "file line 5" in excluded["reason"].iloc[0]
    used = sweep.runs.drop(index=censored["row"].astype(int))
    n_data_rows = len(path.read_text().splitlines()) - 1
    assert len(used) + len(censored) + len(excluded) == n_data_rows == 9
    assert sweep.summary()["excluded"][0]["action"] == "excluded"


def test_status_diverged_with_finite_loss_is_censored():
    sweep = from_frame(runs_frame(status=["ok", "diverged", "ok", "ok", "ok", "ok"]))
    report = sweep.exclusion_report()
    assert report.loc[report["row"] == 1, "reason"].tolist() == ["status=diverged"]


def test_status_ok_with_nan_loss_becomes_diverged_with_a_warning():
    sweep = from_frame(runs_frame(status="ok", loss=[3.0, 3.1, np.nan, 3.2, 3.3, 3.4]))
    assert sweep.runs.loc[2, "status"] == "diverged"
    assert any("status 'ok' but loss NaN/inf at row 2" in w for w in sweep.summary()["warnings"])


def test_window_censoring_boundary():
    loss = [3.0, 3.05, 3.06, 3.0601, 3.5, 3.01]
    sweep = from_frame(runs_frame(loss=loss))
    for window, expected in [(0.02, [3, 4]), (0.0, [1, 2, 3, 4, 5]), (1.0, [])]:
        report = sweep.exclusion_report(window)
        assert report["row"].tolist() == expected
    with pytest.raises(ValueError, match="window"):
        sweep.exclusion_report(-0.1)


def test_cell_without_any_finite_loss_is_excluded_with_reason():
    good = runs_frame()
    bad = runs_frame(n_params=2e8, loss=np.nan)
    bad["run_id"] = [f"bad{i}" for i in range(len(bad))]
    sweep = from_frame(pd.concat([good, bad], ignore_index=True))
    report = sweep.exclusion_report()
    assert (report["action"] == "excluded").sum() == len(bad)
    assert set(report.loc[report["action"] == "excluded", "reason"]) == {NO_EDGE_REASON}


# ----------------------------------------------------------------------------- schema
def test_defaults_are_applied_and_reported():
    sweep = from_frame(runs_frame().drop(columns="run_id"))
    runs = sweep.runs
    assert runs["run_id"].tolist()[:2] == ["r00000", "r00001"]
    assert (runs["arch"] == "dense").all() and (runs["data_mix"] == "default").all()
    assert (runs["seq_len"] == 2048).all() and runs["weight_decay"].isna().all()
    assert (runs["status"] == "ok").all()
    warnings = " | ".join(sweep.summary()["warnings"])
    for column in ("run_id", "arch", "data_mix", "seq_len", "weight_decay", "status"):
        assert f"{column} absent" in warnings


def test_canonical_layout_dtypes_and_extras():
    df = runs_frame(seq_len=4096, note="x", step=np.arange(6))
    df = df[["note", *df.columns.drop("note")]]
    runs = from_frame(df).runs
    assert list(runs.columns) == [*CANONICAL_COLUMNS, "note", "step", "cell"]
    assert isinstance(runs.index, pd.RangeIndex)
    for column in ("run_id", "arch", "data_mix", "status", "cell"):
        assert pd.api.types.is_string_dtype(runs[column]), column
    for column in ("n_params", "n_tokens", "batch_tokens", "lr", "weight_decay", "loss"):
        assert runs[column].dtype == np.float64, column
    assert runs["seq_len"].dtype == np.int64
    assert runs["step"].dtype == np.int64 and runs["note"].tolist() == ["x"] * 6


def test_input_frame_is_not_modified():
    df = runs_frame().drop(columns="run_id")
    before = df.copy()
    from_frame(df.set_index(np.arange(10, 16)))
    pd.testing.assert_frame_equal(df, before)


def test_cell_id_format_and_uniqueness():
    assert cell_id("dense", "default", 214663680, 4e9, 2048) == (
        "dense|default|N=2.15e+08|D=4e+09|S=2048")
    assert cell_id("a|b", "c", 1e8, 1e9, 2048).startswith("a\\|b|c|")
    df = pd.concat([runs_frame(n_params=2.151e8), runs_frame(n_params=2.152e8)],
                   ignore_index=True)
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    cells = from_frame(df).cells()
    assert len(cells) == 2 and cells.index.is_unique


def test_cells_table():
    a = runs_frame(loss=[3.0, 3.1, np.nan, 3.2, 3.3, 2.9], status=["ok"] * 5 + ["diverged"],
                   arch="dense")
    b = runs_frame(4, arch="moe", n_params=3e8, batch_tokens=[2.0**19, 2.0**20] * 2)
    b["run_id"] = [f"moe{i}" for i in range(4)]
    cells = from_frame(pd.concat([a, b], ignore_index=True)).cells()
    assert list(cells.columns) == ["arch", "data_mix", "n_params", "n_tokens", "seq_len",
                                   "n_runs", "n_ok", "n_diverged", "best_loss", "n_lr",
                                   "n_batch"]
    dense = cells.loc[cell_id("dense", "default", 1e8, 2e9, 2048)]
    assert (dense["n_runs"], dense["n_ok"], dense["n_diverged"]) == (6, 4, 2)
    assert dense["best_loss"] == 3.0 and dense["n_lr"] == 6 and dense["n_batch"] == 1
    assert cells.loc[cell_id("moe", "default", 3e8, 2e9, 2048), "n_batch"] == 2


def test_thin_cells_are_warned():
    sweep = from_frame(runs_frame(lr=[1e-3, 2e-3] * 3))
    warnings = sweep.summary()["warnings"]
    assert any("optimum located by the hierarchy only" in w and "2 distinct lr" in w
               for w in warnings)


def test_data_hash_depends_on_data_not_source(tmp_path):
    df = runs_frame(weight_decay=[0.1, np.nan, 0.0, -0.0, 0.1, 0.2])
    df["weight_decay"] = df["weight_decay"].abs()
    a, b = from_frame(df, source="a"), from_frame(df, source="b")
    assert a.data_hash() == b.data_hash() and len(a.data_hash()) == 64
    path = tmp_path / "s.csv"
    write_sweep(a, path)
    assert read_sweep(path).data_hash() == a.data_hash()
    changed = from_frame(set_values(df, "lr", [0], 1.0000001e-4))
    assert changed.data_hash() != a.data_hash()
    relabelled = from_frame(df.assign(data_mix="code"))
    assert relabelled.data_hash() != a.data_hash()
    extra = from_frame(df.assign(note="ignored"))
    assert extra.data_hash() == a.data_hash()  # extras are not part of the canonical data


def test_summary_is_json_serialisable():
    sweep = from_frame(runs_frame(loss=[3.0, np.nan, 3.1, 3.2, 3.3, 3.4]))
    summary = json.loads(json.dumps(sweep.summary(), allow_nan=False))
    assert summary["runs"] == 6 and summary["cells"] == 1
    assert summary["ranges"]["weight_decay"] is None
    assert summary["ranges"]["n_params"] == [1e8, 1e8]
    assert summary["n_diverged"] == 1 and summary["censored"] == {
        "diverged: loss is NaN/inf": 1,
        "loss above the fit window: loss > (1 + 0.02) * cell's best ok loss": 4}
    assert summary["excluded"] == [] and summary["archs"] == ["dense"]


def test_subset():
    sweep = from_frame(runs_frame())
    part = sweep.subset(sweep.runs["lr"] > 1e-3)
    assert isinstance(part, Sweep) and len(part.runs) == 2
    assert part.runs["run_id"].tolist() == ["run4", "run5"]
    assert isinstance(part.runs.index, pd.RangeIndex)
    with pytest.raises(ValueError, match="boolean"):
        sweep.subset([0, 1])


def test_concat_sweeps():
    a = from_frame(runs_frame(), source="a.csv")
    b_frame = runs_frame(data_mix="code", extra=1)
    b_frame["run_id"] = [f"b{i}" for i in range(6)]
    both = concat_sweeps([a, from_frame(b_frame, source="b.csv")])
    assert len(both.runs) == 12 and len(both.cells()) == 2
    assert both.source == "a.csv, b.csv" and both.runs["extra"].isna().sum() == 6
    with pytest.raises(SweepError) as info:
        concat_sweeps([a, from_frame(runs_frame(), source="c.csv")])
    msg = str(info.value)
    assert "column 'run_id'" in msg and "'run0' at a.csv row 0 and c.csv row 0" in msg


def test_snap_printed():
    values = [0.000345, 0.0003453, 0.0111, 0.01105, 0.0002441, 0.0006905, 0.000691]
    assert snap_printed(values).tolist() == [0.0003453, 0.0003453, 0.01105, 0.01105,
                                             0.0002441, 0.0006905, 0.0006905]
    ambiguous = [0.0001726, 0.0001734, 0.000173]  # two distinct 4-digit values: leave alone
    assert snap_printed(ambiguous).tolist() == ambiguous


# ----------------------------------------------------------------------------- Step Law
@pytest.mark.realdata
def test_steplaw_dense(steplaw_dir):
    path = steplaw_dir / "dense_lr_bs_loss.csv"
    raw = pd.read_csv(path)
    sweep = read_steplaw(path)
    runs = sweep.runs
    assert (len(runs), len(sweep.cells())) == (1911, 17)
    assert (runs["arch"] == "dense").all() and (runs["seq_len"] == 2048).all()
    np.testing.assert_array_equal(runs["batch_tokens"], raw["bs"] * 2048)
    np.testing.assert_array_equal(runs["n_params"], raw["N"])
    np.testing.assert_array_equal(runs["loss"], raw["smooth loss"])
    np.testing.assert_array_equal(runs["loss_raw"], raw["loss"])
    np.testing.assert_array_equal(runs["lr_printed"], raw["lr"])
    assert runs["run_id"].tolist() == raw["exp_name"].tolist()
    assert raw["lr"].nunique() == 26 and runs["lr"].nunique() == 14
    snapped = dict(zip(runs["lr_printed"], runs["lr"], strict=True))
    assert snapped[0.000345] == snapped[0.0003453] == 0.0003453
    assert snapped[0.0111] == snapped[0.01105] == 0.01105
    assert sweep.exclusion_report()["action"].eq("censored").all()
    assert read_sweep(path, format="steplaw").data_hash() == sweep.data_hash()


@pytest.mark.realdata
def test_steplaw_moe(steplaw_dir):
    path = steplaw_dir / "moe_lr_bs_loss.csv"
    raw = pd.read_csv(path)
    sweep = read_steplaw(path)
    runs = sweep.runs
    assert (len(runs), len(sweep.cells())) == (708, 16)
    assert (runs["arch"] == "moe").all()
    np.testing.assert_array_equal(runs["n_params"], raw["Na"])
    np.testing.assert_array_equal(runs["n_params_total"], raw["N"])
    np.testing.assert_array_equal(runs["batch_tokens"], raw["bs"] * raw["seq_len"])
    assert runs["lr"].nunique() == 9 and "moe_name" in runs


@pytest.mark.realdata
def test_steplaw_round_trip_and_labels(steplaw_dir, tmp_path):
    sweep = read_steplaw(steplaw_dir / "moe_lr_bs_loss.csv")
    write_sweep(sweep, tmp_path / "moe.parquet")
    pd.testing.assert_frame_equal(read_sweep(tmp_path / "moe.parquet").runs, sweep.runs)
    with pytest.raises(SweepError, match="column 'arch': labels not in the model spec"):
        read_sweep(steplaw_dir / "moe_lr_bs_loss.csv", format="steplaw", arch_labels={"dense"})


def test_steplaw_reader_rejects_other_files(tmp_path):
    path = to_csv(tmp_path, runs_frame())
    with pytest.raises(SweepError, match="not a Step Law file: expected columns"):
        read_steplaw(path)
