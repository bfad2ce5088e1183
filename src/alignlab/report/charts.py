"""Generic inline-SVG charts of the evals report: outcome strips, difference plots, x-y charts.

Split from :mod:`alignlab.report.evals` so that module stays about the report itself; colours and
escaping follow :mod:`alignlab.report.svg`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from alignlab.report.svg import esc, num

CHART_WIDTH = 580
_MUTED, TEXT_COLOR, _GRID = "#5b6577", "#1f2733", "#e3e7ee"
SHOWS_COLOR, NOT_COLOR, UNSCORABLE_COLOR = "#b5473a", "#3f8f5a", "#7a63b3"
"""Outcome colours: shows the behaviour / does not / unscorable (its own colour, never either side)."""


def outcome_bar_svg(k: int, n: int, n_unscorable: int, width: int = 120) -> str:
    """A stacked strip: shows behaviour (k), does not (n - k), unscorable, widths proportional.

    Each segment is a ``rect.seg-{shows,not,unscorable}`` with ``data-count``.
    """
    total = n + n_unscorable
    parts = [("shows", k, SHOWS_COLOR), ("not", n - k, NOT_COLOR),
             ("unscorable", n_unscorable, UNSCORABLE_COLOR)]
    tip = f"{k} shows behaviour, {n - k} does not, {n_unscorable} unscorable"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="outcome-bar" viewBox="0 0 {width} 10" '
           f'width="{width}" height="10" role="img" aria-label="{esc(tip)}"><title>{esc(tip)}</title>',
           f'<rect x="0" y="0" width="{width}" height="10" fill="{_GRID}"/>']
    x = 0.0
    for name, c, color in parts:
        w = 0.0 if total == 0 else c / total * width
        out.append(f'<rect class="seg-{name}" x="{num(x)}" y="0" width="{num(w)}" height="10" '
                   f'fill="{color}" data-count="{c}"/>')
        x += w
    return "".join(out) + "</svg>"


def diff_svg(diff: float | None, ci: tuple[float, float] | None, scale: float = 1.0,
             width: int = 160) -> str:
    """A one-row forest plot of a difference on [-scale, scale]: zero line, point and CI line."""
    def px(v: float) -> float:
        return 4 + (max(-scale, min(scale, v)) / scale + 1) / 2 * (width - 8)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="diff-plot" viewBox="0 0 {width} 16" '
           f'width="{width}" height="16" role="img" aria-label="difference B − A">',
           f'<line x1="{num(px(0))}" y1="1" x2="{num(px(0))}" y2="15" stroke="#8a94a6" '
           'stroke-dasharray="2 2"/>']
    if ci is not None:
        out.append(f'<line class="diff-ci" x1="{num(px(ci[0]))}" y1="8" x2="{num(px(ci[1]))}" '
                   f'y2="8" stroke="{TEXT_COLOR}" stroke-width="1.5"/>')
    if diff is not None:
        out.append(f'<circle class="diff-point" cx="{num(px(diff))}" cy="8" r="3.5" fill="#3b6fb6"/>')
    return "".join(out) + "</svg>"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    raw = (hi - lo) / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _span(values: Sequence[float], pad: float = 0.06) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        return lo - 0.5, hi + 0.5
    return lo - pad * (hi - lo), hi + pad * (hi - lo)


def xy_chart_svg(title: str, xlabel: str, ylabel: str, *, lines: Sequence[dict] = (),
                 bands: Sequence[dict] = (), points: Sequence[dict] = (),
                 errorbars: Sequence[dict] = (), legend: Sequence[tuple[str, str]] = (),
                 width: int = CHART_WIDTH, height: int = 340, chart_id: str | None = None,
                 label_points: bool = True) -> str:
    """A scatter / line chart in data coordinates, every text escaped, no script.

    The axes span the data (every x and y of every element) with a 6% margin. A value ``v`` on the x
    axis sits at ``plot_x + (v - x_min) / (x_max - x_min) * plot_width`` (and y likewise, upwards);
    these six numbers are the ``data-*`` attributes of the ``<svg>``.

    Args:
        title: chart title.
        xlabel: x-axis label.
        ylabel: y-axis label.
        lines: ``{"xs", "ys", "color", "width", "cls", "tip", "attrs"}`` polylines (``width``
            stroke width, ``cls`` CSS class, ``tip`` tooltip, ``attrs`` extra data attributes).
        bands: ``{"xs", "lo", "hi", "color", "cls", "attrs"}`` shaded areas between two curves.
        points: ``{"x", "y", "color", "label", "tip", "cls", "attrs"}`` circles.
        errorbars: ``{"x", "lo", "hi", "color"}`` vertical interval bars.
        legend: (label, colour) entries drawn at the top right.
        width: SVG width; the SVG scales to its container.
        height: SVG height.
        chart_id: optional ``id`` of the ``<svg>``.
        label_points: write each point's label next to it (else only in its tooltip).

    Returns:
        The SVG markup.
    """
    xs = [x for ln in lines for x in ln["xs"]] + [x for b in bands for x in b["xs"]] + \
         [p["x"] for p in points] + [e["x"] for e in errorbars]
    ys = [y for ln in lines for y in ln["ys"]] + [y for b in bands for y in (*b["lo"], *b["hi"])] + \
         [p["y"] for p in points] + [v for e in errorbars for v in (e["lo"], e["hi"])]
    (x0, x1), (y0, y1) = _span(xs), _span(ys)
    left, top, right, bottom = 56, 30 + 16 * bool(legend), 14, 42
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> str:
        return num(left + (x - x0) / (x1 - x0) * pw)

    def py(y: float) -> str:
        return num(top + (1 - (y - y0) / (y1 - y0)) * ph)

    def attrs(d: dict) -> str:
        return "".join(f' data-{k}="{esc(v)}"' for k, v in (d.get("attrs") or {}).items())

    id_attr = f' id="{esc(chart_id)}"' if chart_id else ""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart xy-chart"{id_attr} viewBox="0 0 '
           f'{width} {height}" width="100%" role="img" aria-label="{esc(title)}" '
           f'data-x-min="{x0:.6g}" data-x-max="{x1:.6g}" data-y-min="{y0:.6g}" data-y-max="{y1:.6g}" '
           f'data-plot-x="{left}" data-plot-y="{top}" data-plot-width="{pw}" data-plot-height="{ph}" '
           'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12">',
           f"<title>{esc(title)}</title>",
           f'<text x="0" y="16" font-size="14" font-weight="600" fill="{TEXT_COLOR}">{esc(title)}</text>',
           f'<rect class="plot-area" x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#f7f9fc"/>']
    for t in _ticks(x0, x1):
        out.append(f'<line x1="{px(t)}" y1="{top}" x2="{px(t)}" y2="{top + ph}" stroke="{_GRID}"/>'
                   f'<text x="{px(t)}" y="{top + ph + 15}" text-anchor="middle" font-size="11" '
                   f'fill="{_MUTED}">{t:g}</text>')
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{left}" y1="{py(t)}" x2="{left + pw}" y2="{py(t)}" stroke="{_GRID}"/>'
                   f'<text x="{left - 5}" y="{num(float(py(t)) + 4)}" text-anchor="end" '
                   f'font-size="11" fill="{_MUTED}">{t:g}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle" fill="{_MUTED}">'
               f'{esc(xlabel)}</text><text x="14" y="{top + ph / 2}" text-anchor="middle" '
               f'fill="{_MUTED}" transform="rotate(-90 14 {top + ph / 2})">{esc(ylabel)}</text>')
    for b in bands:
        pts = [f"{px(x)},{py(y)}" for x, y in zip(b["xs"], b["hi"])] + \
              [f"{px(x)},{py(y)}" for x, y in reversed(list(zip(b["xs"], b["lo"])))]
        out.append(f'<polygon class="{esc(b.get("cls", "band"))}"{attrs(b)} points="{" ".join(pts)}" '
                   f'fill="{esc(b["color"])}" fill-opacity="0.16" stroke="none"/>')
    for ln in lines:
        line_pts = " ".join(f"{px(x)},{py(y)}" for x, y in zip(ln["xs"], ln["ys"]))
        out.append(f'<polyline class="{esc(ln.get("cls", "line"))}"{attrs(ln)} points="{line_pts}" '
                   f'fill="none" stroke="{esc(ln["color"])}" stroke-width="{ln.get("width", 2)}" '
                   f'stroke-opacity="{ln.get("opacity", 1)}"><title>{esc(ln.get("tip", ""))}</title>'
                   "</polyline>")
    for e in errorbars:
        x, lo, hi = px(e["x"]), py(e["lo"]), py(e["hi"])
        out.append(f'<g class="errorbar" stroke="{esc(e["color"])}" stroke-width="1.5" '
                   f'data-x="{e["x"]:.6g}" data-lo="{e["lo"]:.6g}" data-hi="{e["hi"]:.6g}">'
                   f'<line x1="{x}" y1="{lo}" x2="{x}" y2="{hi}"/><line x1="{num(float(x) - 4)}" '
                   f'y1="{lo}" x2="{num(float(x) + 4)}" y2="{lo}"/><line x1="{num(float(x) - 4)}" '
                   f'y1="{hi}" x2="{num(float(x) + 4)}" y2="{hi}"/></g>')
    for p in points:
        out.append(f'<g class="{esc(p.get("cls", "point"))}"{attrs(p)} data-x="{p["x"]:.6g}" '
                   f'data-y="{p["y"]:.6g}"><title>{esc(p.get("tip") or p.get("label", ""))}</title>'
                   f'<circle cx="{px(p["x"])}" cy="{py(p["y"])}" r="4.5" fill="{esc(p["color"])}" '
                   'stroke="#fff" stroke-width="1"/>')
        if label_points and p.get("label"):
            flip = float(px(p["x"])) > left + pw * 0.75  # keep labels inside the plot
            anchor = "end" if flip else "start"
            out.append(f'<text class="point-label" x="{num(float(px(p["x"])) + (-6 if flip else 6))}"'
                       f' y="{num(float(py(p["y"])) - 5)}" font-size="10" fill="{TEXT_COLOR}" '
                       f'text-anchor="{anchor}">{esc(p["label"])}</text>')
        out.append("</g>")
    lx: float = width - right
    for label, color in reversed(legend):
        lx -= 22 + 6.6 * len(label)
        out.append(f'<g class="legend-item"><rect x="{num(lx)}" y="{top - 14}" width="10" height="10" '
                   f'fill="{esc(color)}" rx="2"/><text x="{num(lx + 14)}" y="{top - 5}" '
                   f'font-size="11" fill="{TEXT_COLOR}">{esc(label)}</text></g>')
    return "".join(out) + "</svg>"
