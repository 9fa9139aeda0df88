"""predict_loss: the posterior predictive final loss of given runs."""

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.errors import TargetError
from bayes_scaling.model import core
from bayes_scaling.model.fit import posterior_cells, posterior_runs
from bayes_scaling.predict.loss import predict_loss


def test_fitted_cell_runs_follow_that_cells_draws(fake_post):
    """For runs of a fitted cell, every draw's mean loss is that cell's bowl, computed here
    independently (C as a matrix, the lr offset stretched by hand)."""
    runs = posterior_runs(fake_post)
    cell = posterior_cells(fake_post).iloc[0]
    mine = runs[runs["cell"] == cell.name].head(5).reset_index(drop=True)
    pred = predict_loss(fake_post, mine, n_draws=None)
    post = fake_post["posterior"].to_dataset().stack(sample=("chain", "draw"))
    s = 7
    at = post.isel(sample=s)
    c = core.chol_matrix(at["chol_diag"].sel(cell=cell.name).to_numpy(),
                         at["chol_offdiag"].sel(arch=cell["arch"]).to_numpy())
    opt = np.array([float(at[v].sel(cell=cell.name)) for v in
                    ("log_lr_opt", "log_batch_opt", "log_weight_decay_opt")])
    for i, r in mine.iterrows():
        delta = np.log([r["lr"], r["batch_tokens"], r["weight_decay"]]) - opt
        skew = float(at["skew_cell"].sel(cell=cell.name))  # the cell's own (default spec)
        delta[0] *= np.exp(skew if delta[0] > 0 else -skew)
        want = float(at["loss_opt"].sel(cell=cell.name)) + 0.5 * np.sum((c.T @ delta) ** 2)
        assert float(pred.mean_loss.isel(sample=s, run=i)) == pytest.approx(want, rel=1e-10)
    assert not pred.summary["new_cell"].any()
    ok = mine["status"].eq("ok") & mine["loss"].notna()
    inside = ((pred.summary["lo90"] <= mine["loss"]) & (mine["loss"] <= pred.summary["hi90"]))
    assert inside[ok].mean() >= 0.6  # the fake posterior sits near the simulator's truth


def test_new_cell_loss_is_lowest_near_its_predicted_optimum(fake_post):
    target = {"arch": "dense", "data_mix": "web", "n_params": 3e8, "n_tokens": 6e9}
    factors = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
    from bayes_scaling.predict.predict import predict

    s = predict(fake_post, target).summary.set_index("quantity")["median"]
    runs = pd.DataFrame({**{k: [v] * 5 for k, v in target.items()},
                         "lr": s["lr_opt"] * factors, "batch_tokens": [s["batch_tokens_opt"]] * 5})
    pred = predict_loss(fake_post, runs, seed=1)
    mean = pred.mean_loss.mean("sample").to_numpy()
    assert pred.summary["new_cell"].all()
    assert int(np.argmin(mean)) == 2 and (np.diff(mean[2:]) > 0).all()
    assert (np.diff(mean[:3]) < 0).all()
    assert (pred.summary["lo90"] < pred.summary["median"]).all()
    assert (pred.summary["median"] < pred.summary["hi90"]).all()


def test_bad_runs_are_target_errors(fake_post):
    with pytest.raises(TargetError, match="'lr'"):
        predict_loss(fake_post, {"arch": "dense", "n_params": 1e8, "n_tokens": 2e9,
                                 "batch_tokens": 2**20})
    with pytest.raises(TargetError, match="batch_tokens"):
        predict_loss(fake_post, {"arch": "dense", "n_params": 1e8, "n_tokens": 2e9,
                                 "lr": 1e-3, "batch_tokens": -1.0})


def test_predict_loss_cli_matches_the_api(fake_post, run_cli, tmp_path):
    from bayes_scaling.model.fit import save_posterior

    path = save_posterior(fake_post, tmp_path / "post.nc")
    runs = pd.DataFrame({"arch": ["dense", "moe"], "data_mix": ["web", "web"],
                         "n_params": [3e8, 1e8], "n_tokens": [6e9, 2e9], "lr": [2e-3, 3e-3],
                         "batch_tokens": [2**19, 2**18]})
    runs.to_csv(tmp_path / "runs.csv", index=False)
    out = run_cli("predict-loss", path, "--runs", tmp_path / "runs.csv", "--json")
    assert out.returncode == 0, out.stderr
    got = pd.read_json(__import__("io").StringIO(out.stdout))
    api = predict_loss(fake_post, runs).summary
    np.testing.assert_allclose(got["median"], api["median"], rtol=1e-9)
    missing = run_cli("predict-loss", path, "--runs", tmp_path / "absent.csv")
    assert missing.returncode == 2 and "no such runs file" in missing.stderr


def test_a_dict_of_scalars_and_lists_broadcasts(fake_post):
    target = {"arch": "dense", "data_mix": "web", "n_params": 3e8, "n_tokens": 6e9}
    pred = predict_loss(fake_post, {**target, "lr": [5e-4, 1e-3], "batch_tokens": 2**19})
    assert len(pred.summary) == 2 and (pred.summary["n_params"] == 3e8).all()
    with pytest.raises(TargetError, match="different lengths"):
        predict_loss(fake_post, {**target, "lr": [5e-4, 1e-3, 2e-3], "batch_tokens": [1, 2]})
