"""What the evals report and the persona report share: field checks, number formats and the page.

Both reports are drawn with one template (``templates/evals.html.j2``): the evals report fills its
suite, comparison and transcript sections, the persona report only the persona sections. This
module holds the checks that turn a malformed input file into a ``ValueError`` naming the field
(``check_finite``, ``check_prob``, ``check_pair``, ``check_count``, ``check_obj``, ``check_rate``),
how numbers, p-values and
differences are written, and ``render_page`` / ``write_html``, which draw the template with its one
inline script (the transcript filter, ``templates/evals_filter.js``, pinned by a CSP hash) and
write the file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from markupsafe import Markup

from alignlab.report.page import environment, script_hash
from alignlab.report.svg import format_ci, format_pct

TEMPLATE_DIR = Path(__file__).parent / "templates"
_SCRIPT = (TEMPLATE_DIR / "evals_filter.js").read_text(encoding="utf-8")


# --- input checks ------------------------------------------------------------------------------

def check_finite(x: Any, where: str) -> float | None:
    """``x`` as a float; None when missing or NaN; ValueError naming ``where`` when not a number."""
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"{where}: must be a number or null, got {x!r}; fix the file that produced it")
    return float(x) if math.isfinite(x) else None


def check_prob(x: Any, where: str) -> float | None:
    p = check_finite(x, where)
    if p is not None and not 0.0 <= p <= 1.0:
        raise ValueError(f"{where}: must be a proportion in [0, 1] or null, got {x!r}")
    return p


def check_pair(x: Any, where: str, unit: bool = True) -> tuple[float, float] | None:
    """A (lo, hi) interval, checked lo <= hi (and inside [0, 1] when ``unit``); None when absent."""
    if x is None:
        return None
    if not isinstance(x, (list, tuple)) or len(x) != 2:
        raise ValueError(f"{where}: must be [lo, hi] or null, got {x!r}")
    lo, hi = check_finite(x[0], where), check_finite(x[1], where)
    if lo is None or hi is None:
        return None
    if lo > hi or (unit and not 0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"{where}: must satisfy {'0 <= ' if unit else ''}lo <= hi"
                         f"{' <= 1' if unit else ''}, got {list(x)}")
    return (lo, hi)


def check_count(x: Any, where: str) -> int:
    if x is None:
        return 0
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise ValueError(f"{where}: must be a non-negative integer, got {x!r}")
    return x


def check_obj(x: Any, where: str, what: str) -> dict[str, Any]:
    if x is None:
        return {}
    if not isinstance(x, dict):
        raise ValueError(f"{where}: must be an object ({what}), got {type(x).__name__}")
    return x


def check_rate(d: Any, where: str) -> dict[str, Any]:
    """A RATE dict checked and with every key present: rate, ci, k, n, n_unscorable, note."""
    d = check_obj(d, where, "rate, ci, k, n, n_unscorable")
    r: dict[str, Any] = {
        "rate": check_prob(d.get("rate"), f"{where}.rate"), "ci": check_pair(d.get("ci"), f"{where}.ci"),
        "k": check_count(d.get("k"), f"{where}.k"), "n": check_count(d.get("n"), f"{where}.n"),
        "n_unscorable": check_count(d.get("n_unscorable"), f"{where}.n_unscorable")}
    if r["k"] > r["n"]:
        raise ValueError(f"{where}: k={r['k']} exceeds n={r['n']}; n counts decided items")
    r["note"] = f"{r['k']}/{r['n']}" + (f", {r['n_unscorable']} unscorable" if r["n_unscorable"] else "")
    r["pct"], r["ci_text"] = format_pct(r["rate"]), format_ci(r["ci"]).removeprefix("95% CI ") or "—"
    return r


def fmt_num(x: Any, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def fmt_p(p: float | None) -> str:
    return "—" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def fmt_pp(d: float | None) -> str:
    return "—" if d is None else f"{100 * d:+.1f} pp"


def fmt_ci_pp(ci: tuple[float, float] | None) -> str:
    return "—" if ci is None else f"{100 * ci[0]:+.1f} to {100 * ci[1]:+.1f} pp"


# --- page ------------------------------------------------------------------------------------------

def render_page(page: dict[str, Any]) -> str:
    """Draw ``evals.html.j2`` with the given template variables and the transcript-filter script.

    Args:
        page: every variable the template reads (header, sections, records...), by name.

    Returns:
        The page as one HTML string.
    """
    return environment().get_template("evals.html.j2").render(
        **page, script=Markup(_SCRIPT), script_hash=script_hash(_SCRIPT))


def write_html(path: str | Path, html: str) -> Path:
    """Write ``html`` to ``path`` as UTF-8, creating parent folders; returns the path written."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
