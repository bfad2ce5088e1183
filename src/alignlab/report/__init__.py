"""HTML reports: one self-contained file per run, readable offline.

Public API:
    write_report: the HTML report of any stage result (RedteamResult, EvalResult, GuardEvalResult, ...).
    write_redteam_report: the red-team report from a run's results dict, hits and examples.
    write_evals_report, write_persona_report: the evals / persona report (one offline HTML file).
    render_feature_browser, read_latents_jsonl: the interpretability feature browser.
    render_lab_report, write_lab_report: the lab report (ladder, scorecard, strategy, stages).
    bar_chart_svg, ladder_svg: inline SVG charts reusable by any report.
    format_pct, format_ci: how rates and 95% intervals are written in reports.
    check_html_in_browser: open a report in headless Chromium and collect errors (for tests).

Importing this package registers one report writer per stage result type
(:func:`alignlab.results.register_report`), so ``result.save(dir)`` writes report.html.
"""

from alignlab.report.browser import BrowserUnavailable, check_html_in_browser, open_page
from alignlab.report.evals import render_evals_report, write_evals_report
from alignlab.report.interp import read_latents_jsonl, render_feature_browser
from alignlab.report.lab import render_lab_report, write_lab_report
from alignlab.report.persona import render_persona_report, write_persona_report
from alignlab.report.redteam import render_redteam_report, write_redteam_report
from alignlab.report.svg import bar_chart_svg, format_ci, format_pct, ladder_svg
from alignlab.report.writers import write_report

__all__ = [
    "BrowserUnavailable",
    "bar_chart_svg",
    "check_html_in_browser",
    "format_ci",
    "format_pct",
    "ladder_svg",
    "open_page",
    "read_latents_jsonl",
    "render_evals_report",
    "render_feature_browser",
    "render_lab_report",
    "render_persona_report",
    "render_redteam_report",
    "write_evals_report",
    "write_lab_report",
    "write_persona_report",
    "write_redteam_report",
    "write_report",
]

