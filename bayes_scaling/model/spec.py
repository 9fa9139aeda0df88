"""Model specs: read and validate the declarative TOML files in models/.

Every default lives in ``models/default.toml`` and nowhere else; a spec file lists only the
keys it changes. Priors are keyed by the model variable they describe. A bad setting is one
clear :class:`SpecError` naming the file and the key.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayes_scaling.errors import SpecError

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
"""The project's model specs; ``models/default.toml`` holds every default (and only there)."""

PRIOR_PARAMS: dict[str, tuple[str, ...]] = {
    "Normal": ("mu", "sigma"), "StudentT": ("nu", "mu", "sigma"),
    "HalfNormal": ("sigma",), "HalfStudentT": ("nu", "sigma"), "Gamma": ("alpha", "beta"),
    "Exponential": ("lam",), "LogNormal": ("mu", "sigma"),
}
"""Allowed prior families (PyMC distribution names) and their parameters."""
LOCATION_FAMILIES = ("Normal", "StudentT")
POSITIVE_FAMILIES = ("HalfNormal", "HalfStudentT", "Gamma", "Exponential", "LogNormal")
_LEGACY_NAMES = {"normal": "Normal", "halfnormal": "HalfNormal", "gamma": "Gamma"}


@dataclass(frozen=True)
class Prior:
    """A prior on one model variable: a PyMC distribution name and its parameters.

    ``Prior("Normal", {"mu": 0.0, "sigma": 1.0}).create("a", dims="arch")`` adds the variable
    to the model in context; TOML form: ``a = { dist = "Normal", mu = 0.0, sigma = 1.0 }``.
    """

    dist: str
    params: dict[str, float]

    def __getattr__(self, name: str) -> float:
        try:
            return self.__dict__["params"][name]
        except KeyError:
            raise AttributeError(name) from None

    def create(self, name: str, dims: str | tuple[str, ...] | None = None, shift: Any = 0.0):
        """The PyMC variable ``name`` with this prior; ``shift`` moves a location family."""
        import pymc as pm  # local: specs are read without PyMC (the CLI stays light)

        kwargs = dict(self.params)
        if not (isinstance(shift, float | int) and shift == 0.0):
            kwargs["mu"] = kwargs["mu"] + shift
        return getattr(pm, self.dist)(name, dims=dims, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"dist": self.dist, **self.params}


ADAPTATIONS = ("auto", "low_rank", "diag")
"""nutpie mass-matrix adaptations; auto: low_rank where the design leaves an exponent ridge
(:func:`bayes_scaling.data.identifiability.exponent_ridges`), else diag."""


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
    skew_by_tokens: bool
    skew_by_cell: bool
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
    kinds = ", ".join(PRIOR_PARAMS)
    if not isinstance(raw, dict) or "dist" not in raw:
        raise SpecError(f"{where} must be a table with 'dist' (one of {kinds})")
    dist = _LEGACY_NAMES.get(raw["dist"], raw["dist"])
    if dist not in PRIOR_PARAMS:
        raise SpecError(f"{where}: unknown dist '{raw['dist']}' (use one of {kinds})")
    want = PRIOR_PARAMS[dist]
    extra = set(raw) - {"dist", *want}
    if extra:
        raise SpecError(f"{where}: unexpected field(s) {sorted(extra)} for {dist} ({want})")
    for f in want:
        if f not in raw or isinstance(raw[f], bool) or not isinstance(raw[f], int | float):
            raise SpecError(f"{where}: '{f}' must be a number")
    for f in ("sigma", "alpha", "beta", "nu", "lam"):
        if f in raw and raw[f] <= 0:
            raise SpecError(f"{where}: {f} must be > 0, got {raw[f]}")
    is_scale = name.startswith(("sd_", "sigma_", "noise"))
    family = POSITIVE_FAMILIES if is_scale else LOCATION_FAMILIES
    if dist not in family:
        raise SpecError(f"{where}: this parameter needs dist = {' or '.join(family)}")
    return Prior(dist=dist, params={f: float(raw[f]) for f in want})


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
    for key in ("chains", "cores"):
        _check(isinstance(smp[key], int) and smp[key] >= 1, source, f"sampler.{key}",
               "must be a positive integer")
    _check(smp["tune"] == "auto" or (isinstance(smp["tune"], int) and smp["tune"] >= 1),
           source, "sampler.tune", "must be a positive integer or 'auto'")
    _check(smp["draws"] == "auto" or (isinstance(smp["draws"], int) and smp["draws"] >= 1),
           source, "sampler.draws", "must be a positive integer or 'auto'")
    _check(smp["target_accept"] == "auto" or (isinstance(smp["target_accept"], float)
                                               and 0.5 <= smp["target_accept"] < 1),
           source, "sampler.target_accept", "must be in [0.5, 1) or 'auto'")
    _check(smp["adaptation"] in ADAPTATIONS, source, "sampler.adaptation",
           "must be 'auto', 'low_rank' or 'diag'")
    for section, keys in (("data", ("allow_unseen_arch",)),
                          ("bowl", ("skew", "skew_by_tokens", "skew_by_cell")),
                          ("pooling", ("exponents_by_arch", "mix_offsets"))):
        for key in keys:
            _check(isinstance(raw[section][key], bool), source, f"{section}.{key}",
                   "must be true or false")
    priors = {name: _prior(name, p, source) for name, p in raw["priors"].items()}
    return Spec(
        name=str(raw["name"]), description=str(raw["description"]), window=float(d["window"]),
        archs=tuple(d["archs"]), allow_unseen_arch=d["allow_unseen_arch"],
        likelihood=lik["family"], nu=float(lik["nu"]), skew=raw["bowl"]["skew"],
        skew_by_tokens=raw["bowl"]["skew"] and raw["bowl"]["skew_by_tokens"],
        skew_by_cell=raw["bowl"]["skew"] and raw["bowl"]["skew_by_cell"],
        exponents_by_arch=raw["pooling"]["exponents_by_arch"],
        mix_offsets=raw["pooling"]["mix_offsets"], priors=priors, sampler=dict(smp),
        source=source, raw=raw,
    )


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SpecError(f"{path}: no such model spec file")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML ({err})") from err


@functools.cache
def _defaults() -> dict[str, Any]:
    """Every key with its default value: models/default.toml, the one place they live."""
    return _read_toml(MODELS_DIR / "default.toml")


def default_spec() -> Spec:
    """The default spec (models/default.toml)."""
    return _build(copy.deepcopy(_defaults()), str(MODELS_DIR / "default.toml"))


def spec_from_dict(over: dict[str, Any], source: str = "<dict>") -> Spec:
    """A spec from a dict of overrides on the defaults."""
    return _build(_merge(_defaults(), over, "", source), source)


def load_spec(path: str | Path | None = None) -> Spec:
    """Read a TOML spec (None: the defaults); missing keys take the defaults."""
    if path is None:
        return default_spec()
    path = Path(path)
    return spec_from_dict(_read_toml(path), str(path))


def spec_from_json(text: str, source: str = "<posterior attrs>") -> Spec:
    """Rebuild a spec saved with :meth:`Spec.to_json`."""
    return spec_from_dict(json.loads(text), source)


def with_sampler(spec: Spec, **settings: Any) -> Spec:
    """A copy of ``spec`` with sampler settings replaced (None values are ignored)."""
    raw = copy.deepcopy(spec.raw)
    raw["sampler"].update({k: v for k, v in settings.items() if v is not None})
    return _build(raw, spec.source)
