"""The lab report: one self-contained, offline HTML page built from a lab's ``results.json``.

The page reads top to bottom as: a header with what the evidence covers and the scale caveat; the
alignment-difficulty ladder (all ten levels in their bands, the two boundaries, each level's
techniques with their status and headline measurement, levels without evidence marked); the
technique scorecard (every measure with its 95% CI and counts, published reference figures beside
it, never mixed in); the strategy models (observations, prior -> posterior, allocation, EV,
sensitivity, Monte Carlo bands, field progress); the stages; and the config.

Every string from the results is escaped by Jinja2's autoescape, the plots are inline SVG from
:mod:`alignlab.report.strategy_plots` and :mod:`alignlab.report.svg` (which escape their own text), the page
has no script at all (the Content-Security-Policy pins an empty one by hash) and fetches nothing.
Missing values are written "n/a": a workspace with few runs still renders.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard

from markupsafe import Markup, escape

from alignlab.report import strategy_plots as plots
from alignlab.report.page import environment, fmt_duration, script_hash
from alignlab.report.svg import band_style, bar_chart_svg, format_ci, format_pct, ladder_svg
from alignlab.strategy.ladder import BOUNDARIES, LEVELS, band_of

NA = "n/a"
_NOSCRIPT = "/* no script */"
STATUSES = ("measured", "not run", "not in alignlab")
CHART_WIDTH = 1000
"""SVG width of the per-technique rate charts (one per row, so long measure labels fit)."""
STRIP_WIDTH = 860

STAGE_REPORTS = {"redteam": "redteam", "reattack": "guard-eval", "evals": "evals",
                 "interp": "autointerp", "judges": "judge-validate"}
"""Lab stage name -> the run kind whose report (``results["reports"]``) it produced."""

STAGE_ORDER = ("redteam", "judges", "guard", "reattack", "evals", "interp", "strategy")


# ----------------------------------------------------------------------------------- formatting
def _isnum(x: Any) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _text(x: Any) -> str:
    return NA if x is None or x == "" else str(x)


def _pct(x: Any, digits: int = 1) -> str:
    return format_pct(float(x), digits) if _isnum(x) else NA


def _number(x: Any) -> str:
    if not _isnum(x):
        return NA
    x = float(x)
    if x == int(x) and abs(x) < 1e6:
        return f"{int(x):,}"
    return f"{x:,.1f}" if abs(x) >= 100 else f"{x:.3f}"


def _g(x: Any) -> str:
    """An input as written (``0.5``, ``150``), for judgement-call inputs."""
    return f"{float(x):g}" if _isnum(x) else NA


def _years(x: Any) -> str:
    return f"{float(x):.1f}" if _isnum(x) else NA


def _ci_pair(ci: Any) -> tuple[float, float] | None:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_isnum(v) for v in ci):
        return float(ci[0]), float(ci[1])
    return None


def _href(path: Any) -> str | None:
    """A link target that can only be a file path (no ``javascript:`` or other scheme)."""
    if not isinstance(path, str) or not path.strip():
        return None
    s = path.strip()
    return None if ":" in s.split("/", 1)[0] else s


def _ranges(levels: list[int]) -> str:
    """``[1, 3, 4, 5, 6]`` -> ``"1, 3–6"`` (runs of three or more as a range)."""
    out: list[str] = []
    i = 0
    while i < len(levels):
        j = i
        while j + 1 < len(levels) and levels[j + 1] == levels[j] + 1:
            j += 1
        run = levels[i:j + 1]
        out.append(f"{run[0]}–{run[-1]}" if len(run) >= 3 else ", ".join(map(str, run)))
        i = j + 1
    return ", ".join(out)


def format_measure(m: dict[str, Any]) -> dict[str, str]:
    """A scorecard measure as display strings: label, value, ci, counts, unscorable, note.

    Units ``rate`` and ``ratio`` are percentages, ``diff`` signed percentage points, anything else a
    plain number; counts are ``k/n`` when both are known, else ``n = N``.

    Args:
        m: a measure from ``build_scorecard`` (``label``, ``value``, ``ci``, ``k``, ``n``,
            ``n_unscorable``, ``unit``, ``note``); missing keys read as n/a.

    Returns:
        The strings, each present (empty when there is nothing to say).
    """
    unit, v, ci = m.get("unit") or "number", m.get("value"), _ci_pair(m.get("ci"))
    if unit in ("rate", "ratio"):
        value, ci_s = _pct(v), format_ci(ci)
    elif unit == "diff":
        value = f"{100 * v:+.1f} pp" if _isnum(v) else NA
        ci_s = f"95% CI {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f} pp" if ci else ""
    else:
        value = _number(v)
        ci_s = f"95% CI {ci[0]:.3f}–{ci[1]:.3f}" if ci else ""
    k, n = m.get("k"), m.get("n")
    counts = f"{k}/{n}" if _isnum(k) and _isnum(n) and n else (f"n = {n}" if _isnum(n) and n else "")
    u = m.get("n_unscorable")
    return {"label": _text(m.get("label")), "value": value, "ci": ci_s, "counts": counts,
            "unscorable": f"{int(u)} unscorable" if _isnum(u) and u > 0 else "",
            "note": str(m.get("note") or ""), "unit": str(unit)}


def _plot(fn: Callable[[Any], str], data: Any) -> Markup | None:
    """An inline SVG plot, None without data, or a short note when the data cannot be drawn."""
    if not data:
        return None
    try:
        return Markup(fn(data))
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError, AttributeError) as e:
        return Markup(f'<p class="muted small plot-missing">plot not drawn: incomplete data '
                      f'({escape(type(e).__name__)}: {escape(str(e)[:200])})</p>')


# ----------------------------------------------------------------------------------- scorecard
def _reference(r: dict[str, Any]) -> dict[str, str]:
    return {k: str(r.get(k) or "") for k in ("measure", "figure", "source", "where", "note")}


def _technique_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for t in (results.get("scorecard") or {}).get("techniques") or []:
        if not isinstance(t, dict):
            continue
        measures = [m for m in t.get("measures") or [] if isinstance(m, dict)]
        levels = [lv for lv in t.get("levels") or [] if isinstance(lv, int) and 1 <= lv <= 10]
        shown = [format_measure(m) for m in measures]
        bars = [(f["label"], float(m["value"]), _ci_pair(m.get("ci")), f["counts"])
                for m, f in zip(measures, shown)
                if m.get("unit") == "rate" and _isnum(m.get("value")) and 0 <= m["value"] <= 1
                and (_ci_pair(m.get("ci")) is None or 0 <= m["ci"][0] <= m["ci"][1] <= 1)]
        tid = str(t.get("technique") or "")
        name = _text(t.get("name") or tid)
        rows.append({
            "id": tid, "name": name, "levels": levels, "status": _text(t.get("status")),
            "description": str(t.get("description") or ""), "command": str(t.get("command") or ""),
            "stage": t.get("stage"), "run_id": str(t.get("run_id") or ""),
            "measures": shown, "references": [_reference(r) for r in t.get("references") or []
                                              if isinstance(r, dict)],
            "comparison": str(t.get("comparison") or ""), "caveat": str(t.get("caveat") or ""),
            "report": _href(t.get("report")),
            "chart": Markup(bar_chart_svg(bars, name, width=CHART_WIDTH, chart_id=f"chart-technique-{tid}"))
            if bars else None,
        })
    return rows


# ----------------------------------------------------------------------------------- ladder
def _ladder(results: dict[str, Any], techniques: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ten levels, each with its band, text, techniques and evidence flag (data or derived)."""
    given = {lv.get("level"): lv for lv in results.get("levels") or [] if isinstance(lv, dict)}
    by_id = {t["id"]: t for t in techniques}
    out = []
    for lv in LEVELS:
        g = given.get(lv.number) or {}
        items = g.get("techniques")
        if not isinstance(items, list):
            items = [{"technique": t["id"]} for t in techniques if lv.number in t["levels"]]
        techs = []
        for it in items:
            if not isinstance(it, dict):
                continue
            row = by_id.get(it.get("technique"), {})
            status = _text(it.get("status") or row.get("status"))
            headline = it.get("headline")
            if not headline and status == "measured" and row.get("measures"):
                m = row["measures"][0]
                headline = f"{m['label']}: {m['value']}" + (f" ({m['counts']})" if m["counts"] else "")
            refs = row.get("references") or []
            techs.append({"id": str(it.get("technique") or ""),
                          "name": _text(it.get("name") or row.get("name")), "status": status,
                          "headline": str(headline or ""),
                          "report": _href(it.get("report")) or row.get("report"),
                          "command": row.get("command") or "",
                          "reference": f"{refs[0]['figure']} ({refs[0]['source']})" if refs else ""})
        has = g.get("has_evidence")
        if not isinstance(has, bool):
            has = any(t["status"] == "measured" for t in techs)
        band, muted, strong = band_style(lv.number)
        out.append({"number": lv.number, "band": band, "muted": muted, "strong": strong,
                    "name": _text(g.get("name") or lv.name),
                    "sufficient": _text(g.get("sufficient") or lv.sufficient),
                    "failure_modes": [str(f) for f in (g.get("failure_modes") or lv.failure_modes)],
                    "techniques": techs, "has_evidence": has})
    return out


def _boundaries(results: dict[str, Any]) -> dict[int, dict[str, str]]:
    given = (results.get("ladder") or {}).get("boundaries")
    items: list[Any] = given if isinstance(given, list) and given else [
        {"after": b.after, "name": b.name, "meaning": b.meaning} for b in BOUNDARIES]
    return {int(b["after"]): {"name": _text(b.get("name")), "meaning": str(b.get("meaning") or "")}
            for b in items if isinstance(b, dict) and b.get("after") in range(1, 10)}


def _bands() -> list[dict[str, Any]]:
    out = []
    for first, last in ((1, 3), (4, 7), (8, 10)):
        name, muted, strong = band_style(first)
        out.append({"name": name, "first": first, "last": last, "muted": muted, "strong": strong})
    return out


# ----------------------------------------------------------------------------------- strategy
def _band3(b: Any, fmt: Callable[[Any], str] = _number) -> list[str]:
    b = b if isinstance(b, dict) else {}
    return [fmt(b.get(q)) for q in ("p5", "p50", "p95")]


def _dict(x: Any) -> dict[str, Any]:
    """``x`` when it is a dict, else an empty one."""
    return x if isinstance(x, dict) else {}


def _at(xs: Any, i: int) -> Any:
    return xs[i] if isinstance(xs, list) and i < len(xs) else None


def _strategy(results: dict[str, Any]) -> dict[str, Any]:
    s = _dict(results.get("strategy"))
    alloc = _dict(s.get("allocation"))
    ev = _dict(alloc.get("evidence"))
    prog = _dict(s.get("progress"))
    inputs = alloc.get("inputs") or {}
    budget = inputs.get("budget")
    mc = alloc.get("monte_carlo") or {}

    observations = [{"id": _text(o.get("id")), "metric": _text(o.get("metric")),
                     "value": _number(o.get("value")), "n": _number(o.get("n")),
                     "applied": bool(o.get("applied")), "reason": str(o.get("reason") or ""),
                     "source": _text(o.get("source"))}
                    for o in s.get("observations") or [] if isinstance(o, dict)]
    ev_obs = [o for o in ev.get("observations") or [] if isinstance(o, dict)]
    obs_cols = [f"{o.get('id')} (w = {_g(o.get('transfer'))})" for o in ev_obs]

    def share(x: Any) -> str:
        return _pct(x / budget) if _isnum(x) and _isnum(budget) and budget else NA

    mc_alloc = mc.get("allocation") or {}
    levels = []
    for i, lv in enumerate(LEVELS):
        x_post = _at(ev.get("allocation_under_posterior") or alloc.get("allocation"), i)
        lo, hi = _at(mc_alloc.get("p5"), i), _at(mc_alloc.get("p95"), i)
        levels.append({
            "number": lv.number, "name": lv.name, "band": band_of(lv.number),
            "prior": _pct(_at(ev.get("prior"), i)), "posterior": _pct(_at(ev.get("posterior"), i)),
            "change": (f"{100 * (ev['posterior'][i] - ev['prior'][i]):+.2f} pp"
                       if _isnum(_at(ev.get("prior"), i)) and _isnum(_at(ev.get("posterior"), i)) else NA),
            "bf": [_number(_at(o.get("bayes_factors"), i)) for o in ev_obs],
            "x_prior": share(_at(ev.get("allocation_under_prior"), i)),
            "x_post": share(x_post), "x_band": f"{share(lo)}–{share(hi)}" if _isnum(lo) and _isnum(hi) else NA,
            "p_success": _pct(_at(alloc.get("p_success_given_D"), i)),
            "harm": _pct(_at(alloc.get("harm_given_D"), i)),
            "cost": _g(_at(inputs.get("cost_scales"), i)) if i < 9 else "never ready",
        })
    base = alloc.get("baselines") or {}
    best = base.get("best_single") or {}
    ev_pp = ev.get("ev_prior_allocation_under_posterior")
    ev_post = ev.get("ev_under_posterior", alloc.get("expected_value"))
    evs = [
        ("optimal EV (posterior)", _number(alloc.get("expected_value")), "P(success) − expected harm"),
        ("expected P(success)", _pct(alloc.get("expected_p_success")), "over the posterior"),
        ("expected harm", _number(alloc.get("expected_harm")),
         f"harm weight h = {_g(inputs.get('harm_weight'))}: deployed looking safe, insufficient"),
        ("EV, uniform over levels 1–9", _number(base.get("uniform_1_to_9")), "baseline"),
        ("EV, uniform over all 10", _number(base.get("uniform_all_10")), "baseline (level 10 buys nothing)"),
        ("EV, best single technique", _number(best.get("ev")), f"all budget to level {_text(best.get('level'))}"),
        ("EV of the prior's allocation, under the prior", _number(ev.get("ev_under_prior")), "before the evidence"),
        ("EV of the prior's allocation, under the posterior", _number(ev_pp), "ignoring the evidence"),
        ("value of updating", _number(ev_post - ev_pp) if _isnum(ev_post) and _isnum(ev_pp) else NA,
         "posterior-optimal EV minus the prior allocation's EV, both under the posterior"),
    ]
    mc_rows = [(label, *_band3(mc.get(key), fmt))
               for label, key, fmt in (("EV of the chosen allocation", "ev_chosen", _number),
                                       ("P(success), chosen allocation", "p_success_chosen", _pct),
                                       ("expected harm, chosen allocation", "harm_chosen", _number),
                                       ("EV, re-optimised per sample", "ev_reoptimised", _number),
                                       ("regret (re-optimised − chosen)", "regret", _number))
               if isinstance(mc.get(key), dict)]
    unc = inputs.get("uncertainty") or {}
    judgement = [("budget B", _g(budget)), ("harm weight h", _g(inputs.get("harm_weight"))),
                 ("cost scales c1–c9", ", ".join(_g(c) for c in inputs.get("cost_scales") or []) or NA),
                 ("prior over D (levels 1–10)", ", ".join(_pct(p, 0) for p in ev.get("prior") or []) or NA),
                 ("Dirichlet concentration of the prior", _g(unc.get("prior_concentration"))),
                 ("cost log-normal σ", _g(unc.get("cost_sigma"))),
                 ("harm log-normal σ", _g(unc.get("harm_sigma"))),
                 ("Monte Carlo samples", _number(mc.get("samples", unc.get("samples"))))]

    scenarios = []
    horizons: list[str] = []
    for sc in prog.get("scenarios") or []:
        if not isinstance(sc, dict):
            continue
        within = sc.get("p_done_within") or {}
        keys = sorted(within, key=lambda k: float(k) if _isnum(_safe_float(k)) else math.inf)
        horizons = horizons or [str(k) for k in keys]
        ct = sc.get("completion_time") or {}
        scenarios.append({
            "growth": _pct((sc.get("inputs") or {}).get("growth"), 0),
            "within": [_pct(within.get(k)) for k in horizons],
            "deadline": _pct(sc.get("p_done_by_deadline")),
            "median": _years(ct.get("p50")), "interval": f"{_years(ct.get('p5'))}–{_years(ct.get('p95'))}",
            "remaining": _years(sc.get("remaining_work_years_of_current_effort"))})
    first = next((sc for sc in prog.get("scenarios") or [] if isinstance(sc, dict)), {})
    pin = first.get("inputs") or {}
    deadline = (pin.get("deadline") or {}).get("spec")
    ng = prog.get("needed_growth") or {}
    progress_inputs = [("fraction of the work done now", _pct(pin.get("done"), 0)),
                       ("its 90% interval factor (×/÷)", _g(pin.get("done_factor"))),
                       ("past growth of the field's effort", _pct(prog.get("historical_growth"), 0)),
                       ("deadline (years)", _text(deadline)),
                       ("AI-assistance multiplier", _g(pin.get("ai_multiplier")))]
    return {
        "has_alloc": bool(alloc), "has_evidence": bool(ev), "has_progress": bool(prog),
        "observations": observations, "obs_cols": obs_cols, "levels": levels, "evs": evs,
        "mc_rows": mc_rows, "mc_samples": _number(mc.get("samples")), "judgement": judgement,
        "scenarios": scenarios, "horizons": horizons, "progress_inputs": progress_inputs,
        "needed": str(ng.get("message") or NA),
        "plots": {
            "prior_posterior": _plot(plots.prior_posterior_svg, ev),
            "allocation": _plot(plots.allocation_svg, alloc),
            "success": _plot(plots.success_svg, alloc),
            "sensitivity": _plot(plots.sensitivity_svg, alloc),
            "progress": _plot(plots.progress_curves_svg, prog),
            "completion": _plot(plots.completion_time_svg, prog),
            "needed": _plot(plots.needed_growth_svg, prog),
        },
    }


def _safe_float(x: Any) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


# ----------------------------------------------------------------------------------- stages
def _stages(results: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    reports = {str(k): _href(v) for k, v in (results.get("reports") or {}).items()}
    stages = _dict(results.get("stages"))
    order = sorted(stages, key=lambda s: STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER))
    rows, used = [], set()
    for name in order:
        st = stages[name] if isinstance(stages[name], dict) else {}
        kind = STAGE_REPORTS.get(name, name)
        link = reports.get(kind)
        if link:
            used.add(kind)
        rows.append({"name": str(name), "seconds": fmt_duration(st.get("seconds"))
                     if _isnum(st.get("seconds")) else NA,
                     "summary": _text(st.get("summary")), "run_id": str(st.get("run_id") or ""),
                     "out": str(st.get("out") or ""), "report": link})
    others = [(k, v) for k, v in reports.items() if k not in used and v]
    return rows, others


# ----------------------------------------------------------------------------------- page
def _header(results: dict[str, Any]) -> list[tuple[str, str]]:
    created = results.get("created")
    return [("Target", _text(results.get("target"))),
            ("alignlab", _text(results.get("alignlab_version"))),
            ("Lab run", _text(results.get("run_id"))),
            ("Date", _text(created.replace("T", " ") if isinstance(created, str) else created)),
            ("Duration", fmt_duration(results["duration_s"]) if _isnum(results.get("duration_s")) else NA),
            ("Workspace", _text(results.get("workspace")))]


def _coverage(ladder: list[dict[str, Any]], techniques: list[dict[str, Any]]) -> dict[str, str]:
    with_ev = [lv["number"] for lv in ladder if lv["has_evidence"]]
    without = [lv["number"] for lv in ladder if not lv["has_evidence"]]
    counts = {s: sum(1 for t in techniques if t["status"] == s) for s in STATUSES}
    return {"with": _ranges(with_ev) or "none", "without": _ranges(without) or "none",
            "n_with": str(len(with_ev)),
            "techniques": (f"{counts['measured']} of {len(techniques)} techniques measured, "
                           f"{counts['not run']} available but not run, "
                           f"{counts['not in alignlab']} not in alignlab yet")}


def render_lab_report(results: dict[str, Any]) -> str:
    """Render the lab report to an HTML string (see :func:`write_lab_report`).

    Args:
        results: the lab's results dict (the ``results.json`` of ``alignlab lab`` or
            ``alignlab report``); any part may be missing.

    Returns:
        The complete HTML document.
    """
    results = results if isinstance(results, dict) else {}
    techniques = _technique_rows(results)
    ladder = _ladder(results, techniques)
    config = _dict(results.get("config"))
    stages, other_reports = _stages(results)
    target = _text(results.get("target"))
    context = {
        "title": f"Lab report — {target}",
        "target": target,
        "helper": ("the target itself as helper" if config.get("helper") == "target"
                   else f"helper {_text(config.get('helper'))}"),
        "header": _header(results),
        "coverage": _coverage(ladder, techniques),
        "strip": Markup(ladder_svg({lv["number"]: "; ".join(
            f"{t['name']}: {t['headline']}" for t in lv["techniques"] if t["status"] == "measured")
            or "measured" for lv in ladder if lv["has_evidence"]}, width=STRIP_WIDTH)),
        "ladder": ladder, "bands": _bands(), "boundaries": _boundaries(results),
        "techniques": techniques, "statuses": STATUSES,
        "strategy": _strategy(results),
        "stages": stages, "other_reports": other_reports,
        "config_json": json.dumps(config, indent=2, sort_keys=True, default=str),
        "script": Markup(_NOSCRIPT), "script_hash": script_hash(_NOSCRIPT),
    }
    return environment().get_template("lab.html.j2").render(**context)


def write_lab_report(results: dict[str, Any], path: str | Path) -> Path:
    """Write the lab report as one self-contained HTML file (inline CSS and SVG, no script, offline).

    Args:
        results: the lab's results dict (see :func:`alignlab.lab.results.build_lab_results`).
        path: where to write; parent folders are created. Links to the stage reports in
            ``results`` are relative to this file's folder.

    Returns:
        The path written.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_lab_report(results), encoding="utf-8")
    return p
