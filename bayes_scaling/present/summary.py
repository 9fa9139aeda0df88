"""Tidy tables of a posterior's law parameters, with published values alongside."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling.model.laws import PUBLISHED_EXPONENTS

LAW_ROWS = ("c_eta", "a_n", "a_d", "c_batch", "b_n", "b_d", "c_tau", "g_tpp",
            "sigma_cell_lr", "sigma_cell_batch", "sigma_cell_tau")
"""The law parameters shown to users (lr, batch, AdamW timescale laws and their scatter)."""

_PUBLISHED_NAME = {"c_batch": "c_b"}


def _published(name: str) -> tuple[float, str]:
    key = _PUBLISHED_NAME.get(name, name)
    for law in ("steplaw", "powerlines"):
        if key in PUBLISHED_EXPONENTS.get(law, {}):
            return PUBLISHED_EXPONENTS[law][key]["mean"], law
    return np.nan, ""


def law_table(posterior: xr.DataTree, prob: float = 0.9,
              names: tuple[str, ...] = LAW_ROWS) -> pd.DataFrame:
    """One row per law parameter element: parameter, arch, mix, median, lo, hi (equal-tailed
    ``prob`` interval), and the published value (Step Law / Power Lines) where there is one."""
    post = posterior["posterior"].to_dataset()
    lo_q, hi_q = (1 - prob) / 2, 1 - (1 - prob) / 2
    rows = []
    for name in names:
        if name not in post:
            continue
        da = post[name]
        q = da.quantile([0.5, lo_q, hi_q], dim=("chain", "draw"))
        labels = [d for d in da.dims if d not in ("chain", "draw")]
        stacked = q.stack(element=labels) if labels else q.expand_dims(element=[0])
        pub, source = _published(name)
        for i in range(stacked.sizes["element"]):
            el = stacked.isel(element=i)
            rows.append({
                "parameter": name,
                "arch": str(el["arch"].values) if "arch" in labels else "",
                "mix": str(el["mix"].values) if "mix" in labels else "",
                "median": float(el.sel(quantile=0.5)), "lo": float(el.sel(quantile=lo_q)),
                "hi": float(el.sel(quantile=hi_q)), "published": pub, "published_by": source,
            })
    return pd.DataFrame(rows).assign(prob=prob)


def format_law_table(table: pd.DataFrame) -> str:
    """Plain-text rendering of :func:`law_table` for the terminal."""
    pct = f"{100 * table['prob'].iloc[0]:.0f}%"
    out = table.assign(
        interval=[f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(table["lo"], table["hi"], strict=True)],
        published=[f"{p:.3f} ({s})" if s else "" for p, s in
                   zip(table["published"], table["published_by"], strict=True)])
    out = out[["parameter", "arch", "mix", "median", "interval", "published"]]
    return out.rename(columns={"interval": f"{pct} interval"}).to_string(
        index=False, float_format=lambda x: f"{x:.3f}")
