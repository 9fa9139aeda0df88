"""Fit the model with nutpie through PyMC, diagnose the draws, save and load posteriors.

A posterior is an ``xarray.DataTree`` with the usual groups (posterior, sample_stats,
observed_data, constant_data) plus ``runs`` (the sweep it was fitted on, every column) and
``cells`` (the model's cell table), and provenance in its attrs: the full spec and its hash,
the package and library versions, the data hash, the seed and the centring constants.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_scaling import __version__
from bayes_scaling.data import Sweep, from_frame
from bayes_scaling.data.formats import one_line
from bayes_scaling.errors import PosteriorError, SweepError
from bayes_scaling.model.compiled import sample
from bayes_scaling.model.graph import build_model, initial_values
from bayes_scaling.model.inputs import ModelInputs, prepare_inputs
from bayes_scaling.model.sampler import progress_mode, resolved_sampler
from bayes_scaling.model.spec import (
    Spec,
    SpecError,
    default_spec,
    raw_hash,
    spec_from_json,
    with_sampler,
)

__all__ = ["PosteriorError", "diagnose", "fit", "load_posterior", "save_posterior"]

FORMAT_VERSION = 2
"""2: priors named after the model's variables, and a checksum of the draws."""
LAW_PARAMETERS = ("c_eta", "a_n", "a_d", "c_batch", "b_n", "b_d", "c_tau", "g_tpp",
                  "c_loss", "l_n", "l_d", "q_loss", "sigma_cell_lr", "sigma_cell_batch",
                  "sigma_cell_tau", "sigma_cell_loss", "noise")
"""The parameters whose diagnostics gate a fit (the laws and their scatter)."""


@dataclass
class Diagnostics:
    """Sampling diagnostics of a fit, with plain-language problems."""

    summary: pd.DataFrame
    divergences: int
    n_draws: int
    ebfmi: list[float]
    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing in :attr:`problems`."""
        return not self.problems

    def report(self) -> str:
        """A short human-readable report."""
        head = (f"max R-hat {self.max_rhat:.3f}, min bulk ESS {self.min_ess_bulk:.0f}, "
                f"min tail ESS {self.min_ess_tail:.0f}, divergences {self.divergences}"
                f"/{self.n_draws}, E-BFMI {', '.join(f'{e:.2f}' for e in self.ebfmi)}")
        if self.ok:
            return f"diagnostics ok: {head}"
        return "diagnostics PROBLEMS:\n  - " + "\n  - ".join(self.problems) + f"\n  ({head})"


def _ebfmi(energy: np.ndarray) -> list[float]:
    """E-BFMI per chain: mean squared energy change over the energy variance."""
    return [float(np.mean(np.diff(e) ** 2) / np.var(e)) for e in np.atleast_2d(energy)]


def _listed(names: pd.Index, most: int = 8) -> str:
    """'3 parameter(s): a, b, c', or '13 parameter(s), the first 8: ...'."""
    shown = "; ".join(map(str, names[:most]))
    more = f", the first {most}" if len(names) > most else ""
    return f"{len(names)} parameter(s){more}: {shown}"


def diagnose(posterior: xr.DataTree, var_names: tuple[str, ...] = LAW_PARAMETERS,
             max_rhat: float = 1.01, min_ess: float = 400.0) -> Diagnostics:
    """R-hat, bulk/tail ESS on ``var_names``, divergences and E-BFMI, with problems listed."""
    post = posterior["posterior"].to_dataset()
    names = [v for v in var_names if v in post]
    summary = az.summary(posterior, var_names=names, kind="diagnostics")
    stats = posterior["sample_stats"].to_dataset()
    div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    n_draws = int(post.sizes["chain"] * post.sizes["draw"])
    ebfmi = _ebfmi(stats["energy"].to_numpy()) if "energy" in stats else []
    rhat, ess_b, ess_t = (summary[c].to_numpy(float) for c in ("r_hat", "ess_bulk", "ess_tail"))
    problems = []
    if np.nanmax(rhat) > max_rhat:
        problems.append(f"R-hat above {max_rhat} for "
                        f"{_listed(summary.index[rhat > max_rhat])}")
    for label, ess in (("bulk", ess_b), ("tail", ess_t)):
        if np.nanmin(ess) < min_ess:
            problems.append(f"{label} ESS below {min_ess:.0f} for "
                            f"{_listed(summary.index[ess < min_ess])}")
    if div:
        problems.append(f"{div} divergent transition(s) out of {n_draws} draws")
    low = [e for e in ebfmi if e < 0.3]
    if low:
        problems.append(f"E-BFMI below 0.3 in {len(low)} chain(s): "
                        f"{', '.join(f'{e:.2f}' for e in low)}")
    return Diagnostics(summary=summary, divergences=div, n_draws=n_draws, ebfmi=ebfmi,
                       max_rhat=float(np.nanmax(rhat)), min_ess_bulk=float(np.nanmin(ess_b)),
                       min_ess_tail=float(np.nanmin(ess_t)), problems=problems)


def _check_archs(sweep: Sweep, spec: Spec) -> None:
    if not spec.archs:
        return
    bad = sweep.runs.index[~sweep.runs["arch"].isin(spec.archs)]
    if len(bad):
        labels = sorted(set(sweep.runs.loc[bad, "arch"]))
        rows = ", ".join(map(str, bad[:10])) + (f" ... and {len(bad) - 10} more"
                                                 if len(bad) > 10 else "")
        raise SweepError(f"{sweep.source}: rows {rows} (0-based data rows), column 'arch': "
                         f"label(s) {labels} not allowed by the model spec {spec.source} "
                         f"(data.archs = {list(spec.archs)})")


def frame_to_dataset(df: pd.DataFrame, dim: str) -> xr.Dataset:
    """A DataFrame as a Dataset along ``dim``; variables are named col0, col1, ... (column
    names may hold '/', which DataTree forbids) with the names and dtypes in attrs."""
    df = df.reset_index(drop=True)
    ds = xr.Dataset({f"col{i}": (dim, _storable(df[c])) for i, c in enumerate(df.columns)},
                    coords={dim: np.arange(len(df))})
    return ds.assign_attrs(columns=json.dumps([str(c) for c in df.columns]),
                           dtypes=json.dumps([str(df[c].dtype) for c in df.columns]))


def _storable(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(bool)
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(float if col.isna().any() else None)
    return col.astype(object).where(col.notna(), "").astype(str).to_numpy()


def _dataset_to_frame(ds: xr.Dataset) -> pd.DataFrame:
    """Inverse of :func:`frame_to_dataset`."""
    cols, dtypes = json.loads(ds.attrs["columns"]), json.loads(ds.attrs["dtypes"])
    df = pd.DataFrame({c: ds[f"col{i}"].to_numpy() for i, c in enumerate(cols)})
    for c, dtype in zip(cols, dtypes, strict=True):
        if dtype in ("Int64", "boolean") or dtype.startswith(("int", "float", "bool")):
            df[c] = df[c].astype(dtype)
    return df


def provenance(sweep: Sweep, spec: Spec, inputs: ModelInputs, seed: int, seconds: float,
               diagnostics: Diagnostics | None) -> dict[str, str | int | float]:
    """The attrs every posterior file carries (diagnostics None: draws not from a sampler)."""
    out = {
        "bayes_scaling_format": FORMAT_VERSION,
        "bayes_scaling_version": __version__,
        "pymc_version": version("pymc"), "arviz_version": version("arviz"),
        "nutpie_version": version("nutpie"),
        "spec_json": spec.to_json(), "spec_hash": spec.hash, "spec_source": spec.source,
        "spec_name": spec.name, "data_hash": inputs.data_hash, "data_source": sweep.source,
        "seed": seed, "window": inputs.window, "dims": json.dumps(list(inputs.dims)),
        "x_n_centre": inputs.x_n_centre, "x_d_centre": inputs.x_d_centre,
        "x_tpp_centre": inputs.x_tpp_centre, "fit_seconds": seconds,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if diagnostics is not None:
        out.update(diagnostics=diagnostics.report(), diagnostics_ok=int(diagnostics.ok))
    return out


def fit(sweep: Sweep, spec: Spec | None = None, *, seed: int = 0, draws: int | None = None,
        tune: int | None = None, chains: int | None = None, progressbar: bool = True,
        ) -> xr.DataTree:
    """Fit the model to ``sweep``; returns the posterior DataTree with provenance attrs.

    Sampler settings default to the spec's; diagnostics are in ``attrs["diagnostics"]``
    (see :func:`diagnose` for the full table) and are never silenced.
    """
    spec = with_sampler(spec or default_spec(), draws=draws, tune=tune, chains=chains)
    _check_archs(sweep, spec)
    inputs = prepare_inputs(sweep, window=spec.window)
    model = build_model(inputs, spec)
    s = resolved_sampler(sweep, spec, inputs)
    adaptation = s["adaptation"]
    start = time.perf_counter()
    posterior = sample(model, inputs, spec, initvals=initial_values(inputs), draws=s["draws"],
                       tune=s["tune"], chains=s["chains"], cores=s["cores"], seed=seed,
                       target_accept=s["target_accept"], adaptation=adaptation,
                       progressbar=progressbar and progress_mode())
    seconds = time.perf_counter() - start
    posterior = package_posterior(posterior, sweep, spec, inputs, seed=seed, seconds=seconds)
    posterior.attrs["sampler_adaptation"] = adaptation
    posterior.attrs["sampler_draws"] = s["draws"]
    posterior.attrs["sampler_tune"] = s["tune"]
    return posterior


def package_posterior(posterior: xr.DataTree, sweep: Sweep, spec: Spec, inputs: ModelInputs,
                      *, seed: int, seconds: float) -> xr.DataTree:
    """Add the runs, cells and excluded groups and the provenance attrs (with the
    diagnostics) to a sampled DataTree, in place; used by :func:`fit` and by
    :func:`bayes_scaling.testing.fake_posterior`."""
    diagnostics = diagnose(posterior)
    stats = posterior["sample_stats"].to_dataset()
    texts = [name for name in stats.data_vars if stats[name].dtype == object]
    if texts:  # nutpie's divergence messages: NaN where none; NetCDF stores strings
        posterior["sample_stats"] = stats.assign(
            {name: stats[name].fillna("").astype(str) for name in texts})
    posterior["runs"] = xr.DataTree(frame_to_dataset(sweep.runs, "row"))
    posterior["cells"] = xr.DataTree(frame_to_dataset(
        inputs.cells.rename_axis("cell_id").reset_index(), "cell_row"))
    posterior["excluded"] = xr.DataTree(frame_to_dataset(inputs.excluded, "excluded_row"))
    posterior.attrs.update(provenance(sweep, spec, inputs, seed, seconds, diagnostics))
    posterior.attrs["draws_sha256"] = draws_hash(posterior)
    return posterior


def draws_hash(posterior: xr.DataTree) -> str:
    """sha256 of the posterior draws (every variable, by name, as little-endian float64)."""
    post = posterior["posterior"].to_dataset()
    digest = hashlib.sha256()
    for name in sorted(map(str, post.data_vars)):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(post[name].to_numpy(), dtype="<f8").tobytes())
    return digest.hexdigest()


def posterior_spec(posterior: xr.DataTree) -> Spec:
    """The spec a posterior was fitted with."""
    return spec_from_json(posterior.attrs["spec_json"])


def posterior_runs(posterior: xr.DataTree) -> pd.DataFrame:
    """The sweep's runs table saved with a posterior."""
    return _dataset_to_frame(posterior["runs"].to_dataset())


def fitted_sweep(posterior: xr.DataTree) -> Sweep:
    """The sweep a posterior was fitted on, from the runs it carries."""
    return from_frame(posterior_runs(posterior), source=str(posterior.attrs["data_source"]))


def posterior_cells(posterior: xr.DataTree) -> pd.DataFrame:
    """The model's cell table saved with a posterior (index: cell id)."""
    return _dataset_to_frame(posterior["cells"].to_dataset()).set_index("cell_id")


def save_posterior(posterior: xr.DataTree, path: str | Path) -> Path:
    """Write a posterior to NetCDF (h5netcdf); read it back with :func:`load_posterior`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    posterior.to_netcdf(path, engine="h5netcdf")
    return path


READ_ERRORS = (OSError, ValueError, KeyError, RuntimeError)
"""What h5py, h5netcdf and xarray raise on a damaged or foreign file (h5py: KeyError for an
object whose metadata fails its checksum, RuntimeError for other HDF5 library errors)."""


def _open_tree(path: Path) -> xr.DataTree:
    """The file's DataTree, read into memory; a PosteriorError if it is no readable NetCDF.

    h5py opens the file first: when the root attributes of a damaged file fail to read,
    h5netcdf's half-built File object raises again when garbage-collected, which Python
    prints as a second traceback."""
    import h5py

    if not h5py.is_hdf5(path):
        raise PosteriorError(f"{path}: not a NetCDF posterior (not an HDF5 file); give the "
                             "file `bayes-scaling fit --out` wrote")
    try:
        with h5py.File(path, "r") as handle:
            dict(handle.attrs)
        return xr.open_datatree(path, engine="h5netcdf").load()
    except READ_ERRORS as err:
        raise PosteriorError(f"{path}: not a readable NetCDF posterior (damaged or "
                             f"truncated?): {one_line(err)}") from err


TEXT_ATTRS = ("bayes_scaling_version", "pymc_version", "arviz_version", "nutpie_version",
              "spec_hash", "spec_source", "spec_name", "data_hash", "data_source", "created")
NUMBER_ATTRS = ("seed", "window", "x_n_centre", "x_d_centre", "x_tpp_centre", "fit_seconds")
"""Provenance attrs (:func:`provenance`) that every posterior file has, by kind; ``dims`` and
``spec_json`` hold JSON, ``diagnostics_ok`` (a number) is optional."""


def _is_number(value: object) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
            and bool(np.isfinite(value)))


def _json_list(value: object) -> bool:
    try:
        decoded = json.loads(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return isinstance(decoded, list) and all(isinstance(d, str) for d in decoded)


def _check_contents(tree: xr.DataTree, path: Path) -> None:
    """The provenance attrs and the groups that predict, propose and report read exist and
    decode."""
    attrs = tree.attrs
    missing = [n for n in (*TEXT_ATTRS, *NUMBER_ATTRS, "dims") if n not in attrs]
    missing += [g for g in ("posterior", "runs", "cells", "excluded") if g not in tree.children]
    if missing:
        raise PosteriorError(f"{path}: no {', '.join(map(repr, missing))}; not a complete "
                             "bayes_scaling posterior (the file was altered?)")
    wrong = [f"{n} (not text)" for n in TEXT_ATTRS if not isinstance(attrs[n], str)]
    wrong += [f"{n} (not a finite number)" for n in (*NUMBER_ATTRS, "diagnostics_ok")
              if n in attrs and not _is_number(attrs[n])]
    wrong += [] if _json_list(attrs["dims"]) else ["dims (not a JSON list of names)"]
    if wrong:
        raise PosteriorError(f"{path}: attribute(s) {', '.join(wrong)}; the file was altered")
    for group in ("runs", "cells", "excluded"):
        try:
            _dataset_to_frame(tree[group].to_dataset())
        except (KeyError, TypeError, ValueError) as err:
            raise PosteriorError(f"{path}: group {group!r} is unreadable ({one_line(err)}); "
                                 "the file was altered") from err


def load_posterior(path: str | Path, spec: Spec | None = None) -> xr.DataTree:
    """Read a posterior written by :func:`save_posterior`.

    Fails with a clear :class:`PosteriorError` when the file is missing, damaged, not a
    bayes_scaling posterior, of another format version, altered, or (when ``spec`` is
    given) fitted with a different model spec.
    """
    path = Path(path)
    if not path.is_file():
        raise PosteriorError(f"{path}: no such posterior file")
    tree = _open_tree(path)
    attrs = tree.attrs
    if "spec_hash" not in attrs or "bayes_scaling_format" not in attrs:
        raise PosteriorError(f"{path}: not a bayes_scaling posterior (no provenance attrs)")
    try:
        version_read = int(attrs["bayes_scaling_format"])
        stored_json = json.loads(attrs["spec_json"])
        if not isinstance(stored_json, dict):
            raise ValueError(f"spec_json holds {type(stored_json).__name__}, not a table")
    except (KeyError, TypeError, ValueError) as err:
        raise PosteriorError(f"{path}: unreadable provenance attrs ({one_line(err)}); the "
                             "file was altered") from err
    if version_read != FORMAT_VERSION:
        raise PosteriorError(f"{path}: posterior format {attrs['bayes_scaling_format']}, this "
                             f"version reads format {FORMAT_VERSION}; refit it")
    if raw_hash(stored_json) != attrs["spec_hash"]:
        raise PosteriorError(f"{path}: the stored spec does not match its recorded hash "
                             f"({str(attrs['spec_hash'])[:12]}); the file was altered")
    try:
        stored = spec_from_json(attrs["spec_json"])
    except SpecError as err:
        stored, problem = None, str(err)
    if stored is None or stored.hash != attrs["spec_hash"]:
        why = problem if stored is None else "this version's spec has keys the file lacks"
        raise PosteriorError(
            f"{path}: written by bayes_scaling {attrs.get('bayes_scaling_version')} with a "
            f"spec this version cannot reproduce ({why}); refit it")
    _check_contents(tree, path)
    try:
        checksum = draws_hash(tree)
    except (TypeError, ValueError) as err:  # draws that are not numbers
        raise PosteriorError(f"{path}: unreadable draws ({one_line(err)}); the file was "
                             "altered") from err
    if checksum != attrs.get("draws_sha256"):
        raise PosteriorError(f"{path}: the draws do not match their recorded checksum; the "
                             f"file was altered")
    if spec is not None and spec.hash != attrs["spec_hash"]:
        raise PosteriorError(
            f"{path}: fitted with model spec '{attrs['spec_name']}' "
            f"(hash {attrs['spec_hash'][:12]}, from {attrs['spec_source']}), which does not "
            f"match the spec {spec.source} (hash {spec.hash[:12]}); refit with that spec "
            f"or drop --model")
    return tree
