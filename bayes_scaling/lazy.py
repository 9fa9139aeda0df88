"""Lazy public names for a package (PEP 562), so importing a stage loads only what is used.

In a package's ``__init__``::

    _EXPORTS = {"fit": "fit", "load_spec": "spec"}   # public name -> defining submodule
    __getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object],
                                                                 list[str]]:
    """A module ``__getattr__`` importing ``package.<exports[name]>`` on first use of
    ``name``, and the sorted public names for ``__all__``."""

    def __getattr__(name: str) -> object:
        if name in exports:
            return getattr(import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(exports)
