"""The guard-eval report: before/after bars with CIs, ROC and PR curves, blocked and missed examples."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from alignlab.report.page import environment, fmt_duration, script_hash
from alignlab.report.svg import bar_chart_svg, format_ci, format_pct

_NOSCRIPT = "/* no script */"


def curve_svg(curves: Sequence[tuple[str, list[list[float]], str]], title: str, xlabel: str,
              ylabel: str, width: int = 320, height: int = 260) -> str:
    """Line plot of (x, y) points in [0, 1]², one polyline per (label, points, colour)."""
    left, top, right, bottom = 40, 28, 10, 34
    pw, ph = width - left - right, height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" aria-label="{html.escape(title)}" class="curve">',
             f'<text x="{left}" y="16" font-size="13" font-weight="600">{html.escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#8a94a6"/>']
    for t in (0.0, 0.5, 1.0):
        x = left + t * pw
        y = top + (1 - t) * ph
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">{t:g}</text>')
        parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{t:g}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 4}" font-size="11" text-anchor="middle">'
                 f'{html.escape(xlabel)}</text>')
    parts.append(f'<text x="12" y="{top + ph / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + ph / 2})">{html.escape(ylabel)}</text>')
    for k, (label, pts, colour) in enumerate(curves):
        if not pts:
            continue
        path = " ".join(f"{left + x * pw:.1f},{top + (1 - y) * ph:.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
                     f'<title>{html.escape(label)}</title></polyline>')
        parts.append(f'<text x="{left + pw - 4}" y="{top + ph - 8 - 14 * k}" font-size="10" '
                     f'text-anchor="end" fill="{colour}">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _row(label: str, r: dict[str, Any] | None) -> tuple:
    r = r or {}
    return (label, r.get("rate"), tuple(r["ci"]) if r.get("ci") else None,
            f"{r.get('k', 0)}/{r.get('n', 0)}")


def _pair_chart(title: str, u: dict | None, g: dict | None, color: str) -> Markup:
    return Markup(bar_chart_svg([_row("unguarded", u), _row("guarded", g)], title, color=color))


def _norm(it: dict[str, Any]) -> dict[str, Any]:
    """Every key the template reads, present (the template is strict about missing keys)."""
    g = it.get("guard") or {}
    v = it.get("verdict") or {}
    return {"category": it.get("category", ""), "attack": it.get("attack", ""),
            "behavior": it.get("behavior", ""), "prompt": it.get("prompt", ""),
            "response": it.get("response", ""),
            "verdict": {k: v.get(k) for k in ("harmful", "attempted", "refused")},
            "guard": {"by": g.get("by"), "stage": g.get("stage"), "at_token": g.get("at_token"),
                      "score": g.get("score"), "threshold": g.get("threshold")}}


def render_guard_report(results: dict[str, Any], examples: dict[str, list[dict]] | None = None) -> str:
    """Render the guard-eval report to an HTML string."""
    ex = {k: [_norm(it) for it in v] for k, v in (examples or {}).items()}
    for k in ("blocked", "missed", "benign_refused"):
        ex.setdefault(k, [])
    ru = results.get("runs", {})

    def rate_of(key: str) -> dict:
        """A rate dict rebuilt from the top-level figures for the headline bars."""
        return {"rate": results.get(key), "ci": results.get(key + "_ci"), "k": "", "n": ""}

    by_attack = results.get("by_attack", {})
    charts = [
        Markup(bar_chart_svg([_row("unguarded", rate_of("asr_unguarded")),
                              _row("guarded", rate_of("asr_guarded"))], "ASR (harmful), per behavior",
                             color="#b5473a")),
        Markup(bar_chart_svg([_row("unguarded", rate_of("compliance_unguarded")),
                              _row("guarded", rate_of("compliance_guarded"))],
                             "Attempted compliance, per behavior", color="#c7881c")),
        _pair_chart("Over-refusal: benign counterparts",
                    results["over_refusal"]["benign_counterparts"]["unguarded"],
                    results["over_refusal"]["benign_counterparts"]["guarded"], "#3b6fb6"),
        _pair_chart("Over-refusal: borderline set", results["over_refusal"]["borderline"]["unguarded"],
                    results["over_refusal"]["borderline"]["guarded"], "#3b6fb6"),
        Markup(bar_chart_svg(
            [r for a, v in by_attack.items() for r in (
                _row(f"{a} · unguarded", v["unguarded"]["compliance"]),
                _row(f"{a} · guarded", (v.get("guarded") or {}).get("compliance")))],
            "Attempted compliance by attack", color="#c7881c")),
    ]
    curves = []
    colours = ["#3b6fb6", "#b5473a", "#3f8f5a", "#7a4fb0"]
    cls = results.get("classifiers", {})
    roc = [(k, v.get("roc") or [], colours[i % 4]) for i, (k, v) in enumerate(cls.items())]
    pr = [(k, v.get("pr") or [], colours[i % 4]) for i, (k, v) in enumerate(cls.items())]
    if any(p for _, p, _ in roc):
        curves.append(Markup(curve_svg(roc, "ROC on evaluation traffic", "false-positive rate",
                                       "true-positive rate")))
        curves.append(Markup(curve_svg(pr, "Precision–recall on evaluation traffic", "recall", "precision")))
    cls_rows = [{"name": k, **{m: v.get(m) for m in ("n_pos", "n_neg", "precision", "recall", "f1", "auprc",
                                                     "auroc", "tpr_at_1pct_fpr", "fpr", "threshold")}}
                for k, v in cls.items()]
    ov = results.get("overhead", {})
    lat = results.get("latency", {})
    st = results.get("streaming", {})
    header = [
        ("Target", results.get("target")), ("Guard", f"{results.get('guard')} ({results.get('backbone')})"),
        ("Stages", ", ".join(results.get("stages", []))), ("Judge", results.get("judge")),
        ("Behaviors", results.get("n_behaviors")), ("Runs", f"{ru.get('unguarded')} → {ru.get('guarded')}"),
        ("Duration", fmt_duration(results.get("duration_s"))),
        ("Leakage check", results.get("leakage_check")),
        ("Thresholds", _calibration_line(results.get("calibration"))),
    ]
    cards = [
        ("ASR (harmful)", results.get("asr_unguarded"), results.get("asr_guarded"),
         results.get("asr_unguarded_ci"), results.get("asr_guarded_ci")),
        ("Attempted compliance", results.get("compliance_unguarded"), results.get("compliance_guarded"),
         results.get("compliance_unguarded_ci"), results.get("compliance_guarded_ci")),
        ("Over-refusal (benign + borderline)", results.get("over_refusal_unguarded"),
         results.get("over_refusal_guarded"), results.get("over_refusal_unguarded_ci"),
         results.get("over_refusal_guarded_ci")),
    ]
    context = {
        "title": f"Guard report — {results.get('guard')} on {results.get('target')}",
        "header": [(k, "—" if v is None else str(v)) for k, v in header],
        "cards": [{"label": l, "u": format_pct(u), "g": format_pct(g), "uci": format_ci(uc),
                   "gci": format_ci(gc)} for l, u, g, uc, gc in cards],
        "judge_caveat": results.get("judge_caveat"),
        "charts": charts, "curves": curves, "cls_rows": cls_rows,
        "overhead": ov, "latency": lat, "streaming": st,
        "seen": results.get("asr_seen_attacks", {}), "heldout": results.get("asr_heldout_attacks", {}),
        "examples": ex, "fmt": format_pct,
        "config_json": json.dumps(results.get("config", {}), indent=2, default=str),
        "script": Markup(_NOSCRIPT), "script_hash": script_hash(_NOSCRIPT),
    }
    return environment().get_template("guard.html.j2").render(**context)


def write_guard_report(results: dict[str, Any], path: str | Path,
                       examples: dict[str, list[dict]] | None = None) -> Path:
    """Write the guard-eval report as one self-contained HTML file."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_guard_report(results, examples), encoding="utf-8")
    return out


def _calibration_line(cal: dict | None) -> str:
    """How the guard's thresholds were set, in one line for the report header."""
    if not cal:
        return "as trained (out-of-fold scores of the constitution's permitted requests)"
    raised = [k for k, h in (cal.get("heads") or {}).items() if h.get("raised")]
    bound = "" if cal.get("exact", True) else " (estimated: embedding heads scored on word-cut prefixes)"
    return (f"calibrated on {cal.get('n')} benign prompts ({cal.get('source') or 'user file'}) to fpr "
            f"{cal.get('fpr')} per classifier; raised: {', '.join(raised) or 'none'}; those prompts refused "
            f"{cal.get('blocked_before')} -> {cal.get('blocked_after')}{bound}")

