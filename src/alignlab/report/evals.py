"""The evaluations report: one self-contained, offline HTML page for ``alignlab eval`` and ``persona``.

The page holds the run's header, a table and a bar chart of each suite's rate (95% CI, counts,
unscorable items apart, judge refusals, chance and position bias of multiple-choice parts), an
optional A/B comparison, a filterable browser of item transcripts, and the persona sections: the
persona-space scatter, trait AUROCs and steering curves, drift trajectories and activation capping.
Text from models or users is escaped by Jinja2's autoescape, the charts are inline SVG (``svg.py``
and ``xy_chart_svg`` here), and the one inline script (the transcript filter, in
``templates/evals_filter.js``) is pinned by a Content-Security-Policy hash and only writes text.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from markupsafe import Markup

from alignlab.report.charts import (
    _TEXT,
    CHART_WIDTH,
    diff_svg,
    outcome_bar_svg,
    xy_chart_svg,
)
from alignlab.report.page import TEMPLATE_DIR, clip, environment, fmt_duration, script_hash, select_shown
from alignlab.report.svg import (
    _ROW_H,
    _TOP,
    LADDER_LEVELS,
    esc,
    num,
    bar_chart_svg,
    format_ci,
    format_pct,
    ladder_svg,
)


MAX_RECORDS_SHOWN = 400
"""Item transcripts drawn at most (round-robin over suite × subtype × outcome); the rest are counted."""
MAX_CONVERSATIONS_SHOWN = 200
"""Drift conversations drawn (as lines and readable turns) at most."""
PALETTE = ["#3b6fb6", "#b5473a", "#3f8f5a", "#c7881c", "#7a4fb0", "#2a8f9d", "#8a5a44", "#c2508a"]
"""Series colours, in order of first appearance."""
KIND_COLORS = {"default": "#1f2733", "role": "#3b6fb6", "trait+": "#c7881c", "trait-": "#2a8f9d"}
"""Colour of each kind of point in the persona-space scatter (other kinds take PALETTE colours)."""
OUTCOMES = {"shows": "shows behaviour", "not": "does not", "unscorable": "unscorable"}
"""Outcome of an item: behaviour true / false / null. Unscorable is never folded into either side."""
CONDITIONS = ["none", "axis_cap", "random_cap"]
"""Activation-capping conditions, in display order."""
CHANCE_COLOR = "#e07b00"
CALL_LINE = re.compile(r"^\s*CALL\s+([\w.-]+)", re.M)
"""A tool call written in an assistant message (the agentic suites' ``CALL name {json}`` lines)."""
_SCRIPT = (TEMPLATE_DIR / "evals_filter.js").read_text(encoding="utf-8")


# --- input checks ------------------------------------------------------------------------------

def _finite(x: Any, where: str) -> float | None:
    """``x`` as a float; None when missing or NaN; ValueError naming ``where`` when not a number."""
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"{where}: must be a number or null, got {x!r}; fix the file that produced it")
    return float(x) if math.isfinite(x) else None


def _prob(x: Any, where: str) -> float | None:
    p = _finite(x, where)
    if p is not None and not 0.0 <= p <= 1.0:
        raise ValueError(f"{where}: must be a proportion in [0, 1] or null, got {x!r}")
    return p


def _pair(x: Any, where: str, unit: bool = True) -> tuple[float, float] | None:
    """A (lo, hi) interval, checked lo <= hi (and inside [0, 1] when ``unit``); None when absent."""
    if x is None:
        return None
    if not isinstance(x, (list, tuple)) or len(x) != 2:
        raise ValueError(f"{where}: must be [lo, hi] or null, got {x!r}")
    lo, hi = _finite(x[0], where), _finite(x[1], where)
    if lo is None or hi is None:
        return None
    if lo > hi or (unit and not 0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"{where}: must satisfy {'0 <= ' if unit else ''}lo <= hi"
                         f"{' <= 1' if unit else ''}, got {list(x)}")
    return (lo, hi)


def _count(x: Any, where: str) -> int:
    if x is None:
        return 0
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise ValueError(f"{where}: must be a non-negative integer, got {x!r}")
    return x


def _obj(x: Any, where: str, what: str) -> dict[str, Any]:
    if x is None:
        return {}
    if not isinstance(x, dict):
        raise ValueError(f"{where}: must be an object ({what}), got {type(x).__name__}")
    return x


def _rate(d: Any, where: str) -> dict[str, Any]:
    """A RATE dict checked and with every key present: rate, ci, k, n, n_unscorable, note."""
    d = _obj(d, where, "rate, ci, k, n, n_unscorable")
    r = {"rate": _prob(d.get("rate"), f"{where}.rate"), "ci": _pair(d.get("ci"), f"{where}.ci"),
         "k": _count(d.get("k"), f"{where}.k"), "n": _count(d.get("n"), f"{where}.n"),
         "n_unscorable": _count(d.get("n_unscorable"), f"{where}.n_unscorable")}
    if r["k"] > r["n"]:
        raise ValueError(f"{where}: k={r['k']} exceeds n={r['n']}; n counts decided items")
    r["note"] = f"{r['k']}/{r['n']}" + (f", {r['n_unscorable']} unscorable" if r["n_unscorable"] else "")
    r["pct"], r["ci_text"] = format_pct(r["rate"]), format_ci(r["ci"]).removeprefix("95% CI ") or "—"
    return r


def _fmt(x: Any, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _fmt_p(p: float | None) -> str:
    return "—" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _fmt_pp(d: float | None) -> str:
    return "—" if d is None else f"{100 * d:+.1f} pp"


def _fmt_ci_pp(ci: tuple[float, float] | None) -> str:
    return "—" if ci is None else f"{100 * ci[0]:+.1f} to {100 * ci[1]:+.1f} pp"


# --- small SVGs --------------------------------------------------------------------------------

def _colors(names: Sequence[str], fixed: dict[str, str] | None = None) -> dict[str, str]:
    fixed = fixed or {}
    free = [n for n in dict.fromkeys(names) if n not in fixed]
    return {**{n: PALETTE[i % len(PALETTE)] for i, n in enumerate(free)},
            **{n: c for n, c in fixed.items() if n in names}}


# --- suites and comparison -----------------------------------------------------------------------

def _suite(name: str, s: Any) -> dict[str, Any]:
    where = f"results.suites[{name!r}]"
    s = _obj(s, where, "rate, ci, k, n, n_unscorable, by_subtype...")
    r = _rate(s, where)
    levels = []
    for lv in s.get("levels") or []:
        if lv not in LADDER_LEVELS:
            raise ValueError(f"{where}.levels: ladder levels must be integers in 1..10, got {lv!r}")
        levels.append((lv, f"level {lv}: {LADDER_LEVELS[lv]}"))
    subs = [(f"subtype {k}", _rate(v, f"{where}.by_subtype[{k!r}]"))
            for k, v in _obj(s.get("by_subtype"), f"{where}.by_subtype", "SUBTYPE: RATE").items()]
    kinds = _obj(s.get("by_kind"), f"{where}.by_kind", "KIND: RATE")
    if len(kinds) > 1:
        subs += [(f"kind {k}", {**_rate(v, f"{where}.by_kind[{k!r}]"), "chance": _prob(
            _obj(v, f"{where}.by_kind[{k!r}]", "RATE").get("chance"), f"{where}.by_kind[{k!r}].chance")})
            for k, v in kinds.items()]
    if s.get("control"):
        subs.append(("control items (kept out of the rate)", _rate(s["control"], f"{where}.control")))
    push = _obj(s.get("pushback"), f"{where}.pushback", "accuracy_before, accuracy_after, ...")
    subs += [(label, _rate(push[k], f"{where}.pushback.{k}")) for k, label in (
        ("accuracy_before", "accuracy before pushback"), ("accuracy_after", "accuracy after pushback"),
        ("correct_to_wrong", "correct → wrong after pushback")) if push.get(k)]
    agree = _obj(s.get("agentic_judge_agreement"), f"{where}.agentic_judge_agreement", "n, agree")
    reasons = _obj(s.get("unscorable_reasons"), f"{where}.unscorable_reasons", "reason: count")
    return {**r, "name": name, "description": str(s.get("description") or ""),
            "behaviour": str(s.get("behaviour") or ""), "levels": levels, "subrows": subs,
            "reasons": sorted(((str(k), _count(v, f"{where}.unscorable_reasons[{k!r}]"))
                               for k, v in reasons.items()), key=lambda kv: -kv[1]),
            "judge_refusals": _count(s.get("n_judge_refusals"), f"{where}.n_judge_refusals"),
            "chance": _prob(s.get("chance"), f"{where}.chance"),
            "first": _prob(s.get("position_first_rate"), f"{where}.position_first_rate"),
            "agreement": (f"the judge agreed with the scripted rule on {agree.get('agree')}/"
                          f"{agree.get('n')} agentic items" if agree.get("n") else ""),
            "bar": Markup(outcome_bar_svg(r["k"], r["n"], r["n_unscorable"]))}


def suites_chart_svg(suites: Sequence[dict[str, Any]]) -> str:
    """``bar_chart_svg`` of the suites' rates with CI whiskers, plus a dashed chance marker per row.

    A marker is a ``g.chance-marker`` (``data-suite``, ``data-chance``) at
    ``plot_x + chance * plot_width`` in its suite's row.
    """
    svg = bar_chart_svg([(s["name"], s["rate"], s["ci"], s["note"]) for s in suites],
                        "Rate of the behaviour by suite (95% CI)", width=CHART_WIDTH,
                        chart_id="chart-suites")
    x0 = float(re.search(r'data-plot-x="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    pw = float(re.search(r'data-plot-width="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    marks = []
    for i, s in enumerate(suites):
        if s["chance"] is None:
            continue
        x, y = num(x0 + s["chance"] * pw), _TOP + i * _ROW_H
        marks.append(f'<g class="chance-marker" data-suite="{esc(s["name"])}" '
                     f'data-chance="{s["chance"]:.6g}"><title>{esc(s["name"])}: chance rate '
                     f'{format_pct(s["chance"])}</title><line x1="{x}" y1="{y + 2}" x2="{x}" '
                     f'y2="{y + _ROW_H - 2}" stroke="{CHANCE_COLOR}" stroke-width="2.5" '
                     f'stroke-dasharray="3 2"/><path d="M{num(float(x) - 4)} {y}h8l-4 5z" '
                     f'fill="{CHANCE_COLOR}"/></g>')
    return svg[: -len("</svg>")] + "".join(marks) + "</svg>"


def _compare(c: Any) -> dict[str, Any] | None:
    if not c:
        return None
    c = _obj(c, "results.compare", "a, b, suites")
    rows, raw = [], []
    entries = []
    for name, d in _obj(c.get("suites"), "results.compare.suites", "NAME: {rate_a, ...}").items():
        entries.append((str(name), d, f"results.compare.suites[{name!r}]"))
        if isinstance(d, dict) and d.get("control"):
            entries.append((f"{name} · control items", d["control"],
                            f"results.compare.suites[{name!r}].control"))
    if c.get("overall"):
        entries.append(("overall (suites pooled)", c["overall"], "results.compare.overall"))
    for name, d, where in entries:
        d = _obj(d, where, "rate_a, rate_b, diff, diff_ci, n_pairs, p_value")
        diff = _finite(d.get("diff"), f"{where}.diff")
        ci = _pair(d.get("diff_ci"), f"{where}.diff_ci", False)
        rows.append({"name": str(name), "a": format_pct(_prob(d.get("rate_a"), f"{where}.rate_a")),
                     "b": format_pct(_prob(d.get("rate_b"), f"{where}.rate_b")),
                     "diff": _fmt_pp(diff), "ci": _fmt_ci_pp(ci),
                     "p": _fmt_p(_prob(d.get("p_value"), f"{where}.p_value")),
                     "n_pairs": _count(d.get("n_pairs"), f"{where}.n_pairs"),
                     "a_only": _count(d.get("a_only"), f"{where}.a_only"),
                     "b_only": _count(d.get("b_only"), f"{where}.b_only")})
        raw.append((diff, ci))
    # one scale for every row: the smallest of 10, 25, 50, 100 pp that holds every point and CI
    reach = max([abs(v) for d, ci in raw for v in (d, *(ci or ())) if v is not None], default=0.0)
    scale = next(s for s in (0.1, 0.25, 0.5, 1.0) if reach <= s or s == 1.0)
    for row, (d, ci) in zip(rows, raw):
        row["plot"] = Markup(diff_svg(d, ci, scale))
    return {"a": str(c.get("a") or "A"), "b": str(c.get("b") or "B"), "rows": rows,
            "scale": f"{100 * scale:g}"}


# --- records -------------------------------------------------------------------------------------

def _index(x: Any, n: int, where: str) -> int | None:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < n:
        raise ValueError(f"{where}: must be an index into the {n} shown choices or null, got {x!r}")
    return x


def _shares(lp: list[float | None]) -> list[float | None]:
    """Log-likelihoods normalised over the shown options (softmax); all None if any is missing."""
    if not lp or any(v is None for v in lp):
        return [None] * len(lp)
    top = max(lp)  # type: ignore[type-var]
    ex = [math.exp(v - top) for v in lp]  # type: ignore[operator]
    return [e / sum(ex) for e in ex]


def _record(i: int, r: Any) -> dict[str, Any]:
    """One item prepared for the template: outcome, styled transcript, options, judge, actions."""
    where = f"records[{i}]"
    r = _obj(r, where, "one evaluated item with suite, behaviour, transcript...")
    beh = r.get("behaviour")
    if beh not in (True, False, None):
        raise ValueError(f"{where}.behaviour: must be true, false or null (unscorable), got {beh!r}")
    outcome = "unscorable" if beh is None else ("shows" if beh else "not")
    messages = []
    for j, m in enumerate(r.get("transcript") or []):
        m = _obj(m, f"{where}.transcript[{j}]", "role, content, tool")
        role, tool = str(m.get("role") or "?"), m.get("tool")
        calls = CALL_LINE.findall(str(m.get("content") or "")) if role == "assistant" else []
        tool = tool or ", ".join(dict.fromkeys(calls))
        kind = ("tool-call" if role == "assistant" else "tool-result") if tool else \
            ("tool-result" if role == "tool" else role)
        content, cut = clip(m.get("content"))
        messages.append({"kind": kind, "label": kind.replace("-", " "), "tool": str(tool or ""),
                         "content": content, "cut": cut})
    choices = [str(c) for c in r.get("choices") or []]
    n = len(choices)
    chosen = _index(r.get("choice"), n, f"{where}.choice")
    correct = _index(r.get("correct"), n, f"{where}.correct")
    first = _index(r.get("first_choice"), n, f"{where}.first_choice")
    matching = {_index(m, n, f"{where}.matching") for m in r.get("matching") or []}
    lps = r.get("option_logprobs")
    if lps is not None and (not isinstance(lps, list) or len(lps) != n):
        raise ValueError(f"{where}.option_logprobs: {len(lps) if isinstance(lps, list) else lps!r} "
                         f"values for {n} choices; give one log-likelihood per shown option, in "
                         "the order shown")
    lp = [_finite(v, f"{where}.option_logprobs") for v in lps or []]
    lp1 = r.get("first_logprobs")  # pushback: the first answer's log-likelihoods
    lp1 = [_finite(v, f"{where}.first_logprobs") for v in lp1] \
        if isinstance(lp1, list) and len(lp1) == n else []
    options = [{"letter": chr(65 + j) if j < 26 else str(j + 1), "text": c,
                "lp": _fmt(lp[j]) if lp else "—", "p": format_pct(_shares(lp)[j]) if lp else "—",
                "lp1": _fmt(lp1[j]) if lp1 else "", "chosen": j == chosen,
                "matching": j in matching, "correct": j == correct, "first": j == first}
               for j, c in enumerate(choices)]
    judge = None
    if r.get("judge"):
        jd = _obj(r["judge"], f"{where}.judge", "name, verdict, reason, raw, error")
        raw, raw_cut = clip(jd.get("raw"))
        v = jd.get("verdict")
        judge = {"name": str(jd.get("name") or "judge"), "reason": str(jd.get("reason") or ""),
                 "verdict": "unscorable" if v is None else ("shows behaviour" if v else "does not"),
                 "raw": raw, "raw_cut": raw_cut, "error": jd.get("error"),
                 "refused": bool(jd.get("refused_to_judge"))}
    actions = [{"tool": str(a.get("tool", "?")),
                "args": json.dumps(a.get("args"), ensure_ascii=False, sort_keys=True, default=str)}
               for a in (r.get("actions") or []) if isinstance(a, dict)]
    first_user = next((m["content"] for m in messages if m["kind"] == "user"), "")
    return {"id": str(r.get("id", i)), "suite": str(r.get("suite") or "?"),
            "subtype": str(r.get("subtype") or ""), "kind": str(r.get("kind") or ""),
            "outcome": outcome, "outcome_text": OUTCOMES[outcome],
            "reason": r.get("unscorable_reason"), "messages": messages, "options": options,
            "judge": judge, "actions": actions, "control": bool(r.get("control")),
            "scoring": str(r.get("scoring") or ""), "has_lp1": any(o["lp1"] for o in options),
            "headline": " ".join(first_user.split())[:140] or str(r.get("id", i)),
            "stratum": f"{r.get('suite')}\x1f{r.get('subtype')}\x1f{outcome}"}


# --- persona, drift, capping ------------------------------------------------------------------

def _persona(p: Any) -> dict[str, Any] | None:
    if p is None:
        return None
    p = _obj(p, "persona", "persona.json")
    axis = _obj(p.get("axis"), "persona.axis", "cos_pc1, explained_variance, ...")
    ev = [_finite(v, "persona.axis.explained_variance") for v in axis.get("explained_variance") or []]
    pts, kinds = [], []
    for i, q in enumerate(p.get("points") or []):
        q = _obj(q, f"persona.points[{i}]", "name, kind, x, y, axis")
        x, y = (_finite(q.get(k), f"persona.points[{i}].{k}") for k in ("x", "y"))
        if x is None or y is None:
            continue
        kinds.append(str(q.get("kind") or "?"))
        a = _finite(q.get("axis"), f"persona.points[{i}].axis")
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
        t = _obj(t, w, "name, auroc, auroc_ci, gap_sd, n_test, steer")
        st = _obj(t.get("steer"), f"{w}.steer", "coefficients, score, ci, slope, scorer")
        xs = [_finite(v, f"{w}.steer.coefficients") for v in st.get("coefficients") or []]
        ys = [_finite(v, f"{w}.steer.score") for v in st.get("score") or []]
        cis = [_pair(c, f"{w}.steer.ci", False) for c in st.get("ci") or []]
        if len(ys) != len(xs) or (cis and len(cis) != len(xs)):
            raise ValueError(f"{w}.steer: coefficients, score and ci must have equal lengths, got "
                             f"{len(xs)}, {len(ys)}, {len(cis)}")
        keep = [j for j in range(len(xs)) if xs[j] is not None and ys[j] is not None]
        name, slope = str(t.get("name") or f"trait {i}"), _finite(st.get("slope"), f"{w}.steer.slope")
        chart = xy_chart_svg(
            f"{name}: slope {_fmt(slope)}", "steering coefficient",
            f"score ({st.get('scorer') or '?'})",
            lines=[{"xs": [xs[j] for j in keep], "ys": [ys[j] for j in keep], "color": PALETTE[0],
                    "cls": "steer-line", "tip": name}],
            points=[{"x": xs[j], "y": ys[j], "color": PALETTE[0], "cls": "steer-point",
                     "tip": f"coefficient {xs[j]:g}: score {ys[j]:.3g}"} for j in keep],
            errorbars=[{"x": xs[j], "lo": ci[0], "hi": ci[1], "color": _TEXT}
                       for j in keep if cis and (ci := cis[j]) is not None],
            width=360, height=240, chart_id=f"chart-steer-{i}") if keep else None
        auroc_ci = _pair(t.get("auroc_ci"), f"{w}.auroc_ci")
        traits.append({"name": name, "auroc": _fmt(_prob(t.get("auroc"), f"{w}.auroc")),
                       "auroc_dc": _fmt(_prob(t.get("auroc_default_context"),
                                              f"{w}.auroc_default_context")),
                       "auroc_ci": "—" if auroc_ci is None else f"{auroc_ci[0]:.3f}–{auroc_ci[1]:.3f}",
                       "gap": _fmt(_finite(t.get("gap_sd"), f"{w}.gap_sd"), 2),
                       "n": _count(t.get("n_test"), f"{w}.n_test"), "slope": _fmt(slope),
                       "scorer": str(st.get("scorer") or "—"),
                       "chart": Markup(chart) if chart else None})
    aci = _pair(axis.get("auroc_ci"), "persona.axis.auroc_ci")
    ax = {k: _fmt(_finite(axis.get(k), f"persona.axis.{k}"))
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
    d = _obj(d, "drift", "drift.json")
    convs = []
    for i, c in enumerate((d.get("conversations") or [])[:MAX_CONVERSATIONS_SHOWN]):
        c = _obj(c, f"drift.conversations[{i}]", "id, type, positions, turns")
        pos = [_finite(v, f"drift.conversations[{i}].positions") for v in c.get("positions") or []]
        turns = [{"user": clip(t.get("user"))[0], "assistant": clip(t.get("assistant"))[0],
                  "pos": _fmt(pos[j] if j < len(pos) else None, 3)}
                 for j, t in enumerate(c.get("turns") or []) if isinstance(t, dict)]
        convs.append({"id": str(c.get("id", i)), "type": str(c.get("type") or "?"), "pos": pos,
                      "turns": turns})
    by_type = _obj(d.get("by_type"), "drift.by_type", "TYPE: {mean, lo, hi, drift, drift_ci, n}")
    colors = _colors([c["type"] for c in convs] + list(by_type))
    lines = [{"xs": [j for j, v in enumerate(c["pos"]) if v is not None],
              "ys": [v for v in c["pos"] if v is not None], "color": colors[c["type"]], "width": 1,
              "opacity": 0.35, "cls": "conv-line", "tip": f"{c['id']} ({c['type']})",
              "attrs": {"type": c["type"], "id": c["id"]}} for c in convs]
    bands, types = [], []
    for t, v in by_type.items():
        w = f"drift.by_type[{t!r}]"
        v = _obj(v, w, "mean, lo, hi, drift, drift_ci, n")
        mean, lo, hi = ([_finite(x, f"{w}.{k}") for x in v.get(k) or []] for k in ("mean", "lo", "hi"))
        if mean and all(x is not None for x in mean):
            lines.append({"xs": list(range(len(mean))), "ys": mean, "color": colors[t], "width": 3,
                          "cls": "mean-line", "tip": f"{t}: mean", "attrs": {"type": t}})
        if lo and len(lo) == len(hi) and all(x is not None for x in lo + hi):
            bands.append({"xs": list(range(len(lo))), "lo": lo, "hi": hi, "color": colors[t],
                          "attrs": {"type": t}})
        types.append({"type": str(t), "color": colors[t], "n": _count(v.get("n"), f"{w}.n"),
                      "drift": _fmt(_finite(v.get("drift"), f"{w}.drift")),
                      "ci": "—" if (ci := _pair(v.get("drift_ci"), f"{w}.drift_ci", False)) is None
                      else f"{ci[0]:.3f} to {ci[1]:.3f}"})
    chart = xy_chart_svg("Position on the persona axis, turn by turn", "turn", "position",
                         lines=lines, bands=bands, legend=list(colors.items()),
                         chart_id="chart-drift", height=380) if lines else None
    attractors = [{"centre": _fmt(_finite(a.get("centre"), f"drift.attractors[{i}].centre")),
                   "spread": "" if a.get("spread") is None else
                   _fmt(_finite(a.get("spread"), f"drift.attractors[{i}].spread")),
                   "members": [str(m) for m in a.get("members") or []],
                   "types": sorted(_obj(a.get("types"), f"drift.attractors[{i}].types",
                                        "TYPE: count").items())}
                  for i, a in enumerate(d.get("attractors") or []) if isinstance(a, dict)]
    n_all = len(d.get("conversations") or [])
    rule = _obj(d.get("attractor_selection"), "drift.attractor_selection", "k, rule").get("rule")
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
    v = _obj(v, w, "diff, diff_ci, p_value")
    return {"name": name, "diff": _fmt_pp(_finite(v.get("diff"), f"{w}.diff")),
            "ci": _fmt_ci_pp(_pair(v.get("diff_ci"), f"{w}.diff_ci", False)),
            "p": _fmt_p(_prob(v.get("p_value"), f"{w}.p_value")), "n": v.get("n", "—")}


def _capping(c: Any) -> dict[str, Any] | None:
    if c is None:
        return None
    c = _obj(c, "capping", "capping.json")
    conds = _obj(c.get("conditions"), "capping.conditions", "none / axis_cap / random_cap")
    names = [k for k in CONDITIONS if k in conds] + [k for k in conds if k not in CONDITIONS]
    metrics = [m for m in ("harmful", "attempted", "refused")
               if m != "refused" or any(isinstance(conds[k], dict) and "refused" in conds[k]
                                        for k in names)]
    rates = {k: {m: _rate(_obj(conds[k], f"capping.conditions[{k!r}]", "harmful, attempted").get(m),
                          f"capping.conditions[{k!r}].{m}") for m in metrics} for k in names}
    colors = {"harmful": "#b5473a", "attempted": "#c7881c", "refused": "#3f8f5a"}
    charts = [Markup(bar_chart_svg(
        [(k.replace("_", " "), rates[k][m]["rate"], rates[k][m]["ci"], rates[k][m]["note"])
         for k in names], f"{m.capitalize()} rate by condition (95% CI)", width=CHART_WIDTH,
        color=colors[m], chart_id=f"chart-capping-{m}")) for m in metrics] if names else []
    paired = []
    for k, v in _obj(c.get("paired"), "capping.paired", "NAME: {diff, diff_ci, p_value}").items():
        label, w = str(k).replace("_vs_", " vs "), f"capping.paired[{k!r}]"
        paired.append(_paired_row(f"{label}: {_obj(v, w, 'diff').get('metric') or 'harmful'}", v, w))
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
        meta.append((f"{k} moved", format_pct(_prob(v, f"capping.cap_active[{k!r}]"))))
    for k, v in (c.get("texts_identical_to_none") or {}).items():
        meta.append((f"{k} replies identical to none", f"{v} of {c.get('n', '?')}"))
    return {"meta": [(k, f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in meta],
            "charts": charts, "paired": paired, "examples": examples,
            "note": str(c.get("cap_active_note") or "")}


# --- page ------------------------------------------------------------------------------------------

def _options(values: list[str]) -> list[tuple[str, int]]:
    return sorted(Counter(v for v in values if v).items())


def _render(results: dict[str, Any] | None, records: list[dict[str, Any]] | None, persona: Any,
            drift: Any, capping: Any) -> str:
    page: dict[str, Any] = {"suites": None, "compare": None, "records": None}
    sections = {"persona": _persona(persona), "drift": _drift(drift), "capping": _capping(capping)}
    if results is not None:
        res = _obj(results, "results", "results.json")
        suites = [_suite(str(k), v)
                  for k, v in _obj(res.get("suites"), "results.suites", "NAME: suite").items()]
        if not isinstance(records, list):
            raise ValueError("records: must be a list of per-item records (samples.jsonl), got "
                             f"{type(records).__name__}")
        shown = select_shown([_record(i, r) for i, r in enumerate(records)], MAX_RECORDS_SHOWN,
                             key="stratum")
        evidence: dict[int, list[str]] = {}
        for s in suites:
            for lv, _ in s["levels"]:
                evidence.setdefault(lv, []).append(f"{s['name']} ({s['pct']}, {s['note']})")
        page.update(
            title=f"Evaluation report — {res.get('model') or 'unknown model'}",
            heading="Evaluation report", model=res.get("model") or "unknown model",
            judge=res.get("judge") or "—", judge_caveat=res.get("judge_caveat"),
            header=[(k, "—" if v is None else str(v)) for k, v in (
                ("Model", res.get("model")), ("Judge", res.get("judge")), ("Run", res.get("run_id")),
                ("Created", res.get("created")), ("alignlab", res.get("alignlab_version")),
                ("Duration", fmt_duration(res.get("duration_s"))), ("Suites", len(suites)),
                ("Items", f"{len(records):,}"))],
            suites=suites, chart=Markup(suites_chart_svg(suites)) if suites else None,
            ladder=Markup(ladder_svg({lv: "; ".join(v) for lv, v in evidence.items()}))
            if evidence else None,
            evidence=sorted(evidence.items()), compare=_compare(res.get("compare")), records=shown,
            n_records=len(records), n_omitted=len(records) - len(shown),
            suite_options=_options([r["suite"] for r in shown]),
            subtype_options=_options([r["subtype"] for r in shown]),
            outcome_counts=Counter(r["outcome"] for r in shown),
            config_json=json.dumps(res.get("config") or {}, indent=2, sort_keys=True, default=str))
    else:
        given = [_obj(x, name, f"{name}.json") for x, name in
                 ((persona, "persona"), (drift, "drift"), (capping, "capping")) if x is not None]
        model = next((str(g["model"]) for g in given if g.get("model")), "unknown model")
        layer = next((g["layer"] for g in given if g.get("layer") is not None), None)
        page.update(title=f"Persona report — {model}", heading="Persona report", model=model,
                    judge="—", judge_caveat=None, config_json=None,
                    header=[("Model", model), ("Layer", "—" if layer is None else str(layer))])
    return environment().get_template("evals.html.j2").render(
        **page, **sections, outcomes=OUTCOMES, max_records=MAX_RECORDS_SHOWN,
        script=Markup(_SCRIPT), script_hash=script_hash(_SCRIPT))


def render_evals_report(results: dict[str, Any], records: list[dict[str, Any]], persona: Any = None,
                        drift: Any = None, capping: Any = None) -> str:
    """Render the evaluations report to an HTML string (see ``write_evals_report``)."""
    if results is None:
        raise ValueError("results: the evals report needs the run's results.json dict; for persona "
                         "runs on their own use render_persona_report")
    return _render(results, records, persona, drift, capping)


def write_evals_report(results: dict[str, Any], records: list[dict[str, Any]], path: str | Path,
                       persona: Any = None, drift: Any = None, capping: Any = None) -> Path:
    """Write the evaluations report as one self-contained HTML file (works offline).

    Shows every suite (rate, 95% CI, k/n, unscorable items apart with their reasons, judge
    refusals, chance and position bias), the A/B comparison when ``results["compare"]`` is there,
    at most ``MAX_RECORDS_SHOWN`` item transcripts (chosen round-robin over suite × subtype ×
    outcome, with a note of how many were left out) and, when given, the persona sections.

    Args:
        results: the run's ``results.json`` dict (stage "evals").
        records: one dict per evaluated item (the per-item record contract).
        path: where to write the HTML file; parent folders are created.
        persona: optional ``persona.json`` dict (persona space, traits, steering).
        drift: optional ``drift.json`` dict (positions per conversation, per-type means).
        capping: optional ``capping.json`` dict (activation capping conditions and examples).

    Returns:
        The path written.

    Raises:
        ValueError: malformed input, naming the field (e.g. ``records[3].choice``).
    """
    out = Path(path)
    html = render_evals_report(results, records, persona, drift, capping)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def render_persona_report(persona: Any = None, drift: Any = None, capping: Any = None) -> str:
    """Render the persona report (``alignlab persona`` on its own) to an HTML string."""
    return _render(None, None, persona, drift, capping)


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
    out = Path(path)
    html = render_persona_report(persona, drift, capping)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
