"""The public API: every exported name resolves, ``import bayes_scaling`` loads no PyMC, and
every user error is a BayesScalingError that the CLI shows as one ``error:`` line (exit 2)."""

import subprocess
import sys

import pytest

import bayes_scaling as bs
from bayes_scaling import errors
from bayes_scaling.present.cli_args import USER_ERRORS


def test_every_public_name_resolves():
    assert len(bs.__all__) == len(set(bs.__all__))
    for name in bs.__all__:
        assert getattr(bs, name) is not None, name
    assert set(bs.__all__) <= set(dir(bs))
    assert callable(bs.predict) and bs.predict.__module__ == "bayes_scaling.predict.predict"
    with pytest.raises(AttributeError):
        bs.no_such_name  # noqa: B018


def test_functions_stay_in_front_of_same_named_submodules():
    import importlib

    for module in ("bayes_scaling.model.fit", "bayes_scaling.predict.predict"):
        importlib.import_module(module)  # binds each submodule on its package

    assert callable(bs.fit) and callable(bs.predict)
    from bayes_scaling.predict import draws  # the subpackage stays importable

    assert draws.__name__ == "bayes_scaling.predict.draws"


def test_import_is_light():
    code = ("import sys, bayes_scaling as bs; bs.BayesScalingError; bs.__version__; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pymc', 'pytensor', 'matplotlib', 'arviz')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_user_errors_share_one_root():
    for name in ("SweepError", "SpecError", "PosteriorError", "TargetError", "CandidateError"):
        cls = getattr(bs, name)
        assert cls is getattr(errors, name) and issubclass(cls, bs.BayesScalingError)
        assert issubclass(cls, USER_ERRORS)


@pytest.mark.parametrize("args", [
    ["validate", "missing.csv"],
    ["predict", "missing.nc", "--params", "7e9", "--tokens", "2e12", "--arch", "dense"],
    ["propose", "missing.nc", "--target-params", "7e9", "--target-tokens", "2e12",
     "--arch", "dense"],
    ["report", "missing.nc"],
])
def test_cli_user_errors_exit_2_with_one_line(run_cli, tmp_path, args):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "missing" in lines[0]


def test_cli_user_error_names_file_row_and_column(run_cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("run_id,n_params,n_tokens,batch_tokens,lr,loss\n"
                    "a,1e8,2e9,524288,1e-3,3.0\nb,1e8,2e9,524288,-1e-3,3.1\n")
    result = run_cli("validate", path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: column 'lr'")
    assert "row" in lines[0]


def _help_page(name: str, capsys) -> str:
    """``bayes-scaling NAME --help`` in this process (the parser the entry point builds)."""
    from bayes_scaling.present.cli import main

    with pytest.raises(SystemExit) as stop:
        main([name, "--help"])
    assert stop.value.code == 0, name
    return capsys.readouterr().out


def test_every_command_has_help(run_cli, capsys):
    """The entry point's --help by subprocess; every command's page in process."""
    from bayes_scaling.present.cli import COMMANDS

    top = run_cli("--help")
    assert top.returncode == 0 and "usage: bayes-scaling" in top.stdout
    for name in COMMANDS:
        assert name in top.stdout, name
        assert _help_page(name, capsys).startswith(f"usage: bayes-scaling {name}"), name


def test_cli_lists_the_data_stage_formats():
    from bayes_scaling.data.formats import FORMATS
    from bayes_scaling.present import cli

    assert cli.FORMATS == FORMATS


def test_help_shows_plain_percent_signs(capsys):
    """argparse leaves '%%' in a description as is: every help page must show '90%'."""
    from bayes_scaling.present.cli import COMMANDS

    for command in COMMANDS:
        assert "%%" not in _help_page(command, capsys), command
    assert "90%" in _help_page("fit", capsys)
