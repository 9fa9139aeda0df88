"""The notebooks (jupytext percent-format sources in notebooks/) run without errors.

Each is converted with jupytext and executed with nbclient in the environment's own
``python3`` kernel (:func:`bayes_scaling.testing.execute_notebook`), with
``BAYES_SCALING_NOTEBOOK_DRAWS`` making the fits small (2 chains x 200 draws). They run in
conftest's background workers from the start of the session (``notebook_run``). A cell that
raises fails the test. Notebook 02 needs ../shared/data/steplaw and skips only without it.
"""

import re
import sys
from pathlib import Path

import nbformat
import pytest

from bayes_scaling.testing import execute_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


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
    """The kernel runs this environment's Python and inherits the environment given."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, sys; print(sys.prefix); print(os.environ['BAYES_SCALING_NOTEBOOK_DRAWS'])")])
    text = outputs(execute_notebook(nb, NOTEBOOKS, env={"BAYES_SCALING_NOTEBOOK_DRAWS": "7"},
                                    timeout=120)).split()
    assert Path(text[0]).resolve() == Path(sys.prefix).resolve()
    assert text[1] == "7"


def _small_fit(text: str) -> bool:
    """The notebook's diagnostics report 2 chains x 200 draws (the test's small setting)."""
    return re.search(r"divergences \d+/400\b", text) is not None


def test_all_notebooks_are_listed():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.py")) == [
        "01_quickstart.py", "02_steplaw.py", "03_next_run.py"]


@pytest.mark.parametrize(("name", "figures"), [("01_quickstart.py", 3), ("03_next_run.py", 2)])
def test_simulated_notebook_runs(notebook_run, name, figures):
    nb = notebook_run(name)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert n_images(nb) == figures
    assert _small_fit(outputs(nb))


def test_steplaw_notebook_runs(steplaw_dir, notebook_run):
    nb = notebook_run("02_steplaw.py")
    text = outputs(nb)
    assert "dense: 1911 runs in 17 cells" in text and "moe: 708 runs in 16 cells" in text
    assert "dense a_n:" in text
    assert n_images(nb) == 3
    assert _small_fit(text)


def test_steplaw_path_defaults_to_shared_data():
    source = (NOTEBOOKS / "02_steplaw.py").read_text()
    assert '"BAYES_SCALING_STEPLAW_DIR", "../shared/data/steplaw"' in source
