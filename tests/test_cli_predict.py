"""`bayes-scaling predict` by subprocess, on a fake posterior saved to a temporary file."""

import json
from pathlib import Path

import pytest

from bayes_scaling.errors import TargetError
from bayes_scaling.model import laws
from bayes_scaling.model.fit import load_posterior
from bayes_scaling.predict.predict import predict
from bayes_scaling.present.cli import COMMANDS, USER_ERRORS


@pytest.fixture(scope="module")
def path(cli_posterior_path) -> Path:
    return cli_posterior_path


def test_predict_is_registered_and_target_errors_are_user_errors():
    assert "predict" in COMMANDS
    assert issubclass(TargetError, USER_ERRORS)


def test_predict_json_matches_the_api(run_cli, path):
    result = run_cli("predict", path, "--params", "7e9", "--tokens", "2e12", "--arch", "dense",
                 "--json", "--seed", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    pred = predict(load_posterior(path), {"arch": "dense", "data_mix": "web", "n_params": 7e9,
                                          "n_tokens": 2e12}, seed=3)
    summary = pred.summary.set_index("quantity")
    assert out["target"]["data_mix"] == "web"  # the fit's only mix is the default
    for key in ("lr_opt", "batch_tokens_opt", "weight_decay_opt", "batch_seqs_opt", "loss_opt"):
        assert out[key]["lo90"] < out[key]["median"] < out[key]["hi90"]
        for stat in ("median", "lo90", "hi90"):
            assert out[key][stat] == pytest.approx(summary.loc[key, stat], rel=1e-9)
    assert out["batch_seqs_opt"]["median"] == pytest.approx(
        out["batch_tokens_opt"]["median"] / 2048, rel=1e-9)
    steplaw = out["published"]["steplaw"]
    assert steplaw["lr_opt"] == pytest.approx(float(laws.steplaw_lr_opt(7e9, 2e12)), rel=1e-12)
    assert steplaw["batch_tokens_opt"] == pytest.approx(float(laws.steplaw_batch_opt(7e9, 2e12)))
    assert out["published"]["powerlines"]["tau_opt"] == pytest.approx(
        float(laws.powerlines_tau_opt(7e9, 2e12)))
    assert "lr_opt_at_batch" not in out
    assert [r["choice"] for r in out["regret"]] == ["ours (median)", "steplaw", "deepseek"]
    assert all(r["expected_regret_pct"] > 0 for r in out["regret"])


def test_predict_with_a_fixed_batch(run_cli, path):
    result = run_cli("predict", path, "--params", "1e9", "--tokens", "4e10", "--arch", "moe",
                 "--batch-tokens", str(2**21), "--seq-len", "4096", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["target"]["batch_tokens"] == 2**21 and out["target"]["seq_len"] == 4096
    at = out["lr_opt_at_batch"]
    assert at["lo90"] < at["median"] < at["hi90"]
    choices = {r["choice"]: r for r in out["regret"]}
    assert choices["ours at the given batch"]["batch_tokens"] == 2**21
    assert choices["ours at the given batch"]["lr"] == pytest.approx(at["median"])
    assert choices["steplaw lr at the given batch"]["lr"] == pytest.approx(
        float(laws.steplaw_lr_opt(1e9, 4e10)))
    # at the imposed batch, our conditional lr does at least as well as Step Law's lr
    assert (choices["ours at the given batch"]["expected_regret"]
            <= choices["steplaw lr at the given batch"]["expected_regret"])
    assert out["batch_seqs_opt"]["median"] == pytest.approx(
        out["batch_tokens_opt"]["median"] / 4096, rel=1e-9)


def test_predict_table(run_cli, path):
    result = run_cli("predict", path, "--params", "7e9", "--tokens", "2e12", "--arch", "dense",
                 "--mix", "fresh", "--batch-tokens", "4e6")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "target: dense, mix fresh, N = 7e+09 params, D = 2e+12 tokens" in out
    assert "mix 'fresh' is not in the fit (fitted: web)" in out
    for word in ("lr_opt ", "batch_tokens_opt", "weight_decay_opt ", "lr_opt_at_batch",
                 "steplaw", "deepseek", "powerlines", "expected regret",
                 "steplaw lr at the given batch"):
        assert word in out, word
    assert f"{float(laws.steplaw_lr_opt(7e9, 2e12)):.4g}" in out


@pytest.mark.parametrize("args, message", [
    (["--arch", "gpt"], "arch ['gpt'] not in the fitted data"),
    (["--arch", "dense", "--params", "-1"], "must be a positive number"),
])
def test_predict_user_errors(run_cli, path, args, message):
    base = {"--params": "7e9", "--tokens": "2e12"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    result = run_cli("predict", path, *[x for kv in base.items() for x in kv])
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_predict_missing_posterior(run_cli, tmp_path):
    result = run_cli("predict", tmp_path / "none.nc", "--params", "7e9", "--tokens", "2e12",
                 "--arch", "dense")
    assert result.returncode == 2
    assert "no such posterior file" in result.stderr


def test_the_arch_defaults_to_the_posteriors_only_arch(tmp_path, run_cli, cli_posterior_path):
    from bayes_scaling.data.simulate import default_cells, simulate_sweep
    from bayes_scaling.errors import TargetError
    from bayes_scaling.model.fit import load_posterior, save_posterior
    from bayes_scaling.predict.targets import default_arch
    from bayes_scaling.testing import fake_posterior

    cells = default_cells(archs=("moe",), mixes=("web",), n_params=(1e8, 4e8))
    one = fake_posterior(simulate_sweep(4, cells=cells, n_lr=3, n_batch=2, return_truth=False))
    assert default_arch(one) == "moe" and default_arch(one, "dense") == "dense"
    two = load_posterior(cli_posterior_path)
    with pytest.raises(TargetError, match=r"give the target's arch .*dense, moe"):
        default_arch(two)
    path = save_posterior(one, tmp_path / "moe.nc")
    out = run_cli("predict", path, "--params", "1e9", "--tokens", "2e10")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("target: moe,")
    bad = run_cli("predict", cli_posterior_path, "--params", "1e9", "--tokens", "2e10")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith(
        "error: give the target's arch (--arch): the posterior has dense, moe")
