"""Model specs: read and validate the declarative TOML files in models/.

A spec file overrides the built-in defaults (:data:`DEFAULTS`, mirrored by
``models/default.toml``) key by key; an unknown key, a malformed prior or an out-of-range
setting is one clear :class:`SpecError` naming the file and the key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayes_scaling.errors import SpecError

PRIOR_KINDS = {"normal": ("mu", "sigma"), "halfnormal": ("sigma",), "gamma": ("alpha", "beta")}

# Priors on law parameters are in this package's parametrisation (laws.py): natural logs,
# intercepts at N_REF = 1e9, D_REF = 1e11, TPP_REF = 20, batch in tokens.
DEFAULT_PRIORS: dict[str, dict[str, Any]] = {
    # population means of the per-arch exponents
    "a_n": {"dist": "normal", "mu": -0.5, "sigma": 0.5},
    "a_d": {"dist": "normal", "mu": 0.0, "sigma": 0.5},
    "b_n": {"dist": "normal", "mu": 0.0, "sigma": 0.5},
    "b_d": {"dist": "normal", "mu": 0.5, "sigma": 0.5},
    "l_n": {"dist": "normal", "mu": -0.05, "sigma": 0.1},
    "l_d": {"dist": "normal", "mu": -0.05, "sigma": 0.1},
    # intercepts at the reference scale (population over archs)
    "c_eta": {"dist": "normal", "mu": -6.5, "sigma": 2.0},
    "c_batch": {"dist": "normal", "mu": 14.0, "sigma": 2.0},
    "c_loss": {"dist": "normal", "mu": 0.7, "sigma": 0.5},
    "c_tau": {"dist": "normal", "mu": -1.6, "sigma": 1.0},
    "g_tpp": {"dist": "normal", "mu": -0.5, "sigma": 0.5},
    # scales of the hierarchy
    # (zero-avoiding gamma priors: with two or three archs or mixes a scale's posterior is
    # mostly its prior, and mass at zero makes a funnel)
    "sd_arch_exponent": {"dist": "gamma", "alpha": 2.0, "beta": 20.0},
    "sd_arch_loss_exponent": {"dist": "gamma", "alpha": 2.0, "beta": 100.0},
    "sd_mix": {"dist": "gamma", "alpha": 2.0, "beta": 10.0},
    # data mixes shift log loss by a few percent, not the 20% that sd_mix allows lr and batch
    "sd_mix_loss": {"dist": "gamma", "alpha": 2.0, "beta": 50.0},
    "sigma_cell_lr": {"dist": "halfnormal", "sigma": 0.2},
    "sigma_cell_batch": {"dist": "halfnormal", "sigma": 0.3},
    "sigma_cell_tau": {"dist": "halfnormal", "sigma": 0.3},
    "sigma_cell_loss": {"dist": "halfnormal", "sigma": 0.02},
    # curvature: log of the Cholesky diagonal, its cell scatter, the off-diagonals
    "log_chol_diag": {"dist": "normal", "mu": -1.5, "sigma": 1.0},
    "sd_log_chol_diag": {"dist": "halfnormal", "sigma": 0.3},
    "chol_offdiag": {"dist": "normal", "mu": 0.0, "sigma": 0.2},
    "skew": {"dist": "normal", "mu": 0.0, "sigma": 0.3},
    "noise": {"dist": "halfnormal", "sigma": 0.02},
}

DEFAULTS: dict[str, Any] = {
    "name": "default",
    "description": "Weakly informative priors around typical LLM pretraining values.",
    "data": {"window": 0.02, "archs": [], "allow_unseen_arch": False},
    "likelihood": {"family": "student_t", "nu": 5.0},
    "bowl": {"skew": True},
    "pooling": {"exponents_by_arch": True, "mix_offsets": True},
    "priors": DEFAULT_PRIORS,
    # diag adaptation: on the Step Law fit nutpie's low_rank took 85 s to sample, diag 7 s
    # with the same number of leapfrog steps
    "sampler": {"draws": 1000, "tune": 1000, "chains": 4, "cores": 2, "target_accept": 0.9,
                "adaptation": "diag"},
}



@dataclass(frozen=True)
class Prior:
    """A prior: Normal(mu, sigma), HalfNormal(sigma) or Gamma(alpha, beta)."""

    dist: str
    sigma: float = 1.0
    mu: float = 0.0
    alpha: float = 1.0
    beta: float = 1.0


@dataclass(frozen=True)
class Spec:
    """A validated model spec (see models/default.toml for every key and its meaning)."""

    name: str
    description: str
    window: float
    archs: tuple[str, ...]
    allow_unseen_arch: bool
    likelihood: str
    nu: float
    skew: bool
    exponents_by_arch: bool
    mix_offsets: bool
    priors: dict[str, Prior]
    sampler: dict[str, Any]
    source: str
    raw: dict[str, Any]

    @property
    def hash(self) -> str:
        """sha256 of the model-defining content (everything but name, description, sampler)."""
        return raw_hash(self.raw)

    def to_json(self) -> str:
        """The full (merged) spec as JSON, stored in a posterior's attrs."""
        return json.dumps(self.raw, sort_keys=True)


def raw_hash(raw: dict[str, Any]) -> str:
    """sha256 of a raw spec dict without its name, description and sampler settings."""
    keep = {k: v for k, v in raw.items() if k not in {"name", "description", "sampler"}}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()


def _merge(base: dict[str, Any], over: dict[str, Any], where: str, source: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            raise SpecError(f"{source}: unknown key '{path}' (known here: {', '.join(base)})")
        if isinstance(base[key], dict) and key != "priors":
            if not isinstance(value, dict):
                raise SpecError(f"{source}: '{path}' must be a table")
            out[key] = _merge(base[key], value, path, source)
        elif key == "priors":
            if not isinstance(value, dict):
                raise SpecError(f"{source}: 'priors' must be a table")
            for name, prior in value.items():
                if name not in base["priors"]:
                    raise SpecError(f"{source}: unknown prior 'priors.{name}' "
                                    f"(known: {', '.join(base['priors'])})")
                out["priors"][name] = prior
        else:
            out[key] = value
    return out


def _prior(name: str, raw: Any, source: str) -> Prior:
    where = f"{source}: prior 'priors.{name}'"
    if not isinstance(raw, dict) or "dist" not in raw:
        raise SpecError(f"{where} must be a table with 'dist' ({' or '.join(PRIOR_KINDS)})")
    dist = raw["dist"]
    if dist not in PRIOR_KINDS:
        raise SpecError(f"{where}: unknown dist '{dist}' (use {' or '.join(PRIOR_KINDS)})")
    want = PRIOR_KINDS[dist]
    extra = set(raw) - {"dist", *want}
    if extra:
        raise SpecError(f"{where}: unexpected field(s) {sorted(extra)} for {dist} ({want})")
    for f in want:
        if f not in raw or isinstance(raw[f], bool) or not isinstance(raw[f], int | float):
            raise SpecError(f"{where}: '{f}' must be a number")
    for f in ("sigma", "alpha", "beta"):
        if f in raw and raw[f] <= 0:
            raise SpecError(f"{where}: {f} must be > 0, got {raw[f]}")
    is_scale = name.startswith(("sd_", "sigma_", "noise"))
    if is_scale != (dist in ("halfnormal", "gamma")):
        need = "'halfnormal' or 'gamma'" if is_scale else "'normal'"
        raise SpecError(f"{where}: this parameter needs dist = {need}")
    return Prior(dist=dist, **{f: float(raw[f]) for f in want})


def _check(cond: bool, source: str, key: str, msg: str) -> None:
    if not cond:
        raise SpecError(f"{source}: '{key}' {msg}")


def _build(raw: dict[str, Any], source: str) -> Spec:
    d, lik, smp = raw["data"], raw["likelihood"], raw["sampler"]
    _check(isinstance(d["window"], int | float) and 0 < d["window"] < 1, source, "data.window",
           f"must be a number in (0, 1), got {d['window']!r}")
    _check(isinstance(d["archs"], list) and all(isinstance(a, str) for a in d["archs"]), source,
           "data.archs", "must be a list of strings")
    _check(lik["family"] in ("student_t", "normal"), source, "likelihood.family",
           f"must be 'student_t' or 'normal', got {lik['family']!r}")
    _check(isinstance(lik["nu"], int | float) and lik["nu"] > 1, source, "likelihood.nu",
           "must be a number > 1")
    for key in ("draws", "tune", "chains", "cores"):
        _check(isinstance(smp[key], int) and smp[key] >= 1, source, f"sampler.{key}",
               "must be a positive integer")
    _check(isinstance(smp["target_accept"], float) and 0.5 <= smp["target_accept"] < 1, source,
           "sampler.target_accept", "must be in [0.5, 1)")
    _check(smp["adaptation"] in ("low_rank", "diag"), source, "sampler.adaptation",
           "must be 'low_rank' or 'diag'")
    for section, keys in (("data", ("allow_unseen_arch",)), ("bowl", ("skew",)),
                          ("pooling", ("exponents_by_arch", "mix_offsets"))):
        for key in keys:
            _check(isinstance(raw[section][key], bool), source, f"{section}.{key}",
                   "must be true or false")
    priors = {name: _prior(name, p, source) for name, p in raw["priors"].items()}
    return Spec(
        name=str(raw["name"]), description=str(raw["description"]), window=float(d["window"]),
        archs=tuple(d["archs"]), allow_unseen_arch=d["allow_unseen_arch"],
        likelihood=lik["family"], nu=float(lik["nu"]), skew=raw["bowl"]["skew"],
        exponents_by_arch=raw["pooling"]["exponents_by_arch"],
        mix_offsets=raw["pooling"]["mix_offsets"], priors=priors, sampler=dict(smp),
        source=source, raw=raw,
    )


def default_spec() -> Spec:
    """The built-in defaults (identical to models/default.toml)."""
    return _build(copy.deepcopy(DEFAULTS), "<built-in default>")


def spec_from_dict(over: dict[str, Any], source: str = "<dict>") -> Spec:
    """A spec from a dict of overrides on the defaults."""
    return _build(_merge(DEFAULTS, over, "", source), source)


def load_spec(path: str | Path | None = None) -> Spec:
    """Read a TOML spec (None: the built-in defaults)."""
    if path is None:
        return default_spec()
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such model spec file")
    try:
        over = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML ({err})") from err
    return spec_from_dict(over, str(path))


def spec_from_json(text: str, source: str = "<posterior attrs>") -> Spec:
    """Rebuild a spec saved with :meth:`Spec.to_json`."""
    return spec_from_dict(json.loads(text), source)


def with_sampler(spec: Spec, **settings: Any) -> Spec:
    """A copy of ``spec`` with sampler settings replaced (None values are ignored)."""
    raw = copy.deepcopy(spec.raw)
    raw["sampler"].update({k: v for k, v in settings.items() if v is not None})
    return _build(raw, spec.source)
