"""The HTML report: one self-contained page with every section, embedded figures, no network
references, and the same numbers as the predictions it shows; the planning pipeline behind
it and the one rule for default targets and data mix."""

import base64
import html
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.predict.targets import default_mix, default_targets, make_target, mix_notes
from bayes_scaling.present.pipeline import Plan
from bayes_scaling.present.plots import make_figures
from bayes_scaling.present.plots_common import close, fmt_value
from bayes_scaling.present.report import build_report, render_plan, render_report, write_report

SECTIONS = ("data", "diagnostics", "laws", "targets", "proposals", "cells")


class _Refs(HTMLParser):
    """Collects every src/href and the ids of sections."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.ids: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for key, value in attrs:
            if key in ("src", "href", "srcset", "data", "action"):
                self.refs.append((tag, key, value or ""))
            if key == "id":
                self.ids.append(value)


def parse(page: str) -> _Refs:
    parser = _Refs()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def report(figure_pieces, tmp_path_factory):
    p = figure_pieces
    figures = make_figures(p["posterior"], prediction=p["prediction"], proposals=p["proposals"],
                           regret=p["regret"], targets=p["targets"], truth=p["truth"])
    page = render_report(p["posterior"], prediction=p["prediction"], proposals=p["proposals"],
                         regret=p["regret"], figures=figures, title="test report")
    path = write_report(page, tmp_path_factory.mktemp("report") / "report.html")
    for fig in figures.values():
        close(fig)
    return {"page": page, "path": path, "figures": figures, **p}


def test_report_has_every_section_and_figure(report):
    refs = parse(report["page"])
    assert set(SECTIONS) <= set(refs.ids)
    images = [value for tag, key, value in refs.refs if tag == "img"]
    assert len(images) == len(report["figures"])
    for value in images:
        assert value.startswith("data:image/png;base64,")
        png = base64.b64decode(value.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert {f"fig-{name}" for name in report["figures"]} <= set(refs.ids)


def test_report_needs_no_network(report):
    page = report["page"]
    assert not re.search(r"https?://", page)
    assert "<script" not in page and "@import" not in page and "url(" not in page
    for tag, key, value in parse(page).refs:
        assert value.startswith(("data:", "#")), f"<{tag} {key}={value[:60]}> is not embedded"


def test_report_sections_carry_the_numbers(report):
    page = report["page"]
    s = report["posterior"]["runs"].sizes["row"]
    assert f"<b>{s}</b> runs in <b>16</b> cells" in page
    for text in ("R-hat", "bulk ESS", "divergences", "E-BFMI", "90% interval", "published",
                 "steplaw", "powerlines", "least expected regret", "Selected next runs"):
        assert text.lower() in page.lower(), text
    summary = report["prediction"].summary.set_index(["target", "quantity"])
    lr = summary.loc[(0, "lr_opt"), "median"]
    assert f"peak lr <b>{fmt_value(lr)}</b>" in page
    picks = report["proposals"][report["proposals"]["selected"]]
    for group in picks["group"].unique():  # one row per pick, as `propose` prints them
        assert page.count(f"<td>{html.escape(group)}</td>") == 1, group
    assert html.escape(report["proposals"].attrs["score_label"]) in page


def test_report_lists_one_row_per_pick_as_propose_prints_them(cli_posterior_path):
    """d08d91e's page listed the top runs, one row per run with the group's rank and gain
    repeated; now the picks and the next best groups, one row each, in `propose`'s format
    (its runs counted, the target's intervals now -> after)."""
    import warnings

    from bayes_scaling.design.propose import propose
    from bayes_scaling.model.fit import load_posterior
    from bayes_scaling.present.text import proposal_groups

    posterior = load_posterior(cli_posterior_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked = propose(posterior, {"arch": "dense", "data_mix": "web", "n_params": 4e9,
                                     "n_tokens": 8e10}, k=3, seed=5, n_draws=200, n_outcomes=8,
                         objective="total")  # by total gain: mini-sweeps among the picks
    picks = ranked[ranked["selected"]]
    assert picks["group"].nunique() >= 1 and (picks.groupby("group").size() > 1).any()
    page = render_report(posterior, proposals=ranked)
    section = page.split('<section id="proposals">')[1].split("</section>")[0]
    tables = section.split("<table")[1:]
    assert len(tables) == 2  # the picks, then the next best groups
    rows = tables[0].split("<tbody>")[1].count("<tr>")
    assert rows == picks["group"].nunique()
    for group, runs in zip(*[proposal_groups(picks)[c] for c in ("group", "runs")],
                           strict=True):
        assert section.count(f"<td>{html.escape(group)}</td>") == 1, group
        assert f"<td>{runs}</td>" in tables[0]
    assert "lr_opt 90%: now -&gt; after" in tables[0] and "batch_opt 90%" in tables[1]
    assert html.escape(ranked.attrs["score_label"]) in section


def test_report_file_is_written(report):
    assert report["path"].read_text(encoding="utf-8") == report["page"]
    assert report["path"].stat().st_size > 200_000


def test_default_targets_go_ten_times_beyond_the_data(figure_pieces):
    posterior = figure_pieces["posterior"]
    targets = default_targets(posterior)
    assert list(targets["arch"]) == ["dense", "moe"]
    assert np.allclose(targets["n_params"], 10 * 2e8) and np.allclose(targets["n_tokens"],
                                                                      10 * 2e8 * 100)
    one = default_targets(posterior, 1e10, 3e11, ["moe"], "code")
    assert one.to_dict(orient="records") == [
        {"arch": "moe", "data_mix": "code", "n_params": 1e10, "n_tokens": 3e11}]


def test_one_rule_for_the_default_mix(figure_pieces, cli_posterior_path):
    from bayes_scaling.model.fit import load_posterior

    two = figure_pieces["posterior"]  # mixes code and web, 8 cells each: the tie goes first
    assert default_mix(two) == "code" and default_mix(two, "web") == "web"
    assert default_mix(two, "fresh") == "fresh"
    assert "chosen by default" in mix_notes(two, None)[0]
    assert "not in the fit (fitted: code, web)" in mix_notes(two, "fresh")[0]
    assert mix_notes(two, "web") == []
    one = load_posterior(cli_posterior_path)  # one mix: it is the default, nothing to say
    assert default_mix(one) == "web" and mix_notes(one, None) == []
    target = make_target(two, "moe", 1e9, 2e10)
    assert target["data_mix"] == default_targets(two)["data_mix"][0] == "code"
    assert target["batch_tokens"] is None and target["seq_len"] == 2048


def test_build_report_runs_the_pipeline_once(figure_pieces):
    posterior = figure_pieces["posterior"]
    targets = pd.DataFrame({"arch": ["moe"], "data_mix": ["code"], "n_params": [3e9],
                            "n_tokens": [6e11]})
    messages = []
    page, plan = build_report(posterior, targets, k=1, progress=messages.append)
    assert isinstance(plan, Plan) and plan.label == "moe / code, N=3e9, D=6e11"
    assert set(plan.figures) >= {"laws", "predictive", "regret", "proposals"}
    assert plan.proposals["selected"].any() and plan.regret is not None
    assert set(plan.seconds) == {"predict", "propose", "figures"}
    assert "moe / code, N=3e9, D=6e11" in page
    assert any(m.startswith("Choosing the next 1 run(s)") for m in messages)
    assert set(SECTIONS) <= set(parse(page).ids)
    again = render_plan(plan, title="same plan")  # rendering does not recompute anything
    assert "same plan" in again and set(SECTIONS) <= set(parse(again).ids)
    for fig in plan.figures.values():
        close(fig)
