"""Feature browser: the embedded data round-trips exactly, tricky token text stays text, and the page
filters, sorts and highlights correctly in headless Chromium.

Browser tests need Playwright and a system Chromium. Like the other report tests they FAIL (not
skip) when either is missing, unless ALIGNLAB_SKIP_BROWSER=1 is set.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from alignlab.report import BrowserUnavailable, open_page
from alignlab.report.interp import (
    MAX_CONTEXT_TOKENS,
    histogram_svg,
    read_latents_jsonl,
    render_feature_browser,
    safe_json,
)

SVG = "{http://www.w3.org/2000/svg}"
TRICKY = "</script><b>x"
INJECT = '<img src=x onerror="window.__pwned=1">'
QUOTES = "\"double\" 'single' & ampersand"
EMOJI = "🐱\u2028"
TOP_TOKENS = ["The", " cat", TRICKY, QUOTES, EMOJI, "\n", INJECT]
TOP_ACTS = [0.0, 2.0, 4.0, 1.0, 0.5, 0.0, 3.0]  # max act 4.0 sits on the tricky token


def _score(bal: float | None, n: int = 20, unscorable: int = 0) -> dict[str, Any]:
    return {"bal_acc": bal, "n": n, "tp": 8, "tn": 8, "fp": 2, "fn": 2, "unscorable": unscorable}


def _latent(source: str, latent: int, label: str | None, det: float | None, fuz: float | None,
            density: float, error: str | None = None) -> dict[str, Any]:
    ctx = {"tokens": ["a", " b", " c"], "acts": [0.0, 1.0, 0.5], "doc": latent, "start": 3}
    return {
        "source": source, "latent": latent, "density": density, "max_act": 2.0,
        "hist": {"edges": [0.0, 0.5, 1.0, 2.0], "counts": [6, 3, 1]},
        "label": label, "explainer_error": error,
        "detection": _score(det), "fuzzing": _score(fuz),
        "shuffled": ({"detection": _score(0.5), "fuzzing": _score(0.45)} if source == "sae"
                     else None),
        "examples": {"top": [ctx], "quantiles": [ctx], "negative": [
            {"tokens": ["z"], "acts": [0.0], "doc": 9, "start": 0}]},
    }


def fixture_latents() -> list[dict[str, Any]]:
    cat = _latent("sae", 7, 'Cats and "kittens" <b>', 0.9, 0.8, 0.003)
    cat["max_act"] = 4.0
    cat["examples"]["top"] = [{"tokens": list(TOP_TOKENS), "acts": list(TOP_ACTS), "doc": 1, "start": 0},
                              {"tokens": ["x", "y"], "acts": [1.0, 0.0], "doc": 2, "start": 5}]
    return [
        _latent("sae", 3, "Python code", 0.7, 0.95, 0.02),
        cat,
        _latent("sae", 11, None, None, None, 0.0005, error="timeout <i>after</i> 30 s"),
        _latent("sae", 12, "French words", 0.6, None, 0.1),
        _latent("neurons", 0, "python-ish punctuation", 0.55, 0.5, 0.4),
        _latent("neurons", 1, "anything", 0.5, 0.52, 0.6),
        _latent("random_sae", 0, "nothing clear", 0.51, 0.49, 0.05),
    ]


def _mean(m: float, lo: float, hi: float, n: int = 4) -> dict[str, Any]:
    return {"mean": m, "ci": [lo, hi], "n": n}


def _frac(k: int, n: int, lo: float, hi: float) -> dict[str, Any]:
    return {"rate": k / n, "ci": [lo, hi], "k": k, "n": n}


def fixture_results() -> dict[str, Any]:
    def base() -> dict[str, Any]:
        return {"detection_bal_acc": _mean(0.52, 0.45, 0.6),
                "fuzzing_bal_acc": _mean(0.5, 0.4, 0.6), "interpretable_frac": _frac(0, 2, 0.0, 0.66)}

    return {
        "detection_bal_acc": _mean(0.733, 0.65, 0.82, 3),
        "fuzzing_bal_acc": _mean(0.875, 0.8, 0.95, 2),
        "interpretable_frac": {**_frac(2, 3, 0.21, 0.94), "rule": "mean bal_acc >= 0.7"},
        "baselines": {"shuffled": base(), "neurons": base(), "random_sae": base()},
        "counts": {"latents": 4, "labelled": 3, "explainer_failures": 1, "unscorable_items": 5},
        "config": {"n_latents": 4, "note": "<b>not bold</b>"},
        "explainer": "scripted-explainer", "scorer": "scripted-scorer",
    }


def fixture_metrics() -> dict[str, Any]:
    return {"fvu": 0.1234, "explained_variance": 0.8766, "l0": 32.5, "dead_frac": 0.01,
            "dense_frac": 0.002, "ce_score": 0.91, "delta_ce_nats": 0.25, "kl": 0.2,
            "tokens": 100000}


@pytest.fixture
def page_path(tmp_path: Path) -> Path:
    return render_feature_browser(fixture_latents(), fixture_results(), fixture_metrics(),
                                  tmp_path / "f" / "features.html", title="Browser <test>")


def _data(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="feature-data">(.*?)</script>', html, re.S)
    assert m, "no embedded data block"
    return json.loads(m.group(1))


# --- without a browser -----------------------------------------------------------------------

def test_embedded_data_round_trips_tricky_tokens_and_cannot_close_its_script(page_path: Path) -> None:
    html = page_path.read_text(encoding="utf-8")
    assert TRICKY not in html and INJECT not in html  # neither raw in the page...
    data = _data(html)  # ...yet the data block reads back exactly
    cat = data["features"][1]
    assert cat["examples"]["top"][0]["tokens"] == TOP_TOKENS
    assert cat["examples"]["top"][0]["acts"] == TOP_ACTS
    assert cat["label"] == 'Cats and "kittens" <b>' and cat["max_act_scale"] == 4.0
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the data and the script
    assert "<b>not bold</b>" not in html and "&lt;b&gt;not bold&lt;/b&gt;" in html
    assert "Browser &lt;test&gt;" in html
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}  # the SVG namespace only, never fetched
    assert not re.search(r"<(?:link|img|iframe|object|embed)\b", html)
    assert not re.search(r"@import|url\(", html)
    assert json.loads(safe_json({"s": "</script><!--&\u2028"})) == {"s": "</script><!--&\u2028"}


def test_rows_labels_scores_and_placeholders(page_path: Path, tmp_path: Path) -> None:
    html = page_path.read_text(encoding="utf-8")
    rows = re.findall(r'<tr class="feature-row"[^>]*data-source="([^"]+)"[^>]*?( hidden)?>', html)
    assert [s for s, _ in rows] == ["sae"] * 4 + ["neurons"] * 2 + ["random_sae"]
    assert [h for _, h in rows] == [""] * 4 + [" hidden"] * 3  # the SAE is shown first
    assert "(explainer failed: timeout &lt;i&gt;after&lt;/i&gt; 30 s)" in html
    assert 'data-detection=""' in html  # an unscored latent sorts last, shows "--"
    assert "73.3% (65.0–82.0%, 3 latents)" in html  # SAE detection mean, its CI and n
    for key in ("fvu", "explained_variance", "l0", "dead_frac", "dense_frac", "ce_score",
                "delta_ce_nats", "kl", "tokens"):
        assert f'data-key="{key}"' in html
    assert "87.66%" in html and "100,000" in html and "0.1234" in html
    assert 'id="sae-metrics-not-run"' not in html and 'id="autointerp-not-run"' not in html
    bare = render_feature_browser(fixture_latents(), None, None, tmp_path / "bare.html")
    text = bare.read_text(encoding="utf-8")
    assert 'id="sae-metrics-not-run"' in text and 'id="autointerp-not-run"' in text
    assert 'id="chart-detection_bal_acc"' not in text


def test_summary_charts_have_a_bar_and_ci_whisker_per_source(page_path: Path) -> None:
    html = page_path.read_text(encoding="utf-8")
    m = re.search(r'<svg[^>]*id="chart-detection_bal_acc".*?</svg>', html, re.S)
    assert m
    svg = ET.fromstring(m.group(0))
    rows = svg.findall(f".//{SVG}g[@class='bar-row']")
    assert [r.get("data-label") for r in rows] == ["SAE", "shuffled labels", "neurons",
                                                   "random SAE"]
    assert float(rows[0].get("data-rate")) == pytest.approx(0.733)
    assert len(svg.findall(f".//{SVG}g[@class='whisker']")) == 4
    assert "2/3" in html and "(interpretable: mean bal_acc &gt;= 0.7)" in html
    counts = dict(re.findall(r'data-key="(\w+)"><div class="label">[^<]*</div>'
                             r'<div class="value">([^<]*)</div>', html))
    assert counts == {"latents": "4", "labelled": "3", "explainer_failures": "1",
                      "unscorable_items": "5"}


def test_histogram_bars_are_proportional_to_counts_and_placed_by_edges() -> None:
    svg = ET.fromstring(histogram_svg([0.0, 1.0, 2.0, 4.0], [10, 5, 0], width=100, height=22))
    bars = svg.findall(f"{SVG}rect[@class='hist-bar']")
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] == pytest.approx(20.0) and heights[1] == pytest.approx(10.0)
    assert heights[2] == 0.0
    assert [float(b.get("x")) for b in bars] == pytest.approx([0.0, 25.0, 50.0])
    assert float(bars[2].get("width")) == pytest.approx(50.0)
    assert svg.get("data-total") == "15"
    with pytest.raises(ValueError, match=r"latents\[2\].hist: hist needs len\(edges\)"):
        histogram_svg([0.0, 1.0], [1, 2], where="latents[2].hist")


def test_bad_records_are_one_clear_error_naming_the_field(tmp_path: Path) -> None:
    lat = fixture_latents()
    del lat[2]["latent"]
    with pytest.raises(ValueError, match=r"latents\[2\]: missing 'latent'"):
        render_feature_browser(lat, None, None, tmp_path / "x.html")
    lat = fixture_latents()
    lat[1]["examples"]["top"][0]["acts"].pop()
    with pytest.raises(ValueError, match=r"latents\[1\].examples.top\[0\]: .*equal length"):
        render_feature_browser(lat, None, None, tmp_path / "x.html")
    res = fixture_results()
    res["baselines"]["neurons"]["fuzzing_bal_acc"]["mean"] = 3.0
    with pytest.raises(ValueError, match=r"baselines.neurons.fuzzing_bal_acc has 3.0 outside"):
        render_feature_browser(fixture_latents(), res, None, tmp_path / "x.html")
    bad = tmp_path / "latents.jsonl"
    bad.write_text(json.dumps(fixture_latents()[0]) + "\n\n{oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"latents.jsonl:3: not valid JSON"):
        read_latents_jsonl(bad)


def test_long_contexts_keep_a_window_around_the_peak(tmp_path: Path) -> None:
    lat = fixture_latents()[:1]
    n = MAX_CONTEXT_TOKENS * 3
    acts = [0.0] * n
    acts[n - 5] = 2.0
    lat[0]["examples"]["top"] = [{"tokens": [f"t{i}" for i in range(n)], "acts": acts,
                                  "doc": 0, "start": 100}]
    path = render_feature_browser(lat, None, None, tmp_path / "long.html")
    ctx = _data(path.read_text(encoding="utf-8"))["features"][0]["examples"]["top"][0]
    assert len(ctx["tokens"]) == MAX_CONTEXT_TOKENS and ctx["cut"] == n - MAX_CONTEXT_TOKENS
    assert f"t{n - 5}" in ctx["tokens"] and ctx["tokens"][-1] == f"t{n - 1}"
    assert ctx["start"] == 100 + n - MAX_CONTEXT_TOKENS


# --- in headless Chromium --------------------------------------------------------------------

def _require_browser() -> None:
    """Skip only on explicit opt-out; otherwise a missing browser fails the test."""
    if os.environ.get("ALIGNLAB_SKIP_BROWSER") == "1":
        pytest.skip("ALIGNLAB_SKIP_BROWSER=1")


def _visible_labels(page: Any) -> list[str]:
    return page.locator("#feature-rows tr.feature-row:visible td.label").all_inner_texts()


def _alpha(css: str) -> float:
    m = re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)", css)
    assert m, css
    return 1.0 if m.group(4) is None else float(m.group(4))


def test_browser_filters_sorts_and_switches_source(page_path: Path) -> None:
    _require_browser()
    try:
        with open_page(page_path) as (page, log):
            assert _visible_labels(page) == ["Python code", 'Cats and "kittens" <b>',
                                             "(explainer failed: timeout <i>after</i> 30 s)",
                                             "French words"]
            assert page.inner_text("#rows-visible") == "4"
            page.fill("#feature-search", "KITTENS")
            assert _visible_labels(page) == ['Cats and "kittens" <b>']
            assert page.inner_text("#rows-visible") == "1"
            page.fill("#feature-search", "explainer failed")
            assert _visible_labels(page) == ["(explainer failed: timeout <i>after</i> 30 s)"]
            page.fill("#feature-search", "no such label")
            assert _visible_labels(page) == [] and page.is_visible("#rows-none")
            page.fill("#feature-search", "python")
            assert _visible_labels(page) == ["Python code"]
            page.select_option("#source-select", "*")  # the search still applies
            assert _visible_labels(page) == ["Python code", "python-ish punctuation"]
            page.fill("#feature-search", "")
            assert page.inner_text("#rows-visible") == "7"
            page.select_option("#source-select", "neurons")
            assert _visible_labels(page) == ["python-ish punctuation", "anything"]
            page.select_option("#source-select", "sae")
            page.click("button.sort[data-key='detection']")  # highest first, unscored last
            ids = page.locator("#feature-rows tr.feature-row:visible").evaluate_all(
                "rs => rs.map(r => r.getAttribute('data-latent'))")
            assert ids == ["7", "3", "12", "11"]
            page.click("button.sort[data-key='detection']")  # ascending, unscored still last
            ids = page.locator("#feature-rows tr.feature-row:visible").evaluate_all(
                "rs => rs.map(r => r.getAttribute('data-latent'))")
            assert ids == ["12", "3", "7", "11"]
            page.click("button.sort[data-key='density']")
            ids = page.locator("#feature-rows tr.feature-row:visible").evaluate_all(
                "rs => rs.map(r => r.getAttribute('data-latent'))")
            assert ids == ["12", "3", "7", "11"]  # 0.1, 0.02, 0.003, 0.0005
            assert log.console_errors == [] and log.page_errors == []
            assert log.failed_requests == []
            assert all(u.startswith("file://") for u in log.requests), log.requests
    except BrowserUnavailable as e:
        pytest.fail(f"headless Chromium is required for the report tests: {e}")


def test_clicking_a_row_shows_contexts_highlighted_by_activation(page_path: Path) -> None:
    _require_browser()
    try:
        with open_page(page_path) as (page, log):
            page.click("#feature-rows tr.feature-row[data-latent='7']")
            detail = page.locator("#feature-detail")
            assert detail.locator(".feature-label").inner_text() == 'Cats and "kittens" <b>'
            assert "90.0% (n=20, tp 8, tn 8, fp 2, fn 2)" in detail.inner_text()
            assert detail.locator(".score-shuffled-label-detection").inner_text().startswith("50.0%")
            assert detail.locator("svg.hist-large").count() == 1
            first = detail.locator(".ctx-top .ctx").first.locator("span.tok")
            assert first.count() == len(TOP_TOKENS)
            texts = first.evaluate_all("ss => ss.map(s => s.textContent)")
            assert texts == TOP_TOKENS  # tricky strings are text, exactly
            styles = first.evaluate_all("ss => ss.map(s => getComputedStyle(s).backgroundColor)")
            alphas = [_alpha(s) for s in styles]
            strongest = max(range(len(alphas)), key=alphas.__getitem__)
            assert strongest == TOP_ACTS.index(max(TOP_ACTS)) == 2 and alphas[2] == 1.0
            for a, act in zip(alphas, TOP_ACTS, strict=True):  # alpha = act / max_act (4.0)
                assert a == pytest.approx(act / 4.0, abs=0.01)
            titles = first.evaluate_all("ss => ss.map(s => s.title)")
            assert titles[2] == "activation 4" and titles[1] == "activation 2"
            assert detail.locator("b, img").count() == 0  # nothing was parsed as markup
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert detail.locator(".ctx-quantiles .ctx").count() == 1
            assert detail.locator(".ctx-negative .ctx").count() == 1
            page.click("#feature-rows tr.feature-row[data-latent='11']")
            label = detail.locator(".feature-label")
            assert label.inner_text() == "(explainer failed: timeout <i>after</i> 30 s)"
            assert "failed" in (label.get_attribute("class") or "")
            assert detail.locator(".score-detection").inner_text().startswith("--")
            page.focus("#feature-rows tr.feature-row[data-latent='3']")
            page.keyboard.press("Enter")
            assert detail.locator(".feature-label").inner_text() == "Python code"
            assert log.console_errors == [] and log.page_errors == []
    except BrowserUnavailable as e:
        pytest.fail(f"headless Chromium is required for the report tests: {e}")


def test_page_without_results_or_metrics_renders_placeholders(tmp_path: Path) -> None:
    _require_browser()
    lat = fixture_latents()
    for rec in lat:
        rec["detection"] = rec["fuzzing"] = rec["shuffled"] = None
    path = render_feature_browser(lat, None, None, tmp_path / "bare.html")
    try:
        with open_page(path) as (page, log):
            text = page.inner_text("body")
            assert "SAE metrics: not run" in text and "Auto-interp: not run" in text
            cells = page.locator("#feature-rows tr.feature-row:visible td.detection").all_inner_texts()
            assert cells == ["--"] * 4
            page.click("#feature-rows tr.feature-row[data-latent='3']")
            assert page.inner_text("#feature-detail .score-fuzzing") == "-- (not run)"
            assert log.console_errors == [] and log.page_errors == []
    except BrowserUnavailable as e:
        pytest.fail(f"headless Chromium is required for the report tests: {e}")
