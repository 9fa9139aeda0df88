"""PyTensor's generated source goes to its compile cache, not to the temporary directory."""

from pathlib import Path

import pytensor
from pytensor.link.utils import write_generated_src

import bayes_scaling.model.graph  # noqa: F401  (building models sets the folder)
from bayes_scaling.model.generated_source import FOLDER, keep_generated_source


def test_building_models_sets_a_folder():
    assert pytensor.config.generated_src_dir  # empty: a new file in /tmp per function


def test_generated_source_is_kept_in_the_compile_cache(monkeypatch):
    monkeypatch.setattr(pytensor.config, "generated_src_dir", "")
    folder = keep_generated_source()
    assert folder == Path(pytensor.config.compiledir) / FOLDER
    src = "def f(x):\n    return x + 1\n"
    written = Path(write_generated_src(src))
    assert written.parent == folder
    assert Path(write_generated_src(src)) == written  # content-addressed: reused


def test_a_folder_the_user_set_is_kept(monkeypatch):
    monkeypatch.setattr(pytensor.config, "generated_src_dir", "/somewhere/else")
    assert keep_generated_source() == Path("/somewhere/else")
