"""The lab's ``results.json`` and report, from a lab run or from any workspace.

``alignlab lab`` writes them after its stages; ``alignlab report WORKSPACE`` builds the same from the
latest finished run of each kind in a workspace (runs made by the stand-alone commands count too).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from alignlab import __version__
from alignlab.results import Result, register_report


def compute_strategy(scorecard: dict[str, Any], evidence, config, out_dir: str | Path | None = None) -> dict[str, Any]:
    """The lab's observations, the allocation updated by those applied, and the progress model.

    Writes ``allocation.json``, ``progress.json`` and ``observations.json`` into ``out_dir`` when given.
    """
    from alignlab.lab.evidence import lab_observations
    from alignlab.strategy.allocate_config import load_allocation_config
    from alignlab.strategy.evidence import allocate_with_evidence
    from alignlab.strategy.progress import ProgressInputs, parse_deadline, progress_report

    s = config.strategy
    obs = lab_observations(scorecard, evidence, config)
    applied = [{"id": o["id"], "transfer": s.transfer} for o in obs if o["applied"]]
    alloc = allocate_with_evidence(load_allocation_config(s.allocation), applied, samples=s.samples)
    inputs = ProgressInputs(done=s.done, done_factor=s.done_factor, growth=s.growth[0],
                            historical_growth=s.growth[0], deadline=parse_deadline(s.deadline))
    prog = progress_report(inputs, growth_rates=s.growth)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "allocation.json").write_text(json.dumps(alloc, indent=1))
        (out / "progress.json").write_text(json.dumps(prog, indent=1))
        (out / "observations.json").write_text(json.dumps(obs, indent=1))
    return {"observations": obs, "allocation": alloc, "progress": prog}


def build_lab_results(workspace, out_dir: str | Path, config, *, run_ids: dict[str, str] | None = None,
                      stages: dict[str, dict[str, Any]] | None = None, strategy: dict[str, Any] | None = None,
                      lab_run: str | None = None, seconds: float | None = None) -> dict[str, Any]:
    """Scorecard, ladder evidence and strategy for the report; written to ``OUT/results.json``.

    Args:
        workspace: the run store.
        out_dir: where results.json and report.html go (report links are relative to it).
        config: the :class:`~alignlab.lab.config.LabConfig` (its strategy section is used).
        run_ids: the runs to read by kind (default: the latest finished run of each kind).
        stages: the lab's stage records (name -> summary, seconds, out).
        strategy: a :func:`compute_strategy` result (default: computed here, not written to files).
        lab_run: the lab run id.
        seconds: the lab's duration.
    """
    from alignlab.strategy.ladder import ladder_dict
    from alignlab.strategy.scorecard import build_scorecard, collect_evidence, ladder_evidence, relative_link

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ev = collect_evidence(workspace, run_ids)
    card = build_scorecard(ev, base=out)
    strat = strategy if strategy is not None else compute_strategy(card, ev, config)
    target = next((r.get("target") or r.get("model") for r in ev.results.values()
                   if isinstance(r, dict) and (r.get("target") or r.get("model"))), None)
    results = {
        "stage": "lab", "run_id": lab_run, "alignlab_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "workspace": str(workspace.root),
        "target": target, "config": config.model_dump(), "duration_s": seconds,
        "stages": stages or {}, "ladder": ladder_dict(), "levels": ladder_evidence(card),
        "scorecard": card, "strategy": strat,
        "reports": {k: relative_link(Path(v) / "report.html", out) for k, v in ev.paths.items()
                    if (Path(v) / "report.html").exists()},
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    from alignlab.report.lab import write_lab_report

    write_lab_report(results, out / "report.html")
    return results


class LabResult(Result):
    """The lab loop's results: the ladder with evidence per level, the scorecard, the strategy
    models and each stage's summary (``data`` is the lab's results.json)."""

    stage = "lab"

    @property
    def levels(self) -> list[dict[str, Any]]:
        """Evidence per rung of the alignment-difficulty ladder."""
        return list(self.data.get("levels", []))

    @property
    def scorecard(self) -> list[dict[str, Any]]:
        """Each technique's measured figure beside its published counterpart."""
        return list(self.data.get("scorecard", []))

    def summary(self) -> str:
        lines = [f"lab run {self.run_id} on {self.data.get('target')} -> {self.out_dir}"]
        lines += [f"  {k}: {v.get('summary', '')}" for k, v in (self.data.get("stages") or {}).items()]
        return "\n".join(lines)


@register_report(LabResult)
def _lab_report(r: LabResult, path: Path) -> Path:
    from alignlab.report.lab import write_lab_report

    return write_lab_report(r.data, path)
