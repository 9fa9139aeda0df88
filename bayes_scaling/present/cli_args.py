"""The command line's defaults and argument checks, in one place (no heavy imports)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bayes_scaling.errors import BayesScalingError, CandidateError, SweepError

USER_ERRORS: tuple[type[Exception], ...] = (BayesScalingError, OSError)
"""Exceptions shown as one ``error: <message>`` line (exit code 2) rather than a traceback."""

EXIT_USER_ERROR = 2
EXIT_BAD_DIAGNOSTICS = 3

WINDOW = 0.02
"""Validation window shown by ``validate`` (the fit's comes from the model spec)."""
MAX_ROWS = 20
SEQ_LEN = 2048.0
K_REPORT = 3
K_PROPOSE = 1
PROPOSE_DRAWS = 1000
PROPOSE_OUTCOMES = 32
PROPOSE_SHOW = 8
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
    """argparse type: a positive number."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def count(text: str) -> int:
    """argparse type: an integer >= 1 (e.g. -k)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def column_map(pairs: Sequence[str]) -> dict[str, str] | None:
    """``["N=n_params", ...]`` -> ``{"N": "n_params", ...}`` (None when empty)."""
    mapping = {}
    for pair in pairs:
        theirs, sep, canonical = pair.rpartition("=")
        if not sep or not theirs or not canonical:
            raise SweepError(f"--column expects THEIRS=CANONICAL, got {pair!r}")
        mapping[theirs] = canonical
    return mapping or None


def read_candidates(path: str | Path) -> pd.DataFrame:
    """A candidate-run table from .csv, .parquet or .jsonl, as is (``propose`` validates it
    with :func:`bayes_scaling.design.as_candidates`); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise OSError(f"{path}: no such candidate file")
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
