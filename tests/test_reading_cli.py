"""The command line on a practitioner's own sweep (issue 11, items 1 and 5): --column,
--columns-file and --status on the commands that read sweeps, sizes with suffixes, and
output paths checked before any work."""

import json
from pathlib import Path

import pytest

from bayes_scaling.present.cli import build_parser, main
from bayes_scaling.present.cli_args import check_output_dir, check_output_file

DATA = Path(__file__).parent / "data"
WANDB = DATA / "wandb_export.csv"
WANDB_MAP = DATA / "wandb_columns.toml"
COLUMN_FLAGS = [flag for pair in (
    "Name=run_id", "State=status", "config.model_params=n_params", "config.tokens=n_tokens",
    "config.learning_rate=lr", "config.batch_size=batch_seqs", "config.seq_len=seq_len",
    "config.weight_decay=weight_decay", "summary.final_loss=loss") for flag in ("--column", pair)]


def one_error_line(result) -> str:
    """The single stderr line of a user error (exit 2)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_validate_wandb_export_with_flags_and_with_the_columns_file(run_cli):
    by_flags = run_cli("validate", WANDB, *COLUMN_FLAGS, "--json")
    assert by_flags.returncode == 0, by_flags.stderr
    summary = json.loads(by_flags.stdout)
    assert (summary["runs"], summary["cells"], summary["n_excluded"]) == (61, 4, 5)
    states = sorted(row["reason"].split("'")[1] for row in summary["excluded"])
    assert states == ["crashed", "crashed", "failed", "killed", "running"]
    assert all("not censored" in row["reason"] for row in summary["excluded"])
    by_file = run_cli("validate", WANDB, "--columns-file", WANDB_MAP, "--json")
    assert by_file.returncode == 0, by_file.stderr
    assert json.loads(by_file.stdout)["data_hash"] == summary["data_hash"]


def test_validate_status_flag_wins_over_the_built_in_states(run_cli):
    result = run_cli("validate", WANDB, "--columns-file", WANDB_MAP, "--status",
                     "crashed=diverged", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["runs"], summary["n_excluded"], summary["n_diverged"]) == (63, 3, 3)


@pytest.mark.parametrize(("flags", "expected"), [
    (["--columns-file", WANDB_MAP, "--column", "config.learning_rate=learning_rate"],
     "--column: 'config.learning_rate' is mapped onto 'learning_rate', which is not a column"),
    (["--columns-file", WANDB_MAP, "--status", "crashed=maybe"],
     "--status: status map: 'crashed' -> 'maybe'"),
    (["--columns-file", WANDB_MAP, "--column", "lr"], "--column expects THEIRS=CANONICAL"),
    (["--column", "Name=run_id"], "missing required column(s)"),
    ([*COLUMN_FLAGS[:2], *COLUMN_FLAGS[4:]], "column 'State' holds run states"),
])
def test_validate_map_errors_are_one_line(run_cli, flags, expected):
    assert expected in one_error_line(run_cli("validate", WANDB, *flags))


def test_fit_reads_with_the_maps_and_lists_the_excluded_runs(monkeypatch, capsys, tmp_path):
    import bayes_scaling.model.fit as model_fit

    class Sampled(Exception):
        pass

    def fake_fit(sweep, spec, **kwargs):
        raise Sampled(sweep)

    monkeypatch.setattr(model_fit, "fit", fake_fit)
    with pytest.raises(Sampled) as info:
        main(["fit", str(WANDB), "--columns-file", str(WANDB_MAP), "--out",
              str(tmp_path / "p.nc")])
    sweep = info.value.args[0]
    assert len(sweep.runs) == 61 and "crashed" not in set(sweep.runs["status"])
    out = capsys.readouterr().out
    assert "sweep: 61 runs in 4 cells" in out and "excluded 5" in out
    assert ("  excluded d350m-tpp80-lr1.56e-03-bs359-rerun: status 'running': run not "
            "finished; not used, not censored; row 55") in out
    assert "batch_tokens = batch_seqs x seq_len (batch_seqs: column 'config.batch_size')" in out


def test_fit_checks_its_output_before_reading_or_sampling(run_cli, tmp_path):
    line = one_error_line(run_cli("fit", WANDB, "--columns-file", WANDB_MAP,
                                  "--out", "/proc/x.nc"))
    assert line.startswith("error: --out /proc/x.nc: cannot write in /proc")
    result = run_cli("fit", WANDB, "--out", tmp_path)  # no maps: the sweep would fail too
    assert "is a folder; give a file name" in one_error_line(result)
    assert result.stdout == ""


def test_report_checks_its_outputs_before_loading_or_drawing(run_cli, tmp_path):
    line = one_error_line(run_cli("report", "missing.nc", "--out", ".", cwd=tmp_path))
    assert line == "error: --out .: is a folder; give a file name"
    (tmp_path / "figs").write_text("a file, not a folder")
    line = one_error_line(run_cli("report", "missing.nc", "--figures", "figs", cwd=tmp_path))
    assert line == "error: --figures figs: exists and is not a folder"


def test_predict_refuses_a_batch_below_one_sequence(run_cli):
    line = one_error_line(run_cli("predict", "missing.nc", "--params", "7B", "--tokens", "2T",
                                  "--arch", "dense", "--batch-tokens", "256"))
    assert "--batch-tokens 256 is below --seq-len 2048" in line and "sequences" in line


@pytest.mark.parametrize(("argv", "dest", "value"), [
    (["predict", "p.nc", "--params", "7B", "--tokens", "2T", "--arch", "dense"], "params", 7e9),
    (["predict", "p.nc", "--params", "7B", "--tokens", "2T", "--arch", "dense"], "tokens", 2e12),
    (["propose", "p.nc", "--target-params", "350M", "--target-tokens", "1.5e11", "--arch",
      "dense"], "target_params", 3.5e8),
    (["report", "p.nc", "--params", "1.5e9", "--tokens", "30b"], "tokens", 3e10),
    (["report", "p.nc", "--budget-flops", "1e21"], "budget_flops", 1e21),
])
def test_sizes_take_suffixes(argv, dest, value):
    assert getattr(build_parser().parse_args(argv), dest) == value


@pytest.mark.parametrize("bad", ["7X", "-7B", "inf", "0"])
def test_bad_sizes_are_usage_errors(capsys, bad):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["predict", "p.nc", f"--params={bad}", "--tokens", "2T",
                                   "--arch", "dense"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --params: must be a positive number such as 7e9 or 7B" in err
    assert repr(bad) in err


def test_output_path_checks(tmp_path):
    check_output_file(tmp_path / "new" / "deeper" / "p.nc")  # creatable: fine
    assert not (tmp_path / "new").exists()  # and nothing created by the check
    with pytest.raises(IsADirectoryError):
        check_output_file(tmp_path)
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError):
        check_output_file(tmp_path / "f" / "p.nc")
    with pytest.raises(NotADirectoryError):
        check_output_dir(tmp_path / "f", "--figures")
    with pytest.raises(PermissionError, match="cannot write in /proc"):
        check_output_dir(Path("/proc/figures"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # no probe files left
