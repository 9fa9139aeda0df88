"""Results as terminal text and as JSON-ready dicts (what the CLI and the demo print)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_scaling.model import core

if TYPE_CHECKING:  # the CLI imports this module: keep it light
    from bayes_scaling.data import Sweep
    from bayes_scaling.predict.targets import Comparison

PREDICT_ROWS = ("lr_opt", "batch_tokens_opt", "batch_seqs_opt", "weight_decay_opt", "tau_opt",
                "loss_opt", "lr_opt_at_batch", "weight_decay_opt_at_batch", "loss_opt_at_batch")
PREDICT_LAWS = ("steplaw", "deepseek", "powerlines")
_PUBLISHED_COLUMN = {"batch_seqs_opt": "batch_sequences_opt"}
PROPOSE_COLUMNS = ("rank", "group", "arch", "data_mix", "n_params", "n_tokens", "lr",
                   "batch_tokens", "weight_decay", "cost_flops", "group_cost_flops", "score",
                   "value_flops", "value_pct", "regret_after_pct", "worth_running", "eig_nats",
                   "new_cell", "scored_by")
_SHOWN_QUANTITIES = ("lr_opt", "batch_tokens_opt", "batch_seqs_opt", "weight_decay_opt",
                     "loss_opt")


def finite(value: float) -> float | None:
    """A float for JSON: None for NaN/inf."""
    return float(value) if np.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _fmt_range(values: list[float] | None) -> str:
    return "unknown (all missing)" if values is None else f"{values[0]:.4g} .. {values[1]:.4g}"


def validation_text(sweep: Sweep, window: float = core.DEFAULT_WINDOW,
                    max_rows: int = 20) -> str:
    """The human-readable validation report printed by ``bayes-scaling validate``."""
    summary = sweep.summary(window)
    lines = [f"sweep: {sweep.source}",
             f"runs: {summary['runs']} in {summary['cells']} cells; "
             f"archs: {', '.join(summary['archs'])}; "
             f"data mixes: {', '.join(summary['data_mixes'])}"]
    lines += [f"  {name:<13} {_fmt_range(values)}" for name, values in summary["ranges"].items()]
    lines.append(f"diverged: {summary['n_diverged']}; censored: {summary['n_censored']} "
                 f"(window {window:g}); excluded: {summary['n_excluded']}")
    lines += [f"  censored, {reason}: {count}" for reason, count in summary["censored"].items()]
    lines += ["", "cells:", sweep.cells().to_string(float_format=lambda x: f"{x:.4g}")]
    report = sweep.exclusion_report(window)
    if len(report):
        shown = report if max_rows <= 0 else report.head(max_rows)
        lines += ["", f"censored and excluded rows ({len(shown)} of {len(report)} shown; "
                  "--max-rows 0 shows all, --json gives counts):",
                  shown.to_string(index=False)]
    if summary["warnings"]:
        lines += ["", "warnings:", *[f"  - {w}" for w in summary["warnings"]]]
    if summary["design"]:
        lines += ["", "what this design cannot tell the model:",
                  *[f"  - {w}" for w in summary["design"]]]
    return "\n".join(lines)


def comparison_result(comparison: Comparison) -> dict:
    """A :class:`~bayes_scaling.predict.targets.Comparison` as one JSON-ready dict (what
    ``bayes-scaling predict --json`` prints, without the file and seed)."""
    result: dict = {"target": comparison.target, "notes": comparison.notes}
    for row in comparison.prediction.summary.to_dict(orient="records"):
        result[row["quantity"]] = {k: finite(row[k]) for k in
                                   ("median", "mean", "lo50", "hi50", "lo90", "hi90")}
    by_law = comparison.published.set_index("law")
    result["published"] = {
        law: {q: finite(by_law.loc[law, _PUBLISHED_COLUMN.get(q, q)])
              for q in ("lr_opt", "batch_tokens_opt", "batch_seqs_opt", "weight_decay_opt",
                        "tau_opt") if law == "powerlines" or q != "tau_opt"}
        for law in PREDICT_LAWS}
    result["regret"] = [
        {"choice": r.choice, "lr": finite(r.lr), "batch_tokens": finite(r.batch_tokens),
         "expected_regret": finite(r.expected_regret),
         "expected_regret_pct": finite(r.expected_regret_pct),
         "regret_pct_lo90": finite(r.regret_pct_lo), "regret_pct_hi90": finite(r.regret_pct_hi)}
        for r in comparison.regret.itertuples()]
    return result


def predict_text(result: dict) -> str:
    """The table printed by ``bayes-scaling predict`` from :func:`comparison_result`."""
    t = result["target"]
    lines = [f"target: {t['arch']}, mix {t['data_mix']}, N = {t['n_params']:.4g} params, "
             f"D = {t['n_tokens']:.4g} tokens, seq_len {t['seq_len']:g}"
             + (f", batch fixed at {t['batch_tokens']:.4g} tokens" if t["batch_tokens"] else ""),
             *[f"note: {n}" for n in result["notes"]], "",
             f"{'quantity':<26}{'median':>11}  {'90% interval':<24}"
             + "".join(f"{law:>12}" for law in PREDICT_LAWS)]
    for q in PREDICT_ROWS:
        if q not in result:
            continue
        r = result[q]
        band = f"[{_fmt(r['lo90'])}, {_fmt(r['hi90'])}]"
        pub = "".join(f"{_fmt(result['published'][law].get(q)):>12}" for law in PREDICT_LAWS)
        lines.append(f"{q:<26}{_fmt(r['median']):>11}  {band:<24}{pub}")
    lines += ["", "expected regret: loss increase over each draw's optimum (weight decay at "
              "its best for each choice); % of the optimal loss, 90% interval",
              f"{'choice':<31}{'lr':>10}{'batch_tokens':>14}{'regret':>10}{'regret %':>10}"
              f"  {'90% interval':<18}"]
    for r in result["regret"]:
        lines.append(f"{r['choice']:<31}{_fmt(r['lr']):>10}{_fmt(r['batch_tokens']):>14}"
                     f"{_fmt(r['expected_regret']):>10}{_fmt(r['expected_regret_pct']):>10}"
                     f"  [{_fmt(r['regret_pct_lo90'])}, {_fmt(r['regret_pct_hi90'])}]")
    if "max_batch" in result:
        lines += ["", max_batch_text(result["max_batch"])]
    return "\n".join(line.rstrip() for line in lines)


def max_batch_text(mb: dict) -> str:
    """The largest safe batch in words (from :meth:`MaxBatch.to_dict`)."""
    b, tol = mb["max_batch_tokens"], mb["tolerance_pct"]
    spread = (f"each posterior draw's own largest batch: median {_fmt(b['median'])}, 90% "
              f"interval [{_fmt(b['lo90'])}, {_fmt(b['hi90'])}] tokens")
    if b["point"] is None:
        return (f"largest safe batch (expected regret <= {_fmt(tol)}%): none; the uncertainty "
                f"about the optimum alone costs {_fmt(mb['expected_regret_pct'])}% at the best "
                f"batch ({spread})\n{critical_batch_text(mb)}")
    return (f"largest safe batch (expected regret <= {_fmt(tol)}%, lr re-optimised): "
            f"{_fmt(b['point'])} tokens with lr {_fmt(mb['lr'])} (batch_opt "
            f"{_fmt(mb['batch_opt_tokens'])}); {spread}\n{critical_batch_text(mb)}")


def critical_batch_text(mb: dict) -> str:
    """The critical batch in words (from :meth:`MaxBatch.to_dict`)."""
    c = mb["critical_batch_tokens"]
    source = ("" if mb["critical_from_data"] else "; the sweep does not vary D apart from N (or "
              "never varies the batch), so this rests on the priors")
    return (f"critical batch (beyond it, matching the loss of an optimally-batched run takes "
            f"more than twice the tokens): median {_fmt(c['median'])} tokens, 90% interval "
            f"[{_fmt(c['lo90'])}, {_fmt(c['hi90'])}]{source}")


def propose_records(frame: pd.DataFrame) -> list[dict]:
    """Rows of a ranked proposal table as JSON-ready dicts (the shown columns only)."""
    cols = [c for c in frame.columns if c in PROPOSE_COLUMNS or "90_" in c]
    return [{k: (finite(v) if isinstance(v, float) else v.item() if hasattr(v, "item") else v)
             for k, v in row.items()} for row in frame[cols].to_dict(orient="records")]


def propose_result(ranked: pd.DataFrame, target: dict, k: int, budget_flops: float | None,
                   show: int = 8) -> dict:
    """What ``bayes-scaling propose --json`` prints: the picks and the next best groups."""
    picks = ranked[ranked["selected"]]
    rest = ranked[~ranked["selected"] & ranked["score"].notna()]
    alt = rest[rest["group"].isin(rest["group"].drop_duplicates().head(show))]
    return {"target": target, "budget_flops": budget_flops,
            "spent_flops": ranked.attrs["spent_flops"], "k": k,
            "objective": ranked.attrs["objective"],
            "score_label": ranked.attrs.get("score_label"),
            "target_now": ranked.attrs.get("target_now"),
            "regret_before_pct": finite(ranked.attrs["regret_before_pct"]),
            "regret_after_pct": finite(ranked.attrs["regret_after_pct"]),
            "verdict": ranked.attrs["verdict"],
            "candidates": int(ranked["group"].nunique()), "runs": propose_records(picks),
            "alternatives": propose_records(alt)}


def _span(values: pd.Series) -> str:
    """'1.3e-3' for one value, '8.6e-4..3.5e-3' for several."""
    lo, hi = values.min(), values.max()
    return f"{lo:.3g}" if lo == hi else f"{lo:.3g}..{hi:.3g}"


INTERVAL_COLUMNS = {"lr": "lr_opt 90%: now -> after", "batch": "batch_opt 90%: now -> after"}
"""The target quantity (a ``dims`` name of the proposal table) -> the column of
:func:`proposal_groups` with its 90% interval now and after the group."""


def _change(now: dict, lo_after: float, hi_after: float) -> str:
    """'8.5e-4 [6.4e-4, 1.1e-3] -> [7e-4, 1e-3]': the median and 90% interval now, and the
    expected interval after (see :func:`bayes_scaling.design.propose._intervals`)."""
    from bayes_scaling.present.plots_common import fmt_value  # local: loads matplotlib

    f = lambda x: fmt_value(x, 2)  # noqa: E731
    return (f"{f(now['median'])} [{f(now['lo90'])}, {f(now['hi90'])}] -> "
            f"[{f(lo_after)}, {f(hi_after)}]")


def proposal_groups(ranked: pd.DataFrame) -> pd.DataFrame:
    """One row per candidate group, in rank order: where (arch, N, D), how many runs, their
    lr and batch spans, the group's cost, score, value, regret after, information gain, and
    the target's optimal lr and batch (tokens) now -> after the group: median [90% interval]
    now -> the expected 90% interval after (normal on the log scale, centred on today's
    median: ``ranked.attrs["target_now"]`` and the ``{q}_lo90_after``, ``{q}_hi90_after``
    columns of :func:`bayes_scaling.design.propose.propose`). A later pick's "after" is after
    it and the earlier picks."""
    now = ranked.attrs.get("target_now") or {}
    rows = []
    for group, g in ranked.groupby("group", sort=False):
        first = g.iloc[0]
        row = {"rank": first["rank"], "group": group, "N": f"{first['n_params']:.3g}",
               "D": f"{first['n_tokens']:.3g}", "runs": len(g), "lr": _span(g["lr"]),
               "batch_tokens": _span(g["batch_tokens"]), "cost_flops": first["group_cost_flops"]}
        for c in ("score", "value_flops", "worth_running", "regret_after_pct", "eig_nats"):
            if c in g:
                row[c] = first[c]
        for q, name in INTERVAL_COLUMNS.items():
            lo, hi = first.get(f"{q}_lo90_after", np.nan), first.get(f"{q}_hi90_after", np.nan)
            if q in now and np.isfinite(lo) and np.isfinite(hi):
                row[name] = _change(now[q], lo, hi)
        rows.append(row)
    return pd.DataFrame(rows)


def groups_text(ranked: pd.DataFrame) -> str:
    """:func:`proposal_groups` as a text table: the header, then one row per group (what
    ``propose``, ``report`` and ``demo`` print)."""
    return proposal_groups(ranked).to_string(index=False, float_format=lambda x: f"{x:.4g}",
                                             na_rep="-")


def propose_text(ranked: pd.DataFrame, result: dict, notes: list[str] = ()) -> str:
    """The tables printed by ``bayes-scaling propose``: one row per pick (in selection order)
    and per next-best group, each with its runs' spans."""
    t = result["target"]
    lines = [f"target: {t['arch']} / {t['data_mix']}, N = {t['n_params']:.3g}, "
             f"D = {t['n_tokens']:.3g}; {result['candidates']} candidate groups scored by "
             f"{result.get('score_label') or 'score'} (the picks first, then by score); "
             "value_flops = the target compute that would buy as much loss as the group's "
             "expected drop of the target's regret; lr_opt, "
             "batch_opt (tokens): the target's median [90% interval] now -> its expected 90% "
             "interval after the group (and the earlier picks), centred on today's median",
             *[f"note: {n}" for n in notes],
             f"expected regret at the target now: {result['regret_before_pct']:.3g}% of its "
             f"loss", f"verdict: {result['verdict']}"]
    picks = ranked[ranked["selected"]]
    shown = {r["group"] for r in result["alternatives"]}
    alt = ranked[~ranked["selected"] & ranked["group"].isin(shown)]
    if not picks.empty:
        budget = "" if result["budget_flops"] is None else f" of {result['budget_flops']:.3g}"
        lines.append(f"\npicked, in selection order ({result['spent_flops']:.3g}{budget} FLOPs):\n"
                     + groups_text(picks))
    if not alt.empty:
        lines.append("\nnext best:\n" + groups_text(alt))
    lines.append("\n(--json lists every run of each group)")
    return "\n".join(lines)


def quantity_table(summary: pd.DataFrame) -> str:
    """The main predicted optima per target (median, 50% and 90% intervals) as text."""
    from bayes_scaling.present.plots_common import fmt_sci  # local: loads matplotlib

    keep = summary[summary["quantity"].isin(_SHOWN_QUANTITIES)]
    out = keep.assign(target=[f"{r.arch}/{r.data_mix} N={fmt_sci(r.n_params)} "
                              f"D={fmt_sci(r.n_tokens)}" for r in keep.itertuples()])
    return out[["target", "quantity", "median", "lo50", "hi50", "lo90", "hi90"]].to_string(
        index=False, float_format=lambda x: f"{x:.4g}")


def picks_table(proposals: pd.DataFrame) -> str:
    """The verdict and the selected next runs as text, one row per pick in selection order
    (:func:`groups_text`, as ``propose`` prints them)."""
    picks = proposals[proposals["selected"]]
    verdict = proposals.attrs.get("verdict", "")
    return verdict if picks.empty else verdict + "\n" + groups_text(picks)


def prior_text(table: pd.DataFrame, spec_name: str) -> str:
    """What ``bayes-scaling check --prior`` prints: the prior 90% ranges per cell and target
    next to the cells' best runs, and how many best runs lie inside."""
    fmt = lambda x: f"{x:.3g}"  # noqa: E731
    wide = table.pivot_table(index=["where", "label"], columns="quantity",
                             values=["lo90", "hi90", "observed"], aggfunc="first", sort=False)
    lines = [f"prior predictive ({spec_name} spec): 90% ranges implied by the priors alone"]
    for q in ("lr_opt", "batch_tokens_opt", "loss_opt"):
        cells = table[(table["where"] == "cell") & (table["quantity"] == q)]
        lines.append(f"  {q}: the cell's best run lies inside the prior range in "
                     f"{int(cells['inside'].sum())} of {len(cells)} cells")
    rows = [{"where": f"{w}: {label}",
             **{q: f"[{fmt(wide.loc[(w, label), ('lo90', q)])}, "
                   f"{fmt(wide.loc[(w, label), ('hi90', q)])}]"
                   + ("" if w == "target" else
                      f" best {fmt(wide.loc[(w, label), ('observed', q)])}")
                for q in ("lr_opt", "batch_tokens_opt", "loss_opt")}}
            for w, label in wide.index]
    return "\n".join(lines) + "\n" + pd.DataFrame(rows).to_string(index=False)
