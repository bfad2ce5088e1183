"""What a red-team run returns: :class:`RedteamResult`, the results.json contract with typed access."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignlab.results import Result
from alignlab.stats import format_ci, format_pct


class RedteamResult(Result):
    """A red-team run's results.

    ``data`` is results.json; ``rows`` are the hits (every attempt judged harmful, ``hits.jsonl``);
    ``examples`` are a few non-hit attempts for the report to show.
    """

    stage = "redteam"
    records_file = "hits.jsonl"

    def __init__(self, data: dict[str, Any], rows: list[dict[str, Any]] | None = None,
                 out_dir: str | Path | None = None, examples: list[dict[str, Any]] | None = None) -> None:
        super().__init__(data, rows, out_dir)
        self.examples = list(examples or [])

    @property
    def hits(self) -> list[dict[str, Any]]:
        """Every attempt judged harmful."""
        return self.rows

    @property
    def asr(self) -> float | None:
        """Behavior-level attack success rate (harmful), None when nothing was scorable."""
        return self.data.get("asr")

    @property
    def asr_ci(self) -> tuple[float, float] | None:
        """95% Wilson interval of ``asr``."""
        ci = self.data.get("asr_ci")
        return tuple(ci) if ci else None

    @property
    def compliance_rate(self) -> float | None:
        """Behavior-level attempted compliance (an on-task attempt, whatever its quality)."""
        return self.data.get("compliance_rate")

    @property
    def n_behaviors(self) -> int:
        return int(self.data.get("n_behaviors", 0))

    @property
    def n_unscorable(self) -> int:
        """Attempts the judge could not decide (kept out of every denominator)."""
        return int(self.data.get("n_unscorable", 0))

    @property
    def by_attack(self) -> dict[str, Any]:
        """Per attack: ASR, compliance, queries per success."""
        return dict(self.data.get("by_attack", {}))

    def summary(self) -> str:
        d = self.data
        b, c, a = d["behavior_asr"], d["behavior_compliance"], d["attempt_asr"]
        lines = [
            f"red-team run {self.run_id}: {d.get('n_behaviors')} behaviors x {len(d.get('by_attack', {}))} attacks "
            f"on {d.get('target')} (judge {d.get('judge')})",
            f"ASR (harmful, behavior-level): {format_pct(d['asr'])} {format_ci(d['asr_ci'])}  "
            f"{b['k']}/{b['n']} behaviors, {d['n_unscorable']} unscorable",
            f"attempted compliance:          {format_pct(d['compliance_rate'])} "
            f"{format_ci(d['compliance_rate_ci'])}  {c['k']}/{c['n']}",
            f"attempt-level ASR:             {format_pct(a['rate'])} {format_ci(a['ci'])}  {a['k']}/{a['n']}, "
            f"{a['n_unscorable']} unscorable",
        ]
        if d.get("over_refusal"):
            o = d["over_refusal"]
            lines.append(f"over-refusal on benign:        {format_pct(o['rate'])} {format_ci(o['ci'])}  "
                         f"{o['k']}/{o['n']}")
        if d.get("judge_caveat"):
            lines.append(f"judge caveat: {d['judge_caveat']}")
        return "\n".join(lines)
