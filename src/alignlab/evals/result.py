"""What an eval run returns: :class:`EvalResult`, results.json and its samples with typed access."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignlab.results import Result
from alignlab.stats import format_ci, format_pct


class EvalResult(Result):
    """Per suite: the rate of the concerning behaviour with its 95% CI, n and unscorable items.

    ``data`` is results.json; ``rows`` are the per-item samples (``samples.jsonl``). ``persona``,
    ``drift`` and ``capping`` hold the persona-space sections when an eval run measured them.
    """

    stage = "evals"
    records_file = "samples.jsonl"

    def __init__(self, data: dict[str, Any], rows: list[dict[str, Any]] | None = None,
                 out_dir: str | Path | None = None, persona: dict | None = None, drift: dict | None = None,
                 capping: dict | None = None) -> None:
        super().__init__(data, rows, out_dir)
        self.persona, self.drift, self.capping = persona, drift, capping

    @property
    def samples(self) -> list[dict[str, Any]]:
        """One record per item: transcript, score, verdict."""
        return self.rows

    @property
    def suites(self) -> dict[str, Any]:
        """Per suite: rate, ci, k, n, n_unscorable and the breakdowns."""
        return dict(self.data.get("suites", {}))

    def rate(self, suite: str) -> float | None:
        """The suite's rate of the concerning behaviour (None when nothing was scorable)."""
        return self.suites[suite].get("rate")

    def summary(self) -> str:
        lines = [f"eval run {self.run_id}: {self.data.get('model')} (judge {self.data.get('judge')})"]
        for name, s in self.suites.items():
            lines.append(f"{name:<20} {format_pct(s.get('rate'))} {format_ci(s.get('ci'))}  "
                         f"{s.get('k', '?')}/{s.get('n')}, {s.get('n_unscorable', 0)} unscorable")
        if self.data.get("judge_caveat"):
            lines.append(f"judge caveat: {self.data['judge_caveat']}")
        return "\n".join(lines)
