"""validate says what a sweep's design cannot tell the model."""

from bayes_scaling.data.identifiability import design_notes
from bayes_scaling.data.simulate import default_cells, simulate_sweep


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
