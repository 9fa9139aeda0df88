"""The Step Law CSVs (dense or MoE) mapped onto the canonical schema."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from bayes_scaling.data.formats import check_file, read_csv
from bayes_scaling.data.schema import Sweep
from bayes_scaling.data.validate import as_float, build_sweep, drop_empty_rows

STEPLAW_SEQ_LEN = 2048


def _round_sig(value: float, digits: int) -> Decimal:
    exact = Decimal(repr(float(value)))
    if exact == 0:
        return exact
    return exact.quantize(Decimal(1).scaleb(exact.adjusted() - digits + 1), ROUND_HALF_UP)


def _printed_digits(value: float) -> int:
    return len(Decimal(repr(float(value))).normalize().as_tuple().digits)


def snap_printed(values: ArrayLike, digits: int = 3) -> np.ndarray:
    """Map values that agree to ``digits`` significant digits onto the most precisely
    printed one.

    Step Law prints one grid lr as 0.0003453 or 0.000345 (and 2^-6.5 as 0.01105 or 0.0111):
    rounded half-up on their shortest decimal text to 3 digits both give 0.000345, so both
    become 0.0003453. A group with two different most-precise values (distinct grid points)
    is left unchanged.
    """
    x = np.asarray(values, dtype=float)
    out = x.copy()
    groups: dict[Decimal, list[float]] = {}
    for value in np.unique(x[np.isfinite(x)]):
        groups.setdefault(_round_sig(value, digits), []).append(float(value))
    for members in groups.values():
        precision = [_printed_digits(v) for v in members]
        best = [v for v, p in zip(members, precision, strict=True) if p == max(precision)]
        if len(members) > 1 and len(best) == 1:
            out[np.isin(x, members)] = best[0]
    return out


def _dedupe(ids: pd.Series) -> tuple[pd.Series, list[str]]:
    """Suffix '#2', '#3', ... to repeated run names (only if there are any)."""
    repeat = ids.groupby(ids).cumcount()
    if not (repeat > 0).any():
        return ids, []
    fixed = ids.where(repeat == 0, ids + "#" + (repeat + 1).astype(str))
    return fixed, [f"exp_name repeated in {int((repeat > 0).sum())} rows: suffixed #2, #3, ..."]


def read_steplaw(path: str | Path, arch_labels: Iterable[str] | None = None) -> Sweep:
    """Read a Step Law CSV (dense or MoE, detected by columns) into the canonical schema.

    loss = 'smooth loss' (the paper's target; raw loss kept as ``loss_raw``); batch_tokens =
    bs * seq_len (2048 for dense); MoE: n_params = Na (active), n_params_total = N. lr values
    printed with different precision are snapped (:func:`snap_printed`), the file's value
    kept as ``lr_printed``. Other columns are kept as extras.
    """
    path = Path(path)
    check_file(path)
    raw, where = read_csv(path, ["exp_name"])
    raw, excluded = drop_empty_rows(raw, where)
    dense = {"N", "D", "lr", "bs", "loss", "smooth loss", "exp_name"}
    moe = dense | {"Na", "seq_len"}
    if not dense <= set(raw.columns):
        raise where.error([f"not a Step Law file: expected columns {sorted(dense)} (MoE also "
                           f"Na, seq_len); columns present: {list(raw.columns)}"])
    is_moe = moe <= set(raw.columns)
    problems = []
    numbers = {c: as_float(raw[c]) for c in ("bs", "lr", *(["seq_len"] if is_moe else []))}
    for c, (_, bad) in numbers.items():
        if bad.any():
            problems.append(where.problem(c, "non-numeric values", raw.index[bad], raw[c][bad]))
    if problems:
        raise where.error(problems)
    rename = {"exp_name": "run_id", "D": "n_tokens", "loss": "loss_raw", "smooth loss": "loss",
              **({"Na": "n_params", "N": "n_params_total"} if is_moe else {"N": "n_params"})}
    frame = raw.rename(columns=rename)
    seq_len = numbers["seq_len"][0] if is_moe else STEPLAW_SEQ_LEN
    frame = frame.assign(arch="moe" if is_moe else "dense", data_mix="default", seq_len=seq_len,
                         batch_tokens=numbers["bs"][0] * seq_len,
                         lr=snap_printed(numbers["lr"][0]), lr_printed=numbers["lr"][0])
    frame["run_id"], notes = _dedupe(frame["run_id"])
    changed = int((frame["lr"] != frame["lr_printed"]).sum())
    if changed:
        notes.append(f"lr: {changed} runs had a grid lr printed with fewer digits; snapped "
                     f"onto {frame['lr'].nunique()} grid values (file value in lr_printed)")
    return build_sweep(frame, where, arch_labels=arch_labels, notes=notes, excluded=excluded)
