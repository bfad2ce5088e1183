"""One HTML report writer per stage result type, registered with :func:`alignlab.results.register_report`.

Stages return results and never render HTML; ``result.save(dir)`` and :func:`write_report` find the
writer here. Importing ``alignlab.report`` registers them all.
"""

from __future__ import annotations

from pathlib import Path

from alignlab.evals.result import EvalResult
from alignlab.guard.result import GuardEvalResult
from alignlab.interp.result import AutointerpResult
from alignlab.redteam.result import RedteamResult
from alignlab.report.evals import write_evals_report
from alignlab.report.guard import write_guard_report
from alignlab.report.interp import read_latents_jsonl, render_feature_browser
from alignlab.report.redteam import write_redteam_report
from alignlab.results import Result, register_report, report_writer


@register_report(RedteamResult)
def _redteam(r: RedteamResult, path: Path) -> Path:
    return write_redteam_report(r.data, r.hits, path, examples=r.examples)


@register_report(EvalResult)
def _evals(r: EvalResult, path: Path) -> Path:
    return write_evals_report(r.data, r.samples, path, persona=r.persona, drift=r.drift, capping=r.capping)


@register_report(GuardEvalResult)
def _guard(r: GuardEvalResult, path: Path) -> Path:
    return write_guard_report(r.data, path, r.examples)


@register_report(AutointerpResult)
def _autointerp(r: AutointerpResult, path: Path) -> Path:
    latents = read_latents_jsonl(r.latents_path) if r.latents_path and r.latents_path.exists() else []
    return render_feature_browser(latents, r.data, r.sae_metrics, path, title=r.title)


def write_report(result: Result, path: str | Path) -> Path:
    """Write the HTML report of a stage result to ``path`` and return the path."""
    return report_writer(result)(result, Path(path))
