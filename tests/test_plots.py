"""Figures: every axes labelled with units, legends where several series, titles, files
written; and the numbers behind the figures (bowl surfaces, ellipses, law slices)."""


import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from bayes_scaling.model.fit import posterior_cells, posterior_runs
from bayes_scaling.present.plots import (
    LABELS,
    make_figures,
    plot_cell_landscapes,
    plot_expected_regret,
    plot_law_curves,
    plot_proposals,
    plot_target_predictive,
    save_figure,
)
from bayes_scaling.present.plots_cells import cell_bowl
from bayes_scaling.present.plots_common import close, ellipse, fmt_sci, fmt_value
from bayes_scaling.present.plots_laws import adjusted_cell_optima, law_slice

CATEGORICAL_LABELS = {"target run"}
"""Axis labels without units because the axis is a list of named things."""


@pytest.fixture(scope="module")
def pieces(figure_pieces) -> dict:
    return figure_pieces


FIGURES = {
    "landscapes": lambda p: plot_cell_landscapes(
        p["posterior"], list(posterior_cells(p["posterior"]).index[:5]), truth=p["truth"]),
    "laws_target": lambda p: plot_law_curves(p["posterior"], p["targets"].iloc[0]),
    "laws_centre": lambda p: plot_law_curves(p["posterior"]),
    "predictive": lambda p: plot_target_predictive(p["prediction"]),
    "regret": lambda p: plot_expected_regret(p["regret"], p["prediction"]),
    "proposals": lambda p: plot_proposals(p["posterior"], p["proposals"],
                                                p["targets"].iloc[[0]]),
}


@pytest.fixture(scope="module")
def figures(pieces):
    figs = {name: build(pieces) for name, build in FIGURES.items()}
    yield figs
    for fig in figs.values():
        close(fig)


def _is_colorbar(ax) -> bool:
    return ax.get_label() == "<colorbar>"


@pytest.mark.parametrize("name", list(FIGURES))
def test_axes_have_unit_labels_titles_and_legends(name, figures):
    fig = figures[name]
    axes = [ax for ax in fig.axes if not _is_colorbar(ax)]
    assert axes
    allowed = set(LABELS.values()) | CATEGORICAL_LABELS
    fig_legend = {t.get_text() for leg in fig.legends for t in leg.get_texts()}
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    for ax in axes:
        for label in (ax.get_xlabel(), ax.get_ylabel()):
            assert label, f"{name}: an axes without an x or y label"
            assert label in allowed, f"{name}: axis label {label!r} is not a label with units"
        assert ax.get_title() or suptitle, f"{name}: no title"
        labels = [lab for lab in ax.get_legend_handles_labels()[1] if not lab.startswith("_")]
        if len(labels) > 1:
            assert ax.get_legend() is not None or set(labels) <= fig_legend, (
                f"{name}: {len(labels)} labelled series and no legend naming them")
    for cax in (ax for ax in fig.axes if _is_colorbar(ax)):
        assert cax.get_ylabel() or cax.get_xlabel(), f"{name}: colour bar without a label"


@pytest.mark.parametrize("name", list(FIGURES))
def test_figures_save_as_png_and_svg(name, figures, tmp_path):
    png, svg = save_figure(figures[name], tmp_path, name)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    text = svg.read_text()
    assert "<svg" in text and svg.stat().st_size > 20_000


def test_make_figures_draws_every_kind(pieces):
    figs = make_figures(pieces["posterior"], prediction=pieces["prediction"],
                        proposals=pieces["proposals"], regret=pieces["regret"],
                        targets=pieces["targets"], truth=pieces["truth"])
    groups = {f"landscapes_{a}_{m}" for a in ("dense", "moe") for m in ("code", "web")}
    assert set(figs) == groups | {"laws", "predictive", "regret", "proposals"}
    for fig in figs.values():
        close(fig)


def test_landscape_shows_every_run_of_its_cell(pieces):
    posterior = pieces["posterior"]
    cell = posterior_cells(posterior).index[0]
    fig = plot_cell_landscapes(posterior, [cell])
    ax = fig.axes[0]
    close(fig)
    runs = posterior_runs(posterior)
    n_runs = int((runs["cell"] == cell).sum())
    shown = {c.get_label(): len(c.get_offsets()) for c in ax.collections
             if "run" in c.get_label()}
    assert sum(shown.values()) == n_runs
    assert shown["run above the window (censored)"] > 0


def test_cell_bowl_is_zero_at_each_draws_optimum_and_positive_elsewhere(pieces):
    posterior = pieces["posterior"]
    cell = posterior_cells(posterior).index[3]
    post = posterior["posterior"]
    lr0 = float(post["log_lr_opt"].sel(cell=cell).median())
    b0 = float(post["log_batch_opt"].sel(cell=cell).median())
    log_lr = lr0 + np.linspace(-1.5, 1.5, 61)
    log_b = b0 + np.linspace(-1.5, 1.5, 61)
    rel = cell_bowl(posterior, cell, log_lr, log_b, n_draws=100)
    assert rel.dims == ("sample", "lr", "batch")
    assert float(rel.min()) >= 0.0
    med = rel.median("sample")
    i, j = np.unravel_index(int(np.argmin(med.to_numpy())), med.shape)
    step = log_lr[1] - log_lr[0]
    assert abs(log_lr[i] - lr0) <= 3 * step and abs(log_b[j] - b0) <= 3 * step
    assert float(med.max()) > 0.005  # a 1.5-nat step away from the optimum costs > 0.5%


def test_ellipse_covers_its_probability():
    rng = np.random.default_rng(0)
    xy = rng.multivariate_normal([1.0, -2.0], [[1.0, 0.6], [0.6, 0.8]], size=20_000)
    ex, ey = ellipse(xy[:, 0], xy[:, 1], prob=0.9)
    inside = MplPath(np.column_stack([ex, ey])).contains_points(xy).mean()
    assert inside == pytest.approx(0.9, abs=0.01)


def test_law_slice_at_reference_is_the_intercept(pieces):
    posterior = pieces["posterior"]
    draws = law_slice(posterior, "lr", "dense", "web", [1e9], [1e11], n_draws=None)
    c_eta = posterior["posterior"]["c_eta"].sel(arch="dense", mix="web").stack(
        sample=("chain", "draw"))
    np.testing.assert_allclose(draws.isel(point=0).to_numpy(), c_eta.to_numpy(), atol=1e-12)


def test_adjusted_optima_at_own_scale_are_the_cell_optima(pieces):
    posterior = pieces["posterior"]
    cells = posterior_cells(posterior)
    cell = cells.index[2]
    adj = adjusted_cell_optima(posterior, "batch", n_tokens=cells.loc[cell, "n_tokens"],
                               n_params=cells.loc[cell, "n_params"], n_draws=None)
    raw = posterior["posterior"]["log_batch_opt"].sel(cell=cell).stack(sample=("chain", "draw"))
    np.testing.assert_allclose(adj.sel(cell=cell).to_numpy(), raw.to_numpy(), atol=1e-12)
    other = cells.index[0]
    moved = adj.sel(cell=other) - posterior["posterior"]["log_batch_opt"].sel(cell=other).stack(
        sample=("chain", "draw"))
    assert float(np.abs(moved).max()) > 0  # cells at another scale do move


def test_regret_grid_is_a_labelled_nonnegative_surface(pieces):
    grid = pieces["regret"]
    assert grid["expected_regret_pct"].dims == ("lr", "batch_tokens")
    assert grid.sizes == {"lr": 14, "batch_tokens": 12}
    assert float(grid["expected_regret_pct"].min()) >= 0
    # the least regret sits inside the grid, near the predictive optimum
    pct = grid["expected_regret_pct"]
    best = pct.where(pct == pct.min(), drop=True)
    med = float(pieces["prediction"].draws["lr_opt"].isel(target=0).median())
    assert abs(np.log(float(best["lr"][0]) / med)) < 0.5


def test_number_formats():
    assert fmt_sci(7e9) == "7e9" and fmt_sci(2.146e8) == "2.15e8" and fmt_sci(0.002) == "2e-3"
    assert [fmt_value(x) for x in (0, 1.7712, 0.0712, 0.00106, 7.67e6)] == [
        "0", "1.77", "0.0712", "1.06e-3", "7.67e6"]


def test_proposals_figure_labels_one_spot_once_and_names_the_objectives_score(pieces):
    """Picks at N = 5e7 and 49999999.99999998 (one cell computed two ways) are one spot with
    one label; the colour bar names the score of the objective used, not always EIG per
    FLOP."""
    import pandas as pd

    proposals = pieces["proposals"]
    one = proposals.iloc[[0]]
    extra = pd.concat([one.assign(group="a", n_params=5e7, n_tokens=1e11, selected=True),
                       one.assign(group="b", n_params=49999999.99999998,
                                  n_tokens=99999999999.99998, selected=True)])
    both = pd.concat([proposals.assign(selected=False), extra], ignore_index=True)
    both["score"] = np.geomspace(0.1, 10.0, len(both))  # colours whatever the fixture scored
    for objective, label in (("value", "value per FLOP"), ("total", "information gain (nats)")):
        both.attrs = {**proposals.attrs, "objective": objective,
                      "score_label": f"the {label}"}
        fig = plot_proposals(pieces["posterior"], both)
        try:
            ax = fig.axes[0]
            circles = [c for c in ax.collections
                       if c.get_label() in ("proposed next runs (pick order)", "_pick")]
            assert len(circles) == 1
            assert [t.get_text() for t in ax.texts if "\n" not in t.get_text()] == ["1, 2"]
            bar = next(a for a in fig.axes if a.get_label() == "<colorbar>")
            assert bar.get_ylabel() == f"best score: the {label}"
        finally:
            close(fig)
