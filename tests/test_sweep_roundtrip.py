"""Property tests: write_sweep then read_sweep loses no row or column and changes no value.

Comparisons are exact (dtypes included): floats are written at round-trip precision.
CSV is untyped, so its generated text extras carry a non-numeric prefix (an extra text
column of "1", "2" would come back as integers; an empty string as missing). Labels are
read as exact text in every format, so they get the oddest strings.
"""

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_scaling.data import from_frame, read_sweep, write_sweep
from bayes_scaling.data.schema import CANONICAL_COLUMNS

RESERVED = {*CANONICAL_COLUMNS, "cell"}
SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

odd_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8)
labels = odd_text.filter(lambda s: s.strip() != "")
column_names = labels.filter(lambda s: s not in RESERVED)


@st.composite
def extra_column(draw, n: int, typed_text: bool) -> list:
    """Values of one extra column: int, float (NaN/inf), bool or text (with missing)."""
    kind = draw(st.sampled_from(["int", "float", "bool", "text"]))
    if kind == "int":
        return draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n))
    if kind == "float":
        return draw(st.lists(st.floats(), min_size=n, max_size=n))
    if kind == "bool":
        return draw(st.lists(st.booleans(), min_size=n, max_size=n))
    text = odd_text.map(lambda s: "s_" + s) if typed_text else st.text(max_size=8)
    values = draw(st.lists(st.one_of(text, st.none()), min_size=n, max_size=n))
    return [draw(text), *values[1:]]  # at least one value, so the column stays text


@st.composite
def sweep_frames(draw, typed_text: bool = False) -> pd.DataFrame:
    """A valid sweep frame with odd labels, NaN weight decay, diverged runs and extras."""
    n = draw(st.integers(1, 10))
    rows = st.lists
    seq_len = draw(rows(st.sampled_from([128, 2048, 4096]), min_size=n, max_size=n))
    batch = [s * draw(st.integers(1, 4096)) for s in seq_len]
    frame = pd.DataFrame({
        "run_id": draw(rows(labels, min_size=n, max_size=n, unique=True)),
        "arch": draw(rows(st.sampled_from(draw(rows(labels, min_size=1, max_size=3))),
                          min_size=n, max_size=n)),
        "data_mix": draw(rows(labels, min_size=n, max_size=n)),
        "n_params": draw(rows(st.floats(1e4, 1e13), min_size=n, max_size=n)),
        "n_tokens": [1e6 + b * draw(st.floats(1.0, 1e6)) for b in batch],
        "batch_tokens": np.array(batch, float),
        "seq_len": seq_len,
        "lr": draw(rows(st.floats(1e-7, 10.0), min_size=n, max_size=n)),
        "weight_decay": draw(rows(st.one_of(st.floats(0.0, 10.0), st.just(math.nan)),
                                  min_size=n, max_size=n)),
        "loss": draw(rows(st.one_of(st.floats(0.01, 20.0), st.sampled_from(
            [math.nan, math.inf, -math.inf])), min_size=n, max_size=n)),
    })
    if draw(st.booleans()):
        frame["status"] = draw(rows(st.sampled_from(["ok", "diverged"]), min_size=n,
                                    max_size=n))
    for name in draw(rows(column_names, max_size=3, unique=True)):
        frame[name] = draw(extra_column(n, typed_text))
    order = draw(st.permutations(list(frame.columns)))
    return frame[order]


def round_trip(frame: pd.DataFrame, suffix: str) -> None:
    sweep = from_frame(frame)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"sweep{suffix}"
        write_sweep(sweep, path)
        back = read_sweep(path)
    assert back.runs.shape == sweep.runs.shape
    pd.testing.assert_frame_equal(back.runs, sweep.runs)
    assert back.data_hash() == sweep.data_hash()
    assert back.excluded.empty


@SETTINGS
@given(sweep_frames(typed_text=True))
def test_csv_round_trip(frame):
    round_trip(frame, ".csv")


@SETTINGS
@given(sweep_frames())
def test_parquet_round_trip(frame):
    round_trip(frame, ".parquet")


@SETTINGS
@given(sweep_frames())
def test_jsonl_round_trip(frame):
    round_trip(frame, ".jsonl")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_round_trip_keeps_extreme_floats(suffix):
    frame = pd.DataFrame({
        "n_params": [(0.1 + 0.2) * 1e5, 5e-324 + 1e4], "n_tokens": [1e15, 2.0**60],
        "batch_tokens": [2048.0, 4096.0], "lr": [1 / 3, 2.0**-12], "loss": [np.nan, np.inf],
        "x": [-0.0, 1.7976931348623157e308]})
    round_trip(frame, suffix)


ODD = ["NA", "nan", "None", "null", "1e5", " padded ", "a|b", "x,y", 'q"z', "line\nbreak",
       "cr\r", "ünï", "#N/A"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_round_trip_odd_labels(suffix):
    n = len(ODD)
    frame = pd.DataFrame({
        "run_id": ODD, "arch": ODD[::-1], "data_mix": ODD, "n_params": 1e8, "n_tokens": 1e9,
        "batch_tokens": 2.0**20, "lr": np.geomspace(1e-4, 1e-2, n), "loss": 3.0,
        "status": ["ok", "diverged"] * (n // 2) + ["ok"]})
    if suffix != ".csv":  # CSV is untyped: text extras like "NA" or "1e5" are re-inferred
        frame["note"] = ["", *ODD[1:]]
    round_trip(frame, suffix)
