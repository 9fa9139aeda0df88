"""Where PyTensor writes the Python source it generates for compiled functions.

Unless told otherwise (``PYTENSOR_FLAGS=generated_src_dir=...``), PyTensor writes each
compiled function's source to a new file in the system temporary directory and never
removes it: 66 files a fit of the simulated demo sweep, and 20,000 in /tmp after one day
of this project's benchmarks. :func:`keep_generated_source` points it at a folder of
PyTensor's own compile cache instead, where the files are named by their content (a later
fit reuses them) and PyTensor prunes the ones unused for weeks.
"""

from __future__ import annotations

from pathlib import Path

import pytensor

FOLDER = "generated_src"
"""The folder inside PyTensor's compiledir."""


def keep_generated_source() -> Path:
    """Set PyTensor's ``generated_src_dir`` to ``<compiledir>/generated_src`` unless the
    user set one; returns the folder in use."""
    if not pytensor.config.generated_src_dir:
        pytensor.config.generated_src_dir = str(Path(pytensor.config.compiledir) / FOLDER)
    return Path(pytensor.config.generated_src_dir)
