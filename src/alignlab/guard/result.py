"""What a guard evaluation returns: :class:`GuardEvalResult`, results.json with typed access."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignlab.results import Result
from alignlab.stats import format_ci, format_pct


class GuardEvalResult(Result):
    """The target red-teamed without and with the guard: ASR, over-refusal, overhead, latency.

    ``data`` is results.json; ``examples`` holds blocked attacks, missed attacks and refused benign
    prompts for the report.
    """

    stage = "guard-eval"

    def __init__(self, data: dict[str, Any], rows: list[dict[str, Any]] | None = None,
                 out_dir: str | Path | None = None, examples: dict[str, list[dict[str, Any]]] | None = None) -> None:
        super().__init__(data, rows, out_dir)
        self.examples = examples or {}

    @property
    def asr_unguarded(self) -> float | None:
        return self.data.get("asr_unguarded")

    @property
    def asr_guarded(self) -> float | None:
        return self.data.get("asr_guarded")

    @property
    def compliance_guarded(self) -> float | None:
        return self.data.get("compliance_guarded")

    @property
    def over_refusal_guarded(self) -> float | None:
        return self.data.get("over_refusal_guarded")

    def summary(self) -> str:
        d = self.data

        def line(name: str, key: str) -> str:
            return (f"{name:<34} {format_pct(d[key + '_unguarded'])} {format_ci(d[key + '_unguarded_ci'])}  ->  "
                    f"{format_pct(d[key + '_guarded'])} {format_ci(d[key + '_guarded_ci'])}")

        ov = d.get("overhead") or {}
        lines = [f"guard eval (unguarded -> guarded), runs {d.get('runs')}",
                 line("ASR (harmful, behavior-level)", "asr"), line("attempted compliance", "compliance"),
                 line("over-refusal (benign + borderline)", "over_refusal"),
                 f"{'overhead per generated token':<34} {format_pct(ov.get('wall_per_token'))} wall, "
                 f"{format_pct(ov.get('added_flops_ratio'))} added FLOPs"]
        if d.get("judge_caveat"):
            lines.append(f"judge caveat: {d['judge_caveat']}")
        return "\n".join(lines)
