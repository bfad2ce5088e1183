"""The evaluations report: one self-contained, offline HTML page for ``alignlab eval``.

The page holds the run's header, a table and a bar chart of each suite's rate (95% CI, counts,
unscorable items apart, judge refusals, chance and position bias of multiple-choice parts), an
optional A/B comparison, a filterable browser of item transcripts and, when given, the persona
sections (prepared by :mod:`alignlab.report.persona`). Text from models or users is escaped by
Jinja2's autoescape, the charts are inline SVG (``svg.py`` and ``charts.py``), and the page is
drawn by :mod:`alignlab.report.evals_common` with its one inline script (the transcript filter),
pinned by a Content-Security-Policy hash and only writing text.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from alignlab.report.charts import CHART_WIDTH, diff_svg, outcome_bar_svg
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
from alignlab.report.page import clip, fmt_duration, select_shown
from alignlab.report.persona import persona_sections
from alignlab.report.svg import (
    CHART_TOP,
    LADDER_LEVELS,
    ROW_HEIGHT,
    bar_chart_svg,
    esc,
    format_pct,
    ladder_svg,
    num,
)

MAX_RECORDS_SHOWN = 400
"""Item transcripts drawn at most (round-robin over suite × subtype × outcome); the rest are counted."""
OUTCOMES = {"shows": "shows behaviour", "not": "does not", "unscorable": "unscorable"}
"""Outcome of an item: behaviour true / false / null. Unscorable is never folded into either side."""
CHANCE_COLOR = "#e07b00"
CALL_LINE = re.compile(r"^\s*CALL\s+([\w.-]+)", re.M)
"""A tool call written in an assistant message (the agentic suites' ``CALL name {json}`` lines)."""


# --- suites and comparison -----------------------------------------------------------------------

def _suite(name: str, s: Any) -> dict[str, Any]:
    where = f"results.suites[{name!r}]"
    s = check_obj(s, where, "rate, ci, k, n, n_unscorable, by_subtype...")
    r = check_rate(s, where)
    levels = []
    for lv in s.get("levels") or []:
        if lv not in LADDER_LEVELS:
            raise ValueError(f"{where}.levels: ladder levels must be integers in 1..10, got {lv!r}")
        levels.append((lv, f"level {lv}: {LADDER_LEVELS[lv]}"))
    subs = [(f"subtype {k}", check_rate(v, f"{where}.by_subtype[{k!r}]"))
            for k, v in check_obj(s.get("by_subtype"), f"{where}.by_subtype", "SUBTYPE: RATE").items()]
    kinds = check_obj(s.get("by_kind"), f"{where}.by_kind", "KIND: RATE")
    if len(kinds) > 1:
        subs += [(f"kind {k}", {**check_rate(v, f"{where}.by_kind[{k!r}]"), "chance": check_prob(
            check_obj(v, f"{where}.by_kind[{k!r}]", "RATE").get("chance"), f"{where}.by_kind[{k!r}].chance")})
            for k, v in kinds.items()]
    if s.get("control"):
        subs.append(("control items (kept out of the rate)", check_rate(s["control"], f"{where}.control")))
    push = check_obj(s.get("pushback"), f"{where}.pushback", "accuracy_before, accuracy_after, ...")
    subs += [(label, check_rate(push[k], f"{where}.pushback.{k}")) for k, label in (
        ("accuracy_before", "accuracy before pushback"), ("accuracy_after", "accuracy after pushback"),
        ("correct_to_wrong", "correct → wrong after pushback")) if push.get(k)]
    agree = check_obj(s.get("agentic_judge_agreement"), f"{where}.agentic_judge_agreement", "n, agree")
    reasons = check_obj(s.get("unscorable_reasons"), f"{where}.unscorable_reasons", "reason: count")
    return {**r, "name": name, "description": str(s.get("description") or ""),
            "behaviour": str(s.get("behaviour") or ""), "levels": levels, "subrows": subs,
            "reasons": sorted(((str(k), check_count(v, f"{where}.unscorable_reasons[{k!r}]"))
                               for k, v in reasons.items()), key=lambda kv: -kv[1]),
            "judge_refusals": check_count(s.get("n_judge_refusals"), f"{where}.n_judge_refusals"),
            "chance": check_prob(s.get("chance"), f"{where}.chance"),
            "first": check_prob(s.get("position_first_rate"), f"{where}.position_first_rate"),
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
        x, y = num(x0 + s["chance"] * pw), CHART_TOP + i * ROW_HEIGHT
        marks.append(f'<g class="chance-marker" data-suite="{esc(s["name"])}" '
                     f'data-chance="{s["chance"]:.6g}"><title>{esc(s["name"])}: chance rate '
                     f'{format_pct(s["chance"])}</title><line x1="{x}" y1="{y + 2}" x2="{x}" '
                     f'y2="{y + ROW_HEIGHT - 2}" stroke="{CHANCE_COLOR}" stroke-width="2.5" '
                     f'stroke-dasharray="3 2"/><path d="M{num(float(x) - 4)} {y}h8l-4 5z" '
                     f'fill="{CHANCE_COLOR}"/></g>')
    return svg[: -len("</svg>")] + "".join(marks) + "</svg>"


def _compare(c: Any) -> dict[str, Any] | None:
    if not c:
        return None
    c = check_obj(c, "results.compare", "a, b, suites")
    rows, raw = [], []
    entries = []
    for name, d in check_obj(c.get("suites"), "results.compare.suites", "NAME: {rate_a, ...}").items():
        entries.append((str(name), d, f"results.compare.suites[{name!r}]"))
        if isinstance(d, dict) and d.get("control"):
            entries.append((f"{name} · control items", d["control"],
                            f"results.compare.suites[{name!r}].control"))
    if c.get("overall"):
        entries.append(("overall (suites pooled)", c["overall"], "results.compare.overall"))
    for name, d, where in entries:
        d = check_obj(d, where, "rate_a, rate_b, diff, diff_ci, n_pairs, p_value")
        diff = check_finite(d.get("diff"), f"{where}.diff")
        ci = check_pair(d.get("diff_ci"), f"{where}.diff_ci", False)
        rows.append({"name": str(name), "a": format_pct(check_prob(d.get("rate_a"), f"{where}.rate_a")),
                     "b": format_pct(check_prob(d.get("rate_b"), f"{where}.rate_b")),
                     "diff": fmt_pp(diff), "ci": fmt_ci_pp(ci),
                     "p": fmt_p(check_prob(d.get("p_value"), f"{where}.p_value")),
                     "n_pairs": check_count(d.get("n_pairs"), f"{where}.n_pairs"),
                     "a_only": check_count(d.get("a_only"), f"{where}.a_only"),
                     "b_only": check_count(d.get("b_only"), f"{where}.b_only")})
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
    r = check_obj(r, where, "one evaluated item with suite, behaviour, transcript...")
    beh = r.get("behaviour")
    if beh not in (True, False, None):
        raise ValueError(f"{where}.behaviour: must be true, false or null (unscorable), got {beh!r}")
    outcome = "unscorable" if beh is None else ("shows" if beh else "not")
    messages: list[dict[str, Any]] = []
    for j, m in enumerate(r.get("transcript") or []):
        m = check_obj(m, f"{where}.transcript[{j}]", "role, content, tool")
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
    lp = [check_finite(v, f"{where}.option_logprobs") for v in lps or []]
    lp1 = r.get("first_logprobs")  # pushback: the first answer's log-likelihoods
    lp1 = [check_finite(v, f"{where}.first_logprobs") for v in lp1] \
        if isinstance(lp1, list) and len(lp1) == n else []
    options = [{"letter": chr(65 + j) if j < 26 else str(j + 1), "text": c,
                "lp": fmt_num(lp[j]) if lp else "—", "p": format_pct(_shares(lp)[j]) if lp else "—",
                "lp1": fmt_num(lp1[j]) if lp1 else "", "chosen": j == chosen,
                "matching": j in matching, "correct": j == correct, "first": j == first}
               for j, c in enumerate(choices)]
    judge = None
    if r.get("judge"):
        jd = check_obj(r["judge"], f"{where}.judge", "name, verdict, reason, raw, error")
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


# --- page ------------------------------------------------------------------------------------------

def _options(values: list[str]) -> list[tuple[str, int]]:
    return sorted(Counter(v for v in values if v).items())


def render_evals_report(results: dict[str, Any], records: list[dict[str, Any]], persona: Any = None,
                        drift: Any = None, capping: Any = None) -> str:
    """Render the evaluations report to an HTML string (see ``write_evals_report``)."""
    if results is None:
        raise ValueError("results: the evals report needs the run's results.json dict; for persona "
                         "runs on their own use render_persona_report")
    sections = persona_sections(persona, drift, capping)
    res = check_obj(results, "results", "results.json")
    suites = [_suite(str(k), v)
              for k, v in check_obj(res.get("suites"), "results.suites", "NAME: suite").items()]
    if not isinstance(records, list):
        raise ValueError("records: must be a list of per-item records (samples.jsonl), got "
                         f"{type(records).__name__}")
    shown = select_shown([_record(i, r) for i, r in enumerate(records)], MAX_RECORDS_SHOWN,
                         key="stratum")
    evidence: dict[int, list[str]] = {}
    for s in suites:
        for lv, _ in s["levels"]:
            evidence.setdefault(lv, []).append(f"{s['name']} ({s['pct']}, {s['note']})")
    return render_page(dict(
        **sections,
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
        config_json=json.dumps(res.get("config") or {}, indent=2, sort_keys=True, default=str),
        outcomes=OUTCOMES, max_records=MAX_RECORDS_SHOWN))


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
    return write_html(Path(path), render_evals_report(results, records, persona, drift, capping))
