"""The feature browser: one self-contained, offline HTML page for an SAE and its auto-interp scores.

The page shows the SAE's quality metrics, the auto-interp summary (detection and fuzzing balanced
accuracy and the interpretable fraction, with 95% CIs, for the SAE and each baseline), and a
table of latents (label, scores, density, activation histogram) that can be filtered by source and
label text and sorted by score or density. Clicking a row opens the latent's contexts with each
token's background alpha proportional to its activation over the latent's max activation.

The table and charts are rendered server-side by Jinja2 (autoescaped) and ``svg.py``; the contexts
travel as JSON in a ``<script type="application/json">`` block with ``<``, ``>`` and ``&`` escaped
as ``\\u003c``... so no token text can close it, and the one inline script (pinned by a
Content-Security-Policy hash) writes them into the page with ``textContent`` only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from alignlab.report.page import environment, script_hash
from alignlab.report.svg import bar_chart_svg, esc, format_ci, format_pct, num

MAX_CONTEXTS_SHOWN = 40
"""Contexts of each kind (top, quantiles, negative) embedded per latent at most; the rest are counted."""
MAX_CONTEXT_TOKENS = 128
"""Tokens of one context embedded at most (a window around its strongest token)."""
DEFAULT_SOURCE = "sae"
"""The source the table shows first (baselines are one selector away)."""

SOURCE_NAMES: dict[str, str] = {
    "sae": "SAE latents", "neurons": "neurons (baseline)", "random_sae": "random SAE (baseline)"}
"""Display name of each latent source; unknown sources are shown by their key."""
SUMMARY_ROWS: list[tuple[str, str]] = [
    ("sae", "SAE"), ("shuffled", "shuffled labels"), ("neurons", "neurons"),
    ("random_sae", "random SAE")]
"""(key, display name) of the rows of the auto-interp summary: the SAE, then each baseline."""
CONTEXT_KINDS: list[tuple[str, str, str]] = [
    ("top", "Top activations", "the contexts where the latent fires most"),
    ("quantiles", "Quantile samples", "contexts drawn across the activation distribution"),
    ("negative", "Negative contexts", "contexts where the latent does not fire"),
]
"""(key in ``examples``, heading, explanation) of each kind of context, in display order."""

_SAE_METRICS: list[tuple[str, str, str]] = [  # (key, display name, format)
    ("fvu", "FVU (fraction of variance unexplained)", "num"),
    ("explained_variance", "explained variance", "pct"),
    ("l0", "L0 (active latents per token)", "num"),
    ("dead_frac", "dead latents", "pct"),
    ("ce_score", "CE loss recovered", "num"),
    ("delta_ce_nats", "ΔCE with SAE spliced in (nats)", "num"),
    ("kl", "KL to the clean model (nats)", "num"),
    ("tokens", "evaluation tokens", "int"),
]

_HIST_W, _HIST_H = 120, 28
_HIST_COLOR = "#3b6fb6"

_BROWSER_JS = r"""(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("feature-data").textContent);
  var tbody = document.getElementById("feature-rows");
  var rows = Array.prototype.slice.call(tbody.querySelectorAll("tr.feature-row"));
  var search = document.getElementById("feature-search");
  var source = document.getElementById("source-select");
  var shown = document.getElementById("rows-visible");
  var none = document.getElementById("rows-none");
  var detail = document.getElementById("feature-detail");
  var buttons = Array.prototype.slice.call(document.querySelectorAll("#feature-table button.sort"));
  var sortKey = "", sortDir = 1;
  rows.forEach(function (tr, i) {
    tr.alOrder = i;
    tr.alText = (tr.getAttribute("data-label") || "").toLowerCase();
  });

  function apply() {
    var q = search.value.trim().toLowerCase(), src = source.value, n = 0;
    rows.forEach(function (tr) {
      var ok = (src === "*" || tr.getAttribute("data-source") === src) &&
               (q === "" || tr.alText.indexOf(q) !== -1);
      tr.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = String(n);
    none.hidden = n !== 0;
  }

  function value(tr, key) {
    var v = tr.getAttribute("data-" + key);
    return v === null || v === "" ? null : Number(v);
  }

  function sortBy(key) {
    sortDir = key === sortKey ? -sortDir : (key === "latent" ? 1 : -1);
    sortKey = key;
    rows.sort(function (a, b) {
      var x = value(a, key), y = value(b, key);
      if (x === null || y === null) {
        return x === y ? a.alOrder - b.alOrder : (x === null ? 1 : -1);
      }
      return (x - y) * sortDir || a.alOrder - b.alOrder;
    });
    rows.forEach(function (tr) { tbody.appendChild(tr); });
    buttons.forEach(function (b) {
      var th = b.parentNode;
      if (b.getAttribute("data-key") === key) {
        th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function pct(x) {
    return x === null || x === undefined ? "--" : (100 * x).toFixed(1) + "%";
  }

  function scoreText(s) {
    if (!s) { return "-- (not run)"; }
    var c = [];
    if (s.n !== null && s.n !== undefined) { c.push("n=" + s.n); }
    ["tp", "tn", "fp", "fn"].forEach(function (k) {
      if (s[k] !== null && s[k] !== undefined) { c.push(k + " " + s[k]); }
    });
    if (s.unscorable) { c.push(s.unscorable + " unscorable"); }
    return pct(s.bal_acc) + (c.length ? " (" + c.join(", ") + ")" : "");
  }

  function context(ctx, maxAct) {
    var box = el("div", "ctx");
    var meta = "doc " + ctx.doc + ", token " + ctx.start + " · max act " +
               (ctx.max === null ? "n/a" : String(ctx.max));
    if (ctx.cut) { meta += " · " + ctx.cut + " tokens outside the window not shown"; }
    if (ctx.quantile !== null && ctx.quantile !== undefined) { meta += " · quantile " + ctx.quantile; }
    box.appendChild(el("div", "ctx-meta", meta));
    var line = el("div", "ctx-tokens");
    ctx.tokens.forEach(function (t, i) {
      var a = ctx.acts[i];
      var r = a === null || !(maxAct > 0) ? 0 : Math.min(1, Math.abs(a) / maxAct);
      var span = el("span", "tok", t);
      span.style.backgroundColor = "rgba(" + (a !== null && a < 0 ? "59, 111, 182" : "255, 140, 0") +
                                   ", " + r.toFixed(3) + ")";
      span.setAttribute("data-act", a === null ? "" : String(a));
      span.setAttribute("data-alpha", r.toFixed(3));
      span.title = "activation " + (a === null ? "n/a" : String(a));
      line.appendChild(span);
    });
    box.appendChild(line);
    return box;
  }

  function open(tr) {
    var f = data.features[Number(tr.getAttribute("data-index"))];
    rows.forEach(function (r) { r.classList.toggle("selected", r === tr); });
    detail.textContent = "";
    detail.setAttribute("data-index", tr.getAttribute("data-index"));
    detail.appendChild(el("h3", "", (data.source_names[f.source] || f.source) + " · latent " + f.latent));
    detail.appendChild(el("p", f.label === null ? "feature-label failed" : "feature-label", f.label_text));
    var dl = el("dl", "scores");
    [["detection", scoreText(f.detection)], ["fuzzing", scoreText(f.fuzzing)],
     ["shuffled-label detection", f.shuffled ? scoreText(f.shuffled.detection) : "--"],
     ["shuffled-label fuzzing", f.shuffled ? scoreText(f.shuffled.fuzzing) : "--"],
     ["density", f.density_text], ["max activation", f.max_act_text]].forEach(function (p) {
      dl.appendChild(el("dt", "", p[0]));
      dl.appendChild(el("dd", "score-" + p[0].replace(/ /g, "-"), p[1]));
    });
    detail.appendChild(dl);
    var hist = tr.querySelector("svg.hist");
    if (hist) {
      var big = hist.cloneNode(true);
      big.setAttribute("class", "hist hist-large");
      detail.appendChild(big);
    }
    data.kinds.forEach(function (k) {
      var list = f.examples[k[0]] || [];
      var sec = el("section", "ctx-group ctx-" + k[0]);
      sec.appendChild(el("h4", "", k[1] + " (" + list.length + ")"));
      sec.appendChild(el("p", "small muted", k[2] + "."));
      list.forEach(function (ctx) { sec.appendChild(context(ctx, f.max_act_scale)); });
      if (!list.length) { sec.appendChild(el("p", "small muted", "None recorded.")); }
      if (f.omitted[k[0]]) {
        sec.appendChild(el("p", "small muted", f.omitted[k[0]] + " more not embedded in this page."));
      }
      detail.appendChild(sec);
    });
    var top = detail.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight - 80) { detail.scrollIntoView({block: "start"}); }
  }

  search.addEventListener("input", apply);
  source.addEventListener("change", apply);
  buttons.forEach(function (b) {
    b.addEventListener("click", function () { sortBy(b.getAttribute("data-key")); });
  });
  tbody.addEventListener("click", function (e) {
    var tr = e.target.closest("tr.feature-row");
    if (tr) { open(tr); }
  });
  tbody.addEventListener("keydown", function (e) {
    var tr = e.target.closest("tr.feature-row");
    if (tr && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); open(tr); }
  });
  apply();
})();"""


def _finite(x: Any) -> float | None:
    """``x`` as a float, or None when it is missing, not a number, NaN or infinite."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _round(x: Any) -> float | int | None:
    """``x`` to 4 significant digits, None when not finite, an int when whole (keeps JSON small)."""
    f = _finite(x)
    if f is None:
        return None
    r = float(f"{f:.4g}")
    return int(r) if r.is_integer() and abs(r) < 1e15 else r


def _fmt_num(x: Any) -> str:
    f = _finite(x)
    return "--" if f is None else f"{f:.4g}"


def _fmt_density(x: Any) -> str:
    f = _finite(x)
    return "--" if f is None else f"{100 * f:.3g}%"


def safe_json(obj: Any) -> str:
    """JSON text that is safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e``, ``\\u0026`` (so no string can close the
    element or open a comment), and U+2028/U+2029 are escaped too; ``JSON.parse`` and
    ``json.loads`` read the original strings back.

    Args:
        obj: a JSON-serialisable value without NaN or infinities.

    Returns:
        The JSON text.
    """
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, code)
    return text


def histogram_svg(edges: Sequence[float], counts: Sequence[int], width: int = _HIST_W,
                  height: int = _HIST_H, where: str = "hist") -> str:
    """A small histogram: one bar per bin, placed by its edges, height proportional to its count.

    Each bar is a ``rect.hist-bar`` with ``data-count`` and a ``<title>`` giving its bin and count.

    Args:
        edges: n + 1 bin edges, non-decreasing.
        counts: n non-negative counts.
        width: SVG width in user units.
        height: SVG height in user units.
        where: name of the record for error messages.

    Returns:
        The SVG markup.

    Raises:
        ValueError: lengths that do not match, negative counts or decreasing edges.
    """
    if len(edges) != len(counts) + 1:
        raise ValueError(f"{where}: hist needs len(edges) == len(counts) + 1, got {len(edges)} edges "
                         f"and {len(counts)} counts")
    e = [_finite(x) for x in edges]
    if any(x is None for x in e) or any(b < a for a, b in zip(e, e[1:])):  # type: ignore[operator]
        raise ValueError(f"{where}: hist edges must be finite and non-decreasing, got {list(edges)}")
    if any(not isinstance(c, int) or isinstance(c, bool) or c < 0 for c in counts):
        raise ValueError(f"{where}: hist counts must be non-negative integers, got {list(counts)}")
    total = sum(counts)
    lo, hi = (e[0], e[-1]) if e else (0.0, 0.0)
    tip = f"non-zero activations: {total:,} values" + (f", {lo:.4g} to {hi:.4g}" if e else "")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="hist" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{esc(tip)}" '
           f'data-total="{total}"><title>{esc(tip)}</title>',
           f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" stroke="#8a94a6" '
           'stroke-width="1"/>']
    peak = max(counts, default=0)
    span = (hi - lo) or 1.0  # type: ignore[operator]
    for i, c in enumerate(counts):
        a, b = e[i], e[i + 1]
        x = (a - lo) / span * width  # type: ignore[operator]
        w = max(0.5, (b - a) / span * width)  # type: ignore[operator]
        h = 0.0 if peak == 0 else c / peak * (height - 2)
        out.append(f'<rect class="hist-bar" x="{num(x)}" y="{num(height - 1 - h)}" '
                   f'width="{num(w)}" height="{num(h)}" fill="{_HIST_COLOR}" data-count="{c}">'
                   f"<title>{a:.4g} to {b:.4g}: {c:,}</title></rect>")
    out.append("</svg>")
    return "".join(out)


def _score(d: Any, where: str) -> dict[str, Any] | None:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise ValueError(f"{where}: must be an object with bal_acc, n, tp, tn, fp, fn, unscorable "
                         f"(or null), got {type(d).__name__}")
    return {k: (_round(d.get(k)) if k == "bal_acc" else d.get(k))
            for k in ("bal_acc", "n", "tp", "tn", "fp", "fn", "unscorable")}


def _context(c: Any, where: str) -> dict[str, Any]:
    """A context clipped to MAX_CONTEXT_TOKENS around its strongest token, acts rounded."""
    if not isinstance(c, dict) or not isinstance(c.get("tokens"), list) \
            or not isinstance(c.get("acts"), list) or len(c["tokens"]) != len(c["acts"]):
        raise ValueError(f"{where}: a context needs 'tokens' and 'acts' lists of equal length "
                         "(see the per-latent record of autointerp)")
    tokens = ["" if t is None else str(t) for t in c["tokens"]]
    acts = [_round(a) for a in c["acts"]]
    finite = [a for a in acts if a is not None]
    peak = max(finite, default=None)
    start = 0
    if len(tokens) > MAX_CONTEXT_TOKENS:
        at = acts.index(peak) if peak is not None else 0
        start = max(0, min(at - MAX_CONTEXT_TOKENS // 2, len(tokens) - MAX_CONTEXT_TOKENS))
    stop = start + MAX_CONTEXT_TOKENS
    return {"tokens": tokens[start:stop], "acts": acts[start:stop], "max": peak,
            "cut": len(tokens) - len(tokens[start:stop]),
            "doc": c.get("doc"), "start": (c.get("start") or 0) + start,
            "quantile": c.get("quantile")}


def _label_text(rec: dict[str, Any]) -> str:
    if rec.get("label") is not None:
        return str(rec["label"])
    return f"(explainer failed: {rec.get('explainer_error') or 'no reason recorded'})"


def _feature(i: int, rec: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(row for the template, record for the embedded JSON) of one latent."""
    where = f"latents[{i}]"
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: each latent must be an object (one line of latents.jsonl), "
                         f"got {type(rec).__name__}")
    for key in ("source", "latent"):
        if key not in rec:
            raise ValueError(f"{where}: missing '{key}' (every record needs source and latent; "
                             "see the per-latent record of autointerp)")
    examples = rec.get("examples") or {}
    if not isinstance(examples, dict):
        raise ValueError(f"{where}.examples: must be an object with top, quantiles, negative lists")
    shown: dict[str, list] = {}
    omitted: dict[str, int] = {}
    for kind, _, _ in CONTEXT_KINDS:
        ctxs = examples.get(kind) or []
        shown[kind] = [_context(c, f"{where}.examples.{kind}[{j}]")
                       for j, c in enumerate(ctxs[:MAX_CONTEXTS_SHOWN])]
        omitted[kind] = max(0, len(ctxs) - MAX_CONTEXTS_SHOWN)
    hist = rec.get("hist") or {}
    hist_svg = (Markup(histogram_svg(hist.get("edges") or [], hist.get("counts") or [],
                                     where=f"{where}.hist")) if hist.get("counts") else None)
    max_act = _round(rec.get("max_act"))
    seen = [c["max"] for cs in shown.values() for c in cs if c["max"] is not None]
    scale = max_act if max_act and max_act > 0 else max(seen, default=None)
    shuffled = rec.get("shuffled")
    if shuffled is not None and not isinstance(shuffled, dict):
        raise ValueError(f"{where}.shuffled: must be an object with detection and fuzzing, or null")
    detection = _score(rec.get("detection"), f"{where}.detection")
    fuzzing = _score(rec.get("fuzzing"), f"{where}.fuzzing")
    label_text = _label_text(rec)
    source = str(rec["source"])
    record = {
        "source": source, "latent": rec["latent"],
        "label": None if rec.get("label") is None else str(rec["label"]), "label_text": label_text,
        "density_text": _fmt_density(rec.get("density")), "max_act_text": _fmt_num(max_act),
        "max_act_scale": scale, "detection": detection, "fuzzing": fuzzing,
        "shuffled": None if shuffled is None else {
            "detection": _score(shuffled.get("detection"), f"{where}.shuffled.detection"),
            "fuzzing": _score(shuffled.get("fuzzing"), f"{where}.shuffled.fuzzing")},
        "examples": shown, "omitted": omitted,
    }

    def attr(x: Any) -> str:
        f = _finite(x)
        return "" if f is None else f"{f:.6g}"

    row = {
        "index": i, "source": source, "latent": rec["latent"], "latent_attr": attr(rec["latent"]),
        "label_text": label_text, "failed": rec.get("label") is None,
        "detection": format_pct((detection or {}).get("bal_acc"), 0).replace("n/a", "--"),
        "fuzzing": format_pct((fuzzing or {}).get("bal_acc"), 0).replace("n/a", "--"),
        "detection_attr": attr((detection or {}).get("bal_acc")),
        "fuzzing_attr": attr((fuzzing or {}).get("bal_acc")),
        "density": _fmt_density(rec.get("density")), "density_attr": attr(rec.get("density")),
        "max_act": _fmt_num(max_act), "max_act_attr": attr(max_act), "hist": hist_svg,
    }
    return row, record


def _source_order(sources: set[str]) -> list[str]:
    known = [s for s in SOURCE_NAMES if s in sources]
    return known + sorted(sources - set(known))


def _summary_entry(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    if key == "sae":
        return results
    return (results.get("baselines") or {}).get(key)


def _stat(d: Any, value_key: str, where: str) -> tuple[float | None, tuple[float, float] | None, str]:
    """(value, CI, count note) of a mean or rate entry; checks both lie in [0, 1]."""
    if not isinstance(d, dict):
        return None, None, "not run"
    v = _finite(d.get(value_key))
    ci = d.get("ci")
    ci_t = (float(ci[0]), float(ci[1])) if isinstance(ci, (list, tuple)) and len(ci) == 2 \
        and all(_finite(c) is not None for c in ci) else None
    for x in (v, *(ci_t or ())):
        if x is not None and not -1e-9 <= x <= 1 + 1e-9:
            raise ValueError(f"results.json: {where} has {x} outside [0, 1]; {value_key} and ci must "
                             "be proportions")
    v = None if v is None else min(1.0, max(0.0, v))
    ci_t = None if ci_t is None else (min(1.0, max(0.0, ci_t[0])), min(1.0, max(0.0, ci_t[1])))
    note = (f"{d.get('k', '?')}/{d.get('n', '?')}" if value_key == "rate"
            else f"{d.get('n', '?')} latents")
    return v, ci_t, note


_SUMMARY_METRICS = [("detection_bal_acc", "mean", "Detection balanced accuracy"),
                    ("fuzzing_bal_acc", "mean", "Fuzzing balanced accuracy"),
                    ("interpretable_frac", "rate", "Interpretable fraction")]


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    """Charts, table rows and counts of the auto-interp summary."""
    present = [(k, name) for k, name in SUMMARY_ROWS if isinstance(_summary_entry(results, k), dict)]
    missing = [name for k, name in SUMMARY_ROWS if (k, name) not in present]
    charts, table = [], []
    for metric, value_key, title in _SUMMARY_METRICS:
        rows = []
        for k, name in present:
            v, ci, note = _stat(_summary_entry(results, k).get(metric), value_key,  # type: ignore[union-attr]
                                f"{'' if k == 'sae' else f'baselines.{k}.'}{metric}")
            rows.append((name, v, ci, note))
        charts.append(Markup(bar_chart_svg(rows, title, width=420, chart_id=f"chart-{metric}")))
    for k, name in present:
        cells = []
        for metric, value_key, _ in _SUMMARY_METRICS:
            v, ci, note = _stat(_summary_entry(results, k).get(metric), value_key, metric)  # type: ignore[union-attr]
            cells.append("--" if v is None else
                         f"{format_pct(v)} ({format_ci(ci).removeprefix('95% CI ') or 'no CI'}, {note})")
        table.append({"key": k, "name": name, "cells": cells})
    counts = results.get("counts") or {}
    frac = results.get("interpretable_frac") or {}
    config = results.get("config") or {}
    rule = frac.get("rule") or frac.get("threshold") or next(
        (f"{k} = {v}" for k, v in config.items() if "interpretable" in str(k)), None)
    return {
        "charts": charts, "table": table, "missing": missing,
        "counts": [(name, "--" if counts.get(key) is None else
                    f"{counts[key]:,}" if isinstance(counts[key], int) else str(counts[key]), key)
                   for key, name in (("latents", "latents scored"), ("labelled", "labelled"),
                                     ("explainer_failures", "explainer failures"),
                                     ("unscorable_items", "unscorable items"))],
        "rule": None if rule is None else str(rule),
        "explainer": results.get("explainer"), "scorer": results.get("scorer"),
        "config_json": json.dumps(config, indent=2, sort_keys=True, default=str),
    }


def _sae_metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, display name, formatted value) of every scalar metric, known ones first."""
    flat: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            flat.update({f"{k}.{k2}": v2 for k2, v2 in v.items() if not isinstance(v2, (dict, list))})
        elif not isinstance(v, list):
            flat[str(k)] = v
    rows = []
    for key, name, fmt in _SAE_METRICS:
        if key in flat:
            v = flat.pop(key)
            f = _finite(v)
            text = ("--" if f is None else format_pct(f, 2) if fmt == "pct"
                    else f"{int(f):,}" if fmt == "int" else f"{f:.4g}")
            rows.append((key, name, text))
    for key in sorted(flat):
        v = flat[key]
        f = _finite(v)
        name = key.replace("_", " ")
        if f is None:
            rows.append((key, name, "--" if v is None else str(v)))
        elif "frac" in key:
            rows.append((key, name, format_pct(f, 2)))
        else:
            rows.append((key, name, f"{f:,}" if isinstance(v, int) else f"{f:.4g}"))
    return rows


def render_feature_browser_html(latents: list[dict[str, Any]], results: dict[str, Any] | None,
                                sae_metrics: dict[str, Any] | None,
                                title: str = "Feature browser") -> str:
    """Render the feature browser to an HTML string (see ``render_feature_browser``)."""
    if not isinstance(latents, list):
        raise ValueError(f"latents: must be a list of per-latent records, got {type(latents).__name__}")
    if results is not None and not isinstance(results, dict):
        raise ValueError("results: must be the dict of autointerp's results.json, or None")
    if sae_metrics is not None and not isinstance(sae_metrics, dict):
        raise ValueError("sae_metrics: must be a dict of SAE metrics, or None")
    pairs = [_feature(i, rec) for i, rec in enumerate(latents)]
    rows = [p[0] for p in pairs]
    sources = _source_order({r["source"] for r in rows})
    default = DEFAULT_SOURCE if DEFAULT_SOURCE in sources else (sources[0] if sources else "*")
    n_by_source = {s: sum(1 for r in rows if r["source"] == s) for s in sources}
    data = {"features": [p[1] for p in pairs], "source_names": SOURCE_NAMES,
            "kinds": [list(k) for k in CONTEXT_KINDS]}
    context = {
        "title": title,
        "header": [(SOURCE_NAMES.get(s, s), f"{n:,}") for s, n in n_by_source.items()],
        "summary": None if results is None else _summary(results),
        "sae_metrics": None if sae_metrics is None else _sae_metric_rows(sae_metrics),
        "rows": rows, "sources": [(s, SOURCE_NAMES.get(s, s), n_by_source[s]) for s in sources],
        "default_source": default, "n_default": n_by_source.get(default, len(rows)),
        "n_rows": len(rows), "max_contexts": MAX_CONTEXTS_SHOWN, "max_tokens": MAX_CONTEXT_TOKENS,
        "data_json": Markup(safe_json(data)),
        "script": Markup(_BROWSER_JS), "script_hash": script_hash(_BROWSER_JS),
    }
    return environment().get_template("features.html.j2").render(**context)


def render_feature_browser(latents: list[dict[str, Any]], results: dict[str, Any] | None,
                           sae_metrics: dict[str, Any] | None, out_path: str | Path,
                           title: str = "Feature browser") -> Path:
    """Write the feature browser as one self-contained HTML file (no network, works offline).

    Args:
        latents: per-latent records (the lines of autointerp's ``latents.jsonl``): source, latent,
            density, max_act, hist, label (None when the explainer failed), explainer_error,
            detection, fuzzing, shuffled and examples (top / quantiles / negative contexts).
        results: autointerp's ``results.json`` dict, or None (the summary then says "not run").
        sae_metrics: the SAE's quality metrics (fvu, explained_variance, l0, dead_frac,
            dense fractions, ce_score, delta_ce_nats, kl, tokens...), or None ("not run").
        out_path: where to write the HTML file; parent folders are created.
        title: the page title and heading.

    Returns:
        The path written.

    Raises:
        ValueError: a malformed record, naming the field (e.g. ``latents[3]: missing 'latent'``).
    """
    out = Path(out_path)
    html = render_feature_browser_html(latents, results, sae_metrics, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def read_latents_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read autointerp's ``latents.jsonl`` (one JSON object per line; blank lines skipped).

    Args:
        path: the file.

    Returns:
        The records, in file order.

    Raises:
        ValueError: a line that is not a JSON object, naming the file and line.
    """
    records = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not valid JSON ({e.msg}); each line must be one "
                                 "per-latent record") from e
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
            records.append(rec)
    return records
