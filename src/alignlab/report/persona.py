"""The persona sections of the evals report, and the persona report that shows only them.

Three optional inputs, each from ``alignlab persona``: ``persona.json`` (the persona-space scatter
of role and trait means on PC1/PC2, trait AUROCs and steering curves), ``drift.json`` (each
conversation's position on the persona axis turn by turn, per-type means and attractors) and
``capping.json`` (harmful / attempted / refused rates under activation capping, paired tests and
example replies). ``persona_sections`` checks and prepares them for the page template; the evals
report (:mod:`alignlab.report.evals`) embeds them after its suites, and
``render_persona_report`` / ``write_persona_report`` draw them on a page of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from alignlab.report.charts import CHART_WIDTH, TEXT_COLOR, xy_chart_svg
from alignlab.report.evals_common import (
    check_count,
    check_finite,
    check_obj,
    check_pair,
    check_prob,
    check_rate,
    fmt_ci_pp,
    fmt_num,
    fmt_p,
    fmt_pp,
    render_page,
    write_html,
)
from alignlab.report.page import clip
from alignlab.report.svg import bar_chart_svg, format_pct

MAX_CONVERSATIONS_SHOWN = 200
"""Drift conversations drawn (as lines and readable turns) at most."""
PALETTE = ["#3b6fb6", "#b5473a", "#3f8f5a", "#c7881c", "#7a4fb0", "#2a8f9d", "#8a5a44", "#c2508a"]
"""Series colours, in order of first appearance."""
KIND_COLORS = {"default": "#1f2733", "role": "#3b6fb6", "trait+": "#c7881c", "trait-": "#2a8f9d"}
"""Colour of each kind of point in the persona-space scatter (other kinds take PALETTE colours)."""
CONDITIONS = ["none", "axis_cap", "random_cap"]
"""Activation-capping conditions, in display order."""


# --- colours -----------------------------------------------------------------------------------

def _colors(names: Sequence[str], fixed: dict[str, str] | None = None) -> dict[str, str]:
    fixed = fixed or {}
    free = [n for n in dict.fromkeys(names) if n not in fixed]
    return {**{n: PALETTE[i % len(PALETTE)] for i, n in enumerate(free)},
            **{n: c for n, c in fixed.items() if n in names}}


# --- persona, drift, capping ------------------------------------------------------------------

def _persona(p: Any) -> dict[str, Any] | None:
    if p is None:
        return None
    p = check_obj(p, "persona", "persona.json")
    axis = check_obj(p.get("axis"), "persona.axis", "cos_pc1, explained_variance, ...")
    ev = [check_finite(v, "persona.axis.explained_variance") for v in axis.get("explained_variance") or []]
    pts: list[dict[str, Any]] = []
    kinds: list[str] = []
    for i, q in enumerate(p.get("points") or []):
        q = check_obj(q, f"persona.points[{i}]", "name, kind, x, y, axis")
        x, y = (check_finite(q.get(k), f"persona.points[{i}].{k}") for k in ("x", "y"))
        if x is None or y is None:
            continue
        kinds.append(str(q.get("kind") or "?"))
        a = check_finite(q.get("axis"), f"persona.points[{i}].axis")
        pts.append({"x": x, "y": y, "label": str(q.get("name") or ""), "attrs": {"kind": kinds[-1]},
                    "tip": f"{q.get('name')} ({kinds[-1]}): PC1 {x:.3g}, PC2 {y:.3g}"
                           + ("" if a is None else f", axis {a:.3g}")})
    colors = _colors(kinds, KIND_COLORS)
    for pt in pts:
        pt["color"] = colors[pt["attrs"]["kind"]]
    pc = [f"PC{j + 1}" + ("" if v is None else f" ({format_pct(v)} of variance)")
          for j, v in enumerate((ev + [None, None])[:2])]
    scatter = xy_chart_svg("Persona means on PC1 and PC2", pc[0], pc[1], points=pts,
                           legend=list(colors.items()), chart_id="chart-persona",
                           label_points=len(pts) <= 60, height=420) if pts else None
    traits = []
    for i, t in enumerate(p.get("traits") or []):
        w = f"persona.traits[{i}]"
        t = check_obj(t, w, "name, auroc, auroc_ci, gap_sd, n_test, steer")
        st = check_obj(t.get("steer"), f"{w}.steer", "coefficients, score, ci, slope, scorer")
        xs = [check_finite(v, f"{w}.steer.coefficients") for v in st.get("coefficients") or []]
        ys = [check_finite(v, f"{w}.steer.score") for v in st.get("score") or []]
        cis = [check_pair(c, f"{w}.steer.ci", False) for c in st.get("ci") or []]
        if len(ys) != len(xs) or (cis and len(cis) != len(xs)):
            raise ValueError(f"{w}.steer: coefficients, score and ci must have equal lengths, got "
                             f"{len(xs)}, {len(ys)}, {len(cis)}")
        keep = [j for j in range(len(xs)) if xs[j] is not None and ys[j] is not None]
        name, slope = str(t.get("name") or f"trait {i}"), check_finite(st.get("slope"), f"{w}.steer.slope")
        chart = xy_chart_svg(
            f"{name}: slope {fmt_num(slope)}", "steering coefficient",
            f"score ({st.get('scorer') or '?'})",
            lines=[{"xs": [xs[j] for j in keep], "ys": [ys[j] for j in keep], "color": PALETTE[0],
                    "cls": "steer-line", "tip": name}],
            points=[{"x": xs[j], "y": ys[j], "color": PALETTE[0], "cls": "steer-point",
                     "tip": f"coefficient {xs[j]:g}: score {ys[j]:.3g}"} for j in keep],
            errorbars=[{"x": xs[j], "lo": ci[0], "hi": ci[1], "color": TEXT_COLOR}
                       for j in keep if cis and (ci := cis[j]) is not None],
            width=360, height=240, chart_id=f"chart-steer-{i}") if keep else None
        auroc_ci = check_pair(t.get("auroc_ci"), f"{w}.auroc_ci")
        traits.append({"name": name, "auroc": fmt_num(check_prob(t.get("auroc"), f"{w}.auroc")),
                       "auroc_dc": fmt_num(check_prob(t.get("auroc_default_context"),
                                              f"{w}.auroc_default_context")),
                       "auroc_ci": "—" if auroc_ci is None else f"{auroc_ci[0]:.3f}–{auroc_ci[1]:.3f}",
                       "gap": fmt_num(check_finite(t.get("gap_sd"), f"{w}.gap_sd"), 2),
                       "n": check_count(t.get("n_test"), f"{w}.n_test"), "slope": fmt_num(slope),
                       "scorer": str(st.get("scorer") or "—"),
                       "chart": Markup(chart) if chart else None})
    aci = check_pair(axis.get("auroc_ci"), "persona.axis.auroc_ci")
    ax = {k: fmt_num(check_finite(axis.get(k), f"persona.axis.{k}"))
          for k in ("cos_pc1", "auroc_roles_vs_default", "auroc_default_context")}
    return {"model": p.get("model"), "layer": p.get("layer"), "n_extraction": p.get("n_extraction"),
            "n_test": p.get("n_test"), "scatter": Markup(scatter) if scatter else None,
            "traits": traits, "cos_pc1": ax["cos_pc1"], "auroc": ax["auroc_roles_vs_default"],
            "auroc_dc": ax["auroc_default_context"],
            "ev": [(f"PC{j + 1}", format_pct(v)) for j, v in enumerate(ev)],
            "auroc_ci": "" if aci is None else f"95% CI {aci[0]:.3f}–{aci[1]:.3f}",
            "scale": str(axis.get("scale") or "")}


def _drift(d: Any) -> dict[str, Any] | None:
    if d is None:
        return None
    d = check_obj(d, "drift", "drift.json")
    convs: list[dict[str, Any]] = []
    for i, c in enumerate((d.get("conversations") or [])[:MAX_CONVERSATIONS_SHOWN]):
        c = check_obj(c, f"drift.conversations[{i}]", "id, type, positions, turns")
        pos = [check_finite(v, f"drift.conversations[{i}].positions") for v in c.get("positions") or []]
        turns = [{"user": clip(t.get("user"))[0], "assistant": clip(t.get("assistant"))[0],
                  "pos": fmt_num(pos[j] if j < len(pos) else None, 3)}
                 for j, t in enumerate(c.get("turns") or []) if isinstance(t, dict)]
        convs.append({"id": str(c.get("id", i)), "type": str(c.get("type") or "?"), "pos": pos,
                      "turns": turns})
    by_type = check_obj(d.get("by_type"), "drift.by_type", "TYPE: {mean, lo, hi, drift, drift_ci, n}")
    colors = _colors([c["type"] for c in convs] + list(by_type))
    lines = [{"xs": [j for j, v in enumerate(c["pos"]) if v is not None],
              "ys": [v for v in c["pos"] if v is not None], "color": colors[c["type"]], "width": 1,
              "opacity": 0.35, "cls": "conv-line", "tip": f"{c['id']} ({c['type']})",
              "attrs": {"type": c["type"], "id": c["id"]}} for c in convs]
    bands, types = [], []
    for t, v in by_type.items():
        w = f"drift.by_type[{t!r}]"
        v = check_obj(v, w, "mean, lo, hi, drift, drift_ci, n")
        mean, lo, hi = ([check_finite(x, f"{w}.{k}") for x in v.get(k) or []] for k in ("mean", "lo", "hi"))
        if mean and all(x is not None for x in mean):
            lines.append({"xs": list(range(len(mean))), "ys": mean, "color": colors[t], "width": 3,
                          "cls": "mean-line", "tip": f"{t}: mean", "attrs": {"type": t}})
        if lo and len(lo) == len(hi) and all(x is not None for x in lo + hi):
            bands.append({"xs": list(range(len(lo))), "lo": lo, "hi": hi, "color": colors[t],
                          "attrs": {"type": t}})
        types.append({"type": str(t), "color": colors[t], "n": check_count(v.get("n"), f"{w}.n"),
                      "drift": fmt_num(check_finite(v.get("drift"), f"{w}.drift")),
                      "ci": "—" if (ci := check_pair(v.get("drift_ci"), f"{w}.drift_ci", False)) is None
                      else f"{ci[0]:.3f} to {ci[1]:.3f}"})
    chart = xy_chart_svg("Position on the persona axis, turn by turn", "turn", "position",
                         lines=lines, bands=bands, legend=list(colors.items()),
                         chart_id="chart-drift", height=380) if lines else None
    attractors = [{"centre": fmt_num(check_finite(a.get("centre"), f"drift.attractors[{i}].centre")),
                   "spread": "" if a.get("spread") is None else
                   fmt_num(check_finite(a.get("spread"), f"drift.attractors[{i}].spread")),
                   "members": [str(m) for m in a.get("members") or []],
                   "types": sorted(check_obj(a.get("types"), f"drift.attractors[{i}].types",
                                        "TYPE: count").items())}
                  for i, a in enumerate(d.get("attractors") or []) if isinstance(a, dict)]
    n_all = len(d.get("conversations") or [])
    rule = check_obj(d.get("attractor_selection"), "drift.attractor_selection", "k, rule").get("rule")
    return {"model": d.get("model"), "layer": d.get("layer"), "scale": str(d.get("scale") or ""),
            "rule": str(rule or ""),
            "chart": Markup(chart) if chart else None, "types": types, "attractors": attractors,
            "conversations": convs, "n_omitted": n_all - len(convs)}


def _example_cell(v: Any, verdict: Any) -> dict[str, Any]:
    """A condition's reply (a string, or a dict with ``response``) and its true verdict flags."""
    flags = {**(verdict if isinstance(verdict, dict) else {}), **(v if isinstance(v, dict) else {})}
    text = v.get("response", v.get("text", "")) if isinstance(v, dict) else v
    return {"text": clip(text)[0], "tags": [k for k in ("harmful", "attempted", "refused")
                                             if flags.get(k) is True]}


def _paired_row(name: str, v: Any, w: str) -> dict[str, Any]:
    v = check_obj(v, w, "diff, diff_ci, p_value")
    return {"name": name, "diff": fmt_pp(check_finite(v.get("diff"), f"{w}.diff")),
            "ci": fmt_ci_pp(check_pair(v.get("diff_ci"), f"{w}.diff_ci", False)),
            "p": fmt_p(check_prob(v.get("p_value"), f"{w}.p_value")), "n": v.get("n", "—")}


def _capping(c: Any) -> dict[str, Any] | None:
    if c is None:
        return None
    c = check_obj(c, "capping", "capping.json")
    conds = check_obj(c.get("conditions"), "capping.conditions", "none / axis_cap / random_cap")
    names = [k for k in CONDITIONS if k in conds] + [k for k in conds if k not in CONDITIONS]
    metrics = [m for m in ("harmful", "attempted", "refused")
               if m != "refused" or any(isinstance(conds[k], dict) and "refused" in conds[k]
                                        for k in names)]
    rates = {k: {m: check_rate(check_obj(conds[k], f"capping.conditions[{k!r}]", "harmful, attempted").get(m),
                          f"capping.conditions[{k!r}].{m}") for m in metrics} for k in names}
    colors = {"harmful": "#b5473a", "attempted": "#c7881c", "refused": "#3f8f5a"}
    charts = [Markup(bar_chart_svg(
        [(k.replace("_", " "), rates[k][m]["rate"], rates[k][m]["ci"], rates[k][m]["note"])
         for k in names], f"{m.capitalize()} rate by condition (95% CI)", width=CHART_WIDTH,
        color=colors[m], chart_id=f"chart-capping-{m}")) for m in metrics] if names else []
    paired = []
    for k, v in check_obj(c.get("paired"), "capping.paired", "NAME: {diff, diff_ci, p_value}").items():
        label, w = str(k).replace("_vs_", " vs "), f"capping.paired[{k!r}]"
        paired.append(_paired_row(f"{label}: {check_obj(v, w, 'diff').get('metric') or 'harmful'}", v, w))
        if isinstance(v.get("attempted"), dict):
            paired.append(_paired_row(f"{label}: attempted", v["attempted"], f"{w}.attempted"))
    examples = [{"behavior": str(e.get("behavior") or ""), "prompt": clip(e.get("prompt"))[0],
                 "tags": [str(e[k]) for k in ("category", "jailbreak") if e.get(k)],
                 "cells": [(k, _example_cell(e.get(k), (e.get("verdicts") or {}).get(k)))
                           for k in CONDITIONS]}
                for e in c.get("examples") or [] if isinstance(e, dict)]
    meta = [(k, c.get(k)) for k in ("model", "layer", "tau", "tau_random", "percentile", "n", "judge")
            if c.get(k) is not None]
    for k, v in (c.get("cap_active") or {}).items():
        meta.append((f"{k} moved", format_pct(check_prob(v, f"capping.cap_active[{k!r}]"))))
    for k, v in (c.get("texts_identical_to_none") or {}).items():
        meta.append((f"{k} replies identical to none", f"{v} of {c.get('n', '?')}"))
    return {"meta": [(k, f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in meta],
            "charts": charts, "paired": paired, "examples": examples,
            "note": str(c.get("cap_active_note") or "")}


# --- sections and page -----------------------------------------------------------------------

def persona_sections(persona: Any = None, drift: Any = None, capping: Any = None) -> dict[str, Any]:
    """The persona, drift and capping sections prepared for the page template (None where absent).

    Args:
        persona: optional ``persona.json`` dict.
        drift: optional ``drift.json`` dict.
        capping: optional ``capping.json`` dict.

    Returns:
        ``{"persona": ..., "drift": ..., "capping": ...}``, each a template dict or None.

    Raises:
        ValueError: malformed input, naming the field (e.g. ``persona.traits[0].auroc``).
    """
    return {"persona": _persona(persona), "drift": _drift(drift), "capping": _capping(capping)}


def render_persona_report(persona: Any = None, drift: Any = None, capping: Any = None) -> str:
    """Render the persona report (``alignlab persona`` on its own) to an HTML string."""
    sections = persona_sections(persona, drift, capping)
    given = [check_obj(x, name, f"{name}.json") for x, name in
             ((persona, "persona"), (drift, "drift"), (capping, "capping")) if x is not None]
    model = next((str(g["model"]) for g in given if g.get("model")), "unknown model")
    layer = next((g["layer"] for g in given if g.get("layer") is not None), None)
    return render_page({"suites": None, "compare": None, "records": None, **sections,
                        "title": f"Persona report — {model}", "heading": "Persona report",
                        "model": model, "judge": "—", "judge_caveat": None, "config_json": None,
                        "header": [("Model", model), ("Layer", "—" if layer is None else str(layer))]})


def write_persona_report(path: str | Path, persona: Any = None, drift: Any = None,
                         capping: Any = None) -> Path:
    """Write the persona report: the persona-space, drift and capping sections, without suites.

    Args:
        path: where to write the HTML file; parent folders are created.
        persona: optional ``persona.json`` dict.
        drift: optional ``drift.json`` dict.
        capping: optional ``capping.json`` dict.

    Returns:
        The path written.

    Raises:
        ValueError: malformed input, naming the field (e.g. ``persona.traits[0].auroc``).
    """
    return write_html(Path(path), render_persona_report(persona, drift, capping))
