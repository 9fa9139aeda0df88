"""The notebooks (jupytext percent-format sources in notebooks/) run without errors.

Each is converted with jupytext and executed with nbclient in the environment's own
``python3`` kernel, with ``BAYES_SCALING_NOTEBOOK_DRAWS`` making the fits small. A cell that
raises fails the test. Notebook 02 needs ../shared/data/steplaw and skips only without it.
"""

import os
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
DRAWS = "200"


def execute(nb: nbformat.NotebookNode, timeout: int = 900,
            env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """Run ``nb`` in the notebooks folder with small draws (the kernel inherits the
    environment, plus ``env``); raises on the first cell that errors."""
    env = {"BAYES_SCALING_NOTEBOOK_DRAWS": DRAWS, **(env or {})}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOKS)}})
        return client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def outputs(nb: nbformat.NotebookNode) -> str:
    """All text the notebook printed or displayed."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def n_images(nb: nbformat.NotebookNode) -> int:
    """Figures the notebook displayed (inline PNG outputs)."""
    return sum("image/png" in out.get("data", {}) for cell in nb.cells
               for out in cell.get("outputs", []))


def test_kernel_is_this_environment():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, sys; print(sys.prefix); print(os.environ['BAYES_SCALING_NOTEBOOK_DRAWS'])")])
    text = outputs(execute(nb, timeout=120)).split()
    assert Path(text[0]).resolve() == Path(sys.prefix).resolve()
    assert text[1] == DRAWS


def test_all_notebooks_are_listed():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.py")) == [
        "01_quickstart.py", "02_steplaw.py", "03_next_run.py"]


@pytest.mark.parametrize(("name", "figures"), [("01_quickstart.py", 3), ("03_next_run.py", 2)])
def test_simulated_notebook_runs(name, figures):
    nb = execute(jupytext.read(NOTEBOOKS / name))
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert n_images(nb) == figures


def test_steplaw_notebook_runs(steplaw_dir):
    nb = execute(jupytext.read(NOTEBOOKS / "02_steplaw.py"),
                 env={"BAYES_SCALING_STEPLAW_DIR": str(steplaw_dir)})
    text = outputs(nb)
    assert "dense: 1911 runs in 17 cells" in text and "moe: 708 runs in 16 cells" in text
    assert "dense a_n:" in text
    assert n_images(nb) == 3


def test_steplaw_path_defaults_to_shared_data():
    source = (NOTEBOOKS / "02_steplaw.py").read_text()
    assert '"BAYES_SCALING_STEPLAW_DIR", "../shared/data/steplaw"' in source
