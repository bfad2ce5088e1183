"""Inline SVG charts for the HTML reports: rate bars with confidence whiskers, and the ladder strip.

Everything here returns a plain SVG string with every label escaped, no scripts, no external
references, so a report can paste it into its page as-is (and mark it safe in its template).
The charts are generic: any report (red-team, guard, evals) can draw rates with them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from alignlab.stats import format_ci, format_pct
from alignlab.strategy.ladder import LEVEL_NAMES as LADDER_LEVELS  # the ten rungs, by number

BarRow = tuple[str, float | None, tuple[float, float] | None, str]
"""One bar: (label, rate in [0, 1] or None, 95% CI (lo, hi) or None, annotation such as "7/20")."""

# Geometry of bar_chart_svg, in SVG user units (the chart scales to its container's width).
ROW_HEIGHT = 26
_BAR_H = 14
CHART_TOP = 34
_AXIS_H = 26
_LABEL_W_MAX = 0.3
_NOTE_W_MAX = 0.34
_CHAR_W = 6.6  # average width of a 12px system-font character, for column sizing
_GAP = 10

_AXIS_COLOR = "#8a94a6"
_GRID_COLOR = "#e3e7ee"
_TEXT_COLOR = "#1f2733"
_MUTED_COLOR = "#5b6577"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def num(x: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _truncate(label: str, max_chars: int) -> str:
    return label if len(label) <= max_chars else label[: max(1, max_chars - 1)] + "…"


def bar_chart_svg(
    rows: Sequence[BarRow],
    title: str,
    width: int = 640,
    color: str = "#3b6fb6",
    chart_id: str | None = None,
) -> str:
    """Horizontal bars of rates in [0, 1] with 95% CI whiskers, value labels and an axis.

    Layout, left to right: a label column (sized to the longest label, at most 30% of ``width``;
    longer labels are cut with "…"), the plot area, and a note column with the value and the
    annotation (sized to fit them, at most 34%). A rate of ``r`` draws a bar ``r`` times the plot
    area's width (the ``rect.plot-area`` element). A row whose rate is None says "no decided items"
    instead of a bar. Each row is a ``<g class="bar-row">`` carrying ``data-label`` and
    ``data-rate`` attributes, with a ``<title>`` tooltip giving the full label, value and CI.

    Args:
        rows: (label, rate or None, (lo, hi) or None, annotation) per bar, drawn top to bottom.
        title: chart title, drawn above the plot.
        width: width in SVG units; the SVG scales to its container (``width="100%"``).
        color: fill colour of the bars.
        chart_id: optional ``id`` attribute of the ``<svg>`` element.

    Returns:
        The SVG markup, every text escaped.

    Raises:
        ValueError: a rate or CI bound outside [0, 1], or a CI with lo > hi.
    """
    for label, rate, ci, _ in rows:
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError(f"bar_chart_svg: rate of {label!r} must be in [0, 1], got {rate}")
        if ci is not None:
            lo, hi = ci
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"bar_chart_svg: CI of {label!r} must satisfy 0 <= lo <= hi <= 1, "
                                 f"got {ci}")
    longest_label = max((len(str(r[0])) for r in rows), default=4)
    longest_note = max((len(format_pct(r[1])) + 1 + len(r[3]) for r in rows), default=4)
    label_w = min(width * _LABEL_W_MAX, max(width * 0.1, longest_label * _CHAR_W + 4))
    note_w = min(width * _NOTE_W_MAX, max(width * 0.1, longest_note * _CHAR_W + 6))
    x0 = label_w + _GAP
    plot_w = width - x0 - note_w - _GAP
    n_rows = max(1, len(rows))
    plot_h = n_rows * ROW_HEIGHT
    height = CHART_TOP + plot_h + _AXIS_H
    id_attr = f' id="{esc(chart_id)}"' if chart_id else ""
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart bar-chart"{id_attr} '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{esc(title)}" '
        f'data-plot-x="{num(x0)}" data-plot-width="{num(plot_w)}" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12">',
        f"<title>{esc(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="600" fill="{_TEXT_COLOR}">{esc(title)}'
        "</text>",
        f'<rect class="plot-area" x="{num(x0)}" y="{CHART_TOP}" width="{num(plot_w)}" '
        f'height="{plot_h}" fill="#f7f9fc"/>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = x0 + tick * plot_w
        out.append(f'<line x1="{num(x)}" y1="{CHART_TOP}" x2="{num(x)}" y2="{CHART_TOP + plot_h}" '
                   f'stroke="{_GRID_COLOR}" stroke-width="1"/>')
    if not rows:
        out.append(f'<text x="{num(x0 + plot_w / 2)}" y="{CHART_TOP + ROW_HEIGHT / 2 + 4}" '
                   f'text-anchor="middle" fill="{_MUTED_COLOR}" font-style="italic">no data</text>')
    max_label_chars = max(4, int((label_w - 4) / _CHAR_W))
    for i, (label, rate, ci, note) in enumerate(rows):
        y = CHART_TOP + i * ROW_HEIGHT
        cy = y + ROW_HEIGHT / 2
        tip = f"{label}: {format_pct(rate)}"
        if ci is not None:
            tip += f" ({format_ci(ci)})"
        if note:
            tip += f"; {note}"
        rate_attr = "" if rate is None else f"{rate:.6g}"
        out.append(f'<g class="bar-row" data-label="{esc(label)}" data-rate="{rate_attr}">'
                   f"<title>{esc(tip)}</title>")
        out.append(f'<text class="bar-label" x="{num(label_w)}" y="{num(cy + 4)}" '
                   f'text-anchor="end" fill="{_TEXT_COLOR}">'
                   f"{esc(_truncate(str(label), max_label_chars))}</text>")
        if rate is None:
            out.append(f'<text class="no-data" x="{num(x0 + 6)}" y="{num(cy + 4)}" '
                       f'fill="{_MUTED_COLOR}" font-style="italic">no decided items</text>')
            value_text = "n/a"
        else:
            out.append(f'<rect class="bar" x="{num(x0)}" y="{num(cy - _BAR_H / 2)}" '
                       f'width="{num(rate * plot_w)}" height="{_BAR_H}" fill="{esc(color)}" '
                       f'rx="2"/>')
            value_text = format_pct(rate)
        if ci is not None:
            lo_x, hi_x = x0 + ci[0] * plot_w, x0 + ci[1] * plot_w
            cap = _BAR_H / 2 + 2
            out.append(f'<g class="whisker" stroke="{_TEXT_COLOR}" stroke-width="1.5">'
                       f'<line x1="{num(lo_x)}" y1="{num(cy)}" x2="{num(hi_x)}" y2="{num(cy)}"/>'
                       f'<line x1="{num(lo_x)}" y1="{num(cy - cap / 2)}" x2="{num(lo_x)}" '
                       f'y2="{num(cy + cap / 2)}"/>'
                       f'<line x1="{num(hi_x)}" y1="{num(cy - cap / 2)}" x2="{num(hi_x)}" '
                       f'y2="{num(cy + cap / 2)}"/></g>')
        nx = x0 + plot_w + _GAP
        out.append(f'<text class="bar-value" x="{num(nx)}" y="{num(cy + 4)}" '
                   f'fill="{_TEXT_COLOR}"><tspan font-weight="600">{esc(value_text)}</tspan>'
                   + (f'<tspan fill="{_MUTED_COLOR}" dx="6">{esc(note)}</tspan>' if note else "")
                   + "</text>")
        out.append("</g>")
    axis_y = CHART_TOP + plot_h
    out.append(f'<g class="axis"><line x1="{num(x0)}" y1="{axis_y}" x2="{num(x0 + plot_w)}" '
               f'y2="{axis_y}" stroke="{_AXIS_COLOR}" stroke-width="1"/>')
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = x0 + tick * plot_w
        out.append(f'<line x1="{num(x)}" y1="{axis_y}" x2="{num(x)}" y2="{axis_y + 4}" '
                   f'stroke="{_AXIS_COLOR}"/>'
                   f'<text x="{num(x)}" y="{axis_y + 16}" text-anchor="middle" '
                   f'fill="{_MUTED_COLOR}" font-size="11">{int(tick * 100)}%</text>')
    out.append("</g></svg>")
    return "".join(out)


def band_style(level: int) -> tuple[str, str, str]:
    """(band name, muted fill, strong fill) of a ladder level."""
    if level <= 3:
        return "easy", "#e3f1e6", "#3f8f5a"
    if level <= 7:
        return "intermediate", "#fbf0d9", "#c7881c"
    return "hard", "#f6e1e1", "#b44a4a"


def ladder_svg(levels_with_evidence: dict[int, str], width: int = 640) -> str:
    """A strip of the 10 alignment-difficulty levels, highlighting those with evidence.

    Levels 1–3 are "easy", 4–7 "intermediate", 8–10 "hard" (DESIGN.md). A level with evidence is
    drawn in its band's strong colour with a marker below it; its ``<title>`` tooltip gives what
    would suffice at that level and the evidence text. Each cell is a ``<g class="ladder-level">``
    with ``data-level`` and ``data-evidence`` ("1" or "0").

    Args:
        levels_with_evidence: level (1..10) to a short description of the evidence at that level.
        width: width in SVG units; the SVG scales to its container.

    Returns:
        The SVG markup, every text escaped.

    Raises:
        ValueError: a level outside 1..10.
    """
    bad = [lv for lv in levels_with_evidence if lv not in LADDER_LEVELS]
    if bad:
        raise ValueError(f"ladder_svg: levels must be in 1..10, got {sorted(bad)}")
    cell_w = width / 10
    top, cell_h = 22, 34
    height = top + cell_h + 34
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart ladder" viewBox="0 0 {width} '
        f'{height}" width="100%" role="img" aria-label="alignment-difficulty ladder" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12">',
        "<title>alignment-difficulty ladder</title>",
    ]
    for name, first, last in (("easy", 1, 3), ("intermediate", 4, 7), ("hard", 8, 10)):
        cx = (first - 1 + (last - first + 1) / 2) * cell_w
        out.append(f'<text x="{num(cx)}" y="14" text-anchor="middle" fill="{_MUTED_COLOR}" '
                   f'font-size="11">{name} ({first}–{last})</text>')
    for level in range(1, 11):
        x = (level - 1) * cell_w
        _, muted, strong = band_style(level)
        evidence = levels_with_evidence.get(level)
        has = evidence is not None
        tip = f"level {level}: {LADDER_LEVELS[level]}"
        if has:
            tip += f" — evidence: {evidence}"
        fill, text_fill = (strong, "#ffffff") if has else (muted, _MUTED_COLOR)
        out.append(f'<g class="ladder-level" data-level="{level}" data-evidence="{int(has)}">'
                   f"<title>{esc(tip)}</title>"
                   f'<rect x="{num(x + 1)}" y="{top}" width="{num(cell_w - 2)}" '
                   f'height="{cell_h}" rx="4" fill="{fill}"/>'
                   f'<text x="{num(x + cell_w / 2)}" y="{top + cell_h / 2 + 5}" '
                   f'text-anchor="middle" font-size="14" font-weight="{600 if has else 400}" '
                   f'fill="{text_fill}">{level}</text>')
        if has:
            out.append(f'<text x="{num(x + cell_w / 2)}" y="{top + cell_h + 16}" '
                       f'text-anchor="middle" fill="{_TEXT_COLOR}" font-size="11">▲ evidence</text>')
        out.append("</g>")
    for boundary in (3, 7):
        bx = boundary * cell_w
        out.append(f'<line x1="{num(bx)}" y1="{top - 3}" x2="{num(bx)}" y2="{top + cell_h + 3}" '
                   f'stroke="{_TEXT_COLOR}" stroke-width="2" stroke-dasharray="3 2"/>')
    out.append("</svg>")
    return "".join(out)
