"""Inline SVG plots of the strategy models, for the CLI's output folder and the lab report.

Every function returns a self-contained SVG string (no script, no external reference, every text
escaped) drawn with the report's generic helpers, :func:`alignlab.report.svg.bar_chart_svg` and
:func:`alignlab.report.charts.xy_chart_svg`.
"""

from __future__ import annotations

from typing import Any

from alignlab.report.charts import xy_chart_svg
from alignlab.report.svg import bar_chart_svg
from alignlab.strategy.ladder import LEVEL_NAMES

_BLUE, _GREY, _RED, _GREEN, _ORANGE = "#3b6fb6", "#8a94a6", "#b5473a", "#3f8f5a", "#c7881c"
_PALETTE = (_BLUE, _RED, _GREEN, _ORANGE, "#7a63b3", "#2a9d9d")


def _level_label(d: int) -> str:
    return f"{d} {LEVEL_NAMES[d]}"


def allocation_svg(result: dict[str, Any]) -> str:
    """Budget share per technique (optimal allocation), with the Monte Carlo 5-95% whiskers.

    Args:
        result: an :func:`alignlab.strategy.allocate.allocate` result.

    Returns:
        The SVG markup.
    """
    B = result["inputs"]["budget"]
    mc = result.get("monte_carlo") or {}
    band = mc.get("allocation")
    rows = []
    for d, x in enumerate(result["allocation"]):
        ci = None
        if band:
            lo, hi = min(1.0, max(0.0, band["p5"][d] / B)), min(1.0, max(0.0, band["p95"][d] / B))
            ci = (min(lo, hi), max(lo, hi))
        rows.append((_level_label(d + 1), min(1.0, max(0.0, x / B)), ci, f"{x:.2f} of {B:g}"))
    title = "Optimal allocation: budget share per technique"
    if band:
        title = f"Budget share per technique (whiskers: 5-95% of {mc['samples']} samples)"
    return bar_chart_svg(rows, title, chart_id="strategy-allocation")


def success_svg(result: dict[str, Any]) -> str:
    """P(success | D) per true level under the optimal allocation (whiskers: Monte Carlo 5-95%).

    Args:
        result: an :func:`alignlab.strategy.allocate.allocate` result.

    Returns:
        The SVG markup.
    """
    mc = (result.get("monte_carlo") or {}).get("p_success_given_D")
    rows = []
    for d, p in enumerate(result["p_success_given_D"]):
        ci = (max(0.0, mc["p5"][d]), min(1.0, mc["p95"][d])) if mc else None
        note = f"prior {result['levels'][d]['prior']:.0%}"
        rows.append((f"D = {_level_label(d + 1)}", min(1.0, max(0.0, p)), ci, note))
    return bar_chart_svg(rows, "P(success | true level D) under the optimal allocation", color=_GREEN,
                         chart_id="strategy-success")


def prior_posterior_svg(update: dict[str, Any]) -> str:
    """The prior and the posterior over D, as two lines over the levels.

    Args:
        update: an :func:`alignlab.strategy.evidence.update_prior` result.

    Returns:
        The SVG markup.
    """
    xs = list(range(1, 11))
    ids = ", ".join(f"{o['id']} (w={o['transfer']:g})" for o in update["observations"]) or "none"
    pts = [{"x": d, "y": p, "color": c, "tip": f"{name} P(D={d}) = {p:.1%}", "cls": f"point {name}"}
           for name, c in (("prior", _GREY), ("posterior", _BLUE)) for d, p in zip(xs, update[name])]
    lines = [{"xs": xs, "ys": update["prior"], "color": _GREY, "cls": "line prior", "tip": "prior"},
             {"xs": xs, "ys": update["posterior"], "color": _BLUE, "cls": "line posterior",
              "tip": f"posterior after {ids}"}]
    n = len(update["observations"])
    return xy_chart_svg(f"Prior and posterior over the difficulty level ({n} observation{'s' * (n != 1)})",
                        "level D (the posterior line's tooltip lists the evidence)",
                        "probability", lines=lines, points=pts, label_points=False,
                        legend=[("prior", _GREY), ("posterior", _BLUE)], chart_id="strategy-prior-posterior")


def sensitivity_svg(result: dict[str, Any], top: int = 12) -> str:
    """A tornado chart: the change in optimal EV when each input moves down or up by the step.

    Args:
        result: an :func:`alignlab.strategy.allocate.allocate` result.
        top: how many inputs to show (largest effect at the top).

    Returns:
        The SVG markup.
    """
    rows = result["sensitivity"][:top]
    step = result["inputs"]["sensitivity_step"]
    n = len(rows)
    lines, points = [], []
    for i, r in enumerate(rows):
        y = n - i
        for side, color in (("low", _RED), ("high", _BLUE)):
            dev = r[f"dev_{side}"]
            tip = (f"{r['label']} {r['value']:.4g} → {r[side]:.4g}: optimal EV {dev:+.4f}, "
                   f"{r[f'shift_{side}']:.0%} of the budget moves")
            lines.append({"xs": [0.0, dev], "ys": [y, y], "color": color, "width": 9, "tip": tip,
                          "cls": f"line tornado-{side}", "attrs": {"input": r["input"]}})
        end = max(r["dev_low"], r["dev_high"], 0.0)
        points.append({"x": end, "y": y, "color": "#f7f9fc", "label": r["label"], "cls": "point tornado-label",
                       "tip": r["label"]})
    if not rows:
        lines = [{"xs": [0, 0], "ys": [0, 1], "color": _GREY}]
    return xy_chart_svg(f"Sensitivity of the optimal EV: each input -{step:.0%} / +{step:.0%}, re-optimised",
                        "change in optimal expected value", "input (largest effect on top)", lines=lines,
                        points=points, legend=[(f"input -{step:.0%}", _RED), (f"input +{step:.0%}", _BLUE)],
                        height=max(260, 40 + 26 * n), chart_id="strategy-sensitivity")


def _growth_label(s: dict[str, Any]) -> str:
    return f"growth {s['inputs']['growth']:.0%}/yr"


def progress_curves_svg(report: dict[str, Any]) -> str:
    """P(done within T) over T, one curve per growth rate, with the deadline marked when fixed.

    Args:
        report: an :func:`alignlab.strategy.progress.progress_report` result.

    Returns:
        The SVG markup.
    """
    lines, legend = [], []
    for i, s in enumerate(report["scenarios"]):
        c = _PALETTE[i % len(_PALETTE)]
        lines.append({"xs": s["curve"]["years"], "ys": s["curve"]["p_done"], "color": c,
                      "tip": f"{_growth_label(s)}: P(done before deadline) {s['p_done_by_deadline']:.1%}",
                      "cls": "line p-done", "attrs": {"growth": s["inputs"]["growth"]}})
        legend.append((_growth_label(s), c))
    dl = report["scenarios"][0]["inputs"]["deadline"]
    if dl["kind"] == "fixed":
        y0 = dl["years"][0]
        lines.append({"xs": [y0, y0], "ys": [0, 1], "color": _GREY, "width": 1, "cls": "line deadline",
                      "tip": f"deadline {y0:g} years"})
    return xy_chart_svg(f"P(technical alignment done within T years) (past growth "
                        f"{report['historical_growth']:.0%}/yr)", "years from now", "P(done within T)",
                        lines=lines, legend=legend, chart_id="strategy-progress-curves")


def completion_time_svg(report: dict[str, Any]) -> str:
    """The completion-time density per growth rate, with its median marked.

    Args:
        report: an :func:`alignlab.strategy.progress.progress_report` result.

    Returns:
        The SVG markup.
    """
    lines, points, legend = [], [], []
    for i, s in enumerate(report["scenarios"]):
        c = _PALETTE[i % len(_PALETTE)]
        ys = [max(0.0, v) for v in s["curve"]["density"]]
        lines.append({"xs": s["curve"]["years"], "ys": ys, "color": c, "cls": "line density",
                      "tip": f"{_growth_label(s)}: completion-time density"})
        med = s["completion_time"].get("p50")
        if med is not None:
            q = s["completion_time"]
            points.append({"x": med, "y": 0.0, "color": c, "label": f"median {med:.1f}y",
                           "tip": f"{_growth_label(s)}: median {med:.1f} years, 90% interval "
                                  f"{q['p5']:.1f}-{q['p95'] if q['p95'] is not None else float('inf'):.1f}"})
        legend.append((_growth_label(s), c))
    return xy_chart_svg("When is the work done? Completion-time distribution", "years from now",
                        "probability density (per year)", lines=lines, points=points, legend=legend,
                        chart_id="strategy-completion-time")


def needed_growth_svg(report: dict[str, Any]) -> str:
    """P(done before the deadline) as a function of the growth rate, the target, and the answer.

    Args:
        report: an :func:`alignlab.strategy.progress.progress_report` result.

    Returns:
        The SVG markup.
    """
    ng = report["needed_growth"]
    gs, ps = ng["curve"]["growth"], ng["curve"]["p"]
    lines = [{"xs": gs, "ys": ps, "color": _BLUE, "cls": "line needed-curve", "tip": "P(done before deadline)"},
             {"xs": [gs[0], gs[-1]], "ys": [ng["probability"]] * 2, "color": _GREY, "width": 1,
              "cls": "line target", "tip": f"target {ng['probability']:.0%}"}]
    points = []
    if ng["growth"] is not None:
        points.append({"x": ng["growth"], "y": ng["probability"], "color": _RED, "cls": "point needed",
                       "label": f"needed {ng['growth']:.0%}/yr", "tip": ng["message"]})
    return xy_chart_svg(f"Growth needed: {ng['message']}", "growth rate of the field's effort (per year)",
                        "P(done before deadline)", lines=lines, points=points,
                        chart_id="strategy-needed-growth")
