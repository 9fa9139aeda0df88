"""Property tests (issue 11, item 5): no traceback for any malformed sweep or posterior file.

A valid sweep (CSV, JSON lines, Parquet) and a posterior written by the package are corrupted
by hypothesis (bytes truncated, flipped, inserted; cells replaced by junk; header columns
dropped or repeated; the wrong format behind a suffix; an emptied file) and read by the command
line in-process: ``validate`` for sweeps, ``predict`` and ``report`` (its loading only) for
posteriors. Either the corruption left a usable file (exit 0) or the command prints one
``error:`` line naming the file and exits 2; never a traceback. ``fit`` is not run here: it
would sample.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
import os
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from bayes_scaling.data import from_frame, write_sweep
from bayes_scaling.present.cli import main
from bayes_scaling.testing import small_sweep


def examples(default: int) -> int:
    """Examples per property: ``default`` (the file runs in well under 30 s), or
    $BAYES_SCALING_CORRUPT_EXAMPLES for a longer search."""
    return int(os.environ.get("BAYES_SCALING_CORRUPT_EXAMPLES", default))


SETTINGS = settings(max_examples=examples(10), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TARGET = ["--params", "7e9", "--tokens", "2e12", "--arch", "dense"]
JUNK = ["", " ", "nan", "NaN", "-1", "0", "-0.0", "inf", "-inf", "1e400", "-1e400", "1e-400",
        "9" * 400, "1" + "0" * 30, "abc", "7Q", "1,5", '"', "''", "\\N", "None", "True",
        "\x00", "\u00e9\u00e8", "\ufeffok", "nan nan", "  3e-4  ", "0x10", "1_000"]
"""Cell values that stress a parser: missing spellings, signs, overflow, text, stray quotes."""


# ----------------------------------------------------------------------------- running
def run_in_process(*args: object) -> subprocess.CompletedProcess:
    """Run the command line's ``main`` in this process (stdout/stderr captured); an exception
    escaping it is written to stderr as a traceback (what a user would see), exit code 1."""
    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]

    def unraisable(info: sys.UnraisableHookArgs) -> None:  # e.g. raised in a __del__
        err.write(f"Exception ignored in: {info.object!r}\n" + "".join(
            traceback.format_exception(info.exc_type, info.exc_value, info.exc_traceback)))

    with (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          warnings.catch_warnings(),  # main replaces showwarning: restore it after
          mock.patch.object(sys, "unraisablehook", unraisable)):
        try:
            code = main(argv)
        except Exception:
            err.write(traceback.format_exc())
            code = 1
        gc.collect()  # objects left open by a failed read are closed here, as at exit
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def assert_ok_or_one_error(result: subprocess.CompletedProcess, path: Path) -> None:
    """Exit 0, or exit 2 with one ``error:`` line that names the file (a message listing
    several problems continues on indented ``  - `` lines); never a traceback."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    if currently_in_test_context():  # tallied by --hypothesis-show-statistics
        event(f"{result.args[0]}: exit {result.returncode}")
    if result.returncode == 0:
        return
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[0] == errors[0], result.stderr
    assert all(line.startswith("  - ") for line in lines[1:]), result.stderr
    assert path.name in errors[0], errors[0]


class Damaged(bytes):
    """File content with a short repr (what was done to it), so a failing example prints
    the recipe rather than the file."""

    how: str = ""

    @classmethod
    def of(cls, content: bytes, how: str) -> Damaged:
        out = cls(content)
        out.how = how
        return out

    def __repr__(self) -> str:
        return f"<{len(self)} bytes: {self.how}>"


class Files(dict):
    """Valid files by format (short repr)."""

    def __repr__(self) -> str:
        return f"<files {', '.join(f'{k}: {len(v)} bytes' for k, v in self.items())}>"


# ----------------------------------------------------------------------------- sweeps
@pytest.fixture(scope="module")
def sweep_files(tmp_path_factory) -> Files:
    """A small valid sweep (two cells of :func:`small_sweep`, 48 runs) as CSV, JSON lines
    and Parquet bytes."""
    runs = small_sweep(0)[0].runs
    two = runs[runs["cell"].isin(runs["cell"].unique()[[0, -1]])].drop(columns="cell")
    sweep = from_frame(two, "two cells")
    folder = tmp_path_factory.mktemp("sweeps")
    out = Files()
    for suffix in ("csv", "jsonl", "parquet"):
        write_sweep(sweep, folder / f"sweep.{suffix}")
        out[suffix] = (folder / f"sweep.{suffix}").read_bytes()
    return out


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def _csv_text(rows: list[list[str]], quoting: int) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=quoting, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


@st.composite
def corrupted_cells(draw, data: bytes) -> Damaged:
    """Table-level damage to a CSV: junk in some cells, a header name dropped or duplicated,
    a column dropped, the header repeated as a data row, rows of the wrong length."""
    rows = _rows(data)
    n_cols = len(rows[0])
    done = []
    for _ in range(draw(st.integers(0, 4))):
        i, j = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, n_cols - 1))
        rows[i][j] = draw(st.one_of(st.sampled_from(JUNK), st.text(max_size=12)))
        done.append(f"cell ({i}, {rows[0][j] if i else j}) = {rows[i][j]!r}")
    how = draw(st.sampled_from(["none", "drop header name", "duplicate header name",
                                "drop column", "repeat header", "short row", "long row",
                                "blank lines"]))
    j = draw(st.integers(0, n_cols - 1))
    i = draw(st.integers(1, len(rows) - 1))
    if how == "drop header name":
        del rows[0][j]
    elif how == "duplicate header name":
        rows[0][j] = rows[0][draw(st.integers(0, n_cols - 1))]
    elif how == "drop column":
        rows = [row[:j] + row[j + 1:] for row in rows]
    elif how == "repeat header":
        rows.insert(i, list(rows[0]))
    elif how == "short row":
        rows[i] = rows[i][:j]
    elif how == "long row":
        rows[i] = [*rows[i], draw(st.sampled_from(JUNK))]
    elif how == "blank lines":
        rows.insert(i, [])
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_NONNUMERIC, csv.QUOTE_ALL]))
    done += [f"{how} (row {i}, column {j})", f"quoting {quoting}"]
    return Damaged.of(_csv_text(rows, quoting), "; ".join(done))


@st.composite
def corrupted_bytes(draw, data: bytes, near: tuple[bytes, ...] = ()) -> Damaged:
    """Byte-level damage: truncated, bytes flipped or inserted (anywhere, or next to one of
    ``near``), a chunk deleted or repeated, an emptied file, or random bytes."""
    how = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "repeat", "empty",
                                "garbage"]))
    if how == "empty":
        return Damaged.of(b"", how)
    if how == "garbage":
        garbage = draw(st.binary(min_size=1, max_size=2000))
        return Damaged.of(garbage, f"garbage {garbage[:40]!r}")
    out = bytearray(data)
    if how == "truncate":
        at = draw(st.integers(0, len(out) - 1))
        return Damaged.of(bytes(out[:at]), f"truncated at {at}")
    anchors = sorted({i for token in near if (i := data.find(token)) >= 0})
    done = []
    for _ in range(draw(st.integers(1, 8))):
        if anchors and draw(st.booleans()):
            i = min(len(out) - 1, draw(st.sampled_from(anchors)) + draw(st.integers(0, 64)))
        else:
            i = draw(st.integers(0, len(out) - 1))
        if how == "flip":
            mask = draw(st.integers(1, 255))
            out[i] ^= mask
            done.append(f"{i} ^= {mask}")
        elif how == "insert":
            extra = draw(st.binary(min_size=1, max_size=8))
            out[i:i] = extra
            done.append(f"{i} += {extra!r}")
        else:
            n = draw(st.integers(1, 64))
            if how == "delete":
                del out[i:i + n]
            else:
                out[i:i] = out[i:i + n]
            done.append(f"{i}:{i + n}")
        if not out:
            break
    return Damaged.of(bytes(out), f"{how} {', '.join(done)}")


JSON_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**400), 10**400) | st.floats()
    | st.text(max_size=8) | st.sampled_from(JUNK),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3), max_leaves=4)
"""Any JSON value (NaN and Infinity included, as Python's json writes them)."""


@st.composite
def corrupted_records(draw, data: bytes) -> Damaged:
    """JSON lines with values replaced by any JSON (lists, objects, huge integers, ...),
    keys dropped or renamed, or a line that is not an object."""
    records = [json.loads(line) for line in data.decode().splitlines()]
    done = []
    for _ in range(draw(st.integers(1, 4))):
        # a line already made junk, or an object emptied, has no key left to damage
        editable = [j for j, r in enumerate(records) if isinstance(r, dict) and r]
        if not editable:
            break
        i = draw(st.sampled_from(editable))
        key = draw(st.sampled_from(sorted(records[i])))
        how = draw(st.sampled_from(["value", "drop key", "rename key", "not an object"]))
        if how == "value":
            records[i][key] = draw(JSON_JUNK)
        elif how == "drop key":
            del records[i][key]
        elif how == "rename key":
            records[i][draw(st.text(max_size=6))] = records[i].pop(key)
        else:
            records[i] = draw(JSON_JUNK)
        done.append(f"{how} {key!r} of line {i + 1}"
                    + (f" -> {records[i]!r:.60}" if how == "not an object" else ""))
        if not isinstance(records[i], dict):
            break
    text = "\n".join(json.dumps(r) for r in records) + "\n"
    return Damaged.of(text.encode(), "; ".join(done))


def _validate(content: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"sweep.{suffix}"
        path.write_bytes(content)
        assert_ok_or_one_error(run_in_process("validate", path), path)


@SETTINGS
@given(data=st.data())
def test_validate_a_csv_with_damaged_cells_or_header(sweep_files, data):
    content = data.draw(corrupted_cells(sweep_files["csv"]), label="csv")
    _validate(content, "csv")


@SETTINGS
@given(data=st.data())
def test_validate_json_lines_with_odd_values(sweep_files, data):
    _validate(data.draw(corrupted_records(sweep_files["jsonl"]), label="jsonl"), "jsonl")


@SETTINGS
@given(data=st.data(), suffix=st.sampled_from(["csv", "jsonl", "parquet"]))
def test_validate_a_sweep_with_damaged_bytes(sweep_files, data, suffix):
    content = data.draw(corrupted_bytes(sweep_files[suffix]), label=suffix)
    _validate(content, suffix)


def test_validate_a_parquet_file_with_a_damaged_text_byte(sweep_files):
    """A byte of a run id flipped (found by the test above): pyarrow reads the file and only
    fails when the text is decoded, which must still be one error line."""
    content = bytearray(sweep_files["parquet"])
    content[44] ^= 128
    _validate(bytes(content), "parquet")


@settings(max_examples=examples(8), deadline=None)
@given(data=st.data(), source=st.sampled_from(["csv", "jsonl", "parquet"]),
       suffix=st.sampled_from(["csv", "jsonl", "json", "parquet", "pq"]))
def test_validate_a_sweep_behind_the_wrong_suffix(sweep_files, data, source, suffix):
    content = sweep_files[source]
    if data.draw(st.booleans(), label="damaged"):
        content = data.draw(corrupted_bytes(content), label=source)
    _validate(content, suffix)


# ----------------------------------------------------------------------------- posteriors
@pytest.fixture(scope="module")
def posterior_bytes(cli_posterior_path) -> Damaged:
    """A posterior file written by the package (a fake posterior: no sampling)."""
    return Damaged.of(cli_posterior_path.read_bytes(), "a valid posterior")


POSTERIOR_ANCHORS = (b"HDF", b"bayes_scaling_format", b"spec_json", b'{"', b"draws_sha256",
                     b"posterior", b"runs", b"cells", b"columns", b"dtypes", b"dims")
"""Bytes next to which flips are likely to hit metadata rather than draws."""


def _load(content: bytes, command: str) -> None:
    """``predict`` at a target, or ``report``'s loading (its page and figures skipped:
    they are not what is tested, and slow) on a posterior file holding ``content``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "posterior.nc"
        path.write_bytes(content)
        if command == "predict":
            result = run_in_process("predict", path, *TARGET)
        else:
            with mock.patch("bayes_scaling.present.report.build_report",
                            return_value=("", None)):
                result = run_in_process("report", path, "--out", Path(folder) / "r.html",
                                        *TARGET)
        assert_ok_or_one_error(result, path)


COMMANDS = st.sampled_from(["predict", "report"])
"""Each example runs one of them (loading a posterior takes half a second)."""


@settings(max_examples=examples(14), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), command=COMMANDS)
def test_predict_and_report_on_a_damaged_posterior(posterior_bytes, data, command):
    _load(data.draw(corrupted_bytes(posterior_bytes, POSTERIOR_ANCHORS)), command)


ATTR_JUNK = ["", "{", "[1", "abc", "null", '["lr"]', "{}", 3, -1.5, float("nan")]
"""Values put in place of a posterior's attributes."""


@st.composite
def altered_posteriors(draw, content: bytes) -> Damaged:
    """Valid NetCDF, altered content (edited with h5py): a group dropped, an attribute
    deleted or replaced."""
    import h5py

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.nc"
        path.write_bytes(content)
        with h5py.File(path, "r+") as handle:
            groups = sorted(handle)
            how = draw(st.sampled_from(["drop group", "delete attr", "replace attr",
                                        "replace group attr"]))
            if how == "drop group":
                what = draw(st.sampled_from([g for g in groups
                                             if isinstance(handle[g], h5py.Group)]))
                del handle[what]
            else:
                group = "/" if how != "replace group attr" else draw(
                    st.sampled_from(["runs", "cells", "excluded"]))
                attrs = handle[group].attrs
                name = draw(st.sampled_from(sorted(attrs)))
                what = f"{group} {name}"
                if how == "delete attr":
                    del attrs[name]
                else:
                    attrs[name] = value = draw(st.sampled_from(ATTR_JUNK))
                    what += f" = {value!r}"
        return Damaged.of(path.read_bytes(), f"{how} {what}")


@settings(max_examples=examples(6), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), command=COMMANDS)
def test_predict_and_report_on_an_altered_posterior(posterior_bytes, data, command):
    _load(data.draw(altered_posteriors(posterior_bytes)), command)


@pytest.mark.parametrize("content", [b"", b"not a posterior\n", b"\x89HDF\r\n\x1a\n",
                                     "parquet sweep"],
                         ids=["empty", "text", "hdf5-signature-only", "parquet-sweep"])
def test_predict_and_report_on_files_that_are_no_posterior(sweep_files, content):
    for command in ("predict", "report"):
        _load(sweep_files["parquet"] if content == "parquet sweep" else content, command)


@pytest.mark.parametrize("command", ["predict", "report"])
def test_the_undamaged_posterior_is_read(posterior_bytes, command):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "posterior.nc"
        path.write_bytes(posterior_bytes)
        args = ["predict", path, *TARGET] if command == "predict" else [
            "report", path, "--out", Path(folder) / "r.html", *TARGET]
        with mock.patch("bayes_scaling.present.report.build_report", return_value=("", None)):
            result = run_in_process(*args)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_the_undamaged_sweeps_are_valid(sweep_files, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"sweep.{suffix}"
        path.write_bytes(sweep_files[suffix])
        result = run_in_process("validate", path, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["runs"] == 48


@pytest.mark.parametrize(("header", "message"), [
    ("run_id,arch,data_mix,n_params,n_tokens,batch_tokens,seq_len,lr,lr,loss,status",
     "the header names a column twice: 'lr' in columns [8, 9]"),
    ("run_id,arch,data_mix,n_params,n_tokens,batch_tokens,seq_len,lr,weight_decay,loss",
     "data rows have more fields than the header has column names"),
])
def test_a_damaged_header_is_named_not_read_past(sweep_files, header, message):
    """Two misreads pandas makes silently: a repeated name becomes 'lr.1' (the other column
    is lost); a header one name short makes the first column an index (every value
    shifted one column)."""
    lines = sweep_files["csv"].decode().replace('"', "").splitlines()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sweep.csv"
        path.write_text("\n".join([header, *lines[1:]]) + "\n")
        result = run_in_process("validate", path)
    assert result.returncode == 2 and message in result.stderr, result.stderr
