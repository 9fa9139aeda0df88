"""One static HTML page about a fitted posterior: data, diagnostics, laws, the target's
predicted optimum, the expected regret, the proposed next runs and every figure.

The page is self-contained: figures are embedded as base64 PNG, the style is inline, and it
references nothing on the network (it opens offline and in a headless browser).
"""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from bayes_scaling import __version__
from bayes_scaling.data import from_frame
from bayes_scaling.model import core, laws
from bayes_scaling.model.fit import diagnose, posterior_runs
from bayes_scaling.predict.predict import Prediction
from bayes_scaling.present.pipeline import Plan, plan
from bayes_scaling.present.plots_common import fmt_sci, fmt_value
from bayes_scaling.present.plots_target import target_label
from bayes_scaling.present.summary import law_table
from bayes_scaling.present.text import proposal_groups

CAPTIONS = {
    "laws": "Optimal peak learning rate (top) and batch size (bottom) against N and against D, "
            "sliced through the first target. Lines and bands: the fitted law's posterior median "
            "and 90% band per architecture and data mix (the mean law, without the cell-level "
            "scatter). Points: each data cell's posterior optimum moved along the fitted law to "
            "the slice, with 90% error bars. Dashed and dotted: the Step Law and DeepSeek laws.",
    "predictive": "Posterior predictive optimum at each target: median (printed), 50% and 90% "
                  "intervals. These include the scatter of a new cell around the law. Square "
                  "and diamond: Step Law and DeepSeek; triangle: Power Lines' weight decay at "
                  "the predicted lr and batch.",
    "regret": "Expected regret of running the first target at each (lr, batch): the loss "
              "increase over each posterior draw's own optimum, averaged over draws, in % of "
              "the optimal loss (weight decay at its best for that lr and batch). The star is "
              "the safest choice; the published laws' choices are marked with their regret.",
    "proposals": "The (N, D) plane: the fitted data cells, candidate cells coloured by their best "
                 "score (the objective's, named on the colour bar), the selected next runs "
                 "(numbered in pick order, listed below the plane) and the target.",
    "landscapes": "Each cell's runs over (lr, batch), coloured by their loss above the cell's best "
                  "run; open circles are above the fit window and crosses diverged (both enter "
                  "the fit as censored). Contours: the fitted bowl (posterior median of the loss "
                  "above the optimum, weight decay at its optimum). Red: posterior draws of the "
                  "optimum and their 90% credible ellipse.",
}

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:1280px;margin:auto;padding:1.5em 2em;background:#fff}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.meta{color:#666;font-size:.9em}
table.tbl{border-collapse:collapse;font-size:.85em;margin:.6em 0}
table.tbl th,table.tbl td{border:1px solid #ddd;padding:3px 8px;text-align:right}
table.tbl th{background:#f0f0f0}table.tbl td:first-child{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#444;max-width:1100px}
.ok{color:#186a1d;font-weight:600}.bad{color:#a31515;font-weight:600}
.box{background:#f4f8ff;border:1px solid #c9dafc;padding:.6em 1em;border-radius:6px}
nav a{margin-right:1em}
"""


def figure_png_base64(fig: Figure, dpi: int = 100) -> str:
    """A figure as a base64-encoded PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(name: str, fig: Figure | Path | str) -> str:
    data = (base64.b64encode(Path(fig).read_bytes()).decode("ascii")
            if isinstance(fig, (str, Path)) else figure_png_base64(fig))
    key = "landscapes" if name.startswith("landscapes") else name
    caption = CAPTIONS.get(key, "")
    return (f'<figure id="fig-{html.escape(name)}"><img alt="{html.escape(name)}" '
            f'src="data:image/png;base64,{data}"><figcaption><b>{html.escape(name)}</b>. '
            f"{html.escape(caption)}</figcaption></figure>")


def _table(df: pd.DataFrame, digits: int = 3) -> str:
    def cell(v: object) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else fmt_value(float(v), digits)
        return str(v)

    return df.map(cell).to_html(index=False, escape=True, classes="tbl", border=0)


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def _data_section(posterior: xr.DataTree) -> str:
    window = float(posterior.attrs["window"])
    sweep = from_frame(posterior_runs(posterior), source=str(posterior.attrs["data_source"]))
    s = sweep.summary(window)
    ranges = pd.DataFrame([{"column": c, "min": v[0] if v else np.nan,
                            "max": v[1] if v else np.nan} for c, v in s["ranges"].items()])
    reasons = pd.DataFrame([{"censored because": k, "runs": v} for k, v in s["censored"].items()])
    excluded = posterior["excluded"].to_dataset().sizes.get("excluded_row", 0)
    cells = sweep.cells().reset_index(drop=True)[
        ["arch", "data_mix", "n_params", "n_tokens", "n_runs", "n_ok", "n_diverged",
         "best_loss", "n_lr", "n_batch"]]
    body = (f"<p>Source <code>{html.escape(s['source'])}</code>: <b>{s['runs']}</b> runs in "
            f"<b>{s['cells']}</b> cells; architectures {', '.join(s['archs'])}; data mixes "
            f"{', '.join(s['data_mixes'])}. Fit window {window:g}: runs with a loss more than "
            f"{100 * window:g}% above their cell's best, and diverged runs, enter as censored "
            f"observations (loss above the window edge). Censored: <b>{s['n_censored']}</b> "
            f"(diverged {s['n_diverged']}); excluded from the fit: <b>{excluded}</b>. "
            f"Data hash <code>{s['data_hash'][:12]}</code>.</p>")
    body += _table(ranges) + (_table(reasons) if len(reasons) else "")
    if s["warnings"]:
        body += "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in s["warnings"]) + "</ul>"
    body += f"<details><summary>All {len(cells)} cells</summary>{_table(cells)}</details>"
    return _section("data", "Data", body)


def _diagnostics_section(posterior: xr.DataTree) -> str:
    d = diagnose(posterior)
    status = ('<span class="ok">no problems</span>' if d.ok else
              '<span class="bad">problems</span>: <ul>' + "".join(
                  f"<li>{html.escape(p)}</li>" for p in d.problems) + "</ul>")
    overview = pd.DataFrame([{
        "max R-hat": d.max_rhat, "min bulk ESS": d.min_ess_bulk, "min tail ESS": d.min_ess_tail,
        "divergences": f"{d.divergences} / {d.n_draws}",
        "E-BFMI per chain": ", ".join(f"{e:.2f}" for e in d.ebfmi),
        "sampling time (s)": float(posterior.attrs.get("fit_seconds", np.nan))}])
    table = d.summary.reset_index(names="parameter")
    body = (f"<p>Sampling diagnostics of the law parameters: {status}</p>{_table(overview)}"
            f"<details><summary>R-hat, ESS and MCSE per parameter</summary>{_table(table)}"
            "</details>")
    return _section("diagnostics", "Sampling diagnostics", body)


def _laws_section(posterior: xr.DataTree, figures: dict) -> str:
    t = law_table(posterior)
    t = t.assign(interval=[f"[{fmt_value(lo, 4)}, {fmt_value(hi, 4)}]"
                           for lo, hi in zip(t["lo"], t["hi"], strict=True)])
    t = t[["parameter", "arch", "mix", "median", "interval", "published", "published_by"]]
    t = t.rename(columns={"interval": "90% interval", "published_by": "published by"})
    body = ("<p>Natural logs; lr and batch (tokens) intercepts c_eta, c_batch at N = "
            f"{fmt_sci(core.N_REF)}, D = {fmt_sci(core.D_REF)}; the AdamW timescale law "
            f"log tau = c_tau + g_tpp log(TPP / {core.TPP_REF:g}). Published values are the "
            "Step Law and Power Lines numbers in the same parametrisation.</p>" + _table(t, 4))
    if "laws" in figures:
        body += _img("laws", figures["laws"])
    return _section("laws", "Scaling laws (90% intervals)", body)


def _published_rows(targets: pd.DataFrame) -> pd.DataFrame:
    pub = laws.published_optima(targets["n_params"], targets["n_tokens"])
    pub = pub[pub["law"].isin(["steplaw", "deepseek"])].drop_duplicates(
        ["law", "n_params", "n_tokens"])
    return pub[["law", "n_params", "n_tokens", "lr_opt", "batch_tokens_opt",
                "weight_decay_opt"]].rename(columns={
                    "weight_decay_opt": "weight_decay_opt (Power Lines at that lr, B)"})


def _prediction_section(prediction: Prediction, regret: xr.Dataset | None,
                        figures: dict) -> str:
    s = prediction.summary
    s = s.assign(target=[target_label(r) for _, r in s.iterrows()],
                 **{"50% interval": [f"[{fmt_value(a)}, {fmt_value(b)}]"
                                     for a, b in zip(s["lo50"], s["hi50"], strict=True)],
                    "90% interval": [f"[{fmt_value(a)}, {fmt_value(b)}]"
                                     for a, b in zip(s["lo90"], s["hi90"], strict=True)]})
    s = s[["target", "quantity", "median", "50% interval", "90% interval"]]
    targets = pd.DataFrame({c: prediction.draws[c].values
                            for c in ("arch", "data_mix", "n_params", "n_tokens")})
    body = ""
    first = s[s["target"] == target_label(targets.iloc[0])].set_index("quantity")
    rec = [f"peak lr <b>{fmt_value(first.loc['lr_opt', 'median'])}</b> "
           f"(90%: {first.loc['lr_opt', '90% interval']})",
           f"batch <b>{fmt_value(first.loc['batch_tokens_opt', 'median'])}</b> tokens "
           f"(90%: {first.loc['batch_tokens_opt', '90% interval']})",
           f"AdamW weight decay <b>{fmt_value(first.loc['weight_decay_opt', 'median'])}</b> "
           f"(90%: {first.loc['weight_decay_opt', '90% interval']})"]
    body += (f'<div class="box"><p>For <b>{html.escape(target_label(targets.iloc[0]))}</b> the '
             f"posterior predictive optimum is: {'; '.join(rec)}.")
    if regret is not None:
        pct = regret["expected_regret_pct"]
        best = pct.where(pct == pct.min(), drop=True)
        body += (f" The (lr, batch) with the least expected regret on the grid is lr "
                 f"<b>{fmt_value(float(best['lr'][0]))}</b>, batch "
                 f"<b>{fmt_value(float(best['batch_tokens'][0]))}</b> tokens, expected to cost "
                 f"{float(pct.min()):.2g}% of the optimal loss.")
    body += "</p></div>" + _table(s)
    body += "<p>Published laws at the same targets:</p>" + _table(_published_rows(targets))
    for name in ("predictive", "regret"):
        if name in figures:
            body += _img(name, figures[name])
    return _section("targets", "Target predictions", body)


def _proposals_section(proposals: pd.DataFrame, figures: dict, n_rows: int = 12) -> str:
    """The verdict, the picks (one row per pick, in selection order) and the next best
    groups, in the table format of ``propose`` (:func:`~.text.proposal_groups`)."""
    picks = proposals[proposals["selected"]]
    rest = proposals[~proposals["selected"] & proposals["score"].notna()]
    rest = rest[rest["group"].isin(rest["group"].drop_duplicates().head(n_rows))]
    spent = proposals.attrs.get("spent_flops")
    verdict = proposals.attrs.get("verdict")
    body = f"<p><b>{html.escape(verdict)}</b></p>" if verdict else ""
    body += ("<p>Each row is a group of runs done together (a mini-sweep of one cell, or one "
             f"run). score: {html.escape(proposals.attrs.get('score_label', 'score'))}; "
             "value_flops: the target compute that would buy as much loss as the group's "
             "expected drop of the target's regret; lr_opt and batch_opt (tokens): the target's "
             "median [90% interval] now -> its expected 90% interval after the group (and the "
             "earlier picks), centred on today's median.</p>")
    if len(picks):
        body += ("<p>Selected next runs, in pick order (each later pick assumes a simulated "
                 "outcome of the earlier ones):</p>" + _table(proposal_groups(picks)))
    if spent:
        body += f"<p>Total cost of the picks: {fmt_sci(spent)} FLOPs (6ND).</p>"
    if len(rest):
        body += (f"<p>Next best {rest['group'].nunique()} candidate groups, by rank:</p>"
                 + _table(proposal_groups(rest)))
    if "proposals" in figures:
        body += _img("proposals", figures["proposals"])
    return _section("proposals", "Next runs to do", body)


def render_report(posterior: xr.DataTree, *, prediction: Prediction | None = None,
                  proposals: pd.DataFrame | None = None, regret: xr.Dataset | None = None,
                  figures: dict[str, Figure | Path] | None = None,
                  title: str = "bayes_scaling report", notes: tuple[str, ...] = ()) -> str:
    """The report as one HTML string from already computed pieces (any may be None)."""
    figures = figures or {}
    a = posterior.attrs
    sections = [_data_section(posterior), _diagnostics_section(posterior),
                _laws_section(posterior, figures)]
    if prediction is not None:
        sections.append(_prediction_section(prediction, regret, figures))
    if proposals is not None:
        sections.append(_proposals_section(proposals, figures))
    lands = [n for n in figures if n.startswith("landscapes")]
    if lands:
        sections.append(_section("cells", "Cells: loss landscapes",
                                 "".join(_img(n, figures[n]) for n in lands)))
    nav = "".join(f'<a href="#{k}">{v}</a>' for k, v in (
        ("data", "Data"), ("diagnostics", "Diagnostics"), ("laws", "Laws"),
        ("targets", "Targets"), ("proposals", "Next runs"), ("cells", "Cells")))
    meta = (f"model spec <b>{html.escape(str(a.get('spec_name', '')))}</b> "
            f"(hash {html.escape(str(a.get('spec_hash', ''))[:12])}); fitted "
            f"{html.escape(str(a.get('created', '')))} with bayes_scaling "
            f"{html.escape(str(a.get('bayes_scaling_version', '')))}, seed {a.get('seed', '')}; "
            f"report by bayes_scaling {__version__} on {time.strftime('%Y-%m-%d %H:%M')}")
    notes_html = "".join(f"<p class='meta'>{html.escape(n)}</p>" for n in notes)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{html.escape(title)}</h1><p class='meta'>{meta}</p>{notes_html}"
            f"<nav>{nav}</nav>{''.join(sections)}</main></body></html>")


def render_plan(plan: Plan, *, figures: dict[str, Figure | Path] | None = None,
                title: str | None = None, notes: tuple[str, ...] = ()) -> str:
    """The report of a :class:`~bayes_scaling.present.pipeline.Plan` (``figures`` default:
    the plan's; give saved PNG paths to embed those instead)."""
    return render_report(plan.posterior, prediction=plan.prediction, proposals=plan.proposals,
                         regret=plan.regret, figures=plan.figures if figures is None else figures,
                         title=title or f"bayes_scaling report: planning {plan.label}",
                         notes=(*plan.notes, *notes))


def build_report(posterior: xr.DataTree, targets: pd.DataFrame | None = None, *,
                 k: int = 3, seed: int = 0, regret: bool = True,
                 budget_flops: float | None = None,
                 progress: Callable[[str], None] | None = None) -> tuple[str, Plan]:
    """Run the planning pipeline (:func:`~bayes_scaling.present.pipeline.plan`; targets
    default: :func:`~bayes_scaling.predict.targets.default_targets`) and render its report.
    Returns (html, plan)."""
    result = plan(posterior, targets, k=k, seed=seed, budget_flops=budget_flops, regret=regret,
                  step=progress, progress=progress)
    return render_plan(result), result


def write_report(page: str, out: str | Path) -> Path:
    """Write an HTML page (from :func:`render_report` / :func:`build_report`)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
