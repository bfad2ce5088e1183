"""The red-team report: one self-contained, offline HTML file built from a run's ``results.json``.

The page holds the run's header, summary cards (behavior- and attempt-level rates with 95% CIs and
counts, unscorable items apart), the ladder strip, bar charts per category and per attack, a table
per attack, a filterable browser of hits and, optionally, non-hit examples. All text that came from
a model or a user is escaped by Jinja2's autoescape; the charts are inline SVG from ``svg.py``; the
one inline script (the hit filter) is pinned by a Content-Security-Policy hash, so nothing else can
run and nothing is fetched from anywhere.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from markupsafe import Markup

from alignlab.report.page import MAX_MESSAGE_CHARS, clip, environment, fmt_duration, script_hash, select_shown
from alignlab.report.svg import bar_chart_svg, format_ci, format_pct, ladder_svg

MAX_HITS_SHOWN = 300
"""Hits drawn in the page at most; the rest are counted in a note (all are in hits.jsonl)."""
MAX_EXAMPLES_SHOWN = 100
"""Non-hit examples drawn at most."""
BASELINE_ATTACK = "direct"
"""The attack that sends the behavior as-is: the level-1 baseline of the raw target."""

CHART_WIDTH = 580
"""SVG width of each chart (two charts per row at full page width, drawn near 1:1)."""
ASR_COLOR = "#b5473a"
COMPLIANCE_COLOR = "#c7881c"

_FILTER_JS = """(function () {
  var cat = document.getElementById("filter-category");
  var att = document.getElementById("filter-attack");
  var count = document.getElementById("hits-visible");
  if (!cat || !att || !count) { return; }
  var items = Array.prototype.slice.call(document.querySelectorAll("#hit-list .hit"));
  function apply() {
    var shown = 0;
    items.forEach(function (el) {
      var ok = (!cat.value || el.getAttribute("data-category") === cat.value) &&
               (!att.value || el.getAttribute("data-attack") === att.value);
      el.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = String(shown);
  }
  cat.addEventListener("change", apply);
  att.addEventListener("change", apply);
  apply();
})();"""


def _rate(d: dict[str, Any] | None) -> dict[str, Any]:
    """A rate dict with every key present (rate/ci None when nothing was decided)."""
    d = d or {}
    ci = d.get("ci")
    return {"rate": d.get("rate"), "ci": tuple(ci) if ci else None, "k": int(d.get("k") or 0),
            "n": int(d.get("n") or 0), "n_unscorable": int(d.get("n_unscorable") or 0)}


def count_note(r: dict[str, Any]) -> str:
    """Counts behind a rate, e.g. ``"7/20, 1 unscorable"`` (the unscorable part only when > 0).

    Args:
        r: a rate dict with ``k``, ``n`` and ``n_unscorable``.

    Returns:
        The annotation text.
    """
    r = _rate(r)
    note = f"{r['k']}/{r['n']}"
    if r["n_unscorable"]:
        note += f", {r['n_unscorable']} unscorable"
    return note


def _fmt_int(x: Any) -> str:
    return "—" if x is None else f"{int(x):,}"


def _fmt_float(x: Any, digits: int = 1) -> str:
    return "—" if x is None else f"{float(x):,.{digits}f}"


def _card(card_id: str, title: str, r: dict[str, Any] | None, unit: str, note: str) -> dict:
    if r is None:
        return {"id": card_id, "title": title, "value": "not measured", "ci": "",
                "counts": "", "note": note}
    r = _rate(r)
    counts = f"{r['k']}/{r['n']} {unit}"
    if r["n_unscorable"]:
        counts += f" · {r['n_unscorable']} unscorable"
    value = format_pct(r["rate"]) if r["n"] else "no decided items"
    return {"id": card_id, "title": title, "value": value, "ci": format_ci(r["ci"]),
            "counts": counts, "note": note}


def _cards(results: dict[str, Any]) -> list[dict]:
    behavior_asr = results.get("behavior_asr") or {
        "rate": results.get("asr"), "ci": results.get("asr_ci"), "n": results.get("n_behaviors")}
    behavior_comp = results.get("behavior_compliance") or {
        "rate": results.get("compliance_rate"), "ci": results.get("compliance_rate_ci"),
        "n": results.get("n_behaviors")}
    attempt = _rate(results.get("attempt_asr"))
    n_unscorable = int(results.get("n_unscorable") or 0)
    return [
        _card("card-asr", "Attack success rate (harmful)", behavior_asr, "behaviors",
              "Behaviors for which at least one attack produced a harmful response."),
        _card("card-compliance", "Attempted compliance", behavior_comp, "behaviors",
              "Behaviors for which the target at least tried to comply (harmful or not)."),
        _card("card-attempt-asr", "Attempt-level ASR", results.get("attempt_asr"), "attempts",
              "Share of all target queries whose response was judged harmful."),
        _card("card-refusal", "Refusal rate", results.get("refusal_rate"), "attempts",
              "Share of all target queries the target refused."),
        _card("card-over-refusal", "Over-refusal (benign)", results.get("over_refusal"),
              "benign prompts refused",
              "Harmless counterparts of the behaviors that the target refused anyway."),
        {"id": "card-unscorable", "title": "Unscorable", "value": f"{n_unscorable:,}",
         "ci": "", "counts": f"behavior{'' if n_unscorable == 1 else 's'} · "
                                  f"{attempt['n_unscorable']:,} of "
                                  f"{attempt['n'] + attempt['n_unscorable']:,} attempts",
         "note": "Judge parse failures, API errors or empty output: not counted as safe or "
                 "harmful, and left out of every denominator."},
    ]


def _ladder(results: dict[str, Any]) -> tuple[str, list[tuple[int, str]]]:
    by_attack = results.get("by_attack") or {}
    evidence: dict[int, str] = {}
    if BASELINE_ATTACK in by_attack:
        r = _rate(by_attack[BASELINE_ATTACK].get("asr"))
        evidence[1] = (f"baseline of the raw target — the direct attack (behavior sent as-is): "
                       f"ASR {format_pct(r['rate'])} ({count_note(r)})")
    suite = [a for a in by_attack if a != BASELINE_ATTACK]
    if suite:
        r = _rate(results.get("behavior_asr") or {"rate": results.get("asr"),
                                                  "ci": results.get("asr_ci")})
        evidence[5] = (f"automated red-teaming with AI assistance — the attack suite "
                       f"({len(suite)} attack{'s' if len(suite) != 1 else ''} beyond the "
                       f"baseline): ASR over all attacks {format_pct(r['rate'])} ({count_note(r)})")
    return ladder_svg(evidence), sorted(evidence.items())


def _charts(results: dict[str, Any]) -> list[Markup]:
    by_cat = results.get("by_category") or {}
    by_attack = results.get("by_attack") or {}
    charts = []
    for group, key, items, label, color in (
        ("category", "asr", sorted(by_cat.items()), "ASR (harmful) by category", ASR_COLOR),
        ("category", "compliance", sorted(by_cat.items()), "Attempted compliance by category",
         COMPLIANCE_COLOR),
        ("attack", "asr", list(by_attack.items()), "ASR (harmful) by attack", ASR_COLOR),
        ("attack", "compliance", list(by_attack.items()), "Attempted compliance by attack",
         COMPLIANCE_COLOR),
    ):
        rows = []
        for name, entry in items:
            r = _rate(entry.get(key))
            rows.append((str(name), r["rate"], r["ci"], count_note(r)))
        charts.append(Markup(bar_chart_svg(rows, label, width=CHART_WIDTH, color=color,
                                           chart_id=f"chart-{group}-{key}")))
    return charts


def _attack_rows(results: dict[str, Any]) -> list[dict]:
    rows = []
    for name, entry in (results.get("by_attack") or {}).items():
        asr, comp, att = (_rate(entry.get(k)) for k in ("asr", "compliance", "attempt_asr"))
        rows.append({
            "name": str(name), "kind": entry.get("kind") or "—",
            "description": entry.get("description") or "",
            "asr": format_pct(asr["rate"]), "asr_counts": f"{asr['k']}/{asr['n']}",
            "asr_ci": format_ci(asr["ci"]).removeprefix("95% CI ") or "—",
            "compliance": format_pct(comp["rate"]), "compliance_counts": f"{comp['k']}/{comp['n']}",
            "attempt_asr": format_pct(att["rate"]), "attempt_counts": f"{att['k']}/{att['n']}",
            "unscorable": f"{asr['n_unscorable']} / {att['n_unscorable']}",
            "queries": _fmt_int(entry.get("queries")), "tokens": _fmt_int(entry.get("tokens")),
            "qps": _fmt_float(entry.get("queries_per_success")),
            "tps": _fmt_float(entry.get("tokens_per_success"), 0),
        })
    return rows


def _tri(x: Any) -> str:
    return "unscored" if x is None else ("yes" if x else "no")


def _item(i: int, h: dict[str, Any]) -> dict[str, Any]:
    """A hit or example prepared for the template (text clipped, verdict fields formatted)."""
    v = h.get("verdict") or {}
    conversation = []
    for m in h.get("conversation") or []:
        content, cut = clip(m.get("content"))
        conversation.append({"role": str(m.get("role", "?")), "content": content, "cut": cut})
    response, response_cut = clip(h.get("response"))
    raw, raw_cut = clip(v.get("raw"))
    score = v.get("score")
    return {
        "index": i, "behavior_id": str(h.get("behavior_id", "")),
        "behavior": str(h.get("behavior", "")), "category": str(h.get("category", "")),
        "attack": str(h.get("attack", "")), "attempt": h.get("attempt"),
        "conversation": conversation, "response": response, "response_cut": response_cut,
        "refused": _tri(v.get("refused")), "attempted": _tri(v.get("attempted")),
        "harmful": _tri(v.get("harmful")), "score": "—" if score is None else f"{score:g}",
        "reason": str(v.get("reason") or ""), "raw": raw, "raw_cut": raw_cut,
        "error": v.get("error"), "judge": str(v.get("judge") or ""),
    }


def _options(values: Iterable[str]) -> list[tuple[str, int]]:
    return sorted(Counter(values).items())


def render_redteam_report(results: dict[str, Any], hits: list[dict[str, Any]],
                          examples: list[dict[str, Any]] | None = None) -> str:
    """Render the red-team report to an HTML string (see ``write_redteam_report``).

    Args:
        results: the run's results dict (the ``results.json`` contract).
        hits: attempts judged harmful.
        examples: optional non-hit attempts to show (refusals, unscorable items...).

    Returns:
        The complete HTML document.
    """
    shown_hits = [_item(i, h) for i, h in enumerate(select_shown(hits, MAX_HITS_SHOWN))]
    ex = examples or []
    shown_examples = [_item(i, h) for i, h in enumerate(select_shown(ex, MAX_EXAMPLES_SHOWN))]
    ladder, evidence = _ladder(results)
    config = results.get("config") or {}
    header = [
        ("Target", results.get("target") or "—"),
        ("Attacker", results.get("attacker") or "none (fixed attacks only)"),
        ("Judge", results.get("judge") or "—"),
        ("Run", results.get("run_id") or "—"),
        ("Created", results.get("created") or "—"),
        ("alignlab", results.get("alignlab_version") or "—"),
        ("Duration", fmt_duration(results.get("duration_s"))),
        ("Behaviors", _fmt_int(results.get("n_behaviors", 0))),
        ("Queries", _fmt_int(results.get("queries", 0))),
        ("Tokens", _fmt_int(results.get("tokens", 0))),
    ]
    context = {
        "title": f"Red-team report — {results.get('target') or 'unknown target'}",
        "header": header,
        "target": results.get("target") or "unknown target",
        "judge": results.get("judge") or "unknown judge",
        "cards": _cards(results),
        "judge_caveat": results.get("judge_caveat"),
        "ladder": Markup(ladder),
        "evidence": evidence,
        "charts": _charts(results),
        "attack_rows": _attack_rows(results),
        "queries_per_success": _fmt_float(results.get("queries_per_success")),
        "tokens_per_success": _fmt_float(results.get("tokens_per_success"), 0),
        "hits": shown_hits,
        "n_hits": len(hits),
        "n_hits_omitted": len(hits) - len(shown_hits),
        "category_options": _options(h["category"] for h in shown_hits),
        "attack_options": _options(h["attack"] for h in shown_hits),
        "examples": shown_examples,
        "n_examples": len(ex),
        "n_examples_omitted": len(ex) - len(shown_examples),
        "max_message_chars": MAX_MESSAGE_CHARS,
        "config_json": json.dumps(config, indent=2, sort_keys=True, default=str),
        "script": Markup(_FILTER_JS),
        "script_hash": script_hash(_FILTER_JS),
    }
    return environment().get_template("redteam.html.j2").render(**context)


def write_redteam_report(results: dict[str, Any], hits: list[dict[str, Any]], path: str | Path,
                         examples: list[dict[str, Any]] | None = None) -> Path:
    """Write the red-team report as one self-contained HTML file (works offline).

    Shows at most ``MAX_HITS_SHOWN`` hits (taken round-robin over attacks, with a note of how many
    were left out; the full list is in the run's ``hits.jsonl``) and ``MAX_EXAMPLES_SHOWN``
    examples. Every text from the run is HTML-escaped.

    Args:
        results: the run's results dict (the ``results.json`` contract of the red-team stage).
        hits: attempts judged harmful, each with behavior, category, attack, conversation,
            response and verdict.
        path: where to write the HTML file; parent folders are created.
        examples: optional non-hit attempts (same shape as hits) to show, e.g. refusals and
            unscorable items.

    Returns:
        The path written.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_redteam_report(results, hits, examples), encoding="utf-8")
    return out
