"""The command line's defaults and argument checks, in one place (no heavy imports)."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bayes_scaling.data.formats import ColumnMap, check_column_map, read_column_map
from bayes_scaling.data.rows import status_map
from bayes_scaling.data.schema import parse_size
from bayes_scaling.errors import BayesScalingError, CandidateError, SweepError, TargetError
from bayes_scaling.model import core

USER_ERRORS: tuple[type[Exception], ...] = (BayesScalingError, OSError)
"""Exceptions shown as one ``error: <message>`` line (exit code 2) rather than a traceback."""

EXIT_USER_ERROR = 2
EXIT_BAD_DIAGNOSTICS = 3

WINDOW = core.DEFAULT_WINDOW
"""Validation window shown by ``validate`` (the fit's comes from the model spec)."""
MAX_ROWS = 20
SEQ_LEN = 2048.0
K_REPORT = 3
K_PROPOSE = 1
PROPOSE_DRAWS = 1000
PROPOSE_OUTCOMES = 32
PROPOSE_SHOW = 8
PRIOR_DRAWS = 500
DEMO_OUT = Path("demo_out")
REPORT_OUT = Path("report.html")
MIX_HELP = ("data mix (default: the fitted mix with the most cells; a label absent from the "
            "fit is a new mix whose offset is drawn from the mix population)")
CANDIDATE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".json")


def window(text: str) -> float:
    """argparse type: a fit window >= 0."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"window must be >= 0, got {text}")
    return value


def positive(text: str) -> float:
    """argparse type: a positive finite number; sizes may carry a suffix (7B, 2T, 350M)."""
    try:
        value = parse_size(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"must be a positive number such as 7e9 or 7B (suffixes K, M, B, T), got {text!r}")
    return value


def percent(text: str) -> float:
    """argparse type: a tolerance in percent of the loss, '0.1%' or '0.1' (both 0.1%)."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive percentage such as 0.1%, got "
                                         f"{text!r}")
    return value


def count(text: str) -> int:
    """argparse type: an integer >= 1 (e.g. -k)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _pairs(pairs: Sequence[str], option: str, what: str) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        theirs, sep, value = pair.rpartition("=")
        if not sep or not theirs or not value:
            raise SweepError(f"{option} expects {what}, got {pair!r}")
        mapping[theirs] = value
    return mapping


def column_map(pairs: Sequence[str]) -> dict[str, str] | None:
    """``["N=n_params", ...]`` -> ``{"N": "n_params", ...}`` (None when empty); each target
    must be a schema column (or batch_seqs)."""
    mapping = _pairs(pairs, "--column", "THEIRS=CANONICAL")
    return check_column_map(mapping, "--column") or None


def status_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``["preempted=excluded", ...]`` -> ``{"preempted": "excluded"}``, values checked."""
    mapping = _pairs(pairs, "--status", "THEIRS=ok|diverged|excluded")
    try:
        status_map(mapping)
    except SweepError as exc:
        raise SweepError(f"--status: {exc}") from exc
    return mapping


def table_map(args: argparse.Namespace) -> ColumnMap:
    """The maps of ``--columns-file`` and ``--column`` (the command line wins)."""
    base = ColumnMap() if args.columns_file is None else read_column_map(args.columns_file)
    return base.updated(column_map(args.column))


def sweep_map(args: argparse.Namespace) -> ColumnMap:
    """The column and status maps of ``--columns-file``, ``--column`` and ``--status``
    (the command line wins over the file)."""
    return table_map(args).updated(status=status_pairs(args.status))


def pool_map(args: argparse.Namespace) -> ColumnMap | None:
    """``propose``'s map of the --pool file's columns (None without --pool)."""
    if args.pool is None:
        if args.column or args.columns_file is not None:
            raise CandidateError("--column and --columns-file map the columns of the --pool "
                                 "file; give --pool")
        return None
    return table_map(args)


# ----------------------------------------------------------------------------- output paths
def _writable_folder(folder: Path, option: str, path: Path) -> None:
    """The nearest existing folder of ``folder`` must be a folder we can create files in."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"{option} {path}: {existing} is not a folder")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".bayes-scaling-probe-")
    except OSError as exc:
        raise PermissionError(f"{option} {path}: cannot write in {existing} "
                              f"({exc.strerror or exc})") from None
    os.close(handle)
    os.unlink(probe)


def check_output_file(path: Path, option: str = "--out") -> None:
    """Fail now (not after sampling or drawing) if ``path`` cannot be written as a file."""
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path}: is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"{option} {path}: the file exists and is not writable")
    _writable_folder(path.parent, option, path)


def check_output_dir(path: Path, option: str = "--out") -> None:
    """Fail now if ``path`` cannot be (created as) a folder to write into."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{option} {path}: exists and is not a folder")
    _writable_folder(path, option, path)


def check_batch(batch_tokens: float | None, seq_len: float) -> None:
    """A batch (tokens) below one sequence is a batch given in sequences."""
    if batch_tokens is not None and batch_tokens < seq_len:
        raise TargetError(f"--batch-tokens {batch_tokens:g} is below --seq-len {seq_len:g}: "
                          "the batch is in tokens (sequences x seq_len); was it given in "
                          "sequences?")


def read_candidates(path: str | Path, what: str = "candidate") -> pd.DataFrame:
    """A table of runs (candidates for ``propose``, runs for ``predict-loss``) from .csv,
    .parquet or .jsonl, as is (the command validates it); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise OSError(f"{path}: no such {what} file")
    suffix = path.suffix.lower()
    if suffix not in CANDIDATE_SUFFIXES:
        raise CandidateError(f"{path}: unknown candidate file type {suffix!r} "
                             f"(expected one of {', '.join(CANDIDATE_SUFFIXES)})")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=True)
        return pd.read_csv(path)
    except ValueError as exc:
        raise CandidateError(f"{path}: cannot read the candidate table: {exc}") from exc
