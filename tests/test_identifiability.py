"""validate says what a sweep's design cannot tell the model."""

from bayes_scaling.data.identifiability import design_notes, exponent_ridges
from bayes_scaling.data.simulate import default_cells, simulate_sweep
from bayes_scaling.model.sampler import bowl_unknowns, resolved_sampler, sampler_adaptation
from bayes_scaling.model.spec import default_spec, spec_from_dict


def _notes(**kw) -> list[str]:
    cells = default_cells(archs=("dense",), mixes=("web",),
                          n_params=kw.pop("n_params", (1e8, 4e8)),
                          tokens_per_param=kw.pop("tpp", (20.0, 80.0)))
    return design_notes(simulate_sweep(1, cells=cells, return_truth=False, **kw).runs)


def test_a_full_design_has_nothing_to_say():
    assert _notes() == []


def test_a_fixed_tokens_per_parameter_ladder_is_named():
    notes = _notes(n_params=(1e8, 2e8, 4e8), tpp=(20.0,))
    assert len(notes) == 1 and "N and D move together (about 20 tokens per parameter" in notes[0]


def test_one_size_no_batch_and_no_weight_decay_variation_are_named():
    notes = _notes(n_params=(1e8,), n_batch=1, vary_weight_decay=False)
    text = " | ".join(notes)
    assert "one model size (N = 1e+08)" in text
    assert "the batch never varies within a cell" in text
    assert "weight decay does not vary within any cell" in text
    assert "one token count" not in text  # two tokens-per-parameter ratios: two D


def test_validate_json_carries_the_design_notes(run_cli, tmp_path):
    import json

    from bayes_scaling.data import write_sweep

    cells = default_cells(archs=("dense",), mixes=("web",), n_params=(1e8, 2e8),
                          tokens_per_param=(20.0,))
    path = tmp_path / "s.csv"
    write_sweep(simulate_sweep(2, cells=cells, return_truth=False), path)
    out = run_cli("validate", path, "--json")
    assert out.returncode == 0, out.stderr
    assert any("move together" in n for n in json.loads(out.stdout)["design"])
    assert "what this design cannot tell the model" in run_cli("validate", path).stdout


def _sweep(n_params, tpp, archs=("dense",)):
    cells = default_cells(archs=archs, mixes=("web",), n_params=n_params, tokens_per_param=tpp)
    return simulate_sweep(1, cells=cells, n_lr=3, n_batch=2, return_truth=False)


def test_exponent_ridges_name_the_archs_whose_n_and_d_exponents_the_runs_cannot_separate():
    assert exponent_ridges(_sweep((1e8, 4e8), (20.0, 80.0)).runs) == []
    assert exponent_ridges(_sweep((1e8, 2e8, 4e8), (20.0,)).runs) == ["dense"]  # collinear
    assert exponent_ridges(_sweep((1e8,), (20.0, 80.0)).runs) == ["dense"]  # one size
    both = _sweep((1e8, 4e8), (20.0,), archs=("dense", "moe"))
    assert exponent_ridges(both.runs) == ["dense", "moe"]


def test_auto_adaptation_is_low_rank_only_where_there_is_a_ridge():
    spec = default_spec()
    assert spec.sampler["adaptation"] == "auto"
    assert sampler_adaptation(_sweep((1e8, 4e8), (20.0,)), spec) == "low_rank"
    assert sampler_adaptation(_sweep((1e8, 4e8), (20.0, 80.0)), spec) == "diag"
    fixed = spec_from_dict({"sampler": {"adaptation": "diag"}})
    assert sampler_adaptation(_sweep((1e8, 4e8), (20.0,)), fixed) == "diag"


def test_auto_draws_double_for_thin_cells_and_again_for_few_cells():
    assert (bowl_unknowns(2), bowl_unknowns(3)) == (8, 12)
    spec = default_spec()
    assert spec.sampler["draws"] == "auto"
    thin = _sweep((1e8, 4e8), (20.0,))  # 3 lr x 2 batch = 6 runs a cell
    full = simulate_sweep(1, cells=default_cells(archs=("dense",), mixes=("web",),
                                                 n_params=(1e8, 4e8), tokens_per_param=(20.0,)),
                          return_truth=False)
    many = _sweep((5e7, 1e8, 2e8, 4e8, 8e8), (10.0, 20.0, 40.0))  # 15 thin cells
    many_full = simulate_sweep(1, cells=default_cells(archs=("dense",), mixes=("web",),
                                                      n_params=(5e7, 1e8, 2e8, 4e8, 8e8),
                                                      tokens_per_param=(10.0, 20.0)),
                               n_lr=8, n_batch=5, return_truth=False)
    assert resolved_sampler(thin, spec)["draws"] == 4000
    assert resolved_sampler(full, spec)["draws"] == 2000
    assert resolved_sampler(many, spec)["draws"] == 2000
    assert resolved_sampler(many_full, spec)["draws"] == 1000
    assert resolved_sampler(thin, spec_from_dict({"sampler": {"draws": 300}}))["draws"] == 300



def test_auto_target_accept_is_higher_for_sweeps_of_few_cells():
    spec = default_spec()
    assert spec.sampler["target_accept"] == "auto"
    assert resolved_sampler(_sweep((1e8, 4e8), (20.0,)), spec)["target_accept"] == 0.99
    many = _sweep((5e7, 1e8, 2e8, 4e8, 8e8), (10.0, 20.0, 40.0))  # 15 cells
    assert resolved_sampler(many, spec)["target_accept"] == 0.95
    fixed = spec_from_dict({"sampler": {"target_accept": 0.9}})
    assert resolved_sampler(many, fixed)["target_accept"] == 0.9


def test_auto_tune_is_500_only_for_the_tested_range_of_cells():
    spec = default_spec()
    assert spec.sampler["tune"] == "auto"
    sizes = (5e7, 1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9)
    two = _sweep((1e8, 4e8), (20.0,))
    fifteen = _sweep(sizes[:5], (10.0, 20.0, 40.0))
    thirty_five = _sweep(sizes, (10.0, 20.0, 40.0, 80.0, 160.0))
    assert [s.runs["cell"].nunique() for s in (two, fifteen, thirty_five)] == [2, 15, 35]
    assert [resolved_sampler(s, spec)["tune"] for s in (two, fifteen, thirty_five)] == [
        1000, 500, 1000]
    assert resolved_sampler(fifteen, spec_from_dict({"sampler": {"tune": 77}}))["tune"] == 77
