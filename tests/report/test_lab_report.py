"""Lab report: the ladder has its ten levels, bands, boundaries and evidence flags; the scorecard has
a row per technique with its status, measures (k/n, CI, unscorable) and references kept apart; the
strategy and stage sections draw what the results hold; hostile text stays text; a mostly-empty
results dict still renders; and the page loads cleanly in headless Chromium.

The fixtures are hand-built from the shapes of ``build_lab_results`` (no files read). Browser tests
need Playwright and a system Chromium; like the other report tests they FAIL (not skip) when either
is missing, unless ALIGNLAB_SKIP_BROWSER=1 is set.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from alignlab.report import BrowserUnavailable, open_page
from alignlab.report.lab import format_measure, render_lab_report, write_lab_report
from alignlab.strategy.ladder import TECHNIQUES, ladder_dict
from alignlab.strategy.scorecard import ladder_evidence

PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned2=1">'
ESCAPED = "&lt;script&gt;window.__pwned=1&lt;/script&gt;"

MEASURED = {"baseline", "constitutional_classifiers", "ai_judges", "automated_redteaming", "sae_autointerp"}
NOT_RUN = {"behavioural_evals", "activation_probes"}
EVIDENCE_LEVELS = {1, 3, 4, 5, 6}
"""Levels served by a measured technique in the full fixture (2 is only behavioural_evals: not run)."""


def _m(label: str, value: float | None, ci=None, k=None, n=None, unit: str = "rate", note: str = "",
       u: int = 0) -> dict[str, Any]:
    return {"label": label, "value": value, "ci": ci, "k": k, "n": n, "n_unscorable": u, "unit": unit,
            "note": note}


MEASURES: dict[str, list[dict[str, Any]]] = {
    "baseline": [_m("attempted compliance, direct request", 0.15, [0.052, 0.36], 3, 20, u=2,
                    note="share of harmful behaviors the raw target tries to fulfil")],
    "constitutional_classifiers": [
        _m("ASR (harmful), unguarded -> guarded", 0.1, [0.028, 0.301], None, 20, note="unguarded 35.0%"),
        _m("change in behavior-level compliance (paired)", -0.25, [-0.45, -0.05], None, 20, "diff",
           "McNemar p = 0.02"),
        _m("overhead per generated token (wall)", 0.2126, None, unit="ratio", note="backbone probe")],
    "ai_judges": [_m("heuristic judge, refused: accuracy vs hand labels", 0.9556, [0.891, 0.983], None, 90,
                     note="Cohen's kappa 0.73")],
    "automated_redteaming": [_m("ASR (harmful), any of 2 attacks (behavior-level)", 0.35, [0.181, 0.567], 7, 20)],
    "sae_autointerp": [_m("interpretable SAE latents (detection+fuzzing >= 0.7)", 0.25, [0.046, 0.699], None, 4),
                       _m("detection balanced accuracy, SAE latents", 0.5063, [0.4625, 0.5563], unit="number",
                          note="chance 0.5")],
}
REFERENCES = {
    "constitutional_classifiers": [{"technique": "constitutional_classifiers",
                                    "measure": "jailbreak success rate without -> with classifiers",
                                    "figure": "86% -> 4.4%", "values": {"before": 0.86, "after": 0.044},
                                    "source": "Sharma et al. 2025, \"Constitutional Classifiers\"",
                                    "where": "arXiv:2501.18837", "note": "Claude 3.5 Sonnet"}],
    "debate": [{"technique": "debate", "measure": "judge accuracy with debate vs naive",
                "figure": "76% with debate vs 48% naive", "source": "Khan et al. 2024",
                "where": "arXiv:2402.06782"}],
}
REPORTS = {"baseline": "redteam/report.html", "automated_redteaming": "redteam/report.html",
           "constitutional_classifiers": "reattack/report.html", "sae_autointerp": "interp/features/report.html"}


def _scorecard() -> dict[str, Any]:
    rows = []
    for t in TECHNIQUES:
        status = "measured" if t.id in MEASURED else "not run" if t.id in NOT_RUN else "not in alignlab"
        rows.append({"technique": t.id, "name": t.name, "levels": list(t.levels), "bands": [],
                     "status": status, "stage": t.stage, "command": t.command, "description": t.description,
                     "measures": MEASURES.get(t.id, []), "references": REFERENCES.get(t.id, []),
                     "comparison": ("published: 86% -> 4.4% jailbreak success; here 35.0% -> 10.0%"
                                    if t.id == "constitutional_classifiers" else None),
                     "run_id": "redteam-1" if t.id in ("baseline", "automated_redteaming") else None,
                     "report": REPORTS.get(t.id),
                     "caveat": "the heuristic judge is a loose screen" if t.id == "baseline" else None})
    return {"techniques": rows, "n_measured": len(MEASURED), "sources": {}}


def band(p5: list[float], p50: list[float], p95: list[float]) -> dict[str, list[float]]:
    return {"p5": p5, "p50": p50, "p95": p95}


def _strategy() -> dict[str, Any]:
    prior = [0.04, 0.08, 0.12, 0.14, 0.14, 0.14, 0.12, 0.1, 0.07, 0.05]
    post = [0.037, 0.075, 0.115, 0.139, 0.141, 0.143, 0.123, 0.102, 0.072, 0.053]
    x = [0.0, 0.0, 0.0, 0.0, 6.0, 0.0, 4.0, 0.0, 0.0, 0.0]
    ps = [0.73] * 5 + [0.13] * 2 + [0.0] * 3
    alloc = {
        "model": "alignlab.strategy.allocate",
        "inputs": {"budget": 10.0, "harm_weight": 0.5, "prior": post,
                   "cost_scales": [0.5, 1.0, 1.5, 3.0, 5.0, 20.0, 30.0, 150.0, 500.0], "sensitivity_step": 0.1,
                   "uncertainty": {"prior_concentration": 20.0, "cost_sigma": 0.7, "harm_sigma": 0.5,
                                   "samples": 20, "seed": 0, "reoptimise": True}},
        "allocation": x, "expected_value": 0.243, "expected_p_success": 0.4065, "expected_harm": 0.1636,
        "p_success_given_D": ps, "harm_given_D": [0.0] * 5 + [0.3] * 2 + [0.37] * 3,
        "levels": [{"level": d + 1, "prior": post[d], "cost_scale": None, "allocation": x[d], "share": x[d] / 10,
                    "p_success_given_D": ps[d]} for d in range(10)],
        "baselines": {"uniform_all_10": -0.032, "uniform_1_to_9": -0.01,
                                    "best_single": {"level": 5, "ev": 0.227}},
        "sensitivity": [{"input": "harm_weight", "label": "harm weight h", "value": 0.5, "low": 0.45,
                         "dev_low": 0.0168, "shift_low": 0.06, "high": 0.55, "dev_high": -0.0159,
                         "shift_high": 0.07, "effect": 0.0168},
                        {"input": "budget", "label": "budget B", "value": 10.0, "low": 9.0, "dev_low": -0.0142,
                         "shift_low": 0.07, "high": 11.0, "dev_high": 0.0137, "shift_high": 0.05,
                         "effect": 0.0142}],
        "monte_carlo": {"samples": 20, "seed": 0, "reoptimised": True,
                        "ev_chosen": {"p5": 0.056, "p50": 0.224, "p95": 0.432},
                        "p_success_chosen": {"p5": 0.267, "p50": 0.388, "p95": 0.6},
                        "harm_chosen": {"p5": 0.051, "p50": 0.123, "p95": 0.308},
                        "p_success_given_D": band([p * 0.6 for p in ps], ps, [min(1.0, p * 1.3) for p in ps]),
                        "allocation": band([0.0] * 10, x, [0.0, 0.0, 0.0, 2.0, 10.0, 9.6, 10.0, 0.0, 0.0, 0.0]),
                        "ev_reoptimised": {"p5": 0.18, "p50": 0.3, "p95": 0.53},
                        "regret": {"p5": 0.002, "p50": 0.036, "p95": 0.156}},
        "evidence": {"prior": prior, "posterior": post,
                     "observations": [{"id": "judge_human_disagree", "description": "judges disagree",
                                       "transfer": 0.25, "likelihood": [0.3] * 10,
                                       "tempered_likelihood": [0.74] * 10,
                                       "bayes_factors": [round(q / p, 3) for p, q in zip(prior, post)]}],
                     "evidence_file": "evidence.yaml", "allocation_under_prior": [0, 0, 0, 0, 6.4, 0, 3.6, 0, 0, 0],
                     "ev_under_prior": 0.255, "ev_prior_allocation_under_posterior": 0.2427,
                     "allocation_under_posterior": x, "ev_under_posterior": 0.243}}
    years = [0.0, 5.0, 10.0, 15.0, 20.0]

    def scenario(g: float, p: list[float]) -> dict[str, Any]:
        return {"model": "alignlab.strategy.progress",
                "inputs": {"done": 0.1, "done_factor": 2.5, "growth": g, "historical_growth": 0.2,
                           "ai_multiplier": 1.0, "deadline": {"spec": "10", "kind": "fixed", "years": [10.0],
                                                              "probs": [1.0]}},
                "remaining_work_years_of_current_effort": 49.36, "p_done_by_deadline": p[2],
                "p_done_within": {"5": p[1], "10": p[2], "20": p[4]}, "central": 12.6,
                "completion_time": {"p5": 7.6, "p25": 10.6, "p50": 12.6, "p75": 14.7, "p95": 17.7},
                "curve": {"years": years, "p_done": p, "density": [0.0, 0.01, 0.1, 0.05, 0.0]}}

    progress = {"historical_growth": 0.2, "growth_rates": [0.2, 0.5],
                "scenarios": [scenario(0.2, [0.0, 0.0063, 0.1947, 0.8, 0.992]),
                              scenario(0.5, [0.0, 0.048, 0.96, 0.999, 1.0])],
                "needed_growth": {"probability": 0.5, "historical_growth": 0.2, "cap": 3.0, "growth": 0.302,
                                  "curve": {"growth": [0.0, 0.3, 1.0, 3.0], "p": [0.01, 0.49, 0.99, 1.0]},
                                  "message": "growth of 30.2%/yr gives P = 50% of done by 10 years"}}
    observations = [
        {"id": "judge_human_disagree", "metric": "judge_kappa", "value": -0.0215, "n": 90, "applied": True,
         "reason": "Cohen's kappa of the heuristic judge", "source": "judges"},
        {"id": "guard_holds_adaptive", "metric": "adaptive_asr", "value": 0.0, "n": 3, "applied": False,
         "reason": "not applied: 3 behaviors < the 50 the trigger asks for", "source": "reattack"},
        {"id": None, "metric": "defect_rate", "value": None, "n": None, "applied": False,
         "reason": "not measured: alignlab has no model-organism stage yet", "source": None}]
    return {"observations": observations, "allocation": alloc, "progress": progress}


def full_results() -> dict[str, Any]:
    """A lab run with every section: 5 techniques measured, 2 not run, the rest not in alignlab."""
    card = _scorecard()
    return {
        "stage": "lab", "run_id": "lab-20260101-000000-abcd", "alignlab_version": "0.1.0",
        "created": "2026-01-01T12:00:00+0000", "workspace": "ws/alignlab-runs",
        "target": "embedded:smollm2-135m-instruct", "duration_s": 4000.0,
        "config": {"target": "embedded:smollm2-135m-instruct", "helper": "target", "seed": 0},
        "stages": {"redteam": {"run_id": "redteam-1", "out": "out/redteam", "seconds": 5.0,
                               "summary": "ASR 35.0%, attempted compliance 50.0% of 20 behaviors"},
                   "reattack": {"out": "out/reattack", "seconds": 2.9,
                                "summary": "attempted compliance 50.0% -> 10.0%"},
                   "guard": {"out": "out/guard", "seconds": 4.8, "summary": "probe guard: 459 examples"}},
        "ladder": ladder_dict(), "levels": ladder_evidence(card), "scorecard": card,
        "strategy": _strategy(),
        "reports": {"redteam": "redteam/report.html", "guard-eval": "reattack/report.html",
                    "autointerp": "interp/features/report.html"},
    }


def empty_results() -> dict[str, Any]:
    """An 'alignlab report' of a workspace with one red-team run: no stages, no strategy."""
    card = _scorecard()
    for row in card["techniques"]:
        if row["technique"] != "baseline" and row["stage"]:
            row.update(status="not run", measures=[], report=None, comparison=None)
    return {"stage": "lab", "run_id": None, "alignlab_version": "0.1.0", "created": None, "workspace": "ws",
            "target": None, "duration_s": None, "config": {}, "stages": {}, "scorecard": card,
            "levels": ladder_evidence(card), "strategy": {}, "reports": {}}


def hostile_results() -> dict[str, Any]:
    r = full_results()
    r["target"] = f"target {PAYLOAD}"
    rows = r["scorecard"]["techniques"]
    rows[0]["name"] = f"baseline {PAYLOAD}"
    rows[0]["measures"][0]["note"] = f"note {PAYLOAD}"
    rows[0]["references"] = [{"measure": "m", "figure": f"fig {PAYLOAD}", "source": f"src {PAYLOAD}"}]
    r["strategy"]["observations"][0]["reason"] = f"reason {PAYLOAD}"
    r["stages"]["redteam"]["summary"] = f"summary {PAYLOAD}"
    r["levels"] = ladder_evidence(r["scorecard"])
    return r


def _levels(html: str) -> list[tuple[int, str, str]]:
    """(level, band, evidence flag) of every ladder level element, in page order."""
    return [(int(n), b, e) for n, b, e in re.findall(
        r'<div class="level [^"]*" id="level-\d+" data-level="(\d+)" data-band="(\w+)" '
        r'data-evidence="([01])"', html)]


def _row(html: str, tid: str) -> str:
    """The HTML of one scorecard row."""
    m = re.search(rf'<tr class="technique-row" id="technique-{tid}".*?</tr>\s*'
                  rf'(?=<tr class="technique-row"|</tbody>)', html, re.S)
    assert m, tid
    return m.group(0)


def _require_browser() -> None:
    if os.environ.get("ALIGNLAB_SKIP_BROWSER") == "1":
        pytest.skip("ALIGNLAB_SKIP_BROWSER=1")


@pytest.fixture(scope="module")
def full_html() -> str:
    return render_lab_report(full_results())


# --- the ladder --------------------------------------------------------------------------------

def test_ladder_has_ten_levels_in_their_bands_with_the_evidence_flags_of_the_results(full_html: str) -> None:
    levels = _levels(full_html)
    assert [n for n, _, _ in levels] == list(range(1, 11))
    assert [b for _, b, _ in levels] == ["easy"] * 3 + ["intermediate"] * 4 + ["hard"] * 3
    assert {n for n, _, e in levels if e == "1"} == EVIDENCE_LEVELS
    ladder = full_html.split('<section id="ladder">', 1)[1].split("</section>", 1)[0]
    assert len(re.findall(r'class="level [^"]*"', ladder)) == 10
    # the compact strip (svg.ladder_svg) agrees with the detailed ladder
    strip = re.findall(r'<g class="ladder-level" data-level="(\d+)" data-evidence="([01])"', ladder)
    assert {int(n) for n, e in strip if e == "1"} == EVIDENCE_LEVELS


def test_without_levels_in_the_results_the_flags_are_derived_from_the_scorecard() -> None:
    r = full_results()
    del r["levels"], r["ladder"]
    assert {n for n, _, e in _levels(render_lab_report(r)) if e == "1"} == EVIDENCE_LEVELS


def test_both_boundaries_sit_between_their_levels_with_their_names(full_html: str) -> None:
    order = re.findall(r'data-level="(\d+)" data-band|<div class="boundary" data-after="(\d)">'
                       r'<span class="bname">([^<]+)</span>', full_html)
    seq = [lv or f"after {a}: {name}" for lv, a, name in order]
    assert seq == ["1", "2", "3", "after 3: behavioural safety is insufficient", "4", "5", "6", "7",
                   "after 7: sharp left turn", "8", "9", "10"]


def test_levels_without_evidence_are_marked_and_list_their_techniques_status(full_html: str) -> None:
    blocks = re.split(r'(?=<div class="level )', full_html.split('<section id="scorecard">')[0])[1:]
    assert len(blocks) == 10
    for n, block in enumerate(blocks, 1):
        assert ("no evidence at this level" in block) == (n not in EVIDENCE_LEVELS), n
    # level 2: behavioural evals not run, preference training not in alignlab
    assert 'data-technique="behavioural_evals" data-status="not run"' in blocks[1]
    assert 'data-technique="preference_training" data-status="not in alignlab"' in blocks[1]
    # a measured technique shows its headline and links its report
    assert "attempted compliance, direct request: 15.0% [5.2, 36.0] (3/20)" in blocks[0]
    assert 'href="redteam/report.html"' in blocks[0]
    # a technique alignlab lacks shows the published figure with its source
    assert "alignlab cannot measure it yet. Published: 76% with debate vs 48% naive (Khan et al. 2024)" in blocks[4]


def test_header_states_the_run_the_coverage_and_the_scale_caveat(full_html: str) -> None:
    for text in ("embedded:smollm2-135m-instruct", "lab-20260101-000000-abcd", "0.1.0", "2026-01-01 12:00:00",
                 "1 h 06 min", "ws/alignlab-runs"):
        assert text in full_html.split('<section id="ladder">')[0], text
    assert "evidence at levels <strong>1, 3–6</strong>; none at <strong>2, 7–10</strong>" in full_html
    assert "5 of 13 techniques measured, 2 available but not run, 6 not in alignlab yet" in full_html
    assert 'id="scale-caveat"' in full_html and "say little about transformative AI" in full_html


# --- the scorecard -----------------------------------------------------------------------------

def test_scorecard_has_one_row_per_technique_with_its_status(full_html: str) -> None:
    rows = re.findall(r'<tr class="technique-row" id="technique-\w+" data-technique="(\w+)" '
                      r'data-status="([^"]+)"', full_html)
    assert [t for t, _ in rows] == [t.id for t in TECHNIQUES]
    expected = {t.id: "measured" if t.id in MEASURED else "not run" if t.id in NOT_RUN else "not in alignlab"
                for t in TECHNIQUES}
    assert dict(rows) == expected


def test_a_rate_shows_its_percent_ci_k_of_n_and_unscorable_count(full_html: str) -> None:
    f = format_measure(MEASURES["baseline"][0])
    assert (f["value"], f["ci"], f["counts"], f["unscorable"]) == ("15.0%", "95% CI 5.2–36.0%", "3/20",
                                                                  "2 unscorable")
    row = _row(full_html, "baseline")
    for text in ("15.0%", "95% CI 5.2–36.0%", '<span class="counts">3/20</span>', "2 unscorable",
                 "share of harmful behaviors the raw target tries to fulfil",
                 "<strong>Judge caveat:</strong> the heuristic judge is a loose screen", 'href="redteam/report.html"'):
        assert text in row, text
    assert '<span class="counts">7/20</span>' in _row(full_html, "automated_redteaming")


def test_units_are_written_as_percent_points_or_numbers_and_missing_as_na() -> None:
    cc = [format_measure(m) for m in MEASURES["constitutional_classifiers"]]
    assert (cc[0]["value"], cc[0]["counts"]) == ("10.0%", "n = 20")  # k unknown: n only
    assert (cc[1]["value"], cc[1]["ci"]) == ("-25.0 pp", "95% CI -45.0 to -5.0 pp")
    assert (cc[2]["value"], cc[2]["ci"]) == ("21.3%", "")
    det = format_measure(MEASURES["sae_autointerp"][1])
    assert (det["value"], det["ci"]) == ("0.506", "95% CI 0.463–0.556")
    assert format_measure({"label": None, "value": None, "unit": "rate"})["value"] == "n/a"
    assert format_measure({})["label"] == "n/a"


def test_references_stand_beside_the_measurement_with_source_and_where(full_html: str) -> None:
    row = _row(full_html, "constitutional_classifiers")
    measured, refs = row.split('<td class="refs">', 1)
    assert "86% -&gt; 4.4%" in refs and "Sharma et al. 2025" in refs and "arXiv:2501.18837" in refs
    assert "arXiv" not in measured and "Sharma" not in measured  # never mixed into the measured cell
    assert "<strong>Against the reference:</strong> published: 86% -&gt; 4.4%" in measured
    debate = _row(full_html, "debate")
    assert "alignlab cannot measure this yet" in debate and "76% with debate vs 48% naive" in debate
    assert "Khan et al. 2024" in debate and "arXiv:2402.06782" in debate
    assert "Not run in this workspace: run <code>alignlab eval</code>" in _row(full_html, "behavioural_evals")


# --- strategy, stages, config ------------------------------------------------------------------

def test_strategy_section_draws_every_model_plot_and_the_observations(full_html: str) -> None:
    s = full_html.split('<section id="strategy">', 1)[1].split('<section id="stages">', 1)[0]
    for chart in ("strategy-prior-posterior", "strategy-allocation", "strategy-success", "strategy-sensitivity",
                  "strategy-progress-curves", "strategy-completion-time", "strategy-needed-growth"):
        assert f'id="{chart}"' in s, chart
    assert re.findall(r'<tr class="observation" data-applied="([01])"', s) == ["1", "0", "0"]
    assert "not applied: 3 behaviors &lt; the 50 the trigger asks for" in s
    assert "All inputs are judgement calls." in s
    # prior -> posterior table, allocation shares and P within 5/10/20 years
    assert '<tr data-level="5"><td title="scalable oversight with AI research assistance">5</td>' \
           '<td class="num">14.0%</td><td class="num">14.1%</td><td class="num">+0.10 pp</td>' in s
    assert "<td class=\"num\">64.0%</td><td class=\"num\">60.0%</td><td class=\"num\">0.0%–100.0%</td>" in s
    assert "<tr><td>20% / year</td><td class=\"num\">0.6%</td><td class=\"num\">19.5%</td>" \
           "<td class=\"num\">99.2%</td>" in s
    assert "growth of 30.2%/yr gives P = 50% of done by 10 years" in s
    assert "value of updating" in s and "0.000" in s  # 0.243 - 0.2427


def test_stages_give_duration_summary_and_a_link_to_their_report(full_html: str) -> None:
    s = full_html.split('<section id="stages">', 1)[1]
    stages = re.findall(r'<tr class="stage" data-stage="(\w+)">', s)
    assert stages == ["redteam", "guard", "reattack"]  # the lab's order
    reattack = s.split('data-stage="reattack"', 1)[1].split("</tr>", 1)[0]
    assert "2.9 s" in reattack and 'href="reattack/report.html"' in reattack
    assert "attempted compliance 50.0% -&gt; 10.0%" in reattack
    assert 'href="interp/features/report.html"' in s  # a report no stage claims is still listed
    assert '<details class="item"><summary>Config snapshot' in s


def test_hostile_text_is_escaped_everywhere_and_nothing_runs_or_loads() -> None:
    html = render_lab_report(hostile_results())
    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    for where in ("target ", "baseline ", "note ", "fig ", "src ", "reason ", "summary "):
        assert where + ESCAPED in html, where
    assert html.count("<script") == 1  # the base template's empty, hash-pinned script
    assert "script-src 'sha256-" in html
    assert set(re.findall(r"https?://[^\s\"'<>)]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<(?:link|img|iframe|object|embed)\b", html)


def test_a_report_link_with_a_scheme_is_not_made_a_link() -> None:
    r = full_results()
    r["scorecard"]["techniques"][0]["report"] = "javascript:window.__pwned=1"
    r["levels"] = ladder_evidence(r["scorecard"])
    r["reports"]["redteam"] = "javascript:alert(1)"
    html = render_lab_report(r)
    assert 'href="javascript' not in html


def test_mostly_empty_results_render_with_na_and_no_evidence_above_level_1() -> None:
    html = render_lab_report(empty_results())
    assert {n for n, _, e in _levels(html) if e == "1"} == {1}
    statuses = dict(re.findall(r'data-technique="(\w+)" data-status="([^"]+)"', html))
    assert statuses["automated_redteaming"] == "not run" and statuses["baseline"] == "measured"
    assert "No lab stages recorded" in html
    assert "n/a: the strategy stage did not run" in html and "n/a: no progress model in the results" in html
    assert "<dt>Target</dt><dd>n/a</dd>" in html and "<dt>Duration</dt><dd>n/a</dd>" in html
    assert "evidence at level <strong>1</strong>; none at <strong>2–10</strong>" in html
    bare = render_lab_report({})  # nothing at all: still ten levels, none with evidence
    assert [e for _, _, e in _levels(bare)] == ["0"] * 10
    assert "n/a: the results hold no scorecard." in bare


def test_a_plot_with_incomplete_data_says_so_and_the_others_still_draw() -> None:
    r = full_results()
    r["strategy"]["allocation"]["levels"] = []  # success_svg reads each level's prior here
    html = render_lab_report(r)
    assert html.count("plot not drawn: incomplete data (IndexError") == 1
    assert 'id="strategy-success"' not in html and 'id="strategy-allocation"' in html


def test_write_creates_the_folder_and_returns_the_path(tmp_path: Path) -> None:
    path = write_lab_report(empty_results(), tmp_path / "a" / "b" / "report.html")
    assert path == tmp_path / "a" / "b" / "report.html"
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# --- in headless Chromium ----------------------------------------------------------------------

def test_page_loads_cleanly_shows_ladder_and_scorecard_and_the_payload_stays_text(tmp_path: Path) -> None:
    _require_browser()
    hostile = write_lab_report(hostile_results(), tmp_path / "hostile" / "report.html")
    empty = write_lab_report(empty_results(), tmp_path / "empty" / "report.html")
    try:
        with open_page(hostile) as (page, log):
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert page.evaluate("typeof window.__pwned2") == "undefined"
            assert page.locator("#ladder").is_visible() and page.locator("#scorecard").is_visible()
            assert page.locator("#ladder .level[data-level]").count() == 10
            assert page.locator("#ladder .level[data-evidence='1']").count() == len(EVIDENCE_LEVELS)
            assert page.locator("#ladder .boundary").count() == 2
            assert page.locator("#scorecard tr.technique-row").count() == len(TECHNIQUES)
            name = page.locator('#scorecard tr[data-technique="baseline"] .tname').text_content()
            assert name == f"baseline {PAYLOAD}"  # shown as text
            assert page.locator("#strategy svg#strategy-prior-posterior").is_visible()
            assert log.console_errors == [] and log.page_errors == [] and log.failed_requests == []
            assert all(u.startswith("file://") for u in log.requests), log.requests
        with open_page(empty) as (page, log):
            assert page.locator("#ladder").is_visible() and page.locator("#scorecard").is_visible()
            assert log.console_errors == [] and log.page_errors == []
    except BrowserUnavailable as e:
        pytest.fail(f"headless Chromium is required for the report tests: {e}")
